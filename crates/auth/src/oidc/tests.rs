//! The ID-token verifier and the flow's state handling, against a small local issuer
//! (discovery, key set, token endpoint over real HTTP) with RSA keys made here.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::Mutex;
use serde_json::{Value, json};
use switchyard_cache::{LocalBus, MemoryCache};
use switchyard_core::auth::Role;
use switchyard_core::error::ErrorCode;
use switchyard_core::store::Store;
use switchyard_store::{Durability, SqliteStore};

use super::config::{CALLBACK_PATH, OidcConfig};
use super::id_token::{self, Expected};
use super::provider::Provider;
use super::{CallbackParams, SsoFailure};
use crate::{AuthConfig, AuthService, ClientInfo};

const CLIENT_ID: &str = "switchyard-unit";

struct SigningKey {
    encoding: EncodingKey,
    jwk: Jwk,
}

impl SigningKey {
    fn generate(kid: &str) -> SigningKey {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap();
        let body = STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        );
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        SigningKey { encoding, jwk }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.jwk.common.key_id.clone();
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

#[derive(Default)]
struct IssuerState {
    published: Mutex<Vec<Jwk>>,
    jwks_fetches: AtomicUsize,
    /// What the token endpoint answers with next.
    id_token: Mutex<Option<String>>,
    /// The last form the token endpoint received.
    token_form: Mutex<Option<String>>,
}

struct TestIssuer {
    url: String,
    state: Arc<IssuerState>,
    key: SigningKey,
}

impl TestIssuer {
    async fn start() -> TestIssuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(IssuerState::default());
        let key = SigningKey::generate("key-1");
        state.published.lock().push(key.jwk.clone());
        let base = url.clone();
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    let base = base.clone();
                    async move {
                        axum::Json(json!({
                            "issuer": base,
                            "authorization_endpoint": format!("{base}/auth"),
                            "token_endpoint": format!("{base}/token"),
                            "jwks_uri": format!("{base}/jwks"),
                            "id_token_signing_alg_values_supported": ["RS256"],
                            "code_challenge_methods_supported": ["S256"],
                        }))
                    }
                }),
            )
            .route(
                "/jwks",
                get(|State(s): State<Arc<IssuerState>>| async move {
                    s.jwks_fetches.fetch_add(1, Ordering::SeqCst);
                    axum::Json(JwkSet {
                        keys: s.published.lock().clone(),
                    })
                }),
            )
            .route(
                "/token",
                post(|State(s): State<Arc<IssuerState>>, body: String| async move {
                    *s.token_form.lock() = Some(body);
                    let token = s.id_token.lock().take();
                    axum::Json(json!({"access_token": "at", "token_type": "Bearer", "id_token": token}))
                }),
            )
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        TestIssuer { url, state, key }
    }

    fn config(&self) -> OidcConfig {
        OidcConfig {
            issuer: self.url.clone(),
            client_id: CLIENT_ID.into(),
            client_secret: Some("unit-secret".into()),
            redirect_url: format!("http://127.0.0.1:8080{CALLBACK_PATH}"),
            role_claim: Some("groups".into()),
            role_map: [
                ("sy-ops".to_owned(), Role::Operator),
                ("sy-admins".to_owned(), Role::Admin),
            ]
            .into(),
            ..OidcConfig::default()
        }
    }

    fn provider(&self) -> Provider {
        Provider::new(&self.config()).unwrap()
    }

    fn claims(&self, nonce: &str) -> Value {
        let now = jsonwebtoken::get_current_timestamp();
        json!({
            "iss": self.url,
            "sub": "user-1",
            "aud": CLIENT_ID,
            "exp": now + 300,
            "iat": now,
            "nonce": nonce,
            "email": "sso-user@example.com",
            "email_verified": true,
            "groups": ["sy-ops"],
        })
    }

    fn fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }
}

fn expected(nonce: &str) -> Expected<'_> {
    Expected {
        client_id: CLIENT_ID,
        nonce,
        now: jsonwebtoken::get_current_timestamp(),
    }
}

async fn refused(provider: &Provider, token: &str, nonce: &str) -> String {
    let e = id_token::verify(provider, token, &expected(nonce))
        .await
        .expect_err("the token is refused");
    assert_eq!(e.failure, SsoFailure::InvalidToken, "{}", e.detail);
    e.detail
}

