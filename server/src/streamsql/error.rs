//! The typed parse error: what went wrong, and where.

use std::fmt;

/// What is wrong with a statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The statement is longer than [`Limits::max_statement_len`](super::Limits::max_statement_len).
    #[error("statement is {len} bytes long, the limit is {max}")]
    TooLong {
        /// The statement's length, in bytes.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A character that starts no token.
    #[error("unexpected character")]
    UnexpectedChar,
    /// A `'string` without its closing quote.
    #[error("unterminated string literal")]
    UnterminatedString,
    /// A `` `name `` without its closing backtick.
    #[error("unterminated backtick-quoted name")]
    UnterminatedQuoted,
    /// ``` `` ``` names nothing.
    #[error("empty backtick-quoted name")]
    EmptyQuoted,
    /// A malformed numeric literal.
    #[error("invalid number")]
    InvalidNumber,
    /// The grammar wanted something else here.
    #[error("expected {0}")]
    Expected(&'static str),
    /// A keyword where a field name was expected.
    #[error("keyword used as a field name (quote it with backticks)")]
    Keyword,
    /// Parentheses / NOT nested too deeply.
    #[error("nesting deeper than {max} levels")]
    TooDeep {
        /// The bound.
        max: usize,
    },
    /// Too many fields in the SELECT list.
    #[error("more than {max} selected fields")]
    TooManyFields {
        /// The bound.
        max: usize,
    },
    /// Too many values in an IN list.
    #[error("IN list longer than {max} values")]
    InListTooLong {
        /// The bound.
        max: usize,
    },
    /// Too many conditions in the WHERE clause.
    #[error("more than {max} conditions")]
    TooManyConditions {
        /// The bound.
        max: usize,
    },
    /// A LIKE pattern over the limit.
    #[error("LIKE pattern longer than {max} bytes")]
    PatternTooLong {
        /// The bound.
        max: usize,
    },
    /// A dotted path with too many segments.
    #[error("field path longer than {max} segments")]
    PathTooLong {
        /// The bound.
        max: usize,
    },
    /// `LIKE` followed by something other than a string.
    #[error("LIKE needs a 'quoted string' pattern")]
    LikeNeedsString,
    /// An aggregate statement that makes no sense (the reason says why).
    #[error("invalid aggregate query: {0}")]
    Aggregate(&'static str),
    /// A number out of its allowed range (a duration, a percentile, a count).
    #[error("{what} must be between {min} and {max}")]
    OutOfRange {
        /// What is out of range.
        what: &'static str,
        /// The smallest allowed value, as written in the message.
        min: String,
        /// The largest allowed value, as written in the message.
        max: String,
    },
    /// `= NULL` and friends.
    #[error("comparison with NULL is never true; use IS NULL or IS NOT NULL")]
    NullComparison,
}

/// A statement that does not parse: the kind of problem, the offending token's text and its byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    kind: ParseErrorKind,
    offset: usize,
    token: String,
}

impl ParseError {
    pub(crate) fn new(kind: ParseErrorKind, offset: usize, token: &str) -> Self {
        ParseError {
            kind,
            offset,
            token: token.to_owned(),
        }
    }

    /// What is wrong.
    pub fn kind(&self) -> &ParseErrorKind {
        &self.kind
    }

    /// Byte offset of the offending token in the statement (the statement's length at end of input).
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Text of the offending token (empty at end of input).
    pub fn token(&self) -> &str {
        &self.token
    }
}

/// Longest token text quoted in a message: a reason goes back to a client in one PDU.
const MAX_QUOTED: usize = 40;

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.kind, self.offset)?;
        if self.token.is_empty() {
            return f.write_str(" (end of statement)");
        }
        match self.token.char_indices().nth(MAX_QUOTED) {
            Some((cut, _)) => write!(f, " near `{}...`", &self.token[..cut]),
            None => write!(f, " near `{}`", self.token),
        }
    }
}

impl std::error::Error for ParseError {}
