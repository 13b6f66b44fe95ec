//! The client commands (`login`, `logout`, `task …`, `agent …`): drive a Switchyard server by URL
//! through the Rust SDK's [`Client`](switchyard_sdk::Client). See docs/cli.md.
//!
//! Exit codes (a contract scripts rely on): 0 ok, 1 the task failed (or another error),
//! 2 bad usage, 3 not found or not allowed, 4 the server is unreachable.

mod agent;
mod output;
mod profile;
mod task;

use clap::Args;
use switchyard_sdk::ClientError;

pub use agent::AgentCommand;
pub use output::OutputFormat;
pub use profile::{LoginArgs, LogoutArgs};
pub use task::TaskCommand;

/// Flags of every client command (global within `login`, `task` and `agent`).
#[derive(Args, Clone, Debug)]
pub struct ClientFlags {
    /// The profile of the client configuration file to use.
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        env = "SWITCHYARD_PROFILE",
        default_value = "default"
    )]
    pub profile: String,
    /// How to print results: aligned columns for people, or stable JSON for programs.
    #[arg(long, global = true, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

#[derive(Args)]
pub struct TaskArgs {
    #[command(flatten)]
    flags: ClientFlags,
    #[command(subcommand)]
    command: TaskCommand,
}

#[derive(Args)]
pub struct AgentArgs {
    #[command(flatten)]
    flags: ClientFlags,
    #[command(subcommand)]
    command: AgentCommand,
}

/// How a client command ends when it does not succeed: the process exits with `code`
/// after printing `message` (if any) to stderr.
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: Option<String>,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.message {
            Some(m) => f.write_str(m),
            None => write!(f, "exit code {}", self.code),
        }
    }
}

impl std::error::Error for Exit {}

/// The task failed (or any error without a more specific code).
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_DENIED: u8 = 3;
pub const EXIT_UNREACHABLE: u8 = 4;

impl Exit {
    pub fn new(code: u8, message: impl Into<String>) -> Exit {
        Exit {
            code,
            message: Some(message.into()),
        }
    }

    pub fn usage(message: impl Into<String>) -> Exit {
        Exit::new(EXIT_USAGE, message)
    }
}

impl From<ClientError> for Exit {
    fn from(e: ClientError) -> Exit {
        let code = match &e {
            ClientError::Unauthorized(_) | ClientError::Forbidden(_) | ClientError::NotFound(_) => {
                EXIT_DENIED
            }
            ClientError::BadRequest(_) | ClientError::InvalidUrl(_) => EXIT_USAGE,
            ClientError::Unreachable { .. } => EXIT_UNREACHABLE,
            ClientError::Server(_) | ClientError::Protocol(_) => EXIT_FAILED,
        };
        let hint = match &e {
            ClientError::Unauthorized(api) if api.code == "token_expired" => {
                " (the session ended: run `switchyard login` again)"
            }
            ClientError::Unauthorized(_) => {
                " (run `switchyard login`, or check SWITCHYARD_API_KEY)"
            }
            _ => "",
        };
        Exit::new(code, format!("{e}{hint}"))
    }
}

pub async fn login(args: LoginArgs) -> anyhow::Result<()> {
    Ok(profile::login(args).await?)
}

pub async fn logout(args: LogoutArgs) -> anyhow::Result<()> {
    Ok(profile::logout(args).await?)
}

pub async fn task(args: TaskArgs) -> anyhow::Result<()> {
    Ok(task::run(&args.flags, args.command).await?)
}

pub async fn agent(args: AgentArgs) -> anyhow::Result<()> {
    Ok(agent::run(&args.flags, args.command).await?)
}

/// Ends the process with the exit code of a client command's [`Exit`]; other results
/// are handed back (`main` reports them with exit code 1).
pub fn exit_on_failure(result: anyhow::Result<()>) -> anyhow::Result<()> {
    use std::io::Write;
    let Err(e) = result else {
        return Ok(());
    };
    let Some(exit) = e.downcast_ref::<Exit>() else {
        return Err(e);
    };
    let _ = std::io::stdout().flush();
    if let Some(message) = &exit.message {
        eprintln!("error: {message}");
    }
    std::process::exit(i32::from(exit.code));
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::ApiError;

    fn api(status: u16, code: &str) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: "m".into(),
            request_id: None,
            details: None,
        }
    }

    #[test]
    fn client_errors_map_to_the_documented_exit_codes() {
        let cases = [
            (
                ClientError::NotFound(Box::new(api(404, "task_not_found"))),
                3,
            ),
            (ClientError::Forbidden(Box::new(api(403, "forbidden"))), 3),
            (
                ClientError::Unauthorized(Box::new(api(401, "unauthorized"))),
                3,
            ),
            (
                ClientError::BadRequest(Box::new(api(422, "validation_failed"))),
                2,
            ),
            (ClientError::InvalidUrl("x".into()), 2),
            (
                ClientError::Unreachable {
                    url: "http://127.0.0.1:1".into(),
                    reason: "refused".into(),
                },
                4,
            ),
            (ClientError::Server(Box::new(api(409, "invalid_state"))), 1),
            (ClientError::Protocol("x".into()), 1),
        ];
        for (error, code) in cases {
            let shown = error.to_string();
            let exit = Exit::from(error);
            assert_eq!(exit.code, code, "{shown}");
            assert!(exit.message.unwrap().starts_with(&shown));
        }
    }
}
