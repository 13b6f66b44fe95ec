pub mod create;
pub mod delete;
pub mod events;
pub mod get;
pub mod list;
pub mod stream;
pub mod update;
