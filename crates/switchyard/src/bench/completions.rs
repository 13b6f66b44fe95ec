//! Measuring completions: the follower that notes when each task's final event arrives
//! over SSE (resuming a stream the server closes), and the tally that matches those
//! arrivals against what was submitted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::BenchArgs;
use super::target::Target;

/// Final events matched against the submitted tasks: the first arrival of each counts;
/// repeats and other tasks' events are skipped.
pub(super) struct Tally<'a> {
    pub(super) submitted: &'a HashMap<String, Instant>,
    /// Task → when its final event first arrived.
    pub(super) finished: HashMap<&'a str, Instant>,
}

impl<'a> Tally<'a> {
    pub(super) fn new(submitted: &'a HashMap<String, Instant>) -> Self {
        Tally {
            submitted,
            finished: HashMap::with_capacity(submitted.len()),
        }
    }

    pub(super) fn add(&mut self, arrived: &[(String, Instant)]) {
        for (id, at) in arrived {
            if let Some((key, _)) = self.submitted.get_key_value(id.as_str()) {
                self.finished.entry(key.as_str()).or_insert(*at);
            }
        }
    }
}

/// The fields the follower needs; the rest of the event is skipped.
#[derive(serde::Deserialize)]
struct FinalEvent<'a> {
    task_id: &'a str,
    kind: &'a str,
    at: &'a str,
}

/// How far back a resumed stream starts before the last final event seen: events of
/// the same millisecond, and those published out of time order by concurrent batches.
const RESUME_OVERLAP_MS: u64 = 2_000;

/// Opens the SSE stream of the agent's final events, from `since` (Unix ms) if given.
async fn open_events(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    since: Option<switchyard_core::Timestamp>,
) -> anyhow::Result<impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + use<>> {
    let url = match since {
        Some(at) => format!("{url}&since={}", at.millis().max(0)),
        None => url.to_owned(),
    };
    let response = client
        .get(url)
        .bearer_auth(key)
        .timeout(Duration::from_secs(24 * 3600))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "cannot follow events: HTTP {}",
        response.status()
    );
    Ok(response.bytes_stream())
}

/// Follows the agent's events over SSE and logs when each final event arrived (the
/// first arrival of a task's counts; a resumed stream repeats some).
/// A stream the server closes (this client fell behind under load and was dropped as a
/// slow consumer, or the server restarted) is resumed with `since`; duplicates are
/// ignored.
pub(super) async fn follow(
    target: &Target,
    args: &BenchArgs,
    completions: Arc<Mutex<Vec<(String, Instant)>>>,
    done: Arc<tokio::sync::Notify>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let url = format!(
        "{}/api/v1/events?agent={}&kinds=result,error",
        target.base, args.agent
    );
    let (client, key) = (target.client.clone(), target.key.clone());
    let started = switchyard_core::Timestamp::now();
    let mut stream = Box::pin(open_events(&client, &url, &key, None).await?);
    Ok(tokio::spawn(async move {
        let mut last_at: Option<switchyard_core::Timestamp> = None;
        loop {
            let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
            while let Some(Ok(chunk)) = stream.next().await {
                let now = Instant::now();
                buf.extend_from_slice(&chunk);
                let mut consumed = 0;
                let mut found = Vec::new();
                let mut newest = None;
                while let Some(pos) = buf[consumed..].iter().position(|b| *b == b'\n') {
                    let line = &buf[consumed..consumed + pos];
                    consumed += pos + 1;
                    if let Some(data) = line.strip_prefix(b"data: ")
                        && let Ok(event) = serde_json::from_slice::<FinalEvent>(data)
                        && matches!(event.kind, "result" | "error")
                    {
                        found.push(event.task_id.to_owned());
                        newest = Some(event.at);
                    }
                }
                // Only the chunk's last final event is parsed for its time, before the
                // buffer it borrows from moves on.
                if let Some(at) = newest.and_then(switchyard_core::Timestamp::parse_rfc3339) {
                    last_at = Some(last_at.map_or(at, |l| l.max(at)));
                }
                buf.drain(..consumed);
                if !found.is_empty() {
                    if let Ok(mut log) = completions.lock() {
                        log.extend(found.into_iter().map(|id| (id, now)));
                    }
                    done.notify_one();
                }
            }
            let since = last_at.unwrap_or(started).minus_ms(RESUME_OVERLAP_MS);
            stream = loop {
                match open_events(&client, &url, &key, Some(since)).await {
                    Ok(s) => break Box::pin(s),
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            };
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_counts_each_submitted_task_once_from_its_first_final_event() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let submitted: HashMap<String, Instant> =
            [("a".to_owned(), t0), ("b".to_owned(), t0)].into();
        let mut tally = Tally::new(&submitted);
        // "z" is another run's task, replayed by a resumed stream.
        tally.add(&[("z".into(), at(1)), ("a".into(), at(2))]);
        assert_eq!(tally.finished.len(), 1);
        // A resumed stream repeats "a" later: its first arrival stands.
        tally.add(&[
            ("a".into(), at(9)),
            ("z".into(), at(9)),
            ("b".into(), at(5)),
        ]);
        assert_eq!(tally.finished.len(), 2);
        assert_eq!(tally.finished["a"], at(2));
        assert_eq!(tally.finished["b"], at(5));
    }
}
