//! LIKE patterns: `%`/`*` match any run of characters, `_`/`?` exactly one; case-sensitive, whole value.
//!
//! Matching never backtracks: the pattern is split at the run wildcards into chunks; the first chunk must
//! be a prefix, the last a suffix, and each middle chunk is taken at its leftmost occurrence after the
//! previous one (leftmost is always safe: it leaves the most room for the rest). Searching is linear in
//! the value: substring search for plain chunks, bit-parallel Shift-And for chunks with `_` (up to 64
//! characters; longer ones, which only long patterns can have, fall back to O(value × chunk)).

use super::paths::short_eq;

/// One piece of a pattern between run wildcards.
#[derive(Debug, Clone, PartialEq)]
enum Chunk {
    /// Plain text.
    Lit(String),
    /// Text with single-character wildcards (`None`).
    Mixed(Vec<Option<char>>, Option<ShiftAnd>),
}

/// Shift-And automaton of a chunk of at most 64 characters: bit i of the state says "the first i+1
/// pattern characters match the text ending here".
#[derive(Debug, Clone, PartialEq)]
struct ShiftAnd {
    /// Positions of `_`.
    wild: u64,
    /// Positions of each literal character, sorted by character.
    lits: Vec<(char, u64)>,
    /// Bit of the last position.
    accept: u64,
}

impl ShiftAnd {
    fn new(pat: &[Option<char>]) -> Option<ShiftAnd> {
        if pat.is_empty() || pat.len() > 64 {
            return None;
        }
        let mut wild = 0;
        let mut lits: Vec<(char, u64)> = Vec::new();
        for (i, p) in pat.iter().enumerate() {
            match p {
                None => wild |= 1 << i,
                Some(c) => match lits.iter_mut().find(|(l, _)| l == c) {
                    Some((_, m)) => *m |= 1 << i,
                    None => lits.push((*c, 1 << i)),
                },
            }
        }
        lits.sort_unstable_by_key(|&(c, _)| c);
        Some(ShiftAnd {
            wild,
            lits,
            accept: 1 << (pat.len() - 1),
        })
    }

    /// End (in bytes) of the leftmost match in `s`: chunks have a fixed length, so the first match to
    /// end is the first to start.
    fn find_end(&self, s: &str) -> Option<usize> {
        let mut state = 0u64;
        for (i, c) in s.char_indices() {
            let mask = match self.lits.binary_search_by_key(&c, |&(l, _)| l) {
                Ok(j) => self.wild | self.lits[j].1,
                Err(_) => self.wild,
            };
            state = ((state << 1) | 1) & mask;
            if state & self.accept != 0 {
                return Some(i + c.len_utf8());
            }
        }
        None
    }
}

impl Chunk {
    fn new(chars: &[Option<char>]) -> Chunk {
        if chars.iter().all(Option::is_some) {
            Chunk::Lit(chars.iter().flatten().collect())
        } else {
            Chunk::Mixed(chars.to_vec(), ShiftAnd::new(chars))
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Chunk::Lit(s) => s.is_empty(),
            Chunk::Mixed(v, _) => v.is_empty(),
        }
    }

    /// Bytes of `s` consumed when the chunk matches at its start.
    fn match_prefix(&self, s: &str) -> Option<usize> {
        match self {
            Chunk::Lit(lit) => {
                let (s, lit) = (s.as_bytes(), lit.as_bytes());
                (s.len() >= lit.len() && short_eq(&s[..lit.len()], lit)).then_some(lit.len())
            }
            Chunk::Mixed(pat, _) => {
                let mut it = s.char_indices();
                for want in pat {
                    let (_, got) = it.next()?;
                    if want.is_some_and(|w| w != got) {
                        return None;
                    }
                }
                Some(it.next().map_or(s.len(), |(i, _)| i))
            }
        }
    }

    /// End (in bytes) of the leftmost occurrence in `s`.
    fn find_end(&self, s: &str) -> Option<usize> {
        match self {
            Chunk::Lit(lit) => s.find(lit.as_str()).map(|i| i + lit.len()),
            Chunk::Mixed(_, Some(automaton)) => automaton.find_end(s),
            Chunk::Mixed(_, None) => s
                .char_indices()
                .map(|(i, _)| i)
                .chain(std::iter::once(s.len()))
                .find_map(|i| self.match_prefix(&s[i..]).map(|n| i + n)),
        }
    }

    /// Does `s` end with this chunk?
    fn is_suffix_of(&self, s: &str) -> bool {
        match self {
            Chunk::Lit(lit) => {
                let (s, lit) = (s.as_bytes(), lit.as_bytes());
                s.len() >= lit.len() && short_eq(&s[s.len() - lit.len()..], lit)
            }
            Chunk::Mixed(pat, _) => {
                let start = if pat.is_empty() {
                    s.len()
                } else {
                    match s.char_indices().rev().nth(pat.len() - 1) {
                        Some((i, _)) => i,
                        None => return false,
                    }
                };
                self.match_prefix(&s[start..]) == Some(s.len() - start)
            }
        }
    }
}

/// A compiled LIKE pattern.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Like {
    /// Chunks between run wildcards; one chunk means the pattern had no run wildcard.
    chunks: Vec<Chunk>,
}

impl Like {
    pub(super) fn new(pattern: &str) -> Like {
        let mut chunks = Vec::new();
        let mut cur = Vec::new();
        for c in pattern.chars() {
            match c {
                '%' | '*' => chunks.push(Chunk::new(&std::mem::take(&mut cur))),
                '_' | '?' => cur.push(None),
                c => cur.push(Some(c)),
            }
        }
        chunks.push(Chunk::new(&cur));
        // Empty chunks between consecutive run wildcards change nothing; keep the first and last (anchors).
        if chunks.len() > 2 {
            let last = chunks.pop();
            let first = chunks.remove(0);
            chunks.retain(|c| !c.is_empty());
            chunks.insert(0, first);
            chunks.extend(last);
        }
        Like { chunks }
    }

    /// Whole-value, case-sensitive match.
    pub(super) fn matches(&self, s: &str) -> bool {
        let (first, rest) = match self.chunks.split_first() {
            Some(x) => x,
            None => return s.is_empty(),
        };
        let Some((last, middle)) = rest.split_last() else {
            return first.match_prefix(s) == Some(s.len());
        };
        let Some(mut pos) = first.match_prefix(s) else {
            return false;
        };
        for chunk in middle {
            match chunk.find_end(&s[pos..]) {
                Some(end) => pos += end,
                None => return false,
            }
        }
        last.is_suffix_of(&s[pos..])
    }
}
