//! Unit and property tests of the whole language, through the public API.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn q(sql: &str) -> Query {
    Query::parse(sql).unwrap_or_else(|e| panic!("{sql:?} should parse: {e}"))
}

/// Both evaluators, checked to agree; the raw one's outcome.
fn eval(query: &Query, json: &str) -> Outcome {
    let raw = query.eval_raw(json);
    if let Ok(v) = serde_json::from_str::<Value>(json) {
        assert_same(&raw, &query.eval_value(&v), json);
        assert_into_agrees(query, &v);
    }
    raw
}

/// `eval_value_into` on a buffer left dirty by an earlier message says what `eval_value` says.
fn assert_into_agrees(query: &Query, v: &Value) {
    let mut out = String::from("{\"left\":\"over\"}");
    let got = match query.eval_value_into(v, &mut out) {
        Match::NoMatch => {
            assert!(out.is_empty(), "buffer not cleared on {v}");
            Outcome::NoMatch
        }
        Match::Forward => {
            assert!(out.is_empty(), "buffer not cleared on {v}");
            Outcome::Forward
        }
        Match::Projected => Outcome::Projected(out),
    };
    assert_eq!(got, query.eval_value(v), "eval_value_into differs on {v}");
}

fn assert_same(raw: &Outcome, val: &Outcome, msg: &str) {
    match (raw, val) {
        (Outcome::Projected(a), Outcome::Projected(b)) => {
            let a: Value = serde_json::from_str(a).expect("raw projection is JSON");
            let b: Value = serde_json::from_str(b).expect("value projection is JSON");
            assert_eq!(a, b, "projections differ on {msg}");
        }
        (a, b) => assert_eq!(a, b, "outcomes differ on {msg}"),
    }
}

fn matches(sql: &str, json: &str) -> bool {
    eval(&q(sql), json) != Outcome::NoMatch
}

fn projected(sql: &str, json: &str) -> Value {
    match eval(&q(sql), json) {
        Outcome::Projected(text) => serde_json::from_str(&text).expect("projection is JSON"),
        other => panic!("{sql} on {json}: expected a projection, got {other:?}"),
    }
}

fn err(sql: &str) -> ParseError {
    match Query::parse(sql) {
        Ok(q) => panic!("{sql:?} should not parse, got {q:?}"),
        Err(e) => e,
    }
}

const FPS: &str = r#"{"id": "engine_fps_id", "session": "4dacbafefc214578aa3f8c1d2975ec92",
 "timestamp": 1536270895637, "version": 1, "per_id_counter": 12,
 "device": {"app_version": "3.25", "game": "wiso", "model": "iPhone",
            "os_language": "en", "os_name": "iOS", "os_version": "10.3.3"},
 "data": {"fps": 30}}"#;

// ---- the reference forms (spec: MUST keep working) ----

