//! The audit log (docs/audit.md): an entry for every security-relevant action, with who,
//! what, to what, the outcome, the request id and the client's address; read by admins
//! only, with filters and pages.

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_core::audit::{
    AuditAction, AuditEntry, AuditOutcome, AuditQuery, AuditStore, TargetKind,
};
use switchyard_core::auth::{Role, Scope};

use crate::common::*;

/// Calls the API with an `x-request-id` (each call its own), so entries can be matched to
/// their requests.
async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
    request_id: &str,
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .request(method.parse().unwrap(), app.url(path))
        .header("x-request-id", request_id);
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The admin's view of the log with `query` (`action=…&…`), checked to succeed.
async fn audit(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app.get(&format!("/api/v1/audit?limit=500&{query}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().unwrap().clone()
}

/// The one entry of the request `request_id`, checked to be `action` on `target` with
/// `outcome`, from this machine.
async fn entry_of(
    app: &TestApp,
    request_id: &str,
    action: &str,
    target: Option<(&str, &str)>,
    outcome: &str,
) -> Value {
    let all = audit(app, "").await;
    let found: Vec<&Value> = all
        .iter()
        .filter(|e| e["request_id"] == request_id)
        .collect();
    assert_eq!(found.len(), 1, "one entry for {request_id}: {all:#?}");
    let e = found[0].clone();
    assert_eq!(e["action"], action, "{e}");
    assert_eq!(e["outcome"], outcome, "{e}");
    assert_eq!(e["client_addr"], "127.0.0.1", "{e}");
    match target {
        Some((kind, id)) => {
            assert_eq!(e["target"]["kind"], kind, "{e}");
            assert_eq!(e["target"]["id"], id, "{e}");
        }
        None => assert!(e.get("target").is_none(), "{e}"),
    }
    e
}

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_logouts_and_sessions_are_recorded() {
    // No grace for a repeated refresh: the second use of a token is a reuse at once.
    let app = TestApp::spawn_with(|c| c.auth.refresh_reuse_grace_s = 0).await;
    let secret = "not-the-right-password-but-secret";
    let (status, _) = send(
        &app,
        "POST",
        "/api/v1/auth/login",
        "",
        Some(json!({"email": " Admin@LocalHost ", "password": secret})),
        "login-failed",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let failed = entry_of(&app, "login-failed", "auth.login_failed", None, "failure").await;
    assert_eq!(
        failed["actor"],
        json!({"name": ADMIN_EMAIL}),
        "the email tried"
    );
    assert_eq!(failed["reason"], "wrong email or password");
    let (_, whole_log) = app.get("/api/v1/audit").await;
    assert!(
        !whole_log.to_string().contains(secret),
        "a password is never recorded"
    );

    let (status, tokens) = send(
        &app,
        "POST",
        "/api/v1/auth/login",
        "",
        Some(json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
        "login-ok",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let token = tokens["access_token"].as_str().unwrap();
    let (_, me) = app.call("GET", "/api/v1/auth/me", Some(token), None).await;
    let (_, sessions) = app
        .call("GET", "/api/v1/auth/sessions", Some(token), None)
        .await;
    let current = sessions["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap();
    let login = entry_of(
        &app,
        "login-ok",
        "auth.login",
        Some(("session", id(current))),
        "success",
    )
    .await;
    assert_eq!(login["actor"]["name"], ADMIN_EMAIL);
    assert_eq!(login["actor"]["user_id"], me["user"]["id"]);

    // Revoking another session of one's own, then a spent refresh token presented again.
    let (status, _) = send(
        &app,
        "DELETE",
        &format!("/api/v1/auth/sessions/{}", id(current)),
        &app.admin,
        None,
        "revoke",
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    entry_of(
        &app,
        "revoke",
        "session.revoke",
        Some(("session", id(current))),
        "success",
    )
    .await;
    let (_, fresh) = app
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
        )
        .await;
    let spent = fresh["refresh_token"].as_str().unwrap();
    let session = spent.split_once('.').unwrap().0;
    let refresh = json!({"refresh_token": spent});
    let (status, _) = app
        .call("POST", "/api/v1/auth/refresh", None, Some(refresh.clone()))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(
        &app,
        "POST",
        "/api/v1/auth/refresh",
        "",
        Some(refresh),
        "reuse",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let reuse = entry_of(
        &app,
        "reuse",
        "session.revoke",
        Some(("session", session)),
        "success",
    )
    .await;
    assert_eq!(reuse["actor"]["name"], "system");

    let other = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (_, me) = app.call("GET", "/api/v1/auth/me", Some(&other), None).await;
    let (status, _) = send(&app, "POST", "/api/v1/auth/logout", &other, None, "bye").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let session = me["session_id"].as_str().unwrap();
    let bye = entry_of(
        &app,
        "bye",
        "auth.logout",
        Some(("session", session)),
        "success",
    )
    .await;
    assert_eq!(bye["actor"]["name"], ADMIN_EMAIL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_to_users_keys_agents_alerts_and_schedules_are_recorded() {
    let app = TestApp::spawn().await;
    let admin = app.admin.clone();
    let call = |method: &'static str, path: String, body: Option<Value>, rid: &'static str| {
        let app = &app;
        let admin = admin.clone();
        async move { send(app, method, &path, &admin, body, rid).await }
    };

    // Users.
    let (status, user) = call(
        "POST",
        "/api/v1/users".into(),
        Some(json!({"email": "carol@example.com", "password": "carol-long-password", "role": "viewer"})),
        "user-create",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let created = entry_of(
        &app,
        "user-create",
        "user.create",
        Some(("user", id(&user))),
        "success",
    )
    .await;
    assert_eq!(created["actor"]["name"], ADMIN_EMAIL);
    assert_eq!(
        created["detail"],
        json!({"email": "carol@example.com", "role": "viewer"})
    );
    assert!(!created.to_string().contains("carol-long-password"));
    call(
        "PATCH",
        format!("/api/v1/users/{}", id(&user)),
        Some(json!({"disabled": true, "password": "another-long-password"})),
        "user-update",
    )
    .await;
    let updated = entry_of(
        &app,
        "user-update",
        "user.update",
        Some(("user", id(&user))),
        "success",
    )
    .await;
    assert_eq!(
        updated["detail"],
        json!({"role": null, "disabled": true, "password_reset": true})
    );
    assert!(!updated.to_string().contains("another-long-password"));

    // API keys: created (the id, never the secret), revoked, and one beyond the role denied.
    let (_, key) = call(
        "POST",
        "/api/v1/api-keys".into(),
        Some(json!({"name": "deploy", "scopes": ["submit"]})),
        "key-create",
    )
    .await;
    let key_id = key["key"]["id"].as_str().unwrap();
    let created = entry_of(
        &app,
        "key-create",
        "api_key.create",
        Some(("api_key", key_id)),
        "success",
    )
    .await;
    assert!(
        !created
            .to_string()
            .contains(key["secret"].as_str().unwrap())
    );
    call(
        "DELETE",
        format!("/api/v1/api-keys/{key_id}"),
        None,
        "key-revoke",
    )
    .await;
    entry_of(
        &app,
        "key-revoke",
        "api_key.revoke",
        Some(("api_key", key_id)),
        "success",
    )
    .await;
    let (_, operator) = app.user(Role::Operator).await;
    let (status, _) = send(
        &app,
        "POST",
        "/api/v1/api-keys",
        &operator,
        Some(json!({"name": "too-much", "scopes": ["admin"]})),
        "key-denied",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let denied = entry_of(
        &app,
        "key-denied",
        "api_key.create",
        Some(("api_key", "too-much")),
        "denied",
    )
    .await;
    assert!(
        denied["actor"]["name"]
            .as_str()
            .unwrap()
            .starts_with("operator-")
    );

    // Agents: create, replace, a failed create, delete; by an API key, named.
    let key = app.api_key(&[Scope::Admin]).await;
    let agent = json!({"name": "audited", "kind": "echo"});
    let (status, _) = send(
        &app,
        "POST",
        "/api/v1/agents",
        &key,
        Some(agent.clone()),
        "agent-create",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let by_key = entry_of(
        &app,
        "agent-create",
        "agent.create",
        Some(("agent", "audited")),
        "success",
    )
    .await;
    assert_eq!(by_key["actor"]["name"], ADMIN_EMAIL);
    assert_eq!(by_key["actor"]["api_key_name"], "test");
    assert!(by_key["actor"]["api_key_id"].is_string());
    call(
        "PUT",
        "/api/v1/agents/audited".into(),
        Some(agent.clone()),
        "agent-update",
    )
    .await;
    entry_of(
        &app,
        "agent-update",
        "agent.update",
        Some(("agent", "audited")),
        "success",
    )
    .await;
    let (status, _) = call("POST", "/api/v1/agents".into(), Some(agent), "agent-exists").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let exists = entry_of(
        &app,
        "agent-exists",
        "agent.create",
        Some(("agent", "audited")),
        "failure",
    )
    .await;
    assert!(
        exists["reason"].as_str().unwrap().contains("audited"),
        "{exists}"
    );
    call(
        "DELETE",
        "/api/v1/agents/audited".into(),
        None,
        "agent-delete",
    )
    .await;
    entry_of(
        &app,
        "agent-delete",
        "agent.delete",
        Some(("agent", "audited")),
        "success",
    )
    .await;

    // Alert rules.
    let rule = json!({"name": "deep", "kind": "queue_depth", "threshold": 100, "window_s": 60});
    let (status, created) = call(
        "POST",
        "/api/v1/alerts/rules".into(),
        Some(rule.clone()),
        "alert-create",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let rule_id = id(&created);
    entry_of(
        &app,
        "alert-create",
        "alert.create",
        Some(("alert_rule", rule_id)),
        "success",
    )
    .await;
    call(
        "PUT",
        format!("/api/v1/alerts/rules/{rule_id}"),
        Some(rule),
        "alert-update",
    )
    .await;
    entry_of(
        &app,
        "alert-update",
        "alert.update",
        Some(("alert_rule", rule_id)),
        "success",
    )
    .await;
    call(
        "DELETE",
        format!("/api/v1/alerts/rules/{rule_id}"),
        None,
        "alert-delete",
    )
    .await;
    entry_of(
        &app,
        "alert-delete",
        "alert.delete",
        Some(("alert_rule", rule_id)),
        "success",
    )
    .await;

    // Schedules.
    let schedule = json!({"name": "nightly", "agent": "echo", "cron": "0 3 * * *"});
    let (status, _) = call(
        "POST",
        "/api/v1/schedules".into(),
        Some(schedule.clone()),
        "schedule-create",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    entry_of(
        &app,
        "schedule-create",
        "schedule.create",
        Some(("schedule", "nightly")),
        "success",
    )
    .await;
    call(
        "PUT",
        "/api/v1/schedules/nightly".into(),
        Some(schedule),
        "schedule-update",
    )
    .await;
    entry_of(
        &app,
        "schedule-update",
        "schedule.update",
        Some(("schedule", "nightly")),
        "success",
    )
    .await;
    let (_, fired) = call(
        "POST",
        "/api/v1/schedules/nightly/trigger".into(),
        None,
        "schedule-trigger",
    )
    .await;
    let trigger = entry_of(
        &app,
        "schedule-trigger",
        "schedule.trigger",
        Some(("schedule", "nightly")),
        "success",
    )
    .await;
    assert_eq!(trigger["detail"]["task_id"], fired["task_id"]);
    call(
        "DELETE",
        "/api/v1/schedules/nightly".into(),
        None,
        "schedule-delete",
    )
    .await;
    entry_of(
        &app,
        "schedule-delete",
        "schedule.delete",
        Some(("schedule", "nightly")),
        "success",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_cancelled_or_retried_by_someone_else_are_recorded() {
    let app = TestApp::spawn().await;
    let (operator_id, operator) = app.user(Role::Operator).await;
    let submit = |token: String| {
        let app = &app;
        async move {
            let (status, task) = app
                .call(
                    "POST",
                    "/api/v1/tasks",
                    Some(&token),
                    Some(json!({"agent": "sleep", "input": {"ms": 60_000}})),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{task}");
            id(&task).to_owned()
        }
    };
    // Their own: routine, not recorded.
    let own = submit(operator.clone()).await;
    send(
        &app,
        "POST",
        &format!("/api/v1/tasks/{own}/cancel"),
        &operator,
        None,
        "own-cancel",
    )
    .await;
    app.wait_status(&own, &["cancelled"]).await;
    send(
        &app,
        "POST",
        &format!("/api/v1/tasks/{own}/retry"),
        &operator,
        None,
        "own-retry",
    )
    .await;
    // Someone else's, by an admin: recorded.
    let theirs = submit(operator.clone()).await;
    let (status, _) = send(
        &app,
        "POST",
        &format!("/api/v1/tasks/{theirs}/cancel"),
        &app.admin,
        None,
        "cancel",
    )
    .await;
    assert!(status.is_success());
    let cancel = entry_of(
        &app,
        "cancel",
        "task.cancel",
        Some(("task", &theirs)),
        "success",
    )
    .await;
    assert_eq!(cancel["actor"]["name"], ADMIN_EMAIL);
    app.wait_status(&theirs, &["cancelled"]).await;
    let (status, _) = send(
        &app,
        "POST",
        &format!("/api/v1/tasks/{theirs}/retry"),
        &app.admin,
        None,
        "retry",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    entry_of(
        &app,
        "retry",
        "task.retry",
        Some(("task", &theirs)),
        "success",
    )
    .await;
    let tasks = audit(&app, "target=task").await;
    assert_eq!(
        tasks.len(),
        2,
        "the owner's own cancel and retry are not: {tasks:#?}"
    );
    assert!(
        tasks
            .iter()
            .all(|e| e["actor"]["user_id"] != operator_id.as_str())
    );
    send(
        &app,
        "POST",
        &format!("/api/v1/tasks/{theirs}/cancel"),
        &app.admin,
        None,
        "end",
    )
    .await;
}

/// Waits until no backup runs (the server's, before it stops).
async fn backups_done(app: &TestApp) {
    let start = std::time::Instant::now();
    loop {
        let (_, list) = app.get("/api/v1/backups").await;
        if list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["status"] != "running")
        {
            return;
        }
        assert!(start.elapsed() < WAIT, "the backup never finished: {list}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Runs `switchyard ARGS` on the deployment in `data`, with `stdin`; checked to succeed.
fn cli(data: &std::path::Path, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .env("SWITCHYARD__DATA_DIR", data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the switchyard binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "switchyard {args:?} failed: {text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_restores_and_admin_commands_are_recorded() {
    let app = TestApp::spawn_with(|c| {
        c.backup.target = Some(c.data_dir.join("backups").display().to_string());
    })
    .await;
    let data = app.dir.path().to_path_buf();
    let (status, started) = send(&app, "POST", "/api/v1/backups", &app.admin, None, "backup").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let backup = entry_of(
        &app,
        "backup",
        "backup.create",
        Some(("backup", id(&started))),
        "success",
    )
    .await;
    assert_eq!(backup["detail"]["name"], started["name"]);
    backups_done(&app).await;

    // Stopped, its data directory kept (`TestApp::stop` would remove it).
    let mut app = app;
    app.running.take().unwrap().stop().await.unwrap();

    // The operator's commands on the stopped deployment: actor `cli`, no request.
    cli(
        &data,
        &[
            "user",
            "add",
            "--email",
            "dave@example.com",
            "--role",
            "operator",
        ],
        "dave-long-password\n",
    );
    cli(
        &data,
        &["user", "set-role", "dave@example.com", "viewer"],
        "",
    );
    cli(
        &data,
        &[
            "apikey",
            "create",
            "--email",
            "dave@example.com",
            "--name",
            "ci",
            "--scopes",
            "read",
        ],
        "",
    );
    cli(&data, &["auth", "rotate-key"], "");
    let archive = data.join("audit.backup");
    cli(
        &data,
        &["backup", "--output", archive.to_str().unwrap()],
        "",
    );
    let by_cli = log_of(&data, "cli").await;
    let actions: Vec<&str> = by_cli.iter().rev().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "user.create",
            "user.update",
            "api_key.create",
            "auth.rotate_key",
            "backup.create"
        ]
    );
    for e in &by_cli {
        assert_eq!(e.outcome, AuditOutcome::Success, "{e:?}");
        assert_eq!((&e.request_id, &e.client_addr), (&None, &None), "{e:?}");
        assert!(!format!("{e:?}").contains("dave-long-password"), "{e:?}");
    }
    assert_eq!(
        by_cli[4].detail,
        Some(json!({"email": "dave@example.com", "role": "operator"}))
    );
    assert_eq!(by_cli[3].detail.as_ref().unwrap()["role"], "viewer");
    assert_eq!(by_cli[3].target.as_ref().unwrap().kind, TargetKind::User);

    // A restore into an empty deployment: the archive's log, then the restore itself.
    let restored = tempfile::tempdir().unwrap();
    cli(
        restored.path(),
        &["restore", "--input", archive.to_str().unwrap()],
        "",
    );
    let log = log_of(restored.path(), "").await;
    assert_eq!(log[0].action, AuditAction::BackupRestore);
    assert_eq!(log[0].actor.name, "cli");
    assert!(log[0].detail.as_ref().unwrap()["rows"].as_u64().unwrap() > 0);
    assert!(
        log.iter()
            .any(|e| e.request_id.as_deref() == Some("backup")),
        "the archive's entries are restored"
    );
    assert_eq!(
        log.len(),
        log_of(&data, "").await.len(),
        "the archive's entries (not its own backup.create, recorded after it) and the restore"
    );
}

/// The audit log of the (stopped) deployment in `data`, newest first; `actor` filters.
async fn log_of(data: &std::path::Path, actor: &str) -> Vec<AuditEntry> {
    let store = switchyard_store::SqliteStore::open(
        &data.join("switchyard.db"),
        switchyard_store::Durability::Normal,
    )
    .await
    .unwrap();
    store
        .list_audit(&AuditQuery {
            actor: (!actor.is_empty()).then(|| actor.to_owned()),
            limit: 500,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_read_the_log_with_filters_and_pages() {
    let app = TestApp::spawn().await;
    let (_, viewer) = app.user(Role::Viewer).await;
    let (_, operator) = app.user(Role::Operator).await;
    let read_key = app.api_key(&[Scope::Read]).await;
    for token in [&viewer, &operator, &read_key] {
        let (status, body) = app.call("GET", "/api/v1/audit", Some(token), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let (status, _) = app.call("GET", "/api/v1/audit", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let admin_key = app.api_key(&[Scope::Admin]).await;
    let (status, _) = app
        .call("GET", "/api/v1/audit", Some(&admin_key), None)
        .await;
    assert_eq!(status, StatusCode::OK);

    for i in 0..7 {
        app.call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": format!("ghost{i}@example.com"), "password": "wrong-password"})),
        )
        .await;
    }
    app.register(json!({"name": "paged", "kind": "echo"})).await;

    // Filters: actor, action (exact and family), target, time.
    assert_eq!(audit(&app, "actor=GHOST3@example.com").await.len(), 1);
    assert_eq!(audit(&app, "action=auth.login_failed").await.len(), 7);
    let logins = audit(&app, "action=auth.").await;
    assert!(
        logins
            .iter()
            .all(|e| e["action"].as_str().unwrap().starts_with("auth."))
    );
    assert!(
        logins.len() >= 7 + 3,
        "the failures and the test's own logins"
    );
    assert_eq!(audit(&app, "target=agent:paged").await.len(), 1);
    assert_eq!(
        audit(&app, "target=agent&action=agent.create").await.len(),
        1
    );
    assert!(audit(&app, "since=2999-01-01T00:00:00Z").await.is_empty());
    assert!(audit(&app, "until=2000-01-01T00:00:00Z").await.is_empty());
    let all = audit(&app, "").await;
    let newest = all[0]["at"].as_str().unwrap();
    assert!(!audit(&app, &format!("since={newest}")).await.is_empty());

    // Pages: every entry once, newest first.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/audit?limit=3&cursor={c}"),
            None => "/api/v1/audit?limit=3".to_owned(),
        };
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        paged.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| id(e).to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let all_ids: Vec<String> = all.iter().map(|e| id(e).to_owned()).collect();
    assert_eq!(paged, all_ids);

    // Bad filters: 400 naming the parameter.
    for (query, parameter) in [
        ("action=auth", "action"),
        ("action=nope.", "action"),
        ("target=robot", "target"),
        ("target=agent:", "target"),
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        (
            "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
            "since",
        ),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("cursor=not-an-id", "cursor"),
        ("actor=", "actor"),
        ("colour=red", "colour"),
    ] {
        let (status, body) = app.get(&format!("/api/v1/audit?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(error_code(&body), "invalid_parameter", "{query}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(parameter), "{query}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_of_the_sign_in_settings_is_recorded_once() {
    use switchyard::app::{self, Role as ServerRole};
    use switchyard_core::audit::ActionFilter;

    let dir = tempfile::tempdir().unwrap();
    let sso = |on: bool| {
        let mut c = switchyard::testing::test_config(dir.path());
        if on {
            c.auth.oidc = Some(switchyard_auth::oidc::config::OidcConfig {
                issuer: "http://127.0.0.1:9".into(),
                client_id: "switchyard".into(),
                client_secret: Some("not-to-be-seen".into()),
                redirect_url: "http://127.0.0.1:8080/api/v1/auth/oidc/callback".into(),
                default_role: Some(Role::Viewer),
                ..Default::default()
            });
        }
        c
    };
    // Starts a server with the settings, stops it, and reads its `sso.configure` entries.
    let start = |config: switchyard::config::Config| async move {
        let running = app::start(&config, ServerRole::All).await.unwrap();
        let entries = running
            .engine
            .audit()
            .list(&AuditQuery {
                action: Some(ActionFilter::Exact(AuditAction::SsoConfigure)),
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        running.stop().await.unwrap();
        entries
    };
    assert!(
        start(sso(false)).await.is_empty(),
        "never configured: nothing to record"
    );
    let on = start(sso(true)).await;
    assert_eq!(on.len(), 1);
    let detail = on[0].detail.clone().unwrap();
    assert_eq!(detail["oidc"]["issuer"], "http://127.0.0.1:9");
    assert_eq!(detail["password_login"], true);
    assert!(!detail.to_string().contains("not-to-be-seen"), "{detail}");
    assert_eq!(on[0].target.as_ref().unwrap().id, "http://127.0.0.1:9");
    assert_eq!(
        start(sso(true)).await.len(),
        1,
        "the same settings again: no entry"
    );
    let off = start(sso(false)).await;
    assert_eq!(off.len(), 2);
    assert_eq!(off[0].detail.as_ref().unwrap()["oidc"], Value::Null);
    assert_eq!(off[0].target.as_ref().unwrap().id, "off");
}
