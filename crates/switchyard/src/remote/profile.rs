//! The client's configuration: profiles in `$XDG_CONFIG_HOME/switchyard/config.toml`
//! (`~/.config/switchyard/config.toml` without it), each a server URL and a credential
//! (an API key, or a login session's tokens), and `switchyard login`, which writes them.
//!
//! The file holds credentials: it is created with mode 0600 (never loosened, then
//! tightened) and replaced whole by a rename, under a lock, so that two commands
//! refreshing one session at once cannot spend its rotating refresh token twice.
//! `SWITCHYARD_URL` and `SWITCHYARD_API_KEY` override the profile.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};
use switchyard_sdk::{Client, ClientError, Credential, Session};

use super::output::{self, OutputFormat};
use super::{ClientFlags, EXIT_DENIED, Exit};

pub const URL_ENV: &str = "SWITCHYARD_URL";
pub const API_KEY_ENV: &str = "SWITCHYARD_API_KEY";
/// A session's access token is refreshed before a command when it expires sooner.
const REFRESH_BEFORE_S: u64 = 60;

#[derive(Args)]
pub struct LoginArgs {
    /// The server's URL, e.g. http://127.0.0.1:8080 (default: SWITCHYARD_URL, or the
    /// profile's).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Sign in with an API key instead of email and password (`-`: read it from
    /// standard input).
    #[arg(long, value_name = "KEY")]
    api_key: Option<String>,
    /// The email to sign in with (asked for when not given).
    #[arg(long, value_name = "EMAIL", conflicts_with = "api_key")]
    email: Option<String>,
    #[command(flatten)]
    flags: ClientFlags,
}

/// The whole file. Keys this version does not know are kept when it is rewritten.
#[derive(Default, Serialize, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
    #[serde(flatten)]
    other: toml::Table,
}

#[derive(Clone, Default, Serialize, Deserialize)]
struct Profile {
    url: String,
    /// Who signed in (shown, not used to authenticate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    /// When the access token expires (seconds since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<u64>,
    #[serde(flatten)]
    other: toml::Table,
}

impl Profile {
    fn session(&self) -> Option<Session> {
        Some(Session {
            access_token: self.access_token.clone()?,
            refresh_token: self.refresh_token.clone()?,
            expires_at: self.expires_at.unwrap_or(0),
        })
    }

    fn set_session(&mut self, session: &Session) {
        self.api_key = None;
        self.access_token = Some(session.access_token.clone());
        self.refresh_token = Some(session.refresh_token.clone());
        self.expires_at = Some(session.expires_at);
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `$XDG_CONFIG_HOME/switchyard/config.toml`, else `$HOME/.config/switchyard/config.toml`.
pub fn config_path() -> Result<PathBuf, Exit> {
    let base = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".config")))
        .ok_or_else(|| {
            Exit::usage("cannot find the configuration directory: set XDG_CONFIG_HOME or HOME")
        })?;
    Ok(base.join("switchyard").join("config.toml"))
}

fn load(path: &Path) -> Result<ConfigFile, Exit> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| {
            Exit::usage(format!(
                "{} is not a valid client configuration: {e}",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(e) => Err(Exit::usage(format!("cannot read {}: {e}", path.display()))),
    }
}

/// Writes the file whole: a new file of mode 0600 beside it, renamed over it.
fn save(path: &Path, file: &ConfigFile) -> Result<(), Exit> {
    let fail = |what: &str, e: std::io::Error| Exit::new(1, format!("cannot {what}: {e}"));
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| fail(&format!("create {}", dir.display()), e))?;
    let text = toml::to_string(file)
        .map_err(|e| Exit::new(1, format!("cannot encode the client configuration: {e}")))?;
    let tmp = dir.join(format!(".config.toml.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(&format!("write {}", path.display()), e));
    }
    Ok(())
}

/// An exclusive lock on the configuration, held until dropped: read-modify-write of a
/// profile happens under it.
struct Lock {
    _file: std::fs::File,
}

fn lock(path: &Path) -> Result<Lock, Exit> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| Exit::new(1, format!("cannot lock {}: {e}", path.display()));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(fail)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(dir.join("config.lock"))
        .map_err(fail)?;
    // SAFETY: flock on a descriptor this function owns; released when the file closes.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    if rc != 0 {
        return Err(fail(std::io::Error::last_os_error()));
    }
    Ok(Lock { _file: file })
}

/// Changes one profile under the lock, from the file as it is now.
fn update_profile(
    path: &Path,
    name: &str,
    change: impl FnOnce(&mut Option<Profile>),
) -> Result<(), Exit> {
    let _lock = lock(path)?;
    let mut file = load(path)?;
    let mut profile = file.profiles.remove(name);
    change(&mut profile);
    if let Some(profile) = profile {
        file.profiles.insert(name.to_owned(), profile);
    }
    save(path, &file)
}

/// Two URLs of the same server (trailing slashes aside): a profile's credential is only
/// ever sent to the server it was issued by.
fn same_server(a: &str, b: &str) -> bool {
    a.trim().trim_end_matches('/') == b.trim().trim_end_matches('/')
}

