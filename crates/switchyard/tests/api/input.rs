//! Bad input of every kind gets a clear 4xx JSON error and loses nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

async fn raw(
    app: &TestApp,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .request(method.parse().unwrap(), app.url(path))
        .bearer_auth(&app.admin)
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let request_id = resp.headers().get("x-request-id").cloned();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status.is_client_error() {
        assert_eq!(
            body["error"]["request_id"].as_str(),
            request_id.as_ref().and_then(|v| v.to_str().ok()),
            "errors carry the request id: {body}"
        );
    }
    (status, body)
}

#[tokio::test]
async fn malformed_and_mistyped_bodies() {
    let app = TestApp::spawn().await;
    let json_ct = Some("application/json");
    let cases: Vec<(&[u8], Option<&str>, StatusCode, &str)> = vec![
        (
            b"{\"agent\": \"echo\",",
            json_ct,
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            b"not json at all",
            json_ct,
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            b"{\"agent\": 12}",
            json_ct,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            b"{\"input\": {}}",
            json_ct,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            b"{\"agent\": \"echo\", \"priority\": \"high\"}",
            json_ct,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            b"{\"agent\": \"echo\", \"surprise\": 1}",
            json_ct,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            b"[1, 2, 3]",
            json_ct,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            b"{\"agent\": \"echo\"}",
            Some("text/plain"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            b"{\"agent\": \"echo\"}",
            None,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            b"{\"agent\": \"echo\", \"input\": \"x\"}",
            json_ct,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            b"{\"agent\": \"echo\", \"input\": [1]}",
            json_ct,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            b"{\"agent\": \"echo\", \"input\": null}",
            json_ct,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            b"{\"agent\": \"ghost\"}",
            json_ct,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_agent",
        ),
        (
            b"{\"agent\": \"echo\", \"run_at\": \"next tuesday\"}",
            json_ct,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            b"{\"agent\": \"echo\", \"parent_id\": \"not-a-uuid\"}",
            json_ct,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            b"{\"agent\": \"echo\", \"priority\": 99999999}",
            json_ct,
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
    ];
    for (body, ct, status, code) in cases {
        let (got, err) = raw(&app, "POST", "/api/v1/tasks", ct, body.to_vec()).await;
        assert_eq!(
            (got, error_code(&err)),
            (status, code),
            "{} -> {err}",
            String::from_utf8_lossy(body)
        );
        assert!(
            !err["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
        );
    }
    // The field at fault is named.
    let (_, err) = raw(
        &app,
        "POST",
        "/api/v1/tasks",
        json_ct,
        br#"{"agent": "echo", "surprise": 1}"#.to_vec(),
    )
    .await;
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("surprise"),
        "{err}"
    );
    app.stop().await;
}

#[tokio::test]
async fn every_schema_violation_is_listed() {
    let app = TestApp::spawn().await;
    app.register(json!({
        "name": "typed", "kind": "echo",
        "input_schema": {
            "type": "object",
            "properties": {"n": {"type": "integer", "minimum": 1}, "s": {"type": "string", "maxLength": 3}},
            "required": ["n", "s", "z"],
            "additionalProperties": false
        }
    }))
    .await;
    let (status, err) = app
        .post(
            "/api/v1/tasks",
            json!({"agent": "typed", "input": {"n": 0, "s": "long", "extra": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&err), "validation_failed");
    let violations = err["error"]["details"]["violations"].as_array().unwrap();
    let keywords: Vec<&str> = violations
        .iter()
        .map(|v| v["keyword"].as_str().unwrap())
        .collect();
    for k in ["minimum", "maxLength", "required", "additionalProperties"] {
        assert!(keywords.contains(&k), "{k} missing from {keywords:?}");
    }
    assert!(violations.iter().any(|v| v["path"] == "/n"));
    app.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = TestApp::spawn_with(|c| c.server.body_limit_bytes = 64 * 1024).await;
    let big = "x".repeat(100 * 1024);
    let (status, err) = app
        .post(
            "/api/v1/tasks",
            json!({"agent": "echo", "input": {"blob": big}}),
        )
        .await;
    assert_eq!(
        (status, error_code(&err)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    let (status, _) = app
        .post(
            "/api/v1/tasks",
            json!({"agent": "echo", "input": {"blob": "small"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "the server is fine afterwards");
    app.stop().await;
}

#[tokio::test]
async fn bad_ids_unknown_ids_routes_and_methods() {
    let app = TestApp::spawn().await;
    let (status, err) = app.get("/api/v1/tasks/not-a-uuid").await;
    assert_eq!(
        (status, error_code(&err)),
        (StatusCode::BAD_REQUEST, "invalid_parameter")
    );
    let (status, err) = app
        .get(&format!("/api/v1/tasks/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(
        (status, error_code(&err)),
        (StatusCode::NOT_FOUND, "task_not_found")
    );
    let (status, err) = app
        .post(
            &format!("/api/v1/tasks/{}/cancel", uuid::Uuid::now_v7()),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, error_code(&err)),
        (StatusCode::NOT_FOUND, "task_not_found")
    );
    let (status, err) = app.get("/api/v1/nothing-here").await;
    assert_eq!(
        (status, error_code(&err)),
        (StatusCode::NOT_FOUND, "route_not_found")
    );
    let (status, err) = app
        .call("DELETE", "/api/v1/tasks", Some(&app.admin), None)
        .await;
    assert_eq!(
        (status, error_code(&err)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    let (status, err) = app.get("/api/v1/tasks?wait=forever").await;
    assert_eq!(
        (status, error_code(&err)),
        (StatusCode::BAD_REQUEST, "invalid_parameter"),
        "a mistyped query parameter is an error, not silently ignored"
    );
    assert!(
        err["error"]["message"].as_str().unwrap().contains("wait"),
        "the error names the parameter: {err}"
    );
    let (status, err) = app
        .post("/api/v1/tasks?wait=forever", json!({"agent": "echo"}))
        .await;
    assert_eq!(
        (status, error_code(&err)),
        (StatusCode::BAD_REQUEST, "invalid_parameter")
    );
    app.stop().await;
}

#[tokio::test]
async fn openapi_document_is_served_and_stable() {
    let app = TestApp::spawn().await;
    let (status, doc) = app.call("GET", "/api/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let resp = app.client.get(app.url("/api/docs/")).send().await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the browsable docs page is served"
    );
    // Every operation has its own id (code generators require it) and a summary.
    let mut ids = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
            assert!(op["summary"].is_string(), "{method} {path} is undocumented");
        }
    }
    // The contract: any change to routes or schemas shows up in this snapshot.
    insta::assert_json_snapshot!("openapi", doc);
    app.stop().await;
}

/// Objects with their keys sorted, recursively (the web copy's format).
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The web UI generates its API types from `web/openapi.json`: it must be the served
/// document. `SWITCHYARD_UPDATE_OPENAPI=1` rewrites it (then run `npm run gen:api` in web/).
#[tokio::test]
async fn web_copy_of_the_openapi_document_is_current() {
    let app = TestApp::spawn().await;
    let (status, doc) = app.call("GET", "/api/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/openapi.json");
    if std::env::var_os("SWITCHYARD_UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        let text = serde_json::to_string_pretty(&sorted(&doc)).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
        return;
    }
    let copy: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(
        copy == doc,
        "web/openapi.json differs from the served document: run \
         `SWITCHYARD_UPDATE_OPENAPI=1 cargo test -p switchyard --test api web_copy` \
         and `npm run gen:api` in web/"
    );
}

/// The harness's contract check itself: what it must refuse.
#[test]
fn the_contract_check_refuses_what_the_document_does_not_describe() {
    let contract = contract();
    let get = axum::http::Method::GET;
    let json = Some("application/json");
    let agent = serde_json::to_vec(&json!({"items": [{"name": "echo"}]})).unwrap();
    let e = contract
        .check(&get, "/api/v1/agents", StatusCode::OK, json, Some(&agent))
        .unwrap_err();
    assert!(e.contains("does not match"), "{e}");
    let e = contract
        .check(
            &get,
            "/api/v1/agents",
            StatusCode::CONFLICT,
            json,
            Some(b"{}"),
        )
        .unwrap_err();
    assert!(e.contains("does not list"), "{e}");
    let e = contract
        .check(
            &get,
            "/api/v1/agents",
            StatusCode::OK,
            Some("text/plain"),
            Some(b"x"),
        )
        .unwrap_err();
    assert!(e.contains("lists"), "{e}");
    let ok = serde_json::to_vec(&json!({"items": []})).unwrap();
    contract
        .check(&get, "/api/v1/agents", StatusCode::OK, json, Some(&ok))
        .unwrap();
    // An id that is not an operation (no route) still answers the error shape.
    let e = contract
        .check(
            &get,
            "/api/v1/nowhere",
            StatusCode::NOT_FOUND,
            json,
            Some(b"{}"),
        )
        .unwrap_err();
    assert!(e.contains("ErrorBody"), "{e}");
}
