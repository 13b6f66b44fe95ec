//! The event hub: every server receives every task event once from the bus and routes
//! it to the local subscribers that want it (SSE and WebSocket clients, `?wait`ers).
//!
//! Each subscriber has a bounded buffer. One that cannot keep up is dropped and told so
//! (`lagged`), never allowed to grow memory; it can reconnect and resume with `since`.
//! A bounded ring of recent events serves those resumptions.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use dashmap::DashMap;
use parking_lot::{Mutex, RwLock};
pub use switchyard_core::event::SharedEvent;
use switchyard_core::event::{BusMessage, TaskEvent};
use switchyard_core::{TaskId, UserId};
use tokio::sync::{broadcast, mpsc};

/// What a subscriber wants to receive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    Task(TaskId),
    /// Tasks of one agent, restricted to one owner unless `None` (admins).
    Agent {
        agent: String,
        owner: Option<UserId>,
    },
    /// Every task, restricted to one owner unless `None` (admins).
    All {
        owner: Option<UserId>,
    },
}

/// The event kinds a subscriber wants (`status`, `log`, `progress`, `partial`,
/// `result`, `error`, `step_finished`). Filtered at delivery, so unwanted events never take buffer space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kinds(u8);

impl Kinds {
    const NAMES: [&'static str; 7] = [
        "status",
        "log",
        "progress",
        "partial",
        "result",
        "error",
        "step_finished",
    ];
    pub const ALL: Kinds = Kinds(0b111_1111);

    /// Kinds from their names; an unknown name is returned as the error.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Kinds, String> {
        let mut bits = 0;
        for name in names {
            let i = Self::NAMES
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| name.to_owned())?;
            bits |= 1 << i;
        }
        Ok(Kinds(bits))
    }

    pub fn contains(self, event: &TaskEvent) -> bool {
        // Most subscribers want every kind: no name lookup on the fan-out path for them.
        if self == Self::ALL {
            return true;
        }
        let kind = event.body.kind();
        Self::NAMES
            .iter()
            .position(|n| *n == kind)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }
}

struct Sub {
    id: u64,
    owner: Option<UserId>,
    kinds: Kinds,
    tx: mpsc::Sender<SharedEvent>,
    lagged: Arc<AtomicBool>,
}

