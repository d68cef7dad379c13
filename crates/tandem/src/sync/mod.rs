//! Python's `threading` synchronization primitives, one per file.
//!
//! - [`Lock`] (`lock.rs`): mutual exclusion, releasable from any thread; `raw_lock.rs` is its
//!   engine, shared with `RLock` and `Condition`.
//! - `RLock` (`rlock.rs`): a lock its owner may re-enter.
//! - `Condition` (`condition.rs`): a lock and its wait set.
//! - [`Condvar`] (`condvar.rs`): a wait set over a `Lock` that already exists (several per
//!   lock), waiting through the lock's own guard; `Condition`'s engine.
//! - `Semaphore`, `BoundedSemaphore` (`semaphore.rs`): counted permits, FIFO hand-off.
//! - `Event` (`event.rs`): a flag threads wait for.
//! - [`acquire_all`] (`ordered.rs`): several locks at once, in one global order, so they cannot deadlock.
//! - `Barrier` (`barrier.rs`): a meeting point for a fixed number of threads.

mod raw_lock;

mod barrier;
mod condition;
mod condvar;
mod event;
mod lock;
mod ordered;
mod rlock;
mod semaphore;

#[allow(unused_imports)]
pub use barrier::*;
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
