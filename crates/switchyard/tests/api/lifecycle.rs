//! The Error Recovery flow end to end: retries with backoff, fallback, dead letters,
//! replay, timeouts, cancellation.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn retryable_failures_back_off_then_succeed() {
    let app = TestApp::spawn().await;
    let t = app
        .submit("fail", json!({"times": 2, "class": "retryable"}))
        .await;
    let done = app
        .wait_status(t["id"].as_str().unwrap(), &["succeeded", "dead"])
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let attempts = done["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    assert_eq!(attempts[0]["status"], "failed");
    assert_eq!(attempts[0]["error"]["class"], "retryable");
    assert_eq!(attempts[1]["status"], "failed");
    assert_eq!(attempts[2]["status"], "succeeded");
    assert_eq!(done["output"], json!({"attempts": 3}));
    for a in attempts {
        assert!(
            a["worker_id"].is_string()
                && a["started_at"].is_string()
                && a["finished_at"].is_string()
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn out_of_attempts_is_dead_and_replayable() {
    let app = TestApp::spawn().await;
    app.register(json!({"name": "twice", "kind": "fail", "retry": {"max_attempts": 2, "base_ms": 10, "cap_ms": 50}})).await;
    let t = app.submit("twice", json!({"times": 2})).await;
    let id = t["id"].as_str().unwrap();
    let dead = app.wait_status(id, &["dead"]).await;
    assert_eq!(dead["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(dead["error"]["code"], "simulated_failure");
    let (_, letters) = app.get("/api/v1/tasks?status=dead").await;
    assert!(
        letters["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == id),
        "listed as a dead letter"
    );

    // Replay: a fresh budget of two attempts; the third attempt overall succeeds.
    let (status, replayed) = app
        .post(&format!("/api/v1/tasks/{id}/retry"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    assert_eq!(replayed["status"], "queued");
    let done = app.wait_status(id, &["succeeded", "dead"]).await;
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["attempts"].as_array().unwrap().len(), 3);
    let (status, err) = app
        .post(&format!("/api/v1/tasks/{id}/retry"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&err), "invalid_state");
    app.stop().await;
}

#[tokio::test]
async fn permanent_errors_go_straight_to_the_fallback() {
    let app = TestApp::spawn().await;
    app.register(json!({"name": "primary", "kind": "fail", "fallback": "echo"}))
        .await;
    let t = app
        .submit("primary", json!({"times": 5, "class": "permanent"}))
        .await;
    let failed = app
        .wait_status(t["id"].as_str().unwrap(), &["failed", "dead"])
        .await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(
        failed["attempts"].as_array().unwrap().len(),
        1,
        "no retries for a permanent error"
    );
    assert_eq!(failed["error"]["class"], "permanent");
    let fb_id = failed["fallback_task_id"]
        .as_str()
        .expect("a fallback task")
        .to_owned();
    let fb = app.wait_status(&fb_id, &["succeeded"]).await;
    assert_eq!(fb["agent"], "echo");
    assert_eq!(fb["fallback_of"], t["id"]);
    assert_eq!(
        fb["input"], failed["input"],
        "the fallback gets the same input"
    );
    app.stop().await;
}

#[tokio::test]
async fn fallback_chains_run_in_order() {
    let app = TestApp::spawn().await;
    app.register(json!({"name": "last", "kind": "echo"})).await;
    app.register(
        json!({"name": "middle", "kind": "fail", "fallback": "last", "retry": {"max_attempts": 1}}),
    )
    .await;
    app.register(json!({"name": "first", "kind": "fail", "fallback": "middle", "retry": {"max_attempts": 2, "base_ms": 5, "cap_ms": 10}})).await;
    let t = app.submit("first", json!({"times": 9})).await;
    let first = app
        .wait_status(t["id"].as_str().unwrap(), &["failed"])
        .await;
    assert_eq!(
        first["attempts"].as_array().unwrap().len(),
        2,
        "retryable: both attempts used first"
    );
    let middle = app
        .wait_status(first["fallback_task_id"].as_str().unwrap(), &["failed"])
        .await;
    assert_eq!(middle["agent"], "middle");
    let last = app
        .wait_status(middle["fallback_task_id"].as_str().unwrap(), &["succeeded"])
        .await;
    assert_eq!(last["agent"], "last");
    app.stop().await;
}

#[tokio::test]
async fn rate_limited_errors_wait_for_retry_after() {
    let app = TestApp::spawn().await;
    let t = app
        .submit(
            "fail",
            json!({"times": 1, "class": "rate_limited", "retry_after_ms": 1200}),
        )
        .await;
    let done = app
        .wait_status(t["id"].as_str().unwrap(), &["succeeded"])
        .await;
    let a = done["attempts"].as_array().unwrap();
    assert_eq!(a[0]["error"]["class"], "rate_limited");
    let failed_at =
        switchyard_core::Timestamp::parse_rfc3339(a[0]["finished_at"].as_str().unwrap()).unwrap();
    let retried_at =
        switchyard_core::Timestamp::parse_rfc3339(a[1]["started_at"].as_str().unwrap()).unwrap();
    assert!(
        retried_at.since(failed_at) >= 1_150,
        "retried after {} ms",
        retried_at.since(failed_at)
    );
    app.stop().await;
}

#[tokio::test]
async fn attempts_time_out() {
    let app = TestApp::spawn().await;
    app.register(json!({"name": "impatient", "kind": "sleep", "timeout_ms": 200, "retry": {"max_attempts": 2, "base_ms": 10, "cap_ms": 20}})).await;
    let t = app.submit("impatient", json!({"ms": 5000})).await;
    let dead = app.wait_status(t["id"].as_str().unwrap(), &["dead"]).await;
    let attempts = dead["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert!(
        attempts.iter().all(|a| a["error"]["code"] == "timeout"),
        "{dead}"
    );
    app.stop().await;
}

/// Cancelling a task cancels its unfinished descendants, waiting or running; finished
/// ones and unrelated tasks keep their status.
#[tokio::test]
async fn cancel_cascades_to_child_tasks() {
    let app = TestApp::spawn().await;
    let client = &app;
    let submit = |body: serde_json::Value| async move {
        let (status, task) = client.post("/api/v1/tasks", body).await;
        assert_eq!(status, StatusCode::CREATED, "{task}");
        task["id"].as_str().unwrap().to_owned()
    };
    let parent = submit(json!({"agent": "sleep", "input": {"ms": 30000}})).await;
    let done_child = submit(json!({"agent": "echo", "parent_id": parent})).await;
    app.wait_status(&done_child, &["succeeded"]).await;
    let running_child =
        submit(json!({"agent": "sleep", "input": {"ms": 30000}, "parent_id": parent})).await;
    let waiting_child =
        submit(json!({"agent": "echo", "delay_ms": 60000, "parent_id": parent})).await;
    let grandchild =
        submit(json!({"agent": "echo", "delay_ms": 60000, "parent_id": running_child})).await;
    let stranger = submit(json!({"agent": "echo", "delay_ms": 60000})).await;
    app.wait_status(&parent, &["running"]).await;
    app.wait_status(&running_child, &["running"]).await;

    let (status, _) = app
        .post(&format!("/api/v1/tasks/{parent}/cancel"), json!({}))
        .await;
    assert!(status.is_success(), "{status}");
    for id in [&parent, &running_child, &waiting_child, &grandchild] {
        app.wait_status(id, &["cancelled"]).await;
    }
    assert_eq!(app.task(&done_child).await["status"], "succeeded");
    assert_eq!(app.task(&stranger).await["status"], "queued");
    let (_, children) = app.get(&format!("/api/v1/tasks?parent_id={parent}")).await;
    assert_eq!(children["items"].as_array().unwrap().len(), 3, "{children}");
    app.stop().await;
}

#[tokio::test]
async fn cancel_waiting_and_running_tasks() {
    let app = TestApp::spawn().await;
    let delayed = app
        .post("/api/v1/tasks", json!({"agent": "echo", "delay_ms": 60000}))
        .await
        .1;
    let id = delayed["id"].as_str().unwrap();
    let (status, cancelled) = app
        .post(&format!("/api/v1/tasks/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");

    let slow = app.submit("sleep", json!({"ms": 30000})).await;
    let sid = slow["id"].as_str().unwrap();
    app.wait_status(sid, &["running"]).await;
    let (status, requested) = app
        .post(&format!("/api/v1/tasks/{sid}/cancel"), json!({}))
        .await;
    assert!(
        status == StatusCode::ACCEPTED || status == StatusCode::OK,
        "{status} {requested}"
    );
    let done = app.wait_status(sid, &["cancelled"]).await;
    assert_eq!(done["attempts"][0]["status"], "cancelled");
    assert!(done["finished_at"].is_string());

    let (status, err) = app
        .post(&format!("/api/v1/tasks/{sid}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&err), "invalid_state");
    // A cancelled task can be replayed.
    let (status, _) = app
        .post(&format!("/api/v1/tasks/{id}/retry"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn output_schema_violations_fail_the_attempt() {
    let app = TestApp::spawn().await;
    app.register(json!({
        "name": "strict", "kind": "echo",
        "output_schema": {"type": "object", "required": ["answer"]}
    }))
    .await;
    let t = app.submit("strict", json!({"question": 1})).await;
    let dead = app.wait_status(t["id"].as_str().unwrap(), &["dead"]).await;
    assert_eq!(dead["error"]["code"], "invalid_output");
    assert_eq!(
        dead["attempts"].as_array().unwrap().len(),
        1,
        "permanent: not retried"
    );
    let ok = app.submit("strict", json!({"answer": 42})).await;
    app.wait_status(ok["id"].as_str().unwrap(), &["succeeded"])
        .await;
    app.stop().await;
}
