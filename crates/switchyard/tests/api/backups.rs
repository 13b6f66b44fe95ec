//! Backups the server takes: `GET`/`POST /api/v1/backups`, `backup.schedule`,
//! `backup.keep`, an S3 target, the backup metrics and the `backup_age` alert.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_core::Timestamp;
use switchyard_core::auth::Role;

use crate::common::*;

/// Polls `GET /api/v1/backups` until `done` holds for its items.
async fn backups_until(app: &TestApp, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let (status, body) = app.get("/api/v1/backups").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let items = body["items"].as_array().unwrap().clone();
        if done(&items) {
            return items;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{what}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn finished(items: &[Value]) -> bool {
    items.iter().all(|b| b["status"] != "running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_need_an_admin_and_a_target() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/api/v1/backups").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"items": [], "schedule": null, "target": null, "keep": 7, "next_at": null})
    );
    let (status, body) = app.post("/api/v1/backups", json!(null)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "invalid_state");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("backup.target")
    );
    let (_, operator) = app.user(Role::Operator).await;
    for method in ["GET", "POST"] {
        let (status, _) = app
            .call(method, "/api/v1/backups", Some(&operator), None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method}");
    }
    let (status, _) = app.call("GET", "/api/v1/backups?limit=x", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = app.get("/api/v1/backups?limit=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_on_request_keep_the_newest_and_show_in_metrics() {
    let app = TestApp::spawn_with(|c| {
        c.backup.target = Some(c.data_dir.join("backups").display().to_string());
        c.backup.keep = 2;
    })
    .await;
    let dir = app.dir.path().join("backups");
    for i in 0..5 {
        app.submit("echo", json!({"i": i})).await;
    }
    let mut names = Vec::new();
    for _ in 0..3 {
        let (status, started) = app.post("/api/v1/backups", json!(null)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{started}");
        assert_eq!(started["status"], "running");
        assert_eq!(started["trigger"], "manual");
        names.push(started["name"].as_str().unwrap().to_owned());
        backups_until(&app, "the backup to finish", finished).await;
        // Archive names carry milliseconds: apart, so they stay apart.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let items = backups_until(&app, "three backups", |i| i.len() == 3).await;
    let statuses: Vec<&str> = items
        .iter()
        .map(|b| b["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["succeeded", "succeeded", "deleted"], "{items:?}");
    assert_eq!(items[0]["name"], names[2].as_str(), "newest first");
    assert_eq!(items[0]["tasks"], 5);
    assert!(items[0]["size_bytes"].as_u64().unwrap() > 0);
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, names[1..].to_vec(), "only the newest two are kept");
    for name in &on_disk {
        let manifest = switchyard_backup::verify(&dir.join(name)).unwrap();
        assert_eq!(manifest.tables["tasks"].rows, 5);
    }
    let text = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let size = format!(
        "switchyard_backup_last_size_bytes {}",
        items[0]["size_bytes"].as_u64().unwrap()
    );
    assert!(text.contains(&size), "{text}");
    assert!(
        text.contains("switchyard_backup_last_success_timestamp_seconds 1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_takes_backups_and_backup_age_alerts() {
    let app = TestApp::spawn_with(|c| {
        c.backup.target = Some(c.data_dir.join("backups").display().to_string());
        c.backup.schedule = Some("*/2 * * * * *".into());
    })
    .await;
    let (status, rule) = app
        .post(
            "/api/v1/alerts/rules",
            json!({"name": "backups", "kind": "backup_age", "threshold": 3600, "window_s": 60}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
    let id = rule["id"].as_str().unwrap().to_owned();
    // No backup yet, two hours after the rule was made: firing.
    let later = Timestamp::now().plus_ms(2 * 3_600_000);
    app.engine()
        .monitoring()
        .evaluate_alerts(later)
        .await
        .unwrap();
    let (_, rule) = app.get(&format!("/api/v1/alerts/rules/{id}")).await;
    assert_eq!(rule["state"]["status"], "firing", "{rule}");

    let (_, list) = app.get("/api/v1/backups").await;
    assert_eq!(list["schedule"], "*/2 * * * * *");
    assert!(list["next_at"].is_string(), "{list}");
    let items = backups_until(&app, "a scheduled backup", |i| {
        i.iter()
            .any(|b| b["trigger"] == "schedule" && b["status"] == "succeeded")
    })
    .await;
    assert!(items.iter().all(|b| b["status"] != "failed"), "{items:?}");
    app.engine()
        .monitoring()
        .evaluate_alerts(Timestamp::now())
        .await
        .unwrap();
    let (_, rule) = app.get(&format!("/api/v1/alerts/rules/{id}")).await;
    assert_eq!(
        rule["state"]["status"], "ok",
        "a fresh backup resolves it: {rule}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_go_to_s3() {
    let Some(s3) = s3_settings() else {
        return;
    };
    let prefix = uuid::Uuid::new_v4().simple().to_string();
    let app = TestApp::spawn_with(|c| {
        s3.apply(c);
        c.backup.target = Some(format!("s3://{}/{prefix}-backups", s3.bucket));
    })
    .await;
    let upload = app
        .client
        .post(app.url("/api/v1/files?name=a.txt"))
        .bearer_auth(&app.admin)
        .body("bytes in S3")
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::CREATED);
    let (status, started) = app.post("/api/v1/backups", json!(null)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let items = backups_until(&app, "the backup to finish", finished).await;
    assert_eq!(items[0]["status"], "succeeded", "{items:?}");
    assert!(items[0]["target"].as_str().unwrap().starts_with("s3://"));
    // The archive is in the bucket, complete, and nothing is left in the spool.
    let mut config = test_config(app.dir.path());
    s3.apply_prefix(&mut config, &format!("{prefix}-backups"));
    let objects = switchyard_files::open(
        config.files.url.as_deref(),
        &switchyard_files::S3Options {
            endpoint: config.files.s3_endpoint.clone(),
            region: config.files.s3_region.clone(),
            access_key_id: config.files.s3_access_key_id.clone(),
            secret_access_key: config.files.s3_secret_access_key.clone(),
        },
        app.dir.path(),
    )
    .await
    .unwrap();
    let mut stream = objects
        .read(items[0]["name"].as_str().unwrap(), None)
        .await
        .unwrap();
    let copy = app.dir.path().join("copy.backup");
    let mut bytes = Vec::new();
    use futures::StreamExt;
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(bytes.len() as u64, items[0]["size_bytes"].as_u64().unwrap());
    std::fs::write(&copy, bytes).unwrap();
    let manifest = switchyard_backup::verify(&copy).unwrap();
    assert_eq!(manifest.files.blobs, 1);
    let spool = app.dir.path().join("backup-spool");
    assert_eq!(std::fs::read_dir(spool).unwrap().count(), 0);
}
