//! The `command` kind: a program on the server's machine as an agent (docs/agents.md).
//!
//! The program (`config.program`, run directly: no shell) gets the arguments
//! `config.args` rendered with the task input, an environment of only `config.pass_env`
//! (copied from the server's), `config.env`, `SWITCHYARD_TASK_ID` and
//! `SWITCHYARD_ATTEMPT`, and the input JSON on its stdin. Its stdout is the output: the
//! whole of it if it is one JSON document, else its last line that is JSON, else
//! `{"stdout": "<text>"}`. Each stderr line is a task log line, except the directives
//! `::progress <fraction> [message]`, `::partial <json>` and `::debug|info|warn|error
//! <message>`. Exit status 0 succeeds, 75 is retryable, others permanent (unless
//! `config.exit_codes` says otherwise).
//!
//! The program leads a process group of its own, and no member of it outlives the
//! attempt: when the attempt ends (the program exited, or the attempt was timed out,
//! cancelled or abandoned at shutdown, which drops this kind's future), the whole group
//! gets SIGTERM at once and SIGKILL after `queue.cancel_grace_ms`. A process that leaves
//! the group (`setsid`) is beyond this reach.

use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard_core::agent::{COMMAND_ATTEMPT_ENV, COMMAND_TASK_ID_ENV, CommandAgentConfig};
use switchyard_core::event::{EventBody, LogLevel};
use switchyard_core::task::{ErrorClass, TaskError};
use switchyard_core::template;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStderr, ChildStdout};

use super::{EventSink, HostEnvironment, KindResult, TaskContext};

/// A stderr line longer than this is cut (the rest of the line is skipped).
pub const MAX_LINE_BYTES: usize = 16 << 10;
/// Log lines one attempt may write; later ones are dropped (directives still count).
pub const MAX_LOG_LINES: usize = 10_000;
/// The stderr lines quoted in the message of a failed run.
const TAIL_LINES: usize = 20;
const TAIL_CHARS: usize = 2_000;
/// After the program exited and its group was told to end, how much longer than the
/// grace period its pipes may stay open (held by a process that left the group).
const DRAIN_SLACK: Duration = Duration::from_secs(1);
/// How often a group that was told to end is checked for members left.
const GROUP_POLL: Duration = Duration::from_millis(25);

pub struct CommandKind {
    /// `agents.allow_command` of this server.
    allowed: bool,
    /// Between SIGTERM and SIGKILL (`queue.cancel_grace_ms`).
    grace: Duration,
    environment: HostEnvironment,
}

impl CommandKind {
    pub fn new(allowed: bool, grace: Duration, environment: HostEnvironment) -> Self {
        CommandKind {
            allowed,
            grace,
            environment,
        }
    }

