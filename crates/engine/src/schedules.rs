//! Schedules: the service behind `/api/v1/schedules`, and the scheduler loop that fires
//! their ticks.
//!
//! Every server with cluster duties runs the loop. A tick fires at most once however
//! many do: its task's idempotency key is `schedule:{name}:{tick}`, so a second server
//! (or a retry after a crash between the submission and the schedule's update) gets the
//! same task; the schedule then moves on by compare-and-set. A tick is submitted before
//! the schedule moves past it, so a crash in between never loses it.

use std::sync::Arc;
use std::time::Duration;

use switchyard_core::auth::{Permission, Principal};
use switchyard_core::schedule::{
    Overlap, Schedule, ScheduleRun, ScheduleSpec, Timetable, tick_key,
};
use switchyard_core::store::{Store, Submitted};
use switchyard_core::{Error, ErrorCode, Result, TaskId, Timestamp};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::agents::AgentRegistry;
use crate::tasks::{SubmitRequest, TaskService};

/// Fire times shown with a schedule.
pub const NEXT_RUNS: usize = 5;
/// Fired tasks shown with a schedule.
pub const LAST_RUNS: u32 = 10;
/// Schedules one pass of the loop fires at most (the rest in the next pass).
const DUE_PER_PASS: u32 = 100;
/// The longest the loop sleeps without looking at the database (another server may
/// have created or changed a schedule).
const IDLE_LOOK: Duration = Duration::from_millis(1_000);

/// A schedule as shown: with its next fire times and its latest tasks.
#[derive(Clone, Debug)]
pub struct ScheduleDetail {
    pub schedule: Schedule,
    pub next_runs: Vec<Timestamp>,
    pub last_runs: Vec<ScheduleRun>,
}

#[derive(Clone)]
pub struct ScheduleService {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) tasks: TaskService,
    pub(crate) agents: Arc<AgentRegistry>,
    /// Wakes this server's scheduler when a schedule changed here.
    pub(crate) changed: Arc<Notify>,
}

fn not_found(name: &str) -> Error {
    Error::new(
        ErrorCode::ScheduleNotFound,
        format!("no schedule named {name:?}"),
    )
}

impl ScheduleService {
    /// The next fire times of a cron expression (for the form's helper).
    pub fn preview(
        &self,
        principal: &Principal,
        cron: &str,
        timezone: &str,
    ) -> Result<Vec<Timestamp>> {
        principal.require(Permission::ReadSystem)?;
        Ok(Timetable::new(cron, timezone)?.upcoming(Timestamp::now(), NEXT_RUNS))
    }

    async fn checked(&self, spec: &ScheduleSpec) -> Result<Timetable> {
        let table = spec.validate()?;
        if self.agents.get(&spec.agent).await?.is_none() {
            return Err(Error::new(
                ErrorCode::UnknownAgent,
                format!("agent {:?} is not registered", spec.agent),
            ));
        }
        Ok(table)
    }

    fn next_at(table: &Timetable, spec: &ScheduleSpec, now: Timestamp) -> Option<Timestamp> {
        (!spec.paused).then(|| table.next_after(now)).flatten()
    }

    pub async fn create(
        &self,
        principal: &Principal,
        spec: ScheduleSpec,
    ) -> Result<ScheduleDetail> {
        principal.require(Permission::ManageAgents)?;
        let table = self.checked(&spec).await?;
        let now = Timestamp::now();
        let schedule = Schedule {
            next_at: Self::next_at(&table, &spec, now),
            spec,
            owner_id: Some(principal.user_id),
            created_at: now,
            updated_at: now,
        };
        self.store.create_schedule(&schedule).await?;
        self.changed.notify_one();
        self.detail(schedule).await
    }

