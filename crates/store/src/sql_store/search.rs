//! The full-text search index: the document of each task (its words, the same on both
//! backends) and the indexer that writes them, in batches, behind a cursor.

use std::collections::HashMap;

use serde_json::Value;
use switchyard_core::monitoring::{search_terms, search_words};
use switchyard_core::task::TaskStatus;
use switchyard_core::{Result, TaskId};
use uuid::Uuid;

use super::{SqlStore, Tx};
use crate::batch::hex_id;
use crate::dialect::Dialect;
use crate::query::Query;
use crate::rows::{Col, db_err};
use crate::sql::sql;

/// The settings key of the search indexer's cursor (the last task id it indexed).
pub(crate) const SEARCH_CURSOR_KEY: &str = "search.cursor";
/// Most bytes of text indexed per task.
const MAX_DOC_BYTES: usize = 64 * 1024;

/// A full-text query in the dialect's syntax; `None` when the text has no words.
/// Terms are letters and digits only, so nothing in them is query syntax.
pub(crate) fn search_query<D: Dialect>(text: &str) -> Option<String> {
    let terms = search_terms(text);
    if terms.is_empty() {
        return None;
    }
    Some(D::search_query(&terms))
}

/// Appends the words of a JSON value (keys and values) to a document.
fn push_json_words(doc: &mut String, value: &Value) {
    match value {
        Value::Null => {}
        Value::Bool(b) => push_words(doc, if *b { "true" } else { "false" }),
        Value::Number(n) => {
            // Numbers are short: formatted on the stack, not into a fresh String.
            let mut buf = NumberText::default();
            let _ = std::fmt::Write::write_fmt(&mut buf, format_args!("{n}"));
            push_words(doc, buf.as_str());
        }
        Value::String(s) => push_words(doc, s),
        Value::Array(items) => items.iter().for_each(|v| push_json_words(doc, v)),
        Value::Object(map) => {
            for (k, v) in map {
                push_words(doc, k);
                push_json_words(doc, v);
            }
        }
    }
}

/// A JSON number's text (at most a few dozen characters; longer ones are cut, which
/// only shortens what is indexed of a number nobody searches by its 40th digit).
struct NumberText {
    buf: [u8; 40],
    len: usize,
}

impl Default for NumberText {
    fn default() -> Self {
        NumberText {
            buf: [0; 40],
            len: 0,
        }
    }
}

impl NumberText {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl std::fmt::Write for NumberText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Appends text reduced to lowercase words separated by spaces: both backends then
/// tokenize it identically. The same words as [`search_terms`] makes of a query.
pub(crate) fn push_words(doc: &mut String, text: &str) {
    for word in search_words(text) {
        // Most words are ASCII: lowercased in place, with no String of their own.
        let lower;
        let word = if word.is_ascii() {
            word
        } else {
            lower = word.to_lowercase();
            &lower
        };
        if doc.len() + word.len() + 1 > MAX_DOC_BYTES {
            return;
        }
        if !doc.is_empty() {
            doc.push(' ');
        }
        let start = doc.len();
        doc.push_str(word);
        // Changes ASCII letters only (a non-ASCII word is lowercase already).
        doc[start..].make_ascii_lowercase();
    }
}

/// The document of one task: agent, input, output, error and log lines.
pub(crate) fn task_document(
    agent: &str,
    input: &Value,
    output: Option<&Value>,
    error: Option<&Value>,
    logs: &[String],
) -> String {
    let mut doc = String::new();
    push_words(&mut doc, agent);
    push_json_words(&mut doc, input);
    if let Some(o) = output {
        push_json_words(&mut doc, o);
    }
    if let Some(e) = error {
        push_json_words(&mut doc, e);
    }
    for line in logs {
        push_words(&mut doc, line);
    }
    doc
}

impl<D: Dialect> SqlStore<D> {
    /// Indexes up to `limit` new tasks and up to `limit` finished ones, in one
    /// transaction on the writer: the number of documents written.
    pub(super) async fn index_tasks_now(&self, limit: i64) -> Result<u64> {
        let mut tx = self.begin_writer("begin search index").await?;
        let cursor = Query::new(sql!("common", "get_setting"))
            .bind(SEARCH_CURSOR_KEY)
            .fetch_optional(tx.on())
            .await
            .map_err(db_err("search cursor"))?
            .map(|r| r.string_at(0))
            .transpose()?;
        let cursor = cursor
            .and_then(|c| Uuid::parse_str(&c).ok())
            .unwrap_or(Uuid::nil());
        let fresh = Query::new(sql!("common", "search_new_tasks"))
            .bind(cursor)
            .bind(limit)
            .fetch_all(tx.on())
            .await
            .map_err(db_err("search new tasks"))?;
        let mut written = Self::write_documents(&fresh, &mut tx).await?;
        if let Some(last) = fresh.last() {
            Query::new(sql!("common", "put_setting"))
                .bind(SEARCH_CURSOR_KEY)
                .bind(last.uuid("id")?.to_string())
                .execute(tx.on())
                .await
                .map_err(db_err("search cursor"))?;
        }
        let finished = Query::new(D::SQL.search_finished)
            .bind(limit)
            .fetch_all(tx.on())
            .await
            .map_err(db_err("search finished tasks"))?;
        written += Self::write_documents(&finished, &mut tx).await?;
        tx.commit().await.map_err(db_err("commit search index"))?;
        Ok(written)
    }

