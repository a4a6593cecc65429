//! Text tables as the Python client prints them, so `cobra monitor` output matches its `monitor`
//! byte for byte: `tabulate(rows, tablefmt="simple", headers="firstrow")` (tabulate 0.8) and
//! `humanfriendly.format_size` (decimal units). Written by hand: no Rust crate reproduces those
//! two Python libraries' exact layout.

use serde_json::Value;

/// A table cell.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    /// Text (left-aligned unless the whole column is numbers).
    Text(String),
    /// An integer.
    Int(i64),
    /// A float (tabulate formats it with `%g` and aligns the decimal points).
    Float(f64),
}

impl Cell {
    /// A header row: a text cell per name.
    pub(crate) fn header(names: &[&str]) -> Vec<Cell> {
        names.iter().copied().map(Cell::from).collect()
    }

    /// The cell for a JSON value (strings stay text; other non-numbers print as JSON).
    pub(crate) fn from_json(v: &Value) -> Cell {
        match v {
            Value::Number(n) => match n.as_i64() {
                Some(i) => Cell::Int(i),
                None => Cell::Float(n.as_f64().unwrap_or(0.0)),
            },
            Value::String(s) => Cell::Text(s.clone()),
            other => Cell::Text(other.to_string()),
        }
    }

    fn text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(i) => i.to_string(),
            Cell::Float(f) => format_g(*f),
        }
    }

    /// tabulate's column typing: numbers, and strings that parse as numbers.
    fn kind(&self) -> Kind {
        match self {
            Cell::Int(_) => Kind::Int,
            Cell::Float(_) => Kind::Float,
            Cell::Text(s) if s.trim().parse::<i64>().is_ok() => Kind::Int,
            Cell::Text(s) if s.trim().parse::<f64>().is_ok_and(f64::is_finite) => Kind::Float,
            Cell::Text(_) => Kind::Text,
        }
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::Text(s.to_owned())
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::Text(s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Int,
    Float,
    Text,
}

/// Python's `format(x, "g")`: 6 significant digits, no trailing zeros.
fn format_g(f: f64) -> String {
    if !f.is_finite() {
        return if f.is_nan() {
            "nan".into()
        } else if f > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    if f == 0.0 {
        return "0".into();
    }
    let exp = f.abs().log10().floor() as i32;
    if !(-4..6).contains(&exp) {
        let mantissa = format!("{:.5e}", f);
        let (m, e) = mantissa.split_once('e').unwrap_or((&mantissa, "0"));
        let m = trim_zeros(m);
        let e: i32 = e.parse().unwrap_or(0);
        return format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    let decimals = (5 - exp).max(0) as usize;
    trim_zeros(&format!("{f:.decimals$}"))
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s.to_owned()
    }
}

/// Digits after the decimal point, -1 for an integer or text (tabulate's `_afterpoint`).
fn after_point(text: &str, kind: Kind) -> i64 {
    if kind != Kind::Float {
        return -1;
    }
    let pos = text
        .rfind('.')
        .or_else(|| text.to_ascii_lowercase().rfind('e'));
    pos.map_or(-1, |p| (text.len() - p - 1) as i64)
}

/// `tabulate(rows, tablefmt="simple", headers="firstrow")`: the first row is the header.
pub(crate) fn simple(rows: &[Vec<Cell>]) -> String {
    let Some((header, body)) = rows.split_first() else {
        return String::new();
    };
    let ncols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut columns: Vec<Vec<String>> = Vec::with_capacity(ncols);
    let mut numeric = Vec::with_capacity(ncols);
    let mut widths = Vec::with_capacity(ncols);
    for c in 0..ncols {
        let cells: Vec<&Cell> = body.iter().filter_map(|r| r.get(c)).collect();
        let kind = cells.iter().map(|c| c.kind()).max().unwrap_or(Kind::Int);
        let mut texts: Vec<String> = cells.iter().map(|c| c.text()).collect();
        if kind == Kind::Float {
            // "decimal" alignment: pad after the number so the points line up.
            let after: Vec<i64> = cells
                .iter()
                .zip(&texts)
                .map(|(c, t)| after_point(t, c.kind()))
                .collect();
            let most = after.iter().copied().max().unwrap_or(-1);
            for (t, a) in texts.iter_mut().zip(after) {
                t.push_str(&" ".repeat((most - a) as usize));
            }
        }
        let head = header.get(c).map(Cell::text).unwrap_or_default();
        // tabulate's MIN_PADDING: a column is at least its header plus 2.
        let width = texts
            .iter()
            .map(|t| t.chars().count())
            .max()
            .unwrap_or(0)
            .max(head.chars().count() + 2);
        numeric.push(kind != Kind::Text && !texts.is_empty());
        widths.push(width);
        columns.push(texts);
    }
    let pad = |text: &str, width: usize, right: bool| {
        let fill = " ".repeat(width.saturating_sub(text.chars().count()));
        if right {
            format!("{fill}{text}")
        } else {
            format!("{text}{fill}")
        }
    };
    // tabulate right-strips every line (`_build_simple_row`).
    let line = |cells: Vec<String>| cells.join("  ").trim_end().to_owned();
    let mut lines = Vec::with_capacity(body.len() + 2);
    lines.push(line(
        (0..ncols)
            .map(|c| {
                let head = header.get(c).map(Cell::text).unwrap_or_default();
                pad(&head, widths[c], numeric[c])
            })
            .collect(),
    ));
    lines.push(line(widths.iter().map(|w| "-".repeat(*w)).collect()));
    for r in 0..body.len() {
        lines.push(line(
            (0..ncols)
                .map(|c| {
                    let text = columns[c].get(r).map(String::as_str).unwrap_or("");
                    pad(text, widths[c], numeric[c])
                })
                .collect(),
        ));
    }
    // No newline at the end: `print` adds it.
    lines.join("\n")
}

/// Rows become columns (`cobras.common.algorithm.transpose`, i.e. `zip(*rows)`: truncated to the
/// shortest row).
pub(crate) fn transpose(rows: &[Vec<Cell>]) -> Vec<Vec<Cell>> {
    let n = rows.iter().map(Vec::len).min().unwrap_or(0);
    (0..n)
        .map(|c| rows.iter().map(|r| r[c].clone()).collect())
        .collect()
}

/// `humanfriendly.format_size(n)`: decimal units, two decimals at most, `bytes` under 1000.
pub(crate) fn format_size(n: f64) -> String {
    const UNITS: [(f64, &str); 8] = [
        (1e24, "YB"),
        (1e21, "ZB"),
        (1e18, "EB"),
        (1e15, "PB"),
        (1e12, "TB"),
        (1e9, "GB"),
        (1e6, "MB"),
        (1e3, "KB"),
    ];
    for (divider, symbol) in UNITS {
        if n >= divider {
            return format!("{} {symbol}", trim_zeros(&format!("{:.2}", n / divider)));
        }
    }
    let text = trim_zeros(&format!("{n:.2}"));
    let unit = if n.floor() == 1.0 { "byte" } else { "bytes" };
    format!("{text} {unit}")
}

/// The Python monitor's `humanReadableSize`: sizes for metrics whose name has `_bytes`.
pub(crate) fn human_cell(metric: &str, v: &Value) -> Cell {
    match v.as_f64() {
        Some(n) if metric.contains("_bytes") => Cell::Text(format_size(n)),
        _ => Cell::from_json(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Cell {
        Cell::from(s)
    }

    /// Expected outputs printed by the Python client's own libraries (tabulate 0.8.10 and
    /// humanfriendly 4.18 in .tools/cobras-venv).
    #[test]
    fn tables_match_python_tabulate() {
        let rows = vec![
            vec![t("Roles"), t("pubsub"), t("stats")],
            vec![t("published_count"), Cell::Int(10), Cell::Int(3)],
            vec![t("published_bytes"), t("1.5 KB"), Cell::Int(3)],
        ];
        assert_eq!(
            simple(&rows),
            "Roles            pubsub      stats\n---------------  --------  -------\npublished_count  10              3\npublished_bytes  1.5 KB          3"
        );
        let rows = vec![
            vec![t("Nodes"), t("a")],
            vec![t("x"), Cell::Int(1)],
            vec![t("up"), t("0:00:01")],
            vec![t("m"), Cell::Float(1.5)],
        ];
        assert_eq!(
            simple(&rows),
            "Nodes    a\n-------  -------\nx        1\nup       0:00:01\nm        1.5"
        );
        let rows = vec![
            vec![t("Nodes"), t("a"), t("b")],
            vec![t("x"), Cell::Int(-1), t("q")],
            vec![t("up"), Cell::Int(10), t("abc")],
            vec![t("z"), t("12"), t("rr")],
        ];
        assert_eq!(
            simple(&rows),
            "Nodes      a  b\n-------  ---  ---\nx         -1  q\nup        10  abc\nz         12  rr"
        );
    }

    #[test]
    fn sizes_match_humanfriendly() {
        for (n, want) in [
            (0.0, "0 bytes"),
            (1.0, "1 byte"),
            (999.0, "999 bytes"),
            (1000.0, "1 KB"),
            (1500.0, "1.5 KB"),
            (123_456.0, "123.46 KB"),
            (1e7, "10 MB"),
            (1_099_511_627_776.0, "1.1 TB"),
        ] {
            assert_eq!(format_size(n), want, "{n}");
        }
    }

    #[test]
    fn floats_print_as_python_g() {
        for (f, want) in [
            (1.5, "1.5"),
            (3.0, "3"),
            (0.0001, "0.0001"),
            (1234567.0, "1.23457e+06"),
            (0.1 + 0.2, "0.3"),
        ] {
            assert_eq!(format_g(f), want);
        }
    }
}
