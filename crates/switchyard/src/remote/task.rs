//! `switchyard task …`: submit, read, list, follow, cancel and retry tasks, and read
//! their logs.

use std::path::Path;
use std::time::Duration;

use clap::Subcommand;
use serde_json::{Value, json};
use switchyard_sdk::{Client, ListTasks, LogQuery, SubmitOptions, Task, TaskEvent, TaskStatus};
use tokio::time::Instant;

use super::output::{self, OutputFormat, Table};
use super::{ClientFlags, EXIT_FAILED, Exit, profile};

/// The most log lines `task logs` reads (pages of [`LOG_PAGE`]).
const MAX_LOG_LINES: usize = 100_000;
const LOG_PAGE: u32 = 5_000;

#[derive(Subcommand)]
pub enum TaskCommand {
    /// Submit a task; with --wait or --follow, exit 1 unless it succeeds.
    Submit {
        /// The agent to run.
        agent: String,
        /// The input: a JSON object, `@FILE` to read it from a file, `@-` from stdin.
        #[arg(long, value_name = "JSON")]
        input: Option<String>,
        /// Wait up to this long for the task to finish (`30s`, `2m`, `500ms`) and print it.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        wait: Option<Duration>,
        /// Print its events live (partial output as it streams) until it finishes.
        #[arg(long)]
        follow: bool,
    },
    /// Show a task: its status, attempts, output or error.
    Get { id: String },
    /// List tasks, newest first.
    List {
        #[arg(long)]
        agent: Option<String>,
        /// One status or several, comma-separated (queued,running,…).
        #[arg(long)]
        status: Option<String>,
        /// Full-text search over agent, input, output, error and logs.
        #[arg(long, value_name = "QUERY")]
        search: Option<String>,
        /// Where the previous page ended (printed after it).
        #[arg(long)]
        cursor: Option<String>,
        /// Tasks per page (1-500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Print a task's events live until it finishes; exit 1 unless it succeeds.
    Follow { id: String },
    /// Cancel a task (and its unfinished child tasks).
    Cancel { id: String },
    /// Run a failed, dead or cancelled task again.
    Retry { id: String },
    /// Print the log lines a task's agent wrote.
    Logs {
        id: String,
        /// Only lines at this level or above: debug, info, warn, error.
        #[arg(long)]
        level: Option<String>,
    },
}

/// `30s`, `2m`, `500ms`, `1h`, `1.5s`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("{s:?} is not a duration: use e.g. 30s, 2m or 500ms");
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number.parse().map_err(|_| bad())?;
    let ms = match unit {
        "ms" => n,
        "" | "s" => n * 1e3,
        "m" => n * 60e3,
        "h" => n * 3_600e3,
        _ => return Err(bad()),
    };
    // A day at most: a wait is for a person or a CI job.
    if !(0.0..=86_400e3).contains(&ms) {
        return Err(bad());
    }
    Ok(Duration::from_millis(ms as u64))
}

/// `--input`: a JSON object given inline, `@FILE` or `@-` (stdin).
fn read_input(input: Option<&str>) -> Result<Value, Exit> {
    let Some(input) = input else {
        return Ok(json!({}));
    };
    let (text, from) = match input.strip_prefix('@') {
        Some("-") => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| Exit::usage(format!("cannot read --input from stdin: {e}")))?;
            (text, "stdin".to_owned())
        }
        Some(file) => (
            std::fs::read_to_string(Path::new(file))
                .map_err(|e| Exit::usage(format!("cannot read --input file {file}: {e}")))?,
            file.to_owned(),
        ),
        None => (input.to_owned(), "--input".to_owned()),
    };
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| Exit::usage(format!("{from} is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(Exit::usage(format!(
            "{from} must be a JSON object (the task's input), e.g. '{{\"text\": \"hello\"}}'"
        )));
    }
    Ok(value)
}

