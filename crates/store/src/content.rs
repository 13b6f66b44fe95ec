//! Task content — inputs, outputs, errors and log lines — is stored exactly as it was
//! given, U+0000 included, on every backend.
//!
//! PostgreSQL's `text` and `jsonb` cannot hold U+0000, and SQLite can. So that both
//! backends hold the same thing (and a backup moves between them unchanged), content is
//! escaped on its way into the database and unescaped on its way out, on both:
//!
//! - U+0000 is stored as U+FFFF `0`;
//! - U+FFFF itself is stored as U+FFFF `F`.
//!
//! U+FFFF is a Unicode noncharacter, meant for exactly this kind of internal use, so real
//! text almost never holds it; when it does, the second rule keeps it faithful. The escape
//! applies to JSON strings and object keys alike. Text that names or finds something
//! (agent names, idempotency keys, filters) never reaches the store with U+0000 in it:
//! the API refuses it with a 4xx naming the field (docs/security.md, "Text and U+0000").
//!
//! Content without either character — nearly all of it — is passed through borrowed,
//! after one scan of its bytes.

use std::borrow::Cow;

use serde_json::{Map, Value};
use switchyard_core::task::TaskError;

const ESCAPE: char = '\u{FFFF}';

/// Whether `s` holds a character the escape changes.
fn needs_escape(s: &str) -> bool {
    // U+FFFF is EF BF BF in UTF-8: look for its first byte before decoding anything.
    s.bytes().any(|b| b == 0 || b == 0xEF) && s.chars().any(|c| c == '\0' || c == ESCAPE)
}

/// `s` as stored.
pub(crate) fn escape_str(s: &str) -> Cow<'_, str> {
    if !needs_escape(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\0' => {
                out.push(ESCAPE);
                out.push('0');
            }
            ESCAPE => {
                out.push(ESCAPE);
                out.push('F');
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `s` as it was given, from what is stored. An escape character not followed by `0` or
/// `F` (text stored before escaping existed) is kept as it is.
pub(crate) fn unescape_str(s: &str) -> Cow<'_, str> {
    if !s.contains(ESCAPE) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != ESCAPE {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('0') => {
                chars.next();
                out.push('\0');
            }
            Some('F') => {
                chars.next();
                out.push(ESCAPE);
            }
            _ => out.push(ESCAPE),
        }
    }
    Cow::Owned(out)
}

/// Whether any string or object key of `v` satisfies `test`.
fn any_string(v: &Value, test: &dyn Fn(&str) -> bool) -> bool {
    match v {
        Value::String(s) => test(s),
        Value::Array(items) => items.iter().any(|i| any_string(i, test)),
        Value::Object(map) => map.iter().any(|(k, v)| test(k) || any_string(v, test)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

fn value_needs_escape(v: &Value) -> bool {
    any_string(v, &needs_escape)
}

/// `value` as stored JSON text. Serialized once; only text in which U+0000 or U+FFFF may
/// appear (a `\u0000` escape, or the character itself) takes the escaping path.
pub(crate) fn stored_json<T: serde::Serialize>(value: &T) -> String {
    // Serializing plain data into a String cannot fail.
    let text = serde_json::to_string(value).unwrap_or_default();
    if !text.contains("\\u0000") && !text.contains(ESCAPE) {
        return text;
    }
    let value = serde_json::to_value(value).unwrap_or_default();
    serde_json::to_string(&escape_value(&value)).unwrap_or_default()
}

/// A JSON value as stored: borrowed when nothing in it changes.
pub(crate) fn escape_value(v: &Value) -> Cow<'_, Value> {
    if value_needs_escape(v) {
        Cow::Owned(map_strings(v.clone(), &|s| escape_str(s).into_owned()))
    } else {
        Cow::Borrowed(v)
    }
}

/// A JSON value as it was given, from what is stored.
pub(crate) fn unescape_value(v: Value) -> Value {
    if any_string(&v, &|s| s.contains(ESCAPE)) {
        map_strings(v, &|s| unescape_str(s).into_owned())
    } else {
        v
    }
}

/// Rewrites every string and object key of `v`.
fn map_strings(v: Value, f: &dyn Fn(&str) -> String) -> Value {
    match v {
        Value::String(s) => Value::String(f(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(|i| map_strings(i, f)).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (f(&k), map_strings(v, f)))
                .collect::<Map<String, Value>>(),
        ),
        other => other,
    }
}

/// A task error as stored: its message and details escaped (codes are the server's own).
pub(crate) fn escape_error(e: &TaskError) -> Cow<'_, TaskError> {
    let details_change = e.details.as_deref().is_some_and(value_needs_escape);
    if !needs_escape(&e.message) && !needs_escape(&e.code) && !details_change {
        return Cow::Borrowed(e);
    }
    let mut out = e.clone();
    out.message = escape_str(&e.message).into_owned();
    out.code = escape_str(&e.code).into_owned();
    if let Some(d) = &e.details {
        out.details = Some(Box::new(escape_value(d).into_owned()));
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn plain_content_is_borrowed() {
        let v = json!({"a": ["b", 1, null, {"c": "d é 日本"}]});
        assert!(matches!(escape_value(&v), Cow::Borrowed(_)));
        assert!(matches!(escape_str("plain ascii and ü"), Cow::Borrowed(_)));
        assert!(matches!(unescape_str("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn nul_and_the_escape_character_round_trip_in_keys_and_values() {
        let v = json!({"k\u{0}ey": ["a\u{0}b", "\u{FFFF}0", "\u{FFFF}"], "x": "\u{0}\u{0}"});
        let stored = escape_value(&v).into_owned();
        let text = stored.to_string();
        assert!(
            !text.contains("\\u0000"),
            "nothing PostgreSQL refuses: {text}"
        );
        assert_eq!(unescape_value(stored), v);
    }

    #[test]
    fn a_lone_escape_character_from_older_rows_is_kept() {
        assert_eq!(unescape_str("a\u{FFFF}b"), "a\u{FFFF}b");
        assert_eq!(unescape_str("a\u{FFFF}"), "a\u{FFFF}");
    }

    #[test]
    fn stored_json_is_the_escaped_value_serialized() {
        for v in [
            json!({"kind": "partial", "data": {"delta": "plain é"}}),
            json!({"kind": "partial", "data": {"d\u{0}": "a\u{0}b", "e": "\u{FFFF}"}}),
            // A backslash and `u0000` as text: no U+0000, stored as given.
            json!({"kind": "partial", "data": {"delta": "\\u0000"}}),
        ] {
            let expected = serde_json::to_string(&escape_value(&v)).unwrap();
            assert_eq!(stored_json(&v), expected);
        }
        assert!(!stored_json(&json!("a\u{0}")).contains("\\u0000"));
    }

    proptest! {
        #[test]
        fn any_text_round_trips(s in "(\\PC|\u{0}|\u{FFFF}|0|F){0,40}") {
            let stored = escape_str(&s);
            prop_assert!(!stored.contains('\0'));
            prop_assert_eq!(unescape_str(&stored), s.as_str());
        }
    }
}