#[test]
fn reference_select_star_where_lt() {
    let query = q("SELECT * FROM `engine_fps_id` WHERE data.fps < 30");
    assert_eq!(query.channel(), "engine_fps_id");
    assert!(query.is_select_star());
    assert_eq!(eval(&query, r#"{"data":{"fps":29}}"#), Outcome::Forward);
    assert_eq!(eval(&query, FPS), Outcome::NoMatch);
    assert_eq!(eval(&query, r#"{"data":{"fps":29.5}}"#), Outcome::Forward);
}

#[test]
fn reference_lowercase_projection_without_where() {
    let query = q("select data.fps from `engine_fps_id`");
    assert!(!query.is_select_star());
    assert!(!query.has_filter());
    assert_eq!(
        eval(&query, FPS),
        Outcome::Projected(r#"{"data.fps":30}"#.into())
    );
}

#[test]
fn reference_ne_and_like_exact() {
    let sql = "SELECT data.url,data.status FROM `engine_net_request_id` WHERE data.status != 200 AND data.url LIKE 'why'";
    assert_eq!(q(sql).channel(), "engine_net_request_id");
    assert_eq!(
        projected(sql, r#"{"data":{"url":"why","status":404}}"#),
        json!({"data.url":"why","data.status":404})
    );
    assert!(!matches(sql, r#"{"data":{"url":"why","status":200}}"#));
    assert!(!matches(sql, r#"{"data":{"url":"whyy","status":404}}"#));
    assert!(!matches(sql, r#"{"data":{"url":"Why","status":404}}"#));
}

#[test]
fn reference_like_suffix() {
    let sql =
        "SELECT data.url,data.duration_ms FROM `engine_net_request_id` WHERE data.url LIKE '%.png'";
    assert_eq!(
        projected(sql, r#"{"data":{"url":"http://x/a.png","duration_ms":12}}"#),
        json!({"data.url":"http://x/a.png","data.duration_ms":12})
    );
    assert!(!matches(
        sql,
        r#"{"data":{"url":"http://x/a.png.jpg","duration_ms":12}}"#
    ));
    assert!(!matches(sql, r#"{"data":{"url":"http://x/apng"}}"#));
}

#[test]
fn reference_alias_and_gt() {
    let sql = "SELECT device.app_version AS app_version, data.file_count FROM `blah` WHERE data.file_count > 16";
    assert_eq!(
        projected(
            sql,
            r#"{"device":{"app_version":"1.2"},"data":{"file_count":17}}"#
        ),
        json!({"app_version":"1.2","data.file_count":17})
    );
    assert!(!matches(
        sql,
        r#"{"device":{"app_version":"1.2"},"data":{"file_count":16}}"#
    ));
}

#[test]
fn reference_or_on_top_level_fields() {
    let sql = "SELECT * FROM blah WHERE game = 'ody' OR os_name = 'Android'";
    assert_eq!(q(sql).channel(), "blah");
    assert!(matches(sql, r#"{"game":"ody","os_name":"iOS"}"#));
    assert!(matches(sql, r#"{"game":"x","os_name":"Android"}"#));
    assert!(!matches(sql, r#"{"game":"x","os_name":"iOS"}"#));
    assert!(!matches(sql, r#"{}"#));
}

#[test]
fn reference_bool_literal() {
    let sql = "SELECT * FROM blah WHERE data.essential = true";
    assert!(matches(sql, r#"{"data":{"essential":true}}"#));
    assert!(!matches(sql, r#"{"data":{"essential":false}}"#));
    assert!(!matches(sql, r#"{"data":{"essential":"true"}}"#));
    assert!(!matches(sql, r#"{"data":{"essential":1}}"#));
    assert!(matches(
        "SELECT * FROM blah WHERE data.essential = false",
        r#"{"data":{"essential":false}}"#
    ));
}

#[test]
fn reference_lowercase_keywords_and_two_conditions() {
    let sql = "select magic,device.android_id from `chan` where device.game = 'test' AND device.android_id = 'abc'";
    let msg = r#"{"magic":0,"device":{"game":"test","android_id":"abc"}}"#;
    assert_eq!(
        projected(sql, msg),
        json!({"magic":0,"device.android_id":"abc"})
    );
    assert!(!matches(
        sql,
        r#"{"magic":0,"device":{"game":"test","android_id":"abd"}}"#
    ));
}

#[test]
fn keywords_in_any_case_multiline_and_backticks() {
    let sql =
        "SeLeCt *\n  FrOm\t`my-chan.x`\r\n  wHeRe data.fps < 30\n  aNd\n  NOT data.x iS nUlL;";
    let query = q(sql);
    assert_eq!(query.channel(), "my-chan.x");
    assert!(matches(sql, r#"{"data":{"fps":1,"x":2}}"#));
    assert!(!matches(sql, r#"{"data":{"fps":1}}"#));
    assert_eq!(q("select * from chan:1").channel(), "chan:1");
    assert_eq!(q("select * from chan;").channel(), "chan");
}

#[test]
fn dotted_paths_index_nested_objects() {
    let sql = "SELECT * FROM c WHERE data.stats.p99 > 10.5";
    assert!(matches(sql, r#"{"data":{"stats":{"p99":11}}}"#));
    assert!(!matches(sql, r#"{"data":{"stats":{"p99":10}}}"#));
    assert!(!matches(sql, r#"{"data":{"stats":[{"p99":11}]}}"#));
    assert!(!matches(sql, r#"{"data":{"stats":"p99"}}"#));
    // Keywords are plain keys after a dot; backticks quote anything.
    assert!(matches(
        "SELECT * FROM c WHERE data.from = 1",
        r#"{"data":{"from":1}}"#
    ));
    assert!(matches(
        "SELECT * FROM c WHERE `select`.`a b` = 1",
        r#"{"select":{"a b":1}}"#
    ));
    assert!(matches(
        "SELECT * FROM c WHERE device.android-id = 'x'",
        r#"{"device":{"android-id":"x"}}"#
    ));
}

// ---- LIKE ----

fn like(pattern: &str, value: &str) -> bool {
    let sql = format!(
        "SELECT * FROM c WHERE v LIKE '{}'",
        pattern.replace('\'', "''")
    );
    matches(&sql, &json!({ "v": value }).to_string())
}

#[test]
fn like_edge_cases() {
    assert!(like("*iso", "werwerweriso"));
    assert!(like("%iso", "werwerweriso"));
    assert!(like("_iso", "miso"));
    assert!(like("?iso", "miso"));
    assert!(!like("_iso", "iso"));
    assert!(!like("_iso", "mmiso"));
    assert!(!like("%ISO", "wiso"));
    assert!(!like("wiso", "WISO"));
    assert!(like("wiso", "wiso"));
    assert!(!like("wis", "wiso"), "whole value, not a prefix");
    assert!(!like("iso", "wiso"), "whole value, not a suffix");
    assert!(like("%", ""));
    assert!(like("%", "anything"));
    assert!(like("%%%", "x"));
    assert!(like("a%%b", "ab"));
    assert!(like("a%b%c", "aXbYc"));
    assert!(like("a%b%c", "abc"));
    assert!(!like("a%b%c", "acb"));
    assert!(like("a%b", "abab"));
    assert!(!like("a%b", "aba"));
    assert!(like("%a_c%", "xxabcxx"));
    assert!(like("%a_c", "abcabc"));
    assert!(!like("%a_c", "abcab"));
    assert!(!like("ab%ba", "aba"));
    assert!(like("ab%ba", "abba"));
    assert!(like("", ""));
    assert!(!like("", "x"));
    assert!(like("_", "é"), "`_` is one character, not one byte");
    assert!(like("%é_", "ééé"));
    assert!(like("[abc]", "[abc]"), "brackets are literal");
    assert!(like("it's%", "it's here"));
    assert!(like("a.b", "a.b"));
    assert!(!like("a.b", "axb"));
    // Middle chunks with `_` at, around and past the 64-character automaton width.
    for n in [31, 32, 33, 40] {
        let pattern = format!("%{}%", "a_".repeat(n));
        assert!(like(&pattern, &format!("x{}y", "ab".repeat(n))), "{n}");
        assert!(like(&pattern, &format!("x{}y", "aé".repeat(n))), "{n}");
        assert!(
            !like(&pattern, &format!("x{}bby", "ab".repeat(n - 1))),
            "{n}"
        );
    }
}

#[test]
fn like_only_on_strings() {
    assert!(!matches("SELECT * FROM c WHERE v LIKE '%'", r#"{"v":1}"#));
    assert!(!matches(
        "SELECT * FROM c WHERE v LIKE '%'",
        r#"{"v":null}"#
    ));
    assert!(!matches("SELECT * FROM c WHERE v LIKE '%'", r#"{}"#));
    assert!(matches(
        "SELECT * FROM c WHERE v NOT LIKE 'a%'",
        r#"{"v":"ba"}"#
    ));
    assert!(!matches(
        "SELECT * FROM c WHERE v NOT LIKE 'a%'",
        r#"{"v":"ab"}"#
    ));
}

#[test]
fn like_pathological_pattern_is_fast() {
    // Exponential in a backtracking matcher; bounded here (this finishing at all is the test).
    let pattern = "%a".repeat(60) + "b";
    let value = "a".repeat(5000);
    assert!(!like(&pattern, &value));
    let pattern = "%_a".repeat(40) + "%b";
    assert!(!like(&pattern, &value));
    assert!(like(&pattern, &(value + "b")));
}

// ---- typed comparisons, missing fields ----

#[test]
fn typed_comparisons() {
    assert!(!matches("SELECT * FROM c WHERE v = '10'", r#"{"v":10}"#));
    assert!(matches("SELECT * FROM c WHERE v != '10'", r#"{"v":10}"#));
    assert!(!matches("SELECT * FROM c WHERE v = 10", r#"{"v":"10"}"#));
    assert!(matches("SELECT * FROM c WHERE v = 10", r#"{"v":10.0}"#));
    assert!(matches("SELECT * FROM c WHERE v = 10.0", r#"{"v":10}"#));
    assert!(!matches("SELECT * FROM c WHERE v > '1'", r#"{"v":10}"#));
    assert!(!matches("SELECT * FROM c WHERE v < 1", r#"{"v":"0"}"#));
    assert!(matches("SELECT * FROM c WHERE v > 'abc'", r#"{"v":"abd"}"#));
    assert!(matches("SELECT * FROM c WHERE v = 1", r#"{"v":1}"#));
    assert!(!matches("SELECT * FROM c WHERE v = true", r#"{"v":1}"#));
    assert!(!matches("SELECT * FROM c WHERE v = 1", r#"{"v":true}"#));
    assert!(!matches("SELECT * FROM c WHERE v = 'a'", r#"{"v":["a"]}"#));
    assert!(!matches(
        "SELECT * FROM c WHERE v = 'a'",
        r#"{"v":{"a":1}}"#
    ));
    assert!(matches(
        "SELECT * FROM c WHERE v != 'a'",
        r#"{"v":{"a":1}}"#
    ));
    assert!(matches(
        "SELECT * FROM c WHERE v = 18446744073709551615",
        r#"{"v":18446744073709551615}"#
    ));
    assert!(!matches(
        "SELECT * FROM c WHERE v = 18446744073709551614",
        r#"{"v":18446744073709551615}"#
    ));
    assert!(matches(
        "SELECT * FROM c WHERE v < -9223372036854775807",
        r#"{"v":-9223372036854775808}"#
    ));
    assert!(
        matches("SELECT * FROM c WHERE v = 'a\"b\\'", r#"{"v":"a\"b\\"}"#),
        "escaped message strings"
    );
    assert!(matches(
        "SELECT * FROM c WHERE v = 'é'",
        r#"{"v":"\u00e9"}"#
    ));
}

#[test]
fn missing_field_with_each_operator() {
    let msg = r#"{"other":1}"#;
    for (op, expect) in [
        ("= 1", false),
        ("!= 1", true),
        ("<> 1", true),
        ("< 1", false),
        ("<= 1", false),
        ("> 1", false),
        (">= 1", false),
        ("= 'x'", false),
        ("!= 'x'", true),
        ("LIKE '%'", false),
        ("IN (1, 'x')", false),
        ("IS NULL", true),
        ("IS NOT NULL", false),
    ] {
        assert_eq!(
            matches(&format!("SELECT * FROM c WHERE v {op}"), msg),
            expect,
            "missing v {op}"
        );
        assert_eq!(
            matches(&format!("SELECT * FROM c WHERE a.b.v {op}"), msg),
            expect,
            "missing a.b.v {op}"
        );
    }
    // The whole statement keeps working on the next message (no state is left behind).
    let query = q("SELECT * FROM c WHERE v > 1");
    assert_eq!(eval(&query, msg), Outcome::NoMatch);
    assert_eq!(eval(&query, r#"{"v":2}"#), Outcome::Forward);
}

#[test]
fn null_fields() {
    assert!(matches("SELECT * FROM c WHERE v IS NULL", r#"{"v":null}"#));
    assert!(!matches(
        "SELECT * FROM c WHERE v IS NOT NULL",
        r#"{"v":null}"#
    ));
    assert!(matches("SELECT * FROM c WHERE v IS NOT NULL", r#"{"v":0}"#));
    assert!(!matches(
        "SELECT * FROM c WHERE v IS NULL",
        r#"{"v":false}"#
    ));
    assert!(!matches("SELECT * FROM c WHERE v = 0", r#"{"v":null}"#));
    assert!(matches("SELECT * FROM c WHERE v != 0", r#"{"v":null}"#));
    assert!(matches(
        "SELECT * FROM c WHERE a.v IS NULL",
        r#"{"a":null}"#
    ));
}

// ---- messages that are not objects ----

#[test]
fn non_object_messages() {
    let query = q("SELECT * FROM c WHERE v = 1");
    for msg in [
        "1",
        "\"s\"",
        "null",
        "true",
        "[]",
        "[1]",
        "[[{\"v\":1}]]",
        "[\"v\"]",
    ] {
        assert_eq!(eval(&query, msg), Outcome::NoMatch, "{msg}");
    }
    for msg in [
        "",
        "{",
        "{\"v\":1",
        "{\"v\":1}}",
        "{\"v\":1} x",
        "{v:1}",
        "{\"v\":01}",
        "\u{0}",
        "{\"v\":1,}",
    ] {
        assert_eq!(query.eval_raw(msg), Outcome::NoMatch, "{msg:?}");
    }
    let deep = "[".repeat(200) + &"]".repeat(200);
    assert_eq!(query.eval_raw(&deep), Outcome::NoMatch);
    // A non-empty array stands for its first element, which SELECT * forwards.
    assert_eq!(
        eval(&query, r#"[{"v":1},{"v":2}]"#),
        Outcome::Projected(r#"{"v":1}"#.into())
    );
    assert_eq!(eval(&query, r#"[{"v":2},{"v":1}]"#), Outcome::NoMatch);
    assert_eq!(eval(&query, r#"[{"v":1}, garbage]"#), Outcome::NoMatch);
    assert_eq!(
        projected("SELECT v AS w FROM c WHERE v = 1", r#"[{"v":1},3]"#),
        json!({"w":1})
    );
    // Projection without WHERE: same rules; SELECT * without WHERE forwards anything, unread.
    assert_eq!(eval(&q("SELECT v FROM c"), "3"), Outcome::NoMatch);
    assert_eq!(q("SELECT * FROM c").eval_raw("not json"), Outcome::Forward);
}

#[test]
fn duplicate_keys_last_wins_like_serde_json() {
    let query = q("SELECT data FROM c WHERE data.fps = 1 OR data = 5");
    assert_eq!(
        query.eval_raw(r#"{"data":{"fps":1},"data":5}"#),
        Outcome::Projected(r#"{"data":5}"#.into())
    );
    assert_eq!(
        query.eval_raw(r#"{"data":{"fps":1},"data":{"x":2}}"#),
        Outcome::NoMatch
    );
    assert_eq!(
        query.eval_raw(r#"{"data":5,"data":{"fps":1}}"#),
        Outcome::Projected(r#"{"data":{"fps":1}}"#.into())
    );
}

// ---- projection ----

#[test]
fn projection_shape() {
    let msg = r#"{"a":{"b":false,"z":0,"e":"","n":null,"o":{"x":[1,{"y":2}]}},"c":1.5}"#;
    assert_eq!(
        projected("SELECT a.b, a.z, a.e AS empty, a.n, a.o, c FROM ch", msg),
        json!({"a.b":false,"a.z":0,"empty":"","a.n":null,"a.o":{"x":[1,{"y":2}]},"c":1.5})
    );
    // Keys keep SELECT order in the text.
    let Outcome::Projected(text) = eval(&q("SELECT c, a.b FROM ch"), msg) else {
        panic!()
    };
    assert_eq!(text, r#"{"c":1.5,"a.b":false}"#);
    // Missing: `{}` as the reference; under a null: null; under a non-object: `{}`.
    assert_eq!(
        projected("SELECT nope, a.nope, a.n.x, a.b.x, c.d.e FROM ch", msg),
        json!({"nope":{},"a.nope":{},"a.n.x":null,"a.b.x":{},"c.d.e":{}})
    );
    // A path and a path below it, both projected and compared.
    assert_eq!(
        projected(
            "SELECT a.o, a.o.x FROM ch WHERE a.o.x IS NOT NULL AND a.o IS NOT NULL",
            msg
        ),
        json!({"a.o":{"x":[1,{"y":2}]},"a.o.x":[1,{"y":2}]})
    );
    // Aliases in several forms; a repeated key keeps its first place and its last value.
    assert_eq!(
        projected("SELECT c AS `x y`, a.z as 'q' FROM ch", msg),
        json!({"x y":1.5,"q":0})
    );
    let Outcome::Projected(text) = eval(&q("SELECT c AS k, a.z, a.b AS k FROM ch"), msg) else {
        panic!()
    };
    assert_eq!(text, r#"{"k":false,"a.z":0}"#);
    // Keys needing escapes.
    assert_eq!(
        projected("SELECT `q\"\\` FROM ch", r#"{"q\"\\":1}"#),
        json!({"q\"\\":1})
    );
    // Values written from a parsed message: numbers at the extremes, strings needing escapes.
    for v in [
        json!(0),
        json!(-1),
        json!(i64::MIN),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(-0.5),
        json!("a\"b\\c\n\u{1}é"),
    ] {
        let msg = json!({ "v": v }).to_string();
        let Outcome::Projected(text) = q("SELECT v FROM c").eval_value(&json!({ "v": v })) else {
            panic!()
        };
        assert_eq!(
            serde_json::from_str::<Value>(&text).ok(),
            Some(json!({ "v": v })),
            "{text}"
        );
        assert_eq!(projected("SELECT v FROM c", &msg), json!({ "v": v }));
    }
    // Raw text is forwarded as written.
    assert_eq!(
        eval(&q("SELECT a FROM ch"), r#"{"a": {"x" : 1.50}}"#),
        Outcome::Projected(r#"{"a":{"x" : 1.50}}"#.into())
    );
}

// ---- extensions ----

#[test]
fn boolean_logic_and_precedence() {
    // OR is weaker than AND: a OR (b AND c).
    let sql = "SELECT * FROM c WHERE a = 1 OR b = 1 AND c = 1";
    assert!(matches(sql, r#"{"a":1,"b":0,"c":0}"#));
    assert!(matches(sql, r#"{"a":0,"b":1,"c":1}"#));
    assert!(!matches(sql, r#"{"a":0,"b":1,"c":0}"#));
    // Parentheses override: (a OR b) AND c.
    let sql = "SELECT * FROM c WHERE (a = 1 OR b = 1) AND c = 1";
    assert!(!matches(sql, r#"{"a":1,"b":0,"c":0}"#));
    assert!(matches(sql, r#"{"a":0,"b":1,"c":1}"#));
    // NOT binds tighter than AND and OR.
    let sql = "SELECT * FROM c WHERE NOT a = 1 AND b = 1";
    assert!(matches(sql, r#"{"a":0,"b":1}"#));
    assert!(!matches(sql, r#"{"a":1,"b":1}"#));
    let sql = "SELECT * FROM c WHERE NOT (a = 1 AND b = 1)";
    assert!(matches(sql, r#"{"a":1,"b":0}"#));
    assert!(!matches(sql, r#"{"a":1,"b":1}"#));
    assert!(matches("SELECT * FROM c WHERE NOT NOT a = 1", r#"{"a":1}"#));
    assert!(matches("SELECT * FROM c WHERE ((((a = 1))))", r#"{"a":1}"#));
    let sql = "SELECT * FROM c WHERE a = 1 AND (b = 1 OR (c = 1 AND NOT d = 1)) OR e = 1";
    assert!(matches(sql, r#"{"a":1,"c":1}"#));
    assert!(!matches(sql, r#"{"a":1,"c":1,"d":1}"#));
    assert!(matches(sql, r#"{"e":1}"#));
    assert!(matches(sql, r#"{"a":1,"b":1,"d":1}"#));
}

#[test]
fn comparison_extensions() {
    let m = r#"{"v":10,"f":-2.5,"s":"b"}"#;
    assert!(matches("SELECT * FROM c WHERE v >= 10", m));
    assert!(!matches("SELECT * FROM c WHERE v >= 10.5", m));
    assert!(matches("SELECT * FROM c WHERE v <= 10", m));
    assert!(!matches("SELECT * FROM c WHERE v <= 9.99", m));
    assert!(matches("SELECT * FROM c WHERE v <> 11", m));
    assert!(!matches("SELECT * FROM c WHERE v <> 10", m));
    assert!(matches("SELECT * FROM c WHERE v == 10", m));
    assert!(matches("SELECT * FROM c WHERE f < -2", m));
    assert!(matches("SELECT * FROM c WHERE f = -2.5", m));
    assert!(matches(
        "SELECT * FROM c WHERE f > -25e-1 OR f = -0.25E1",
        m
    ));
    assert!(matches("SELECT * FROM c WHERE v > 9.5 AND v < 1e2", m));
    assert!(
        matches("SELECT * FROM c WHERE v>9 AND f<0 AND s>='b'", m),
        "no spaces needed"
    );
    assert!(matches("SELECT * FROM c WHERE s IN ('a', 'b')", m));
    assert!(!matches("SELECT * FROM c WHERE s IN ('a', 'c')", m));
    assert!(matches(
        "SELECT * FROM c WHERE v IN (1, 10.0, 'x', true)",
        m
    ));
    assert!(!matches("SELECT * FROM c WHERE v IN ('10')", m));
    assert!(matches("SELECT * FROM c WHERE v NOT IN (1, 2)", m));
    assert!(!matches("SELECT * FROM c WHERE v NOT IN (10)", m));
    assert!(matches("SELECT * FROM c WHERE missing NOT IN (10)", m));
}

// ---- errors ----

#[test]
fn parse_errors_point_at_the_token() {
    let cases: &[(&str, usize, &str)] = &[
        ("", 0, ""),
        ("DELETE FROM x", 0, "DELETE"),
        ("SELECT * WHERE a = 1", 9, "WHERE"),
        ("SELECT a b FROM c", 9, "b"),
        ("SELECT * FROM", 13, ""),
        ("SELECT * FROM c WHERE", 21, ""),
        ("SELECT * FROM c WHERE a", 23, ""),
        ("SELECT * FROM c WHERE a == ", 27, ""),
        ("SELECT * FROM c WHERE a = 'x", 26, "'x"),
        ("SELECT * FROM c WHERE a ~ 1", 24, "~"),
        ("SELECT * FROM c WHERE a = 1 AND", 31, ""),
        ("SELECT * FROM c WHERE (a = 1", 28, ""),
        ("SELECT * FROM c WHERE a = 1)", 27, ")"),
        ("SELECT * FROM c WHERE a LIKE 5", 29, "5"),
        ("SELECT * FROM c WHERE a = NULL", 26, "NULL"),
        ("SELECT * FROM c WHERE a IS 5", 27, "5"),
        ("SELECT * FROM c WHERE a IN ()", 28, ")"),
        ("SELECT * FROM c WHERE a = 12abc", 26, "12abc"),
        ("SELECT * FROM c WHERE a = 1.2.3", 26, "1.2.3"),
        ("SELECT * FROM c WHERE from = 1", 22, "from"),
        ("SELECT * FROM c WHERE a. = 1", 25, "="),
        ("SELECT * FROM `c", 14, "`c"),
        ("SELECT * FROM ``", 14, "``"),
        ("SELECT a, FROM c", 10, "FROM"),
        ("SELECT * FROM c extra", 16, "extra"),
        ("SELECT * FROM c WHERE a = 1 b = 2", 28, "b"),
        ("SELECT * FROM c WHERE a != 1 AND b ! 2", 35, "!"),
        ("SELECT * FROM c WHERE é = 'é' AND ü # 1", 39, "#"),
    ];
    for &(sql, offset, token) in cases {
        let e = err(sql);
        assert_eq!((e.offset(), e.token()), (offset, token), "{sql:?}: {e}");
        assert!(e.to_string().contains(&format!("offset {offset}")), "{e}");
        if !token.is_empty() {
            assert!(e.to_string().contains(token), "{e}");
        }
    }
    assert_eq!(
        *err("SELECT * FROM c WHERE a = NULL").kind(),
        ParseErrorKind::NullComparison
    );
    let e = err("SELECT * FROM c WHERE a ~ 1");
    assert_eq!(e.to_string(), "unexpected character at offset 24 near `~`");
    let e = err("SELECT * FROM c WHERE a");
    assert!(e.to_string().contains("expected an operator"), "{e}");
    assert!(e.to_string().contains("end of statement"), "{e}");
    let _: &dyn std::error::Error = &e;
}

#[test]
fn limits_are_clean_errors() {
    let deep = format!(
        "SELECT * FROM c WHERE {}a = 1{}",
        "(".repeat(33),
        ")".repeat(33)
    );
    assert_eq!(*err(&deep).kind(), ParseErrorKind::TooDeep { max: 32 });
    assert_eq!(err(&deep).offset(), "SELECT * FROM c WHERE ".len() + 32);
    let ok = format!(
        "SELECT * FROM c WHERE {}a = 1{}",
        "(".repeat(32),
        ")".repeat(32)
    );
    assert!(matches(&ok, r#"{"a":1}"#));
    let nots = format!("SELECT * FROM c WHERE {}a = 1", "NOT ".repeat(40));
    assert_eq!(*err(&nots).kind(), ParseErrorKind::TooDeep { max: 32 });
    // Way past any stack: still a clean error (with the length limit lifted).
    let huge = Limits {
        max_statement_len: usize::MAX,
        ..Limits::default()
    };
    let abyss = format!("SELECT * FROM c WHERE {}a = 1", "(".repeat(1_000_000));
    let e = Query::parse_with_limits(&abyss, &huge).expect_err("too deep");
    assert_eq!(*e.kind(), ParseErrorKind::TooDeep { max: 32 });
    assert!(matches!(
        Query::parse(&abyss).map_err(|e| e.kind().clone()),
        Err(ParseErrorKind::TooLong { .. })
    ));

    let limits = Limits::default();
    let list = (0..=limits.max_in_list)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let e = err(&format!("SELECT * FROM c WHERE a IN ({list})"));
    assert_eq!(
        *e.kind(),
        ParseErrorKind::InListTooLong {
            max: limits.max_in_list
        }
    );
    let fields = (0..=limits.max_fields)
        .map(|i| format!("f{i}"))
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(
        *err(&format!("SELECT {fields} FROM c")).kind(),
        ParseErrorKind::TooManyFields { max: 64 }
    );
    let pattern = "x".repeat(limits.max_like_pattern_len + 1);
    assert_eq!(
        *err(&format!("SELECT * FROM c WHERE a LIKE '{pattern}'")).kind(),
        ParseErrorKind::PatternTooLong {
            max: limits.max_like_pattern_len
        }
    );
    let path = vec!["p"; limits.max_path_segments + 1].join(".");
    assert_eq!(
        *err(&format!("SELECT {path} FROM c")).kind(),
        ParseErrorKind::PathTooLong { max: 16 }
    );
    let conds = vec!["a = 1"; limits.max_conditions + 1].join(" OR ");
    assert_eq!(
        *err(&format!("SELECT * FROM c WHERE {conds}")).kind(),
        ParseErrorKind::TooManyConditions { max: 128 }
    );
    let long = format!(
        "SELECT * FROM c WHERE a = '{}'",
        "x".repeat(limits.max_statement_len)
    );
    assert!(matches!(err(&long).kind(), ParseErrorKind::TooLong { .. }));
    // Long flat chains do not nest: a chain at the condition limit evaluates fine.
    let conds = vec!["a = 2"; limits.max_conditions - 1].join(" OR ") + " OR a = 1";
    assert!(matches(
        &format!("SELECT * FROM c WHERE {conds}"),
        r#"{"a":1}"#
    ));
}

#[test]
fn many_paths_use_heap_slots() {
    let fields = (0..40)
        .map(|i| format!("k{i}.v"))
        .collect::<Vec<_>>()
        .join(", ");
    let msg = json!({"k0": {"v": 0}, "k39": {"v": "x"}}).to_string();
    let out = projected(&format!("SELECT {fields} FROM c WHERE k39.v = 'x'"), &msg);
    assert_eq!(out["k0.v"], json!(0));
    assert_eq!(out["k39.v"], json!("x"));
    assert_eq!(out["k5.v"], json!({}));
}

#[test]
fn short_eq_checks_every_byte() {
    for n in 0..40 {
        let a: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
        assert!(paths::short_eq(&a, &a.clone()), "{n}");
        for i in 0..n {
            let mut b = a.clone();
            b[i] ^= 1;
            assert!(!paths::short_eq(&a, &b), "{n} {i}");
        }
        assert!(!paths::short_eq(&a, &a[..n.saturating_sub(1)]) || n == 0);
    }
}

#[test]
fn eval_value_into_reuses_the_buffer() {
    let query = q("SELECT data.fps, device.game AS g, x.y FROM c \
                   WHERE data.fps < 60 AND device.os_name = 'iOS' AND device.game LIKE 'w%'");
    let hit = json!({"data": {"fps": 30}, "device": {"os_name": "iOS", "game": "wiso"}, "x": null});
    let miss = json!({"data": {"fps": 75}, "device": {"os_name": "iOS", "game": "wiso"}});
    let mut out = String::new();
    for _ in 0..3 {
        assert_eq!(query.eval_value_into(&hit, &mut out), Match::Projected);
        assert_eq!(out, r#"{"data.fps":30,"g":"wiso","x.y":null}"#);
        assert_eq!(query.eval_value_into(&miss, &mut out), Match::NoMatch);
        assert_eq!(out, "");
    }
    // SELECT * forwards; on an array message the first element is what is sent.
    let star = q("SELECT * FROM c WHERE a.b = 1");
    assert_eq!(
        star.eval_value_into(&json!({"a": {"b": 1}}), &mut out),
        Match::Forward
    );
    assert_eq!(out, "");
    assert_eq!(
        star.eval_value_into(&json!([{"a": {"b": 1}}, 2]), &mut out),
        Match::Projected
    );
    assert_eq!(out, r#"{"a":{"b":1}}"#);
    assert_into_agrees(&star, &json!([{"a": {"b": 1, "c": "\u{1}\"é"}}]));
    // Big integers, floats and escapes in projected values.
    let p = q("SELECT a, b, c, d FROM c");
    let v = json!({"a": u64::MAX, "b": -1.5e300, "c": "q\"\\\n", "d": [1, {"e": null}]});
    assert_eq!(p.eval_value_into(&v, &mut out), Match::Projected);
    assert_eq!(serde_json::from_str::<Value>(&out).ok(), Some(v));
    assert_into_agrees(&p, &json!({"a": i64::MIN}));
}

#[test]
fn query_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Query>();
    check::<ParseError>();
}

// ---- properties ----

fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop::sample::select(vec!["a", "b", "c", "data", "fps", "x y", "é", "q\"", "n"])
        .prop_map(String::from);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-20i64..20).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::num::f64::NORMAL.prop_map(Value::from),
        (-40i32..40).prop_map(|i| Value::from(f64::from(i) / 4.0)),
        prop::sample::select(vec!["", "a", "b", "ab", "wiso", "10", "é", "a\"\\\n", "%_"])
            .prop_map(Value::from),
        "\\PC{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_path() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!["a", "b", "c", "data", "fps", "`x y`", "`é`", "n"]),
        1..4,
    )
    .prop_map(|s| s.join("."))
}

fn arb_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        (-20i64..20).prop_map(|i| i.to_string()),
        (-40i32..40).prop_map(|i| format!("{}", f64::from(i) / 4.0)),
        prop::sample::select(vec![
            "''", "'a'", "'b'", "'ab'", "'10'", "'é'", "true", "false", "1e2", "-0.0"
        ])
        .prop_map(String::from),
    ]
}

fn arb_cond() -> impl Strategy<Value = String> {
    let op = prop::sample::select(vec!["=", "!=", "<>", "<", "<=", ">", ">="]);
    let pattern = prop::sample::select(vec![
        "'%'", "'a%'", "'%b'", "'_'", "'a_'", "'*'", "'?b'", "''", "'%a%b%'",
    ]);
    prop_oneof![
        (arb_path(), op, arb_literal()).prop_map(|(p, o, l)| format!("{p} {o} {l}")),
        (arb_path(), any::<bool>(), pattern)
            .prop_map(|(p, n, l)| format!("{p} {}LIKE {l}", if n { "NOT " } else { "" })),
        (arb_path(), prop::collection::vec(arb_literal(), 1..4))
            .prop_map(|(p, l)| format!("{p} IN ({})", l.join(", "))),
        (arb_path(), any::<bool>())
            .prop_map(|(p, n)| format!("{p} IS {}NULL", if n { "NOT " } else { "" })),
    ]
}

fn arb_where() -> impl Strategy<Value = String> {
    arb_cond().prop_recursive(4, 16, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} AND {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} OR {b}")),
            inner.clone().prop_map(|a| format!("NOT {a}")),
            inner.prop_map(|a| format!("({a})")),
        ]
    })
}

fn arb_statement() -> impl Strategy<Value = String> {
    let select = prop_oneof![
        Just("*".to_string()),
        prop::collection::vec((arb_path(), any::<bool>()), 1..4).prop_map(|fs| {
            fs.iter()
                .enumerate()
                .map(|(i, (p, alias))| {
                    if *alias {
                        format!("{p} AS k{i}")
                    } else {
                        p.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        }),
    ];
    (select, prop::option::of(arb_where())).prop_map(|(s, w)| match w {
        Some(w) => format!("SELECT {s} FROM `chan` WHERE {w}"),
        None => format!("SELECT {s} FROM `chan`"),
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn generated_statements_parse_and_both_evaluators_agree(sql in arb_statement(), msg in arb_json()) {
        let query = Query::parse(&sql).map_err(|e| TestCaseError::fail(format!("{sql}: {e}")))?;
        let val = query.eval_value(&msg);
        assert_into_agrees(&query, &msg);
        for text in [msg.to_string(), serde_json::to_string_pretty(&msg).unwrap_or_default()] {
            assert_same(&query.eval_raw(&text), &val, &format!("{sql} on {text}"));
        }
    }

    #[test]
    fn random_text_never_panics(sql in "\\PC{0,80}", msg in "\\PC{0,40}") {
        if let Ok(query) = Query::parse(&sql) {
            let _ = query.eval_raw(&msg);
        }
    }

    #[test]
    fn mutated_statements_never_panic(sql in arb_statement(), cut in any::<prop::sample::Index>(),
                                      junk in "[ ()'`.,=<>!*%_a-z0-9-]{0,4}", msg in arb_json()) {
        let at = cut.index(sql.len() + 1);
        let at = (0..=at).rev().find(|&i| sql.is_char_boundary(i)).unwrap_or(0);
        let mutated = format!("{}{junk}{}", &sql[..at], &sql[at..]);
        match Query::parse(&mutated) {
            Ok(query) => {
                let val = query.eval_value(&msg);
                assert_same(&query.eval_raw(&msg.to_string()), &val, &mutated);
            }
            Err(e) => prop_assert!(e.offset() <= mutated.len(), "{e}"),
        }
    }

    #[test]
    fn like_agrees_with_a_reference_matcher(pattern in "[abé%_]{0,10}", value in "[abé]{0,12}") {
        prop_assert_eq!(like::Like::new(&pattern).matches(&value), reference_like(&pattern, &value));
    }
}

/// Plain recursive matcher (exponential, fine for tiny inputs) as the oracle for LIKE.
fn reference_like(p: &str, s: &str) -> bool {
    fn go(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('%', rest)) => (0..=s.len()).any(|i| go(rest, &s[i..])),
            Some(('_', rest)) => !s.is_empty() && go(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && go(rest, &s[1..]),
        }
    }
    go(
        &p.chars().collect::<Vec<_>>(),
        &s.chars().collect::<Vec<_>>(),
    )
}

/// The agreement property is only worth something if generated cases do match and project.
#[test]
fn generators_reach_matches_and_projections() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut forwarded, mut projected_n, mut total) = (0, 0, 0);
    for _ in 0..2000 {
        let sql = arb_statement().new_tree(&mut runner).map(|t| t.current());
        let msg = arb_json().new_tree(&mut runner).map(|t| t.current());
        let (Ok(sql), Ok(msg)) = (sql, msg) else {
            continue;
        };
        let Ok(query) = Query::parse(&sql) else {
            continue;
        };
        total += 1;
        match query.eval_raw(&msg.to_string()) {
            Outcome::Forward => forwarded += 1,
            Outcome::Projected(_) => projected_n += 1,
            Outcome::NoMatch => {}
        }
    }
    assert!(total > 1900, "{total}");
    assert!(
        forwarded > 100 && projected_n > 100,
        "forwarded {forwarded}, projected {projected_n} of {total}"
    );
}
