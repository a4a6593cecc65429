//! `postgres`: batched `COPY` into a table, the event as `jsonb` plus extracted columns.
//!
//! One batch = one `COPY ... FROM STDIN` in autocommit, which is atomic by itself (all its rows or
//! none): no BEGIN/COMMIT round trips, the statement prepared once per connection. The batch is
//! confirmed when the server reports the COPY complete (committed). The event column is the
//! message's JSON text as the broker sent it, the columns are read from that text without parsing
//! the rest ([`crate::json`]). The table is created if absent:
//! `id bigserial, received_at timestamptz, position text, event jsonb, <columns>`.
//! A batch the server refuses for its data (class 22/23: a `\u0000` jsonb cannot hold, a value
//! out of a column's range) is retried row by row and the refused rows are counted as malformed;
//! any other failure (server down, connection lost) is retried with backoff on a new connection.

use std::io::Write;

use postgres::error::SqlState;
use postgres::{Client, NoTls, Statement};
use serde_json::Value;

use crate::json;
use crate::sink::{Item, Sink, SinkError, Skips};

/// The SQL type of an extracted column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// `text`: strings as they are, other values as JSON text.
    Text,
    /// `bigint`: integers (other values: NULL).
    BigInt,
    /// `double precision`: numbers (other values: NULL).
    Double,
    /// `boolean`.
    Bool,
    /// `jsonb`: the value as JSON.
    Jsonb,
}

impl ColumnType {
    fn sql(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::BigInt => "bigint",
            ColumnType::Double => "double precision",
            ColumnType::Bool => "boolean",
            ColumnType::Jsonb => "jsonb",
        }
    }
}

/// A column extracted from each event: `--column name=path[:type]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Dotted path into the event.
    pub path: String,
    /// SQL type (default text).
    pub ty: ColumnType,
}

impl std::str::FromStr for Column {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, rest) = s
            .split_once('=')
            .ok_or_else(|| format!("column {s:?}: expected name=path[:type]"))?;
        let (path, ty) = match rest.rsplit_once(':') {
            Some((p, t)) => (
                p,
                match t {
                    "text" => ColumnType::Text,
                    "bigint" | "int" => ColumnType::BigInt,
                    "double" | "float" => ColumnType::Double,
                    "bool" | "boolean" => ColumnType::Bool,
                    "jsonb" | "json" => ColumnType::Jsonb,
                    _ => {
                        return Err(format!(
                            "column {s:?}: type {t:?} is not text, bigint, double, bool or jsonb"
                        ));
                    }
                },
            ),
            None => (rest, ColumnType::Text),
        };
        if name.is_empty() || path.is_empty() {
            return Err(format!("column {s:?}: empty name or path"));
        }
        Ok(Column {
            name: name.to_owned(),
            path: path.to_owned(),
            ty,
        })
    }
}

/// Options of the postgres sink.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// libpq-style connection string or URL (`postgresql://user@host:port/db`).
    pub url: String,
    /// Table name (created if absent).
    pub table: String,
    /// Extracted columns.
    pub columns: Vec<Column>,
}

/// The postgres sink.
pub struct PostgresSink {
    opts: PostgresOptions,
    client: Option<Client>,
    copy_sql: String,
    /// `copy_sql` prepared on the current connection.
    copy_stmt: Option<Statement>,
    create_sql: String,
    buf: Vec<u8>,
    row: Vec<u8>,
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

impl PostgresSink {
    /// Connects lazily: the first batch opens the connection and creates the table.
    pub fn new(opts: PostgresOptions) -> Result<Self, SinkError> {
        if opts.table.is_empty() {
            return Err(SinkError::Fatal("postgres: --table is empty".into()));
        }
        let table = quote_ident(&opts.table);
        let mut create = format!(
            "CREATE TABLE IF NOT EXISTS {table} (id bigserial PRIMARY KEY, \
             received_at timestamptz NOT NULL DEFAULT now(), position text, event jsonb NOT NULL"
        );
        let mut cols = String::from("position, event");
        for c in &opts.columns {
            create.push_str(&format!(", {} {}", quote_ident(&c.name), c.ty.sql()));
            cols.push_str(", ");
            cols.push_str(&quote_ident(&c.name));
        }
        create.push(')');
        Ok(Self {
            copy_stmt: None,
            copy_sql: format!("COPY {table} ({cols}) FROM STDIN"),
            create_sql: create,
            opts,
            client: None,
            buf: Vec::with_capacity(1 << 20),
            row: Vec::with_capacity(1024),
        })
    }

