//! Stand-in for `cobra_wire::position::Position` until the wire branch lands.

use std::fmt;

/// A stream position `<ms>-<seq>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    /// Milliseconds.
    pub ms: u64,
    /// Sequence within the millisecond.
    pub seq: u64,
}

impl Position {
    /// `0-0`.
    pub const ZERO: Position = Position { ms: 0, seq: 0 };
}

impl std::str::FromStr for Position {
    type Err = ();
    fn from_str(s: &str) -> Result<Position, ()> {
        let (a, b) = s.split_once('-').ok_or(())?;
        Ok(Position {
            ms: a.parse().map_err(|_| ())?,
            seq: b.parse().map_err(|_| ())?,
        })
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}
