//! Counts database round trips: every transaction (begin and commit), every statement
//! run outside one, and every statement of the batched hot paths (insert, claim, complete,
//! events). Tests check that a task costs at most a small constant number of them, so a
//! change that adds a query per task fails a test instead of slowing production.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Calls(AtomicU64);

impl Calls {
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
