//! Recursive-descent parser: statement text to a compiled [`Statement`].
//!
//! ```text
//! statement := SELECT fields FROM channel [WHERE or] [clause*] [;]
//! fields    := '*' | item (',' item)*
//! item      := (path | aggregate) [AS name]
//! aggregate := COUNT '(' ('*' | [DISTINCT] path) ')' | (SUM | AVG | MIN | MAX) '(' path ')'
//!            | PERCENTILE '(' path ',' number ')' | HISTOGRAM '(' path (',' number)+ ')'
//! clause    := GROUP BY path (',' path)*
//!            | WINDOW (TUMBLING '(' duration ')' | HOPPING '(' SIZE duration ',' ADVANCE BY duration ')')
//!              [ON ARRIVAL]
//!            | EMIT (FINAL | CHANGES [EVERY duration])
//!            | GRACE duration
//! duration  := integer (MILLISECOND[S] | MS | SECOND[S] | MINUTE[S] | HOUR[S])
//! path      := name ('.' name)*            name: word or `backticks`
//! or        := and (OR and)*
//! and       := not (AND not)*
//! not       := NOT not | '(' or ')' | cond
//! cond      := path ( cmpop literal | [NOT] LIKE 'pattern' | [NOT] IN '(' literal (',' literal)* ')'
//!                   | IS [NOT] NULL )
//! literal   := 'string' | number | TRUE | FALSE
//! ```
//!
//! A statement with an aggregate or any of the clauses is an aggregate statement: it needs a WINDOW,
//! and its plain SELECT fields must be GROUP BY fields. The clause words are not reserved, so plain
//! statements parse exactly as before.

use super::aggregate::spec::{Agg, AggSpec, Column, Emit, Func, OutputKey, WindowSpec};
use super::error::{ParseError, ParseErrorKind as E};
use super::expr::{Expr, Test};
use super::lexer::{KEYWORDS, Kind, Lexer, Token, unquote_name, unquote_string};
use super::like::Like;
use super::limits::Limits;
use super::paths::Paths;
use super::value::{Literal, Num};

/// One SELECT-list entry: the output key and the node it reads.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub key: String,
    pub node: usize,
}

/// A parsed statement.
#[derive(Debug, Clone)]
pub(crate) struct Statement {
    pub channel: String,
    /// `None` for `SELECT *`.
    pub fields: Option<Vec<Field>>,
    pub filter: Option<Expr>,
    pub paths: Paths,
    /// `Some` for an aggregate statement (then `fields` is `None`).
    pub aggregate: Option<AggSpec>,
}

/// One SELECT-list entry before we know whether the statement aggregates.
struct Item<'a> {
    key: String,
    at: Token<'a>,
    what: ItemKind,
}

enum ItemKind {
    /// A plain field: its trie node.
    Path(usize),
    Agg(Agg),
}

/// The clauses after WHERE, each at most once.
#[derive(Default)]
struct Clauses<'a> {
    group_by: Option<(Token<'a>, Vec<usize>)>,
    window: Option<(WindowSpec, bool)>,
    emit: Option<Emit>,
    grace_ms: Option<i64>,
}

impl Clauses<'_> {
    fn any(&self) -> bool {
        self.group_by.is_some()
            || self.window.is_some()
            || self.emit.is_some()
            || self.grace_ms.is_some()
    }
}

struct Parser<'a, 'l> {
    lx: Lexer<'a>,
    peeked: Option<Token<'a>>,
    limits: &'l Limits,
    paths: Paths,
    depth: usize,
    conditions: usize,
}

/// Parse `sql` under `limits`.
pub(crate) fn parse(sql: &str, limits: &Limits) -> Result<Statement, ParseError> {
    if sql.len() > limits.max_statement_len {
        let kind = E::TooLong {
            len: sql.len(),
            max: limits.max_statement_len,
        };
        return Err(ParseError::new(kind, limits.max_statement_len, ""));
    }
    let mut p = Parser {
        lx: Lexer::new(sql),
        peeked: None,
        limits,
        paths: Paths::new(),
        depth: 0,
        conditions: 0,
    };
    p.statement()
}

