//! A property-based fuzz test of the HTTP API, generated from its OpenAPI document:
//! random requests to every operation (parameters and bodies drawn from the document's
//! schemas, then often broken: wrong types, missing or extra fields, malformed JSON,
//! other content types, other credentials) against the real server on SQLite. Every
//! response must be below 500 and match the document (the harness's client checks that).
//!
//! Bounded in time: `SWITCHYARD_FUZZ_SECS` (default 60) and `SWITCHYARD_FUZZ_CASES`
//! (default 100,000, whichever ends first). Run it alone with
//! `cargo test -p switchyard --test api fuzz:: -- --nocapture`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use reqwest::StatusCode;
use serde_json::{Map, Value, json};
use switchyard::testing::Operation;
use switchyard_core::auth::{Role, Scope};

use crate::common::*;

/// How deep generated JSON nests.
const MAX_DEPTH: u32 = 3;

/// Resolves a local `$ref` of the document.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let mut current = schema;
    for _ in 0..16 {
        match current.get("$ref").and_then(Value::as_str) {
            Some(r) if r.starts_with("#/") => match doc.pointer(&r[1..]) {
                Some(target) => current = target,
                None => break,
            },
            _ => break,
        }
    }
    current
}

/// Any small JSON value.
fn any_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|n| json!(n)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,6}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Strings that exercise parsers: plain, empty, unicode, separators, NUL, long.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        6 => "[a-z0-9_.-]{0,12}",
        1 => Just(String::new()),
        1 => "[ -~]{0,24}",
        1 => "\\PC{0,8}",
        1 => Just("\u{0}".to_owned()),
        1 => Just("../../etc/passwd".to_owned()),
        1 => Just("x".repeat(5000)),
    ]
    .boxed()
}

