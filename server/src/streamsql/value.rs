//! Typed values: statement literals, the scalar view of a message field, and how they compare.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::paths::short_eq;

/// A JSON number. Integers are kept exact (i128 covers both i64 and u64); anything else is a float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    /// Numeric order across int and float (ints beyond 2^53 lose precision against floats).
    pub(super) fn compare(self, other: Num) -> Option<Ordering> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
            (Num::Int(a), Num::Float(b)) => (a as f64).partial_cmp(&b),
            (Num::Float(a), Num::Int(b)) => a.partial_cmp(&(b as f64)),
            (Num::Float(a), Num::Float(b)) => a.partial_cmp(&b),
        }
    }

    pub(super) fn of_json(n: &serde_json::Number) -> Num {
        if let Some(i) = n.as_i64() {
            Num::Int(i.into())
        } else if let Some(u) = n.as_u64() {
            Num::Int(u.into())
        } else {
            Num::Float(n.as_f64().unwrap_or(f64::NAN))
        }
    }
}

/// A literal in the statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Str(String),
    Num(Num),
    Bool(bool),
}

/// What a message holds at a path, as far as comparisons care.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum Scalar<'a> {
    /// The path does not exist in the message.
    #[default]
    Missing,
    Null,
    Bool(bool),
    Num(Num),
    Str(Cow<'a, str>),
    Object,
    Array,
}

impl<'a> Scalar<'a> {
    pub(super) fn of_value(v: &'a serde_json::Value) -> Scalar<'a> {
        use serde_json::Value;
        match v {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(n) => Scalar::Num(Num::of_json(n)),
            Value::String(s) => Scalar::Str(Cow::Borrowed(s)),
            Value::Array(_) => Scalar::Array,
            Value::Object(_) => Scalar::Object,
        }
    }

    /// Typed equality: a string never equals a number, a missing field equals nothing.
    pub(super) fn equals(&self, lit: &Literal) -> bool {
        match (self, lit) {
            (Scalar::Str(a), Literal::Str(b)) => short_eq(a.as_bytes(), b.as_bytes()),
            (Scalar::Num(a), Literal::Num(b)) => a.compare(*b) == Some(Ordering::Equal),
            (Scalar::Bool(a), Literal::Bool(b)) => a == b,
            _ => false,
        }
    }

    /// Typed order; `None` when the types differ (then every ordering comparison is false).
    pub(super) fn compare(&self, lit: &Literal) -> Option<Ordering> {
        match (self, lit) {
            (Scalar::Str(a), Literal::Str(b)) => Some(a.as_ref().cmp(b.as_str())),
            (Scalar::Num(a), Literal::Num(b)) => a.compare(*b),
            (Scalar::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}