#[tokio::test]
async fn a_good_token_verifies() {
    let issuer = TestIssuer::start().await;
    let provider = issuer.provider();
    let token = issuer.key.sign(&issuer.claims("n-1"));
    let claims = id_token::verify(&provider, &token, &expected("n-1"))
        .await
        .unwrap();
    assert_eq!(claims.sub, "user-1");
    assert_eq!(claims.email.as_deref(), Some("sso-user@example.com"));
    assert_eq!(claims.all["groups"], json!(["sy-ops"]));
}

#[tokio::test]
async fn a_wrong_audience_is_refused() {
    let issuer = TestIssuer::start().await;
    let provider = issuer.provider();
    let mut claims = issuer.claims("n");
    claims["aud"] = json!("another-client");
    let detail = refused(&provider, &issuer.key.sign(&claims), "n").await;
    assert!(detail.contains("audience"), "{detail}");
    // Several audiences with this client among them need azp naming this client.
    claims["aud"] = json!([CLIENT_ID, "another-client"]);
    let detail = refused(&provider, &issuer.key.sign(&claims), "n").await;
    assert!(detail.contains("azp"), "{detail}");
    claims["azp"] = json!("another-client");
    let detail = refused(&provider, &issuer.key.sign(&claims), "n").await;
    assert!(detail.contains("another party"), "{detail}");
    claims["azp"] = json!(CLIENT_ID);
    id_token::verify(&provider, &issuer.key.sign(&claims), &expected("n"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_wrong_issuer_is_refused() {
    let issuer = TestIssuer::start().await;
    let provider = issuer.provider();
    let mut claims = issuer.claims("n");
    claims["iss"] = json!("https://evil.example.com");
    let detail = refused(&provider, &issuer.key.sign(&claims), "n").await;
    assert!(detail.contains("issuer"), "{detail}");
}

#[tokio::test]
async fn an_expired_token_is_refused_beyond_the_leeway() {
    let issuer = TestIssuer::start().await;
    let provider = issuer.provider();
    let now = jsonwebtoken::get_current_timestamp();
    let mut claims = issuer.claims("n");
    claims["exp"] = json!(now - id_token::LEEWAY_S - 30);
    claims["iat"] = json!(now - 600);
    let detail = refused(&provider, &issuer.key.sign(&claims), "n").await;
    assert!(detail.contains("expired"), "{detail}");
    // Within the leeway: a small clock skew is forgiven.
    claims["exp"] = json!(now - 5);
    id_token::verify(&provider, &issuer.key.sign(&claims), &expected("n"))
        .await
        .unwrap();
    // Issued in the future beyond the leeway.
    claims["exp"] = json!(now + 3_600);
    claims["iat"] = json!(now + 1_000);
    let detail = refused(&provider, &issuer.key.sign(&claims), "n").await;
    assert!(detail.contains("iat"), "{detail}");
}

#[tokio::test]
async fn an_unknown_key_is_refused_after_one_refetch() {
    let issuer = TestIssuer::start().await;
    let provider = issuer.provider();
    let claims = issuer.claims("n");
    id_token::verify(&provider, &issuer.key.sign(&claims), &expected("n"))
        .await
        .unwrap();
    assert_eq!(issuer.fetches(), 1);
    let stranger = SigningKey::generate("key-unknown");
    let detail = refused(&provider, &stranger.sign(&claims), "n").await;
    assert!(detail.contains("key-unknown"), "{detail}");
    assert_eq!(issuer.fetches(), 2, "one refetch for the unknown kid");
    // A burst of made-up kids does not hammer the provider.
    for _ in 0..3 {
        refused(&provider, &stranger.sign(&claims), "n").await;
    }
    assert_eq!(issuer.fetches(), 2, "refetches are rate-limited");
    // A key with a known kid but other material fails on the signature.
    let impostor = SigningKey::generate("key-1");
    let detail = refused(&provider, &impostor.sign(&claims), "n").await;
    assert!(detail.contains("signature"), "{detail}");
}

#[tokio::test]
async fn a_rotated_key_is_picked_up() {
    let issuer = TestIssuer::start().await;
    let provider = issuer.provider().refetch_every(Duration::from_millis(0));
    let claims = issuer.claims("n");
    id_token::verify(&provider, &issuer.key.sign(&claims), &expected("n"))
        .await
        .unwrap();
    let rotated = SigningKey::generate("key-2");
    issuer.state.published.lock().push(rotated.jwk.clone());
    id_token::verify(&provider, &rotated.sign(&claims), &expected("n"))
        .await
        .unwrap();
    assert_eq!(issuer.fetches(), 2);
    // The old key keeps working from the refreshed set.
    id_token::verify(&provider, &issuer.key.sign(&claims), &expected("n"))
        .await
        .unwrap();
    assert_eq!(issuer.fetches(), 2);
}

#[tokio::test]
async fn a_bad_nonce_is_refused() {
    let issuer = TestIssuer::start().await;
    let provider = issuer.provider();
    let token = issuer.key.sign(&issuer.claims("the-real-one"));
    let detail = refused(&provider, &token, "another").await;
    assert!(detail.contains("nonce"), "{detail}");
    let mut claims = issuer.claims("x");
    claims.as_object_mut().unwrap().remove("nonce");
    let detail = refused(&provider, &issuer.key.sign(&claims), "x").await;
    assert!(detail.contains("no nonce"), "{detail}");
}

#[tokio::test]
async fn unsigned_and_shared_secret_tokens_are_refused() {
    let issuer = TestIssuer::start().await;
    let provider = issuer.provider();
    let claims = issuer.claims("n");
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let none = format!(
        "{}.{}.",
        part(&json!({"alg": "none", "typ": "JWT", "kid": "key-1"})),
        part(&claims)
    );
    let detail = refused(&provider, &none, "n").await;
    assert!(detail.contains("alg none"), "{detail}");
    // HS256 keyed with the provider's public modulus: the classic key-confusion attack.
    let jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) = &issuer.key.jwk.algorithm else {
        panic!("an RSA key");
    };
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("key-1".into());
    let forged = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(rsa.n.as_bytes()),
    )
    .unwrap();
    let detail = refused(&provider, &forged, "n").await;
    assert!(detail.contains("shared-secret"), "{detail}");
    assert!(
        refused(&provider, "not.a.token", "n")
            .await
            .contains("header")
    );
}

async fn service(config: AuthConfig) -> (AuthService, tempfile::TempDir) {
    let (auth, dir) = try_service(config).await;
    (auth.unwrap(), dir)
}

async fn try_service(
    config: AuthConfig,
) -> (switchyard_core::Result<AuthService>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("unit.db"), Durability::Normal)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    let auth = AuthService::new(
        store,
        Arc::new(MemoryCache::default()),
        Arc::new(LocalBus::default()),
        config,
    )
    .await;
    (auth, dir)
}

