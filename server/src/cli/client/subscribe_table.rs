//! `cobra subscribe --table`: lays subscription messages out as a text table, redrawn in place on a
//! terminal. Pure rendering (no I/O): the caller feeds rows and prints what [`Table::render`] returns.
//!
//! - An aggregate statement with a HISTOGRAM gets the talk's layout: one column per group, one row
//!   for the number of samples, one per bucket (`> 60`, `60`, ..., `<= 8`, the share of the samples
//!   in %) and one per other aggregate (`Average FPS` when the AVG is aliased so).
//! - Another aggregate statement: one line per group, one column per key.
//! - A plain statement: the last [`MAX_PLAIN_ROWS`] messages, one column per top-level key of the
//!   first one.
//!
//! Each group shows its latest row (the highest `window_start`); groups keep their first-seen order.

use serde_json::Value;

use crate::streamsql::{ColumnKind, OutputColumn};

/// Messages kept by the plain layout.
pub(crate) const MAX_PLAIN_ROWS: usize = 20;
/// Groups shown at most (more are counted in the title): a table wider than any terminal helps
/// no one, and this bounds the memory of a long session.
pub(crate) const MAX_GROUPS: usize = 64;

/// The table's state: the latest row of each group.
pub(crate) struct Table {
    /// `None` for a plain statement.
    columns: Option<Vec<OutputColumn>>,
    groups: Vec<(String, Value)>,
    hidden: u64,
    window: Option<(i64, i64)>,
}

impl Table {
    /// A table for rows of a statement with these aggregate columns (`None`: plain messages).
    pub(crate) fn new(columns: Option<Vec<OutputColumn>>) -> Table {
        Table {
            columns,
            groups: Vec::new(),
            hidden: 0,
            window: None,
        }
    }

    /// Take one message into account.
    pub(crate) fn add(&mut self, row: &Value) {
        let Some(columns) = &self.columns else {
            if self.groups.len() == MAX_PLAIN_ROWS {
                self.groups.remove(0);
            }
            self.groups.push((String::new(), row.clone()));
            return;
        };
        let start = row["window_start"].as_i64().unwrap_or(0);
        let end = row["window_end"].as_i64().unwrap_or(0);
        if self.window.is_none_or(|(s, _)| start >= s) {
            self.window = Some((start, end));
        }
        let label = columns
            .iter()
            .filter(|c| c.kind == ColumnKind::Group)
            .map(|c| text(&row[&c.key]))
            .collect::<Vec<_>>()
            .join(" / ");
        match self.groups.iter().position(|(l, _)| *l == label) {
            Some(i) => {
                let latest = &mut self.groups[i].1;
                if start >= latest["window_start"].as_i64().unwrap_or(0) {
                    *latest = row.clone();
                }
            }
            None if self.groups.len() < MAX_GROUPS => self.groups.push((label, row.clone())),
            None => self.hidden += 1,
        }
    }

