//! The OpenAPI document's frame: info, tags and the bearer security scheme.

use utoipa::Modify;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Switchyard API",
        description = "Submit tasks to agents, follow them live, and manage agents, workers and credentials.\n\n\
            Authenticate with `Authorization: Bearer <token>`: an access token from `POST /api/v1/auth/login` \
            or an API key (`sy_…`). Errors are `{\"error\":{\"code\",\"message\",\"request_id\"}}` with stable codes.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "tasks", description = "Submit, follow, cancel and retry tasks"),
        (name = "agents", description = "Agent definitions"),
        (name = "schedules", description = "Cron schedules that submit tasks"),
        (name = "files", description = "Uploads, task input files and artifacts"),
        (name = "auth", description = "Login, tokens and sessions"),
        (name = "api-keys", description = "API keys for scripts and workers"),
        (name = "users", description = "User accounts (admins)"),
        (name = "system", description = "Health, workers and queues"),
        (name = "monitoring", description = "Metrics, time series, alerts and reports"),
        (name = "audit", description = "The audit log of security-relevant actions (admins)"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An access token (JWT) or an API key (`sy_…`)"))
                    .build(),
            ),
        );
    }
}

/// Operations any authenticated caller may use: no permission is required, so the
/// credential check never answers `403` there.
const ANY_CALLER: &[&str] = &[
    "logout",
    "get_me",
    "create_ws_ticket",
    "list_sessions",
    "delete_session",
];

/// Adds the responses every operation of a kind can send, from what the shared
/// extractors and layers do, so that no handler's annotation can forget them:
///
/// - `400`: malformed JSON (`malformed_json`) or an unparsable path or query parameter
///   (`invalid_parameter`), wherever there is a body or a parameter;
/// - `401`/`403`: a missing or invalid credential, or one without the route's permission;
/// - `408`, `413`, `415`, `422`: a body too slow to arrive, too large, not sent as JSON, or
///   of the wrong shape;
/// - `500`: a fault (logged with the request id).
///
/// Every response gets a description (OpenAPI requires one).
pub fn complete(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
        {
            complete_operation(op);
        }
    }
    doc
}

fn complete_operation(op: &mut Operation) {
    let id = op.operation_id.clone().unwrap_or_default();
    let has_body = op.request_body.is_some();
    let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let authenticated = op.security.is_some();
    let mut add: Vec<(&str, &str)> = Vec::new();
    if has_body || has_params {
        add.push((
            "400",
            "Malformed JSON (`malformed_json`) or an invalid path or query parameter (`invalid_parameter`)",
        ));
    }
    if authenticated {
        add.push((
            "401",
            "No valid credential: missing, malformed, expired or revoked (`unauthorized`, `token_expired`)",
        ));
        if !ANY_CALLER.contains(&id.as_str()) {
            add.push(("403", "The credential lacks the permission (`forbidden`)"));
        }
    }
    if has_body {
        add.push((
            "408",
            "The body did not arrive within `server.body_read_timeout_ms` (`request_timeout`)",
        ));
        add.push((
            "413",
            "The body is larger than `server.body_limit_bytes` (`payload_too_large`)",
        ));
        add.push((
            "415",
            "The body is not sent as `application/json` (`unsupported_media_type`)",
        ));
        add.push((
            "422",
            "The body has the wrong shape or fails validation (`invalid_body`, `validation_failed`, …)",
        ));
    }
    add.push((
        "500",
        "An internal fault (`internal`); the server log has the details under the request id",
    ));
    let responses = &mut op.responses.responses;
    for (status, description) in add {
        responses.entry(status.to_owned()).or_insert_with(|| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            )
        });
    }
    for (status, response) in responses.iter_mut() {
        if let RefOr::T(r) = response
            && r.description.is_empty()
        {
            r.description = default_description(status);
        }
    }
}

fn default_description(status: &str) -> String {
    let reason = status
        .parse::<u16>()
        .ok()
        .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
        .and_then(|s| s.canonical_reason());
    match (status, reason) {
        ("400", _) => "A bad parameter (`invalid_parameter`)".into(),
        ("401", _) => "Not authenticated".into(),
        ("403", _) => "Not allowed (`forbidden`)".into(),
        ("404", _) => "Not found".into(),
        ("409", _) => "Conflicts with the current state".into(),
        ("422", _) => "Invalid (`validation_failed`, `invalid_body`, …)".into(),
        ("429", _) => "Too many attempts (`rate_limited`); see `Retry-After`".into(),
        ("503", _) => "Unavailable (`unavailable`)".into(),
        (_, Some(reason)) => reason.to_owned(),
        (s, None) => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_operation_gets_the_statuses_its_extractors_can_send() {
        let doc = serde_json::to_value(crate::openapi()).unwrap();
        let submit = &doc["paths"]["/api/v1/tasks"]["post"]["responses"];
        for status in ["400", "401", "403", "408", "413", "415", "422", "500"] {
            assert!(submit.get(status).is_some(), "submit_task lacks {status}");
        }
        let me = &doc["paths"]["/api/v1/auth/me"]["get"]["responses"];
        assert!(me.get("401").is_some() && me.get("403").is_none(), "{me}");
        let health = &doc["paths"]["/healthz"]["get"]["responses"];
        assert!(health.get("401").is_none() && health.get("400").is_none());
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for (status, r) in op["responses"].as_object().unwrap() {
                    assert!(
                        r["description"].as_str().is_some_and(|d| !d.is_empty()),
                        "{method} {path} {status} has no description"
                    );
                }
            }
        }
    }
}
