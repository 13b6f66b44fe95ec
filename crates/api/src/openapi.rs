//! The OpenAPI document's frame: info, tags and the bearer security scheme.

use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

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
        (name = "auth", description = "Login, tokens and sessions"),
        (name = "api-keys", description = "API keys for scripts and workers"),
        (name = "users", description = "User accounts (admins)"),
        (name = "system", description = "Health, workers and queues"),
        (name = "monitoring", description = "Metrics, time series, alerts and reports"),
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
