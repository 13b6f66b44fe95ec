use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn register_list_update_delete() {
    let app = TestApp::spawn().await;
    let created = app
        .register(json!({
            "name": "summarize", "kind": "echo", "description": "d",
            "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
            "retry": {"max_attempts": 3, "base_ms": 100, "cap_ms": 1000},
            "timeout_ms": 5000, "concurrency": 4, "priority": 2
        }))
        .await;
    assert_eq!(
        created["retry"],
        json!({"max_attempts": 3, "base_ms": 100, "cap_ms": 1000})
    );
    assert_eq!(created["builtin"], false);
    let (status, list) = app.get("/api/v1/agents").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    for builtin in ["echo", "sleep", "fail", "summarize"] {
        assert!(names.contains(&builtin), "{builtin} in {names:?}");
    }
    let (status, again) = app
        .post(
            "/api/v1/agents",
            json!({"name": "summarize", "kind": "echo"}),
        )
        .await;
    assert_eq!(
        (status, error_code(&again)),
        (StatusCode::CONFLICT, "agent_exists")
    );

    // Defaults come from the contract.
    let minimal = app
        .register(json!({"name": "minimal", "kind": "echo"}))
        .await;
    assert_eq!(
        minimal["retry"],
        json!({"max_attempts": 5, "base_ms": 200, "cap_ms": 30000})
    );

    let (status, updated) = app
        .call(
            "PUT",
            "/api/v1/agents/summarize",
            Some(&app.admin),
            Some(json!({"kind": "echo", "priority": 7})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["priority"], 7);
    assert_eq!(updated["created_at"], created["created_at"]);
    let (_, got) = app.get("/api/v1/agents/summarize").await;
    assert_eq!(got["priority"], 7);
    assert!(got["input_schema"].is_null(), "PUT replaces the definition");

    let (status, _) = app
        .call(
            "PUT",
            "/api/v1/agents/brand-new",
            Some(&app.admin),
            Some(json!({"kind": "echo"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, err) = app
        .call(
            "PUT",
            "/api/v1/agents/summarize",
            Some(&app.admin),
            Some(json!({"name": "other", "kind": "echo"})),
        )
        .await;
    assert_eq!(
        (status, error_code(&err)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_agent")
    );

    let (status, _) = app
        .call("DELETE", "/api/v1/agents/summarize", Some(&app.admin), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, err) = app.get("/api/v1/agents/summarize").await;
    assert_eq!(
        (status, error_code(&err)),
        (StatusCode::NOT_FOUND, "agent_not_found")
    );
    let (status, err) = app
        .call("DELETE", "/api/v1/agents/echo", Some(&app.admin), None)
        .await;
    assert_eq!(
        (status, error_code(&err)),
        (StatusCode::CONFLICT, "agent_builtin")
    );
    app.stop().await;
}

#[tokio::test]
async fn fallback_cycles_and_bad_definitions_are_rejected() {
    let app = TestApp::spawn().await;
    app.register(json!({"name": "a", "kind": "echo"})).await;
    app.register(json!({"name": "b", "kind": "echo", "fallback": "a"}))
        .await;
    let (status, err) = app
        .call(
            "PUT",
            "/api/v1/agents/a",
            Some(&app.admin),
            Some(json!({"kind": "echo", "fallback": "b"})),
        )
        .await;
    assert_eq!(
        (status, error_code(&err)),
        (StatusCode::UNPROCESSABLE_ENTITY, "fallback_cycle"),
        "{err}"
    );
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("a -> b -> a")
    );
    let (status, err) = app
        .post(
            "/api/v1/agents",
            json!({"name": "self", "kind": "echo", "fallback": "self"}),
        )
        .await;
    assert_eq!(
        (status, error_code(&err)),
        (StatusCode::UNPROCESSABLE_ENTITY, "fallback_cycle")
    );
    let (status, err) = app
        .post(
            "/api/v1/agents",
            json!({"name": "c", "kind": "echo", "fallback": "missing"}),
        )
        .await;
    assert_eq!(
        (status, error_code(&err)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_agent")
    );
    let (status, err) = app
        .call("DELETE", "/api/v1/agents/a", Some(&app.admin), None)
        .await;
    assert_eq!(
        (status, error_code(&err)),
        (StatusCode::CONFLICT, "agent_in_use")
    );

    for (body, needle) in [
        (
            json!({"name": "Bad Name", "kind": "echo"}),
            "invalid agent name",
        ),
        (json!({"name": "x", "kind": "teleport"}), "kind"),
        (
            json!({"name": "x", "kind": "echo", "retry": {"max_attempts": 0}}),
            "max_attempts",
        ),
        (
            json!({"name": "x", "kind": "echo", "retries": 3}),
            "retries",
        ),
        (
            json!({"name": "x", "kind": "echo", "input_schema": {"type": 12}}),
            "input_schema",
        ),
        (
            json!({"name": "x", "kind": "http", "config": {"url": "not a url"}}),
            "url",
        ),
        (
            json!({"name": "x", "kind": "echo", "timeout_ms": 0}),
            "timeout_ms",
        ),
        (
            json!({"name": "x", "kind": "echo", "concurrency": 0}),
            "concurrency",
        ),
    ] {
        let (status, err) = app.post("/api/v1/agents", body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {err}");
        assert!(
            err["error"]["message"].as_str().unwrap().contains(needle),
            "{body} -> {err}"
        );
    }
    app.stop().await;
}
