//! The WebSocket protocols, shared by the server and the SDKs.
//!
//! Every message is a JSON object with a `type`. See `docs/protocol.md` for examples.
//!
//! - [`client`]: `/api/v1/ws` — authenticate, subscribe to task events, submit, cancel.
//! - [`worker`]: `/api/v1/workers/ws` — remote workers declare agents and slots, receive
//!   assignments, and report logs, progress, partial output and results.
//!
//! Task events themselves travel as `{"type":"event", …TaskEvent}`; their shape is defined
//! by `switchyard_core::event::TaskEvent` and kept as raw JSON here so SDKs do not depend
//! on the server's domain crate.

pub mod client;
pub mod worker;

/// Largest message either side accepts.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Initial read and write buffer of a WebSocket connection (both grow for larger messages).
pub const SOCKET_BUFFER_BYTES: usize = 4 * 1024;
