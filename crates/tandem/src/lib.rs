//! # tandem
//!
//! Python's concurrency toolkit — `threading`, `queue`, `concurrent.futures` and
//! `multiprocessing` — rebuilt natively in Rust: every primitive under the name a Python
//! programmer knows, with Python's full behaviour (timeouts, non-blocking attempts,
//! `wait_for`, `abort`/`reset`, over-release errors), in the shape a Rust programmer expects
//! (guards that release on drop, data inside what guards it, typed errors).
//!
//! ```
//! use std::sync::Arc;
//! use tandem::sync::Lock;
//!
//! // Python: counter = 0; lock = threading.Lock(); `with lock: counter += 1`
//! let counter = Arc::new(Lock::new(0u64));
//! let handles: Vec<_> = (0..4)
//!     .map(|_| {
//!         let counter = Arc::clone(&counter);
//!         std::thread::spawn(move || {
//!             for _ in 0..1000 {
//!                 *counter.acquire() += 1;
//!             }
//!         })
//!     })
//!     .collect();
//! for h in handles {
//!     h.join().unwrap();
//! }
//! assert_eq!(*counter.acquire(), 4000);
//! ```
//!
//! ## Layers
//! - [`sync`]: `Lock`, `RLock`, `Condition`, `Semaphore`, `BoundedSemaphore`, `Event`,
//!   `Barrier`.
//! - [`sync::acquire_all`]: several locks taken in one global order, so they cannot deadlock.
//! - [`thread`]: named threads joinable with a timeout, panics reported, per-object
//!   thread-local storage.
//! - [`queue`]: `Queue`, `LifoQueue`, `PriorityQueue`, `SimpleQueue` — one engine, with
//!   timeouts that hand the item back, `task_done`/`join`, and shutdown instead of sentinels.
//! - [`executor`]: `ThreadPoolExecutor` and its `Task` futures (`concurrent.futures`):
//!   `submit`, `map`, `wait`, `as_completed`, cancellation, callbacks, scoped tasks; every
//!   `Task` is also a `std::future::Future`.
//! - [`process`] (Linux): `multiprocessing` — child processes that run Rust functions
//!   (`Process`, reaped at once, dying with their parent), typed `Pipe`s, `Value` / `Array`
//!   in shared memory, `Lock`, `RLock`, `Semaphore`, `Condition`, `Event`, `Barrier`
//!   across processes that survive a killed holder, and `Queue`, `JoinableQueue`,
//!   `SimpleQueue` in a shared-memory ring, and `ProcessPoolExecutor` / `Pool` whose
//!   crashed workers fail only their own task.
//! - an internal wait layer: the one place where any tandem call blocks.
//! - [`diagnostics`] (feature `diagnostics`): a deadlock detector and watchdog that name the
//!   threads, locks and source lines involved, a lock-order checker, contention statistics
//!   and thread dumps. Compiled out by default, at no cost.
//!
//! ## Poisoning
//! tandem's locks do not poison (like `parking_lot`): a thread that panics while holding a
//! guard releases the lock as the guard drops during unwinding. Use
//! [`sync::LockGuard::transaction`] when a panic must not leave half-updated data behind.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub(crate) mod primitive;
pub(crate) mod wait;

pub mod diagnostics;
pub mod error;
pub mod executor;
#[cfg(all(target_os = "linux", not(tandem_loom)))]
#[cfg_attr(docsrs, doc(cfg(target_os = "linux")))]
pub mod process;
pub mod queue;
pub mod sync;
pub mod thread;

pub use error::ReleaseError;
