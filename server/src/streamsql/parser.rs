//! Recursive-descent parser: statement text to a compiled [`Statement`].
//!
//! ```text
//! statement := SELECT fields FROM channel [WHERE or] [;]
//! fields    := '*' | field (',' field)*
//! field     := path [AS name]
//! path      := name ('.' name)*            name: word or `backticks`
//! or        := and (OR and)*
//! and       := not (AND not)*
//! not       := NOT not | '(' or ')' | cond
//! cond      := path ( cmpop literal | [NOT] LIKE 'pattern' | [NOT] IN '(' literal (',' literal)* ')'
//!                   | IS [NOT] NULL )
//! literal   := 'string' | number | TRUE | FALSE
//! ```

use super::error::{ParseError, ParseErrorKind as E};
use super::expr::{CmpOp, Expr, Test};
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
        let fields = self.fields()?;
        let from = self.bump()?;
        if !from.is_kw("FROM") {
            return Err(from.error(E::Expected(if fields.is_some() {
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
        if self.peek()?.kind == Kind::Semicolon {
            self.bump()?;
        }
        let end = self.bump()?;
        if end.kind != Kind::Eof {
            let what = if filter.is_some() {
                "AND, OR or end of statement"
            } else {
                "WHERE or end of statement"
            };
            return Err(end.error(E::Expected(what)));
        }
        let paths = std::mem::replace(&mut self.paths, Paths::new());
        Ok(Statement {
            channel,
            fields,
            filter,
            paths,
        })
    }

    fn fields(&mut self) -> Result<Option<Vec<Field>>, ParseError> {
        if self.peek()?.kind == Kind::Star {
            self.bump()?;
            return Ok(None);
        }
        let mut fields: Vec<Field> = Vec::new();
        loop {
            let start = self.peek()?;
            let (segments, text) = self.path()?;
            let node = self.paths.insert(&segments);
            self.paths.nodes[node].needs_raw = true;
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
            if let Some(f) = fields.iter_mut().find(|f| f.key == key) {
                f.node = node;
            } else if fields.len() == self.limits.max_fields {
                return Err(start.error(E::TooManyFields {
                    max: self.limits.max_fields,
                }));
            } else {
                fields.push(Field { key, node });
            }
            if self.peek()?.kind != Kind::Comma {
                return Ok(Some(fields));
            }
            self.bump()?;
        }
    }

    /// A dotted path: its segments and its text (segments joined by dots, backticks dropped).
    fn path(&mut self) -> Result<(Vec<String>, String), ParseError> {
        let first = self.bump()?;
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
        let mut items = vec![self.and()?];
        while self.peek()?.is_kw("OR") {
            self.bump()?;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut items = vec![self.not()?];
        while self.peek()?.is_kw("AND") {
            self.bump()?;
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
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
        let cmp = match op.kind {
            Kind::Eq => Some(CmpOp::Eq),
            Kind::Ne => Some(CmpOp::Ne),
            Kind::Lt => Some(CmpOp::Lt),
            Kind::Le => Some(CmpOp::Le),
            Kind::Gt => Some(CmpOp::Gt),
            Kind::Ge => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(cmp) = cmp {
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
