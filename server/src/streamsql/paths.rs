//! The set of field paths a statement reads, as a trie, and the per-message slots they are read into.
//!
//! Compiling the paths into a trie lets the raw evaluator walk the message once, descending only into
//! keys some path needs and skipping everything else without building it.

use serde_json::Value;

use super::expr::Test;
use super::value::Scalar;

/// One node of the path trie. Node 0 is the message itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    /// This node's key in its parent object (empty for the root).
    pub key: Box<str>,
    /// Child keys and their node indices (few per node: a linear scan beats hashing).
    pub children: Vec<(Box<str>, usize)>,
    pub parent: usize,
    /// The SELECT list projects this node: its raw text is captured.
    pub needs_raw: bool,
    /// A condition reads this node's value.
    pub needs_scalar: bool,
}

/// All paths of a statement.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    pub nodes: Vec<Node>,
}

impl Paths {
    pub(super) fn new() -> Paths {
        Paths {
            nodes: vec![Node::default()],
        }
    }

    /// The node for `segments`, created if new.
    pub(super) fn insert(&mut self, segments: &[String]) -> usize {
        let mut cur = 0;
        for seg in segments {
            let found = self.nodes[cur]
                .children
                .iter()
                .find(|(k, _)| **k == **seg)
                .map(|&(_, i)| i);
            cur = match found {
                Some(i) => i,
                None => {
                    let idx = self.nodes.len();
                    self.nodes.push(Node {
                        key: seg.as_str().into(),
                        parent: cur,
                        ..Node::default()
                    });
                    self.nodes[cur].children.push((seg.as_str().into(), idx));
                    idx
                }
            };
        }
        cur
    }

    /// Nodes from the top-level key down to `node` (root excluded).
    pub(super) fn chain(&self, mut node: usize) -> Vec<usize> {
        let mut chain = Vec::new();
        while node != 0 {
            chain.push(node);
            node = self.nodes[node].parent;
        }
        chain.reverse();
        chain
    }

    /// Child of `node` under `key`.
    #[inline]
    pub(super) fn child(&self, node: usize, key: &str) -> Option<usize> {
        self.nodes[node]
            .children
            .iter()
            .find(|(k, _)| **k == *key)
            .map(|&(_, i)| i)
    }
}

/// Where a projected node's value lives.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) enum Captured<'a> {
    #[default]
    None,
    /// Raw JSON text borrowed from the message.
    Raw(&'a str),
    /// A parsed value.
    Value(&'a serde_json::Value),
}

/// What one message holds at one node.
#[derive(Debug, Clone, Default)]
pub(crate) struct Slot<'a> {
    pub scalar: Scalar<'a>,
    pub captured: Captured<'a>,
}

/// Per-node scratch for up to this many nodes lives on the stack: no allocation per message for usual
/// statements.
const INLINE: usize = 12;

/// Run `f` with `n` fresh (default) entries of per-node scratch.
#[inline]
pub(crate) fn with_scratch<T: Default + Clone, R>(n: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    if n <= INLINE {
        let mut inline: [T; INLINE] = Default::default();
        f(&mut inline[..n])
    } else {
        let mut heap = vec![T::default(); n];
        f(&mut heap)
    }
}

/// How the projection sees a node on the way to a selected field.
pub(crate) enum Shape {
    Object,
    Null,
    /// Missing or anything else.
    Other,
}

/// A message's fields, by trie node: what the predicate and the projection read.
pub(crate) trait Fields<'a> {
    /// Does the node's value pass `test`?
    fn test(&mut self, node: usize, test: &Test) -> bool;
    /// The node's value, for the projection.
    fn captured(&mut self, node: usize) -> Captured<'a>;
    fn shape(&mut self, node: usize) -> Shape;
}

/// Fields read beforehand into slots (the raw single-pass reader).
pub(crate) struct SlotFields<'s, 'a>(pub &'s [Slot<'a>]);

impl<'a> Fields<'a> for SlotFields<'_, 'a> {
    fn test(&mut self, node: usize, test: &Test) -> bool {
        test.eval(&self.0[node].scalar)
    }

