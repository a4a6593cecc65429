//! Stream positions: `<ms>-<seq>`, the shape of Redis stream ids.

use std::fmt;
use std::str::FromStr;

/// A position in a channel's history. Ordered by `ms`, then `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence number within the millisecond.
    pub seq: u64,
}

impl Position {
    /// `0-0`: "from the oldest message kept".
    pub const ZERO: Position = Position { ms: 0, seq: 0 };

    /// Builds a position.
    pub const fn new(ms: u64, seq: u64) -> Self {
        Position { ms, seq }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Why a string is not a [`Position`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PositionError {
    /// No `-` separating the two numbers.
    #[error("position {0:?} is not of the form <ms>-<seq>")]
    MissingSeparator(String),
    /// One of the two parts is not an unsigned 64-bit decimal number.
    #[error("position {0:?} has a part that is not an unsigned 64-bit number")]
    BadNumber(String),
}

fn parse_part(s: &str) -> Option<u64> {
    // u64::from_str accepts a leading '+', which a position never has.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl FromStr for Position {
    type Err = PositionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ms, seq) = s
            .split_once('-')
            .ok_or_else(|| PositionError::MissingSeparator(s.to_owned()))?;
        match (parse_part(ms), parse_part(seq)) {
            (Some(ms), Some(seq)) => Ok(Position { ms, seq }),
            _ => Err(PositionError::BadNumber(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let p = Position::new(1519190184, 559034812775);
        assert_eq!(p.to_string(), "1519190184-559034812775");
        assert_eq!("1519190184-559034812775".parse::<Position>(), Ok(p));
        assert_eq!("0-0".parse::<Position>(), Ok(Position::ZERO));
        assert_eq!(Position::ZERO.to_string(), "0-0");
        let max = Position::new(u64::MAX, u64::MAX);
        assert_eq!(max.to_string().parse::<Position>(), Ok(max));
    }

    #[test]
    fn bad_positions_are_typed_errors() {
        assert!(matches!(
            "12".parse::<Position>(),
            Err(PositionError::MissingSeparator(_))
        ));
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "a-1",
            "1-b",
            "+1-2",
            "1-2-3",
            "18446744073709551616-0",
            " 1-2",
        ] {
            assert!(bad.parse::<Position>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ordering_is_ms_then_seq() {
        assert!(Position::new(1, 9) < Position::new(2, 0));
        assert!(Position::new(2, 0) < Position::new(2, 1));
        assert!(Position::ZERO < Position::new(0, 1));
    }
}