    /// Reads tasks' log lines and writes their search documents.
    async fn write_documents(rows: &[D::Row], tx: &mut Tx<D>) -> Result<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        let mut tasks = Vec::with_capacity(rows.len());
        for r in rows {
            let status: TaskStatus = r.parsed("status")?;
            tasks.push((
                TaskId(r.uuid("id")?),
                status.is_terminal(),
                task_document(
                    &r.string("agent")?,
                    &r.content("input")?,
                    r.opt_content("output")?.as_ref(),
                    r.opt_content("error")?.as_ref(),
                    &[],
                ),
            ));
        }
        // Log lines count for finished tasks only (running ones are re-indexed when they
        // finish).
        let finished: Vec<Value> = tasks
            .iter()
            .filter(|(_, complete, _)| *complete)
            .map(|(id, _, _)| hex_id(&id.0).into())
            .collect();
        if !finished.is_empty() {
            let logs = Query::new(D::SQL.search_logs)
                .bind(Value::Array(finished).to_string())
                .fetch_all(tx.on())
                .await
                .map_err(db_err("search logs"))?;
            let mut by_task: HashMap<Uuid, Vec<String>> = HashMap::new();
            for l in &logs {
                by_task
                    .entry(l.uuid("task_id")?)
                    .or_default()
                    .push(crate::content::unescape_str(&l.string("message")?).into_owned());
            }
            for (id, _, doc) in tasks.iter_mut() {
                if let Some(lines) = by_task.get(&id.0) {
                    for line in lines {
                        push_words(doc, line);
                    }
                }
            }
        }
        D::write_search_documents(tx.conn(), &tasks).await?;
        Ok(tasks.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::PgDialect;
    use crate::sqlite::SqliteDialect;
    use serde_json::json;

    #[test]
    fn documents_are_lowercase_words() {
        let doc = task_document(
            "echo",
            &json!({"Text": "Héllo, World!", "n": 42}),
            Some(&json!("done")),
            None,
            &["a log-line".to_owned()],
        );
        assert_eq!(doc, "echo text héllo world n 42 done a log line");
    }

    /// A document holds exactly the words a query of the same text looks for, whatever
    /// the script, case or word length.
    #[test]
    fn document_words_are_query_terms() {
        let long = "Ab".repeat(50);
        for text in [
            "Hello, wörld! a-b \"x",
            "ΟΔΥΣΣΕΥΣ und STRAẞE, İstanbul",
            long.as_str(),
            "ǅemal 12345 -3.5e21 TÜRKÇE",
        ] {
            let mut doc = String::new();
            push_words(&mut doc, text);
            let terms: Vec<String> = text
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(|w| w.chars().take(64).collect::<String>().to_lowercase())
                .collect();
            assert_eq!(doc, terms.join(" "), "{text}");
            assert!(
                search_terms(text)
                    .iter()
                    .all(|t| doc.split(' ').any(|w| w == t))
            );
        }
        let mut doc = String::new();
        push_json_words(
            &mut doc,
            &json!([1.5, -20, 12345678901234567890u64, true, null]),
        );
        assert_eq!(doc, "1 5 20 12345678901234567890 true");
    }

    #[test]
    fn queries_quote_terms_per_dialect() {
        assert_eq!(
            search_query::<SqliteDialect>("foo \"bar").as_deref(),
            Some("\"foo\" \"bar\"")
        );
        assert_eq!(
            search_query::<PgDialect>("foo bar").as_deref(),
            Some("foo & bar")
        );
        assert_eq!(search_query::<SqliteDialect>("!!"), None);
        assert_eq!(
            super::super::monitoring::contains_pattern("50%_x"),
            "%50\\%\\_x%"
        );
    }
}
