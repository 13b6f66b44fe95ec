use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use switchyard_core::audit::{ActionFilter, AuditEntry, AuditQuery, MAX_PAGE, TargetFilter};
use switchyard_core::auth::normalize_email;
use switchyard_core::{AuditId, Error, Timestamp};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Auth, perm};

pub const DEFAULT_LIMIT: u32 = 100;

/// Every filter is optional; they combine with AND. Each is read as text and checked
/// here, so that a bad one is refused naming it.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Who: a user or API key id, or an actor's name (an email, `system`, `cli`).
    pub actor: Option<String>,
    /// One action (`auth.login`) or a family by its prefix, ending with a dot (`auth.`).
    pub action: Option<String>,
    /// A kind of target (`agent`) or one target (`agent:translate`, `user:<id>`).
    pub target: Option<String>,
    /// Entries at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Entries before this time (RFC 3339).
    pub until: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1-500 (default 100).
    pub limit: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub items: Vec<AuditEntry>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page.
    pub next_cursor: Option<AuditId>,
}

fn time(name: &str, value: Option<&str>) -> Result<Option<Timestamp>, Error> {
    value
        .map(|v| {
            Timestamp::parse_rfc3339(v).ok_or_else(|| {
                Error::invalid_parameter(format!(
                    "{name}: {v:?} is not an RFC 3339 time (2026-01-31T12:00:00Z)"
                ))
            })
        })
        .transpose()
}

/// A non-empty filter value, bounded in length.
fn text<'a>(name: &str, value: Option<&'a str>) -> Result<Option<&'a str>, Error> {
    match value {
        Some("") => Err(Error::invalid_parameter(format!(
            "{name}: empty; leave the parameter out to not filter on it"
        ))),
        Some(v) if v.chars().count() > 320 => Err(Error::invalid_parameter(format!(
            "{name}: longer than 320 characters"
        ))),
        other => Ok(other),
    }
}

fn query(p: &ListParams) -> Result<AuditQuery, Error> {
    let limit = match text("limit", p.limit.as_deref())? {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                Error::invalid_parameter(format!("limit: must be between 1 and {MAX_PAGE}"))
            })?,
    };
    let since = time("since", text("since", p.since.as_deref())?)?;
    let until = time("until", text("until", p.until.as_deref())?)?;
    if let (Some(since), Some(until)) = (since, until)
        && since > until
    {
        return Err(Error::invalid_parameter(
            "since: later than until, so nothing could match",
        ));
    }
    let after = text("cursor", p.cursor.as_deref())?
        .map(|c| {
            c.parse::<AuditId>().map_err(|_| {
                Error::invalid_parameter(format!("cursor: {c:?} is not the next_cursor of a page"))
            })
        })
        .transpose()?;
    let actor = text("actor", p.actor.as_deref())?.map(|a| {
        // Emails are stored normalised (lower case).
        if a.contains('@') {
            normalize_email(a).unwrap_or_else(|| a.to_owned())
        } else {
            a.to_owned()
        }
    });
    Ok(AuditQuery {
        actor,
        action: text("action", p.action.as_deref())?
            .map(ActionFilter::parse)
            .transpose()?,
        target: text("target", p.target.as_deref())?
            .map(TargetFilter::parse)
            .transpose()?,
        since,
        until,
        after,
        limit,
    })
}

/// The audit log, newest first, with filters and cursor pagination (admins; an API key
/// needs the `admin` scope).
#[utoipa::path(get, operation_id = "list_audit", path = "/api/v1/audit", tag = "audit",
    params(ListParams), security(("bearer" = [])),
    responses((status = 200, description = "Entries, newest first", body = AuditPage),
        (status = 400, description = "A filter is not valid; the message names it", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _auth: Auth<perm::ReadAudit>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> ApiResult<Json<AuditPage>> {
    let query = query(&p)?;
    let items = state.engine.audit().list(&query).await?;
    let next_cursor = (items.len() == query.limit as usize)
        .then(|| items.last().map(|e| e.id))
        .flatten();
    Ok(Json(AuditPage { items, next_cursor }))
}