    fn client(&mut self) -> Result<&mut Client, SinkError> {
        if self.client.is_none() {
            let mut c = Client::connect(&self.opts.url, NoTls)
                .map_err(|e| SinkError::retry(format!("connecting: {e}")))?;
            c.batch_execute(&self.create_sql)
                .map_err(|e| classify(e, "creating the table"))?;
            self.client = Some(c);
            self.copy_stmt = None;
        }
        self.client
            .as_mut()
            .ok_or_else(|| SinkError::retry("not connected"))
    }

    /// One row in COPY text format into `self.row`; `Err` if jsonb cannot hold the event. The
    /// event column is the message's JSON text as sent; the columns are looked up on that text.
    fn encode_row(&mut self, item: &Item) -> Result<(), String> {
        let row = &mut self.row;
        row.clear();
        match &item.position {
            Some(p) => escape_into(row, p.as_bytes()),
            None => row.extend_from_slice(b"\\N"),
        }
        row.push(b'\t');
        let json = item.json();
        // `\u0000` in the text is a NUL only if its backslash is not itself escaped: decide on
        // the parsed value (rare).
        if memchr_u0000(json.as_bytes()) && item.value().map_or(true, |v| has_nul(&v)) {
            return Err("a string holds \\u0000, which jsonb refuses".into());
        }
        escape_into(row, json.as_bytes());
        for c in &self.opts.columns {
            row.push(b'\t');
            let raw = match item.lookup(&c.path) {
                Ok(Some(raw)) if raw != "null" => raw,
                Ok(_) => {
                    row.extend_from_slice(b"\\N");
                    continue;
                }
                Err(e) => return Err(format!("column {}: {e}", c.name)),
            };
            let start = row.len();
            let ok = match c.ty {
                ColumnType::Text => match json::as_str(raw) {
                    Some(s) => {
                        if s.contains('\0') {
                            return Err("a text column value holds NUL".into());
                        }
                        row.extend_from_slice(s.as_bytes());
                        true
                    }
                    None => {
                        row.extend_from_slice(raw.as_bytes());
                        true
                    }
                },
                ColumnType::Jsonb => {
                    row.extend_from_slice(raw.as_bytes());
                    true
                }
                ColumnType::BigInt => match json::as_i64(raw) {
                    Some(n) => {
                        let _ = write!(row, "{n}");
                        true
                    }
                    None => false,
                },
                ColumnType::Double => match json::as_f64(raw).filter(|v| v.is_finite()) {
                    Some(n) => {
                        let _ = write!(row, "{n}");
                        true
                    }
                    None => false,
                },
                ColumnType::Bool => match json::as_bool(raw) {
                    Some(b) => {
                        row.extend_from_slice(if b { b"t" } else { b"f" });
                        true
                    }
                    None => false,
                },
            };
            if ok {
                escape_in_place(row, start);
            } else {
                row.extend_from_slice(b"\\N");
            }
        }
        row.push(b'\n');
        Ok(())
    }

