//! A schedule as the API shows it: its definition, owner and times, its next fire times
//! and its latest tasks.

use serde::Serialize;
use serde_json::Value;
use switchyard_core::schedule::{Catchup, Overlap, ScheduleRun};
use switchyard_core::{Timestamp, UserId};
use switchyard_engine::schedules::ScheduleDetail;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
#[schema(as = Schedule)]
pub struct ScheduleView {
    pub name: String,
    pub agent: String,
    #[schema(value_type = Object)]
    pub input: Value,
    pub cron: String,
    pub timezone: String,
    pub overlap: Overlap,
    pub catchup: Catchup,
    pub paused: bool,
    /// The user its tasks are owned by (who created or last replaced it).
    pub owner: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The next fire times (none while paused).
    pub next_runs: Vec<Timestamp>,
    /// The latest tasks it fired, newest first.
    pub last_runs: Vec<ScheduleRun>,
}

impl From<ScheduleDetail> for ScheduleView {
    fn from(d: ScheduleDetail) -> Self {
        let s = d.schedule;
        ScheduleView {
            name: s.spec.name,
            agent: s.spec.agent,
            input: s.spec.input,
            cron: s.spec.cron,
            timezone: s.spec.timezone,
            overlap: s.spec.overlap,
            catchup: s.spec.catchup,
            paused: s.spec.paused,
            owner: s.owner_id,
            created_at: s.created_at,
            updated_at: s.updated_at,
            next_runs: d.next_runs,
            last_runs: d.last_runs,
        }
    }
}