/// A client for the server and credential the flags, environment and profile name.
pub async fn connect(flags: &ClientFlags) -> Result<Client, Exit> {
    let env_url = env(URL_ENV);
    let env_key = env(API_KEY_ENV);
    let (path, profile) = match (&env_url, &env_key) {
        // Everything is given: the configuration file is not needed.
        (Some(_), Some(_)) => (None, None),
        _ => {
            let path = config_path()?;
            let profile = load(&path)?.profiles.remove(&flags.profile);
            (Some(path), profile)
        }
    };
    let no_profile = || {
        let file = path
            .as_ref()
            .map_or(String::new(), |p| format!(" in {}", p.display()));
        format!(
            "no profile {:?}{file}: run `switchyard login --url URL{}` or set {URL_ENV} and {API_KEY_ENV}",
            flags.profile,
            if flags.profile == "default" {
                String::new()
            } else {
                format!(" --profile {}", flags.profile)
            }
        )
    };
    let Some(url) = env_url
        .clone()
        .or_else(|| profile.as_ref().map(|p| p.url.clone()))
    else {
        return Err(Exit::usage(no_profile()));
    };
    if let Some(key) = env_key {
        return Ok(Client::new(&url, Credential::ApiKey(key))?);
    }
    let profile = profile
        .filter(|p| same_server(&p.url, &url))
        .ok_or_else(|| {
            Exit::new(
                EXIT_DENIED,
                format!("no credential for {url}: set {API_KEY_ENV}, or run `switchyard login --url {url}`"),
            )
        })?;
    if let Some(key) = profile.api_key {
        return Ok(Client::new(&url, Credential::ApiKey(key))?);
    }
    let (Some(path), Some(_)) = (path, profile.session()) else {
        return Err(Exit::new(
            EXIT_DENIED,
            format!(
                "{}: profile {:?} holds no credential; run `switchyard login`",
                url, flags.profile
            ),
        ));
    };
    let session = fresh_session(&path, &flags.profile, &url).await?;
    let name = flags.profile.clone();
    let hook_path = path.clone();
    let client = Client::builder(&url)
        .credential(Credential::Session(session))
        .on_refresh(move |session| {
            // The old refresh token is spent: keep the new one, or the next command signs in again.
            let result = update_profile(&hook_path, &name, |p| {
                if let Some(p) = p {
                    p.set_session(session);
                }
            });
            if let Err(e) = result {
                output::note(&format!(
                    "warning: the refreshed session was not saved: {e}"
                ));
            }
        })
        .build()?;
    Ok(client)
}

/// The profile's session, refreshed first (and written back) if its access token is
/// about to expire; under the lock, so that another command refreshing it at the same
/// moment does not present the spent refresh token.
async fn fresh_session(path: &Path, name: &str, url: &str) -> Result<Session, Exit> {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    let reread = || -> Result<Session, Exit> {
        load(path)?
            .profiles
            .get(name)
            .and_then(Profile::session)
            .ok_or_else(|| {
                Exit::new(
                    EXIT_DENIED,
                    format!("profile {name:?} holds no session; run `switchyard login`"),
                )
            })
    };
    let session = reread()?;
    if session.expires_at > now() + REFRESH_BEFORE_S {
        return Ok(session);
    }
    let _lock = lock(path)?;
    let session = reread()?;
    if session.expires_at > now() + REFRESH_BEFORE_S {
        return Ok(session);
    }
    let fresh = Client::refresh(url, &session.refresh_token)
        .await
        .map_err(|e| match e {
            switchyard_sdk::ClientError::Unauthorized(api) => Exit::new(
                EXIT_DENIED,
                format!(
                    "the session of profile {name:?} has ended ({}): run `switchyard login` again",
                    api.message
                ),
            ),
            other => Exit::from(other),
        })?;
    let mut file = load(path)?;
    if let Some(p) = file.profiles.get_mut(name) {
        p.set_session(&fresh);
    }
    save(path, &file)?;
    Ok(fresh)
}

