//! `AuditStore`: the audit log. Inserts, filtered pages and the retention prune; there is
//! no statement that changes an entry.
//!
//! Free text (the actor's name, the key's name, the target's id, the reason) is stored
//! escaped like task content (`content.rs`), so that any text a caller records — U+0000
//! included — reads back the same on both backends; filters on it are escaped the same
//! way.

use async_trait::async_trait;
use switchyard_core::audit::{
    ActionFilter, Actor, AuditAction, AuditEntry, AuditOutcome, AuditQuery, AuditStore, Target,
    TargetKind,
};
use switchyard_core::{AuditId, Result, Timestamp};
use uuid::Uuid;

use super::SqlStore;
use crate::content::{escape_str, escape_value, unescape_str};
use crate::dialect::Dialect;
use crate::query::{Param, Query};
use crate::rows::{Col, corrupt, db_err};
use crate::sql::sql;

const COLUMNS: &str = "id, at, actor, actor_user_id, actor_key_id, actor_key_name, action, \
                       target_kind, target_id, outcome, reason, request_id, client_addr, detail";

fn escaped(s: Option<&str>) -> Param<'static> {
    Param::OptText(s.map(|s| escape_str(s).into_owned().into()))
}

fn text<R: Col>(r: &R, col: &str) -> Result<Option<String>> {
    Ok(r.opt_string(col)?.map(|s| unescape_str(&s).into_owned()))
}

fn entry<R: Col>(r: &R) -> Result<AuditEntry> {
    let action = r.string("action")?;
    let outcome = r.string("outcome")?;
    let target = match (r.opt_string("target_kind")?, text(r, "target_id")?) {
        (Some(kind), Some(id)) => Some(Target {
            kind: TargetKind::parse(&kind).ok_or_else(|| corrupt("target_kind", &kind))?,
            id,
        }),
        _ => None,
    };
    Ok(AuditEntry {
        id: AuditId(r.uuid("id")?),
        at: r.ts("at")?,
        actor: Actor {
            name: text(r, "actor")?.unwrap_or_default(),
            user_id: r.opt_uuid("actor_user_id")?.map(Into::into),
            api_key_id: r.opt_uuid("actor_key_id")?.map(Into::into),
            api_key_name: text(r, "actor_key_name")?,
        },
        action: AuditAction::parse(&action).ok_or_else(|| corrupt("action", &action))?,
        target,
        outcome: AuditOutcome::parse(&outcome).ok_or_else(|| corrupt("outcome", &outcome))?,
        reason: text(r, "reason")?,
        request_id: text(r, "request_id")?,
        client_addr: text(r, "client_addr")?,
        detail: r.opt_content("detail")?,
    })
}

#[async_trait]
impl<D: Dialect> AuditStore for SqlStore<D> {
    async fn insert_audit(&self, e: &AuditEntry) -> Result<()> {
        let mut tx = self.begin_write(true).await?;
        Query::new(sql!("common", "insert_audit"))
            .bind(e.id.0)
            .bind(e.at.millis())
            .bind(escaped(Some(&e.actor.name)))
            .bind(e.actor.user_id.map(|u| u.0))
            .bind(e.actor.api_key_id.map(|k| k.0))
            .bind(escaped(e.actor.api_key_name.as_deref()))
            .bind(e.action.as_str())
            .bind(e.target.as_ref().map(|t| t.kind.as_str()))
            .bind(escaped(e.target.as_ref().map(|t| t.id.as_str())))
            .bind(e.outcome.as_str())
            .bind(escaped(e.reason.as_deref()))
            .bind(escaped(e.request_id.as_deref()))
            .bind(escaped(e.client_addr.as_deref()))
            .bind(Param::OptJson(
                e.detail.as_ref().map(|d| escape_value(d).into_owned()),
            ))
            .execute(tx.on())
            .await
            .map_err(db_err("record an audit entry"))?;
        tx.commit().await.map_err(db_err("commit an audit entry"))?;
        Ok(())
    }

    async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let mut query = Query::new("SELECT ");
        query.push(COLUMNS).push(" FROM audit_log WHERE true");
        if let Some(actor) = &q.actor {
            match Uuid::parse_str(actor) {
                Ok(id) => {
                    query.push(" AND (actor_user_id = ").push_bind(id);
                    query.push(" OR actor_key_id = ").push_bind(id).push(")");
                }
                Err(_) => {
                    query
                        .push(" AND actor = ")
                        .push_bind(escape_str(actor).into_owned());
                }
            }
        }
        match &q.action {
            Some(ActionFilter::Exact(action)) => {
                query.push(" AND action = ").push_bind(action.as_str());
            }
            // The actions of a family, listed: exact matches on the index, and no LIKE
            // pattern to escape (`_` is in names).
            Some(ActionFilter::Prefix(prefix)) => {
                query.push(" AND action IN ");
                query.push_list(
                    AuditAction::ALL
                        .iter()
                        .map(|a| a.as_str())
                        .filter(|name| name.starts_with(prefix.as_str())),
                );
            }
            None => {}
        }
        if let Some(target) = &q.target {
            query
                .push(" AND target_kind = ")
                .push_bind(target.kind.as_str());
            if let Some(id) = &target.id {
                query
                    .push(" AND target_id = ")
                    .push_bind(escape_str(id).into_owned());
            }
        }
        if let Some(since) = q.since {
            query.push(" AND at >= ").push_bind(since.millis());
        }
        if let Some(until) = q.until {
            query.push(" AND at < ").push_bind(until.millis());
        }
        if let Some(after) = q.after {
            // Older than the cursor's entry, or as old with a smaller id. A cursor whose
            // entry is gone (pruned) matches nothing.
            query
                .push(" AND (at, id) < (SELECT at, id FROM audit_log WHERE id = ")
                .push_bind(after.0)
                .push(")");
        }
        query
            .push(" ORDER BY at DESC, id DESC LIMIT ")
            .push_bind(i64::from(q.limit.max(1)));
        let rows = query
            .fetch_all(self.fresh_reader())
            .await
            .map_err(db_err("list audit entries"))?;
        rows.iter().map(entry).collect()
    }

    async fn prune_audit(&self, before: Timestamp) -> Result<u64> {
        let mut tx = self.begin_write(true).await?;
        let deleted = Query::new(sql!("common", "prune_audit"))
            .bind(before.millis())
            .execute(tx.on())
            .await
            .map_err(db_err("prune the audit log"))?;
        tx.commit()
            .await
            .map_err(db_err("commit the audit prune"))?;
        Ok(deleted)
    }
}
