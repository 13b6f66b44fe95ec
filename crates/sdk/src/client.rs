//! The REST client: submit, read, follow, cancel and retry tasks, and manage agents, on a
//! server reached by URL with an API key, an access token or a login session.
//!
//! ```no_run
//! use std::time::Duration;
//! use switchyard_sdk::{Client, Credential, SubmitOptions};
//!
//! # async fn run() -> Result<(), switchyard_sdk::ClientError> {
//! let client = Client::new("http://127.0.0.1:8080", Credential::ApiKey("sy_…".into()))?;
//! let options = SubmitOptions { wait: Some(Duration::from_secs(30)), ..Default::default() };
//! let task = client.submit("echo", serde_json::json!({"hello": "world"}), &options).await?;
//! println!("{} is {}", task.id, task.status);
//! let mut events = client.follow(&task.id, Some(0));
//! while let Some(event) = events.next().await {
//!     println!("{}", event?.kind);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The names follow the Python and TypeScript SDKs' `Client` (`submit`, `get`, `list`,
//! `follow`, `cancel`, `retry`, …).

mod error;
mod events;
mod models;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use url::Url;

pub use error::{ApiError, ClientError};
pub use events::TaskEvents;
use models::TokenPair;
pub use models::{
    Agent, Attempt, LogLine, Me, Session, Task, TaskErrorInfo, TaskEvent, TaskPage, TaskStatus,
    User,
};

/// How long a call may take by default (a `submit` with `wait` gets the wait on top).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A session's access token is refreshed this long before it expires.
const REFRESH_MARGIN_S: u64 = 30;

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What the client authenticates with.
#[derive(Clone)]
pub enum Credential {
    /// An API key (`sy_…`); its scopes decide what it may do.
    ApiKey(String),
    /// An access token from a login, used as it is until it expires.
    AccessToken(String),
    /// A login session: the access token is refreshed (and the refresh token rotated)
    /// when it is about to expire; [`ClientBuilder::on_refresh`] hears of every new one.
    Session(Session),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::ApiKey(_) => "ApiKey(…)",
            Credential::AccessToken(_) => "AccessToken(…)",
            Credential::Session(_) => "Session(…)",
        })
    }
}

type RefreshHook = Arc<dyn Fn(&Session) + Send + Sync>;

enum Auth {
    Bearer(String),
    Session {
        current: tokio::sync::Mutex<Session>,
        on_refresh: Option<RefreshHook>,
    },
}

/// Options of [`Client::submit`].
#[derive(Clone, Debug, Default)]
pub struct SubmitOptions {
    /// Answer when the task finished, or when this much time passed (the server caps
    /// it: `queue.max_wait_ms`, 60 s by default). The task's status tells which.
    pub wait: Option<Duration>,
    /// Higher runs first; default the agent's priority.
    pub priority: Option<i32>,
    /// Run no earlier than this many milliseconds from now.
    pub delay_ms: Option<u64>,
    /// Submitting again with the same key (within the window) returns the first task.
    pub idempotency_key: Option<String>,
    /// Make the task a child of this one.
    pub parent_id: Option<String>,
    /// The task's flow key (see the agent's `concurrency_per_key`).
    pub concurrency_key: Option<String>,
}

/// Filters and page of [`Client::list`].
#[derive(Clone, Debug, Default)]
pub struct ListTasks {
    pub agent: Option<String>,
    /// One status or several, comma-separated (`queued,running`).
    pub status: Option<String>,
    /// Full-text search over agent, input, output, error and log lines.
    pub search: Option<String>,
    /// [`TaskPage::next_cursor`] of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1-500 (the server's default is 50).
    pub limit: Option<u32>,
}

/// Filters of [`Client::logs`].
#[derive(Clone, Debug, Default)]
pub struct LogQuery {
    /// Only lines after this sequence number.
    pub after: Option<u64>,
    /// At most this many lines (1-5000; the server's default is 1000).
    pub limit: Option<u32>,
    /// Only lines at this level or above: `debug`, `info`, `warn`, `error`.
    pub level: Option<String>,
    /// Only lines containing this text (case-insensitive).
    pub search: Option<String>,
}

/// Builds a [`Client`]; see [`Client::builder`].
pub struct ClientBuilder {
    url: String,
    credential: Option<Credential>,
    on_refresh: Option<RefreshHook>,
    timeout: Duration,
}

