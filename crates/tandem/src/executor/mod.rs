//! `concurrent.futures` for Rust: [`ThreadPoolExecutor`], its [`Task`]s (Python's futures),
//! [`wait`] and [`as_completed`].
//!
//! ```
//! use std::time::Duration;
//! use pytandem::executor::{as_completed, TaskError, ThreadPoolExecutor};
//!
//! // Python:
//! //   with ThreadPoolExecutor(max_workers=4) as ex:
//! //       futures = [ex.submit(pow, 2, n) for n in range(8)]
//! //       for f in as_completed(futures, timeout=10): print(f.result())
//! let pool = ThreadPoolExecutor::builder().max_workers(4).build()?;
//! let tasks: Vec<_> = (0..8).map(|n| pool.submit(move || 2u32.pow(n)).unwrap()).collect();
//! let mut powers: Vec<u32> = as_completed(tasks, Some(Duration::from_secs(10)))
//!     .map(|done| done.unwrap().result().unwrap())
//!     .collect();
//! powers.sort();
//! assert_eq!(powers, [1, 2, 4, 8, 16, 32, 64, 128]);
//!
//! // A panicking task fails only its own Task; the pool goes on.
//! let bad = pool.submit(|| -> u32 { panic!("bad input") })?;
//! assert_eq!(bad.result(), Err(TaskError::Panicked("bad input".into())));
//! assert_eq!(pool.submit(|| 1 + 1)?.result(), Ok(2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - [`ThreadPoolExecutor`], built by its [`Builder`], with [`PoolStats`]: worker threads
//!   that start on demand up to `max_workers`.
//! - [`Task`]: the handle of one submitted job (Python's `Future`): its result, its error,
//!   cancellation, callbacks; also a `std::future::Future`.
//! - [`wait`] and [`as_completed`] over any [`Waitable`] tasks.
//! - [`Map`]: the ordered results of [`ThreadPoolExecutor::map`] (every item submitted at
//!   the call), with [`MapOptions`] for a bounded look-ahead; [`Scope`]: tasks that borrow
//!   from the caller's stack.
//! - Errors: [`TaskError`], [`SubmitError`], [`BrokenPool`], [`TimeoutError`],
//!   [`BuildError`].

// What lives where: `pool.rs` the executor, its builder and the worker loop; `injector/`
// the pool's job queue (a lock-free push for submitters) and worker bookkeeping (sleeping,
// waking, starting and counting workers, on the wait layer); `task.rs` the public handle
// and `cell/` the completion cell under it (state machine, callbacks, wakers, parking);
// `waiter.rs` wait / as_completed; `map.rs` (with `MapOptions`) and `scope.rs`; `error.rs`.

mod cell;
mod error;
mod injector;
mod map;
mod pool;
mod scope;
mod task;
mod waiter;

// Python's names, for rustdoc search: an alias on an item re-exported from a private module
// is lost, so aliases go on the `pub use` lines.
#[doc(alias = "BrokenThreadPool", alias = "BrokenExecutor")]
pub use error::BrokenPool;
pub use error::{BuildError, SubmitError, TaskError, TaskPanic, TimeoutError};
pub use map::{Map, MapOptions};
pub use pool::{Builder, PoolStats, ThreadPoolExecutor};
pub use scope::{Scope, ScopeMap};
#[doc(alias = "Future", alias = "concurrent.futures.Future")]
pub use task::Task;
#[doc(alias = "DoneAndNotDoneFutures")]
pub use waiter::DoneAndNotDone;
pub use waiter::{as_completed, wait, AsCompleted, ReturnWhen, Waitable};

/// The bytes one task costs beyond its value `T` when its closure has type `F` (the
/// reference-counted cell: counters, state, closure-or-result). For the benchmark's size
/// table and the size test; not part of the stable API.
#[doc(hidden)]
pub fn task_overhead<T, F: FnOnce() -> T>(_: &F) -> usize {
    cell::overhead::<T, std::convert::Infallible, F>()
}
