//! Flow control through the real server: schedules, concurrency keys, rate limits and
//! turns between keys.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_core::Timestamp;
use switchyard_core::auth::{Role, Scope};

use crate::common::*;

fn ts(v: &Value) -> Timestamp {
    Timestamp::parse_rfc3339(v.as_str().expect("a timestamp")).expect("rfc3339")
}

async fn schedule(app: &TestApp, body: Value) -> Value {
    let (status, created) = app.post("/api/v1/schedules", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

#[tokio::test]
async fn schedules_are_created_read_paused_triggered_and_deleted() {
    let app = TestApp::spawn().await;
    let created = schedule(
        &app,
        json!({"name": "every-2s", "agent": "echo", "input": {"n": 1}, "cron": "*/2 * * * * *"}),
    )
    .await;
    assert_eq!(
        (
            &created["timezone"],
            &created["overlap"],
            &created["catchup"],
            &created["paused"]
        ),
        (
            &json!("UTC"),
            &json!("allow"),
            &json!("none"),
            &json!(false)
        )
    );
    let next: Vec<Timestamp> = created["next_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(ts)
        .collect();
    assert_eq!(next.len(), 5);
    for pair in next.windows(2) {
        assert_eq!(pair[1].since(pair[0]), 2_000, "{next:?}");
    }
    let (status, again) = app
        .post(
            "/api/v1/schedules",
            json!({"name": "every-2s", "agent": "echo", "cron": "* * * * *"}),
        )
        .await;
    assert_eq!(
        (status, error_code(&again)),
        (StatusCode::CONFLICT, "schedule_exists")
    );
    for (body, code, needle) in [
        (
            json!({"name": "x", "agent": "echo", "cron": "61 * * * *"}),
            "invalid_schedule",
            "61 * * * *",
        ),
        (
            json!({"name": "x", "agent": "echo", "cron": "* * *"}),
            "invalid_schedule",
            "5 fields",
        ),
        (
            json!({"name": "x", "agent": "echo", "cron": "* * * * *", "timezone": "Mars/Base"}),
            "invalid_schedule",
            "Mars/Base",
        ),
        (
            json!({"name": "x", "agent": "nope", "cron": "* * * * *"}),
            "unknown_agent",
            "nope",
        ),
        (
            json!({"name": "Bad Name", "agent": "echo", "cron": "* * * * *"}),
            "invalid_schedule",
            "Bad Name",
        ),
        (
            json!({"name": "preview", "agent": "echo", "cron": "* * * * *"}),
            "invalid_schedule",
            "reserved",
        ),
        (
            json!({"name": "x", "agent": "echo", "cron": "* * * * *", "overlap": "sometimes"}),
            "invalid_body",
            "sometimes",
        ),
    ] {
        let (status, err) = app.post("/api/v1/schedules", body.clone()).await;
        assert_eq!(
            (status, error_code(&err)),
            (StatusCode::UNPROCESSABLE_ENTITY, code),
            "{body}: {err}"
        );
        assert!(err.to_string().contains(needle), "{body}: {err}");
    }
    let (status, preview) = app
        .get("/api/v1/schedules/preview?cron=30%202%20*%20*%20*&timezone=Europe/Berlin")
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["next_runs"].as_array().unwrap().len(), 5);
    let (status, bad) = app.get("/api/v1/schedules/preview?cron=nope").await;
    assert_eq!(
        (status, error_code(&bad)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_schedule")
    );

    // Pause: no next runs; run now still works and is shown.
    let mut paused = created.clone();
    paused["paused"] = json!(true);
    let (status, paused) = app
        .call(
            "PUT",
            "/api/v1/schedules/every-2s",
            Some(&app.admin),
            Some(json!({
                "agent": "echo", "input": {"n": 1}, "cron": "*/2 * * * * *", "paused": true
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["next_runs"], json!([]));
    let (status, run) = app
        .post("/api/v1/schedules/every-2s/trigger", json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let task = app
        .wait_status(run["task_id"].as_str().unwrap(), &["succeeded"])
        .await;
    assert_eq!(task["schedule"], "every-2s");
    assert_eq!(task["output"], json!({"n": 1}));
    assert_eq!(task["scheduled_for"], run["scheduled_for"]);
    let (_, shown) = app.get("/api/v1/schedules/every-2s").await;
    assert_eq!(shown["last_runs"][0]["task_id"], run["task_id"]);
    let (_, list) = app.get("/api/v1/schedules").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    // A viewer reads schedules but cannot change or run them.
    let (_, viewer) = app.user(Role::Viewer).await;
    let (status, _) = app
        .call("GET", "/api/v1/schedules", Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    // Schedules hold task input: keys made for submitting or working cannot read them.
    for scope in [Scope::Submit, Scope::Worker] {
        let key = app.api_key(&[scope]).await;
        let (status, _) = app
            .call("GET", "/api/v1/schedules/every-2s", Some(&key), None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{scope:?}");
    }
    for (method, path) in [
        ("POST", "/api/v1/schedules/every-2s/trigger"),
        ("DELETE", "/api/v1/schedules/every-2s"),
    ] {
        let (status, _) = app.call(method, path, Some(&viewer), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
    }
    let (status, renamed) = app
        .call(
            "PUT",
            "/api/v1/schedules/every-2s",
            Some(&app.admin),
            Some(json!({
                "name": "other", "agent": "echo", "cron": "* * * * *"
            })),
        )
        .await;
    assert_eq!(
        (status, error_code(&renamed)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_schedule")
    );
    let (status, _) = app
        .call(
            "DELETE",
            "/api/v1/schedules/every-2s",
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, gone) = app.get("/api/v1/schedules/every-2s").await;
    assert_eq!(
        (status, error_code(&gone)),
        (StatusCode::NOT_FOUND, "schedule_not_found")
    );
    let (status, _) = app
        .post("/api/v1/schedules/every-2s/trigger", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The scheduler fires each tick once, on time, with `schedule` and `scheduled_for`.
#[tokio::test]
async fn a_one_second_schedule_fires_every_tick_on_time() {
    let app = TestApp::spawn().await;
    schedule(
        &app,
        json!({"name": "tick", "agent": "echo", "cron": "* * * * * *"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(3_600)).await;
    let (_, shown) = app.get("/api/v1/schedules/tick").await;
    let runs = shown["last_runs"].as_array().unwrap();
    assert!((3..=4).contains(&runs.len()), "{shown}");
    let mut ticks: Vec<i64> = runs
        .iter()
        .map(|r| ts(&r["scheduled_for"]).millis())
        .collect();
    ticks.sort();
    ticks.dedup();
    assert_eq!(ticks.len(), runs.len(), "a tick fired twice: {shown}");
    for r in runs {
        let late = ts(&r["fired_at"]).since(ts(&r["scheduled_for"]));
        assert!(late < 1_000, "fired {late} ms late: {r}");
        assert_eq!(ts(&r["scheduled_for"]).millis() % 1_000, 0);
    }
}

/// Overlap and catch-up policies, with the scheduler's clock given by the test.
#[tokio::test]
async fn overlap_and_catchup_follow_the_schedule() {
    let app = TestApp::spawn().await;
    let schedules = app.engine().schedules();
    let hourly = |name: &str, overlap: &str, catchup: &str, agent: &str, input: Value| {
        json!({"name": name, "agent": agent, "input": input, "cron": "0 * * * *",
               "overlap": overlap, "catchup": catchup})
    };
    let first_tick = |s: &Value| ts(&s["next_runs"][0]);
    let tasks_of = async |name: &str| -> Vec<Value> {
        let (_, s) = app.get(&format!("/api/v1/schedules/{name}")).await;
        s["last_runs"].as_array().unwrap().clone()
    };
    // Missed ticks: three hours and a second after the first tick, the 4th is on time.
    for (name, catchup, fired) in [
        ("c-none", "none", 1),
        ("c-latest", "latest", 2),
        ("c-all", "all", 4),
    ] {
        let s = schedule(&app, hourly(name, "allow", catchup, "echo", json!({}))).await;
        let now = first_tick(&s).plus_ms(3 * 3_600_000 + 1_000);
        schedules.fire_due(now).await.unwrap();
        assert_eq!(tasks_of(name).await.len(), fired, "catchup {catchup}");
        // Fired again at the same time (a second server): nothing more.
        schedules.fire_due(now).await.unwrap();
        assert_eq!(
            tasks_of(name).await.len(),
            fired,
            "catchup {catchup}, twice"
        );
    }
    // Overlap: skip leaves a tick out while the last task runs; cancel_previous stops it.
    for (name, overlap) in [
        ("o-skip", "skip"),
        ("o-cancel", "cancel_previous"),
        ("o-allow", "allow"),
    ] {
        let s = schedule(
            &app,
            hourly(name, overlap, "none", "sleep", json!({"ms": 60_000})),
        )
        .await;
        let tick = first_tick(&s);
        schedules.fire_due(tick).await.unwrap();
        let first = tasks_of(name).await[0]["task_id"]
            .as_str()
            .unwrap()
            .to_owned();
        app.wait_status(&first, &["running"]).await;
        schedules.fire_due(tick.plus_ms(3_600_000)).await.unwrap();
        let runs = tasks_of(name).await;
        match overlap {
            "skip" => assert_eq!(runs.len(), 1, "{runs:?}"),
            "cancel_previous" => {
                assert_eq!(runs.len(), 2);
                app.wait_status(&first, &["cancelled"]).await;
            }
            _ => {
                assert_eq!(runs.len(), 2);
                assert_eq!(app.task(&first).await["status"], "running");
            }
        }
    }
}

async fn register(app: &TestApp, body: Value) {
    let (status, agent) = app.post("/api/v1/agents", body).await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
}

/// A key at its `concurrency_per_key` waits while another key's task runs.
#[tokio::test]
async fn a_key_at_its_limit_does_not_block_other_keys() {
    let app = TestApp::spawn().await;
    register(
        &app,
        json!({"name": "per-customer", "kind": "sleep", "concurrency_key": "/customer",
               "concurrency_per_key": 1}),
    )
    .await;
    let mut busy = Vec::new();
    for _ in 0..3 {
        let t = app
            .submit("per-customer", json!({"customer": "acme", "ms": 1_500}))
            .await;
        busy.push(t["id"].as_str().unwrap().to_owned());
    }
    let other = app
        .submit("per-customer", json!({"customer": "globex", "ms": 10}))
        .await;
    assert_eq!(other["concurrency_key"], "globex");
    let other = app
        .wait_status(other["id"].as_str().unwrap(), &["succeeded"])
        .await;
    let running: Vec<String> = {
        let mut r = Vec::new();
        for id in &busy {
            r.push(app.task(id).await["status"].as_str().unwrap().to_owned());
        }
        r
    };
    assert_eq!(
        running.iter().filter(|s| *s == "running").count(),
        1,
        "acme runs one at a time: {running:?}"
    );
    assert!(ts(&other["finished_at"]).since(ts(&other["created_at"])) < 1_000);
    // A submission may name its key directly.
    let (status, direct) = app
        .post(
            "/api/v1/tasks",
            json!({"agent": "per-customer", "input": {"ms": 1}, "concurrency_key": "initech"}),
        )
        .await;
    assert_eq!(
        (status, &direct["concurrency_key"]),
        (StatusCode::CREATED, &json!("initech"))
    );
    let (status, bad) = app
        .post(
            "/api/v1/tasks",
            json!({"agent": "per-customer", "input": {"ms": 1}, "concurrency_key": ""}),
        )
        .await;
    assert_eq!(
        (status, error_code(&bad)),
        (StatusCode::BAD_REQUEST, "invalid_parameter")
    );
    for id in &busy {
        app.wait_status(id, &["succeeded"]).await;
    }
}

/// Turns between keys: behind a long backlog of one key, another key's task starts
/// within a dispatch round.
#[tokio::test]
async fn another_keys_task_does_not_wait_behind_a_backlog() {
    let app = TestApp::spawn().await;
    register(
        &app,
        json!({"name": "one-lane", "kind": "sleep", "concurrency": 1, "concurrency_key": "/c"}),
    )
    .await;
    let (status, _) = app
        .post(
            "/api/v1/tasks/batch",
            json!({"tasks": (0..40).map(|_| json!({"agent": "one-lane", "input": {"c": "a", "ms": 50}})).collect::<Vec<_>>()}),
        )
        .await;
    assert!(status.is_success());
    let b = app.submit("one-lane", json!({"c": "b", "ms": 1})).await;
    let b = app
        .wait_status(b["id"].as_str().unwrap(), &["succeeded"])
        .await;
    let (_, a_tasks) = app
        .get("/api/v1/tasks?agent=one-lane&status=succeeded&limit=100")
        .await;
    let a_done = a_tasks["items"].as_array().unwrap().len();
    assert!(a_done <= 4, "b waited for {a_done} of a's 40 tasks: {b}");
}

/// A rate limit of 10 a second holds over five seconds, within 10 %.
#[tokio::test]
async fn a_rate_limit_holds() {
    let app = TestApp::spawn().await;
    register(
        &app,
        json!({"name": "paced", "kind": "echo", "rate_limit": {"limit": 10, "period_s": 1}}),
    )
    .await;
    let (status, _) = app
        .post(
            "/api/v1/tasks/batch",
            json!({"tasks": (0..100).map(|i| json!({"agent": "paced", "input": {"i": i}})).collect::<Vec<_>>()}),
        )
        .await;
    assert!(status.is_success());
    tokio::time::sleep(Duration::from_millis(5_600)).await;
    let (_, page) = app.get("/api/v1/tasks?agent=paced&limit=200").await;
    let mut started: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| {
            t["started_at"]
                .as_str()
                .map(|s| Timestamp::parse_rfc3339(s).unwrap().millis())
        })
        .collect();
    started.sort();
    let first = started[0];
    let in_window = started.iter().filter(|&&t| t < first + 5_000).count();
    assert!(
        (45..=55).contains(&in_window),
        "{in_window} starts in 5 s: {started:?}"
    );
    let (status, bad) = app
        .post(
            "/api/v1/agents",
            json!({"name": "bad-rate", "kind": "echo", "rate_limit": {"limit": 0, "period_s": 1}}),
        )
        .await;
    assert_eq!(
        (status, error_code(&bad)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_agent")
    );
    let (status, bad) = app
        .post(
            "/api/v1/agents",
            json!({"name": "bad-key", "kind": "echo", "concurrency_key": "customer"}),
        )
        .await;
    assert_eq!(
        (status, error_code(&bad)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_agent")
    );
}