    /// One `COPY` in autocommit: atomic by itself (all rows or none), so no BEGIN/COMMIT round
    /// trips; the statement is prepared once per connection.
    fn copy(&mut self, data: &[u8]) -> Result<(), postgres::Error> {
        let Some(client) = self.client.as_mut() else {
            return Ok(());
        };
        let stmt = match &self.copy_stmt {
            Some(s) => s.clone(),
            None => {
                let s = client.prepare(&self.copy_sql)?;
                self.copy_stmt = Some(s.clone());
                s
            }
        };
        let mut w = client.copy_in(&stmt)?;
        // A write error here is the connection failing; finish() reports the server's error.
        let _ = w.write_all(data);
        w.finish().map(|_| ())
    }
}

fn classify(e: postgres::Error, what: &str) -> SinkError {
    SinkError::retry(format!("{what}: {e}"))
}

fn is_data_error(e: &postgres::Error) -> bool {
    e.code().is_some_and(|c: &SqlState| {
        let code = c.code();
        code.starts_with("22") || code.starts_with("23")
    })
}

fn memchr_u0000(b: &[u8]) -> bool {
    b.windows(6).any(|w| w == b"\\u0000")
}

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// COPY text format: backslash, newline, carriage return and tab are escaped. The runs between
/// them are copied whole (JSON text rarely has any: its strings escape control characters).
fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    let mut rest = s;
    while let Some(i) = rest
        .iter()
        .position(|b| matches!(b, b'\\' | b'\n' | b'\r' | b'\t'))
    {
        out.extend_from_slice(&rest[..i]);
        let esc: &[u8] = match rest[i] {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => b"\\t",
        };
        out.extend_from_slice(esc);
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

/// Escapes `buf[start..]` in place (the common case, nothing to escape, costs one scan).
fn escape_in_place(buf: &mut Vec<u8>, start: usize) {
    if !buf[start..]
        .iter()
        .any(|b| matches!(b, b'\\' | b'\n' | b'\r' | b'\t'))
    {
        return;
    }
    let tail = buf.split_off(start);
    escape_into(buf, &tail);
}

impl Sink for PostgresSink {
    fn name(&self) -> &str {
        "postgres"
    }

    fn send(&mut self, batch: &[Item], skips: &Skips) -> Result<(), SinkError> {
        self.client()?;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        for item in batch {
            match self.encode_row(item) {
                Ok(()) => buf.extend_from_slice(&self.row),
                Err(why) => skips.skip("postgres", why),
            }
        }
        let res = self.copy(&buf);
        self.buf = buf;
        match res {
            Ok(()) => Ok(()),
            Err(e) if is_data_error(&e) => {
                // Find the refused rows: one transaction per row (slow, but only for a bad batch).
                log::warn!("postgres: batch refused ({e}); retrying row by row");
                for item in batch {
                    if self.encode_row(item).is_err() {
                        continue; // already counted
                    }
                    let row = std::mem::take(&mut self.row);
                    let res = self.copy(&row);
                    self.row = row;
                    match res {
                        Ok(()) => {}
                        Err(e) if is_data_error(&e) => skips.skip("postgres", e),
                        Err(e) => {
                            self.client = None;
                            return Err(classify(e, "COPY"));
                        }
                    }
                }
                Ok(())
            }
            Err(e) => {
                self.client = None;
                Err(classify(e, "COPY"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn rows_in_copy_text_format() {
        let mut s = PostgresSink::new(PostgresOptions {
            url: String::new(),
            table: "t".into(),
            columns: vec![
                "game=device.game".parse().unwrap(),
                "fps=data.fps:double".parse().unwrap(),
                "n=data.n:bigint".parse().unwrap(),
            ],
        })
        .unwrap();
        assert_eq!(
            s.copy_sql,
            "COPY \"t\" (position, event, \"game\", \"fps\", \"n\") FROM STDIN"
        );
        let item = Item::new(
            json!({"device": {"game": "a\tb"}, "data": {"fps": 16.5, "s": "x\\y\nz"}}),
            Some(Arc::from("1-2")),
        );
        s.encode_row(&item).unwrap();
        assert_eq!(
            String::from_utf8(s.row.clone()).unwrap(),
            "1-2\t{\"data\":{\"fps\":16.5,\"s\":\"x\\\\\\\\y\\\\nz\"},\"device\":{\"game\":\"a\\\\tb\"}}\ta\\tb\t16.5\t\\N\n"
        );
        let nul = Item::new(json!({"s": "a\u{0}b"}), None);
        assert!(s.encode_row(&nul).is_err());
        assert!("x".parse::<Column>().is_err());
        assert!("x=y:money".parse::<Column>().is_err());
    }
}
