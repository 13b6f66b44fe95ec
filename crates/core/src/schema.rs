//! Input validation against an agent's JSON Schema, and the "transform" step of the
//! Data Flow: schema defaults applied before validation.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{Error, ErrorCode};

/// Larger schemas are refused at registration; they are compiled and kept in memory.
pub const MAX_SCHEMA_BYTES: usize = 256 * 1024;
/// Cap on the violations listed in one error response.
pub const MAX_VIOLATIONS: usize = 100;
const MAX_DEFAULT_DEPTH: usize = 32;

/// One reason an input does not satisfy a schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    /// JSON Pointer to the offending value inside the input (`""` is the input itself).
    pub path: String,
    /// The schema keyword that failed (`type`, `required`, `minimum`, …).
    pub keyword: String,
    pub message: String,
}

/// How the OpenAPI document describes a JSON Schema field: an object, or `true` / `false`
/// (the boolean schemas of 2020-12, which [`CompiledSchema::compile`] accepts).
pub struct JsonSchemaValue;

impl utoipa::PartialSchema for JsonSchemaValue {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{SchemaType, Type};
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::Object, Type::Boolean]))
            .description(Some("A JSON Schema (2020-12): an object, or true / false"))
            .into()
    }
}

impl utoipa::ToSchema for JsonSchemaValue {}

/// A schema compiled once at registration and shared by every submission.
#[derive(Clone)]
pub struct CompiledSchema {
    raw: Arc<Value>,
    validator: Arc<jsonschema::Validator>,
}

impl std::fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledSchema")
            .field("raw", &self.raw)
            .finish()
    }
}

impl CompiledSchema {
    /// Compiles `schema`; `field` names it in error messages (`input_schema`, …).
    pub fn compile(schema: &Value, field: &str) -> Result<Self, Error> {
        let size = serde_json::to_vec(schema)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > MAX_SCHEMA_BYTES {
            return Err(Error::new(
                ErrorCode::InvalidAgent,
                format!("{field} is {size} bytes; the limit is {MAX_SCHEMA_BYTES}"),
            ));
        }
        if !schema.is_object() && !schema.is_boolean() {
            return Err(Error::new(
                ErrorCode::InvalidAgent,
                format!("{field} must be a JSON Schema object"),
            ));
        }
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(schema)
            .map_err(|e| {
                Error::new(
                    ErrorCode::InvalidAgent,
                    format!("{field} is not a valid JSON Schema: {e}"),
                )
            })?;
        Ok(CompiledSchema {
            raw: Arc::new(schema.clone()),
            validator: Arc::new(validator),
        })
    }

    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// Every violation (up to [`MAX_VIOLATIONS`]), or `Ok` if `instance` conforms.
    pub fn check(&self, instance: &Value) -> Result<(), Vec<Violation>> {
        if self.validator.is_valid(instance) {
            return Ok(());
        }
        let violations: Vec<Violation> = self
            .validator
            .iter_errors(instance)
            .take(MAX_VIOLATIONS)
            .map(|e| Violation {
                path: e.instance_path().to_string(),
                keyword: e.kind().keyword().to_owned(),
                message: e.to_string(),
            })
            .collect();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        }
    }

    /// Fills in `default`s of absent properties, recursively, following local `$ref`s.
    pub fn apply_defaults(&self, instance: &mut Value) {
        apply_defaults(&self.raw, &self.raw, instance, 0);
    }

    /// The transform step: apply defaults, then validate. Errors list every violation.
    pub fn prepare(&self, mut instance: Value, what: &str) -> Result<Value, Error> {
        self.apply_defaults(&mut instance);
        self.check(&instance)
            .map_err(|violations| violations_error(what, violations))?;
        Ok(instance)
    }
}

