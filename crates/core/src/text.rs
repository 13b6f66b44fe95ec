//! U+0000 in what clients send: one rule on every backend.
//!
//! - **Content** — task input and output, errors, log lines — is stored exactly as
//!   given, U+0000 included (the store escapes it where the database cannot hold it).
//! - **Text that names or finds something** — agent, user and key names, emails,
//!   idempotency keys, worker names, settings, query and path parameters — may not hold
//!   U+0000. It is refused with a 4xx naming the field, before anything reaches storage,
//!   so both backends answer the same.

use serde_json::{Value, json};

use crate::error::{Error, ErrorCode, Result};

/// Refuses `value` for the named field if it holds U+0000 (`422 validation_failed`).
pub fn refuse_nul(field: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(nul_error(&[format!("/{field}")]));
    }
    Ok(())
}

/// Refuses a JSON document holding U+0000 outside its `content` subtrees (see
/// [`nul_pointers`]), naming every field that does.
pub fn refuse_nul_in(v: &Value, content: &[&str]) -> Result<()> {
    let refused = nul_pointers(v, content);
    if refused.is_empty() {
        Ok(())
    } else {
        Err(nul_error(&refused))
    }
}

/// The error for fields (JSON pointers) that hold U+0000 where it is not allowed.
pub fn nul_error(pointers: &[String]) -> Error {
    let list = pointers
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ");
    Error::new(
        ErrorCode::ValidationFailed,
        format!(
            "{list} holds the character U+0000, which is only allowed in task input and output"
        ),
    )
    .with_details(json!({
        "violations": pointers
            .iter()
            .map(|p| json!({"pointer": p, "message": "U+0000 is not allowed here"}))
            .collect::<Vec<_>>()
    }))
}

/// The JSON pointers of the strings and object keys of `v` that hold U+0000, outside
/// the subtrees matched by `content` (pointer patterns where `*` is any one segment, e.g.
/// `/tasks/*/input`). A key that holds U+0000 is reported as its member's pointer.
pub fn nul_pointers(v: &Value, content: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut path = Vec::new();
    walk(v, content, &mut path, &mut out);
    out
}

fn walk(v: &Value, content: &[&str], path: &mut Vec<String>, out: &mut Vec<String>) {
    if content.iter().any(|pattern| matches(pattern, path)) {
        return;
    }
    match v {
        Value::String(s) if s.contains('\0') => out.push(pointer(path)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                walk(item, content, path, out);
                path.pop();
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                path.push(k.clone());
                if k.contains('\0') {
                    out.push(pointer(path));
                } else {
                    walk(item, content, path, out);
                }
                path.pop();
            }
        }
        _ => {}
    }
}

fn matches(pattern: &str, path: &[String]) -> bool {
    let segments: Vec<&str> = pattern.split('/').skip(1).collect();
    segments.len() == path.len()
        && segments
            .iter()
            .zip(path)
            .all(|(want, have)| *want == "*" || want == have)
}

/// An RFC 6901 pointer, with U+0000 shown as `\u0000` so that it can be read.
fn pointer(path: &[String]) -> String {
    path.iter()
        .map(|s| {
            let s = s.replace('~', "~0").replace('/', "~1");
            format!("/{}", s.replace('\0', "\\u0000"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_subtrees_are_skipped_and_the_rest_is_reported() {
        let body = json!({
            "agent": "a\u{0}",
            "input": {"k": "v\u{0}"},
            "tasks": [{"input": "\u{0}", "idempotency_key": "\u{0}"}],
            "meta": {"x\u{0}y": 1}
        });
        assert_eq!(
            nul_pointers(&body, &["/input", "/tasks/*/input"]),
            vec!["/agent", "/tasks/0/idempotency_key", "/meta/x\\u0000y"]
        );
        assert!(nul_pointers(&json!({"a": "plain"}), &[]).is_empty());
    }

    #[test]
    fn a_named_field_with_nul_is_a_validation_error_naming_it() {
        assert!(refuse_nul("agent", "echo").is_ok());
        let e = refuse_nul("agent", "ec\u{0}ho").unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFailed);
        assert!(e.message.contains("`/agent`"), "{}", e.message);
    }
}