impl ClientBuilder {
    pub fn credential(mut self, credential: Credential) -> Self {
        self.credential = Some(credential);
        self
    }

    /// Called with the new tokens after every refresh of a [`Credential::Session`]: keep
    /// them, since the previous refresh token is spent.
    pub fn on_refresh(mut self, hook: impl Fn(&Session) + Send + Sync + 'static) -> Self {
        self.on_refresh = Some(Arc::new(hook));
        self
    }

    /// How long a call may take (default [`DEFAULT_TIMEOUT`]); following events has no
    /// limit.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn build(self) -> Result<Client, ClientError> {
        let base = base_url(&self.url)?;
        let auth = match self.credential {
            None => None,
            Some(Credential::ApiKey(t) | Credential::AccessToken(t)) => Some(Auth::Bearer(t)),
            Some(Credential::Session(s)) => Some(Auth::Session {
                current: tokio::sync::Mutex::new(s),
                on_refresh: self.on_refresh,
            }),
        };
        Ok(Client {
            base,
            http: http_client()?,
            auth: Arc::new(auth),
            timeout: self.timeout,
        })
    }
}

fn http_client() -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("switchyard-rust/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ClientError::Protocol(format!("cannot set up HTTP: {e}")))
}

/// `http(s)://host[:port][/prefix]`, with a trailing slash so that paths join under it.
fn base_url(url: &str) -> Result<Url, ClientError> {
    let invalid = || ClientError::InvalidUrl(url.to_owned());
    let mut base = Url::parse(url.trim()).map_err(|_| invalid())?;
    if !matches!(base.scheme(), "http" | "https")
        || base.host().is_none()
        || base.query().is_some()
        || base.fragment().is_some()
        || !base.username().is_empty()
    {
        return Err(invalid());
    }
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    Ok(base)
}

/// Talks to one Switchyard server. Cheap to clone (clones share connections and, for a
/// session, its tokens).
#[derive(Clone)]
pub struct Client {
    base: Url,
    http: reqwest::Client,
    auth: Arc<Option<Auth>>,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the server at `url` (`http(s)://host:port`).
    pub fn new(url: &str, credential: Credential) -> Result<Client, ClientError> {
        Client::builder(url).credential(credential).build()
    }

