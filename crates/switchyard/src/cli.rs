//! The `switchyard` command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use switchyard_core::audit::{Actor, Audit, AuditAction, AuditEntry, AuditOutcome, TargetKind};
use switchyard_core::auth::{Role as UserRole, Scope};
use switchyard_engine::{Duties, Engine, EngineConfig};

use crate::app::{self, Role};
use crate::config::{self, Config, LogFormat};
use crate::telemetry::{self, LogTo};
use crate::{bench, remote, ui};

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Run agents on tasks: queue, dispatch, retry, stream."
)]
struct Cli {
    /// Configuration file (TOML). Default: ./switchyard.toml if it exists.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct ServerFlags {
    /// Address to listen on (config: server.listen).
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Data directory for the embedded database and files (config: data_dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Everything in one process on embedded storage, with demo agents and an admin user.
    Dev(ServerFlags),
    /// Run a server: the API, a worker, or both.
    Serve {
        #[command(flatten)]
        flags: ServerFlags,
        #[arg(long, value_enum, default_value = "all")]
        role: Role,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Apikey(ApiKeyCommand),
    /// Manage authentication secrets.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Write a backup archive of the whole deployment while its servers keep running
    /// (`backup verify FILE` checks one).
    Backup(BackupArgs),
    /// Restore a backup archive into the configured database and file storage (stop the
    /// servers first).
    Restore {
        /// The archive to restore.
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
        /// Replace what the database already holds.
        #[arg(long)]
        force: bool,
        /// Data directory for the embedded database and files (config: data_dir).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Load generator: submit tasks to `echo` and measure throughput and latency.
    Bench(bench::BenchArgs),
    /// Print the OpenAPI document (JSON) of the HTTP API.
    Openapi,
    /// Configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Sign in to a server and keep the profile the client commands use.
    Login(remote::LoginArgs),
    /// End the profile's session on its server and forget its credential.
    Logout(remote::LogoutArgs),
    /// Submit, follow, list, cancel and retry tasks on a server.
    Task(remote::TaskArgs),
    /// List, show, delete, apply (agents as code) and export a server's agents.
    Agent(remote::AgentArgs),
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct BackupArgs {
    #[command(subcommand)]
    command: Option<BackupCommand>,
    /// Where to write the archive (it appears there once complete; mode 0600).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Also keep the token signing keys and sessions: without them, a restored deployment
    /// signs new tokens and everyone signs in again.
    #[arg(long)]
    include_secrets: bool,
    /// Read the database as fast as it answers (by default the backup pauses between
    /// reads, leaving the database half its time for the servers).
    #[arg(long)]
    full_speed: bool,
    /// Data directory for the embedded database and files (config: data_dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Check an archive's manifest and checksums and print what it holds.
    Verify {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Write a commented TOML configuration with every key and its default.
    Init {
        /// Where to write it (default: standard output).
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user. The password is read from standard input.
    Add {
        #[arg(long)]
        email: String,
        /// admin, operator or viewer.
        #[arg(long, default_value = "operator")]
        role: String,
    },
    /// List users.
    List,
    /// Disable a user: their sessions end and their API keys stop working.
    Disable { email: String },
    /// Enable a disabled user.
    Enable { email: String },
    /// Change a user's role (their sessions end).
    SetRole { email: String, role: String },
    /// Set a new password, read from standard input (their sessions end).
    ResetPassword { email: String },
}

#[derive(Subcommand)]
enum AuthCommand {
    /// Add a new access-token signing key; tokens signed with the old one keep working
    /// until they expire.
    RotateKey,
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Create an API key for a user and print its secret (once).
    Create {
        /// The owner of the key.
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// Comma-separated: submit, read, worker, admin.
        #[arg(long, value_delimiter = ',', default_value = "submit,read")]
        scopes: Vec<String>,
    },
}

fn apply(flags: &ServerFlags, config: &mut Config) {
    if let Some(listen) = flags.listen {
        config.server.listen = listen;
    }
    if let Some(dir) = &flags.data_dir {
        config.data_dir = dir.clone();
    }
}

pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Backup(BackupArgs { command: None, .. }) = &cli.command {
        // Before the runtime starts, so all its threads inherit it: servers on the same
        // machine keep their share of the CPU while the backup runs.
        switchyard_backup::lower_priority();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Client commands end with their own exit codes (docs/cli.md).
    remote::exit_on_failure(runtime.block_on(run(cli)))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Dev(flags) => {
            let mut defaults = Config::default();
            defaults.telemetry.log_format = LogFormat::Pretty;
            let mut config = Config::load_with(cli.config.as_deref(), defaults)?;
            apply(&flags, &mut config);
            telemetry::init(&config.telemetry, LogTo::Stdout)?;
            let result = serve(config, Role::All, true).await;
            telemetry::flush().await;
            result
        }
        Command::Serve { flags, role } => {
            let mut config = Config::load(cli.config.as_deref())?;
            apply(&flags, &mut config);
            telemetry::init(&config.telemetry, LogTo::Stdout)?;
            let result = serve(config, role, false).await;
            telemetry::flush().await;
            result
        }
        Command::Migrate => {
            let config = Config::load(cli.config.as_deref())?;
            telemetry::init(&config.telemetry, LogTo::Stderr)?;
            app::open_backends(&config).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::User(cmd) => user(cli.config, cmd).await,
        Command::Apikey(cmd) => apikey(cli.config, cmd).await,
        Command::Auth(AuthCommand::RotateKey) => {
            let (engine, _backends) = admin_engine(cli.config).await?;
            let result = engine.auth().rotate_signing_key().await;
            let target = result.as_deref().unwrap_or("-");
            audit_cli(
                engine.audit(),
                AuditAction::AuthRotateKey,
                TargetKind::SigningKey,
                target,
                None,
                &result,
            )
            .await;
            let kid = result?;
            println!("new signing key {kid} is in use; servers pick it up within a minute");
            Ok(())
        }
        Command::Backup(args) => backup(cli.config, args).await,
        Command::Restore {
            input,
            force,
            data_dir,
        } => restore(cli.config, input, force, data_dir).await,
        Command::Bench(args) => bench::run(cli.config, args).await,
        Command::Config(ConfigCommand::Init { output, force }) => {
            let text = config::commented_toml()?;
            match output {
                Some(path) => {
                    anyhow::ensure!(
                        force || !path.exists(),
                        "{} exists; pass --force to overwrite it",
                        path.display()
                    );
                    std::fs::write(&path, text)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!("wrote {}", path.display());
                }
                None => {
                    use std::io::Write;
                    let _ = std::io::stdout().write_all(text.as_bytes());
                }
            }
            Ok(())
        }
        Command::Login(args) => remote::login(args).await,
        Command::Logout(args) => remote::logout(args).await,
        Command::Task(args) => remote::task(args).await,
        Command::Agent(args) => remote::agent(args).await,
        Command::Openapi => {
            use std::io::Write;
            let json = switchyard_api::openapi().to_pretty_json()?;
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = writeln!(std::io::stdout(), "{json}");
            Ok(())
        }
    }
}

async fn serve(mut config: Config, role: Role, dev: bool) -> anyhow::Result<()> {
    // Programs run by `command` agents: welcome on a developer's machine, opt-in on a server.
    config.agents.allow_command.get_or_insert(dev);
    app::purge_freed_memory_at_once(true);
    let running = app::start(&config, role).await?;
    let engine = running.engine.clone();
    let admin_password = config::admin_password();
    if (dev || admin_password.is_some())
        && let Some(generated) = engine
            .auth()
            .ensure_admin("admin@localhost", admin_password)
            .await?
    {
        println!();
        println!("  Admin user created: admin@localhost");
        println!("  Password (shown once): {generated}");
        println!(
            "  Set {} to choose it yourself.",
            config::ADMIN_PASSWORD_ENV
        );
        println!();
    }
    if dev {
        add_demo_agents(&engine).await?;
    }
    app::return_free_memory();
    let _memory_return = app::spawn_memory_return();
    if let Some(addr) = running.addr {
        if dev {
            println!(
                "  Switchyard is running at http://{addr}  (API docs: http://{addr}/api/docs)"
            );
            if !ui::is_built() {
                println!("  The web UI is not built into this binary; see README.md.");
            }
        }
        tracing::info!(%addr, role = ?role, database = engine.database_backend(), "switchyard is up");
    } else {
        tracing::info!(role = ?role, database = engine.database_backend(), "switchyard worker is up");
    }
    app::shutdown_signal().await;
    tracing::info!("shutting down: finishing requests and running tasks");
    running.stop().await?;
    tracing::info!("stopped");
    Ok(())
}

/// A few agents to play with in `dev`, created on the first start only.
async fn add_demo_agents(engine: &Engine) -> anyhow::Result<()> {
    let demos = serde_json::json!([
        {
            "name": "flaky",
            "kind": "fail",
            "description": "Fails twice with a retryable error, then succeeds: watch the retries.",
            "input_schema": {"type": "object", "properties": {
                "times": {"type": "integer", "minimum": 0, "default": 2},
                "class": {"enum": ["retryable", "permanent", "rate_limited"], "default": "retryable"}}},
            "retry": {"max_attempts": 5, "base_ms": 500, "cap_ms": 5000}
        },
        {
            "name": "always-fails",
            "kind": "fail",
            "description": "Fails permanently and falls back to `echo`.",
            "input_schema": {"type": "object", "properties": {
                "times": {"type": "integer", "default": 1000000},
                "class": {"default": "permanent"}}},
            "fallback": "echo"
        },
        {
            "name": "slow",
            "kind": "sleep",
            "description": "Sleeps `ms` (default 5 s): try cancelling it.",
            "input_schema": {"type": "object", "properties": {
                "ms": {"type": "integer", "minimum": 0, "maximum": 600000, "default": 5000}}},
            "timeout_ms": 700000
        }
    ]);
    for demo in demos.as_array().into_iter().flatten() {
        let spec: switchyard_core::agent::AgentSpec = serde_json::from_value(demo.clone())?;
        if engine.agents().get(&spec.name).await?.is_none() {
            engine.agents().install(spec).await?;
        }
    }
    Ok(())
}

/// An engine for one-off administrative commands (no background duties).
async fn admin_engine(
    config_file: Option<PathBuf>,
) -> anyhow::Result<(std::sync::Arc<Engine>, app::OpenBackends)> {
    let mut config = Config::load(config_file.as_deref())?;
    config.telemetry.log_level = "warn".into();
    telemetry::init(&config.telemetry, LogTo::Stderr)?;
    let opened = app::open_backends(&config).await?;
    let engine = Engine::start(
        opened.backends.clone(),
        EngineConfig {
            queue: config.queue.clone(),
            auth: config.auth.clone(),
            monitoring: config.monitoring.clone(),
            files: config.files.clone(),
            backup: config.backup.clone(),
            agents: config.agents.clone(),
            audit: config.audit.clone(),
        },
        Duties {
            dispatch: false,
            maintenance: false,
        },
    )
    .await?;
    Ok((engine, opened))
}

fn read_password() -> anyhow::Result<String> {
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("reading the password from standard input")?;
    Ok(password.trim_end_matches(['\r', '\n']).to_owned())
}

async fn user(config_file: Option<PathBuf>, cmd: UserCommand) -> anyhow::Result<()> {
    use switchyard_auth::UserUpdate;
    let (engine, _backends) = admin_engine(config_file).await?;
    let auth = &engine.auth();
    let role = |r: &str| r.parse::<UserRole>().map_err(anyhow::Error::msg);
    let (email, update) = match cmd {
        UserCommand::Add { email, role: r } => {
            let role = role(&r)?;
            let result = auth
                .create_user_unchecked(&email, &read_password()?, role)
                .await;
            let target = result.as_ref().map_or(email.clone(), |u| u.id.to_string());
            let detail = serde_json::json!({"email": email, "role": role});
            audit_cli(
                engine.audit(),
                AuditAction::UserCreate,
                TargetKind::User,
                target,
                Some(detail),
                &result,
            )
            .await;
            let user = result?;
            println!("created {} ({}) with id {}", user.email, user.role, user.id);
            return Ok(());
        }
        UserCommand::List => {
            for u in engine.auth().list_users_unchecked().await? {
                let status = if u.disabled { "disabled" } else { "active" };
                println!("{}\t{}\t{}\t{}", u.id, u.email, u.role, status);
            }
            return Ok(());
        }
        UserCommand::Disable { email } => (
            email,
            UserUpdate {
                disabled: Some(true),
                ..Default::default()
            },
        ),
        UserCommand::Enable { email } => (
            email,
            UserUpdate {
                disabled: Some(false),
                ..Default::default()
            },
        ),
        UserCommand::SetRole { email, role: r } => (
            email,
            UserUpdate {
                role: Some(role(&r)?),
                ..Default::default()
            },
        ),
        UserCommand::ResetPassword { email } => (
            email,
            UserUpdate {
                password: Some(read_password()?),
                ..Default::default()
            },
        ),
    };
    let user = auth.user_by_email(&email).await?;
    let detail = serde_json::json!({
        "role": update.role,
        "disabled": update.disabled,
        "password_reset": update.password.is_some(),
    });
    let result = auth.update_user_unchecked(user.id, update).await;
    audit_cli(
        engine.audit(),
        AuditAction::UserUpdate,
        TargetKind::User,
        user.id,
        Some(detail),
        &result,
    )
    .await;
    let user = result?;
    let status = if user.disabled { "disabled" } else { "active" };
    println!(
        "{} is now {} ({status}); their sessions have ended",
        user.email, user.role
    );
    Ok(())
}

async fn apikey(config_file: Option<PathBuf>, cmd: ApiKeyCommand) -> anyhow::Result<()> {
    let (engine, _backends) = admin_engine(config_file).await?;
    match cmd {
        ApiKeyCommand::Create {
            email,
            name,
            scopes,
        } => {
            let scopes = scopes
                .iter()
                .map(|s| s.trim().parse::<Scope>().map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let user = engine.auth().user_by_email(&email).await?;
            let detail = serde_json::json!({"name": name, "scopes": scopes, "user": user.email});
            let result = engine
                .auth()
                .issue_api_key(user.id, user.role, &name, scopes, None)
                .await;
            let target = result
                .as_ref()
                .map_or(name.clone(), |(k, _)| k.id.to_string());
            audit_cli(
                engine.audit(),
                AuditAction::ApiKeyCreate,
                TargetKind::ApiKey,
                target,
                Some(detail),
                &result,
            )
            .await;
            let (key, secret) = result?;
            eprintln!(
                "created API key {} ({}) for {}",
                key.id, key.prefix, user.email
            );
            println!("{secret}");
        }
    }
    Ok(())
}

/// Records an operator's command in the audit log, as actor `cli`, succeeded or failed as
/// `result` says (a failure to record is logged, never fatal: see `switchyard_core::audit`).
async fn audit_cli<T, E: std::fmt::Display>(
    audit: &Audit,
    action: AuditAction,
    kind: TargetKind,
    id: impl std::fmt::Display,
    detail: Option<serde_json::Value>,
    result: &Result<T, E>,
) {
    let mut entry = AuditEntry::new(Actor::cli(), action).target(kind, id);
    entry.detail = detail;
    if let Err(e) = result {
        entry = entry.outcome(AuditOutcome::Failure, Some(&e.to_string()));
    }
    audit.record(entry).await;
}

/// The configuration of a command that works on a deployment's data, quiet on stderr.
fn quiet_config(
    config_file: Option<&std::path::Path>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<Config> {
    let mut config = Config::load(config_file)?;
    if let Some(dir) = data_dir {
        config.data_dir = dir;
    }
    config.telemetry.log_level = "warn".into();
    telemetry::init(&config.telemetry, LogTo::Stderr)?;
    Ok(config)
}

fn print_manifest(m: &switchyard_backup::Manifest) {
    println!(
        "format {} v{}, written by Switchyard {} from {} at {} (schema {}, secrets: {})",
        m.format,
        m.version,
        m.switchyard,
        m.backend,
        m.created_at,
        m.schema_version,
        if m.secrets { "included" } else { "left out" }
    );
    for (name, sum) in &m.tables {
        println!("  {name:<16} {:>10} rows", sum.rows);
    }
    println!(
        "  {:<16} {:>10} contents, {} bytes",
        "files", m.files.blobs, m.files.bytes
    );
}

async fn backup(config_file: Option<PathBuf>, args: BackupArgs) -> anyhow::Result<()> {
    if let Some(BackupCommand::Verify { file }) = args.command {
        let manifest =
            tokio::task::spawn_blocking(move || switchyard_backup::verify(&file)).await??;
        println!("the archive is complete and its checksums match");
        print_manifest(&manifest);
        return Ok(());
    }
    let Some(output) = args.output else {
        anyhow::bail!("say where to write the archive: switchyard backup --output FILE");
    };
    let config = quiet_config(config_file.as_deref(), args.data_dir)?;
    let (store, objects) = app::open_for_backup(&config).await?;
    let started = std::time::Instant::now();
    let options = switchyard_backup::BackupOptions {
        include_secrets: args.include_secrets,
        full_speed: args.full_speed,
    };
    let result = switchyard_backup::backup(&*store, &*objects, &output, &options).await;
    let audit = Audit::new(store.clone(), Default::default());
    let detail = serde_json::json!({"file": output.display().to_string()});
    audit_cli(
        &audit,
        AuditAction::BackupCreate,
        TargetKind::Backup,
        output.display(),
        Some(detail),
        &result,
    )
    .await;
    let manifest = result?;
    let size = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "wrote {} ({size} bytes) in {:.1} s",
        output.display(),
        started.elapsed().as_secs_f64()
    );
    print_manifest(&manifest);
    Ok(())
}

async fn restore(
    config_file: Option<PathBuf>,
    input: PathBuf,
    force: bool,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let config = quiet_config(config_file.as_deref(), data_dir)?;
    let opened = app::open_backends(&config).await?;
    let started = std::time::Instant::now();
    let result = switchyard_backup::restore(
        &*opened.backends.store,
        &*opened.backends.objects,
        &input,
        force,
    )
    .await;
    // Into the restored database, after the archive's own log (or into the database left as
    // it was, when the restore failed).
    let audit = Audit::new(opened.backends.store.clone(), Default::default());
    let detail = result
        .as_ref()
        .ok()
        .map(|r| serde_json::json!({"rows": r.rows, "archive_created_at": r.manifest.created_at}));
    audit_cli(
        &audit,
        AuditAction::BackupRestore,
        TargetKind::Backup,
        input.display(),
        detail,
        &result,
    )
    .await;
    let restored = result?;
    eprintln!(
        "restored {} rows from {} in {:.1} s ({:.1} s to import, {:.1} s to index {} tasks for search)",
        restored.rows,
        input.display(),
        started.elapsed().as_secs_f64(),
        restored.import_time.as_secs_f64(),
        restored.index_time.as_secs_f64(),
        restored.search_documents,
    );
    if !restored.manifest.secrets {
        eprintln!("the archive holds no signing keys: everyone signs in again");
    }
    print_manifest(&restored.manifest);
    Ok(())
}