    fn captured(&mut self, node: usize) -> Captured<'a> {
        self.0[node].captured
    }

    fn shape(&mut self, node: usize) -> Shape {
        match self.0[node].scalar {
            Scalar::Object => Shape::Object,
            Scalar::Null => Shape::Null,
            _ => Shape::Other,
        }
    }
}

/// Objects up to this size are scanned rather than searched (see [`lookup`]).
const SCAN_MAX: usize = 16;

/// `map.get(key)`, faster on the small objects telemetry events are made of: serde_json's BTreeMap search
/// calls `memcmp` for every key it passes, while a scan that checks length and first byte first calls it
/// about once.
#[inline]
fn lookup<'a>(map: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    if map.len() > SCAN_MAX {
        return map.get(key);
    }
    let key = key.as_bytes();
    map.iter()
        .find(|(k, _)| short_eq(k.as_bytes(), key))
        .map(|(_, v)| v)
}

/// Byte equality without a `memcmp` call for short keys (the call dominates at these lengths):
/// two overlapping word loads cover every byte.
#[inline]
pub(crate) fn short_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=8 => load4(a, 0) == load4(b, 0) && load4(a, n - 4) == load4(b, n - 4),
        9..=16 => load8(a, 0) == load8(b, 0) && load8(a, n - 8) == load8(b, n - 8),
        _ => a == b,
    }
}

#[inline]
fn load4(s: &[u8], at: usize) -> u32 {
    let mut w = [0; 4];
    w.copy_from_slice(&s[at..at + 4]);
    u32::from_ne_bytes(w)
}

#[inline]
fn load8(s: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&s[at..at + 8]);
    u64::from_ne_bytes(w)
}

/// Fields looked up on demand in a parsed value, each path at most once (so a message that fails its
/// first condition costs only that condition's lookups).
pub(crate) struct ValueFields<'p, 'c, 'a> {
    pub paths: &'p Paths,
    pub root: &'a Value,
    /// `Some(lookup result)` once looked up.
    pub cache: &'c mut [Option<Option<&'a Value>>],
}

impl<'a> ValueFields<'_, '_, 'a> {
    /// The value at `node`: the cached lookup when there is one (the usual case once the predicate has
    /// read a field the projection selects), kept small so it inlines.
    #[inline]
    fn get(&mut self, node: usize) -> Option<&'a Value> {
        if node == 0 {
            return Some(self.root);
        }
        match self.cache[node] {
            Some(hit) => hit,
            None => self.resolve(node),
        }
    }

    /// Look `node` up under its (resolved or cached) parent and cache the result. Siblings the statement
    /// also reads are found in the same pass over the parent (a scan of a small map costs about the same
    /// for one key as for all of them), so `device.os_name` then `device.game` walk `device` once.
    fn resolve(&mut self, node: usize) -> Option<&'a Value> {
        let paths = self.paths;
        let n = &paths.nodes[node];
        let siblings = &paths.nodes[n.parent].children;
        match self.get(n.parent) {
            Some(Value::Object(map)) if siblings.len() > 1 && map.len() <= SCAN_MAX => {
                for &(_, c) in siblings {
                    self.cache[c] = Some(None);
                }
                let mut left = siblings.len();
                for (k, v) in map {
                    let k = k.as_bytes();
                    if let Some(&(_, c)) = siblings.iter().find(|(s, _)| short_eq(s.as_bytes(), k))
                    {
                        self.cache[c] = Some(Some(v));
                        left -= 1;
                        if left == 0 {
                            break;
                        }
                    }
                }
            }
            Some(Value::Object(map)) => self.cache[node] = Some(lookup(map, &n.key)),
            _ => self.cache[node] = Some(None),
        }
        self.cache[node].flatten()
    }
}

impl<'a> Fields<'a> for ValueFields<'_, '_, 'a> {
    fn test(&mut self, node: usize, test: &Test) -> bool {
        test.eval_json(self.get(node))
    }

    fn captured(&mut self, node: usize) -> Captured<'a> {
        self.get(node).map_or(Captured::None, Captured::Value)
    }

    fn shape(&mut self, node: usize) -> Shape {
        match self.get(node) {
            Some(Value::Object(_)) => Shape::Object,
            Some(Value::Null) => Shape::Null,
            _ => Shape::Other,
        }
    }
}
