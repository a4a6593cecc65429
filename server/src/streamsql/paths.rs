//! The set of field paths a statement reads, as a trie, and the per-message slots they are read into.
//!
//! Compiling the paths into a trie lets the raw evaluator walk the message once, descending only into
//! keys some path needs and skipping everything else without building it.

use super::value::Scalar;

/// One node of the path trie. Node 0 is the message itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
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
    pub fn new() -> Paths {
        Paths { nodes: vec![Node::default()] }
    }

    /// The node for `segments`, created if new.
    pub fn insert(&mut self, segments: &[String]) -> usize {
        let mut cur = 0;
        for seg in segments {
            let found = self.nodes[cur].children.iter().find(|(k, _)| **k == **seg).map(|&(_, i)| i);
            cur = match found {
                Some(i) => i,
                None => {
                    let idx = self.nodes.len();
                    self.nodes.push(Node { parent: cur, ..Node::default() });
                    self.nodes[cur].children.push((seg.as_str().into(), idx));
                    idx
                }
            };
        }
        cur
    }

    /// Nodes from the top-level key down to `node` (root excluded).
    pub fn chain(&self, mut node: usize) -> Vec<usize> {
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
    pub fn child(&self, node: usize, key: &str) -> Option<usize> {
        self.nodes[node].children.iter().find(|(k, _)| **k == *key).map(|&(_, i)| i)
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

/// Slots for up to this many nodes live on the stack: no allocation per message for usual statements.
const INLINE_SLOTS: usize = 12;

/// Run `f` with `n` fresh (all missing) slots.
#[inline]
pub(crate) fn with_slots<'a, R>(n: usize, f: impl FnOnce(&mut [Slot<'a>]) -> R) -> R {
    if n <= INLINE_SLOTS {
        let mut inline: [Slot<'a>; INLINE_SLOTS] = Default::default();
        f(&mut inline[..n])
    } else {
        let mut heap = vec![Slot::default(); n];
        f(&mut heap)
    }
}