impl Sub {
    /// Delivers without waiting; a full buffer marks the subscriber as lagged and
    /// returns false so it is dropped.
    fn offer(&self, event: &SharedEvent) -> bool {
        if self.owner.is_some_and(|o| event.owner_id != Some(o)) || !self.kinds.contains(event) {
            return true;
        }
        match self.tx.try_send(event.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.lagged.store(true, Ordering::Relaxed);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

#[derive(Default)]
pub struct EventHub {
    by_task: DashMap<TaskId, Vec<Sub>>,
    by_agent: DashMap<String, Vec<Sub>>,
    all: RwLock<Vec<Sub>>,
    next_id: AtomicU64,
    recent: Mutex<VecDeque<SharedEvent>>,
    recent_cap: usize,
}

/// A live subscription; dropping it unsubscribes.
pub struct Subscription {
    pub rx: mpsc::Receiver<SharedEvent>,
    lagged: Arc<AtomicBool>,
    hub: Arc<EventHub>,
    filter: Filter,
    id: u64,
}

impl Subscription {
    /// Whether the hub dropped this subscriber for falling behind.
    pub fn lagged(&self) -> bool {
        self.lagged.load(Ordering::Relaxed)
    }

    pub fn filter(&self) -> &Filter {
        &self.filter
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(&self.filter, self.id);
    }
}

impl EventHub {
    pub fn new(recent_cap: usize) -> Arc<Self> {
        Arc::new(EventHub {
            recent_cap,
            ..Default::default()
        })
    }

    pub fn subscribe(self: &Arc<Self>, filter: Filter, buffer: usize) -> Subscription {
        self.subscribe_kinds(filter, buffer, Kinds::ALL)
    }

    /// A subscription to only some kinds of events.
    pub fn subscribe_kinds(
        self: &Arc<Self>,
        filter: Filter,
        buffer: usize,
        kinds: Kinds,
    ) -> Subscription {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        let lagged = Arc::new(AtomicBool::new(false));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let owner = match &filter {
            Filter::Task(_) => None,
            Filter::Agent { owner, .. } | Filter::All { owner } => *owner,
        };
        let sub = Sub {
            id,
            owner,
            kinds,
            tx,
            lagged: lagged.clone(),
        };
        match &filter {
            Filter::Task(task) => self.by_task.entry(*task).or_default().push(sub),
            Filter::Agent { agent, .. } => {
                self.by_agent.entry(agent.clone()).or_default().push(sub)
            }
            Filter::All { .. } => self.all.write().push(sub),
        }
        Subscription {
            rx,
            lagged,
            hub: self.clone(),
            filter,
            id,
        }
    }

    fn unsubscribe(&self, filter: &Filter, id: u64) {
        match filter {
            Filter::Task(task) => {
                if let Some(mut subs) = self.by_task.get_mut(task) {
                    subs.retain(|s| s.id != id);
                }
                self.by_task.remove_if(task, |_, subs| subs.is_empty());
            }
            Filter::Agent { agent, .. } => {
                if let Some(mut subs) = self.by_agent.get_mut(agent) {
                    subs.retain(|s| s.id != id);
                }
                self.by_agent.remove_if(agent, |_, subs| subs.is_empty());
            }
            Filter::All { .. } => self.all.write().retain(|s| s.id != id),
        }
    }

    /// Routes events to subscribers and remembers them for resumption.
    pub fn deliver(&self, events: &[SharedEvent]) {
        if events.is_empty() {
            return;
        }
        {
            let mut recent = self.recent.lock();
            for e in events {
                if recent.len() >= self.recent_cap {
                    recent.pop_front();
                }
                recent.push_back(e.clone());
            }
        }
        let have_all = !self.all.read().is_empty();
        for e in events {
            if let Some(mut subs) = self.by_task.get_mut(&e.task_id) {
                subs.retain(|s| s.offer(e));
            }
            if let Some(mut subs) = self.by_agent.get_mut(&e.agent) {
                subs.retain(|s| s.offer(e));
            }
            if have_all {
                self.all.write().retain(|s| s.offer(e));
            }
        }
    }

    /// Recent events of a task with `seq > since`, oldest first (from the in-memory window).
    pub fn recent_for_task(&self, task: TaskId, since: u64) -> Vec<SharedEvent> {
        self.recent
            .lock()
            .iter()
            .filter(|e| e.task_id == task && e.seq > since)
            .cloned()
            .collect()
    }

    /// Recent events matching a filter, for resuming agent or "all" streams.
    pub fn recent_matching(
        &self,
        filter: &Filter,
        since: impl Fn(&TaskEvent) -> bool,
    ) -> Vec<SharedEvent> {
        self.recent
            .lock()
            .iter()
            .filter(|e| match filter {
                Filter::Task(t) => e.task_id == *t,
                Filter::Agent { agent, owner } => {
                    e.agent == *agent && owner.is_none_or(|o| e.owner_id == Some(o))
                }
                Filter::All { owner } => owner.is_none_or(|o| e.owner_id == Some(o)),
            })
            .filter(|e| since(e))
            .cloned()
            .collect()
    }

    pub fn subscriber_count(&self) -> usize {
        self.by_task.iter().map(|s| s.len()).sum::<usize>()
            + self.by_agent.iter().map(|s| s.len()).sum::<usize>()
            + self.all.read().len()
    }

    /// Feeds the hub from the bus until the bus closes.
    pub async fn run(self: Arc<Self>, mut rx: broadcast::Receiver<Arc<BusMessage>>) {
        loop {
            match rx.recv().await {
                Ok(msg) => {
                    if let BusMessage::Tasks { events } = &*msg {
                        self.deliver(events);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(
                        missed = n,
                        "event hub fell behind the bus; subscribers may resume with `since`"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::Timestamp;
    use switchyard_core::event::EventBody;
    use switchyard_core::task::TaskStatus;

    fn shared(events: impl IntoIterator<Item = TaskEvent>) -> Vec<SharedEvent> {
        events.into_iter().map(Arc::new).collect()
    }

    fn ev(task: TaskId, seq: u64, agent: &str, owner: Option<UserId>) -> TaskEvent {
        TaskEvent {
            task_id: task,
            seq,
            agent: agent.into(),
            owner_id: owner,
            at: Timestamp::now(),
            body: EventBody::Status {
                status: TaskStatus::Queued,
                attempt: 0,
                error: None,
                run_at: None,
            },
        }
    }

    #[test]
    fn kinds_parse_by_name() {
        let k = Kinds::parse(["result", "error"]).unwrap();
        let t = TaskId::new();
        assert!(!k.contains(&ev(t, 1, "a", None)), "a status event");
        assert!(Kinds::ALL.contains(&ev(t, 1, "a", None)));
        assert_eq!(Kinds::parse(["result", "nope"]), Err("nope".to_owned()));
    }

    #[tokio::test]
    async fn unwanted_kinds_take_no_buffer_space() {
        let hub = EventHub::new(100);
        let mut results = hub.subscribe_kinds(
            Filter::All { owner: None },
            1,
            Kinds::parse(["result"]).unwrap(),
        );
        let t = TaskId::new();
        let mut done = ev(t, 3, "a", None);
        done.body = EventBody::Result {
            status: TaskStatus::Succeeded,
            attempt: 1,
            output: serde_json::json!(1),
            cached: false,
        };
        // Two status events, then the result: a buffer of one is enough.
        hub.deliver(&shared([ev(t, 1, "a", None), ev(t, 2, "a", None), done]));
        assert!(!results.lagged());
        assert_eq!(results.rx.try_recv().unwrap().seq, 3);
    }

    #[tokio::test]
    async fn routes_by_task_agent_and_owner() {
        let hub = EventHub::new(100);
        let alice = UserId::new();
        let t = TaskId::new();
        let mut by_task = hub.subscribe(Filter::Task(t), 10);
        let mut by_agent = hub.subscribe(
            Filter::Agent {
                agent: "a".into(),
                owner: Some(alice),
            },
            10,
        );
        let mut all_admin = hub.subscribe(Filter::All { owner: None }, 10);
        hub.deliver(&shared([
            ev(t, 1, "a", Some(alice)),
            ev(TaskId::new(), 1, "a", Some(UserId::new())),
            ev(TaskId::new(), 1, "b", None),
        ]));
        assert_eq!(by_task.rx.try_recv().unwrap().task_id, t);
        assert!(by_task.rx.try_recv().is_err());
        assert_eq!(by_agent.rx.try_recv().unwrap().owner_id, Some(alice));
        assert!(
            by_agent.rx.try_recv().is_err(),
            "other owners' events are filtered"
        );
        for _ in 0..3 {
            all_admin.rx.try_recv().unwrap();
        }
        assert_eq!(hub.subscriber_count(), 3);
        drop(by_task);
        assert_eq!(hub.subscriber_count(), 2);
    }

    #[tokio::test]
    async fn slow_consumers_are_dropped_not_buffered() {
        let hub = EventHub::new(100);
        let sub = hub.subscribe(Filter::All { owner: None }, 2);
        hub.deliver(&shared((0..5).map(|i| ev(TaskId::new(), i, "a", None))));
        assert!(sub.lagged());
        assert_eq!(
            hub.subscriber_count(),
            0,
            "the lagging subscriber was removed"
        );
    }

    #[test]
    fn recent_window_is_bounded() {
        let hub = EventHub::new(3);
        let t = TaskId::new();
        hub.deliver(&shared((1..=5).map(|s| ev(t, s, "a", None))));
        let seqs: Vec<u64> = hub.recent_for_task(t, 0).iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![3, 4, 5]);
        assert_eq!(hub.recent_for_task(t, 4).len(), 1);
    }
}
