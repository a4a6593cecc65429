//! The running value of one aggregate in one group of one window, and how it is written in a row.

use std::fmt::Write as _;

use cardinality_estimator::CardinalityEstimator;
use sketches_ddsketch::{Config, DDSketch};

use super::spec::Func;

/// DDSketch relative accuracy: a reported percentile is within 1 % of a value of the data set at that
/// rank (for values inside the covered range, see [`SKETCH_BINS`]).
pub(crate) const SKETCH_ALPHA: f64 = 0.01;
/// Bins per DDSketch store (positive values, negative values). With [`SKETCH_ALPHA`] they cover a
/// ratio of about 28,000 between the smallest and the largest value kept exactly (0.05 to 1,400 fps,
/// say); past it the lowest bins are merged, which affects low percentiles only. Each bin is a `u64`,
/// so one sketch holds at most 2 × 512 × 8 = 8 KiB of bins.
pub(crate) const SKETCH_BINS: u32 = 512;
/// Values closer to zero than this count as zero in a DDSketch.
const SKETCH_MIN: f64 = 1e-9;

/// HyperLogLog with 2^12 registers of 6 bits: a standard error of about 1.6 % (1.04 / √4096), at
/// most 3 KiB per estimator; exact and tiny while a group has seen few distinct values.
pub(crate) type Distinct = CardinalityEstimator<str>;
/// Bytes of registers of a full [`Distinct`] (4096 × 6 bits) plus its header.
pub(crate) const DISTINCT_MAX_BYTES: usize = 4096 * 6 / 8 + 64;

/// One aggregate's running value.
pub(crate) enum Acc {
    /// `COUNT(f)`.
    Count(u64),
    /// `SUM` and `AVG`.
    Sum {
        sum: f64,
        n: u64,
    },
    Min(Option<f64>),
    Max(Option<f64>),
    Percentile(Box<DDSketch>),
    Distinct(Box<Distinct>),
    /// Bucket counts: `[> e1, (e2, e1], ..., (en, en-1], <= en]` for edges `e1 > e2 > ... > en`.
    Histogram(Box<[u64]>),
    /// `COUNT(*)` is the group's own count: nothing to keep.
    None,
}

impl Acc {
    pub(crate) fn new(func: &Func) -> Acc {
        match func {
            Func::CountAll => Acc::None,
            Func::Count => Acc::Count(0),
            Func::CountDistinct => Acc::Distinct(Box::default()),
            Func::Sum | Func::Avg => Acc::Sum { sum: 0.0, n: 0 },
            Func::Min => Acc::Min(None),
            Func::Max => Acc::Max(None),
            Func::Percentile(_) => Acc::Percentile(Box::new(DDSketch::new(Config::new(
                SKETCH_ALPHA,
                SKETCH_BINS,
                SKETCH_MIN,
            )))),
            Func::Histogram(edges) => Acc::Histogram(vec![0; edges.len() + 1].into()),
        }
    }

    /// Most bytes this aggregate's state can take (its heap included).
    pub(crate) fn max_bytes(func: &Func) -> usize {
        let own = std::mem::size_of::<Acc>();
        own + match func {
            Func::Percentile(_) => {
                std::mem::size_of::<DDSketch>() + 2 * (SKETCH_BINS as usize + 128) * 8
            }
            Func::CountDistinct => DISTINCT_MAX_BYTES,
            Func::Histogram(edges) => (edges.len() + 1) * 8,
            _ => 0,
        }
    }

    /// Count one present number.
    #[inline]
    pub(crate) fn add_num(&mut self, func: &Func, v: f64) {
        match self {
            Acc::Sum { sum, n } => {
                *sum += v;
                *n += 1;
            }
            Acc::Min(m) => *m = Some(m.map_or(v, |m| m.min(v))),
            Acc::Max(m) => *m = Some(m.map_or(v, |m| m.max(v))),
            Acc::Percentile(s) => s.add(v),
            Acc::Histogram(counts) => {
                if let Func::Histogram(edges) = func {
                    // Edges decrease: the bucket is the number of edges the value is at or under.
                    let i = edges.iter().take_while(|&&e| v <= e).count();
                    counts[i] += 1;
                }
            }
            Acc::Count(_) | Acc::Distinct(_) | Acc::None => {}
        }
    }

    /// Append this aggregate's value as JSON; `count` is the group's `COUNT(*)`.
    pub(crate) fn write(&self, func: &Func, count: u64, out: &mut String) {
        match (self, func) {
            (Acc::None, _) => push_u64(out, count),
            (Acc::Count(n), _) => push_u64(out, *n),
            (Acc::Distinct(d), _) => push_u64(out, d.estimate() as u64),
            (Acc::Sum { n: 0, .. }, _) => out.push_str("null"),
            (Acc::Sum { sum, .. }, Func::Sum) => push_num(out, *sum),
            (Acc::Sum { sum, n }, _) => push_num(out, *sum / *n as f64),
            (Acc::Min(m) | Acc::Max(m), _) => match m {
                Some(v) => push_num(out, *v),
                None => out.push_str("null"),
            },
            (Acc::Percentile(s), Func::Percentile(q)) => match s.quantile(*q) {
                Ok(Some(v)) => push_num(out, v),
                _ => out.push_str("null"),
            },
            (Acc::Percentile(_), _) => out.push_str("null"),
            (Acc::Histogram(counts), Func::Histogram(edges)) => {
                out.push_str(r#"{"edges":["#);
                for (i, e) in edges.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_num(out, *e);
                }
                out.push_str(r#"],"counts":["#);
                let total: u64 = counts.iter().sum();
                for (i, c) in counts.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_u64(out, *c);
                }
                out.push_str(r#"],"shares":["#);
                for (i, c) in counts.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let share = if total == 0 {
                        0.0
                    } else {
                        *c as f64 / total as f64
                    };
                    push_num(out, share);
                }
                out.push_str("]}");
            }
            (Acc::Histogram(_), _) => out.push_str("null"),
        }
    }
}

pub(crate) fn push_u64(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// A number as JSON: whole values without a fraction (`60`, not `60.0`), others in Rust's shortest
/// round-trip form, and `null` for NaN and infinities (which JSON cannot carry).
pub(crate) fn push_num(out: &mut String, v: f64) {
    if !v.is_finite() {
        out.push_str("null");
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        out.push_str(itoa::Buffer::new().format(v as i64));
    } else {
        let _ = write!(out, "{v}");
    }
}
