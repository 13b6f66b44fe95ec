//! `--websockets N`: the memory of N subscribed client sockets, and the fan-out of one
//! task's result to all of them.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use super::BenchArgs;
use super::load::task_body;
use super::report::{base_report, mb};
use super::target::{Target, server_rss};

/// Opens `n` client WebSockets subscribed to every task, measures the server's memory,
/// then submits one task and counts the sockets its result reached.
pub(super) async fn websockets(
    target: &Target,
    args: &BenchArgs,
    n: usize,
) -> anyhow::Result<Value> {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let before = server_rss(target).await;
    let url = format!("{}/api/v1/ws", target.base.replacen("http", "ws", 1));
    let auth = json!({"type": "auth", "token": target.key}).to_string();
    let subscribe = json!({"type": "subscribe", "all": true}).to_string();
    let started = Instant::now();
    let mut sockets = Vec::with_capacity(n);
    // Connect in waves, so the server's accept queue is never the limit.
    for chunk in (0..n).collect::<Vec<_>>().chunks(250) {
        let opened = futures::future::try_join_all(chunk.iter().map(|_| {
            let (url, auth, subscribe) = (url.clone(), auth.clone(), subscribe.clone());
            async move {
                let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                    .read_buffer_size(switchyard_protocol::SOCKET_BUFFER_BYTES)
                    .write_buffer_size(switchyard_protocol::SOCKET_BUFFER_BYTES);
                let (mut ws, _) =
                    tokio_tungstenite::connect_async_with_config(url, Some(config), false).await?;
                ws.send(Message::Text(auth.into())).await?;
                ws.send(Message::Text(subscribe.into())).await?;
                // authenticated, then subscribed
                let mut seen = 0;
                while seen < 2 {
                    match ws.next().await {
                        Some(Ok(Message::Text(t)))
                            if t.contains("\"authenticated\"") || t.contains("\"subscribed\"") =>
                        {
                            seen += 1
                        }
                        Some(Ok(Message::Text(t))) => anyhow::bail!("unexpected reply: {t}"),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(e.into()),
                        None => anyhow::bail!("closed while subscribing"),
                    }
                }
                Ok::<_, anyhow::Error>(ws)
            }
        }))
        .await?;
        sockets.extend(opened);
    }
    let connect_s = started.elapsed().as_secs_f64();
    // Let the server settle (buffers shrink, allocator caches return).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = server_rss(target).await;
    let r = target
        .client
        .post(format!("{}/api/v1/tasks", target.base))
        .bearer_auth(&target.key)
        .json(&task_body(&args.agent, 0))
        .send()
        .await?;
    let task: Value = r.json().await?;
    let id = task["id"].as_str().unwrap_or_default().to_owned();
    let started = Instant::now();
    let reached = futures::future::join_all(sockets.iter_mut().map(|ws| {
        let id = id.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, ws.next()).await {
                if let Message::Text(t) = m
                    && t.contains(&id)
                    && t.contains("\"result\"")
                {
                    return true;
                }
            }
            false
        }
    }))
    .await
    .into_iter()
    .filter(|r| *r)
    .count();
    let fanout_ms = started.elapsed().as_secs_f64() * 1_000.0;
    let mut m = base_report(target, args, "websockets");
    m.insert("websockets".into(), n.into());
    m.insert("connect_seconds".into(), connect_s.into());
    m.insert("server_rss_mb_before".into(), before.map(mb).into());
    m.insert("server_rss_mb_after".into(), after.map(mb).into());
    if let (Some(b), Some(a)) = (before, after) {
        m.insert(
            "added_kb_per_socket".into(),
            ((a.saturating_sub(b)) as f64 / 1024.0 / n as f64).into(),
        );
    }
    m.insert("result_reached_sockets".into(), reached.into());
    m.insert("fanout_ms".into(), fanout_ms.into());
    for mut ws in sockets {
        let _ = ws.close(None).await;
    }
    Ok(Value::Object(m))
}
