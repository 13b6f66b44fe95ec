//! What clients see where it differs from the domain entity: secrets masked, fields the
//! entity keeps for the server only left out, figures derived from the entity. Each view
//! is built from its entity; one that stands for the entity keeps the entity's component
//! name in the OpenAPI document (`#[schema(as = …)]`).
//!
//! Entities whose wire shape is the entity itself (`Task`, `User`, `ApiKey`, `WorkerInfo`,
//! request bodies such as `AgentSpec`, …) derive `ToSchema` in `switchyard-core` and
//! have no view. Response envelopes (`Items`, a page of results, `Me`, `CreatedKey`)
//! live beside the handlers that send them.

mod agents;
mod auth;
mod files;
mod monitoring;
mod schedules;
mod tasks;

pub use agents::AgentView;
pub use auth::SessionView;
pub use files::FileView;
pub use monitoring::{AlertEventView, AlertRuleView};
pub use schedules::ScheduleView;
pub use tasks::{AttemptSpan, LogLine, TaskTrace};
