pub mod create;
pub mod delete;
pub mod get;
pub mod list;
pub mod preview;
pub mod trigger;
pub mod update;