    /// Replaces a schedule (its fire times start over from now).
    pub async fn replace(
        &self,
        principal: &Principal,
        name: &str,
        mut spec: ScheduleSpec,
    ) -> Result<ScheduleDetail> {
        principal.require(Permission::ManageAgents)?;
        if spec.name.is_empty() {
            spec.name = name.to_owned();
        } else if spec.name != name {
            return Err(Error::new(
                ErrorCode::InvalidSchedule,
                format!(
                    "the body names schedule {:?} but the path {name:?}; a schedule cannot be renamed",
                    spec.name
                ),
            ));
        }
        let table = self.checked(&spec).await?;
        let old = self
            .store
            .get_schedule(name)
            .await?
            .ok_or_else(|| not_found(name))?;
        let now = Timestamp::now();
        // A running schedule whose timetable did not change keeps the tick it waits for.
        let unchanged = !spec.paused
            && old.next_at.is_some()
            && (old.spec.cron.as_str(), old.spec.timezone.as_str())
                == (spec.cron.as_str(), spec.timezone.as_str());
        let schedule = Schedule {
            next_at: if unchanged {
                old.next_at
            } else {
                Self::next_at(&table, &spec, now)
            },
            spec,
            owner_id: Some(principal.user_id),
            created_at: old.created_at,
            updated_at: now,
        };
        if !self.store.replace_schedule(&schedule).await? {
            return Err(not_found(name));
        }
        self.changed.notify_one();
        self.detail(schedule).await
    }

    pub async fn delete(&self, principal: &Principal, name: &str) -> Result<()> {
        principal.require(Permission::ManageAgents)?;
        if !self.store.delete_schedule(name).await? {
            return Err(not_found(name));
        }
        Ok(())
    }

    pub async fn get(&self, principal: &Principal, name: &str) -> Result<ScheduleDetail> {
        principal.require(Permission::ReadSystem)?;
        let schedule = self
            .store
            .get_schedule(name)
            .await?
            .ok_or_else(|| not_found(name))?;
        self.detail(schedule).await
    }

    pub async fn list(&self, principal: &Principal) -> Result<Vec<ScheduleDetail>> {
        principal.require(Permission::ReadSystem)?;
        let mut out = Vec::new();
        for schedule in self.store.list_schedules().await? {
            out.push(self.detail(schedule).await?);
        }
        Ok(out)
    }

    /// Fires the schedule's task now, whatever its timetable (and even when paused).
    pub async fn trigger(&self, principal: &Principal, name: &str) -> Result<(TaskId, Timestamp)> {
        principal.require(Permission::ManageAgents)?;
        let schedule = self
            .store
            .get_schedule(name)
            .await?
            .ok_or_else(|| not_found(name))?;
        let now = Timestamp::now();
        let task = self.submit(&schedule, now, None).await?;
        Ok((task, now))
    }

    async fn detail(&self, schedule: Schedule) -> Result<ScheduleDetail> {
        let next_runs = match (
            schedule.next_at,
            Timetable::new(&schedule.spec.cron, &schedule.spec.timezone),
        ) {
            (Some(first), Ok(table)) => {
                let mut runs = vec![first];
                runs.extend(table.upcoming(first, NEXT_RUNS - 1));
                runs
            }
            _ => Vec::new(),
        };
        let last_runs = self
            .store
            .schedule_runs(&schedule.spec.name, LAST_RUNS)
            .await?;
        Ok(ScheduleDetail {
            schedule,
            next_runs,
            last_runs,
        })
    }

    /// Submits the schedule's task for `tick`, as the schedule's owner; once per tick
    /// when `key` is given.
    async fn submit(
        &self,
        schedule: &Schedule,
        tick: Timestamp,
        key: Option<String>,
    ) -> Result<TaskId> {
        let req = SubmitRequest {
            agent: schedule.spec.agent.clone(),
            input: schedule.spec.input.clone(),
            idempotency_key: key,
            schedule: Some((schedule.spec.name.clone(), tick)),
            ..SubmitRequest::default()
        };
        match self.tasks.submit_for(schedule.owner_id, req).await? {
            Submitted::Created(t) | Submitted::Existing(t) => Ok(t.id),
        }
    }