    pub async fn run(&self, ctx: TaskContext<'_>) -> KindResult {
        if !self.allowed {
            return Err(TaskError::permanent(
                "kind_disabled",
                "command agents are turned off on this server (agents.allow_command)",
            ));
        }
        let config = ctx
            .spec
            .command_config()
            .and_then(|c| c.validate().map(|()| c))
            .map_err(|e| TaskError::permanent("bad_config", e.message))?;
        let args = render_args(&config, &ctx)?;
        let mut command = tokio::process::Command::new(&config.program);
        command
            .args(&args)
            .env_clear()
            .envs(
                config
                    .pass_env
                    .iter()
                    .filter_map(|name| Some((name, self.environment.get(name)?))),
            )
            .envs(&config.env)
            .env(COMMAND_TASK_ID_ENV, ctx.attempt.task_id.to_string())
            .env(COMMAND_ATTEMPT_ENV, ctx.attempt.attempt.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own, so that it and everything it starts can be ended at once.
            .process_group(0);
        if let Some(cwd) = &config.cwd {
            command.current_dir(cwd);
        }
        let mut child = command.spawn().map_err(|e| spawn_error(&config, e))?;
        // From here on, however this future ends, the group ends with it.
        let mut group = child
            .id()
            .and_then(|pid| ProcessGroup::new(pid, self.grace));

        let mut input = serde_json::to_vec(&ctx.attempt.input).unwrap_or_default();
        input.push(b'\n');
        let stdin = child.stdin.take();
        let feed = async move {
            // A program that does not read its input (or exits first) is fine.
            if let Some(mut stdin) = stdin {
                let _ = stdin.write_all(&input).await;
                let _ = stdin.shutdown().await;
            }
            Ok::<(), TaskError>(())
        };
        let (out_pipe, err_pipe) = (child.stdout.take(), child.stderr.take());
        let mut stdout = Vec::new();
        let mut stderr = Stderr::default();
        let max_output = config.max_output_bytes();
        let mut io = Box::pin(async {
            tokio::try_join!(
                feed,
                read_stdout(out_pipe, &mut stdout, max_output),
                read_stderr(err_pipe, ctx.events, &mut stderr),
            )
        });
        let mut io_done = false;
        let status = tokio::select! {
            done = &mut io => {
                done?;
                io_done = true;
                child.wait().await
            }
            status = child.wait() => status,
        };
        // Whatever the program left behind in its group goes now.
        if let Some(group) = group.as_mut() {
            group.end();
        }
        if !io_done {
            // What it wrote before exiting is still in the pipes. Its leftovers close them
            // as they end (by SIGKILL after the grace period at the latest).
            if let Ok(done) = tokio::time::timeout(self.grace + DRAIN_SLACK, &mut io).await {
                done?;
            }
        }
        drop(io);
        let status = status.map_err(|e| {
            TaskError::retryable(
                "wait_failed",
                format!("could not wait for the program: {e}"),
            )
        })?;
        outcome(&config, status, &stdout, &stderr)
    }
}

/// `config.args` rendered with `input`, `task_id` and `attempt`.
fn render_args(
    config: &CommandAgentConfig,
    ctx: &TaskContext<'_>,
) -> Result<Vec<String>, TaskError> {
    let context = json!({
        "input": ctx.attempt.input,
        "task_id": ctx.attempt.task_id.to_string(),
        "attempt": ctx.attempt.attempt,
    });
    config
        .args
        .iter()
        .enumerate()
        .map(|(i, source)| {
            template::render(&format!("config.args[{i}]"), source, &context)
                .map_err(|e| TaskError::permanent("template_error", e.to_string()))
        })
        .collect()
}

fn spawn_error(config: &CommandAgentConfig, e: std::io::Error) -> TaskError {
    let place = match &config.cwd {
        Some(cwd) => format!(" in {cwd}"),
        None => String::new(),
    };
    let message = format!("could not start {}{place}: {e}", config.program);
    // Out of processes, files or memory for now; anything else will fail the same way.
    match e.raw_os_error() {
        Some(libc::EAGAIN | libc::ENOMEM | libc::EMFILE | libc::ENFILE) => {
            TaskError::retryable("spawn_failed", message)
        }
        _ => TaskError::permanent("spawn_failed", message),
    }
}

/// The attempt's result from how the program ended and what it wrote.
fn outcome(
    config: &CommandAgentConfig,
    status: ExitStatus,
    stdout: &[u8],
    stderr: &Stderr,
) -> KindResult {
    let tail = stderr.tail();
    let with_tail = |what: String| {
        if tail.is_empty() {
            what
        } else {
            format!("{what}; its stderr ended with:\n{tail}")
        }
    };
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(parse_stdout(stdout)),
        (Some(code), _) => Err(TaskError::new(
            config.exit_class(code),
            format!("exit_{code}"),
            with_tail(format!("{} exited with status {code}", config.program)),
        )),
        (None, Some(signal)) => {
            // A crash will crash again; a kill came from outside (the OOM killer, an operator).
            let class = match signal {
                libc::SIGSEGV
                | libc::SIGABRT
                | libc::SIGBUS
                | libc::SIGFPE
                | libc::SIGILL
                | libc::SIGSYS
                | libc::SIGTRAP => ErrorClass::Permanent,
                _ => ErrorClass::Retryable,
            };
            Err(TaskError::new(
                class,
                format!("signal_{signal}"),
                with_tail(format!(
                    "{} was ended by signal {signal}{}",
                    config.program,
                    signal_name(signal)
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                )),
            ))
        }
        (None, None) => Err(TaskError::retryable(
            "exit_unknown",
            format!("{} ended without an exit status", config.program),
        )),
    }
}

fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSYS => "SIGSYS",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        _ => return None,
    })
}

/// The output: stdout as one JSON document, else its last line that is JSON, else
/// `{"stdout": "<text>"}`.
pub fn parse_stdout(stdout: &[u8]) -> Value {
    let text = String::from_utf8_lossy(stdout);
    if let Ok(whole) = serde_json::from_str::<Value>(&text) {
        return whole;
    }
    text.lines()
        .rev()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .find_map(|line| serde_json::from_str::<Value>(line).ok())
        .unwrap_or_else(|| json!({ "stdout": text }))
}

