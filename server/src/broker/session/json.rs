//! JSON helpers of the session: string literals, positions, ids, bodies, nesting depth.

use cobra_wire::Position;
use cobra_wire::pdu::error_code;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{MAX_MESSAGE_DEPTH, Refusal};

/// Whether `json` nests arrays/objects deeper than `max` (a byte scan; strings skipped).
pub(super) fn nests_deeper_than(json: &str, max: usize) -> bool {
    // Fast path (every publish goes through here): with at most `max` opening brackets in all,
    // strings included, nothing can nest deeper. memchr's SIMD search skips the runs without
    // brackets whatever the build's opt-level (a plain byte loop built with opt-level "s" does
    // not vectorize, and cost about a sixth of the server's CPU per publish).
    let opening = memchr::memchr2_iter(b'[', b'{', json.as_bytes()).count();
    if opening <= max {
        return false;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json.as_bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Refuses a message no standard JSON parser would read back.
pub(super) fn check_message(message: &RawValue) -> Result<(), Refusal> {
    if nests_deeper_than(message.get(), MAX_MESSAGE_DEPTH) {
        return Err(Refusal::new(
            error_code::INVALID_MESSAGE,
            format!("the message nests arrays/objects deeper than {MAX_MESSAGE_DEPTH} levels"),
        ));
    }
    Ok(())
}

pub(super) fn parse_body<'a, T: Deserialize<'a>>(body: Option<&'a RawValue>) -> Result<T, Refusal> {
    let text = body.map_or("{}", RawValue::get);
    serde_json::from_str(text).map_err(|e| {
        Refusal::new(
            error_code::INVALID_BODY,
            format!("the body does not have the expected shape: {e}"),
        )
    })
}

/// Appends `s` as a JSON string literal: cobra-wire's writer, the one the SDK uses too.
pub(super) use cobra_wire::pdu::push_json_str;

/// Appends the head of a PDU written by hand, up to its id: `{"action":"<action>","id":`.
pub(super) fn push_action(out: &mut String, action: &str) {
    out.push_str(r#"{"action":""#);
    out.push_str(action);
    out.push_str(r#"","id":"#);
}

/// Whether a raw PDU id is a scalar any JSON parser reads back: it is echoed verbatim in the
/// answer, so never a structure (which could nest deeper than the client's parser accepts) or
/// a number out of the range of a double.
pub(super) fn is_scalar_id(id: &str) -> bool {
    id.starts_with('"')
        || serde_json::from_str::<serde_json::Value>(id)
            .is_ok_and(|v| !v.is_array() && !v.is_object())
}

/// Appends `p` as `<ms>-<seq>` (its `Display` form) without `fmt`.
pub(super) fn push_position(out: &mut String, p: Position) {
    let mut digits = itoa::Buffer::new();
    out.push_str(digits.format(p.ms));
    out.push('-');
    out.push_str(digits.format(p.seq));
}

/// `s` as a JSON string literal.
pub(super) fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_json_str(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped_like_serde_json() {
        for s in [
            "plain",
            "q\"uote",
            "back\\slash",
            "nl\n cr\r tab\t",
            "\u{1}\u{8}\u{c}\u{1f}",
            "é ü 日本",
            "",
        ] {
            let mut out = String::new();
            push_json_str(&mut out, s);
            assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s, "{out}");
            assert_eq!(out, serde_json::to_string(s).unwrap());
        }
    }

    #[test]
    fn nesting_depth_is_checked_past_the_fast_path() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(!nests_deeper_than(
            &deep(MAX_MESSAGE_DEPTH),
            MAX_MESSAGE_DEPTH
        ));
        assert!(nests_deeper_than(
            &deep(MAX_MESSAGE_DEPTH + 1),
            MAX_MESSAGE_DEPTH
        ));
        // Many brackets, none deep: past the fast path, the exact scan says no.
        let wide = format!("[{}]", vec!["[]"; 500].join(","));
        assert!(!nests_deeper_than(&wide, MAX_MESSAGE_DEPTH));
        // Brackets inside strings do not nest.
        let quoted = format!("[\"{}\"]", "[".repeat(1000));
        assert!(!nests_deeper_than(&quoted, MAX_MESSAGE_DEPTH));
    }
}