    /// The table's text (lines end with `\n`).
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        if let Some((start, end)) = self.window {
            out.push_str(&format!("window {} - {} UTC", clock(start), clock(end)));
            if self.hidden > 0 {
                out.push_str(&format!(
                    " ({} rows of groups past {MAX_GROUPS} not shown)",
                    self.hidden
                ));
            }
            out.push('\n');
        }
        let cells = match &self.columns {
            None => self.plain(),
            Some(columns) => match columns.iter().find(|c| c.kind == ColumnKind::Histogram) {
                Some(h) => self.histogram(columns, h),
                None => self.grouped(columns),
            },
        };
        draw(&cells, &mut out);
        out
    }

    fn plain(&self) -> Vec<Vec<String>> {
        let Some((_, first)) = self.groups.first() else {
            return Vec::new();
        };
        let keys: Vec<&String> = first
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        let mut cells = vec![keys.iter().map(|k| k.to_string()).collect::<Vec<_>>()];
        for (_, m) in &self.groups {
            cells.push(keys.iter().map(|k| text(&m[k.as_str()])).collect());
        }
        cells
    }

    fn grouped(&self, columns: &[OutputColumn]) -> Vec<Vec<String>> {
        let mut cells = vec![columns.iter().map(|c| c.key.clone()).collect::<Vec<_>>()];
        for (_, row) in &self.groups {
            cells.push(columns.iter().map(|c| text(&row[&c.key])).collect());
        }
        cells
    }

    /// The talk's layout: groups as columns, buckets and the other aggregates as rows.
    fn histogram(&self, columns: &[OutputColumn], h: &OutputColumn) -> Vec<Vec<String>> {
        let mut header = vec![h.key.clone()];
        header.extend(self.groups.iter().map(|(label, _)| label.clone()));
        let mut cells = vec![header];
        let edges: Vec<String> = self
            .groups
            .first()
            .and_then(|(_, r)| r[&h.key]["edges"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(text)
            .collect();
        let mut samples = vec!["Samples".to_owned()];
        samples.extend(self.groups.iter().map(|(_, r)| {
            let n: u64 = r[&h.key]["counts"]
                .as_array()
                .map_or(0, |c| c.iter().filter_map(Value::as_u64).sum());
            n.to_string()
        }));
        cells.push(samples);
        for bucket in 0..=edges.len() {
            let label = match bucket {
                0 => format!("> {}", edges.first().map_or("", String::as_str)),
                b if b == edges.len() => format!("<= {}", edges[b - 1]),
                // (e[b], e[b-1]]: named by its upper edge, as the talk's `60 fps` row.
                b => edges[b - 1].clone(),
            };
            let mut line = vec![label];
            line.extend(self.groups.iter().map(
                |(_, r)| match r[&h.key]["shares"][bucket].as_f64() {
                    Some(share) => format!("{:.1} %", share * 100.0),
                    None => "-".to_owned(),
                },
            ));
            cells.push(line);
        }
        for c in columns.iter().filter(|c| c.kind == ColumnKind::Aggregate) {
            let mut line = vec![c.key.clone()];
            line.extend(self.groups.iter().map(|(_, r)| text(&r[&c.key])));
            cells.push(line);
        }
        cells
    }
}

/// A value as a cell: strings without quotes, fractions with two decimals, `-` for null/missing.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        Value::Number(n) if n.is_f64() => format!("{:.2}", n.as_f64().unwrap_or(f64::NAN)),
        other => other.to_string(),
    }
}

/// `HH:MM:SS` of a time in ms since the epoch (UTC; the date is left out).
fn clock(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Boxed cells in the talk's style: a rule between every two lines.
fn draw(cells: &[Vec<String>], out: &mut String) {
    let ncols = cells.iter().map(Vec::len).max().unwrap_or(0);
    if ncols == 0 {
        return;
    }
    let widths: Vec<usize> = (0..ncols)
        .map(|i| {
            cells
                .iter()
                .filter_map(|line| line.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let rule: String = widths.iter().fold("+".to_owned(), |mut r, w| {
        r.push_str(&"-".repeat(w + 2));
        r.push('+');
        r
    });
    out.push_str(&rule);
    out.push('\n');
    for line in cells {
        out.push('|');
        for (i, w) in widths.iter().enumerate() {
            let cell = line.get(i).map_or("", String::as_str);
            out.push(' ');
            out.push_str(cell);
            out.push_str(&" ".repeat(w - cell.chars().count() + 1));
            out.push('|');
        }
        out.push('\n');
        out.push_str(&rule);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streamsql::Query;
    use serde_json::json;

    #[test]
    fn histogram_layout_is_the_talks() {
        let q = Query::parse(
            "SELECT device.model, HISTOGRAM(data.fps, 60, 30) AS 'Frame Rate', AVG(data.fps) AS 'Average FPS' \
             FROM c GROUP BY device.model WINDOW TUMBLING (10 SECONDS)",
        )
        .unwrap();
        let mut t = Table::new(q.aggregate_columns());
        let row = |model: &str, counts: [u64; 3], shares: [f64; 3], avg: f64| {
            json!({"window_start": 10_000, "window_end": 20_000, "device.model": model,
                   "Frame Rate": {"edges": [60, 30], "counts": counts, "shares": shares},
                   "Average FPS": avg, "late": 0, "skipped": 0, "final": true})
        };
        t.add(&row("iPad mini 2", [0, 1, 1], [0.0, 0.5, 0.5], 45.5));
        t.add(&row("iPhone 8 Plus", [0, 2, 0], [0.0, 1.0, 0.0], 59.99));
        assert_eq!(
            t.render(),
            "window 00:00:10 - 00:00:20 UTC
+-------------+-------------+---------------+
| Frame Rate  | iPad mini 2 | iPhone 8 Plus |
+-------------+-------------+---------------+
| Samples     | 2           | 2             |
+-------------+-------------+---------------+
| > 60        | 0.0 %       | 0.0 %         |
+-------------+-------------+---------------+
| 60          | 50.0 %      | 100.0 %       |
+-------------+-------------+---------------+
| <= 30       | 50.0 %      | 0.0 %         |
+-------------+-------------+---------------+
| Average FPS | 45.50       | 59.99         |
+-------------+-------------+---------------+
"
        );
    }
}
