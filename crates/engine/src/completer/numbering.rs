//! Numbers for the live events of running attempts, handed out from memory.
//!
//! A live event is numbered the moment the completer takes it, from a block of numbers
//! the store reserved for its attempt ([`TaskStore::reserve_event_numbers`]); it is then
//! published and stored behind ([`super::event_writer`]). Only an attempt's first events
//! wait for the database: the next block is asked for in the background once half of the
//! blocks in hand is used, and at least every [`RENEW_AFTER`]. A block is granted only to
//! a running attempt, so a refused renewal also tells the completer that the attempt
//! ended elsewhere (on another server, or in a durable wait). Numbers a block leaves
//! unused are skipped: a task's event numbers grow, with gaps.
//!
//! [`TaskStore::reserve_event_numbers`]: switchyard_core::store::TaskStore::reserve_event_numbers

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use switchyard_core::event::TaskEvent;
use switchyard_core::store::{EventDraft, NumberAsk, NumberBlock, NumberedEvent};
use switchyard_core::{TaskId, UserId};
use tokio::time::Instant;

/// The smallest block asked for; blocks double with each grant up to [`MAX_BLOCK`].
pub(crate) const MIN_BLOCK: u64 = 64;
const MAX_BLOCK: u64 = 4_096;
/// An attempt's blocks are renewed at least this often: how long events of an attempt
/// that ended elsewhere may still be numbered.
pub(crate) const RENEW_AFTER: Duration = Duration::from_secs(1);
/// An attempt with no event for this long is forgotten (its next event asks again).
const FORGET_AFTER: Duration = Duration::from_secs(10);
/// How often the held blocks are looked over for renewal by age and for idleness.
const LOOK_OVER_EVERY: Duration = Duration::from_millis(200);

type Attempt = (TaskId, u32);

/// The blocks of event numbers the completer holds, per running attempt.
pub(crate) struct Numbering {
    held: HashMap<Attempt, Held>,
    /// Attempts whose renewal is due, not yet asked for.
    due: Vec<Attempt>,
    looked_over: Instant,
}

struct Held {
    /// Ranges of numbers in hand (`next..=last`), in order, all above `taken`.
    ranges: VecDeque<(u64, u64)>,
    /// The last number handed out (0: none).
    taken: u64,
    agent: String,
    owner_id: Option<UserId>,
    /// The size of the last block granted.
    size: u64,
    granted_at: Instant,
    used_at: Instant,
    /// It numbered events since its last block was granted.
    used_since_grant: bool,
    /// A renewal is on its way.
    asking: bool,
}

impl Held {
    fn left(&self) -> u64 {
        self.ranges.iter().map(|(next, last)| last + 1 - next).sum()
    }

    fn take(&mut self) -> Option<u64> {
        let (next, last) = self.ranges.front_mut()?;
        let this = *next;
        if this == *last {
            self.ranges.pop_front();
        } else {
            *next += 1;
        }
        self.taken = this;
        Some(this)
    }

    /// Adds the numbers `first..=last` in order among those in hand. Those not above the
    /// last number handed out are skipped: a block answered late, after a later block
    /// was used, would number events below ones already published, and followers drop
    /// an event numbered below one they have.
    fn add(&mut self, first: u64, last: u64) {
        let first = first.max(self.taken + 1);
        if first > last {
            return;
        }
        let at = self.ranges.partition_point(|(next, _)| *next < first);
        self.ranges.insert(at, (first, last));
    }

    fn next_size(&self) -> u64 {
        (self.size * 2).clamp(MIN_BLOCK, MAX_BLOCK)
    }
}

impl Numbering {
    pub(crate) fn new() -> Self {
        Numbering {
            held: HashMap::new(),
            due: Vec::new(),
            looked_over: Instant::now(),
        }
    }

