//! Every route is guarded; tokens that are missing, malformed, wrongly signed or revoked
//! are rejected; visibility follows ownership.

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_core::auth::Role;

use crate::common::*;

/// Every operation in the OpenAPI document, with its path parameters filled in.
async fn all_routes(app: &TestApp) -> Vec<(String, String)> {
    let (_, doc) = app.call("GET", "/api/openapi.json", None, None).await;
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let concrete = path
                .replace("{id}", &uuid::Uuid::now_v7().to_string())
                .replace("{name}", "echo");
            routes.push((method.to_uppercase(), concrete));
        }
    }
    assert!(
        routes.len() >= 20,
        "the route table is read from the OpenAPI document"
    );
    routes
}

const PUBLIC: &[&str] = &[
    "/healthz",
    "/readyz",
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    // Single sign-on: the login page's options and the browser's legs of the flow
    // (docs/sso.md); the exchange takes a one-time code instead of a credential.
    "/api/v1/auth/providers",
    "/api/v1/auth/oidc/login",
    "/api/v1/auth/oidc/callback",
    "/api/v1/auth/oidc/exchange",
];

#[tokio::test]
async fn every_route_rejects_bad_credentials() {
    let app = TestApp::spawn().await;
    let logged_out = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (status, _) = app
        .call("POST", "/api/v1/auth/logout", Some(&logged_out), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let forged = {
        // A well-formed HS256 token signed with someone else's key.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"HS256","typ":"JWT","kid":"nope"}"#);
        let claims = b64.encode(
            br#"{"sub":"x","sid":"y","role":"admin","iat":0,"exp":9999999999,"iss":"switchyard"}"#,
        );
        format!("{header}.{claims}.c2lnbmF0dXJl")
    };
    let none_alg = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let claims = b64
            .encode(br#"{"sub":"x","sid":"y","role":"admin","exp":9999999999,"iss":"switchyard"}"#);
        format!("{header}.{claims}.")
    };
    let bad: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("malformed", Some("definitely-not-a-token".into())),
        ("forged", Some(forged)),
        ("alg none", Some(none_alg)),
        ("revoked", Some(logged_out)),
        (
            "unknown api key",
            Some("sy_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into()),
        ),
    ];
    for (method, path) in all_routes(&app).await {
        if PUBLIC.contains(&path.as_str()) {
            continue;
        }
        for (what, token) in &bad {
            let (status, body) = app
                .call(&method, &path, token.as_deref(), Some(json!({})))
                .await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with a {what} token: {body}"
            );
            assert!(
                matches!(error_code(&body), "unauthorized" | "token_expired"),
                "{body}"
            );
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn users_only_see_their_own_tasks() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user(Role::Operator).await;
    let (_, bob) = app.user(Role::Operator).await;
    let (_, viewer) = app.user(Role::Viewer).await;
    let (status, task) = app
        .call(
            "POST",
            "/api/v1/tasks",
            Some(&alice),
            Some(json!({"agent": "sleep", "input": {"ms": 20000}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = task["id"].as_str().unwrap();
    for (method, path) in [
        ("GET", format!("/api/v1/tasks/{id}")),
        ("GET", format!("/api/v1/tasks/{id}/events")),
        ("GET", format!("/api/v1/tasks/{id}/logs")),
        ("POST", format!("/api/v1/tasks/{id}/retry")),
        ("POST", format!("/api/v1/tasks/{id}/cancel")),
    ] {
        let (status, body) = app.call(method, &path, Some(&bob), None).await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::NOT_FOUND, "task_not_found"),
            "{method} {path}"
        );
    }
    let (_, list) = app.call("GET", "/api/v1/tasks", Some(&bob), None).await;
    assert!(
        list["items"].as_array().unwrap().is_empty(),
        "bob lists none of alice's tasks"
    );
    let (_, list) = app.call("GET", "/api/v1/tasks", Some(&alice), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (_, list) = app.get("/api/v1/tasks").await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        1,
        "admins see everything"
    );

    let (status, body) = app
        .call(
            "POST",
            "/api/v1/tasks",
            Some(&viewer),
            Some(json!({"agent": "echo"})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "forbidden"),
        "viewers cannot submit"
    );
    let (status, _) = app
        .call(
            "POST",
            "/api/v1/agents",
            Some(&alice),
            Some(json!({"name": "x", "kind": "echo"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "operators cannot manage agents"
    );
    let (status, _) = app
        .call(
            "POST",
            &format!("/api/v1/tasks/{id}/cancel"),
            Some(&alice),
            None,
        )
        .await;
    assert!(status.is_success());
    app.stop().await;
}

#[tokio::test]
async fn refresh_rotates_and_logout_is_immediate() {
    let app = TestApp::spawn().await;
    let (_, pair) = app
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
        )
        .await;
    let refresh = pair["refresh_token"].as_str().unwrap();
    let (status, next) = app
        .call(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{next}");
    assert_ne!(next["refresh_token"], pair["refresh_token"]);
    let (status, third) = app
        .call(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": next["refresh_token"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{third}");
    let access = third["access_token"].as_str().unwrap();
    let (status, me) = app.call("GET", "/api/v1/auth/me", Some(access), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["user"]["email"], ADMIN_EMAIL);
    // Reusing a spent refresh token (older than the one the last refresh spent) revokes
    // the whole session.
    let (status, _) = app
        .call(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.call("GET", "/api/v1/auth/me", Some(access), None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the session family is revoked"
    );
    let (status, _) = app
        .call(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": third["refresh_token"]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, body) = app
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": ADMIN_EMAIL, "password": "wrong-password-here"})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );
    let (_, unknown) = app
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "who@example.com", "password": "wrong-password-here"})),
        )
        .await;
    assert_eq!(
        unknown["error"]["message"], body["error"]["message"],
        "no hint whether the email exists"
    );
    app.stop().await;
}

#[tokio::test]
async fn api_keys_carry_scopes() {
    let app = TestApp::spawn().await;
    let create = |scopes: Value| json!({"name": "k", "scopes": scopes});
    let (status, read) = app.post("/api/v1/api-keys", create(json!(["read"]))).await;
    assert_eq!(status, StatusCode::CREATED, "{read}");
    let read_key = read["secret"].as_str().unwrap().to_owned();
    assert!(read_key.starts_with("sy_"));
    assert!(read_key.starts_with(read["key"]["prefix"].as_str().unwrap()));
    let (status, body) = app
        .call(
            "POST",
            "/api/v1/tasks",
            Some(&read_key),
            Some(json!({"agent": "echo"})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "forbidden"),
        "a read key cannot submit"
    );
    let (status, _) = app
        .call("GET", "/api/v1/tasks", Some(&read_key), None)
        .await;
    assert_eq!(status, StatusCode::OK);

    let (_, submit) = app
        .post("/api/v1/api-keys", create(json!(["submit"])))
        .await;
    let submit_key = submit["secret"].as_str().unwrap();
    let (status, _) = app
        .call(
            "POST",
            "/api/v1/tasks?wait=20s",
            Some(submit_key),
            Some(json!({"agent": "echo"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let (_, listed) = app.get("/api/v1/api-keys").await;
    let text = listed.to_string();
    assert!(!text.contains(&read_key), "secrets are never listed");
    let id = read["key"]["id"].as_str().unwrap();
    let (status, _) = app
        .call(
            "DELETE",
            &format!("/api/v1/api-keys/{id}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .call("GET", "/api/v1/tasks", Some(&read_key), None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "revocation takes effect at once"
    );

    let (status, err) = app
        .post("/api/v1/api-keys", create(json!(["teleport"])))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let (status, err) = app.post("/api/v1/api-keys", create(json!([]))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    app.stop().await;
}

/// A token signed with the server's real key, with chosen claims.
async fn signed_token(app: &TestApp, claims: Value) -> String {
    let keys = app
        .store()
        .get_setting("auth.jwt_keys")
        .await
        .unwrap()
        .unwrap();
    let keys: Value = serde_json::from_str(&keys).unwrap();
    let key = keys.as_array().unwrap().last().unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(key["kid"].as_str().unwrap().to_owned());
    let secret = jsonwebtoken::EncodingKey::from_secret(key["secret"].as_str().unwrap().as_bytes());
    jsonwebtoken::encode(&header, &claims, &secret).unwrap()
}

#[tokio::test]
async fn expired_and_doctored_tokens_are_refused_everywhere() {
    let app = TestApp::spawn().await;
    let (_, me) = app
        .call("GET", "/api/v1/auth/me", Some(&app.admin), None)
        .await;
    let (user, sid) = (
        me["user"]["id"].as_str().unwrap(),
        me["session_id"].as_str().unwrap(),
    );
    let now = switchyard_core::Timestamp::now().millis() / 1000;
    let expired = signed_token(&app, json!({"sub": user, "sid": sid, "role": "admin", "iat": now - 4000, "exp": now - 3600, "iss": "switchyard"})).await;
    // Expired two seconds ago: no leeway lets it through (it was 5 s).
    let just_expired = signed_token(&app, json!({"sub": user, "sid": sid, "role": "admin", "iat": now - 900, "exp": now - 2, "iss": "switchyard"})).await;
    let wrong_issuer = signed_token(&app, json!({"sub": user, "sid": sid, "role": "admin", "iat": now, "exp": now + 600, "iss": "evil"})).await;
    let no_session = signed_token(&app, json!({"sub": user, "sid": uuid::Uuid::now_v7(), "role": "admin", "iat": now, "exp": now + 600, "iss": "switchyard"})).await;
    let valid = signed_token(&app, json!({"sub": user, "sid": sid, "role": "admin", "iat": now, "exp": now + 600, "iss": "switchyard"})).await;
    let (status, _) = app.call("GET", "/api/v1/auth/me", Some(&valid), None).await;
    assert_eq!(status, StatusCode::OK, "the forging helper is right");
    for (method, path) in all_routes(&app).await {
        if PUBLIC.contains(&path.as_str()) {
            continue;
        }
        for (what, token) in [
            ("expired", &expired),
            ("wrong issuer", &wrong_issuer),
            ("unknown session", &no_session),
        ] {
            let (status, body) = app.call(&method, &path, Some(token), Some(json!({}))).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with an {what} token: {body}"
            );
        }
    }
    let (_, body) = app.call("GET", "/api/v1/tasks", Some(&expired), None).await;
    assert_eq!(error_code(&body), "token_expired");
    let (status, body) = app
        .call("GET", "/api/v1/auth/me", Some(&just_expired), None)
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "token_expired"),
        "a token expired 2 s ago: {body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn password_guessing_is_locked_out() {
    let app = TestApp::spawn().await;
    let wrong = json!({"email": ADMIN_EMAIL, "password": "not-the-password-1"});
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let (status, _) = app
            .call("POST", "/api/v1/auth/login", None, Some(wrong.clone()))
            .await;
        statuses.push(status.as_u16());
    }
    assert_eq!(
        &statuses[..5],
        &[401; 5],
        "five free failures: {statuses:?}"
    );
    assert!(statuses[5..].contains(&429), "then a lockout: {statuses:?}");
    let resp = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits out the lock"
    );
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry_after));
    tokio::time::sleep(std::time::Duration::from_secs(retry_after + 1)).await;
    let (status, _) = app
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the lock ends");
    app.stop().await;
}

#[tokio::test]
async fn admins_manage_users_and_changes_end_sessions() {
    let app = TestApp::spawn().await;
    let body =
        json!({"email": "Op@Example.com", "password": "operator-password-1", "role": "operator"});
    let (status, user) = app.post("/api/v1/users", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(
        (user["email"].as_str(), user["role"].as_str()),
        (Some("op@example.com"), Some("operator"))
    );
    assert!(
        user.get("password_hash").is_none(),
        "hashes never leave the server"
    );
    let (status, err) = app.post("/api/v1/users", body).await;
    assert_eq!(
        (status, error_code(&err)),
        (StatusCode::CONFLICT, "email_taken")
    );
    for (password, why) in [("short", "length"), ("QWERTY123456", "common")] {
        let (status, err) = app
            .post(
                "/api/v1/users",
                json!({"email": format!("{why}@x.io"), "password": password, "role": "viewer"}),
            )
            .await;
        assert_eq!(
            (status, error_code(&err)),
            (StatusCode::UNPROCESSABLE_ENTITY, "weak_password"),
            "{why}: {err}"
        );
    }
    let op_token = app.login("op@example.com", "operator-password-1").await;
    let (status, _) = app
        .call("GET", "/api/v1/users", Some(&op_token), None)
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "operators do not manage users"
    );
    let (_, keys) = app
        .call(
            "POST",
            "/api/v1/api-keys",
            Some(&op_token),
            Some(json!({"name": "k", "scopes": ["read"]})),
        )
        .await;
    let op_key = keys["secret"].as_str().unwrap().to_owned();
    let (status, _) = app.call("GET", "/api/v1/tasks", Some(&op_key), None).await;
    assert_eq!(status, StatusCode::OK);

    let id = user["id"].as_str().unwrap();
    let (status, changed) = app
        .call(
            "PATCH",
            &format!("/api/v1/users/{id}"),
            Some(&app.admin),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(
        (status, changed["role"].as_str()),
        (StatusCode::OK, Some("viewer"))
    );
    let (status, _) = app
        .call("GET", "/api/v1/tasks", Some(&op_token), None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a role change ends the user's sessions"
    );

    let (status, _) = app
        .call(
            "PATCH",
            &format!("/api/v1/users/{id}"),
            Some(&app.admin),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "op@example.com", "password": "operator-password-1"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "disabled users cannot log in"
    );
    let (status, _) = app.call("GET", "/api/v1/tasks", Some(&op_key), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "nor use their API keys");

    let (status, _) = app
        .call(
            "PATCH",
            &format!("/api/v1/users/{id}"),
            Some(&app.admin),
            Some(json!({"disabled": false, "password": "a-brand-new-password"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.login("op@example.com", "a-brand-new-password").await;

    let (_, users) = app.get("/api/v1/users").await;
    let admin_id = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["role"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, err) = app
        .call(
            "PATCH",
            &format!("/api/v1/users/{admin_id}"),
            Some(&app.admin),
            Some(json!({"role": "operator"})),
        )
        .await;
    assert_eq!(
        (status, error_code(&err)),
        (StatusCode::CONFLICT, "invalid_state"),
        "the last admin stays"
    );
    let (status, err) = app
        .call(
            "PATCH",
            &format!("/api/v1/users/{}", uuid::Uuid::now_v7()),
            Some(&app.admin),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(
        (status, error_code(&err)),
        (StatusCode::NOT_FOUND, "user_not_found")
    );
    app.stop().await;
}

#[tokio::test]
async fn users_list_and_end_their_own_sessions() {
    let app = TestApp::spawn().await;
    let second = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (status, sessions) = app.get("/api/v1/auth/sessions").await;
    assert_eq!(status, StatusCode::OK);
    let items = sessions["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items.iter().filter(|s| s["current"] == true).count(), 1);
    let other = items.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, other_user) = app.user(switchyard_core::auth::Role::Operator).await;
    let (status, _) = app
        .call(
            "DELETE",
            &format!("/api/v1/auth/sessions/{other}"),
            Some(&other_user),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not your session");
    let (status, _) = app
        .call(
            "DELETE",
            &format!("/api/v1/auth/sessions/{other}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .call("GET", "/api/v1/auth/me", Some(&second), None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the ended session's token stops working at once"
    );
    app.stop().await;
}

#[tokio::test]
async fn signing_keys_rotate_without_logging_anyone_out() {
    let app = TestApp::spawn().await;
    let before = app.admin.clone();
    app.engine().auth().rotate_signing_key().await.unwrap();
    let (status, _) = app
        .call("GET", "/api/v1/auth/me", Some(&before), None)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "tokens signed with the previous key still verify"
    );
    let after = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
    assert_ne!(kid(&before), kid(&after), "new tokens use the new key");
    let (status, _) = app.call("GET", "/api/v1/auth/me", Some(&after), None).await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

/// CORS is off by default: no browser origin is granted anything. Configured origins
/// (and only those) get preflights answered and responses they may read.
#[tokio::test]
async fn cors_is_off_unless_origins_are_configured() {
    let preflight = |app: &TestApp, origin: &str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/tasks"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let list_from = |app: &TestApp, origin: &str| {
        app.client
            .get(app.url("/api/v1/tasks"))
            .bearer_auth(&app.admin)
            .header("origin", origin)
            .send()
    };
    let allow_origin =
        |r: &reqwest::Response| r.headers().get("access-control-allow-origin").cloned();

    let app = TestApp::spawn().await;
    let r = preflight(&app, "https://ui.example.com").await.unwrap();
    assert_eq!(allow_origin(&r), None, "CORS is off by default");
    let r = list_from(&app, "https://ui.example.com").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(allow_origin(&r), None);
    app.stop().await;

    let app = TestApp::spawn_with(|c| {
        c.server.cors_origins = vec!["https://ui.example.com".into()];
    })
    .await;
    let r = preflight(&app, "https://ui.example.com").await.unwrap();
    assert!(r.status().is_success(), "preflight: {}", r.status());
    assert_eq!(
        allow_origin(&r).as_ref().and_then(|v| v.to_str().ok()),
        Some("https://ui.example.com")
    );
    let methods = r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let r = list_from(&app, "https://ui.example.com").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        allow_origin(&r).as_ref().and_then(|v| v.to_str().ok()),
        Some("https://ui.example.com")
    );
    let r = preflight(&app, "https://evil.example.com").await.unwrap();
    assert_eq!(allow_origin(&r), None, "an origin not listed gets nothing");
    app.stop().await;
}

/// The test app on the in-process cache, or (`redis`) on Redis in front of the database;
/// `None` (after saying so) when `TEST_REDIS_URL` is not set.
async fn app_on(
    redis: bool,
    adjust: impl FnOnce(&mut switchyard::config::Config),
) -> Option<TestApp> {
    let url = match std::env::var("TEST_REDIS_URL") {
        Ok(url) if redis && !url.is_empty() => Some(url),
        _ if redis => {
            eprintln!("SKIPPED: TEST_REDIS_URL not set — the Redis variant did not run");
            return None;
        }
        _ => None,
    };
    Some(
        TestApp::spawn_with(|c| {
            if let Some(url) = url {
                c.redis.url = Some(url);
                c.redis.prefix = format!("sy-test:{}:", uuid::Uuid::new_v4().simple());
            }
            adjust(c);
        })
        .await,
    )
}

/// A client whose connections come from `ip`: every 127.x.y.z address is the loopback
/// interface on Linux, so the server sees each client at its own peer address.
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(Some(ip.parse::<std::net::IpAddr>().unwrap()))
        .timeout(std::time::Duration::from_secs(90))
        .build()
        .unwrap()
}

/// A login attempt: the status and, on 429, the Retry-After seconds.
async fn try_login(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> (StatusCode, Option<u64>) {
    let resp = client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    assert_eq!(
        status == StatusCode::TOO_MANY_REQUESTS,
        retry_after.is_some(),
        "429 and only 429 carries Retry-After"
    );
    (status, retry_after)
}

const WRONG: &str = "not-the-password-1";

/// One failed guess from `client`, waiting out any lock first.
async fn guess(app: &TestApp, client: &reqwest::Client) {
    loop {
        match try_login(app, client, ADMIN_EMAIL, WRONG).await {
            (StatusCode::UNAUTHORIZED, _) => return,
            (StatusCode::TOO_MANY_REQUESTS, Some(wait)) => {
                tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
            }
            other => panic!("unexpected answer to a wrong password: {other:?}"),
        }
    }
}

/// The Retry-After of the lock `client` is under (a guess that must be refused).
async fn locked_for(app: &TestApp, client: &reqwest::Client) -> u64 {
    match try_login(app, client, ADMIN_EMAIL, WRONG).await {
        (StatusCode::TOO_MANY_REQUESTS, Some(wait)) => wait,
        other => panic!("expected a lock, got {other:?}"),
    }
}

/// Item 8 of the hardening issue: failures anywhere used to lock the account for
/// everyone. Now an attacker is throttled where they are, a ceiling per account slows
/// guessing spread over many addresses, and an address the owner logged in from keeps
/// working through both.
async fn attackers_elsewhere_cannot_lock_the_owner_out(redis: bool) {
    let Some(app) = app_on(redis, |c| {
        c.auth.login_max_failures = 3;
        c.auth.login_address_max_failures = 100;
        c.auth.login_account_max_failures = 8;
    })
    .await
    else {
        return;
    };
    // The harness logged the admin in from 127.0.0.1: the owner's usual address.
    let owner = client_from("127.0.0.1");
    let attacker = client_from("127.0.0.2");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(try_login(&app, &attacker, ADMIN_EMAIL, WRONG).await.0);
    }
    assert_eq!(
        statuses,
        [StatusCode::UNAUTHORIZED; 4],
        "three free failures, the fourth locks"
    );
    let first_wait = locked_for(&app, &attacker).await;
    let (status, _) = try_login(&app, &attacker, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits on the attacker's address"
    );
    let (status, _) = try_login(&app, &owner, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the owner logs in from their own address"
    );

    // The attacker's locks grow: 1 s, 2 s, 4 s.
    let mut waits = vec![first_wait];
    for _ in 0..2 {
        guess(&app, &attacker).await;
        waits.push(locked_for(&app, &attacker).await);
    }
    assert!(
        waits[0] <= 1 && waits[2] > waits[0],
        "growing locks: {waits:?}"
    );

    // Guessing spread over fresh addresses (six failures so far, the ceiling is eight):
    // once past the ceiling, each further failure doubles the account's lock.
    for i in 0..6 {
        guess(&app, &client_from(&format!("127.0.1.{i}"))).await;
    }
    // Four failures past the ceiling: an 8 s lock on the account, for any address it
    // has not logged in from, even with the right password.
    let (status, wait) =
        try_login(&app, &client_from("127.0.2.1"), ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "a fresh address waits out the account's lock"
    );
    assert!((1..=8).contains(&wait.unwrap()), "{wait:?}");
    let (status, _) = try_login(&app, &owner, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the owner's known address is never locked out by others"
    );
    app.stop().await;
}

#[tokio::test]
async fn attackers_elsewhere_cannot_lock_the_owner_out_in_memory() {
    attackers_elsewhere_cannot_lock_the_owner_out(false).await;
}

#[tokio::test]
async fn attackers_elsewhere_cannot_lock_the_owner_out_on_redis() {
    attackers_elsewhere_cannot_lock_the_owner_out(true).await;
}

async fn refresh_with(app: &TestApp, token: &str) -> (StatusCode, Value) {
    app.call(
        "POST",
        "/api/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": token})),
    )
    .await
}

/// A client that refreshes several times at once, or retries a refresh whose answer it
/// lost, keeps its session: within the grace window every repeat gets the same new
/// refresh token. A token older than that, or the same one after the window, is reuse.
async fn repeated_refreshes_keep_the_session(redis: bool) {
    let Some(app) = app_on(redis, |_| {}).await else {
        return;
    };
    let (_, pair) = app
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
        )
        .await;
    let first = pair["refresh_token"].as_str().unwrap().to_owned();
    let answers = futures::future::join_all((0..8).map(|_| refresh_with(&app, &first))).await;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
    }
    let second = answers[0].1["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert!(
        answers
            .iter()
            .all(|(_, b)| b["refresh_token"] == second.as_str()),
        "every repeat gets the same refresh token: {answers:?}"
    );
    for (_, body) in &answers {
        let (status, _) = app
            .call(
                "GET",
                "/api/v1/auth/me",
                body["access_token"].as_str(),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "the session lives");
    }
    let (status, third) = refresh_with(&app, &second).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the shared token rotates on: {third}"
    );
    // `first` is now two rotations old: true reuse.
    let (status, body) = refresh_with(&app, &first).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = app
        .call(
            "GET",
            "/api/v1/auth/me",
            third["access_token"].as_str(),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "reuse revoked the session"
    );
    app.stop().await;

    // After the grace window, the token the last refresh spent is reuse too.
    let Some(app) = app_on(redis, |c| c.auth.refresh_reuse_grace_s = 1).await else {
        return;
    };
    let (_, pair) = app
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
        )
        .await;
    let first = pair["refresh_token"].as_str().unwrap().to_owned();
    let (status, next) = refresh_with(&app, &first).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let (status, _) = refresh_with(&app, &first).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "past the window");
    let (status, _) = app
        .call(
            "GET",
            "/api/v1/auth/me",
            next["access_token"].as_str(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the session is revoked");
    let (status, _) = refresh_with(&app, next["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn repeated_refreshes_keep_the_session_in_memory() {
    repeated_refreshes_keep_the_session(false).await;
}

#[tokio::test]
async fn repeated_refreshes_keep_the_session_on_redis() {
    repeated_refreshes_keep_the_session(true).await;
}

async fn login_with_forwarded(
    app: &TestApp,
    client: &reqwest::Client,
    forwarded: &str,
    password: &str,
) -> StatusCode {
    client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", forwarded)
        .json(&json!({"email": ADMIN_EMAIL, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

/// Behind a reverse proxy every client has the proxy's address: the proxy's
/// `X-Forwarded-For` tells them apart, but only from a configured trusted proxy — any
/// client can write the header.
#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let app = TestApp::spawn_with(|c| {
        c.auth.login_max_failures = 3;
        c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let proxy = client_from("127.0.0.1");
    assert_eq!(
        login_with_forwarded(&app, &proxy, "198.51.100.2", ADMIN_PASSWORD).await,
        StatusCode::OK,
        "the owner logs in through the proxy"
    );
    for _ in 0..4 {
        assert_eq!(
            login_with_forwarded(&app, &proxy, "198.51.100.1", WRONG).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_with_forwarded(&app, &proxy, "198.51.100.1", WRONG).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the attacker behind the proxy is throttled"
    );
    assert_eq!(
        login_with_forwarded(&app, &proxy, "10.9.9.9, 198.51.100.1", ADMIN_PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "what the client writes into the header itself does not count"
    );
    assert_eq!(
        login_with_forwarded(&app, &proxy, "198.51.100.2", ADMIN_PASSWORD).await,
        StatusCode::OK,
        "the owner behind the same proxy is not"
    );

    // A client that is not a trusted proxy cannot name itself: a new address in the
    // header on every guess does not escape its own throttle.
    let spoofer = client_from("127.0.0.3");
    let mut statuses = Vec::new();
    for i in 0..5 {
        statuses.push(login_with_forwarded(&app, &spoofer, &format!("203.0.113.{i}"), WRONG).await);
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    app.stop().await;
}
