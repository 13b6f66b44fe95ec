//! `ScheduleStore`: cron schedules, and the tasks they fired.

use async_trait::async_trait;
use switchyard_core::schedule::{Schedule, ScheduleRun, ScheduleSpec, ScheduleStore};
use switchyard_core::{Error, ErrorCode, Result, TaskId, Timestamp};

use super::SqlStore;
use crate::content::escape_value;
use crate::dialect::Dialect;
use crate::query::{Param, Query};
use crate::rows::{Col, corrupt, db_err};
use crate::sql::sql;

fn spec_json(spec: &ScheduleSpec) -> Result<Param<'static>> {
    let value = serde_json::to_value(spec).map_err(|e| Error::internal("encode schedule", e))?;
    Ok(Param::Json(escape_value(&value).into_owned()))
}

fn schedule<R: Col>(r: &R) -> Result<Schedule> {
    let spec: ScheduleSpec =
        serde_json::from_value(r.content("spec")?).map_err(|e| corrupt("spec", e))?;
    Ok(Schedule {
        spec,
        owner_id: r.opt_uuid("owner_id")?.map(Into::into),
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        next_at: r.opt_ts("next_at")?,
    })
}

#[async_trait]
impl<D: Dialect> ScheduleStore for SqlStore<D> {
    async fn create_schedule(&self, s: &Schedule) -> Result<()> {
        let mut tx = self.begin_write(true).await?;
        let inserted = Query::new(sql!("common", "create_schedule"))
            .bind(s.spec.name.as_str())
            .bind(spec_json(&s.spec)?)
            .bind(s.owner_id.map(|u| u.0))
            .bind(s.created_at.millis())
            .bind(s.updated_at.millis())
            .bind(s.next_at.map(|t| t.millis()))
            .execute(tx.on())
            .await
            .map_err(db_err("create schedule"))?;
        tx.commit().await.map_err(db_err("commit schedule"))?;
        if inserted == 0 {
            return Err(Error::new(
                ErrorCode::ScheduleExists,
                format!("a schedule named {:?} exists", s.spec.name),
            ));
        }
        Ok(())
    }

    async fn replace_schedule(&self, s: &Schedule) -> Result<bool> {
        let mut tx = self.begin_write(true).await?;
        let updated = Query::new(sql!("common", "replace_schedule"))
            .bind(s.spec.name.as_str())
            .bind(spec_json(&s.spec)?)
            .bind(s.owner_id.map(|u| u.0))
            .bind(s.updated_at.millis())
            .bind(s.next_at.map(|t| t.millis()))
            .execute(tx.on())
            .await
            .map_err(db_err("replace schedule"))?;
        tx.commit().await.map_err(db_err("commit schedule"))?;
        Ok(updated > 0)
    }

    async fn delete_schedule(&self, name: &str) -> Result<bool> {
        let mut tx = self.begin_write(true).await?;
        let deleted = Query::new(sql!("common", "delete_schedule"))
            .bind(name)
            .execute(tx.on())
            .await
            .map_err(db_err("delete schedule"))?;
        tx.commit().await.map_err(db_err("commit schedule"))?;
        Ok(deleted > 0)
    }

    async fn get_schedule(&self, name: &str) -> Result<Option<Schedule>> {
        let row = Query::new(sql!("common", "get_schedule"))
            .bind(name)
            .fetch_optional(self.fresh_reader())
            .await
            .map_err(db_err("get schedule"))?;
        row.as_ref().map(schedule).transpose()
    }

    async fn list_schedules(&self) -> Result<Vec<Schedule>> {
        let rows = Query::new(sql!("common", "list_schedules"))
            .fetch_all(self.fresh_reader())
            .await
            .map_err(db_err("list schedules"))?;
        rows.iter().map(schedule).collect()
    }

    async fn due_schedules(&self, now: Timestamp, limit: u32) -> Result<Vec<Schedule>> {
        let rows = Query::new(sql!("common", "due_schedules"))
            .bind(now.millis())
            .bind(i64::from(limit))
            .fetch_all(self.fresh_reader())
            .await
            .map_err(db_err("due schedules"))?;
        rows.iter().map(schedule).collect()
    }

    async fn next_schedule_at(&self) -> Result<Option<Timestamp>> {
        let row = Query::new(sql!("common", "next_schedule_at"))
            .fetch_one(self.fresh_reader())
            .await
            .map_err(db_err("next schedule"))?;
        Ok(row.opt_i64_at(0)?.map(Timestamp::from_millis))
    }

    async fn advance_schedule(
        &self,
        name: &str,
        from: Timestamp,
        to: Option<Timestamp>,
    ) -> Result<bool> {
        let mut tx = self.begin_write(true).await?;
        let moved = Query::new(sql!("common", "advance_schedule"))
            .bind(name)
            .bind(from.millis())
            .bind(to.map(|t| t.millis()))
            .execute(tx.on())
            .await
            .map_err(db_err("advance schedule"))?;
        tx.commit().await.map_err(db_err("commit schedule"))?;
        Ok(moved > 0)
    }

    async fn schedule_runs(&self, name: &str, limit: u32) -> Result<Vec<ScheduleRun>> {
        let rows = Query::new(sql!("common", "schedule_runs"))
            .bind(name)
            .bind(i64::from(limit))
            .fetch_all(self.fresh_reader())
            .await
            .map_err(db_err("schedule runs"))?;
        rows.iter()
            .map(|r| {
                Ok(ScheduleRun {
                    task_id: TaskId(r.uuid("id")?),
                    scheduled_for: r.ts("scheduled_for")?,
                    fired_at: r.ts("created_at")?,
                    status: r.parsed("status")?,
                })
            })
            .collect()
    }

    async fn unfinished_schedule_tasks(&self, name: &str) -> Result<Vec<TaskId>> {
        let rows = Query::new(sql!("common", "unfinished_schedule_tasks"))
            .bind(name)
            .fetch_all(self.fresh_reader())
            .await
            .map_err(db_err("unfinished schedule tasks"))?;
        rows.iter().map(|r| Ok(TaskId(r.uuid("id")?))).collect()
    }
}