fn query_param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("{name} in {url}"))
}

#[tokio::test]
async fn the_flow_binds_state_to_the_browser_and_uses_it_once() {
    let issuer = TestIssuer::start().await;
    let (auth, _dir) = service(AuthConfig {
        oidc: Some(issuer.config()),
        ..AuthConfig::default()
    })
    .await;
    let start = auth
        .oidc_begin(Some("/tasks"), None, &ClientInfo::default())
        .await
        .unwrap();
    let state = query_param(&start.authorize_url, "state");
    let nonce = query_param(&start.authorize_url, "nonce");
    assert_eq!(
        query_param(&start.authorize_url, "code_challenge_method"),
        "S256"
    );
    assert_eq!(query_param(&start.authorize_url, "client_id"), CLIENT_ID);

    // A forged state (never issued) is refused before anything reaches the provider.
    let forged = CallbackParams {
        code: Some("c".into()),
        state: Some("forged-state".into()),
        ..CallbackParams::default()
    };
    let e = auth
        .oidc_callback(&forged, Some(&start.browser_binding))
        .await
        .err()
        .unwrap();
    assert_eq!(e.failure, SsoFailure::StateMismatch);
    assert!(issuer.state.token_form.lock().is_none());

    // The right state from another browser is refused, and spent.
    let other_browser = auth
        .oidc_begin(None, None, &ClientInfo::default())
        .await
        .unwrap();
    let stolen = CallbackParams {
        code: Some("c".into()),
        state: Some(query_param(&other_browser.authorize_url, "state")),
        ..CallbackParams::default()
    };
    let e = auth
        .oidc_callback(&stolen, Some(&start.browser_binding))
        .await
        .err()
        .unwrap();
    assert_eq!(e.failure, SsoFailure::StateMismatch);
    let e = auth
        .oidc_callback(&stolen, Some(&other_browser.browser_binding))
        .await
        .err()
        .unwrap();
    assert_eq!(
        e.failure,
        SsoFailure::StateMismatch,
        "spent by the failed try"
    );

    // The real callback signs the user in, with the mapped role.
    *issuer.state.id_token.lock() = Some(issuer.key.sign(&issuer.claims(&nonce)));
    let params = CallbackParams {
        code: Some("the-code".into()),
        state: Some(state.clone()),
        ..CallbackParams::default()
    };
    let landing = auth
        .oidc_callback(&params, Some(&start.browser_binding))
        .await
        .unwrap();
    assert_eq!(landing.next, "/tasks");
    assert_eq!(landing.user.role, Role::Operator);
    assert_eq!(landing.user.email, "sso-user@example.com");
    let form = issuer.state.token_form.lock().clone().unwrap();
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(form.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "the-code");
    assert!(form["code_verifier"].len() >= 43);
    assert!(
        !form.contains_key("client_secret"),
        "client_secret_basic by default"
    );

    // Replaying the same callback finds no pending login.
    *issuer.state.id_token.lock() = Some(issuer.key.sign(&issuer.claims(&nonce)));
    let e = auth
        .oidc_callback(&params, Some(&start.browser_binding))
        .await
        .err()
        .unwrap();
    assert_eq!(e.failure, SsoFailure::StateMismatch);

    // The one-time code gives a session once.
    let pair = auth
        .oidc_exchange(&landing.code, &ClientInfo::default())
        .await
        .unwrap();
    let principal = auth.authenticate(&pair.access_token).await.unwrap();
    assert_eq!(principal.user_id, landing.user.id);
    assert_eq!(principal.role, Role::Operator);
    let again = auth
        .oidc_exchange(&landing.code, &ClientInfo::default())
        .await
        .unwrap_err();
    assert_eq!(again.code, ErrorCode::Unauthorized);
}