    /// Fires every schedule due at `now` (the scheduler's pass; tests call it with
    /// their own clock). Returns how many tasks it submitted.
    pub async fn fire_due(&self, now: Timestamp) -> Result<usize> {
        let mut fired = 0;
        for schedule in self.store.due_schedules(now, DUE_PER_PASS).await? {
            fired += self.fire(&schedule, now).await;
        }
        Ok(fired)
    }

    async fn fire(&self, schedule: &Schedule, now: Timestamp) -> usize {
        let name = &schedule.spec.name;
        let Some(due) = schedule.next_at else {
            return 0;
        };
        let table = match Timetable::new(&schedule.spec.cron, &schedule.spec.timezone) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(schedule = %name, error = %e, "schedule no longer valid; pausing it");
                let _ = self.store.advance_schedule(name, due, None).await;
                return 0;
            }
        };
        let plan = table.plan(due, now, schedule.spec.catchup);
        let mut fired = 0;
        for tick in plan.fire {
            match self.fire_tick(schedule, tick).await {
                Ok(true) => fired += 1,
                Ok(false) => {}
                Err(e) if e.code == ErrorCode::Internal || e.code == ErrorCode::Unavailable => {
                    // Try the tick again in the next pass.
                    tracing::warn!(schedule = %name, error = %e, "could not fire a tick; trying again");
                    return fired;
                }
                Err(e) => {
                    tracing::warn!(schedule = %name, tick = %tick.to_rfc3339(), error = %e, "the schedule's task was refused; skipping the tick");
                }
            }
        }
        if let Err(e) = self.store.advance_schedule(name, due, plan.next).await {
            tracing::warn!(schedule = %name, error = %e, "could not move the schedule on");
        }
        fired
    }

    /// One tick under the schedule's overlap rule; whether a task was submitted.
    async fn fire_tick(&self, schedule: &Schedule, tick: Timestamp) -> Result<bool> {
        let name = &schedule.spec.name;
        let key = tick_key(name, tick);
        if schedule.spec.overlap != Overlap::Allow {
            let unfinished = self.store.unfinished_schedule_tasks(name).await?;
            // The tick's own task (fired by another server a moment ago) is no overlap.
            let mine = self.store_task_for_key(schedule, &key).await?;
            let others: Vec<TaskId> = unfinished
                .into_iter()
                .filter(|id| Some(*id) != mine)
                .collect();
            if !others.is_empty() {
                if schedule.spec.overlap == Overlap::Skip {
                    tracing::info!(schedule = %name, tick = %tick.to_rfc3339(), "previous run unfinished; tick skipped");
                    return Ok(false);
                }
                for id in others {
                    self.tasks.cancel_for_schedule(id).await?;
                }
            }
        }
        self.submit(schedule, tick, Some(key)).await?;
        Ok(true)
    }

    async fn store_task_for_key(&self, schedule: &Schedule, key: &str) -> Result<Option<TaskId>> {
        let runs = self.store.schedule_runs(&schedule.spec.name, 1).await?;
        Ok(runs
            .first()
            .filter(|r| tick_key(&schedule.spec.name, r.scheduled_for) == key)
            .map(|r| r.task_id))
    }

    /// The scheduler loop: fires due ticks, sleeping until the next one (looking again
    /// at least every second, and at once when a schedule changed on this server).
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let now = Timestamp::now();
            if let Err(e) = self.fire_due(now).await {
                tracing::warn!(error = %e, "could not fire due schedules");
            }
            let wait = match self.store.next_schedule_at().await {
                Ok(Some(at)) => Duration::from_millis(at.since(Timestamp::now())).min(IDLE_LOOK),
                Ok(None) => IDLE_LOOK,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the next schedule");
                    IDLE_LOOK
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.changed.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
