//! Canonical JSON: object keys sorted, no insignificant whitespace. Two inputs that
//! mean the same serialize to the same bytes, which is what the result cache keys on.

use std::fmt::Write as _;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Serializes `value` canonically (sorted keys, compact).
pub fn canonical_string(value: &Value) -> String {
    let mut out = String::with_capacity(64);
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                // Serializing a string cannot fail.
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

/// A stable hex digest of (agent, version, canonical input): the result-cache key.
pub fn input_fingerprint(agent: &str, version: &str, input: &Value) -> String {
    let mut h = Sha256::new();
    h.update(agent.as_bytes());
    h.update([0]);
    h.update(version.as_bytes());
    h.update([0]);
    h.update(canonical_string(input).as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        let a: Value = serde_json::from_str(r#"{ "b": 1, "a": {"y": [1, 2], "x": "s"} }"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[1,2]},"b":1}"#).unwrap();
        assert_eq!(canonical_string(&a), r#"{"a":{"x":"s","y":[1,2]},"b":1}"#);
        assert_eq!(canonical_string(&a), canonical_string(&b));
        assert_eq!(
            input_fingerprint("x", "1", &a),
            input_fingerprint("x", "1", &b)
        );
    }

    #[test]
    fn fingerprints_separate_agents_versions_and_inputs() {
        let v = json!({"a": 1});
        let f = input_fingerprint("x", "1", &v);
        assert_ne!(f, input_fingerprint("y", "1", &v));
        assert_ne!(f, input_fingerprint("x", "2", &v));
        assert_ne!(f, input_fingerprint("x", "1", &json!({"a": 2})));
        assert_ne!(
            input_fingerprint("ab", "c", &v),
            input_fingerprint("a", "bc", &v)
        );
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(
            canonical_string(&json!({"q\"": "a\nb"})),
            r#"{"q\"":"a\nb"}"#
        );
    }
}
