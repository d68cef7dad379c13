//! Errors shared by several primitives. Errors that belong to one primitive live beside it
//! (`BrokenBarrierError` in `sync::barrier`, `OverReleaseError` in `sync::semaphore`, …).

use std::any::Any;
use std::fmt;

/// A `release()` that Python would refuse with `RuntimeError`.
///
/// Returned, never panicked: releasing a lock you do not hold is a bug in the caller, but a
/// library must not turn it into a crash deep inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReleaseError {
    /// The lock was not held by anyone (Python: `RuntimeError: release unlocked lock`).
    Unlocked,
    /// The lock is held, but by another thread; an `RLock` may only be released by its owner
    /// (Python: `RuntimeError: cannot release un-acquired lock`).
    NotOwner,
    /// The lock is held, but only through guards: `release` frees only a hold kept without a
    /// guard ([`LockGuard::forget`](crate::sync::LockGuard::forget),
    /// [`RLockGuard::forget`](crate::sync::RLockGuard::forget)), never the one a live guard
    /// protects (Python has no guards, so no equivalent).
    HeldByGuard,
}

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleaseError::Unlocked => f.write_str(
                "release of an unlocked lock: acquire it first, and release each acquisition once",
            ),
            ReleaseError::NotOwner => f.write_str(
                "release of a reentrant lock by a thread that does not own it: only the \
                 thread that acquired an RLock may release it",
            ),
            ReleaseError::HeldByGuard => f.write_str(
                "release of a lock held through a guard: drop the guard instead, or keep the \
                 hold without a guard (`guard.forget()`) if another call must release it",
            ),
        }
    }
}

impl std::error::Error for ReleaseError {}

/// The message of a panic payload: the `&str` or `String` given to `panic!`, or a note that
/// the payload was something else.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<a panic payload that is not a string>".to_owned()
    }
}