pub async fn run(flags: &ClientFlags, command: TaskCommand) -> Result<(), Exit> {
    let format = flags.output;
    // Usage errors before the connection.
    let input = match &command {
        TaskCommand::Submit { input, .. } => read_input(input.as_deref())?,
        _ => Value::Null,
    };
    let client = profile::connect(flags).await?;
    match command {
        TaskCommand::Submit {
            agent,
            wait,
            follow,
            ..
        } => submit(&client, &agent, input, wait, follow, format).await,
        TaskCommand::Get { id } => {
            show(&client.get(&id).await?, format);
            Ok(())
        }
        TaskCommand::List {
            agent,
            status,
            search,
            cursor,
            limit,
        } => {
            let query = ListTasks {
                agent,
                status,
                search,
                cursor,
                limit: Some(limit),
            };
            list(&client, &query, format).await
        }
        TaskCommand::Follow { id } => follow(&client, &id, None, format).await,
        TaskCommand::Cancel { id } => {
            let task = client.cancel(&id).await?;
            match format {
                OutputFormat::Json => output::json(&task),
                OutputFormat::Table if task.status == TaskStatus::Cancelled => {
                    output::line(&format!("cancelled task {}", task.id))
                }
                OutputFormat::Table => output::line(&format!(
                    "asked task {} to stop (it is {}; it ends once its worker stops it)",
                    task.id, task.status
                )),
            }
            Ok(())
        }
        TaskCommand::Retry { id } => {
            let task = client.retry(&id).await?;
            match format {
                OutputFormat::Json => output::json(&task),
                OutputFormat::Table => {
                    output::line(&format!("task {} is {} again", task.id, task.status))
                }
            }
            Ok(())
        }
        TaskCommand::Logs { id, level } => logs(&client, &id, level, format).await,
    }
}

async fn submit(
    client: &Client,
    agent: &str,
    input: Value,
    wait: Option<Duration>,
    follow_it: bool,
    format: OutputFormat,
) -> Result<(), Exit> {
    let deadline = wait.map(|w| Instant::now() + w);
    if follow_it {
        let task = client
            .submit(agent, input, &SubmitOptions::default())
            .await?;
        if format == OutputFormat::Table {
            output::note(&format!("submitted task {} ({agent})", task.id));
        }
        return follow(client, &task.id, deadline, format).await;
    }
    let options = SubmitOptions {
        wait,
        ..Default::default()
    };
    let mut task = client.submit(agent, input, &options).await?;
    if let Some(deadline) = deadline {
        // The server caps its wait (`queue.max_wait_ms`): wait out the rest here.
        if !task.status.is_finished() && Instant::now() < deadline {
            let mut events = client.follow(&task.id, None);
            let finished = tokio::time::timeout_at(deadline, async {
                while let Some(event) = events.next().await {
                    event?;
                }
                Ok::<_, Exit>(())
            })
            .await;
            if let Ok(result) = finished {
                result?;
            }
            task = client.get(&task.id).await?;
        }
        show(&task, format);
        return outcome(
            &task.id,
            task.status,
            task.error.as_ref().map(|e| json!(e)),
            wait,
        );
    }
    show(&task, format);
    Ok(())
}

/// Exit 0 for a task that succeeded, 1 with the reason otherwise.
fn outcome(
    id: &str,
    status: TaskStatus,
    error: Option<Value>,
    waited: Option<Duration>,
) -> Result<(), Exit> {
    if status == TaskStatus::Succeeded {
        return Ok(());
    }
    if !status.is_finished() {
        let after = waited.map_or(String::new(), |w| format!(" after {}", show_duration(w)));
        return Err(Exit::new(
            EXIT_FAILED,
            format!("task {id} is still {status}{after}"),
        ));
    }
    let reason = error
        .as_ref()
        .map(|e| match (e["code"].as_str(), e["message"].as_str()) {
            (Some(code), Some(message)) => format!(": {code}: {message}"),
            (None, Some(message)) => format!(": {message}"),
            _ => String::new(),
        })
        .unwrap_or_default();
    Err(Exit::new(
        EXIT_FAILED,
        format!("task {id} {status}{reason}"),
    ))
}

fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Prints a task: all of it as JSON, or its main fields and output for people.
fn show(task: &Task, format: OutputFormat) {
    if format == OutputFormat::Json {
        output::json(task);
        return;
    }
    let mut fields = vec![
        ("id", task.id.clone()),
        ("agent", task.agent.clone()),
        ("status", task.status.to_string()),
        ("attempts", task.attempts.len().to_string()),
        ("created", output::time(&task.created_at)),
    ];
    if let Some(finished) = &task.finished_at {
        fields.push(("finished", output::time(finished)));
    }
    if let Some(error) = &task.error {
        let code = error
            .code
            .as_deref()
            .map_or(String::new(), |c| format!("{c}: "));
        fields.push((
            "error",
            format!("{code}{} ({})", error.message, error.class),
        ));
    }
    if let Some(fallback) = &task.fallback_task_id {
        fields.push(("fallback", fallback.clone()));
    }
    if let Some(out) = &task.output {
        fields.push(("output", output::pretty(out)));
    }
    output::text(&output::fields(&fields));
}

async fn list(client: &Client, query: &ListTasks, format: OutputFormat) -> Result<(), Exit> {
    let page = client.list(query).await?;
    if format == OutputFormat::Json {
        output::json(&page);
        return Ok(());
    }
    let mut table = Table::new(&["ID", "AGENT", "STATUS", "ATTEMPTS", "CREATED"]);
    for t in &page.items {
        table.row(vec![
            t.id.clone(),
            t.agent.clone(),
            t.status.to_string(),
            t.attempts.len().to_string(),
            output::time(&t.created_at),
        ]);
    }
    table.print();
    if let Some(cursor) = &page.next_cursor {
        output::note(&format!("more: add --cursor {cursor}"));
    }
    Ok(())
}

/// Prints a task's events until its final one (or `deadline`); the exit code follows
/// how it ended.
async fn follow(
    client: &Client,
    id: &str,
    deadline: Option<Instant>,
    format: OutputFormat,
) -> Result<(), Exit> {
    let mut events = client.follow(id, Some(0));
    let mut printer = EventPrinter::default();
    loop {
        let next = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, events.next()).await {
                Ok(next) => next,
                Err(_) => {
                    printer.finish_text();
                    let task = client.get(id).await?;
                    return outcome(id, task.status, None, None)
                        .map_err(|e| Exit::new(e.code, format!("{} when the wait ended", e)));
                }
            },
            None => events.next().await,
        };
        let Some(event) = next else {
            // The stream ends after the final event, which returned below.
            return Err(Exit::new(
                EXIT_FAILED,
                format!("the events of task {id} ended early"),
            ));
        };
        let event = event?;
        match format {
            OutputFormat::Json => output::json_line(&event),
            OutputFormat::Table => printer.print(&event),
        }
        if event.is_final() {
            printer.finish_text();
            let status = event.status().unwrap_or(TaskStatus::Unknown);
            if format == OutputFormat::Table && status == TaskStatus::Succeeded {
                output::note(&format!("task {id} succeeded"));
            }
            if let Some(fallback) = event.fields.get("fallback_task_id").and_then(Value::as_str) {
                output::note(&format!("fallback task {fallback} took over"));
            }
            return outcome(id, status, event.fields.get("error").cloned(), None);
        }
    }
}

/// Prints events for people: partial output on stdout as it streams (an LLM's `delta`s
/// as text), everything else as a line on stderr; the result's output on stdout unless
/// partial output already showed it.
#[derive(Default)]
struct EventPrinter {
    streamed: bool,
    /// Whether the last text printed ended its line.
    at_line_start: bool,
}

impl EventPrinter {
    fn print(&mut self, event: &TaskEvent) {
        let field = |name: &str| event.fields.get(name);
        match event.kind.as_str() {
            "partial" => {
                let text = match field("data") {
                    Some(Value::Object(o)) if o.get("delta").is_some_and(Value::is_string) => {
                        o["delta"].as_str().unwrap_or_default().to_owned()
                    }
                    Some(Value::String(s)) => s.clone(),
                    other => format!("{}\n", output::cell(other)),
                };
                if text.is_empty() {
                    return;
                }
                self.streamed = true;
                self.at_line_start = text.ends_with('\n');
                output::text(&text);
            }
            "result" => {
                if !self.streamed {
                    output::line(&output::pretty(field("output").unwrap_or(&Value::Null)));
                }
            }
            other => {
                self.finish_text();
                output::note(&describe(other, event));
            }
        }
    }

