//! Announcing what the store recorded: task events to clients, wake-ups to dispatchers.

use std::collections::BTreeSet;
use std::sync::Arc;

use switchyard_core::Timestamp;
use switchyard_core::cache::EventBus;
use switchyard_core::event::{BusMessage, SharedEvent, TaskEvent};
use switchyard_core::store::Transition;
use switchyard_core::task::TaskStatus;
use switchyard_core::wait::Resumed;

/// Publishes the events of `transitions` and wakes dispatchers for what became runnable.
/// Bus failures are logged, not returned: the state is already durable, and clients and
/// dispatchers recover through `since` resumption and polling.
pub async fn announce(bus: &Arc<dyn EventBus>, transitions: Vec<Transition>, now: Timestamp) {
    if transitions.is_empty() {
        return;
    }
    let mut ready = BTreeSet::new();
    let mut earliest: Option<Timestamp> = None;
    for (i, t) in transitions.iter().enumerate() {
        // A transition followed by another of the same task (a task inserted already
        // claimed: queued, then running) does not leave it waiting.
        let superseded = transitions
            .get(i + 1)
            .is_some_and(|next| next.task_id == t.task_id);
        if !superseded && matches!(t.status, TaskStatus::Queued | TaskStatus::Retrying) {
            if t.run_at <= now {
                ready.insert(t.agent.clone());
            } else {
                earliest = Some(earliest.map_or(t.run_at, |e| e.min(t.run_at)));
            }
        }
    }
    let events: Vec<SharedEvent> = transitions
        .into_iter()
        .map(|t| Arc::new(TaskEvent::transition(t)))
        .collect();
    bus.send(BusMessage::Tasks { events }).await;
    if !ready.is_empty() {
        bus.send(BusMessage::Wake {
            agents: ready.into_iter().collect(),
        })
        .await;
    }
    if let Some(at) = earliest {
        bus.send(BusMessage::Scheduled { at }).await;
    }
}

/// Publishes the events of waiting tasks queued again (each wait's `step_finished`, then
/// `resumed`), preceded by `before` (a `signal_received` that woke one), and wakes the
/// dispatchers of their agents.
pub async fn announce_resumed(
    bus: &Arc<dyn EventBus>,
    before: Option<TaskEvent>,
    resumed: &[Resumed],
    now: Timestamp,
) {
    let mut events: Vec<SharedEvent> = before.into_iter().map(Arc::new).collect();
    let mut agents = BTreeSet::new();
    for r in resumed {
        events.extend(TaskEvent::resumed(r, now).map(Arc::new));
        agents.insert(r.agent.clone());
    }
    if events.is_empty() {
        return;
    }
    bus.send(BusMessage::Tasks { events }).await;
    if !agents.is_empty() {
        bus.send(BusMessage::Wake {
            agents: agents.into_iter().collect(),
        })
        .await;
    }
}
