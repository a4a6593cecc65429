//! LIKE patterns: `%`/`*` match any run of characters, `_`/`?` exactly one; case-sensitive, whole value.
//!
//! Matching never backtracks: the pattern is split at the run wildcards into chunks; the first chunk must
//! be a prefix, the last a suffix, and each middle chunk is taken at its leftmost occurrence after the
//! previous one (leftmost is always safe: it leaves the most room for the rest). Cost is linear for
//! chunks without `_` (substring search) and O(value × chunk) at worst for chunks with `_`.

/// One piece of a pattern between run wildcards.
#[derive(Debug, Clone, PartialEq)]
enum Chunk {
    /// Plain text.
    Lit(String),
    /// Text with single-character wildcards (`None`).
    Mixed(Vec<Option<char>>),
}

impl Chunk {
    fn new(chars: &[Option<char>]) -> Chunk {
        if chars.iter().all(Option::is_some) {
            Chunk::Lit(chars.iter().flatten().collect())
        } else {
            Chunk::Mixed(chars.to_vec())
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Chunk::Lit(s) => s.is_empty(),
            Chunk::Mixed(v) => v.is_empty(),
        }
    }

    /// Bytes of `s` consumed when the chunk matches at its start.
    fn match_prefix(&self, s: &str) -> Option<usize> {
        match self {
            Chunk::Lit(lit) => s.starts_with(lit.as_str()).then_some(lit.len()),
            Chunk::Mixed(pat) => {
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
            Chunk::Mixed(_) => s
                .char_indices()
                .map(|(i, _)| i)
                .chain(std::iter::once(s.len()))
                .find_map(|i| self.match_prefix(&s[i..]).map(|n| i + n)),
        }
    }

    /// Does `s` end with this chunk?
    fn is_suffix_of(&self, s: &str) -> bool {
        match self {
            Chunk::Lit(lit) => s.ends_with(lit.as_str()),
            Chunk::Mixed(pat) => {
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
    pub fn new(pattern: &str) -> Like {
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
    pub fn matches(&self, s: &str) -> bool {
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
