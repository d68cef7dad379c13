//! Python's `threading` synchronization primitives.
//!
//! - [`Lock`]: mutual exclusion, releasable from any thread (as in Python).
//! - [`RLock`]: a lock its owner may re-enter.
//! - [`Condition`]: a lock and its wait set.
//! - [`Condvar`]: a wait set over a `Lock` that already exists (several per lock), waiting
//!   through the lock's own guard.
//! - [`Semaphore`], [`BoundedSemaphore`]: counted permits, handed off first come, first
//!   served.
//! - [`Event`]: a flag threads wait for.
//! - [`Barrier`]: a meeting point for a fixed number of threads.
//! - [`acquire_all`]: several locks at once, in one global order, so they cannot deadlock.

// One primitive per file (`lock.rs`, `rlock.rs`, `condition.rs`, `condvar.rs`,
// `semaphore.rs`, `bounded_semaphore.rs`, `event.rs`, `barrier/`, `ordered.rs`);
// `raw_lock.rs` is the engine of `Lock`, shared with `RLock` and `Condition`;
// `raw_condvar.rs` the wait set of `Condition` and `Condvar`; `raw_semaphore.rs` the one
// engine of both semaphores.

mod raw_condvar;
mod raw_lock;
mod raw_semaphore;

mod barrier;
mod bounded_semaphore;
mod condition;
mod condvar;
mod event;
mod lock;
mod ordered;
mod rlock;
mod semaphore;

#[allow(unused_imports)]
pub use barrier::*;
pub use bounded_semaphore::BoundedSemaphore;
#[allow(unused_imports)]
pub use condition::*;
pub use condvar::Condvar;
#[allow(unused_imports)]
pub use event::*;
pub use lock::{Lock, LockGuard};
pub use ordered::{acquire_all, acquire_all_timeout, try_acquire_all, AcquireAllError, LockSet};
#[allow(unused_imports)]
pub use rlock::*;
#[allow(unused_imports)]
pub use semaphore::*;
// Python's names, for rustdoc search: an alias on an item re-exported from a private module
// is lost, so aliases go on the `pub use` lines.
#[doc(alias = "ValueError")]
pub use semaphore::OverReleaseError;