fn read_line(what: &str) -> Result<String, Exit> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Exit::usage(format!("cannot read the {what} from standard input: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn prompt(label: &str) -> Result<String, Exit> {
    eprint!("{label}: ");
    let _ = std::io::stderr().flush();
    read_line(&label.to_lowercase())
}

/// `switchyard login`: checks the credential with the server, then saves the profile.
pub async fn login(args: LoginArgs) -> Result<(), Exit> {
    let path = config_path()?;
    let name = args.flags.profile.clone();
    let existing = load(&path)?.profiles.remove(&name);
    let url = args
        .url
        .or_else(|| env(URL_ENV))
        .or_else(|| existing.as_ref().map(|p| p.url.clone()))
        .ok_or_else(|| Exit::usage("say which server: switchyard login --url URL"))?;
    let url = url.trim().trim_end_matches('/').to_owned();
    // Checked before asking for anything.
    Client::builder(&url).build()?;
    let mut profile = Profile {
        url: url.clone(),
        other: existing.map(|p| p.other).unwrap_or_default(),
        ..Default::default()
    };
    let kind = match args.api_key {
        Some(key) => {
            let key = if key == "-" {
                read_line("API key")?.trim().to_owned()
            } else {
                key
            };
            if key.is_empty() {
                return Err(Exit::usage("the API key is empty"));
            }
            let me = Client::new(&url, Credential::ApiKey(key.clone()))?
                .me()
                .await?;
            profile.email = Some(me.user.email);
            profile.api_key = Some(key);
            "api_key"
        }
        None => {
            let email = match args.email {
                Some(email) => email,
                None => prompt("Email")?,
            };
            let email = email.trim().to_owned();
            if email.is_empty() {
                return Err(Exit::usage("the email is empty"));
            }
            let password = if std::io::stdin().is_terminal() {
                rpassword::prompt_password("Password: ")
                    .map_err(|e| Exit::usage(format!("cannot read the password: {e}")))?
            } else {
                read_line("password")?
            };
            if password.is_empty() {
                return Err(Exit::usage("the password is empty"));
            }
            let session = Client::login(&url, &email, &password).await?;
            profile.email = Some(email);
            profile.set_session(&session);
            "session"
        }
    };
    let email = profile.email.clone().unwrap_or_default();
    update_profile(&path, &name, |p| *p = Some(profile))?;
    match args.flags.output {
        OutputFormat::Json => output::json(&serde_json::json!({
            "profile": name,
            "url": url,
            "email": email,
            "credential": kind,
            "config": path,
        })),
        OutputFormat::Table => output::line(&format!(
            "Logged in to {url} as {email} ({}); profile {name:?} saved in {}",
            if kind == "api_key" {
                "API key"
            } else {
                "password"
            },
            path.display()
        )),
    }
    Ok(())
}

#[derive(Args)]
pub struct LogoutArgs {
    #[command(flatten)]
    flags: ClientFlags,
}

/// `switchyard logout`: ends the profile's session on its server, then forgets the
/// profile's credential (its URL stays, for the next `switchyard login`). An API key is
/// only forgotten: the key itself stays valid until it is revoked on the server.
pub async fn logout(args: LogoutArgs) -> Result<(), Exit> {
    let path = config_path()?;
    let name = args.flags.profile;
    let Some(profile) = load(&path)?.profiles.remove(&name) else {
        output::note(&format!("profile {name:?} is not signed in"));
        return Ok(());
    };
    let url = profile.url.clone();
    let (credential, session_ended) = if let Some(session) = profile.session() {
        // A refresh on the way (the access token expired) spends the refresh token: the
        // session is ended right after, so the new tokens are not kept.
        let ended = match Client::builder(&url)
            .credential(Credential::Session(session))
            .build()?
            .logout()
            .await
        {
            Ok(()) => true,
            // The session had ended already (logged out elsewhere, revoked, expired).
            Err(ClientError::Unauthorized(_)) => true,
            Err(e) => {
                output::note(&format!(
                    "warning: the session could not be ended on {url} ({e}); it ends when its refresh token expires"
                ));
                false
            }
        };
        (Some("session"), ended)
    } else if profile.api_key.is_some() {
        output::note(
            "the API key is forgotten here but stays valid: revoke it on the server (web UI, or DELETE /api/v1/api-keys/{id})",
        );
        (Some("api_key"), false)
    } else {
        (None, false)
    };
    update_profile(&path, &name, |p| {
        if let Some(p) = p {
            p.email = None;
            p.api_key = None;
            p.access_token = None;
            p.refresh_token = None;
            p.expires_at = None;
        }
    })?;
    match args.flags.output {
        OutputFormat::Json => output::json(&serde_json::json!({
            "profile": name,
            "url": url,
            "credential": credential,
            "session_ended": session_ended,
        })),
        OutputFormat::Table => match credential {
            Some(_) => output::line(&format!("Logged out of {url} (profile {name:?})")),
            None => output::note(&format!("profile {name:?} is not signed in")),
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_file_is_written_with_mode_0600_and_keeps_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchyard").join("config.toml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            "future = 1\n[profiles.a]\nurl = \"http://h:1\"\napi_key = \"k\"\ncolor = \"red\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        update_profile(&path, "b", |p| {
            *p = Some(Profile {
                url: "http://h:2".into(),
                api_key: Some("k2".into()),
                ..Default::default()
            })
        })
        .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let file = load(&path).unwrap();
        assert_eq!(file.other["future"].as_integer(), Some(1));
        assert_eq!(file.profiles["a"].other["color"].as_str(), Some("red"));
        assert_eq!(file.profiles["b"].api_key.as_deref(), Some("k2"));
    }

    #[test]
    fn a_broken_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "profiles = 3").unwrap();
        let e = load(&path).err().unwrap();
        assert_eq!(e.code, 2);
        assert!(e.message.unwrap().contains("config.toml"));
    }

    #[test]
    fn credentials_go_only_to_their_server() {
        assert!(same_server("http://h:1/", "http://h:1"));
        assert!(!same_server("http://h:1", "http://h:2"));
    }
}
