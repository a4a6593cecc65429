//! Tokenizer: turns a statement into tokens that carry their source text and byte offset.

use super::error::{ParseError, ParseErrorKind};
use super::expr::CmpOp;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A bare word: keyword or name (keywords are told apart by the parser, so `data.from` works).
    Word,
    /// A `` `backtick-quoted` `` name; `text` includes the backticks.
    Quoted,
    /// A `'single-quoted'` string; `text` includes the quotes, `''` inside stands for one quote.
    Str,
    /// An integer or float, possibly negative.
    Number,
    Comma,
    Dot,
    LParen,
    RParen,
    Star,
    Semicolon,
    /// A comparison (`=` or `==`, `!=` or `<>`, `<`, `<=`, `>`, `>=`).
    Cmp(CmpOp),
    Eof,
}

/// One token: its kind, its exact source text and where it starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token<'a> {
    pub kind: Kind,
    pub text: &'a str,
    pub offset: usize,
}

impl Token<'_> {
    /// Is this the keyword `kw` (given in upper case), in any case?
    pub(super) fn is_kw(&self, kw: &str) -> bool {
        self.kind == Kind::Word && self.text.eq_ignore_ascii_case(kw)
    }

    pub(super) fn error(&self, kind: ParseErrorKind) -> ParseError {
        ParseError::new(kind, self.offset, self.text)
    }
}

/// Words reserved by the grammar: they cannot start a field path unless backtick-quoted.
pub(crate) const KEYWORDS: &[&str] = &[
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "LIKE", "IN", "IS", "NULL", "AS", "TRUE",
    "FALSE",
];

fn word_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '$'
}

fn word_continue(c: char) -> bool {
    // `-` is allowed inside names (`device.android-id`): there is no arithmetic to confuse it with.
    c.is_alphanumeric() || c == '_' || c == '$' || c == '-'
}

/// Pull-based tokenizer; the parser asks for one token at a time so FROM can lex its channel specially.
pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(src: &'a str) -> Self {
        Lexer { src, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn take(&mut self, kind: Kind, len: usize) -> Token<'a> {
        let tok = Token {
            kind,
            text: &self.src[self.pos..self.pos + len],
            offset: self.pos,
        };
        self.pos += len;
        tok
    }

    fn err_here(&self, kind: ParseErrorKind, len: usize) -> ParseError {
        let end = (self.pos + len).min(self.src.len());
        ParseError::new(kind, self.pos, &self.src[self.pos..end])
    }

    /// The next token.
    pub(super) fn next_token(&mut self) -> Result<Token<'a>, ParseError> {
        self.skip_ws();
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return Ok(Token {
                kind: Kind::Eof,
                text: "",
                offset: self.pos,
            });
        };
        let two = rest.get(..2).unwrap_or("");
        let tok = match c {
            ',' => self.take(Kind::Comma, 1),
            '.' => self.take(Kind::Dot, 1),
            '(' => self.take(Kind::LParen, 1),
            ')' => self.take(Kind::RParen, 1),
            '*' => self.take(Kind::Star, 1),
            ';' => self.take(Kind::Semicolon, 1),
            '=' if two == "==" => self.take(Kind::Cmp(CmpOp::Eq), 2),
            '=' => self.take(Kind::Cmp(CmpOp::Eq), 1),
            '!' if two == "!=" => self.take(Kind::Cmp(CmpOp::Ne), 2),
            '<' if two == "<>" => self.take(Kind::Cmp(CmpOp::Ne), 2),
            '<' if two == "<=" => self.take(Kind::Cmp(CmpOp::Le), 2),
            '<' => self.take(Kind::Cmp(CmpOp::Lt), 1),
            '>' if two == ">=" => self.take(Kind::Cmp(CmpOp::Ge), 2),
            '>' => self.take(Kind::Cmp(CmpOp::Gt), 1),
            '\'' => self.string()?,
            '`' => self.quoted()?,
            '0'..='9' => self.number()?,
            '-' if rest[1..].starts_with(|c: char| c.is_ascii_digit()) => self.number()?,
            c if word_start(c) => {
                let len = rest.find(|c| !word_continue(c)).unwrap_or(rest.len());
                self.take(Kind::Word, len)
            }
            c => return Err(self.err_here(ParseErrorKind::UnexpectedChar, c.len_utf8())),
        };
        Ok(tok)
    }

    /// The channel name after FROM: a backtick-quoted name, or everything up to whitespace or `;`
    /// (as the reference, which split on spaces, accepted any characters in a channel name).
    pub(super) fn channel(&mut self) -> Result<Token<'a>, ParseError> {
        self.skip_ws();
        let rest = self.rest();
        if rest.starts_with('`') {
            return self.quoted();
        }
        let len = rest
            .find(|c: char| c.is_whitespace() || c == ';')
            .unwrap_or(rest.len());
        Ok(self.take(if len == 0 { Kind::Eof } else { Kind::Word }, len))
    }

    fn string(&mut self) -> Result<Token<'a>, ParseError> {
        let bytes = self.rest().as_bytes();
        let mut i = 1;
        while i < bytes.len() {
            if bytes[i] == b'\'' {
                if bytes.get(i + 1) == Some(&b'\'') {
                    i += 2;
                    continue;
                }
                return Ok(self.take(Kind::Str, i + 1));
            }
            i += 1;
        }
        Err(self.err_here(ParseErrorKind::UnterminatedString, bytes.len()))
    }

    fn quoted(&mut self) -> Result<Token<'a>, ParseError> {
        match self.rest()[1..].find('`') {
            Some(0) => Err(self.err_here(ParseErrorKind::EmptyQuoted, 2)),
            Some(end) => Ok(self.take(Kind::Quoted, end + 2)),
            None => Err(self.err_here(ParseErrorKind::UnterminatedQuoted, self.rest().len())),
        }
    }

    fn number(&mut self) -> Result<Token<'a>, ParseError> {
        let b = self.rest().as_bytes();
        let digits = |mut i: usize| {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            i
        };
        let mut i = digits(usize::from(b[0] == b'-'));
        if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i = digits(i + 1);
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if matches!(b.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if b.get(j).is_some_and(u8::is_ascii_digit) {
                i = digits(j);
            }
        }
        // `12abc` or `1.2.3` is one bad token, not a number followed by a name.
        let tail = &self.rest()[i..];
        if tail.starts_with(|c: char| word_continue(c) || c == '.') {
            let len = i + tail
                .find(|c: char| !(word_continue(c) || c == '.'))
                .unwrap_or(tail.len());
            return Err(self.err_here(ParseErrorKind::InvalidNumber, len));
        }
        Ok(self.take(Kind::Number, i))
    }
}

/// The content of a `'string'` token: quotes removed, `''` turned into `'`.
pub(crate) fn unquote_string(text: &str) -> String {
    text[1..text.len() - 1].replace("''", "'")
}

/// The content of a `` `quoted` `` token.
pub(crate) fn unquote_name(text: &str) -> &str {
    &text[1..text.len() - 1]
}
