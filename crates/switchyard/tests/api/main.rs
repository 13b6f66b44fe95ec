//! API tests through the real server: every request goes over HTTP to the same
//! engine, worker runtime and SQLite store that `switchyard dev` runs.

#[path = "../common/mod.rs"]
mod common;

mod agents;
mod audit;
mod auth;
mod backups;
mod command_agent;
mod connections;
mod efficiency;
mod events;
mod files;
mod flow;
mod fuzz;
mod http_agent;
mod input;
mod lifecycle;
mod llm_agent;
mod monitoring;
mod nul;
mod secrets;
mod sso;
mod tasks;
mod ws;