impl<'a> Parser<'a, '_> {
    fn peek(&mut self) -> Result<Token<'a>, ParseError> {
        match self.peeked {
            Some(t) => Ok(t),
            None => {
                let t = self.lx.next_token()?;
                self.peeked = Some(t);
                Ok(t)
            }
        }
    }

    fn bump(&mut self) -> Result<Token<'a>, ParseError> {
        let t = self.peek()?;
        self.peeked = None;
        Ok(t)
    }

    fn expect_kw(&mut self, kw: &str, what: &'static str) -> Result<Token<'a>, ParseError> {
        let t = self.bump()?;
        if t.is_kw(kw) {
            Ok(t)
        } else {
            Err(t.error(E::Expected(what)))
        }
    }

    fn expect(&mut self, kind: Kind, what: &'static str) -> Result<Token<'a>, ParseError> {
        let t = self.bump()?;
        if t.kind == kind {
            Ok(t)
        } else {
            Err(t.error(E::Expected(what)))
        }
    }

    fn statement(&mut self) -> Result<Statement, ParseError> {
        self.expect_kw("SELECT", "SELECT")?;
        let select = self.peek()?;
        let items = self.fields()?;
        let from = self.bump()?;
        if !from.is_kw("FROM") {
            return Err(from.error(E::Expected(if items.is_some() {
                "`,`, AS or FROM"
            } else {
                "FROM"
            })));
        }
        let chan = self.lx.channel()?;
        let channel = match chan.kind {
            Kind::Quoted => unquote_name(chan.text).to_owned(),
            Kind::Word => chan.text.to_owned(),
            _ => return Err(chan.error(E::Expected("a channel name"))),
        };
        let filter = if self.peek()?.is_kw("WHERE") {
            self.bump()?;
            Some(self.or()?)
        } else {
            None
        };
        let clauses = self.clauses()?;
        if self.peek()?.kind == Kind::Semicolon {
            self.bump()?;
        }
        let end = self.bump()?;
        if end.kind != Kind::Eof {
            let what = if filter.is_some() {
                "AND, OR, GROUP BY, WINDOW, EMIT, GRACE or end of statement"
            } else {
                "WHERE, GROUP BY, WINDOW, EMIT, GRACE or end of statement"
            };
            return Err(end.error(E::Expected(what)));
        }
        let aggregates = items
            .iter()
            .flatten()
            .any(|i| matches!(i.what, ItemKind::Agg(_)));
        let (fields, aggregate) = if aggregates || clauses.any() {
            (None, Some(self.aggregate(select, items, clauses, end)?))
        } else {
            let fields = items.map(|items| {
                items
                    .into_iter()
                    .filter_map(|i| match i.what {
                        ItemKind::Path(node) => Some(Field { key: i.key, node }),
                        ItemKind::Agg(_) => None,
                    })
                    .collect()
            });
            (fields, None)
        };
        let paths = std::mem::replace(&mut self.paths, Paths::new());
        Ok(Statement {
            channel,
            fields,
            filter,
            paths,
            aggregate,
        })
    }

    /// Check an aggregate statement and compile its [`AggSpec`].
    fn aggregate(
        &mut self,
        select: Token<'a>,
        items: Option<Vec<Item<'a>>>,
        clauses: Clauses<'a>,
        end: Token<'a>,
    ) -> Result<AggSpec, ParseError> {
        let Some(items) = items else {
            return Err(select.error(E::Aggregate(
                "SELECT * cannot be aggregated: list the GROUP BY fields and the aggregates",
            )));
        };
        let Some((window, on_arrival)) = clauses.window else {
            return Err(end.error(E::Aggregate(
                "an aggregate query needs WINDOW TUMBLING (...) or WINDOW HOPPING (...)",
            )));
        };
        let group_by = clauses.group_by.map(|(_, g)| g).unwrap_or_default();
        let mut aggs = Vec::new();
        let mut output = Vec::new();
        for item in items {
            let column = match item.what {
                ItemKind::Path(node) => match group_by.iter().position(|&g| g == node) {
                    Some(i) => Column::Group(i),
                    None => {
                        return Err(item.at.error(E::Aggregate(
                            "a selected field must be in GROUP BY or inside an aggregate",
                        )));
                    }
                },
                ItemKind::Agg(agg) => {
                    aggs.push(agg);
                    Column::Agg(aggs.len() - 1)
                }
            };
            output.push(OutputKey {
                key: item.key,
                column,
            });
        }
        let timestamp_node = self.paths.insert(&["timestamp".to_owned()]);
        self.paths.nodes[timestamp_node].needs_scalar = true;
        Ok(AggSpec {
            group_by,
            aggs,
            output,
            window,
            on_arrival,
            emit: clauses.emit.unwrap_or(Emit::Final),
            grace_ms: clauses.grace_ms.unwrap_or(0),
            timestamp_node,
        })
    }

    /// GROUP BY, WINDOW, EMIT and GRACE, in any order, each at most once.
    fn clauses(&mut self) -> Result<Clauses<'a>, ParseError> {
        let mut c = Clauses::default();
        loop {
            let t = self.peek()?;
            let twice = t.error(E::Aggregate(
                "GROUP BY, WINDOW, EMIT and GRACE may each appear once",
            ));
            if t.is_kw("GROUP") {
                self.bump()?;
                self.expect_kw("BY", "BY after GROUP")?;
                let mut nodes = Vec::new();
                loop {
                    let at = self.peek()?;
                    if nodes.len() == self.limits.max_group_by {
                        return Err(at.error(E::OutOfRange {
                            what: "the number of GROUP BY fields",
                            min: "1".into(),
                            max: self.limits.max_group_by.to_string(),
                        }));
                    }
                    let (segments, _) = self.path()?;
                    let node = self.paths.insert(&segments);
                    self.paths.nodes[node].needs_raw = true;
                    if !nodes.contains(&node) {
                        nodes.push(node);
                    }
                    if self.peek()?.kind != Kind::Comma {
                        break;
                    }
                    self.bump()?;
                }
                if c.group_by.replace((t, nodes)).is_some() {
                    return Err(twice);
                }
            } else if t.is_kw("WINDOW") {
                self.bump()?;
                let kind = self.bump()?;
                let window = if kind.is_kw("TUMBLING") {
                    self.expect(Kind::LParen, "`(` after TUMBLING")?;
                    let size = self.duration("the window size")?;
                    self.expect(Kind::RParen, "`)`")?;
                    WindowSpec {
                        size_ms: size,
                        advance_ms: size,
                    }
                } else if kind.is_kw("HOPPING") {
                    self.expect(Kind::LParen, "`(` after HOPPING")?;
                    self.expect_kw("SIZE", "SIZE")?;
                    let size = self.duration("the window size")?;
                    self.expect(Kind::Comma, "`,`")?;
                    self.expect_kw("ADVANCE", "ADVANCE BY")?;
                    self.expect_kw("BY", "BY after ADVANCE")?;
                    let at = self.peek()?;
                    let advance = self.duration("the window advance")?;
                    let max = self.limits.max_windows_per_event;
                    if advance > size
                        || size / advance > max
                        || (size % advance != 0 && size / advance >= max)
                    {
                        return Err(at.error(E::OutOfRange {
                            what: "ADVANCE BY",
                            min: format!("SIZE / {max}"),
                            max: "SIZE".into(),
                        }));
                    }
                    self.expect(Kind::RParen, "`)`")?;
                    WindowSpec {
                        size_ms: size,
                        advance_ms: advance,
                    }
                } else {
                    return Err(kind.error(E::Expected("TUMBLING or HOPPING after WINDOW")));
                };
                let on_arrival = if self.peek()?.is_kw("ON") {
                    self.bump()?;
                    self.expect_kw("ARRIVAL", "ARRIVAL after ON")?;
                    true
                } else {
                    false
                };
                if c.window.replace((window, on_arrival)).is_some() {
                    return Err(twice);
                }
            } else if t.is_kw("EMIT") {
                self.bump()?;
                let mode = self.bump()?;
                let emit = if mode.is_kw("FINAL") {
                    Emit::Final
                } else if mode.is_kw("CHANGES") {
                    let every_ms = if self.peek()?.is_kw("EVERY") {
                        self.bump()?;
                        let at = self.peek()?;
                        let every = self.duration("EMIT CHANGES EVERY")?;
                        if every < self.limits.min_emit_every_ms {
                            return Err(at.error(E::OutOfRange {
                                what: "EMIT CHANGES EVERY",
                                min: format!("{} MILLISECONDS", self.limits.min_emit_every_ms),
                                max: format!("{} MILLISECONDS", self.limits.max_window_ms),
                            }));
                        }
                        Some(every)
                    } else {
                        None
                    };
                    Emit::Changes { every_ms }
                } else {
                    return Err(mode.error(E::Expected("FINAL or CHANGES after EMIT")));
                };
                if c.emit.replace(emit).is_some() {
                    return Err(twice);
                }
            } else if t.is_kw("GRACE") {
                self.bump()?;
                let grace = self.duration_or_zero("GRACE")?;
                if c.grace_ms.replace(grace).is_some() {
                    return Err(twice);
                }
            } else {
                return Ok(c);
            }
        }
    }

    /// A positive duration in milliseconds, at most [`Limits::max_window_ms`].
    fn duration(&mut self, what: &'static str) -> Result<i64, ParseError> {
        let at = self.peek()?;
        let ms = self.duration_or_zero(what)?;
        if ms == 0 {
            return Err(at.error(E::OutOfRange {
                what,
                min: "1 MILLISECOND".into(),
                max: format!("{} MILLISECONDS", self.limits.max_window_ms),
            }));
        }
        Ok(ms)
    }

    fn duration_or_zero(&mut self, what: &'static str) -> Result<i64, ParseError> {
        let n = self.bump()?;
        let unit = self.bump()?;
        let range = |at: Token<'a>, max: i64| {
            at.error(E::OutOfRange {
                what,
                min: "0".into(),
                max: format!("{max} MILLISECONDS"),
            })
        };
        let count: i64 = match n.kind {
            Kind::Number if n.text.bytes().all(|b| b.is_ascii_digit()) => n
                .text
                .parse()
                .map_err(|_| range(n, self.limits.max_window_ms))?,
            _ => {
                return Err(n.error(E::Expected(
                    "a whole number of MILLISECONDS, SECONDS, MINUTES or HOURS",
                )));
            }
        };
        let per: i64 = match unit.text.to_ascii_uppercase().as_str() {
            "MS" | "MILLISECOND" | "MILLISECONDS" if unit.kind == Kind::Word => 1,
            "SECOND" | "SECONDS" if unit.kind == Kind::Word => 1000,
            "MINUTE" | "MINUTES" if unit.kind == Kind::Word => 60_000,
            "HOUR" | "HOURS" if unit.kind == Kind::Word => 3_600_000,
            _ => {
                return Err(unit.error(E::Expected(
                    "a time unit (MILLISECONDS, SECONDS, MINUTES or HOURS)",
                )));
            }
        };
        match count.checked_mul(per) {
            Some(ms) if ms <= self.limits.max_window_ms => Ok(ms),
            _ => Err(range(n, self.limits.max_window_ms)),
        }
    }

    fn fields(&mut self) -> Result<Option<Vec<Item<'a>>>, ParseError> {
        if self.peek()?.kind == Kind::Star {
            self.bump()?;
            return Ok(None);
        }
        let mut items: Vec<Item<'a>> = Vec::new();
        loop {
            let start = self.bump()?;
            let (what, text) = if start.kind == Kind::Word && self.peek()?.kind == Kind::LParen {
                self.call(start)?
            } else {
                let (segments, text) = self.path_from(start)?;
                let node = self.paths.insert(&segments);
                self.paths.nodes[node].needs_raw = true;
                (ItemKind::Path(node), text)
            };
            let key = if self.peek()?.is_kw("AS") {
                self.bump()?;
                let t = self.bump()?;
                match t.kind {
                    Kind::Word => t.text.to_owned(),
                    Kind::Quoted => unquote_name(t.text).to_owned(),
                    Kind::Str => unquote_string(t.text),
                    _ => return Err(t.error(E::Expected("a name after AS"))),
                }
            } else {
                text
            };
            // Same key twice: the last one wins, at the first one's place (as the reference's dict did).
            if let Some(f) = items.iter_mut().find(|f| f.key == key) {
                f.what = what;
                f.at = start;
            } else if items.len() == self.limits.max_fields {
                return Err(start.error(E::TooManyFields {
                    max: self.limits.max_fields,
                }));
            } else {
                items.push(Item {
                    key,
                    at: start,
                    what,
                });
            }
            if self.peek()?.kind != Kind::Comma {
                return Ok(Some(items));
            }
            self.bump()?;
        }
    }

    /// An aggregate call whose name is `name` (the `(` is next): what it computes and its default key.
    fn call(&mut self, name: Token<'a>) -> Result<(ItemKind, String), ParseError> {
        let upper = name.text.to_ascii_uppercase();
        let known = [
            "COUNT",
            "SUM",
            "AVG",
            "MIN",
            "MAX",
            "PERCENTILE",
            "HISTOGRAM",
        ];
        if !known.contains(&upper.as_str()) {
            return Err(name.error(E::Expected(
                "a field or an aggregate (COUNT, SUM, AVG, MIN, MAX, PERCENTILE, HISTOGRAM)",
            )));
        }
        self.bump()?; // (
        if upper == "COUNT" && self.peek()?.kind == Kind::Star {
            self.bump()?;
            self.expect(Kind::RParen, "`)`")?;
            let agg = Agg {
                func: Func::CountAll,
                node: 0,
            };
            return Ok((ItemKind::Agg(agg), "count".to_owned()));
        }
        let distinct = upper == "COUNT" && self.peek()?.is_kw("DISTINCT");
        if distinct {
            self.bump()?;
        }
        let (segments, text) = self.path()?;
        let node = self.paths.insert(&segments);
        let mut args = String::new();
        let func = match upper.as_str() {
            "COUNT" if distinct => Func::CountDistinct,
            "COUNT" => Func::Count,
            "SUM" => Func::Sum,
            "AVG" => Func::Avg,
            "MIN" => Func::Min,
            "MAX" => Func::Max,
            "PERCENTILE" => {
                self.expect(Kind::Comma, "`,` and the percentile (0 to 1)")?;
                let t = self.bump()?;
                let q = match (t.kind, parse_number(t.text)) {
                    (Kind::Number, Some(Num::Int(i))) => i as f64,
                    (Kind::Number, Some(Num::Float(f))) => f,
                    _ => return Err(t.error(E::Expected("a number from 0 to 1"))),
                };
                if !(0.0..=1.0).contains(&q) {
                    return Err(t.error(E::OutOfRange {
                        what: "the percentile",
                        min: "0".into(),
                        max: "1".into(),
                    }));
                }
                args = format!(",{}", t.text);
                Func::Percentile(q)
            }
            _ => {
                let mut edges: Vec<f64> = Vec::new();
                while self.peek()?.kind == Kind::Comma {
                    self.bump()?;
                    let t = self.bump()?;
                    let e = match (t.kind, parse_number(t.text)) {
                        (Kind::Number, Some(Num::Int(i))) => i as f64,
                        (Kind::Number, Some(Num::Float(f))) => f,
                        _ => return Err(t.error(E::Expected("a bucket edge (a number)"))),
                    };
                    if edges.len() == self.limits.max_histogram_edges {
                        return Err(t.error(E::OutOfRange {
                            what: "the number of HISTOGRAM edges",
                            min: "1".into(),
                            max: self.limits.max_histogram_edges.to_string(),
                        }));
                    }
                    if edges.contains(&e) {
                        return Err(t.error(E::Aggregate("HISTOGRAM edges must be distinct")));
                    }
                    edges.push(e);
                }
                if edges.is_empty() {
                    let t = self.peek()?;
                    return Err(t.error(E::Expected("`,` and at least one bucket edge")));
                }
                edges.sort_by(|a, b| b.total_cmp(a));
                Func::Histogram(edges)
            }
        };
        self.expect(Kind::RParen, "`)`")?;
        if matches!(func, Func::CountDistinct) {
            self.paths.nodes[node].needs_raw = true;
        } else {
            self.paths.nodes[node].needs_scalar = true;
        }
        let key = format!("{}({text}{args})", func.name());
        Ok((ItemKind::Agg(Agg { func, node }), key))
    }

    /// A dotted path: its segments and its text (segments joined by dots, backticks dropped).
    fn path(&mut self) -> Result<(Vec<String>, String), ParseError> {
        let first = self.bump()?;
        self.path_from(first)
    }

    /// [`Parser::path`] whose first token was already taken.
    fn path_from(&mut self, first: Token<'a>) -> Result<(Vec<String>, String), ParseError> {
        let mut segments = vec![match first.kind {
            Kind::Quoted => unquote_name(first.text).to_owned(),
            Kind::Word if KEYWORDS.iter().any(|k| first.is_kw(k)) => {
                return Err(first.error(E::Keyword));
            }
            Kind::Word => first.text.to_owned(),
            _ => return Err(first.error(E::Expected("a field name"))),
        }];
        while self.peek()?.kind == Kind::Dot {
            self.bump()?;
            let t = self.bump()?;
            let seg = match t.kind {
                Kind::Quoted => unquote_name(t.text).to_owned(),
                // After a dot any word is a key, keywords included (`data.from`), and so are digits.
                Kind::Word => t.text.to_owned(),
                Kind::Number if t.text.bytes().all(|b| b.is_ascii_digit()) => t.text.to_owned(),
                _ => return Err(t.error(E::Expected("a field name after `.`"))),
            };
            if segments.len() == self.limits.max_path_segments {
                return Err(t.error(E::PathTooLong {
                    max: self.limits.max_path_segments,
                }));
            }
            segments.push(seg);
        }
        let text = segments.join(".");
        Ok((segments, text))
    }

    fn enter(&mut self, at: Token<'a>) -> Result<(), ParseError> {
        if self.depth == self.limits.max_depth {
            return Err(at.error(E::TooDeep {
                max: self.limits.max_depth,
            }));
        }
        self.depth += 1;
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        self.joined("OR", Self::and, Expr::Or)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        self.joined("AND", Self::not, Expr::And)
    }

    /// `operand (keyword operand)*`: the lone operand itself, or `join` of them all.
    fn joined(
        &mut self,
        keyword: &str,
        operand: fn(&mut Self) -> Result<Expr, ParseError>,
        join: fn(Vec<Expr>) -> Expr,
    ) -> Result<Expr, ParseError> {
        let mut items = vec![operand(self)?];
        while self.peek()?.is_kw(keyword) {
            self.bump()?;
            items.push(operand(self)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            join(items)
        })
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        let t = self.peek()?;
        if t.is_kw("NOT") {
            self.bump()?;
            self.enter(t)?;
            let inner = self.not()?;
            self.depth -= 1;
            Ok(Expr::Not(Box::new(inner)))
        } else if t.kind == Kind::LParen {
            self.bump()?;
            self.enter(t)?;
            let inner = self.or()?;
            self.expect(Kind::RParen, "`)`, AND or OR")?;
            self.depth -= 1;
            Ok(inner)
        } else {
            self.cond()
        }
    }

    fn cond(&mut self) -> Result<Expr, ParseError> {
        let start = self.peek()?;
        let (segments, _) = self.path()?;
        if self.conditions == self.limits.max_conditions {
            return Err(start.error(E::TooManyConditions {
                max: self.limits.max_conditions,
            }));
        }
        self.conditions += 1;
        let node = self.paths.insert(&segments);
        self.paths.nodes[node].needs_scalar = true;
        let op = self.bump()?;
        if let Kind::Cmp(cmp) = op.kind {
            let lit = self.literal()?;
            return Ok(Expr::Cond {
                node,
                test: Test::Cmp(cmp, lit),
            });
        }
        let (negated, op) = if op.is_kw("NOT") {
            (true, self.bump()?)
        } else {
            (false, op)
        };
        let test = if op.is_kw("LIKE") {
            let pat = self.bump()?;
            if pat.kind != Kind::Str {
                return Err(pat.error(E::LikeNeedsString));
            }
            let text = unquote_string(pat.text);
            if text.len() > self.limits.max_like_pattern_len {
                return Err(pat.error(E::PatternTooLong {
                    max: self.limits.max_like_pattern_len,
                }));
            }
            Test::Like(Like::new(&text))
        } else if op.is_kw("IN") {
            self.expect(Kind::LParen, "`(` after IN")?;
            let mut list = Vec::new();
            loop {
                let at = self.peek()?;
                if list.len() == self.limits.max_in_list {
                    return Err(at.error(E::InListTooLong {
                        max: self.limits.max_in_list,
                    }));
                }
                list.push(self.literal()?);
                if self.peek()?.kind != Kind::Comma {
                    break;
                }
                self.bump()?;
            }
            self.expect(Kind::RParen, "`,` or `)`")?;
            Test::In(list)
        } else if op.is_kw("IS") && !negated {
            let mut t = self.bump()?;
            let is_not = t.is_kw("NOT");
            if is_not {
                t = self.bump()?;
            }
            if !t.is_kw("NULL") {
                return Err(t.error(E::Expected(if is_not {
                    "NULL"
                } else {
                    "NULL or NOT NULL"
                })));
            }
            let cond = Expr::Cond {
                node,
                test: Test::IsNull,
            };
            return Ok(if is_not {
                Expr::Not(Box::new(cond))
            } else {
                cond
            });
        } else {
            let what = if negated {
                "LIKE or IN after NOT"
            } else {
                "an operator (=, !=, <>, <, <=, >, >=, LIKE, IN, IS)"
            };
            return Err(op.error(E::Expected(what)));
        };
        let cond = Expr::Cond { node, test };
        Ok(if negated {
            Expr::Not(Box::new(cond))
        } else {
            cond
        })
    }

    fn literal(&mut self) -> Result<Literal, ParseError> {
        let t = self.bump()?;
        match t.kind {
            Kind::Str => Ok(Literal::Str(unquote_string(t.text))),
            Kind::Number => parse_number(t.text)
                .map(Literal::Num)
                .ok_or_else(|| t.error(E::InvalidNumber)),
            _ if t.is_kw("TRUE") => Ok(Literal::Bool(true)),
            _ if t.is_kw("FALSE") => Ok(Literal::Bool(false)),
            _ if t.is_kw("NULL") => Err(t.error(E::NullComparison)),
            _ => Err(t.error(E::Expected("a value ('string', number, true or false)"))),
        }
    }
}

/// An integer stays exact if it fits i128; otherwise (or with a fraction/exponent) it is a finite float.
fn parse_number(text: &str) -> Option<Num> {
    if !text.contains(['.', 'e', 'E'])
        && let Ok(i) = text.parse::<i128>()
    {
        return Some(Num::Int(i));
    }
    text.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Num::Float)
}