async fn read_stdout(
    pipe: Option<ChildStdout>,
    out: &mut Vec<u8>,
    max: u64,
) -> Result<(), TaskError> {
    let Some(mut pipe) = pipe else {
        return Ok(());
    };
    let mut chunk = vec![0; 64 << 10];
    loop {
        let n = pipe.read(&mut chunk).await.map_err(|e| {
            TaskError::retryable(
                "io_error",
                format!("could not read the program's stdout: {e}"),
            )
        })?;
        if n == 0 {
            return Ok(());
        }
        if (out.len() + n) as u64 > max {
            return Err(TaskError::permanent(
                "output_too_large",
                format!(
                    "the program wrote more than {max} bytes to stdout (config.max_output_bytes)"
                ),
            ));
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// What a stderr line means.
#[derive(Clone, Debug, PartialEq)]
pub enum StderrLine {
    Progress {
        progress: f64,
        message: Option<String>,
    },
    Partial(Value),
    Log {
        level: LogLevel,
        message: String,
    },
}

/// Reads one stderr line (without its line break): a directive or a log line. A
/// malformed directive is logged as a warning, saying what is wrong with it.
pub fn parse_stderr_line(line: &str) -> StderrLine {
    let log = |level, message: String| StderrLine::Log { level, message };
    let Some(directive) = line.strip_prefix("::") else {
        return log(LogLevel::Info, line.to_owned());
    };
    let (name, rest) = directive.split_once(' ').unwrap_or((directive, ""));
    match name {
        "progress" => {
            let rest = rest.trim_start();
            let (number, message) = rest.split_once(' ').unwrap_or((rest, ""));
            match number.parse::<f64>() {
                Ok(progress) if (0.0..=1.0).contains(&progress) => StderrLine::Progress {
                    progress,
                    message: Some(message.trim())
                        .filter(|m| !m.is_empty())
                        .map(str::to_owned),
                },
                _ => log(
                    LogLevel::Warn,
                    format!("malformed ::progress (expected a fraction from 0 to 1): {line}"),
                ),
            }
        }
        "partial" => match serde_json::from_str::<Value>(rest) {
            Ok(data) => StderrLine::Partial(data),
            Err(e) => log(
                LogLevel::Warn,
                format!("malformed ::partial (expected JSON: {e}): {line}"),
            ),
        },
        "debug" => log(LogLevel::Debug, rest.to_owned()),
        "info" => log(LogLevel::Info, rest.to_owned()),
        "warn" | "warning" => log(LogLevel::Warn, rest.to_owned()),
        "error" => log(LogLevel::Error, rest.to_owned()),
        _ => log(LogLevel::Info, line.to_owned()),
    }
}

/// What the attempt keeps of stderr: the last lines, for the message of a failure.
#[derive(Default)]
struct Stderr {
    tail: VecDeque<String>,
    logged: usize,
}

impl Stderr {
    fn keep(&mut self, line: &str) {
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_owned());
    }

    fn tail(&self) -> String {
        let joined = Vec::from(self.tail.clone()).join("\n");
        let skip = joined.chars().count().saturating_sub(TAIL_CHARS);
        joined.chars().skip(skip).collect()
    }
}

async fn read_stderr(
    pipe: Option<ChildStderr>,
    events: &dyn EventSink,
    stderr: &mut Stderr,
) -> Result<(), TaskError> {
    let Some(pipe) = pipe else {
        return Ok(());
    };
    let mut reader = BufReader::with_capacity(64 << 10, pipe);
    let mut bytes = Vec::new();
    loop {
        let cut = next_line(&mut reader, &mut bytes, MAX_LINE_BYTES)
            .await
            .map_err(|e| {
                TaskError::retryable(
                    "io_error",
                    format!("could not read the program's stderr: {e}"),
                )
            })?;
        let Some(cut) = cut else {
            return Ok(());
        };
        let text = String::from_utf8_lossy(&bytes);
        let line = text.strip_suffix('\r').unwrap_or(&text);
        if line.trim().is_empty() {
            continue;
        }
        let body = match parse_stderr_line(line) {
            StderrLine::Progress { progress, message } => EventBody::Progress {
                progress: Some(progress),
                message,
            },
            StderrLine::Partial(data) => EventBody::Partial { data },
            StderrLine::Log { level, mut message } => {
                stderr.keep(&message);
                stderr.logged += 1;
                if stderr.logged > MAX_LOG_LINES {
                    if stderr.logged == MAX_LOG_LINES + 1 {
                        events
                            .emit(EventBody::Log {
                                level: LogLevel::Warn,
                                message: format!(
                                    "the program wrote more than {MAX_LOG_LINES} log lines; the rest are not logged"
                                ),
                            })
                            .await;
                    }
                    continue;
                }
                if cut {
                    message.push_str(" […]");
                }
                EventBody::Log { level, message }
            }
        };
        events.emit(body).await;
    }
}

/// Reads one line (without its `\n`) into `line`, keeping at most `max` bytes of it and
/// skipping the rest. `None` at the end of the stream; else whether the line was cut.
async fn next_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<bool>> {
    line.clear();
    let mut cut = false;
    let mut started = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(started.then_some(cut));
        }
        started = true;
        let (part, used, end) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        let room = max.saturating_sub(line.len());
        cut |= part.len() > room;
        line.extend_from_slice(&part[..part.len().min(room)]);
        reader.consume(used);
        if end {
            return Ok(Some(cut));
        }
    }
}

