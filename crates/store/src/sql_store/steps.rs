//! `StepStore`: the outcomes of tasks' durable steps.

use async_trait::async_trait;
use serde_json::Value;
use switchyard_core::step::{Step, StepDraft, StepOutcome, StepRecord, StepStatus};
use switchyard_core::store::StepStore;
use switchyard_core::task::TaskStatus;
use switchyard_core::{Error, Result, TaskId};

use super::SqlStore;
use crate::dialect::Dialect;
use crate::query::Query;
use crate::rows::{Col, db_err};
use crate::sql::sql;

#[async_trait]
impl<D: Dialect> StepStore for SqlStore<D> {
    async fn record_step(&self, draft: &StepDraft, max_steps: u32) -> Result<StepRecord> {
        let mut tx = self.begin_flushed().await?;
        let task = Query::new(sql!("common", "step_task_state"))
            .bind(draft.task_id.0)
            .fetch_optional(tx.on())
            .await
            .map_err(db_err("read task for step"))?;
        let running = match task {
            Some(row) => {
                row.parsed::<TaskStatus>("status")? == TaskStatus::Running
                    && row.u32("attempt")? == draft.attempt
            }
            None => false,
        };
        if !running {
            return Ok(StepRecord::LeaseLost);
        }
        let census = Query::new(sql!("common", "step_census"))
            .bind(draft.task_id.0)
            .bind(&draft.name)
            .fetch_one(tx.on())
            .await
            .map_err(db_err("count steps"))?;
        let steps = census.i64("steps")?;
        match census.opt_string("existing")?.as_deref() {
            Some("succeeded") => return Ok(StepRecord::Kept),
            None if steps >= i64::from(max_steps) => return Ok(StepRecord::TooMany),
            _ => {}
        }
        let (status, output, error) = match &draft.outcome {
            StepOutcome::Succeeded(output) => (
                StepStatus::Succeeded,
                crate::content::escape_value(output).into_owned(),
                Value::Null,
            ),
            StepOutcome::Failed(error) => (
                StepStatus::Failed,
                Value::Null,
                serde_json::to_value(crate::content::escape_error(error))
                    .map_err(|e| Error::internal("encode step error", e))?,
            ),
        };
        Query::new(sql!("common", "upsert_step"))
            .bind(draft.task_id.0)
            .bind(&draft.name)
            .bind(steps)
            .bind(status.as_str())
            .bind(i64::from(draft.attempt))
            .bind(output)
            .bind(error)
            .bind(draft.started_at.millis())
            .bind(draft.finished_at.millis())
            .execute(tx.on())
            .await
            .map_err(db_err("record step"))?;
        self.commit_flushed(tx, "commit step").await?;
        Ok(StepRecord::Recorded)
    }

    async fn task_steps(&self, id: TaskId) -> Result<Vec<Step>> {
        let rows = Query::new(sql!("common", "task_steps"))
            .bind(id.0)
            .fetch_all(self.fresh_reader())
            .await
            .map_err(db_err("list steps"))?;
        rows.iter().map(|r| step(r, r.string("name")?)).collect()
    }

    async fn succeeded_steps(&self, id: TaskId) -> Result<Vec<(String, Value)>> {
        let rows = Query::new(sql!("common", "succeeded_steps"))
            .bind(id.0)
            .fetch_all(self.fresh_reader())
            .await
            .map_err(db_err("read succeeded steps"))?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.string("name")?,
                    r.opt_content("output")?.unwrap_or(Value::Null),
                ))
            })
            .collect()
    }
}

/// A row of `task_steps` (status, attempt, output, error, started_at, finished_at).
pub(super) fn step<R: Col>(r: &R, name: String) -> Result<Step> {
    let status: StepStatus = r.parsed("status")?;
    let (output, error) = match status {
        StepStatus::Succeeded => (Some(r.opt_content("output")?.unwrap_or(Value::Null)), None),
        StepStatus::Failed => (None, r.opt_error("error")?),
    };
    Ok(Step {
        name,
        status,
        attempt: r.u32("attempt")?,
        output,
        error,
        started_at: r.ts("started_at")?,
        finished_at: r.ts("finished_at")?,
    })
}
