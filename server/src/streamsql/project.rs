//! The SELECT list: builds the forwarded object from a matching message's fields.
//!
//! Keys are the path text (`"data.fps"`) or the alias, in SELECT order. Values are the selected subtrees
//! as they are (false, 0, "" included). A selected field that is missing gives `{}` and one under a
//! `null` gives `null`: exactly what the reference produced (its lookup was `.get(key, {})` per level),
//! so existing dashboards see the same keys and values. A field under a non-object (where the reference
//! crashed) counts as missing.

use std::fmt::Write as _;

use super::parser::Field;
use serde_json::Value;

use super::paths::{Captured, Fields, Paths, Shape};

struct Entry {
    /// `{"key":` for the first entry, `,"key":` for the others: escaped once at compile time, so each
    /// entry costs one copy plus its value.
    key_json: String,
    /// Nodes from the top-level key down to the selected one.
    chain: Vec<usize>,
    /// The selected node (the last of `chain`).
    leaf: usize,
}

/// A compiled SELECT list.
pub(crate) struct Projection {
    entries: Vec<Entry>,
    /// Capacity hint for the output.
    size_hint: usize,
}

impl Projection {
    pub(super) fn new(fields: &[Field], paths: &Paths) -> Projection {
        let entries: Vec<Entry> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mut key_json = String::from(if i == 0 { "{" } else { "," });
                push_json_string(&mut key_json, &f.key);
                key_json.push(':');
                let chain = paths.chain(f.node);
                Entry {
                    key_json,
                    leaf: chain.last().map_or(0, |&n| n),
                    chain,
                }
            })
            .collect();
        let size_hint = 2 + entries.iter().map(|e| e.key_json.len() + 24).sum::<usize>();
        Projection { entries, size_hint }
    }

    /// Append the projected object's JSON text to `out`.
    #[inline]
    pub(super) fn render_into<'a>(&self, fields: &mut impl Fields<'a>, out: &mut String) {
        out.reserve(self.size_hint);
        if self.entries.is_empty() {
            out.push('{');
        }
        for e in &self.entries {
            out.push_str(&e.key_json);
            match fields.captured(e.leaf) {
                Captured::Raw(text) => out.push_str(text),
                Captured::Value(v) => write_value(out, v),
                Captured::None => out.push_str(missing(&e.chain, fields)),
            }
        }
        out.push('}');
    }
}

/// The reference's value for a selected path that is not in the message.
fn missing<'a>(chain: &[usize], fields: &mut impl Fields<'a>) -> &'static str {
    for &n in chain {
        match fields.shape(n) {
            Shape::Object => continue,
            Shape::Null => return "null",
            Shape::Other => return "{}",
        }
    }
    "{}"
}

/// Append the compact JSON of `v`; scalars written directly (the common case), the rest through
/// serde_json.
pub(crate) fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::String(s) => push_json_string(out, s),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(itoa::Buffer::new().format(i));
            } else if let Some(u) = n.as_u64() {
                out.push_str(itoa::Buffer::new().format(u));
            } else {
                // serde_json's own float formatting (shortest round-trip); writing to a String cannot fail.
                let _ = write!(out, "{n}");
            }
        }
        Value::Array(_) | Value::Object(_) => {
            let _ = write!(out, "{v}");
        }
    }
}

/// Append `s` as a JSON string literal.
pub(crate) fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    // Most values need no escaping: copy them whole.
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