/// The process group a program leads. Ending it: SIGTERM to every member at once, then
/// SIGKILL to those left after the grace period. Dropping it ends it, so a timed-out,
/// cancelled or abandoned attempt (whose future is dropped) leaves nothing running.
struct ProcessGroup {
    pgid: libc::pid_t,
    grace: Duration,
    ended: bool,
}

impl ProcessGroup {
    fn new(pid: u32, grace: Duration) -> Option<Self> {
        let pgid = libc::pid_t::try_from(pid).ok()?;
        // Never 0 (our own group) or 1 (`kill(-1)`: every process we may signal).
        (pgid > 1).then_some(ProcessGroup {
            pgid,
            grace,
            ended: false,
        })
    }

    fn end(&mut self) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        if !signal_group(self.pgid, libc::SIGTERM) {
            return; // nobody left
        }
        let (pgid, grace) = (self.pgid, self.grace);
        // A thread, not a task: it must outlive a runtime that is shutting down.
        let finisher = std::thread::Builder::new()
            .name("command-group-end".into())
            .spawn(move || finish_off(pgid, grace));
        if finisher.is_err() {
            signal_group(pgid, libc::SIGKILL);
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.end();
    }
}

/// Waits up to `grace` for the group to empty, then kills what is left. Polling stops
/// as soon as the group is gone, so its id is never signalled after it could be reused.
fn finish_off(pgid: libc::pid_t, grace: Duration) {
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        std::thread::sleep(GROUP_POLL);
        if !signal_group(pgid, 0) {
            return;
        }
    }
    signal_group(pgid, libc::SIGKILL);
}

