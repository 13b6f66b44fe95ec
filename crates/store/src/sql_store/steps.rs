//! `StepStore`: the outcomes of tasks' durable steps.

use async_trait::async_trait;
use serde_json::Value;
use switchyard_core::step::{Step, StepDraft, StepRecord, StepStatus};
use switchyard_core::store::StepStore;
use switchyard_core::task::TaskStatus;
use switchyard_core::{Error, Result, TaskId};

use super::{SqlStore, Tx};
use crate::dialect::{Dialect, On};
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
        write_step(&mut tx, draft.task_id, &draft.to_step()).await?;
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

/// Writes a step: a new one, or the next run of a failed one (a succeeded step is never
/// replaced).
pub(super) async fn write_step<D: Dialect>(
    tx: &mut Tx<D>,
    task: TaskId,
    step: &Step,
) -> Result<()> {
    let output = step.output.as_ref().map_or(Value::Null, |v| {
        crate::content::escape_value(v).into_owned()
    });
    let error = match &step.error {
        Some(e) => serde_json::to_value(crate::content::escape_error(e))
            .map_err(|e| Error::internal("encode step error", e))?,
        None => Value::Null,
    };
    Query::new(sql!("common", "upsert_step"))
        .bind(task.0)
        .bind(&step.name)
        .bind(step.status.as_str())
        .bind(i64::from(step.attempt))
        .bind(output)
        .bind(error)
        .bind(step.started_at.millis())
        .bind(step.finished_at.millis())
        .execute(tx.on())
        .await
        .map_err(db_err("record step"))?;
    Ok(())
}

/// The step named `name` of `task`, if recorded.
pub(super) async fn read_step<D: Dialect>(
    on: On<'_, D>,
    task: TaskId,
    name: &str,
) -> Result<Option<Step>> {
    Query::new(sql!("common", "get_step"))
        .bind(task.0)
        .bind(name)
        .fetch_optional(on)
        .await
        .map_err(db_err("read step"))?
        .map(|r| step(&r, name.to_owned()))
        .transpose()
}