    /// Ends a line of streamed text, so what follows starts on its own line.
    fn finish_text(&mut self) {
        if self.streamed && !self.at_line_start {
            output::line("");
            self.at_line_start = true;
        }
    }
}

fn describe(kind: &str, event: &TaskEvent) -> String {
    let field = |name: &str| event.fields.get(name);
    let text = |name: &str| {
        field(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let error = || {
        field("error").map_or(String::new(), |e| {
            let code = e["code"]
                .as_str()
                .map_or(String::new(), |c| format!("{c}: "));
            format!(": {code}{}", e["message"].as_str().unwrap_or_default())
        })
    };
    let attempt = field("attempt").and_then(Value::as_u64).filter(|a| *a > 0);
    let attempt = attempt.map_or(String::new(), |a| format!(" (attempt {a})"));
    match kind {
        "status" => format!("[status] {}{attempt}{}", text("status"), error()),
        "error" => format!("[{}]{attempt}{}", text("status"), error()),
        "log" => format!("[{}] {}", text("level"), text("message")),
        "progress" => {
            let pct = field("progress")
                .and_then(Value::as_f64)
                .map(|p| format!("{:.0}%", p * 100.0));
            let parts: Vec<String> = pct
                .into_iter()
                .chain(field("message").and_then(Value::as_str).map(str::to_owned))
                .collect();
            format!("[progress] {}", parts.join(" "))
        }
        "step_finished" => format!("[step] {} {}{attempt}", text("name"), text("status")),
        "waiting" => format!("[waiting] {}", output::cell(field("wait"))),
        "resumed" => format!("[resumed] {}", text("reason")),
        "signal_received" => format!("[signal] {}", text("name")),
        other => format!(
            "[{other}] {}",
            serde_json::to_string(&event.fields).unwrap_or_default()
        ),
    }
}

async fn logs(
    client: &Client,
    id: &str,
    level: Option<String>,
    format: OutputFormat,
) -> Result<(), Exit> {
    let mut lines = Vec::new();
    let mut after = None;
    loop {
        let query = LogQuery {
            after,
            limit: Some(LOG_PAGE),
            level: level.clone(),
            search: None,
        };
        let page = client.logs(id, &query).await?;
        let full = page.len() == LOG_PAGE as usize;
        after = page.last().map(|l| l.seq).or(after);
        lines.extend(page);
        if !full || lines.len() >= MAX_LOG_LINES {
            break;
        }
    }
    match format {
        OutputFormat::Json => output::json(&json!({ "items": lines })),
        OutputFormat::Table => {
            let mut table = Table::new(&["TIME", "ATTEMPT", "LEVEL", "MESSAGE"]);
            for l in &lines {
                table.row(vec![
                    output::time(&l.at),
                    l.attempt.to_string(),
                    l.level.clone(),
                    l.message.clone(),
                ]);
            }
            table.print();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(
            parse_duration("1.5s").unwrap(),
            Duration::from_millis(1_500)
        );
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3_600));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        for bad in ["", "s", "10x", "-1s", "2d", "1e9s", "25h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn input_must_be_a_json_object() {
        assert_eq!(read_input(None).unwrap(), json!({}));
        assert_eq!(read_input(Some("{\"a\": 1}")).unwrap(), json!({"a": 1}));
        for bad in ["{oops", "[1]", "\"text\"", "@/no/such/file.json"] {
            assert_eq!(read_input(Some(bad)).unwrap_err().code, 2, "{bad}");
        }
    }

    #[test]
    fn outcomes() {
        assert!(outcome("t", TaskStatus::Succeeded, None, None).is_ok());
        let e = outcome(
            "t",
            TaskStatus::Dead,
            Some(json!({"code": "boom", "message": "it broke"})),
            None,
        )
        .unwrap_err();
        assert_eq!(
            (e.code, e.message.unwrap()),
            (1, "task t dead: boom: it broke".to_owned())
        );
        let e = outcome("t", TaskStatus::Running, None, Some(Duration::from_secs(2))).unwrap_err();
        assert_eq!(e.message.unwrap(), "task t is still running after 2s");
    }
}
