//! The compiled WHERE clause and its evaluation against a message's fields.

use std::cmp::Ordering;

use super::like::Like;
use super::paths::Fields;
use super::value::{Literal, Scalar};

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

impl Test {
    pub fn eval(&self, v: &Scalar<'_>) -> bool {
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
    pub fn eval<'a>(&self, fields: &mut impl Fields<'a>) -> bool {
        match self {
            Expr::And(items) => items.iter().all(|e| e.eval(fields)),
            Expr::Or(items) => items.iter().any(|e| e.eval(fields)),
            Expr::Not(e) => !e.eval(fields),
            Expr::Cond { node, test } => fields.test(*node, test),
        }
    }
}
