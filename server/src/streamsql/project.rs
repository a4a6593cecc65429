//! The SELECT list: builds the forwarded object from a matching message's slots.
//!
//! Keys are the path text (`"data.fps"`) or the alias, in SELECT order. Values are the selected subtrees
//! as they are (false, 0, "" included). A selected field that is missing gives `{}` and one under a
//! `null` gives `null`: exactly what the reference produced (its lookup was `.get(key, {})` per level),
//! so existing dashboards see the same keys and values. A field under a non-object (where the reference
//! crashed) counts as missing.

use std::fmt::Write as _;

use super::parser::Field;
use super::paths::{Captured, Paths, Slot};
use super::value::Scalar;

struct Entry {
    /// `"key":`, escaped once at compile time.
    key_json: String,
    /// Nodes from the top-level key down to the selected one.
    chain: Vec<usize>,
}

/// A compiled SELECT list.
pub(crate) struct Projection {
    entries: Vec<Entry>,
    /// Capacity hint for the output.
    size_hint: usize,
}

impl Projection {
    pub fn new(fields: &[Field], paths: &Paths) -> Projection {
        let entries: Vec<Entry> = fields
            .iter()
            .map(|f| {
                let mut key_json = json_string(&f.key);
                key_json.push(':');
                Entry { key_json, chain: paths.chain(f.node) }
            })
            .collect();
        let size_hint = 2 + entries.iter().map(|e| e.key_json.len() + 24).sum::<usize>();
        Projection { entries, size_hint }
    }

    /// The projected object's JSON text.
    pub fn render(&self, slots: &[Slot<'_>]) -> String {
        let mut out = String::with_capacity(self.size_hint);
        out.push('{');
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&e.key_json);
            let leaf = e.chain.last().map_or(0, |&n| n);
            match slots[leaf].captured {
                Captured::Raw(text) => out.push_str(text),
                // Writing to a String cannot fail.
                Captured::Value(v) => {
                    let _ = write!(out, "{v}");
                }
                Captured::None => out.push_str(missing(&e.chain, slots)),
            }
        }
        out.push('}');
        out
    }
}

/// The reference's value for a selected path that is not in the message.
fn missing(chain: &[usize], slots: &[Slot<'_>]) -> &'static str {
    for &n in chain {
        match slots[n].scalar {
            Scalar::Object => continue,
            Scalar::Null => return "null",
            _ => return "{}",
        }
    }
    "{}"
}

/// `s` as a JSON string literal.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
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
    out
}
