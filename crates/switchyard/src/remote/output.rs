//! How the client commands print: aligned columns and `key: value` lists for people
//! (`--output table`), or JSON for programs (`--output json`: the server's objects as it
//! sends them, one document per command, or one event per line while following).
//! A closed pipe (`| head`) is not an error.

use std::io::Write;

use serde::Serialize;
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

/// Pretty JSON and a newline on stdout.
pub fn json(value: &impl Serialize) {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_owned());
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// One JSON document on one line on stdout (a stream of them is NDJSON).
pub fn json_line(value: &impl Serialize) {
    let text = serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Text on stdout as it is (partial output as it streams).
pub fn text(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

pub fn line(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// Rows under headers, each column as wide as its widest cell (the last one unpadded).
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let headers: Vec<String> = self.headers.iter().map(|h| (*h).to_owned()).collect();
        for row in std::iter::once(&headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(columns) {
                if i + 1 == columns {
                    line.push_str(cell);
                } else {
                    let pad = widths[i] - cell.chars().count();
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    pub fn print(&self) {
        text(&self.render());
    }
}

/// `key: value` lines, the values aligned; multi-line values are indented under theirs.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in pairs {
        let mut lines = value.lines();
        let first = lines.next().unwrap_or("");
        out.push_str(&format!("{key}:{} {first}", " ".repeat(width - key.len())));
        out.push('\n');
        for more in lines {
            out.push_str(&" ".repeat(width + 2));
            out.push_str(more);
            out.push('\n');
        }
    }
    out
}

/// A value for a table cell or a field: strings as they are, the rest as JSON.
pub fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Pretty JSON for a multi-line field.
pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// An RFC 3339 time without its fraction of a second, for tables.
pub fn time(rfc3339: &str) -> String {
    match rfc3339.split_once('.') {
        Some((seconds, rest)) => {
            let zone = rest.trim_start_matches(|c: char| c.is_ascii_digit());
            format!("{seconds}{zone}")
        }
        None => rfc3339.to_owned(),
    }
}

/// One line on stderr: what happens, beside the result on stdout.
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_their_columns() {
        let mut t = Table::new(&["NAME", "KIND", "DESCRIPTION"]);
        t.row(vec![
            "echo".into(),
            "echo".into(),
            "Returns its input.".into(),
        ]);
        t.row(vec!["summarize".into(), "llm".into(), String::new()]);
        assert_eq!(
            t.render(),
            "NAME       KIND  DESCRIPTION\n\
             echo       echo  Returns its input.\n\
             summarize  llm\n"
        );
    }

    #[test]
    fn fields_align_and_indent() {
        let out = fields(&[("id", "t1".into()), ("output", "{\n  \"a\": 1\n}".into())]);
        assert_eq!(
            out,
            "id:     t1\noutput: {\n          \"a\": 1\n        }\n"
        );
    }

    #[test]
    fn times_lose_their_fraction() {
        assert_eq!(time("2025-01-02T03:04:05.123456Z"), "2025-01-02T03:04:05Z");
        assert_eq!(
            time("2025-01-02T03:04:05+01:00"),
            "2025-01-02T03:04:05+01:00"
        );
    }
}