    pub fn builder(url: &str) -> ClientBuilder {
        ClientBuilder {
            url: url.to_owned(),
            credential: None,
            on_refresh: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The server's base URL, without the trailing slash.
    pub fn url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// Logs in with email and password (`POST /api/v1/auth/login`): a new session.
    pub async fn login(url: &str, email: &str, password: &str) -> Result<Session, ClientError> {
        let client = Client::builder(url).build()?;
        let body = json!({ "email": email, "password": password });
        let url = client.endpoint(&["auth", "login"]);
        let pair: TokenPair = client.call(Method::POST, url, Some(&body)).await?;
        Ok(pair.into_session())
    }

    /// Exchanges a refresh token for new tokens (`POST /api/v1/auth/refresh`). The refresh
    /// token is spent: keep the new one; presenting a spent one ends the session.
    pub async fn refresh(url: &str, refresh_token: &str) -> Result<Session, ClientError> {
        let client = Client::builder(url).build()?;
        client.refresh_with(refresh_token).await
    }

    async fn refresh_with(&self, refresh_token: &str) -> Result<Session, ClientError> {
        let body = json!({ "refresh_token": refresh_token });
        let url = self.endpoint(&["auth", "refresh"]);
        let response = self
            .request(Method::POST, url, Some(&body), Some(self.timeout), None)
            .await?;
        let pair: TokenPair = read_json(response).await?;
        Ok(pair.into_session())
    }

    /// Ends the session this client signs in with (`POST /api/v1/auth/logout`): its access
    /// and refresh tokens stop working at once, on every server. With an API key it does
    /// nothing (a key is revoked with `DELETE /api/v1/api-keys/{id}`).
    pub async fn logout(&self) -> Result<(), ClientError> {
        let url = self.endpoint(&["auth", "logout"]);
        self.send(Method::POST, url, None, Some(self.timeout))
            .await?;
        Ok(())
    }

    /// Who the credential belongs to (and, for an API key, its scopes).
    pub async fn me(&self) -> Result<Me, ClientError> {
        self.call(Method::GET, self.endpoint(&["auth", "me"]), None)
            .await
    }

    /// Submits a task of `agent` with `input` (a JSON object). With
    /// [`SubmitOptions::wait`], answers when the task finished or the wait ended.
    pub async fn submit(
        &self,
        agent: &str,
        input: Value,
        options: &SubmitOptions,
    ) -> Result<Task, ClientError> {
        let mut body = json!({ "agent": agent, "input": input });
        let fields = [
            ("priority", options.priority.map(Value::from)),
            ("delay_ms", options.delay_ms.map(Value::from)),
            (
                "idempotency_key",
                options.idempotency_key.clone().map(Value::from),
            ),
            ("parent_id", options.parent_id.clone().map(Value::from)),
            (
                "concurrency_key",
                options.concurrency_key.clone().map(Value::from),
            ),
        ];
        for (key, value) in fields {
            if let Some(value) = value {
                body[key] = value;
            }
        }
        let mut url = self.endpoint(&["tasks"]);
        let mut timeout = self.timeout;
        if let Some(wait) = options.wait {
            url.query_pairs_mut()
                .append_pair("wait", &format!("{}ms", wait.as_millis()));
            timeout += wait;
        }
        let response = self
            .send(Method::POST, url, Some(&body), Some(timeout))
            .await?;
        read_json(response).await
    }

    /// A task with its attempts.
    pub async fn get(&self, task_id: &str) -> Result<Task, ClientError> {
        self.call(Method::GET, self.endpoint(&["tasks", task_id]), None)
            .await
    }

    /// One page of the tasks the caller may see, newest first.
    pub async fn list(&self, query: &ListTasks) -> Result<TaskPage, ClientError> {
        let mut url = self.endpoint(&["tasks"]);
        {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in [
                ("agent", &query.agent),
                ("status", &query.status),
                ("q", &query.search),
                ("cursor", &query.cursor),
            ] {
                if let Some(value) = value {
                    pairs.append_pair(key, value);
                }
            }
            if let Some(limit) = query.limit {
                pairs.append_pair("limit", &limit.to_string());
            }
        }
        self.call(Method::GET, url, None).await
    }

    /// Follows a task live: its events from after `since` (`Some(0)`: every event the
    /// server still holds; `None`: its current state first), until its final event.
    pub fn follow(&self, task_id: &str, since: Option<u64>) -> TaskEvents {
        TaskEvents::new(self.clone(), task_id.to_owned(), since)
    }

    /// Cancels a task and its unfinished children: a waiting one at once, a running one
    /// once its worker stopped it (`cancel_requested` until then).
    pub async fn cancel(&self, task_id: &str) -> Result<Task, ClientError> {
        let url = self.endpoint(&["tasks", task_id, "cancel"]);
        self.call(Method::POST, url, None).await
    }

    /// Runs a failed, dead or cancelled task again.
    pub async fn retry(&self, task_id: &str) -> Result<Task, ClientError> {
        let url = self.endpoint(&["tasks", task_id, "retry"]);
        self.call(Method::POST, url, None).await
    }

    /// The log lines a task's agent wrote, oldest first (one page: see
    /// [`LogQuery::after`]).
    pub async fn logs(&self, task_id: &str, query: &LogQuery) -> Result<Vec<LogLine>, ClientError> {
        let mut url = self.endpoint(&["tasks", task_id, "logs"]);
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(after) = query.after {
                pairs.append_pair("after", &after.to_string());
            }
            if let Some(limit) = query.limit {
                pairs.append_pair("limit", &limit.to_string());
            }
            if let Some(level) = &query.level {
                pairs.append_pair("level", level);
            }
            if let Some(search) = &query.search {
                pairs.append_pair("q", search);
            }
        }
        let page: Items<LogLine> = self.call(Method::GET, url, None).await?;
        Ok(page.items)
    }

    /// Every agent, by name.
    pub async fn list_agents(&self) -> Result<Vec<Agent>, ClientError> {
        let page: Items<Agent> = self
            .call(Method::GET, self.endpoint(&["agents"]), None)
            .await?;
        Ok(page.items)
    }

    pub async fn get_agent(&self, name: &str) -> Result<Agent, ClientError> {
        self.call(Method::GET, self.endpoint(&["agents", name]), None)
            .await
    }

    /// Registers an agent (`POST /api/v1/agents`, admins): `spec` has the fields of an
    /// agent definition (`name`, `kind`, `config`, `retry`, …).
    pub async fn create_agent(&self, spec: &impl Serialize) -> Result<Agent, ClientError> {
        let body = to_body(spec)?;
        self.call(Method::POST, self.endpoint(&["agents"]), Some(&body))
            .await
    }

    /// Replaces an agent's definition, creating it if missing (`PUT`). A secret sent as
    /// `"***"` keeps the stored value; one left out is removed.
    pub async fn update_agent(
        &self,
        name: &str,
        spec: &impl Serialize,
    ) -> Result<Agent, ClientError> {
        let body = to_body(spec)?;
        self.call(Method::PUT, self.endpoint(&["agents", name]), Some(&body))
            .await
    }

    pub async fn delete_agent(&self, name: &str) -> Result<(), ClientError> {
        let url = self.endpoint(&["agents", name]);
        self.send(Method::DELETE, url, None, Some(self.timeout))
            .await?;
        Ok(())
    }

    /// `{base}/api/v1/{segments…}`, each segment percent-encoded.
    pub(crate) fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["api", "v1"]).extend(segments);
        }
        url
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<T, ClientError> {
        let response = self.send(method, url, body, Some(self.timeout)).await?;
        read_json(response).await
    }

    /// Sends a request with the credential; an error status becomes a [`ClientError`].
    /// A session whose access token the server finds expired is refreshed once.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut token = self.bearer(false).await?;
        let mut refreshed = false;
        loop {
            match self
                .request(method.clone(), url.clone(), body, timeout, token.as_deref())
                .await
            {
                Err(ClientError::Unauthorized(e))
                    if e.code == "token_expired" && !refreshed && self.has_session() =>
                {
                    refreshed = true;
                    token = self.bearer(true).await?;
                }
                other => return other,
            }
        }
    }

    async fn request(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        timeout: Option<Duration>,
        token: Option<&str>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ClientError::transport(self.url(), &e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap_or_default();
        Err(ClientError::from_status(ApiError::from_body(status, &body)))
    }

    fn has_session(&self) -> bool {
        matches!(*self.auth, Some(Auth::Session { .. }))
    }

    /// The token to send; a session's is refreshed first when it is about to expire (or
    /// `force`d, after the server found it expired).
    async fn bearer(&self, force: bool) -> Result<Option<String>, ClientError> {
        match &*self.auth {
            None => Ok(None),
            Some(Auth::Bearer(token)) => Ok(Some(token.clone())),
            Some(Auth::Session {
                current,
                on_refresh,
            }) => {
                let mut session = current.lock().await;
                if force || session.expires_at <= unix_now() + REFRESH_MARGIN_S {
                    *session = self.refresh_with(&session.refresh_token).await?;
                    if let Some(hook) = on_refresh {
                        hook(&session);
                    }
                }
                Ok(Some(session.access_token.clone()))
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct Items<T> {
    items: Vec<T>,
}

fn to_body(value: &impl Serialize) -> Result<Value, ClientError> {
    serde_json::to_value(value)
        .map_err(|e| ClientError::Protocol(format!("cannot encode the request: {e}")))
}

async fn read_json<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, ClientError> {
    let url = response.url().clone();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| ClientError::transport(url.as_str(), &e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ClientError::Protocol(format!(
            "{} answered JSON this client cannot read: {e}",
            url.path()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked_and_paths_join_under_them() {
        let client = Client::builder("http://127.0.0.1:8080").build().unwrap();
        assert_eq!(client.url(), "http://127.0.0.1:8080");
        assert_eq!(
            client.endpoint(&["tasks", "a b/c", "events"]).as_str(),
            "http://127.0.0.1:8080/api/v1/tasks/a%20b%2Fc/events"
        );
        let prefixed = Client::builder("https://example.com/switchyard/")
            .build()
            .unwrap();
        assert_eq!(
            prefixed.endpoint(&["agents"]).as_str(),
            "https://example.com/switchyard/api/v1/agents"
        );
        for bad in [
            "",
            "localhost:8080",
            "ftp://host",
            "http://",
            "http://u:p@host",
            "http://h/?q=1",
        ] {
            assert!(
                matches!(
                    Client::builder(bad).build(),
                    Err(ClientError::InvalidUrl(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn credentials_are_not_printed() {
        let c = Credential::ApiKey("sy_secret".into());
        assert!(!format!("{c:?}").contains("secret"));
        let s = Session {
            access_token: "tok".into(),
            refresh_token: "ref".into(),
            expires_at: 1,
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("tok") && !shown.contains("ref"), "{shown}");
    }
}