    /// What the attempts of `drafts` lack to number them all: a block each, at least as
    /// large as the numbers missing.
    pub(crate) fn missing(&self, drafts: &[EventDraft]) -> Vec<NumberAsk> {
        NumberAsk::for_drafts(drafts)
            .into_iter()
            .filter_map(|mut ask| {
                let (left, size) = self
                    .held
                    .get(&(ask.task_id, ask.attempt))
                    .map_or((0, MIN_BLOCK), |h| (h.left(), h.next_size()));
                (ask.count > left).then(|| {
                    ask.count = (ask.count - left).max(size);
                    ask
                })
            })
            .collect()
    }

    /// Takes the blocks granted for `asked` (what [`Self::missing`] asked for). An
    /// attempt asked for and not granted one is no longer running: it is forgotten, and
    /// its events get no numbers.
    pub(crate) fn granted(&mut self, asked: &[NumberAsk], blocks: Vec<NumberBlock>) {
        self.take(asked, blocks, false);
    }

    /// Takes the blocks granted for renewals asked for in the background. Those of
    /// attempts forgotten meanwhile (their result came in) are dropped.
    pub(crate) fn renewed(&mut self, asked: &[NumberAsk], blocks: Vec<NumberBlock>) {
        self.take(asked, blocks, true);
    }

    fn take(&mut self, asked: &[NumberAsk], blocks: Vec<NumberBlock>, renewals: bool) {
        let now = Instant::now();
        let mut blocks: HashMap<Attempt, NumberBlock> = blocks
            .into_iter()
            .map(|b| ((b.task_id, b.attempt), b))
            .collect();
        for ask in asked {
            let key = (ask.task_id, ask.attempt);
            let Some(block) = blocks.remove(&key) else {
                self.held.remove(&key);
                continue;
            };
            if renewals && !self.held.contains_key(&key) {
                continue;
            }
            let held = self.held.entry(key).or_insert_with(|| Held {
                ranges: VecDeque::new(),
                taken: 0,
                agent: String::new(),
                owner_id: None,
                size: 0,
                granted_at: now,
                used_at: now,
                used_since_grant: false,
                asking: false,
            });
            // What was asked for because it was missing is needed. A renewal by age only
            // checked that the attempt still runs when it holds enough: its numbers are
            // skipped.
            if !renewals || held.ranges.is_empty() || held.left() < held.size {
                held.add(block.first, block.last);
                held.size = block.last + 1 - block.first;
            }
            held.agent = block.agent;
            held.owner_id = block.owner_id;
            held.granted_at = now;
            held.used_since_grant = false;
            held.asking = false;
        }
    }

    /// A renewal asked for in the background failed: it is asked for again when due.
    pub(crate) fn not_renewed(&mut self, asked: &[NumberAsk]) {
        for ask in asked {
            if let Some(h) = self.held.get_mut(&(ask.task_id, ask.attempt)) {
                h.asking = false;
            }
        }
    }

    /// Numbers `drafts`, in order. Events of attempts holding no numbers are dropped:
    /// their attempts are no longer running.
    pub(crate) fn number(&mut self, drafts: Vec<EventDraft>) -> Vec<NumberedEvent> {
        let now = Instant::now();
        let mut out = Vec::with_capacity(drafts.len());
        for d in drafts {
            let key = (d.task_id, d.attempt);
            let Some(held) = self.held.get_mut(&key) else {
                continue;
            };
            let Some(seq) = held.take() else {
                continue;
            };
            held.used_at = now;
            held.used_since_grant = true;
            if !held.asking && held.left() < held.size / 2 {
                held.asking = true;
                self.due.push(key);
            }
            out.push(NumberedEvent {
                attempt: d.attempt,
                event: Arc::new(TaskEvent {
                    task_id: d.task_id,
                    seq,
                    agent: held.agent.clone(),
                    owner_id: held.owner_id,
                    at: d.at,
                    body: d.body,
                }),
            });
        }
        out
    }

