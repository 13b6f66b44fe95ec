//! The shared harness lives in the library (`switchyard::testing`) so other crates'
//! tests (the SDK's) use the same one.

pub use switchyard::testing::*;