#[tokio::test]
async fn roles_follow_the_provider_and_unmapped_users_are_refused() {
    let issuer = TestIssuer::start().await;
    let (auth, _dir) = service(AuthConfig {
        oidc: Some(issuer.config()),
        ..AuthConfig::default()
    })
    .await;
    let sign_in = |groups: Value| {
        let auth = &auth;
        let issuer = &issuer;
        async move {
            let start = auth
                .oidc_begin(None, None, &ClientInfo::default())
                .await
                .unwrap();
            let mut claims = issuer.claims(&query_param(&start.authorize_url, "nonce"));
            claims["groups"] = groups;
            *issuer.state.id_token.lock() = Some(issuer.key.sign(&claims));
            let params = CallbackParams {
                code: Some("c".into()),
                state: Some(query_param(&start.authorize_url, "state")),
                ..CallbackParams::default()
            };
            auth.oidc_callback(&params, Some(&start.browser_binding))
                .await
        }
    };
    let e = sign_in(json!(["staff"])).await.err().unwrap();
    assert_eq!(e.failure, SsoFailure::NoRole);
    let first = sign_in(json!(["sy-ops"])).await.unwrap();
    assert_eq!(first.user.role, Role::Operator);
    // Losing the group at the provider refuses the next login; it is the same user after.
    let e = sign_in(json!("staff")).await.err().unwrap();
    assert_eq!(e.failure, SsoFailure::NoRole);
    let second = sign_in(json!(["sy-ops", "staff"])).await.unwrap();
    assert_eq!(second.user.id, first.user.id);
    // Promoted at the provider: the next login is an admin, and sessions of the old role end.
    let old_session = auth
        .oidc_exchange(&second.code, &ClientInfo::default())
        .await
        .unwrap();
    let promoted = sign_in(json!(["sy-admins"])).await.unwrap();
    assert_eq!(
        (promoted.user.id, promoted.user.role),
        (first.user.id, Role::Admin)
    );
    assert!(auth.authenticate(&old_session.access_token).await.is_err());
    let pair = auth
        .oidc_exchange(&promoted.code, &ClientInfo::default())
        .await
        .unwrap();
    assert_eq!(
        auth.authenticate(&pair.access_token).await.unwrap().role,
        Role::Admin
    );
    // A disabled user is refused (another admin first: the last one cannot be disabled).
    auth.create_user_unchecked(
        "other-admin@example.com",
        "another admin password",
        Role::Admin,
    )
    .await
    .unwrap();
    auth.update_user_unchecked(
        first.user.id,
        crate::UserUpdate {
            disabled: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let e = sign_in(json!(["sy-ops"])).await.err().unwrap();
    assert_eq!(e.failure, SsoFailure::AccountDisabled);
}

#[tokio::test]
async fn a_local_account_with_the_same_email_is_never_taken_over() {
    let issuer = TestIssuer::start().await;
    let (auth, _dir) = service(AuthConfig {
        oidc: Some(issuer.config()),
        ..AuthConfig::default()
    })
    .await;
    auth.create_user_unchecked("sso-user@example.com", "a local password", Role::Admin)
        .await
        .unwrap();
    let start = auth
        .oidc_begin(None, None, &ClientInfo::default())
        .await
        .unwrap();
    *issuer.state.id_token.lock() = Some(
        issuer
            .key
            .sign(&issuer.claims(&query_param(&start.authorize_url, "nonce"))),
    );
    let params = CallbackParams {
        code: Some("c".into()),
        state: Some(query_param(&start.authorize_url, "state")),
        ..CallbackParams::default()
    };
    let e = auth
        .oidc_callback(&params, Some(&start.browser_binding))
        .await
        .err()
        .unwrap();
    assert_eq!(e.failure, SsoFailure::EmailConflict);
}

#[tokio::test]
async fn password_login_off_spares_only_the_break_glass_admin() {
    let issuer = TestIssuer::start().await;
    let (auth, _dir) = service(AuthConfig {
        password_login: false,
        break_glass_email: Some("Root@Example.com".into()),
        oidc: Some(issuer.config()),
        ..AuthConfig::default()
    })
    .await;
    auth.create_user_unchecked("root@example.com", "break glass password", Role::Admin)
        .await
        .unwrap();
    auth.create_user_unchecked("ops@example.com", "an ops password!", Role::Operator)
        .await
        .unwrap();
    let e = auth
        .login(
            "ops@example.com",
            "an ops password!",
            &ClientInfo::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::PasswordLoginDisabled);
    assert!(e.message.contains("auth.password_login"), "{}", e.message);
    auth.login(
        "root@example.com",
        "break glass password",
        &ClientInfo::default(),
    )
    .await
    .unwrap();
    let options = auth.login_options();
    assert!(!options.password_login && options.break_glass);
    assert_eq!(options.oidc.unwrap().name, "SSO");
}

#[tokio::test]
async fn bad_settings_stop_the_start() {
    let (started, _dir) = try_service(AuthConfig {
        password_login: false,
        ..AuthConfig::default()
    })
    .await;
    let e = started.err().unwrap();
    assert!(e.message.contains("auth.password_login"), "{}", e.message);
    let (started, _dir) = try_service(AuthConfig {
        break_glass_email: Some("not an email".into()),
        ..AuthConfig::default()
    })
    .await;
    let e = started.err().unwrap();
    assert!(
        e.message.contains("auth.break_glass_email"),
        "{}",
        e.message
    );
    let (started, _dir) = try_service(AuthConfig {
        oidc: Some(OidcConfig::default()),
        ..AuthConfig::default()
    })
    .await;
    let e = started.err().unwrap();
    assert!(e.message.contains("auth.oidc.issuer"), "{}", e.message);
}

#[tokio::test]
async fn starting_logins_is_limited_per_address() {
    let issuer = TestIssuer::start().await;
    let (auth, _dir) = service(AuthConfig {
        oidc: Some(issuer.config()),
        ..AuthConfig::default()
    })
    .await;
    let client = ClientInfo {
        ip: Some("192.0.2.9".into()),
        user_agent: None,
    };
    for _ in 0..super::MAX_PENDING_PER_ADDRESS {
        auth.oidc_begin(None, None, &client).await.unwrap();
    }
    let e = auth.oidc_begin(None, None, &client).await.err().unwrap();
    assert_eq!(e.code, ErrorCode::RateLimited);
    assert!(e.retry_after_s.is_some());
    // Another address is not affected.
    let other = ClientInfo {
        ip: Some("192.0.2.10".into()),
        user_agent: None,
    };
    auth.oidc_begin(None, None, &other).await.unwrap();
}
