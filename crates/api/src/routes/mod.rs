//! The route table. One module per resource, one file per action.

mod agents;
mod alerts;
mod api_keys;
pub(crate) mod audit;
mod auth;
mod backups;
mod events;
mod files;
mod health;
mod metrics;
pub mod period;
mod queues;
mod reports;
mod schedules;
pub(crate) mod tasks;
mod users;
mod workers;

use serde::Serialize;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::openapi::ApiDoc;

/// A list response.
#[derive(Serialize, ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(auth::login::login))
        .routes(routes!(auth::refresh::refresh))
        .routes(routes!(auth::oidc::providers))
        .routes(routes!(auth::oidc::login))
        .routes(routes!(auth::oidc::callback))
        .routes(routes!(auth::oidc::exchange))
        .routes(routes!(auth::logout::logout))
        .routes(routes!(auth::me::me))
        .routes(routes!(auth::ws_ticket::ws_ticket))
        .routes(routes!(auth::sessions::list))
        .routes(routes!(auth::sessions::delete))
        .routes(routes!(users::create::create, users::list::list))
        .routes(routes!(users::update::update))
        .routes(routes!(crate::ws::client::client_ws))
        .routes(routes!(crate::ws::worker::worker_ws))
        .routes(routes!(tasks::submit::submit, tasks::list::list))
        .routes(routes!(tasks::batch::batch))
        .routes(routes!(tasks::get::get))
        .routes(routes!(tasks::cancel::cancel))
        .routes(routes!(tasks::retry::retry))
        .routes(routes!(tasks::events::events))
        .routes(routes!(tasks::logs::logs))
        .routes(routes!(tasks::steps::steps))
        .routes(routes!(tasks::artifacts::artifacts))
        .routes(routes!(files::upload::upload, files::list::list))
        .routes(routes!(files::get::get, files::delete::delete))
        .routes(routes!(files::content::content))
        .routes(routes!(backups::list::list, backups::create::create))
        .routes(routes!(tasks::signals::signal))
        .routes(routes!(events::events))
        .routes(routes!(agents::create::create, agents::list::list))
        .routes(routes!(
            agents::get::get,
            agents::update::update,
            agents::delete::delete
        ))
        .routes(routes!(schedules::create::create, schedules::list::list))
        .routes(routes!(schedules::preview::preview))
        .routes(routes!(
            schedules::get::get,
            schedules::update::update,
            schedules::delete::delete
        ))
        .routes(routes!(schedules::trigger::trigger))
        .routes(routes!(api_keys::create::create, api_keys::list::list))
        .routes(routes!(api_keys::revoke::revoke))
        .routes(routes!(workers::list))
        .routes(routes!(queues::list))
        .routes(routes!(tasks::trace::trace))
        .routes(routes!(metrics::prometheus::prometheus))
        .routes(routes!(metrics::series::series))
        .routes(routes!(metrics::names::names))
        .routes(routes!(alerts::create::create, alerts::list::list))
        .routes(routes!(
            alerts::get::get,
            alerts::update::update,
            alerts::delete::delete
        ))
        .routes(routes!(alerts::events::events))
        .routes(routes!(alerts::stream::stream))
        .routes(routes!(reports::agents::agents))
        .routes(routes!(reports::agents_csv::agents_csv))
        .routes(routes!(audit::list::list))
}
