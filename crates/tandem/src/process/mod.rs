//! Python's `multiprocessing`: child processes that run Rust functions, pipes between them,
//! and plain data in shared memory. Linux only (pidfds, `memfd`, shared futexes).
//!
//! - [`Process`]: start a child that runs `fn(A) -> R`, join it for the `R`; [`init`] /
//!   [`child_entry!`](crate::child_entry) is the child's way in. A supervisor thread starts
//!   and reaps every child: no zombies, no `SIGCHLD` handler, children die with their
//!   parent unless asked not to.
//! - [`Pipe`] and [`Connection`]: typed messages over a Unix socket (encoded with serde +
//!   postcard; handles inside a message carry their file descriptors along).
//! - [`Value`], [`Array`], [`RawValue`], [`RawArray`]: plain data in an anonymous, sealed
//!   shared memory segment, with a cross-process lock that survives a killed holder, or
//!   atomic access.
//!
//! - [`Lock`], [`RLock`], [`Semaphore`], [`BoundedSemaphore`], [`Condition`], [`Event`],
//!   [`Barrier`]: the synchronization primitives of [`sync`](crate::sync), in shared
//!   memory, that survive a process killed while holding them: a lock is handed on with
//!   [`OwnerDied`], a dead holder's semaphore permits return, a barrier breaks.
//!
//! - [`Queue`], [`JoinableQueue`], [`SimpleQueue`]: the vocabulary of
//!   [`queue`](crate::queue) across processes, in a shared-memory ring of length-prefixed
//!   records, with no feeder thread.
//!
//! - [`ProcessPoolExecutor`] and [`Pool`]: worker processes behind the thread executor's
//!   [`Task`](crate::executor::Task) futures; a crashed worker fails only its own task and
//!   is replaced.
//!
//! Every handle — a `Connection`, a `Value`, … — can be passed to a child in its arguments
//! or sent over a `Connection`, as in Python.
//!
//! # Examples
//! Seed 000's example: a sender and a receiver process joined by a pipe.
//! ```
//! pytandem::process::init(); // first in main: a child runs its function here and exits
//! use pytandem::process::{Connection, Pipe, Process};
//!
//! fn sender(conn: Connection<String>) {
//!     conn.send(&"Hello from sender!".to_string()).unwrap();
//! }
//!
//! fn receiver(conn: Connection<String>) -> String {
//!     conn.recv().unwrap()
//! }
//!
//! let (a, b) = Pipe::new()?;
//! let tx = Process::spawn(sender, a)?;
//! let rx = Process::spawn(receiver, b)?;
//! tx.join()?;
//! assert_eq!(rx.join()?, "Hello from sender!");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What survives a killed process
//! A process can be killed at any instruction (SIGKILL, the OOM killer, a crash). What it
//! held in shared memory is recovered as follows; a tandem child's death is noticed by its
//! parent's supervisor at once (before the child is reaped, so its pid cannot be reused
//! meanwhile), any other process's by the waiters themselves within about 10 ms (they check
//! the owner's pid *and* start time in `/proc`, so a reused pid cannot fool them).
//!
//! | held by the dead process | what happens |
//! | --- | --- |
//! | a [`Lock`], [`RLock`], [`Condition`]'s lock, a [`Value`]/[`Array`] lock | freed; waiters are woken; the next taker gets [`OwnerDied`] (or `owner_died()` on the guard) and may repair the data |
//! | [`Semaphore`] permits taken through a [`SemaphorePermit`] | given back, exactly (updates are journaled, so even a death inside `acquire` balances) |
//! | a [`Barrier`] handle (the process could still arrive) | the barrier breaks: waiters get `BrokenReason::PartyDied` instead of hanging |
//! | a wait on a [`Condition`] or [`Event`] | nothing to do: no waiter leaves state a notifier waits for |
//! | a [`Connection`] end | the peer's `recv` gets [`ConnectionError::Disconnected`] |
//! | a [`Queue`] put or get in progress | rolled back (a put's half-written item is dropped; a get's item stays queued) |
//! | items a [`JoinableQueue`] consumer got but did not `task_done` | written off: `join` returns [`TasksLost`] instead of hanging |
//!
//! Not recoverable: permits taken and kept with [`SemaphorePermit::forget`] and returned
//! with `release()` / `release_n(n)` (a plain count: whose share is whose cannot be known);
//! semaphore holders beyond the 62 processes a semaphore tracks; the *data* a dead lock holder was
//! changing (it is reported, not repaired); a thread that exits holding a lock in a process
//! that lives on (as with the thread primitives).
//!
//! # Set-up
//! A child is this program started again; it must reach [`init`] before doing anything
//! else. In a binary, call `pytandem::process::init()` first in `main` (Python's
//! `if __name__ == "__main__":`). In an integration test file, put
//! `pytandem::child_entry!();` at the top; in a doc test, call `init()` first.

// What lives where: `spawn/` Process and the child's entry, `supervisor.rs` the thread
// that starts and reaps children; `pipe.rs` Pipe/Connection over `frame.rs` (framing) and
// `codec.rs` (serde + postcard, file descriptors of handles); `value.rs` Value/Array over
// `shm.rs` and `shared.rs` (sealed shared memory); `robust.rs` the lock that survives a
// killed holder, under `lock.rs`, `semaphore.rs`, `condition.rs`, `event.rs`, `barrier.rs`;
// `queue/` the queues; `pool/` the pools. Waits use the wait layer's futex backend.

mod barrier;
mod codec;
mod condition;
mod event;
mod frame;
mod lock;
mod pipe;
mod pool;
mod queue;
mod robust;
mod semaphore;
mod shared;
mod shm;
mod spawn;
mod supervisor;
mod value;

pub use barrier::{Barrier, BarrierBuilder, BarrierError};
pub use condition::{Condition, ConditionGuard};
pub use event::Event;
pub use lock::{Lock, LockGuard, LockResult, OwnerDied, RLock, RLockGuard};
// Python's names, for rustdoc search: an alias on an item re-exported from a private module
// is lost, so aliases go on the `pub use` lines.
#[doc(alias = "EOFError")]
pub use pipe::ConnectionError;
pub use pipe::{Connection, Pipe};
pub use pool::{
    AsyncResult, MapResult, Pool, PoolBuilder, PoolError, PoolTaskError, ProcessPoolExecutor,
    ProcessTask, WorkerError,
};
#[doc(alias = "Empty")]
pub use queue::GetError;
#[doc(alias = "Full")]
pub use queue::PutError;
pub use queue::{
    JoinableQueue, Queue, QueueBuilder, SimpleQueue, TasksLost, DEFAULT_CAPACITY_BYTES,
};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphorePermit};
pub use spawn::{
    active_children, cpu_count, current_process, init, parent_process, Builder, Process,
    ProcessError, ProcessInfo, SpawnError,
};
pub use value::{Array, ArrayGuard, AtomicRepr, RawArray, RawValue, Value, ValueGuard};

#[cfg(test)]
crate::child_entry!();
