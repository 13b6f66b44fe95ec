//! The API contract in the test harness: every response the tests receive is checked
//! against the OpenAPI document the server serves. Its status must be one the operation
//! documents, its content type one documented for that status, and a JSON body must
//! match the documented schema. A mismatch panics, failing the test that made the call.
//!
//! Each schema is compiled once per test process, on first use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

/// One operation of the document.
pub struct Operation {
    pub method: Method,
    /// The path template, e.g. `/api/v1/tasks/{id}`.
    pub path: String,
    pub segments: Vec<String>,
    pub operation: Value,
}

impl Operation {
    pub fn id(&self) -> &str {
        self.operation["operationId"].as_str().unwrap_or_default()
    }

    /// How many literal segments the template has (axum prefers literal matches).
    fn literals(&self) -> usize {
        self.segments.iter().filter(|s| !s.starts_with('{')).count()
    }

    fn matches(&self, segments: &[&str]) -> bool {
        self.segments.len() == segments.len()
            && self
                .segments
                .iter()
                .zip(segments)
                .all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s)
    }
}

pub struct Contract {
    pub document: Value,
    pub operations: Vec<Operation>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

/// The contract of this build's API (the document `/api/openapi.json` serves).
pub fn contract() -> Arc<Contract> {
    static CONTRACT: OnceLock<Arc<Contract>> = OnceLock::new();
    CONTRACT
        .get_or_init(|| {
            let document =
                serde_json::to_value(switchyard_api::openapi()).expect("the document is JSON");
            Arc::new(Contract::new(document))
        })
        .clone()
}

impl Contract {
    pub fn new(document: Value) -> Self {
        let mut operations = Vec::new();
        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                let Ok(method) = method.to_uppercase().parse::<Method>() else {
                    continue;
                };
                operations.push(Operation {
                    method,
                    path: path.clone(),
                    segments: path.split('/').map(str::to_owned).collect(),
                    operation: op.clone(),
                });
            }
        }
        Contract {
            document,
            operations,
            validators: Mutex::new(HashMap::new()),
        }
    }

    /// The operation axum routes `method path` to, if any: the template with the most
    /// literal segments among those matching the path wins, as in axum's router.
    pub fn operation(&self, method: &Method, path: &str) -> Option<&Operation> {
        let segments: Vec<&str> = path.split('/').collect();
        let best = self
            .operations
            .iter()
            .filter(|o| o.matches(&segments))
            .map(Operation::literals)
            .max()?;
        self.operations
            .iter()
            .find(|o| o.matches(&segments) && o.literals() == best && o.method == *method)
    }

    /// A compiled validator for the schema at `pointer` in the document.
    pub fn validator(&self, pointer: &str) -> Arc<jsonschema::Validator> {
        if let Some(v) = self
            .validators
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(pointer)
        {
            return v.clone();
        }
        let schema = self
            .document
            .pointer(pointer)
            .unwrap_or_else(|| panic!("no schema at {pointer} in the OpenAPI document"));
        // The schema with the document's components beside it, so `#/components/…`
        // references resolve.
        let mut root = json!({ "components": self.document["components"] });
        match schema {
            Value::Object(map) => {
                for (k, v) in map {
                    root[k] = v.clone();
                }
            }
            Value::Bool(true) => {}
            other => panic!("the schema at {pointer} is not an object: {other}"),
        }
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&root)
            .unwrap_or_else(|e| panic!("the schema at {pointer} does not compile: {e}"));
        let validator = Arc::new(validator);
        self.validators
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pointer.to_owned(), validator.clone());
        validator
    }

    /// Checks one response against the document; `Err` says what does not match.
    /// `body` is `None` for a stream, whose body is not read.
    pub fn check(
        &self,
        method: &Method,
        path: &str,
        status: StatusCode,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<(), String> {
        let what = format!("{method} {path} answered {status}");
        let Some(op) = self.operation(method, path) else {
            // Outside the API (docs, UI) or no route: errors still have the error shape.
            if path.starts_with("/api/v1") && status.as_u16() >= 400 {
                return self.check_body("/components/schemas/ErrorBody", &what, content_type, body);
            }
            return Ok(());
        };
        let status_key = status.as_u16().to_string();
        let escaped = op.path.replace('~', "~0").replace('/', "~1");
        let method_key = op.method.as_str().to_lowercase();
        let Some(response) = op.operation["responses"].get(&status_key) else {
            return Err(format!(
                "{what}, which the OpenAPI document does not list for {} (it lists {:?}); body: {}",
                op.id(),
                op.operation["responses"]
                    .as_object()
                    .map(|r| r.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default(),
                body.map(String::from_utf8_lossy).unwrap_or_default()
            ));
        };
        let Some(content) = response.get("content").and_then(Value::as_object) else {
            return match body {
                Some(b) if !b.is_empty() && status != StatusCode::SWITCHING_PROTOCOLS => {
                    Err(format!(
                        "{what} with a body, but the document describes none: {}",
                        String::from_utf8_lossy(b)
                    ))
                }
                _ => Ok(()),
            };
        };
        let essence = content_type
            .and_then(|c| c.split(';').next())
            .map(|c| c.trim().to_ascii_lowercase())
            .unwrap_or_default();
        // `*/*`: the response is the stored content, of whatever type it was stored with.
        if !content.contains_key(&essence) && !content.contains_key("*/*") {
            return Err(format!(
                "{what} as {essence:?}, but the document lists {:?} for it",
                content.keys().collect::<Vec<_>>()
            ));
        }
        if essence != "application/json" || !content.contains_key(&essence) {
            return Ok(());
        }
        let pointer = format!(
            "/paths/{escaped}/{method_key}/responses/{status_key}/content/application~1json/schema"
        );
        self.check_body(&pointer, &what, content_type, body)
    }

    fn check_body(
        &self,
        pointer: &str,
        what: &str,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<(), String> {
        let Some(body) = body else {
            return Ok(());
        };
        if !content_type.is_some_and(|c| c.starts_with("application/json")) {
            return Err(format!(
                "{what} as {content_type:?}, expected JSON: {}",
                String::from_utf8_lossy(body)
            ));
        }
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            format!(
                "{what} with a body that is not JSON ({e}): {}",
                String::from_utf8_lossy(body)
            )
        })?;
        let validator = self.validator(pointer);
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .take(5)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{what} with a body that does not match the OpenAPI document ({pointer}): {}; body: {value}",
                errors.join("; ")
            ))
        }
    }
}

