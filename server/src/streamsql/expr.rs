//! The compiled WHERE clause and its evaluation against a message's fields.

use std::cmp::Ordering;

use super::like::Like;
use super::paths::{Fields, short_eq};
use super::value::{Literal, Num, Scalar};

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// What a condition checks about one field.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Test {
    Cmp(CmpOp, Literal),
    Like(Like),
    In(Vec<Literal>),
    /// `IS NULL`: the field is null or missing (`IS NOT NULL` is `Not` of this).
    IsNull,
}

/// A compiled predicate. AND/OR chains are flat, so only parentheses and NOT nest (bounded by the parser).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Cond { node: usize, test: Test },
}

impl CmpOp {
    /// Does a comparison that came out `ord` satisfy the operator?
    #[inline]
    fn holds(self, ord: Ordering) -> bool {
        match self {
            CmpOp::Eq => ord == Ordering::Equal,
            CmpOp::Ne => ord != Ordering::Equal,
            CmpOp::Lt => ord == Ordering::Less,
            CmpOp::Le => ord != Ordering::Greater,
            CmpOp::Gt => ord == Ordering::Greater,
            CmpOp::Ge => ord != Ordering::Less,
        }
    }
}

impl Test {
    /// [`Test::eval`] on a parsed field, with the usual telemetry cases (an integer field against an
    /// integer, a string against a string or a LIKE) decided without building a [`Scalar`].
    #[inline]
    pub(super) fn eval_json(&self, v: Option<&serde_json::Value>) -> bool {
        use serde_json::Value;
        match (self, v) {
            (Test::Cmp(op, Literal::Num(Num::Int(lit))), Some(Value::Number(n))) => {
                match n.as_i64() {
                    Some(i) => op.holds(i128::from(i).cmp(lit)),
                    None => self.eval(&Scalar::of_value(v.unwrap_or(&Value::Null))),
                }
            }
            (Test::Cmp(CmpOp::Eq, Literal::Str(lit)), Some(Value::String(s))) => {
                short_eq(s.as_bytes(), lit.as_bytes())
            }
            (Test::Cmp(CmpOp::Ne, Literal::Str(lit)), Some(Value::String(s))) => {
                !short_eq(s.as_bytes(), lit.as_bytes())
            }
            (Test::Cmp(op, Literal::Str(lit)), Some(Value::String(s))) => {
                op.holds(s.as_str().cmp(lit.as_str()))
            }
            (Test::Like(like), Some(Value::String(s))) => like.matches(s),
            (_, Some(v)) => self.eval(&Scalar::of_value(v)),
            (_, None) => self.eval(&Scalar::Missing),
        }
    }

    pub(super) fn eval(&self, v: &Scalar<'_>) -> bool {
        match self {
            Test::Cmp(op, lit) => match op {
                CmpOp::Eq => v.equals(lit),
                // A missing field or another type is "different": the reference's semantics.
                CmpOp::Ne => !v.equals(lit),
                CmpOp::Lt => v.compare(lit) == Some(Ordering::Less),
                CmpOp::Le => matches!(v.compare(lit), Some(Ordering::Less | Ordering::Equal)),
                CmpOp::Gt => v.compare(lit) == Some(Ordering::Greater),
                CmpOp::Ge => matches!(v.compare(lit), Some(Ordering::Greater | Ordering::Equal)),
            },
            Test::Like(like) => matches!(v, Scalar::Str(s) if like.matches(s)),
            Test::In(list) => list.iter().any(|lit| v.equals(lit)),
            Test::IsNull => matches!(v, Scalar::Missing | Scalar::Null),
        }
    }
}

impl Expr {
    /// Does the message satisfy the predicate? (Short-circuits: fields are only read when needed.)
    pub(super) fn eval<'a>(&self, fields: &mut impl Fields<'a>) -> bool {
        match self {
            Expr::And(items) => items.iter().all(|e| e.eval(fields)),
            Expr::Or(items) => items.iter().any(|e| e.eval(fields)),
            Expr::Not(e) => !e.eval(fields),
            Expr::Cond { node, test } => fields.test(*node, test),
        }
    }
}