/// Sends `signal` (0: none, only the check) to every process of group `pgid`; false if
/// the group has no process left.
fn signal_group(pgid: libc::pid_t, signal: libc::c_int) -> bool {
    debug_assert!(pgid > 1);
    // SAFETY: kill(2) takes plain integers and touches no memory of ours. A negative pid
    // addresses exactly the processes of group `pgid`, which `ProcessGroup::new` keeps
    // above 1, so this is never kill(0) (our own group) or kill(-1) (every process).
    let rc = unsafe { libc::kill(-pgid, signal) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_directives_become_progress_partials_and_leveled_logs() {
        assert_eq!(
            parse_stderr_line("::progress 0.5"),
            StderrLine::Progress {
                progress: 0.5,
                message: None
            }
        );
        assert_eq!(
            parse_stderr_line("::progress 1 all done "),
            StderrLine::Progress {
                progress: 1.0,
                message: Some("all done".into())
            }
        );
        assert_eq!(
            parse_stderr_line("::partial {\"delta\": \"he\"}"),
            StderrLine::Partial(json!({"delta": "he"}))
        );
        assert_eq!(
            parse_stderr_line("::partial \"text\""),
            StderrLine::Partial(json!("text"))
        );
        assert_eq!(
            parse_stderr_line("::warn disk almost full"),
            StderrLine::Log {
                level: LogLevel::Warn,
                message: "disk almost full".into()
            }
        );
        assert_eq!(
            parse_stderr_line("::error boom"),
            StderrLine::Log {
                level: LogLevel::Error,
                message: "boom".into()
            }
        );
        assert_eq!(
            parse_stderr_line("::debug x"),
            StderrLine::Log {
                level: LogLevel::Debug,
                message: "x".into()
            }
        );
        for plain in [
            "hello",
            "  indented",
            "::unknown thing",
            "::",
            "a ::progress 0.5",
        ] {
            assert_eq!(
                parse_stderr_line(plain),
                StderrLine::Log {
                    level: LogLevel::Info,
                    message: plain.into()
                },
                "{plain:?}"
            );
        }
    }

    #[test]
    fn malformed_directives_are_logged_as_warnings() {
        for (line, why) in [
            ("::progress", "fraction"),
            ("::progress half", "fraction"),
            ("::progress 50", "fraction"),
            ("::progress -0.1", "fraction"),
            ("::progress NaN", "fraction"),
            ("::partial {oops", "JSON"),
            ("::partial", "JSON"),
        ] {
            match parse_stderr_line(line) {
                StderrLine::Log {
                    level: LogLevel::Warn,
                    message,
                } => {
                    assert!(message.contains(why) && message.contains(line), "{message}");
                }
                other => panic!("{line:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn stdout_is_one_document_or_its_last_json_line_or_text() {
        assert_eq!(parse_stdout(b"{\"a\": 1}\n"), json!({"a": 1}));
        // Pretty-printed: the whole document, not a line of it.
        assert_eq!(parse_stdout(b"[\n  1,\n  2\n]\n"), json!([1, 2]));
        assert_eq!(
            parse_stdout(b"working...\n{\"n\": 1}\n{\"n\": 2}\ndone\n\n"),
            json!({"n": 2})
        );
        assert_eq!(
            parse_stdout(b"hello\nworld\n"),
            json!({"stdout": "hello\nworld\n"})
        );
        assert_eq!(parse_stdout(b""), json!({"stdout": ""}));
        assert_eq!(
            parse_stdout(b"caf\xc3\xa9 \xff\n"),
            json!({"stdout": "café \u{fffd}\n"})
        );
    }

    #[tokio::test]
    async fn long_lines_are_cut_and_the_rest_skipped() {
        let data = format!("{}\nshort\r\nlast", "x".repeat(100));
        let mut reader = BufReader::with_capacity(8, data.as_bytes());
        let mut line = Vec::new();
        assert_eq!(
            next_line(&mut reader, &mut line, 10).await.unwrap(),
            Some(true)
        );
        assert_eq!(line, b"xxxxxxxxxx");
        assert_eq!(
            next_line(&mut reader, &mut line, 10).await.unwrap(),
            Some(false)
        );
        assert_eq!(line, b"short\r");
        assert_eq!(
            next_line(&mut reader, &mut line, 10).await.unwrap(),
            Some(false)
        );
        assert_eq!(line, b"last");
        assert_eq!(next_line(&mut reader, &mut line, 10).await.unwrap(), None);
    }

    #[test]
    fn the_tail_keeps_the_last_lines() {
        let mut s = Stderr::default();
        for i in 0..30 {
            s.keep(&format!("line {i}"));
        }
        let tail = s.tail();
        assert!(
            tail.starts_with("line 10\n") && tail.ends_with("line 29"),
            "{tail}"
        );
        let mut s = Stderr::default();
        s.keep(&"é".repeat(5_000));
        assert_eq!(s.tail().chars().count(), TAIL_CHARS);
    }

    #[test]
    fn exit_statuses_are_classified() {
        let config: CommandAgentConfig = serde_json::from_value(json!({
            "program": "/bin/x", "exit_codes": {"3": "retryable"}
        }))
        .unwrap();
        let status = |raw| ExitStatus::from_raw(raw);
        let stderr = Stderr::default();
        assert_eq!(
            outcome(&config, status(0), b"{\"ok\":true}", &stderr),
            Ok(json!({"ok": true}))
        );
        let e = outcome(&config, status(75 << 8), b"", &stderr).unwrap_err();
        assert_eq!(
            (e.class, e.code.as_str()),
            (ErrorClass::Retryable, "exit_75")
        );
        let e = outcome(&config, status(3 << 8), b"", &stderr).unwrap_err();
        assert_eq!(
            (e.class, e.code.as_str()),
            (ErrorClass::Retryable, "exit_3")
        );
        let mut stderr = Stderr::default();
        stderr.keep("it broke");
        let e = outcome(&config, status(1 << 8), b"", &stderr).unwrap_err();
        assert_eq!(
            (e.class, e.code.as_str()),
            (ErrorClass::Permanent, "exit_1")
        );
        assert!(
            e.message.contains("status 1") && e.message.ends_with("it broke"),
            "{}",
            e.message
        );
        let e = outcome(&config, status(libc::SIGKILL), b"", &stderr).unwrap_err();
        assert_eq!(
            (e.class, e.code.as_str()),
            (ErrorClass::Retryable, "signal_9")
        );
        assert!(e.message.contains("SIGKILL"), "{}", e.message);
        let e = outcome(&config, status(libc::SIGSEGV), b"", &stderr).unwrap_err();
        assert_eq!(e.class, ErrorClass::Permanent);
    }
}
