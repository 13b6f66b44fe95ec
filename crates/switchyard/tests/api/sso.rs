//! Single sign-on against a real OpenID provider: panva's `oidc-provider` from
//! deploy/testing/oidc-provider, which .ci/run starts and names in `TEST_OIDC_ISSUER`.
//! The browser's part is played here over plain HTTP: the provider's own sign-in form
//! is posted with a test user's password, and cookies are carried by hand.
//! (The ID-token checks with forged keys are unit tests in crates/auth/src/oidc.)

use std::collections::BTreeMap;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use switchyard_auth::oidc::config::{CALLBACK_PATH, OidcConfig};
use switchyard_core::auth::Role;

use crate::common::*;

struct Provider {
    issuer: String,
    client_id: String,
    client_secret: String,
}

/// The test provider, or `None` (said loudly) when `TEST_OIDC_ISSUER` is unset.
fn provider(test: &str) -> Option<Provider> {
    let Ok(issuer) = std::env::var("TEST_OIDC_ISSUER") else {
        eprintln!(
            "SKIPPED: TEST_OIDC_ISSUER not set — the single sign-on test {test} did not run (.ci/run starts the provider)"
        );
        return None;
    };
    Some(Provider {
        issuer,
        client_id: std::env::var("TEST_OIDC_CLIENT_ID")
            .unwrap_or_else(|_| "switchyard-test".into()),
        client_secret: std::env::var("TEST_OIDC_CLIENT_SECRET")
            .unwrap_or_else(|_| "switchyard-test-secret".into()),
    })
}

fn oidc_config(p: &Provider, port: u16) -> OidcConfig {
    OidcConfig {
        issuer: p.issuer.clone(),
        client_id: p.client_id.clone(),
        client_secret: Some(p.client_secret.clone()),
        scopes: ["openid", "email", "profile", "groups"]
            .map(String::from)
            .to_vec(),
        name: "Test IdP".into(),
        redirect_url: format!("http://127.0.0.1:{port}{CALLBACK_PATH}"),
        role_claim: Some("groups".into()),
        role_map: [
            ("switchyard-admins".to_owned(), Role::Admin),
            ("switchyard-operators".to_owned(), Role::Operator),
            ("switchyard-viewers".to_owned(), Role::Viewer),
        ]
        .into(),
        ..OidcConfig::default()
    }
}

/// A server with single sign-on at the provider. Its port is chosen first: the
/// redirect URL names it.
async fn sso_app(p: &Provider, adjust: impl FnOnce(&mut switchyard::config::Config)) -> TestApp {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    TestApp::spawn_with(|c| {
        c.server.listen = format!("127.0.0.1:{port}").parse().unwrap();
        c.auth.oidc = Some(oidc_config(p, port));
        adjust(c);
    })
    .await
}

/// One browser: cookies by name (enough for two hosts whose cookie names differ), no
/// automatic redirects.
struct Browser {
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
    /// The last callback URL the provider sent this browser to.
    last_callback: Option<String>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(WAIT)
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            last_callback: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let value = value.to_str().unwrap();
            let pair = value.split(';').next().unwrap();
            if let Some((name, v)) = pair.split_once('=') {
                if v.is_empty() || value.to_ascii_lowercase().contains("max-age=0") {
                    self.cookies.remove(name.trim());
                } else {
                    self.cookies.insert(name.trim().to_owned(), v.to_owned());
                }
            }
        }
    }

    async fn get(&mut self, url: &str) -> reqwest::Response {
        let r = self
            .http
            .get(url)
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep_cookies(&r);
        r
    }

    async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let r = self
            .http
            .post(url)
            .header(COOKIE, self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.keep_cookies(&r);
        r
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn location(r: &reqwest::Response, base: &str) -> String {
    let l = r
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("a redirect, got {}", r.status()))
        .to_str()
        .unwrap();
    url::Url::parse(base).unwrap().join(l).unwrap().to_string()
}

fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Signs `login` in at the provider, starting from the server's login route; returns
/// where the server's callback finally sends the browser (the web app's login page).
async fn sign_in(app: &TestApp, browser: &mut Browser, login: &str, password: &str) -> String {
    let start = browser
        .get(&app.url("/api/v1/auth/oidc/login?next=/tasks"))
        .await;
    assert_eq!(start.status(), StatusCode::FOUND);
    assert!(browser.cookies.contains_key("switchyard_oidc"));
    let mut url = location(&start, &app.base);
    assert_eq!(
        param(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let mut posted = false;
    for _ in 0..20 {
        if url.starts_with(&app.base) {
            browser.last_callback = Some(url.clone());
            let back = browser.get(&url).await;
            assert_eq!(back.status(), StatusCode::FOUND, "the callback redirects");
            return location(&back, &app.base);
        }
        let r = browser.get(&url).await;
        if r.status().is_redirection() {
            url = location(&r, &url);
            continue;
        }
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        let page = r.text().await.unwrap();
        assert!(!posted, "the provider refused the password: {page}");
        // The provider's own sign-in form.
        let action = page
            .split("action=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("a sign-in form: {page}"));
        let action = url::Url::parse(&url)
            .unwrap()
            .join(action)
            .unwrap()
            .to_string();
        let r = browser
            .post_form(&action, &[("login", login), ("password", password)])
            .await;
        posted = true;
        if r.status() == StatusCode::OK {
            let page = r.text().await.unwrap();
            return format!("provider-refused:{page}");
        }
        url = location(&r, &url);
    }
    panic!("too many redirects");
}

fn sso_code(landing: &str) -> String {
    let fragment = url::Url::parse(landing)
        .unwrap()
        .fragment()
        .unwrap_or_default()
        .to_owned();
    fragment
        .strip_prefix("sso_code=")
        .unwrap_or_else(|| panic!("a one-time code in {landing}"))
        .to_owned()
}

async fn exchange(app: &TestApp, code: &str) -> (StatusCode, Value) {
    app.call(
        "POST",
        "/api/v1/auth/oidc/exchange",
        None,
        Some(json!({"code": code})),
    )
    .await
}

#[tokio::test]
async fn a_user_signs_in_through_the_provider_as_the_mapped_role() {
    let Some(p) = provider("a_user_signs_in_through_the_provider_as_the_mapped_role") else {
        return;
    };
    let app = sso_app(&p, |_| {}).await;
    let (status, options) = app.call("GET", "/api/v1/auth/providers", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(options["password_login"], true);
    assert_eq!(options["oidc"]["name"], "Test IdP");

    let mut browser = Browser::new();
    let landing = sign_in(&app, &mut browser, "alice", "alice-password").await;
    assert!(
        landing.starts_with(&app.url("/login?next=%2Ftasks#sso_code="))
            || landing.starts_with(&app.url("/login?next=/tasks#sso_code=")),
        "{landing}"
    );
    let code = sso_code(&landing);
    let (status, pair) = exchange(&app, &code).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let token = pair["access_token"].as_str().unwrap();
    let (_, me) = app.call("GET", "/api/v1/auth/me", Some(token), None).await;
    assert_eq!(me["user"]["email"], "alice@example.com");
    assert_eq!(me["user"]["role"], "operator");
    // The refresh token works like any other session's.
    let (status, _) = app
        .call(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": pair["refresh_token"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The code works once.
    let (status, body) = exchange(&app, &code).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // A second login finds the same user (by the provider's subject), and the provider's
    // role wins over a local change.
    let user_id = me["user"]["id"].as_str().unwrap().to_owned();
    let (status, _) = app
        .call(
            "PATCH",
            &format!("/api/v1/users/{user_id}"),
            Some(&app.admin),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let landing = sign_in(&app, &mut browser, "alice", "alice-password").await;
    let (_, pair) = exchange(&app, &sso_code(&landing)).await;
    let (_, me) = app
        .call(
            "GET",
            "/api/v1/auth/me",
            pair["access_token"].as_str(),
            None,
        )
        .await;
    assert_eq!(me["user"]["id"], user_id.as_str());
    assert_eq!(me["user"]["role"], "operator");

    // The highest mapped group counts.
    let landing = sign_in(&app, &mut Browser::new(), "olga", "olga-password").await;
    let (_, pair) = exchange(&app, &sso_code(&landing)).await;
    let (_, me) = app
        .call(
            "GET",
            "/api/v1/auth/me",
            pair["access_token"].as_str(),
            None,
        )
        .await;
    assert_eq!(me["user"]["role"], "admin");

    // Both sign-ins are in the audit log.
    let (status, log) = app
        .call(
            "GET",
            "/api/v1/audit?action=sso.login",
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let emails: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["actor"]["name"].as_str())
        .collect();
    assert!(
        emails.contains(&"alice@example.com") && emails.contains(&"olga@example.com"),
        "{log}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_user_without_a_mapped_role_is_refused() {
    let Some(p) = provider("a_user_without_a_mapped_role_is_refused") else {
        return;
    };
    let app = sso_app(&p, |_| {}).await;
    let landing = sign_in(&app, &mut Browser::new(), "bob", "bob-password").await;
    assert_eq!(landing, app.url("/login?sso_error=no_role"));
    let (_, users) = app
        .call("GET", "/api/v1/users", Some(&app.admin), None)
        .await;
    assert!(
        !users.to_string().contains("bob@example.com"),
        "no account was made: {users}"
    );
    // A wrong password stays at the provider.
    let landing = sign_in(&app, &mut Browser::new(), "alice", "not-her-password").await;
    assert!(landing.starts_with("provider-refused:"), "{landing}");
    app.stop().await;
}

#[tokio::test]
async fn forged_replayed_and_foreign_states_are_refused() {
    let Some(p) = provider("forged_replayed_and_foreign_states_are_refused") else {
        return;
    };
    let app = sso_app(&p, |_| {}).await;
    let mut browser = Browser::new();
    let start = browser.get(&app.url("/api/v1/auth/oidc/login")).await;
    let authorize = location(&start, &app.base);
    let state = param(&authorize, "state").unwrap();

    // A state this server never issued.
    let r = browser
        .get(&app.url(&format!("{CALLBACK_PATH}?code=abc&state=forged")))
        .await;
    assert_eq!(
        location(&r, &app.base),
        app.url("/login?sso_error=state_mismatch")
    );
    // A real state presented by another browser (no binding cookie) is refused, and spent.
    let r = Browser::new()
        .get(&app.url(&format!("{CALLBACK_PATH}?code=abc&state={state}")))
        .await;
    assert_eq!(
        location(&r, &app.base),
        app.url("/login?sso_error=state_mismatch")
    );
    let r = browser
        .get(&app.url(&format!("{CALLBACK_PATH}?code=abc&state={state}")))
        .await;
    assert_eq!(
        location(&r, &app.base),
        app.url("/login?sso_error=state_mismatch")
    );

    // The provider's error (the user cancelled) is shown as such.
    let start = browser.get(&app.url("/api/v1/auth/oidc/login")).await;
    let state = param(&location(&start, &app.base), "state").unwrap();
    let r = browser
        .get(&app.url(&format!(
            "{CALLBACK_PATH}?error=access_denied&error_description=cancelled&state={state}"
        )))
        .await;
    assert_eq!(
        location(&r, &app.base),
        app.url("/login?sso_error=provider_error")
    );

    // A real sign-in, then its callback replayed (by the same browser, or a thief).
    let mut browser = Browser::new();
    let landing = sign_in(&app, &mut browser, "dave", "dave-password").await;
    sso_code(&landing);
    let callback = browser.last_callback.clone().unwrap();
    assert!(param(&callback, "code").is_some(), "{callback}");
    let r = browser.get(&callback).await;
    assert_eq!(
        location(&r, &app.base),
        app.url("/login?sso_error=state_mismatch")
    );
    // Every refusal is in the audit log, with its reason code.
    let (status, log) = app
        .call(
            "GET",
            "/api/v1/audit?action=sso.login_failed",
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let failures: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["detail"]["failure"].as_str())
        .collect();
    assert_eq!(failures.len(), 5, "{log}");
    assert!(failures.contains(&"provider_error"), "{log}");
    assert_eq!(
        failures.iter().filter(|f| **f == "state_mismatch").count(),
        4,
        "{log}"
    );
    let text = log.to_string();
    assert!(
        !text.contains(&p.client_secret),
        "no secret in the log: {text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn password_login_off_spares_only_the_break_glass_admin() {
    let Some(p) = provider("password_login_off_spares_only_the_break_glass_admin") else {
        return;
    };
    let app = sso_app(&p, |c| {
        c.auth.password_login = false;
        c.auth.break_glass_email = Some(ADMIN_EMAIL.into());
    })
    .await;
    let (status, options) = app.call("GET", "/api/v1/auth/providers", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(options["password_login"], false);
    assert_eq!(options["break_glass"], true);
    // The admin logged in with a password already (TestApp::spawn): the break-glass account.
    app.engine()
        .auth()
        .create_user_unchecked("ops@example.com", "an ops password!", Role::Operator)
        .await
        .unwrap();
    let (status, body) = app
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "ops@example.com", "password": "an ops password!"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "password_login_disabled");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("auth.password_login")
    );
    app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    // Single sign-on still works.
    let landing = sign_in(&app, &mut Browser::new(), "alice", "alice-password").await;
    let (status, _) = exchange(&app, &sso_code(&landing)).await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

/// Needs no provider: a server without single sign-on says so.
#[tokio::test]
async fn without_sso_the_routes_say_it_is_not_configured() {
    let app = TestApp::spawn().await;
    let (status, options) = app.call("GET", "/api/v1/auth/providers", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        options,
        json!({"password_login": true, "break_glass": false})
    );
    let (status, body) = exchange(&app, "anything").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "sso_not_configured");
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/api/v1/auth/oidc/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (status, body) = exchange(&app, &"x".repeat(10_000)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    app.stop().await;
}
