pub mod batch;
pub mod cancel;
pub mod events;
pub mod get;
pub mod list;
pub mod logs;
pub mod retry;
pub mod submit;
