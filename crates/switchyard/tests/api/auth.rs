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
    let access = next["access_token"].as_str().unwrap();
    let (status, me) = app.call("GET", "/api/v1/auth/me", Some(access), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["user"]["email"], ADMIN_EMAIL);
    // Reusing the spent refresh token revokes the whole session.
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
            Some(json!({"refresh_token": next["refresh_token"]})),
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
        .engine()
        .store
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
    app.engine().auth.rotate_signing_key().await.unwrap();
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
