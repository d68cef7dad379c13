//! # tandem
//!
//! Python's concurrency toolkit — `threading`, `queue`, `concurrent.futures` and
//! `multiprocessing` — rebuilt natively in Rust: every primitive under the name a Python
//! programmer knows, with Python's full behaviour (timeouts, non-blocking attempts,
//! `wait_for`, `abort`/`reset`, over-release errors), in the shape a Rust programmer expects
//! (guards that release on drop, data inside what guards it, typed errors).
//!
//! The package is `pytandem` (`pytandem = "0.1"` in `Cargo.toml`); the project and its
//! command-line program are called tandem.
//!
//! ```
//! use std::sync::Arc;
//! use pytandem::sync::Lock;
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
//! ## Python → tandem
//! Every Python name is also a search alias in these docs: searching `put_nowait`, `Future`
//! or `current_thread` finds the tandem item.
//!
//! | Python | tandem |
//! | --- | --- |
//! | `threading.Lock()`; `with lock:` | `Lock::new(data)`; `let guard = lock.acquire();` |
//! | `lock.acquire(blocking=False)` / `acquire(timeout=t)` | `lock.try_acquire()` / `lock.acquire_timeout(t)` → `Option<guard>` |
//! | `lock.release()` from another thread | send the guard there and drop it, or `guard.forget()` then `Lock<()>::release()` from any thread (refused with `HeldByGuard` while a guard holds it) |
//! | `threading.RLock()` | `RLock::new(data)` |
//! | `threading.Condition()` (over an RLock); `Condition(Lock())` | `Condition::new_reentrant(data)`; `Condition::new(data)` — `wait`, `wait_timeout`, `wait_for`, `notify(n)`, `notify_all` on its guard |
//! | `Condition(lock)` over an existing lock (several conditions, one lock) | `Condvar::new()`: `cv.wait(&mut guard)`, `cv.notify_one(&guard)` with the lock's own guard |
//! | `threading.Semaphore(n)` / `BoundedSemaphore(n)` | `Semaphore::new(n)` / `BoundedSemaphore::new(n)`; permits release on drop |
//! | `threading.Event()` | `Event::new()`: `set`, `clear`, `is_set`, `wait`, `wait_timeout` |
//! | `threading.Barrier(n, action, timeout)` | `Barrier::builder(n).action(f).timeout(t).build()?`; `wait`, `abort`, `reset` |
//! | `threading.Thread(target, name=…)`; `join(timeout)` | `pytandem::thread::Builder::new().name(…).spawn(f)?`; `join`, `join_timeout`; from several threads: `h.joiner()` (joining oneself is an error) |
//! | start N `Thread`s borrowing local data, then `join()` each | `pytandem::thread::scope(\|s\| { s.builder().name("w-1").spawn(f); s.spawn(g); })`: every thread joined at the end of the scope, no `Arc` |
//! | `threading.local()` | `pytandem::thread::Local<T>` |
//! | `queue.Queue(maxsize)`, `LifoQueue`, `PriorityQueue`, `SimpleQueue` | `pytandem::queue::{Queue, LifoQueue, PriorityQueue, SimpleQueue}` |
//! | `q.put(item, timeout=t)` raising `Full` | `q.put_timeout(item, t)` → `Err(..)` that hands `item` back |
//! | `None` sentinel to stop consumers | `q.shutdown(immediate)`; `for item in &q` ends when shut down and drained |
//! | `ThreadPoolExecutor(max_workers=…)` | `ThreadPoolExecutor::with_max_workers(n)` (or `builder().max_workers(n).build()?` for names and an initializer) |
//! | `executor.submit(f)` → `Future`; `future.result(timeout)` | `executor.submit(f)?` → `Task`; `task.result()`; `task.result_timeout(t)` and `task.result_ref()` as often as needed |
//! | `executor.map(f, items)`, `wait(fs, return_when=…)`, `as_completed(fs)` | `executor.map(f, items)`, `executor::wait(tasks, timeout, ReturnWhen::…)`, `executor::as_completed(tasks, timeout)` |
//! | the seeds' "sort the locks, then take them" deadlock prevention | `pytandem::sync::acquire_all((&a, &b))` (any order in, one global order inside) |
//! | a frozen program and no idea why | `pytandem::diagnostics` (feature): `Watchdog`, `check_deadlock()`, lock-order inversions, `snapshot()` thread dumps |
//! | an exception (`BrokenBarrierError`, `ValueError`, …) | a typed error in a `Result`, with a message that says what to do |
//! | `if __name__ == "__main__":` | `pytandem::process::init();` first in `main` (`pytandem::child_entry!();` in a test file) |
//! | `Process(target=f, args=(a,)).start()`; `p.join()`, `p.exitcode` | `let p = Process::spawn(f, a)?;` (`f: fn(A) -> R`); `p.join()?` → `R`; `p.exitcode()` |
//! | `p.terminate()`, `p.kill()`, `p.is_alive()`, `active_children()` | the same names, on `pytandem::process` |
//! | `a, b = Pipe()`; `conn.send(x)`, `conn.recv()`, `poll`, `EOFError` | `let (a, b) = Pipe::new()?;` typed `send`/`recv`/`poll`; `ConnectionError::Disconnected` |
//! | `Value('i', 0)`, `Array('d', n)`, `RawValue`, `RawArray` | `Value::new(0i32)?`, `Array::<f64>::new(n)?`, `RawValue`/`RawArray` (atomics) |
//! | `multiprocessing.Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Condition`, `Event`, `Barrier` | `pytandem::process::{…}` with the methods of `pytandem::sync`; a killed holder's lock is handed on with `OwnerDied` |
//! | `multiprocessing.Queue(maxsize)`, `JoinableQueue`, `SimpleQueue` | `pytandem::process::{Queue, JoinableQueue, SimpleQueue}`: the methods of `pytandem::queue`, in a shared-memory ring, no feeder thread |
//! | `ProcessPoolExecutor(max_workers)`; `submit(f, a)` | `ProcessPoolExecutor::builder().max_workers(n).build()?`; `submit(f, a)?` → the same `Task` as threads |
//! | `Pool(4).map(f, xs)`, `apply_async`, `imap`, `imap_unordered`, `starmap` | `pytandem::process::Pool` with the same verbs; a crashed worker fails only its task |
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
