//! Helpers shared by the integration tests (`mod common;` in each test file that needs them).
// Each test file is its own crate and uses only some of these.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// How long a handshake may take before the test fails: generous, so a loaded 2-core
/// machine never trips it; a test that gets here is stuck, not slow.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `cond` until it holds — the handshake the tests use instead of sleeping — and
/// fails the test, naming `what`, if it does not hold within [`PATIENCE`].
pub(crate) fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::yield_now();
    }
}

/// xorshift64: a tiny deterministic generator, so a randomized test can be replayed from
/// its seed.
pub(crate) fn rng(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