    /// The renewals to ask for now: attempts that used half of what they hold, and (looked
    /// over every [`LOOK_OVER_EVERY`]) those that numbered events since their last block,
    /// granted longer than [`RENEW_AFTER`] ago. Attempts idle for [`FORGET_AFTER`] are forgotten meanwhile.
    pub(crate) fn renewals(&mut self) -> Vec<NumberAsk> {
        let now = Instant::now();
        if now.duration_since(self.looked_over) >= LOOK_OVER_EVERY {
            self.looked_over = now;
            self.held
                .retain(|_, h| now.duration_since(h.used_at) < FORGET_AFTER);
            for (key, h) in &mut self.held {
                if !h.asking
                    && h.used_since_grant
                    && now.duration_since(h.granted_at) >= RENEW_AFTER
                {
                    h.asking = true;
                    self.due.push(*key);
                }
            }
        }
        let held = &self.held;
        self.due
            .drain(..)
            .filter_map(|key| {
                held.get(&key).map(|h| NumberAsk {
                    task_id: key.0,
                    attempt: key.1,
                    count: h.next_size(),
                })
            })
            .collect()
    }

    /// The attempt ended (its result was handed in): its numbers are given up.
    pub(crate) fn forget(&mut self, task_id: TaskId, attempt: u32) {
        self.held.remove(&(task_id, attempt));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::event::EventBody;
    use switchyard_core::{TaskId, Timestamp};

    fn drafts(task_id: TaskId, n: usize) -> Vec<EventDraft> {
        (0..n)
            .map(|i| EventDraft {
                task_id,
                attempt: 1,
                at: Timestamp::now(),
                body: EventBody::Partial {
                    data: serde_json::json!({ "delta": i }),
                },
            })
            .collect()
    }

    /// What the store would grant: `first` on for each ask.
    fn grant(asks: &[NumberAsk], first: u64) -> Vec<NumberBlock> {
        asks.iter()
            .map(|a| NumberBlock {
                task_id: a.task_id,
                attempt: a.attempt,
                first,
                last: first + a.count - 1,
                agent: "echo".into(),
                owner_id: None,
            })
            .collect()
    }

    fn seqs(events: &[NumberedEvent]) -> Vec<u64> {
        events.iter().map(|e| e.event.seq).collect()
    }

    /// Numbering holding `task`'s first block, from 1.
    fn holding_first_block(task: TaskId) -> Numbering {
        let mut n = Numbering::new();
        let asks = n.missing(&drafts(task, 1));
        n.granted(&asks, grant(&asks, 1));
        n
    }

    #[tokio::test(start_paused = true)]
    async fn events_are_numbered_from_blocks_asked_for_ahead() {
        let task = TaskId::new();
        let mut n = Numbering::new();
        let asks = n.missing(&drafts(task, 3));
        assert_eq!(asks.len(), 1);
        assert_eq!(asks[0].count, MIN_BLOCK, "a first block has room to spare");
        n.granted(&asks, grant(&asks, 5));
        assert!(n.missing(&drafts(task, 3)).is_empty());
        assert_eq!(seqs(&n.number(drafts(task, 3))), vec![5, 6, 7]);
        assert!(n.renewals().is_empty(), "most of the block is left");

        let more = n.number(drafts(task, 30));
        assert_eq!(more.last().unwrap().event.seq, 37);
        let renew = n.renewals();
        assert_eq!(
            renew.len(),
            1,
            "half the block is used: the next is asked for"
        );
        assert_eq!(renew[0].count, 2 * MIN_BLOCK);
        assert!(n.renewals().is_empty(), "asked for once");
        // Another path numbered events meanwhile: the next block starts after them.
        n.renewed(&renew, grant(&renew, 100));
        let rest = n.number(drafts(task, 40));
        assert_eq!(seqs(&rest)[..31], (38..=68).collect::<Vec<_>>()[..]);
        assert_eq!(seqs(&rest)[31..], (100..109).collect::<Vec<_>>()[..]);

        // More than in hand: the missing numbers are asked for.
        let asks = n.missing(&drafts(task, 500));
        assert_eq!(asks[0].count, 500 - (2 * MIN_BLOCK - 9));
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_larger_than_the_numbers_in_hand_gets_them_all() {
        let task = TaskId::new();
        let mut n = holding_first_block(task);
        n.number(drafts(task, 40));
        let renew = n.renewals();
        n.renewed(&renew, grant(&renew, 1_000));
        // 24 + 128 in hand, more than the last block's size.
        let burst = drafts(task, 1_000);
        let asks = n.missing(&burst);
        assert_eq!(asks[0].count, 1_000 - 152);
        n.granted(&asks, grant(&asks, 5_000));
        let numbered = n.number(burst);
        assert_eq!(numbered.len(), 1_000, "every event is numbered");
        assert!(seqs(&numbered).windows(2).all(|w| w[0] < w[1]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_answered_after_a_later_block_never_numbers_backwards() {
        let task = TaskId::new();
        let mut n = holding_first_block(task);
        let mut all = n.number(drafts(task, 40));
        let renew = n.renewals();
        // The store grants the renewal 65..=192, but its answer comes back late: meanwhile
        // the attempt runs out, asks for itself and gets the numbers after it.
        let asks = n.missing(&drafts(task, 30));
        n.granted(&asks, grant(&asks, 193));
        all.extend(n.number(drafts(task, 30)));
        n.renewed(&renew, grant(&renew, 65));
        let burst = drafts(task, 300);
        let asks = n.missing(&burst);
        n.granted(&asks, grant(&asks, 1_000));
        all.extend(n.number(burst));
        let seqs = seqs(&all);
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "a follower drops an event numbered below one it has: {seqs:?}"
        );
        assert_eq!(seqs.len(), 40 + 30 + 300, "every event is numbered");
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_refused_numbers_is_forgotten_and_its_events_dropped() {
        let (running, ended) = (TaskId::new(), TaskId::new());
        let mut n = Numbering::new();
        let mut both = drafts(running, 2);
        both.extend(drafts(ended, 2));
        let asks = n.missing(&both);
        assert_eq!(asks.len(), 2);
        n.granted(&asks, grant(&asks[..1], 1));
        let numbered = n.number(both);
        assert_eq!(seqs(&numbered), vec![1, 2]);
        assert!(numbered.iter().all(|e| e.event.task_id == running));
        assert_eq!(
            n.missing(&drafts(ended, 1)).len(),
            1,
            "asked again next time"
        );

        n.forget(running, 1);
        assert!(
            n.number(drafts(running, 1)).is_empty(),
            "its result was handed in"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_streaming_attempt_is_checked_every_second_and_an_idle_one_forgotten() {
        let task = TaskId::new();
        let mut n = holding_first_block(task);
        n.number(drafts(task, 1));
        tokio::time::advance(RENEW_AFTER).await;
        let probe = n.renewals();
        assert_eq!(probe.len(), 1, "a renewal checks the attempt still runs");
        // Granted while most of the block is left: its numbers are skipped.
        n.renewed(&probe, grant(&probe, 1_000));
        assert_eq!(seqs(&n.number(drafts(task, 2))), vec![2, 3]);
        // Refused: the attempt ended elsewhere.
        tokio::time::advance(RENEW_AFTER).await;
        let probe = n.renewals();
        n.renewed(&probe, Vec::new());
        assert!(n.number(drafts(task, 1)).is_empty());

        let idle = TaskId::new();
        let asks = n.missing(&drafts(idle, 1));
        n.granted(&asks, grant(&asks, 1));
        tokio::time::advance(RENEW_AFTER).await;
        assert!(
            n.renewals().is_empty(),
            "an attempt that numbered nothing is not asked about"
        );
        tokio::time::advance(FORGET_AFTER).await;
        n.renewals();
        assert_eq!(n.missing(&drafts(idle, 1)).len(), 1, "forgotten once idle");
    }
}