/// A `reqwest::Client` whose every response is checked against the [`Contract`].
#[derive(Clone)]
pub struct CheckedClient {
    pub inner: reqwest::Client,
    contract: Arc<Contract>,
}

impl CheckedClient {
    pub fn new(inner: reqwest::Client) -> Self {
        CheckedClient {
            inner,
            contract: contract(),
        }
    }

    pub fn request(&self, method: reqwest::Method, url: impl reqwest::IntoUrl) -> CheckedRequest {
        CheckedRequest {
            inner: self.inner.request(method, url),
            contract: self.contract.clone(),
        }
    }

    pub fn get(&self, url: impl reqwest::IntoUrl) -> CheckedRequest {
        self.request(reqwest::Method::GET, url)
    }

    pub fn post(&self, url: impl reqwest::IntoUrl) -> CheckedRequest {
        self.request(reqwest::Method::POST, url)
    }

    pub fn put(&self, url: impl reqwest::IntoUrl) -> CheckedRequest {
        self.request(reqwest::Method::PUT, url)
    }

    pub fn patch(&self, url: impl reqwest::IntoUrl) -> CheckedRequest {
        self.request(reqwest::Method::PATCH, url)
    }

    pub fn delete(&self, url: impl reqwest::IntoUrl) -> CheckedRequest {
        self.request(reqwest::Method::DELETE, url)
    }
}

/// A request whose response is checked when it arrives.
pub struct CheckedRequest {
    inner: reqwest::RequestBuilder,
    contract: Arc<Contract>,
}

impl CheckedRequest {
    pub fn header<K, V>(self, key: K, value: V) -> Self
    where
        reqwest::header::HeaderName: TryFrom<K>,
        <reqwest::header::HeaderName as TryFrom<K>>::Error: Into<axum::http::Error>,
        reqwest::header::HeaderValue: TryFrom<V>,
        <reqwest::header::HeaderValue as TryFrom<V>>::Error: Into<axum::http::Error>,
    {
        self.map(|r| r.header(key, value))
    }

    pub fn bearer_auth<T: std::fmt::Display>(self, token: T) -> Self {
        self.map(|r| r.bearer_auth(token))
    }

    pub fn json<T: serde::Serialize + ?Sized>(self, json: &T) -> Self {
        self.map(|r| r.json(json))
    }

    pub fn body<T: Into<reqwest::Body>>(self, body: T) -> Self {
        self.map(|r| r.body(body))
    }

    pub fn timeout(self, timeout: std::time::Duration) -> Self {
        self.map(|r| r.timeout(timeout))
    }

    fn map(self, f: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder) -> Self {
        CheckedRequest {
            inner: f(self.inner),
            contract: self.contract,
        }
    }

    /// Sends the request and checks the response (panicking on a mismatch). A response's
    /// body is read here and handed back in a response of its own; an event stream's is
    /// left unread.
    pub async fn send(self) -> reqwest::Result<reqwest::Response> {
        let (client, request) = self.inner.build_split();
        let request = request?;
        let method = request.method().clone();
        let path = request.url().path().to_owned();
        let response = client.execute(request).await?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("text/event-stream"))
        {
            if let Err(e) =
                self.contract
                    .check(&method, &path, status, content_type.as_deref(), None)
            {
                panic!("API contract: {e}");
            }
            return Ok(response);
        }
        let version = response.version();
        let headers = response.headers().clone();
        let bytes = response.bytes().await?;
        if let Err(e) = self.contract.check(
            &method,
            &path,
            status,
            content_type.as_deref(),
            Some(&bytes),
        ) {
            panic!("API contract: {e}");
        }
        let mut rebuilt = axum::http::Response::new(bytes);
        *rebuilt.status_mut() = status;
        *rebuilt.version_mut() = version;
        *rebuilt.headers_mut() = headers;
        Ok(reqwest::Response::from(rebuilt))
    }
}
