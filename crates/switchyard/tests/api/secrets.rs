//! Secrets in agent configuration (an `http` agent's header values) are write-only: no
//! caller, admins included, reads them back; the webhook still receives them.

use axum::Json;
use axum::http::HeaderMap;
use axum::routing::post;
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_core::auth::{Role, Scope};

use crate::common::*;

const SECRET: &str = "Bearer s3cret-downstream-token";

/// A webhook that answers with the headers it was sent.
async fn receiver() -> String {
    let app = axum::Router::new().route(
        "/hook",
        post(|headers: HeaderMap| async move {
            let get = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            };
            Json(json!({"authorization": get("authorization"), "team": get("x-team")}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hook")
}

async fn run(app: &TestApp, agent: &str) -> Value {
    let task = app.submit(agent, json!({"x": 1})).await;
    let done = app
        .wait_status(
            task["id"].as_str().unwrap(),
            &["succeeded", "failed", "dead"],
        )
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    done["output"].clone()
}

fn assert_masked(body: &Value, what: &str) {
    let text = body.to_string();
    assert!(!text.contains("s3cret"), "{what} shows the secret: {text}");
}

fn hook_of(body: &Value) -> Value {
    match body.get("items") {
        Some(items) => items
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "hook")
            .cloned()
            .expect("the list has the agent"),
        None => body.clone(),
    }
}

#[tokio::test]
async fn http_agent_headers_are_write_only_for_every_caller() {
    let app = TestApp::spawn().await;
    let url = receiver().await;
    let created = app
        .register(json!({"name": "hook", "kind": "http",
            "config": {"url": url, "headers": {"Authorization": SECRET, "X-Team": "blue"}}}))
        .await;
    assert_masked(&created, "the create response");
    assert_eq!(
        created["config"],
        json!({"url": url, "headers": {"Authorization": "***", "X-Team": "***"}})
    );
    assert_eq!(
        created["secrets"],
        json!(["/config/headers/Authorization", "/config/headers/X-Team"])
    );

    let (_, viewer) = app.user(Role::Viewer).await;
    let (_, operator) = app.user(Role::Operator).await;
    let mut callers = vec![
        ("admin", app.admin.clone()),
        ("viewer", viewer),
        ("operator", operator),
    ];
    for scope in [Scope::Read, Scope::Submit, Scope::Worker, Scope::Admin] {
        callers.push(("a scoped API key", app.api_key(&[scope]).await));
    }
    for (who, token) in &callers {
        for path in ["/api/v1/agents", "/api/v1/agents/hook"] {
            let (status, body) = app.call("GET", path, Some(token), None).await;
            assert_eq!(status, StatusCode::OK, "{who} GET {path}: {body}");
            assert_masked(&body, &format!("GET {path} as {who}"));
            let agent = hook_of(&body);
            assert_eq!(agent["config"]["headers"]["Authorization"], "***", "{who}");
            assert_eq!(
                agent["secrets"][0], "/config/headers/Authorization",
                "{who} is told the secret is set"
            );
        }
    }

    // The webhook gets the real values.
    let out = run(&app, "hook").await;
    assert_eq!(out["authorization"], SECRET);
    assert_eq!(out["team"], "blue");

    // Only admins set them.
    let (_, operator) = &callers[2];
    let (status, _) = app
        .call(
            "PUT",
            "/api/v1/agents/hook",
            Some(operator),
            Some(
                json!({"kind": "http", "config": {"url": url, "headers": {"Authorization": "x"}}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // An update that sends the mask back keeps the stored value; others change.
    let (status, updated) = app
        .call(
            "PUT",
            "/api/v1/agents/hook",
            Some(&app.admin),
            Some(json!({"kind": "http", "timeout_ms": 5000,
                "config": {"url": url, "headers": {"Authorization": "***", "X-Team": "green"}}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_masked(&updated, "the update response");
    assert_eq!(updated["timeout_ms"], 5000);
    let out = run(&app, "hook").await;
    assert_eq!(out["authorization"], SECRET, "the masked secret was kept");
    assert_eq!(out["team"], "green");

    // The mask where nothing is stored is refused, not saved as the credential.
    let (status, err) = app
        .call(
            "PUT",
            "/api/v1/agents/hook",
            Some(&app.admin),
            Some(json!({"kind": "http",
                "config": {"url": url, "headers": {"Authorization": "***", "X-Other": "***"}}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/config/headers/X-Other"),
        "{err}"
    );
    let (status, err) = app
        .post(
            "/api/v1/agents",
            json!({"name": "hook2", "kind": "http",
                "config": {"url": url, "headers": {"Authorization": "***"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");

    // A new value replaces it; leaving a header out removes it.
    let (status, _) = app
        .call(
            "PUT",
            "/api/v1/agents/hook",
            Some(&app.admin),
            Some(json!({"kind": "http",
                "config": {"url": url, "headers": {"Authorization": "Bearer rotated"}}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let out = run(&app, "hook").await;
    assert_eq!(out["authorization"], "Bearer rotated");
    assert_eq!(out["team"], "");
    app.stop().await;
}
