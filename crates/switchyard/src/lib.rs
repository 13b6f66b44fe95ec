//! The `switchyard` binary as a library: configuration, wiring, the CLI, the embedded
//! UI and the load generator. `main.rs` only calls [`cli::main`]; tests use the rest, and
//! the test harness in `testing` (behind the `testing` feature).

pub mod app;
pub mod bench;
pub mod cli;
pub mod config;
pub mod open_files;
pub mod remote;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod ui;
