//! Schedules: an agent's task submitted on a cron timetable in a time zone.
//!
//! A schedule's ticks are the instants its cron expression names in its time zone,
//! correct across daylight-saving changes (a time skipped in spring fires at the first
//! instant after the gap, a time repeated in autumn fires once; an hourly schedule fires
//! every hour of the long autumn day). Each tick fires at most once across a cluster:
//! the task it submits has the idempotency key `schedule:{name}:{tick}`, and the
//! schedule's next tick moves on by compare-and-set.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{Error, ErrorCode, Result};
use crate::ids::{TaskId, UserId};
use crate::task::TaskStatus;
use crate::time::Timestamp;

/// What a tick does while the schedule's previous task is still unfinished.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Fire anyway.
    #[default]
    Allow,
    /// Fire nothing for this tick.
    Skip,
    /// Cancel the unfinished tasks, then fire.
    CancelPrevious,
}

/// What happens to ticks missed while no server ran. (A paused schedule resumes from its
/// next tick: the ticks of the pause never fire.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Catchup {
    /// Missed ticks fire nothing; the schedule goes on from the next one.
    #[default]
    None,
    /// The latest missed tick fires once.
    Latest,
    /// Every missed tick fires (at most [`MAX_CATCHUP`] of them).
    All,
}

/// The most missed ticks `catchup: all` fires at once.
pub const MAX_CATCHUP: usize = 1_000;
/// A tick this late (or less) is on time, not missed.
pub const ON_TIME_MS: u64 = 5_000;

/// A schedule as created or replaced (`POST /api/v1/schedules`, `PUT …/{name}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Unique name: 1–64 of `a-z 0-9 _ - .`, starting with a letter or digit. May be
    /// omitted in a `PUT` (the path names it).
    #[serde(default)]
    pub name: String,
    /// The agent whose task each tick submits.
    pub agent: String,
    /// The task input.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub input: Value,
    /// Five fields (minute hour day-of-month month day-of-week), or six with seconds
    /// first (`*/2 * * * * *` is every two seconds).
    pub cron: String,
    /// An IANA time zone (`Europe/Berlin`); the cron fields are read in it.
    #[serde(default = "utc")]
    pub timezone: String,
    #[serde(default)]
    pub overlap: Overlap,
    #[serde(default)]
    pub catchup: Catchup,
    #[serde(default)]
    pub paused: bool,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

fn utc() -> String {
    "UTC".into()
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidSchedule, message)
}

impl ScheduleSpec {
    /// Checks the name, cron expression and time zone; returns the timetable.
    pub fn validate(&self) -> Result<Timetable> {
        crate::agent::validate_name(&self.name)
            .map_err(|_| invalid(format!(
                "invalid schedule name {:?}: use 1-64 characters of a-z, 0-9, '_', '-', '.', starting with a letter or digit",
                self.name
            )))?;
        if self.name == "preview" {
            return Err(invalid(
                "\"preview\" is reserved (GET /api/v1/schedules/preview); choose another name",
            ));
        }
        crate::agent::validate_name(&self.agent)?;
        if let Ok(tree) = serde_json::to_value(self) {
            crate::text::refuse_nul_in(&tree, &["/input"])?;
        }
        Timetable::new(&self.cron, &self.timezone)
    }
}

/// A parsed cron expression in a time zone.
#[derive(Clone, Debug)]
pub struct Timetable {
    cron: Cron,
    tz: Tz,
}

impl Timetable {
    pub fn new(cron: &str, timezone: &str) -> Result<Self> {
        let fields = cron.split_whitespace().count();
        if !(fields == 5 || fields == 6) || cron.len() > 256 {
            return Err(invalid(format!(
                "cron must have 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, got {cron:?}"
            )));
        }
        let parsed = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(cron)
            .map_err(|e| invalid(format!("cron {cron:?} is not valid: {e}")))?;
        let tz = Tz::from_str(timezone).map_err(|_| {
            invalid(format!(
                "timezone {timezone:?} is not an IANA time zone name such as \"UTC\" or \"Europe/Berlin\""
            ))
        })?;
        let table = Timetable { cron: parsed, tz };
        if table.next_after(Timestamp::now()).is_none() {
            return Err(invalid(format!("cron {cron:?} never fires")));
        }
        Ok(table)
    }

