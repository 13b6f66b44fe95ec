//! An example remote worker: serves `wordcount`, which counts the words of `text`,
//! streaming each word as partial output and reporting progress.
//!
//! ```sh
//! switchyard apikey create --email admin@localhost --name worker --scopes worker
//! SWITCHYARD_API_KEY=sy_… cargo run -p switchyard-sdk --bin switchyard-example-worker -- http://127.0.0.1:8080
//! ```

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_sdk::{AgentDecl, TaskContext, TaskError, Worker};

async fn wordcount(input: Value, ctx: TaskContext) -> Result<Value, TaskError> {
    let text = input["text"]
        .as_str()
        .ok_or_else(|| TaskError::permanent("`text` must be a string"))?;
    let delay = Duration::from_millis(input["delay_ms"].as_u64().unwrap_or(0));
    let words: Vec<&str> = text.split_whitespace().collect();
    ctx.info(format!("counting {} words", words.len())).await;
    for (i, word) in words.iter().enumerate() {
        ctx.partial(json!(word)).await;
        ctx.progress(Some((i + 1) as f64 / words.len() as f64), None)
            .await;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
    Ok(json!({ "words": words.len(), "worker": std::env::var("WORKER_NAME").unwrap_or_default() }))
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let Ok(key) = std::env::var("SWITCHYARD_API_KEY") else {
        eprintln!("set SWITCHYARD_API_KEY to an API key with the worker scope");
        std::process::exit(2);
    };
    let slots = std::env::var("WORKER_SLOTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let decl = AgentDecl {
        description: Some("Counts the words of `text`, streaming them as it goes.".into()),
        input_schema: Some(json!({
            "type": "object",
            "properties": {"text": {"type": "string"}, "delay_ms": {"type": "integer", "minimum": 0}},
            "required": ["text"]
        })),
        ..AgentDecl::new("wordcount")
    };
    let mut worker = Worker::connect(url, key)
        .declare(decl, wordcount)
        .slots(slots);
    if let Ok(name) = std::env::var("WORKER_NAME") {
        worker = worker.name(name);
    }
    if let Err(e) = worker.run().await {
        eprintln!("worker stopped: {e}");
        std::process::exit(1);
    }
}