fn string_for(schema: &Value) -> BoxedStrategy<Value> {
    match schema["format"].as_str() {
        Some("uuid") => prop_oneof![
            4 => any::<u128>().prop_map(|n| json!(uuid::Uuid::from_u128(n).to_string())),
            1 => text().prop_map(Value::String),
        ]
        .boxed(),
        Some("date-time") => prop_oneof![
            4 => (1970u32..2100, 1u32..13, 1u32..29, 0u32..24, 0u32..60, 0u32..1000).prop_map(
                |(y, mo, d, h, mi, ms)| json!(format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:07.{ms:03}Z"))
            ),
            1 => text().prop_map(Value::String),
        ]
        .boxed(),
        _ => text().prop_map(Value::String).boxed(),
    }
}

fn integer_for(schema: &Value) -> BoxedStrategy<Value> {
    let min = schema["minimum"].as_i64();
    let max = schema["maximum"].as_i64();
    let mut edges = vec![
        0i64,
        1,
        -1,
        i64::MAX,
        i64::MIN,
        i32::MAX as i64,
        1_000_000_000,
    ];
    edges.extend(min);
    edges.extend(max);
    prop_oneof![
        3 => (min.unwrap_or(-5)..=max.unwrap_or(100_000).max(min.unwrap_or(-5))).prop_map(|n| json!(n)),
        1 => prop::sample::select(edges).prop_map(|n| json!(n)),
        1 => any::<u64>().prop_map(|n| json!(n)),
    ]
    .boxed()
}

/// A value drawn from `schema` (mostly valid against it).
fn from_schema(doc: &Value, schema: &Value, depth: u32) -> BoxedStrategy<Value> {
    let schema = resolve(doc, schema);
    if let Some(values) = schema["enum"].as_array().filter(|v| !v.is_empty()) {
        return prop::sample::select(values.clone()).boxed();
    }
    if let Some(c) = schema.get("const") {
        return Just(c.clone()).boxed();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema[key].as_array().filter(|v| !v.is_empty()) {
            let choices: Vec<BoxedStrategy<Value>> =
                options.iter().map(|s| from_schema(doc, s, depth)).collect();
            return prop::strategy::Union::new(choices).boxed();
        }
    }
    if let Some(parts) = schema["allOf"].as_array().filter(|v| !v.is_empty()) {
        // Objects' properties merged.
        let mut merged = json!({"type": "object", "properties": {}, "required": []});
        for part in parts {
            let part = resolve(doc, part);
            for (k, v) in part["properties"].as_object().into_iter().flatten() {
                merged["properties"][k] = v.clone();
            }
            for r in part["required"].as_array().into_iter().flatten() {
                merged["required"].as_array_mut().unwrap().push(r.clone());
            }
        }
        return object_for(doc, &merged, depth);
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ if schema.get("properties").is_some() => vec!["object"],
        _ => vec![],
    };
    if types.is_empty() || depth >= MAX_DEPTH {
        return any_json();
    }
    let choices: Vec<BoxedStrategy<Value>> = types
        .into_iter()
        .map(|t| match t {
            "object" => object_for(doc, schema, depth),
            "array" => {
                let items = schema.get("items").cloned().unwrap_or(json!({}));
                prop::collection::vec(from_schema(doc, &items, depth + 1), 0..3)
                    .prop_map(Value::Array)
                    .boxed()
            }
            "string" => string_for(schema),
            "integer" => integer_for(schema),
            "number" => {
                prop_oneof![(-1e3f64..1e3).prop_map(|n| json!(n)), integer_for(schema)].boxed()
            }
            "boolean" => any::<bool>().prop_map(Value::Bool).boxed(),
            "null" => Just(Value::Null).boxed(),
            _ => any_json(),
        })
        .collect();
    prop::strategy::Union::new(choices).boxed()
}

fn object_for(doc: &Value, schema: &Value, depth: u32) -> BoxedStrategy<Value> {
    let required: Vec<String> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let mut fields: Vec<BoxedStrategy<Option<(String, Value)>>> = Vec::new();
    for (name, prop_schema) in schema["properties"].as_object().into_iter().flatten() {
        let value = from_schema(doc, prop_schema, depth + 1);
        let name = name.clone();
        if required.contains(&name) {
            fields.push(value.prop_map(move |v| Some((name.clone(), v))).boxed());
        } else {
            fields.push(
                prop::option::weighted(0.5, value)
                    .prop_map(move |v| v.map(|v| (name.clone(), v)))
                    .boxed(),
            );
        }
    }
    fields
        .prop_map(|fields| Value::Object(fields.into_iter().flatten().collect::<Map<_, _>>()))
        .boxed()
}

/// A valid-looking value, or one broken in a way the server must refuse with a 4xx.
fn mutated(valid: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop_oneof![
        6 => valid.clone(),
        1 => any_json(),
        1 => (valid.clone(), any::<prop::sample::Index>()).prop_map(|(v, i)| match v {
            Value::Object(mut m) if !m.is_empty() => {
                let key = m.keys().nth(i.index(m.len())).unwrap().clone();
                m.remove(&key);
                Value::Object(m)
            }
            other => other,
        }),
        1 => (valid.clone(), any::<prop::sample::Index>(), any_json()).prop_map(|(v, i, junk)| match v {
            Value::Object(mut m) if !m.is_empty() => {
                let key = m.keys().nth(i.index(m.len())).unwrap().clone();
                m.insert(key, junk);
                Value::Object(m)
            }
            other => other,
        }),
        1 => (valid, any_json()).prop_map(|(v, junk)| match v {
            Value::Object(mut m) => {
                m.insert("unexpected_field".into(), junk);
                Value::Object(m)
            }
            other => other,
        }),
    ]
    .boxed()
}

#[derive(Clone, Debug)]
enum Credential {
    Admin,
    Viewer,
    WorkerKey,
    None,
    Garbage,
}

#[derive(Clone, Debug)]
enum Body {
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

#[derive(Clone, Debug)]
struct Call {
    op: usize,
    path: String,
    query: Vec<(String, String)>,
    credential: Credential,
    body: Option<Body>,
}

fn param_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Requests for operation `index`, drawn from its parameters and body schema.
fn calls_for(doc: &Value, index: usize, op: &Operation, known: &Known) -> BoxedStrategy<Call> {
    let params = op.operation["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut path_params: Vec<BoxedStrategy<(String, String)>> = Vec::new();
    let mut query_params: Vec<BoxedStrategy<Option<(String, String)>>> = Vec::new();
    for p in &params {
        let name = p["name"].as_str().unwrap_or_default().to_owned();
        let schema = p.get("schema").cloned().unwrap_or(json!({}));
        let drawn = from_schema(doc, &schema, 1);
        match p["in"].as_str() {
            Some("path") => {
                // Often an id that exists, so handlers get past their lookups.
                let existing = known.for_param(&name);
                let value = if existing.is_empty() {
                    drawn.prop_map(|v| param_text(&v)).boxed()
                } else {
                    prop_oneof![
                        2 => prop::sample::select(existing),
                        1 => drawn.prop_map(|v| param_text(&v)),
                    ]
                    .boxed()
                };
                path_params.push(value.prop_map(move |v| (name.clone(), v)).boxed());
            }
            Some("query") => {
                // Never the ticket (it would be a credential) and short waits only.
                if name == "ticket" {
                    continue;
                }
                query_params.push(
                    prop::option::weighted(0.4, drawn)
                        .prop_map(move |v| v.map(|v| (name.clone(), param_text(&v))))
                        .boxed(),
                );
            }
            _ => {}
        }
    }
    let body_schema = op.operation["requestBody"]["content"]["application/json"]["schema"].clone();
    let body: BoxedStrategy<Option<Body>> = if body_schema.is_null() {
        Just(None).boxed()
    } else {
        prop_oneof![
            12 => mutated(from_schema(doc, &body_schema, 0)).prop_map(|v| Some(Body::Json(v))),
            1 => Just(Some(Body::Raw("application/json", b"{\"unterminated\": ".to_vec()))),
            1 => Just(Some(Body::Raw("text/plain", b"{}".to_vec()))),
            1 => Just(None),
        ]
        .boxed()
    };
    let credential = prop_oneof![
        8 => Just(Credential::Admin),
        1 => Just(Credential::Viewer),
        1 => Just(Credential::WorkerKey),
        1 => Just(Credential::None),
        1 => Just(Credential::Garbage),
    ];
    let template = op.path.clone();
    (path_params, query_params, body, credential)
        .prop_map(move |(path_params, query, body, credential)| {
            let mut path = template.clone();
            for (name, value) in path_params {
                let encoded: String =
                    url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
                path = path.replace(&format!("{{{name}}}"), &encoded.replace('+', "%20"));
            }
            Call {
                op: index,
                path,
                query: query.into_iter().flatten().collect(),
                credential,
                body,
            }
        })
        .boxed()
}

/// Ids that exist on the server, so generated calls reach past "not found".
#[derive(Default)]
struct Known {
    tasks: Vec<String>,
    agents: Vec<String>,
}

impl Known {
    fn for_param(&self, name: &str) -> Vec<String> {
        match name {
            "id" => self.tasks.clone(),
            "name" => self.agents.clone(),
            _ => Vec::new(),
        }
    }
}

struct Target {
    app: TestApp,
    viewer: String,
    worker_key: String,
}

impl Target {
    async fn send(&self, call: &Call, op: &Operation) -> (StatusCode, String) {
        let mut url = self.app.url(&call.path);
        if !call.query.is_empty() {
            let q: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&call.query)
                .finish();
            url = format!("{url}?{q}");
        }
        let mut req = self
            .app
            .client
            .request(op.method.clone(), url.as_str())
            .timeout(Duration::from_secs(30));
        req = match &call.credential {
            Credential::Admin => req.bearer_auth(&self.app.admin),
            Credential::Viewer => req.bearer_auth(&self.viewer),
            Credential::WorkerKey => req.bearer_auth(&self.worker_key),
            Credential::None => req,
            Credential::Garbage => req.bearer_auth("sy_not-a-key"),
        };
        req = match &call.body {
            Some(Body::Json(v)) => req.json(v),
            Some(Body::Raw(ct, bytes)) => req.header("content-type", *ct).body(bytes.clone()),
            None => req,
        };
        // The harness's client panics if the response does not match the document.
        let resp = req.send().await.expect("the server answers");
        let status = resp.status();
        let is_stream = resp
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        let text = if is_stream {
            String::new()
        } else {
            resp.text().await.unwrap_or_default()
        };
        (status, text)
    }
}

#[test]
fn fuzz_every_operation_from_the_openapi_document() {
    let secs: u64 = std::env::var("SWITCHYARD_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let cases: u32 = std::env::var("SWITCHYARD_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let target = rt.block_on(async {
        let app = TestApp::spawn_with(|c| {
            // `?wait=` and cancellation must not hold a case for long.
            c.queue.max_wait_ms = 200;
        })
        .await;
        let (_, viewer) = app.user(Role::Viewer).await;
        let worker_key = app.api_key(&[Scope::Worker]).await;
        Target {
            app,
            viewer,
            worker_key,
        }
    });
    let mut known = Known::default();
    rt.block_on(async {
        let task = target.app.submit("echo", json!({"a": 1})).await;
        known.tasks.push(task["id"].as_str().unwrap().to_owned());
        known.agents = vec!["echo".into(), "sleep".into(), "fail".into()];
    });
    let contract = switchyard::testing::contract();
    let doc = &contract.document;
    // Streams and WebSocket upgrades are exercised by their own tests; the session-ending
    // logout would only log the fuzzer out; the single sign-on legs answer browsers with
    // redirects (to the provider, to the web app), tested in sso.rs.
    let skip = [
        "client_websocket",
        "worker_websocket",
        "logout",
        "start_sso_login",
        "finish_sso_login",
    ];
    let operations: Vec<(usize, &Operation)> = contract
        .operations
        .iter()
        .enumerate()
        .filter(|(_, op)| !skip.contains(&op.id()))
        .collect();
    let strategies: Vec<BoxedStrategy<Call>> = operations
        .iter()
        .map(|(i, op)| calls_for(doc, *i, op, &known))
        .collect();
    let strategy = prop::strategy::Union::new(strategies);

    let started = Instant::now();
    let budget = Duration::from_secs(secs);
    let target = Arc::new(target);
    let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
    let check = |call: &Call| -> Result<u16, String> {
        let op = &contract.operations[call.op];
        let outcome = {
            let target = target.clone();
            let call = call.clone();
            let contract = contract.clone();
            // The contract check panics on a mismatch: caught here as a failed case.
            rt.block_on(async move {
                tokio::spawn(async move {
                    let op = &contract.operations[call.op];
                    target.send(&call, op).await
                })
                .await
            })
        };
        let (status, text) = outcome.map_err(|e| {
            let panic = e
                .try_into_panic()
                .ok()
                .and_then(|p| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "the request task failed".into());
            format!("{} {}: {panic}", op.method, op.path)
        })?;
        if status.is_server_error() {
            return Err(format!(
                "{} {} answered {status}: {text}",
                op.method, op.path
            ));
        }
        Ok(status.as_u16())
    };
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let mut sent = 0u64;
    let mut failure = None;
    while started.elapsed() < budget && sent < u64::from(cases) {
        let mut tree = strategy.new_tree(&mut runner).expect("a request is drawn");
        sent += 1;
        match check(&tree.current()) {
            Ok(status) => *statuses.entry(status).or_default() += 1,
            Err(first) => {
                // Shrink to a smaller request that still fails (bounded in time).
                let mut smallest = (tree.current(), first);
                let shrink_until = Instant::now() + Duration::from_secs(30);
                let mut more = tree.simplify();
                while more && Instant::now() < shrink_until {
                    match check(&tree.current()) {
                        Err(e) => {
                            smallest = (tree.current(), e);
                            more = tree.simplify();
                        }
                        Ok(_) => more = tree.complicate(),
                    }
                }
                failure = Some(smallest);
                break;
            }
        }
    }
    eprintln!(
        "fuzz: {sent} requests in {:.1}s, statuses {statuses:?}",
        started.elapsed().as_secs_f64()
    );
    if let Some((call, error)) = failure {
        panic!("{error}\nsmallest failing request: {call:#?}");
    }
    let target = Arc::into_inner(target).expect("no request is in flight");
    rt.block_on(target.app.stop());
}