    /// The first tick strictly after `after`.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let at = Utc.timestamp_millis_opt(after.millis()).single()?;
        let local = at.with_timezone(&self.tz);
        let next = self.cron.find_next_occurrence(&local, false).ok()?;
        Some(Timestamp::from_millis(next.timestamp_millis()))
    }

    /// The last tick at or before `at`.
    fn at_or_before(&self, at: Timestamp) -> Option<Timestamp> {
        let local = Utc
            .timestamp_millis_opt(at.millis())
            .single()?
            .with_timezone(&self.tz);
        let prev = self.cron.find_previous_occurrence(&local, true).ok()?;
        Some(Timestamp::from_millis(prev.timestamp_millis()))
    }

    /// The next `n` ticks after `after`.
    pub fn upcoming(&self, after: Timestamp, n: usize) -> Vec<Timestamp> {
        let mut out = Vec::with_capacity(n);
        let mut at = after;
        while out.len() < n {
            match self.next_after(at) {
                Some(t) => {
                    out.push(t);
                    at = t;
                }
                None => break,
            }
        }
        out
    }

    /// What to fire when the tick `due` has come at `now`: the ticks to submit (oldest
    /// first) and the next tick to wait for. Ticks later than [`ON_TIME_MS`] are
    /// missed and follow `catchup`.
    pub fn plan(&self, due: Timestamp, now: Timestamp, catchup: Catchup) -> Plan {
        let mut on_time = Vec::new();
        let mut missed = Vec::new();
        let mut walked = 0;
        let mut tick = Some(due);
        while let Some(t) = tick {
            if t > now {
                break;
            }
            if now.since(t) <= ON_TIME_MS {
                on_time.push(t);
            } else if catchup == Catchup::All {
                missed.push(t);
            } else {
                missed = vec![t];
            }
            walked += 1;
            tick = self.next_after(t);
            let behind = now.minus_ms(ON_TIME_MS + 1);
            if walked >= MAX_CATCHUP && tick.is_some_and(|n| n <= behind) {
                // Far behind: the ticks up to `behind` are all missed; jump over them.
                if catchup != Catchup::All {
                    missed = self.at_or_before(behind).into_iter().collect();
                }
                tick = self.next_after(behind);
            }
        }
        let fire = match catchup {
            Catchup::None => Vec::new(),
            Catchup::Latest | Catchup::All => missed,
        }
        .into_iter()
        .chain(on_time)
        .collect();
        Plan { fire, next: tick }
    }
}

/// What a due schedule does now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Ticks to fire, oldest first.
    pub fire: Vec<Timestamp>,
    /// The next tick after them.
    pub next: Option<Timestamp>,
}

/// A stored schedule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Schedule {
    pub spec: ScheduleSpec,
    /// Tasks it fires are owned by this user (who created or last replaced it).
    pub owner_id: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The tick it waits for (none while paused or when it never fires again).
    pub next_at: Option<Timestamp>,
}

/// A task a schedule fired.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ScheduleRun {
    pub task_id: TaskId,
    pub scheduled_for: Timestamp,
    pub fired_at: Timestamp,
    pub status: TaskStatus,
}

/// The idempotency key of a schedule's task for one tick (`trigger` uses the trigger
/// time): a tick submitted twice (two servers, a retry after a crash) is one task.
pub fn tick_key(name: &str, tick: Timestamp) -> String {
    format!("schedule:{name}:{}", tick.millis())
}

