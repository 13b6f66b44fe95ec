//! The shared harness lives in the library (`switchyard::testing`, behind the `testing`
//! feature that this crate's dev-dependency on itself enables) so other crates' tests (the
//! SDK's) use the same one.

pub use switchyard::testing::*;
