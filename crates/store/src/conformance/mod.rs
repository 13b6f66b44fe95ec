//! The storage conformance suite: every behaviour the engine relies on, written once
//! against `&dyn Store` and run on every backend (see `tests/sqlite.rs`,
//! `tests/postgres.rs`). A backend is correct when all of these pass unchanged.

mod audit;
mod auth;
mod backups;
mod claims;
mod completions;
mod events;
mod files;
mod flow;
mod monitoring;
mod queries;
mod registry;
mod steps;
mod submissions;
mod waits;

pub use audit::*;
pub use auth::*;
pub use backups::*;
pub use claims::*;
pub use completions::*;
pub use events::*;
pub use files::*;
pub use flow::*;
pub use monitoring::*;
pub use queries::*;
pub use registry::*;
pub use steps::*;
pub use submissions::*;
pub use waits::*;

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;
use switchyard_core::agent::{Agent, builtin_agents};
use switchyard_core::auth::{ApiKey, Role, Scope};
use switchyard_core::error::ErrorCode;
use switchyard_core::event::{EventBody, LogLevel, TaskEvent};
use switchyard_core::monitoring::*;
use switchyard_core::store::*;
use switchyard_core::task::{AttemptStatus, TaskError, TaskStatus};
use switchyard_core::{ApiKeyId, TaskId, Timestamp, UserId, WorkerId};

/// Every check, by name, for backends to generate one test each.
#[macro_export]
macro_rules! conformance_tests {
    ($make_store:path) => {
        $crate::conformance_tests!(@each $make_store;
            insert_and_get, idempotency_keys, claim_order_priority_then_fifo,
            claim_respects_run_at, claim_respects_concurrency_limit,
            concurrent_claims_never_overlap, success_records_attempt,
            stale_results_are_rejected, retry_then_claim_again, fallback_creates_linked_task,
            cancel_waiting_and_running, replay_dead_task, leases_extend_and_expire,
            live_events_and_logs,
            reserved_numbers_come_before_later_changes,
            list_filters_and_cursor, queue_stats_and_ready_agents, agents_crud, users_and_api_keys,
            oidc_identities_find_users_by_subject,
            workers_registry, settings_init_once, idempotency_keys_expire, large_batches,
            sessions_rotate_and_expire, metric_rollups_add_and_downsample, alert_rules_and_events,
            agent_report_counts_tasks, task_logs_filter_and_expire, full_text_search,
            tasks_inserted_claimed, null_outputs_stay_distinct, duplicate_ids_fail_the_whole_batch,
            large_idempotent_batches, content_keeps_nul_and_the_escape_character,
            steps_are_kept_across_runs, waits_suspend_and_resume_on_time,
            signals_wake_waits_or_are_kept, joins_wait_for_their_children, keys_take_turns,
            priority_comes_before_turns, per_key_limits_hold_without_blocking_other_keys,
            rate_limits_space_starts, schedules_fire_once_per_tick, a_lost_claim_is_released,
            files_share_blobs_and_count_against_quotas, a_blob_used_again_is_kept,
            unfinished_uploads_are_found, backups_are_recorded_newest_first,
            task_streams_are_kept_and_cut, attempts_past_their_timeout_are_found,
            audit_log_filters_pages_and_prunes);
    };
    (@each $make_store:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let Some(store) = $make_store().await else { return };
                $crate::conformance::$check(store).await;
            }
        )*
    };
}

pub type SharedStore = Arc<dyn Store>;

const LEASE_MS: u64 = 30_000;

pub fn t0() -> Timestamp {
    Timestamp::from_millis(1_800_000_000_000)
}

pub fn new_task(agent: &str, priority: i32, at: Timestamp) -> NewTask {
    NewTask {
        id: TaskId::new(),
        agent: agent.to_owned(),
        input: json!({"n": 1, "text": "héllo"}),
        priority,
        run_at: at,
        owner_id: None,
        idempotency_key: None,
        parent_id: None,
        fallback_of: None,
        trace_id: Some("0af7651916cd43dd8448eb211c80319c".into()),
        created_at: at,
        flow_key: None,
        schedule: None,
        scheduled_for: None,
        cached_output: None,
        claim: None,
    }
}

fn claim_req(
    worker: WorkerId,
    now: Timestamp,
    demands: &[(&str, u32, Option<u32>)],
) -> ClaimRequest {
    ClaimRequest {
        worker_id: worker,
        worker_name: "conformance".into(),
        now,
        lease_ms: LEASE_MS,
        demands: demands
            .iter()
            .map(|(agent, max, concurrency)| AgentDemand {
                agent: (*agent).to_owned(),
                max: *max,
                concurrency: *concurrency,
                ..AgentDemand::default()
            })
            .collect(),
    }
}

pub async fn insert(store: &SharedStore, tasks: Vec<NewTask>) -> Vec<Submitted> {
    store
        .insert_tasks(tasks, Timestamp::EPOCH)
        .await
        .expect("insert tasks")
}

pub async fn claim(
    store: &SharedStore,
    worker: WorkerId,
    now: Timestamp,
    agent: &str,
    max: u32,
) -> Vec<ClaimedTask> {
    store
        .claim_tasks(&claim_req(worker, now, &[(agent, max, None)]))
        .await
        .expect("claim")
}

/// One task of `agent`, inserted and claimed at [`t0`]: the task and its running attempt.
pub async fn running_task(store: &SharedStore, agent: &str) -> (NewTask, ClaimedTask) {
    let t = new_task(agent, 0, t0());
    insert(store, vec![t.clone()]).await;
    let c = claim(store, WorkerId::new(), t0(), agent, 1)
        .await
        .remove(0);
    (t, c)
}

/// A live event of the attempt `c`, at [`t0`].
pub fn live_event(c: &ClaimedTask, body: EventBody) -> EventDraft {
    EventDraft {
        task_id: c.id,
        attempt: c.attempt,
        at: t0(),
        body,
    }
}

fn done(task: &ClaimedTask, at: Timestamp, outcome: Outcome) -> Completion {
    Completion {
        task_id: task.id,
        attempt: task.attempt,
        at,
        outcome,
    }
}