#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Inserts a new schedule (`schedule_exists` if the name is taken).
    async fn create_schedule(&self, schedule: &Schedule) -> Result<()>;
    /// Replaces a schedule; false if there is none of that name.
    async fn replace_schedule(&self, schedule: &Schedule) -> Result<bool>;
    async fn delete_schedule(&self, name: &str) -> Result<bool>;
    async fn get_schedule(&self, name: &str) -> Result<Option<Schedule>>;
    async fn list_schedules(&self) -> Result<Vec<Schedule>>;
    /// Unpaused schedules whose next tick is at or before `now` (at most `limit`).
    async fn due_schedules(&self, now: Timestamp, limit: u32) -> Result<Vec<Schedule>>;
    /// The earliest next tick of any unpaused schedule.
    async fn next_schedule_at(&self) -> Result<Option<Timestamp>>;
    /// Moves the schedule's next tick from `from` to `to`; false if another server
    /// moved it first (or the schedule changed).
    async fn advance_schedule(
        &self,
        name: &str,
        from: Timestamp,
        to: Option<Timestamp>,
    ) -> Result<bool>;
    /// The latest tasks the schedule fired, newest first.
    async fn schedule_runs(&self, name: &str, limit: u32) -> Result<Vec<ScheduleRun>>;
    /// The schedule's tasks that have not finished.
    async fn unfinished_schedule_tasks(&self, name: &str) -> Result<Vec<TaskId>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Timestamp {
        Timestamp::from_millis(
            tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
                .earliest()
                .unwrap()
                .timestamp_millis(),
        )
    }

    fn utc_at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Timestamp {
        at(Tz::UTC, y, mo, d, h, mi)
    }

    #[test]
    fn a_daily_berlin_schedule_is_right_across_both_daylight_saving_changes() {
        let t = Timetable::new("30 2 * * *", "Europe/Berlin").unwrap();
        // Spring 2026: clocks jump from 02:00 to 03:00 on 29 March; 02:30 does not
        // exist that day, so it fires at the first instant after the gap, once.
        let spring = t.upcoming(utc_at(2026, 3, 27, 12, 0), 4);
        assert_eq!(
            spring,
            vec![
                utc_at(2026, 3, 28, 1, 30), // 02:30 CET
                utc_at(2026, 3, 29, 1, 0),  // 03:00 CEST, right after the gap
                utc_at(2026, 3, 30, 0, 30), // 02:30 CEST
                utc_at(2026, 3, 31, 0, 30),
            ]
        );
        // Autumn 2026: 02:00-03:00 happens twice on 25 October; 02:30 fires once.
        let autumn = t.upcoming(utc_at(2026, 10, 23, 12, 0), 4);
        assert_eq!(
            autumn,
            vec![
                utc_at(2026, 10, 24, 0, 30), // 02:30 CEST
                utc_at(2026, 10, 25, 0, 30), // 02:30 CEST, the first of the two
                utc_at(2026, 10, 26, 1, 30), // 02:30 CET
                utc_at(2026, 10, 27, 1, 30),
            ]
        );
        // An hourly schedule fires in both copies of the repeated hour.
        let hourly = Timetable::new("30 * * * *", "Europe/Berlin").unwrap();
        let around = hourly.upcoming(utc_at(2026, 10, 24, 23, 0), 4);
        assert_eq!(
            around,
            vec![
                utc_at(2026, 10, 24, 23, 30),
                utc_at(2026, 10, 25, 0, 30),
                utc_at(2026, 10, 25, 1, 30),
                utc_at(2026, 10, 25, 2, 30),
            ]
        );
    }

    #[test]
    fn seconds_are_optional_and_bad_expressions_are_named() {
        let every2 = Timetable::new("*/2 * * * * *", "UTC").unwrap();
        let start = utc_at(2026, 1, 1, 0, 0).plus_ms(1_000);
        assert_eq!(every2.next_after(start), Some(start.plus_ms(1_000)));
        for (cron, tz) in [
            ("61 * * * *", "UTC"),
            ("* * *", "UTC"),
            ("* * * * * * *", "UTC"),
            ("* * * * *", "Mars/Olympus"),
            ("0 0 31 2 *", "UTC"),
        ] {
            let e = Timetable::new(cron, tz).unwrap_err();
            assert_eq!(
                e.code,
                ErrorCode::InvalidSchedule,
                "{cron} {tz}: {}",
                e.message
            );
        }
    }

    #[test]
    fn missed_ticks_follow_catchup() {
        let t = Timetable::new("0 * * * *", "UTC").unwrap();
        let due = utc_at(2026, 1, 1, 0, 0);
        let now = utc_at(2026, 1, 1, 3, 0).plus_ms(1_000);
        let next = Some(utc_at(2026, 1, 1, 4, 0));
        // 00:00, 01:00 and 02:00 were missed; 03:00 is on time.
        assert_eq!(
            t.plan(due, now, Catchup::None),
            Plan {
                fire: vec![utc_at(2026, 1, 1, 3, 0)],
                next
            }
        );
        assert_eq!(
            t.plan(due, now, Catchup::Latest).fire,
            vec![utc_at(2026, 1, 1, 2, 0), utc_at(2026, 1, 1, 3, 0)]
        );
        assert_eq!(t.plan(due, now, Catchup::All).fire.len(), 4);
        // Nothing due yet: nothing fires.
        let early = t.plan(due, due.minus_ms(10), Catchup::All);
        assert_eq!(early.fire, Vec::<Timestamp>::new());
        assert_eq!(early.next, Some(due));
        // Years behind every second: bounded, and the next tick is in the future.
        let fast = Timetable::new("* * * * * *", "UTC").unwrap();
        let plan = fast.plan(utc_at(2020, 1, 1, 0, 0), now, Catchup::All);
        assert!(plan.fire.len() <= MAX_CATCHUP + 10);
        let latest = fast.plan(utc_at(2020, 1, 1, 0, 0), now, Catchup::Latest);
        // The latest missed tick, then the six within the last five seconds.
        assert_eq!(latest.fire.len(), 1 + 6);
        assert!(latest.fire[0] > now.minus_ms(ON_TIME_MS + 2_000));
        assert!(plan.next.unwrap() > now);
    }
}
