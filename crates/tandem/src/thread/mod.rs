//! Threads: Python's `threading.Thread`, `threading.local` and the `threading` module's
//! thread functions.
//!
//! - [`Builder`], [`spawn`], [`JoinHandle`]: named threads whose panics come back through
//!   `join` with the thread's name and message, joinable with a timeout.
//! - [`scope`]: named threads that borrow from the caller's stack, all joined when the
//!   scope ends (start N threads and join them, without `Arc`, `move` or `join` calls).
//! - [`Local`]: per-object thread-local values (`threading.local()`).
//! - [`current_name`], [`current_ident`], [`current_native_id`], [`active_count`]: the
//!   module-level functions.
//!
//! ```
//! use pytandem::thread::{self, Builder};
//!
//! // Python:
//! //   t = threading.Thread(target=worker, args=("a", 3), name="worker-1"); t.start()
//! //   t.join()
//! let worker = |label: &str, count: u32| (0..count).map(|i| format!("{label}{i}")).collect::<Vec<_>>();
//! let handle = Builder::new().name("worker-1").spawn(move || {
//!     assert_eq!(thread::current_name().as_deref(), Some("worker-1"));
//!     worker("a", 3)
//! })?;
//! assert_eq!(handle.name(), "worker-1");
//! assert_eq!(handle.join().unwrap(), ["a0", "a1", "a2"]);
//!
//! // A panic comes back through join, with the thread's name and message.
//! let handle = thread::spawn(|| -> u32 { panic!("disk on fire") })?;
//! let err = handle.join().unwrap_err();
//! assert!(err.name().starts_with("Thread-"));
//! assert_eq!(err.message(), "disk on fire");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

mod local;
mod scope;
mod spawn;

// Python's names, for rustdoc search: an alias on an item re-exported from a private module
// is lost, so aliases go on the `pub use` lines.
#[doc(alias = "local", alias = "threading.local")]
pub use local::Local;
pub use scope::{scope, Scope, ScopedBuilder, ScopedJoinHandle};
#[doc(alias = "start_new_thread")]
pub use spawn::spawn;
#[doc(alias = "Thread", alias = "threading.Thread")]
pub use spawn::{Builder, JoinHandle};
pub use spawn::{JoinTimeoutError, Joiner, SelfJoinError, ThreadPanic};

/// The next identifier [`current_ident`] hands out; identifiers are never reused.
static NEXT_IDENT: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's identifier, 0 until first asked for (or set by `spawn` at start).
    static IDENT: Cell<u64> = const { Cell::new(0) };
}

/// A new identifier, unique in this process.
pub(crate) fn new_ident() -> u64 {
    NEXT_IDENT.fetch_add(1, Ordering::Relaxed)
}

/// Sets the calling thread's identifier (a freshly spawned thread takes the one its handle
/// already reports).
pub(crate) fn set_current_ident(ident: u64) {
    IDENT.with(|c| c.set(ident));
}

/// The calling thread's identifier: a non-zero number unique among all threads this process
/// ever ran (tandem's or not). Python: `threading.get_ident()`.
///
/// Unlike Python's, an identifier is never recycled after its thread exits. A thread spawned
/// by tandem has the identifier its [`JoinHandle::ident`] reports.
///
/// ```
/// let here = pytandem::thread::current_ident();
/// let there = pytandem::thread::spawn(pytandem::thread::current_ident).unwrap().join().unwrap();
/// assert_ne!(here, there);
/// assert_eq!(here, pytandem::thread::current_ident());
/// ```
#[doc(alias = "get_ident")]
pub fn current_ident() -> u64 {
    IDENT.with(|c| match c.get() {
        0 => {
            let ident = new_ident();
            c.set(ident);
            ident
        }
        ident => ident,
    })
}

/// The calling thread's name, if it has one. Python: `threading.current_thread().name`.
///
/// Threads spawned by tandem always have one (`Thread-1`, `Thread-2`, … unless named);
/// the main thread is called `main` (Python: `MainThread`); other threads have the name they
/// were given by whoever spawned them, or none.
#[doc(alias = "current_thread")]
#[doc(alias = "currentThread")]
pub fn current_name() -> Option<String> {
    std::thread::current().name().map(str::to_owned)
}

/// The operating system's identifier for the calling thread (Linux: `gettid()`), or `None`
/// on platforms where tandem does not know how to ask. Python: `threading.get_native_id()`.
#[doc(alias = "get_native_id")]
pub fn current_native_id() -> Option<u64> {
    native_thread_id()
}

/// How many threads are running, the main thread included, so always at least 1.
/// Python: `threading.active_count()`.
///
/// ```
/// let (tx, rx) = std::sync::mpsc::channel::<()>();
/// let before = pytandem::thread::active_count();
/// assert!(before >= 1); // the main thread
/// let worker = pytandem::thread::spawn(move || rx.recv())?;
/// assert_eq!(pytandem::thread::active_count(), before + 1);
/// tx.send(()).unwrap();
/// worker.join().unwrap().unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Differences from Python
/// As in Python, the count is the main thread plus the threads tandem started ([`spawn`],
/// [`Builder::spawn`]) whose function has not returned (or panicked) yet, the threads whose
/// [`JoinHandle::is_alive`] is `true`. Threads started some other way (`std::thread`, a
/// library's pool) are not counted; Python counts such a thread once it has called into
/// `threading` (a "dummy" thread).
#[doc(alias = "activeCount")]
pub fn active_count() -> usize {
    1 + spawn::active_count()
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn native_thread_id() -> Option<u64> {
    // SAFETY: `gettid` takes no arguments, cannot fail and touches no memory of ours.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    u64::try_from(tid).ok()
}

#[cfg(any(target_os = "macos", target_os = "ios"))]
fn native_thread_id() -> Option<u64> {
    let mut tid: u64 = 0;
    // SAFETY: a null thread means the calling thread; `tid` is a valid place for the result.
    let rc = unsafe { libc::pthread_threadid_np(0, &mut tid) };
    (rc == 0).then_some(tid)
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios"
)))]
fn native_thread_id() -> Option<u64> {
    None
}

pub(crate) use crate::error::panic_message;

#[cfg(all(test, not(tandem_loom)))]
mod tests {
    use super::*;
    use std::any::Any;

    #[test]
    fn panic_messages() {
        let p: Box<dyn Any + Send> = Box::new("static");
        assert_eq!(panic_message(&*p), "static");
        let p: Box<dyn Any + Send> = Box::new(String::from("owned"));
        assert_eq!(panic_message(&*p), "owned");
        let p: Box<dyn Any + Send> = Box::new(42);
        assert!(panic_message(&*p).contains("not a string"));
    }

    #[test]
    fn idents_are_unique_and_stable() {
        let a = current_ident();
        assert_ne!(a, 0);
        assert_eq!(a, current_ident());
        let b = std::thread::spawn(current_ident).join().unwrap();
        assert_ne!(a, b);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn native_ids_differ_between_threads() {
        let here = current_native_id().unwrap();
        let there = std::thread::spawn(|| current_native_id().unwrap())
            .join()
            .unwrap();
        assert_ne!(here, there);
    }
}