/// The 422 error for a failed validation, listing the violations in `details`.
pub fn violations_error(what: &str, violations: Vec<Violation>) -> Error {
    let summary = violations
        .iter()
        .take(3)
        .map(|v| {
            if v.path.is_empty() {
                v.message.clone()
            } else {
                format!("{}: {}", v.path, v.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    let more = violations.len().saturating_sub(3);
    let suffix = if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    };
    Error::new(
        ErrorCode::ValidationFailed,
        format!("{what} failed validation: {summary}{suffix}"),
    )
    .with_details(json!({ "violations": violations }))
}

fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    let mut current = schema;
    for _ in 0..MAX_DEFAULT_DEPTH {
        match current.get("$ref").and_then(Value::as_str) {
            Some(r) if r.starts_with('#') => match root.pointer(&r[1..]) {
                Some(target) => current = target,
                None => return current,
            },
            _ => return current,
        }
    }
    current
}

fn apply_defaults(root: &Value, schema: &Value, instance: &mut Value, depth: usize) {
    if depth > MAX_DEFAULT_DEPTH {
        return;
    }
    let schema = resolve(root, schema);
    if let Some(all_of) = schema.get("allOf").and_then(Value::as_array) {
        for sub in all_of {
            apply_defaults(root, sub, instance, depth + 1);
        }
    }
    match instance {
        Value::Object(obj) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                fill_object(root, props, obj, depth);
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
                for item in items {
                    apply_defaults(root, item_schema, item, depth + 1);
                }
            }
        }
        _ => {}
    }
}

fn fill_object(
    root: &Value,
    props: &Map<String, Value>,
    obj: &mut Map<String, Value>,
    depth: usize,
) {
    for (name, declared) in props {
        // A `default` beside a `$ref` wins over one inside the referenced schema.
        let prop_schema = resolve(root, declared);
        match obj.get_mut(name) {
            Some(value) => apply_defaults(root, prop_schema, value, depth + 1),
            None => {
                if let Some(default) = declared
                    .get("default")
                    .or_else(|| prop_schema.get("default"))
                {
                    let mut value = default.clone();
                    apply_defaults(root, prop_schema, &mut value, depth + 1);
                    obj.insert(name.clone(), value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(v: Value) -> CompiledSchema {
        CompiledSchema::compile(&v, "input_schema").unwrap()
    }

    #[test]
    fn every_violation_is_listed_with_its_path() {
        let s = schema(json!({
            "type": "object",
            "properties": {
                "ms": {"type": "integer", "minimum": 0},
                "name": {"type": "string"}
            },
            "required": ["ms", "name"]
        }));
        let violations = s.check(&json!({"ms": -5})).unwrap_err();
        assert_eq!(violations.len(), 2, "{violations:?}");
        assert!(
            violations
                .iter()
                .any(|v| v.path == "/ms" && v.keyword == "minimum")
        );
        assert!(
            violations
                .iter()
                .any(|v| v.keyword == "required" && v.message.contains("name"))
        );
        let e = s
            .prepare(json!({"ms": "x", "name": 1}), "input")
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFailed);
        assert_eq!(
            e.details.unwrap()["violations"].as_array().unwrap().len(),
            2
        );
    }

    #[test]
    fn defaults_are_applied_recursively_before_validation() {
        let s = schema(json!({
            "type": "object",
            "$defs": {"opts": {"type": "object", "properties": {"depth": {"type": "integer", "default": 2}}}},
            "properties": {
                "times": {"type": "integer", "default": 1},
                "opts": {"$ref": "#/$defs/opts", "default": {}},
                "list": {"type": "array", "items": {"type": "object", "properties": {"k": {"default": "v"}}}}
            },
            "required": ["times"]
        }));
        let out = s
            .prepare(json!({"list": [{}, {"k": "w"}]}), "input")
            .unwrap();
        assert_eq!(
            out,
            json!({"times": 1, "opts": {"depth": 2}, "list": [{"k": "v"}, {"k": "w"}]})
        );
        // Present values are kept as given.
        let out = s
            .prepare(json!({"times": 5, "opts": {"depth": 9}}), "input")
            .unwrap();
        assert_eq!(out["times"], 5);
        assert_eq!(out["opts"]["depth"], 9);
    }

    #[test]
    fn remote_refs_are_not_fetched() {
        let e = CompiledSchema::compile(
            &json!({"$ref": "https://example.com/schema.json"}),
            "input_schema",
        );
        assert!(e.is_err(), "a remote $ref must not compile offline");
    }

    #[test]
    fn recursive_refs_do_not_loop_forever() {
        let s = schema(json!({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}));
        let mut v = json!({});
        s.apply_defaults(&mut v);
    }
}
