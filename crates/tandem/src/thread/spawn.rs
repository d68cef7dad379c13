//! `Builder`, `spawn`, `JoinHandle`: Python's `threading.Thread`.
//!
//! A spawned thread shares a `Packet` with its handle: the thread stores its result (or the
//! payload of its panic, caught with `catch_unwind`) and then opens a `wait::Latch`;
//! `join` waits for it through the wait layer (parking on the latch's address, which is
//! what gives `join_timeout` its deadline), then joins the OS thread — which by then has only
//! its thread-local destructors left to run — and takes the result. So when `join` returns,
//! the thread is gone, as in Python.

use std::any::Any;
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering as StdOrdering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::primitive::UnsafeCell;
use crate::wait::{Deadline, Latch};

/// Threads spawned by tandem whose function is still running.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// The number in the next default name (`Thread-1`, `Thread-2`, …), as Python counts.
static NEXT_DEFAULT_NAME: AtomicUsize = AtomicUsize::new(1);

pub(super) fn active_count() -> usize {
    ACTIVE.load(StdOrdering::Relaxed)
}

/// Spawns a thread with a default name (`Thread-1`, `Thread-2`, …) running `f`.
/// Python: `t = threading.Thread(target=f); t.start()`.
///
/// Returns the error of the operating system if it cannot create a thread.
///
/// ```
/// let handle = pytandem::thread::spawn(|| 6 * 7)?;
/// assert!(handle.name().starts_with("Thread-"));
/// assert_eq!(handle.join().unwrap(), 42);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn spawn<F, T>(f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new().spawn(f)
}

/// Configures a thread before spawning it: Python's `threading.Thread(name=..., target=...)`.
///
/// | Python | tandem |
/// | --- | --- |
/// | `threading.Thread(target=f, args=(a, b), name="w")` | `Builder::new().name("w").spawn(move \|\| f(a, b))` |
/// | `threading.stack_size(n)` (process-wide) | `Builder::new().stack_size(n)` (this thread) |
/// | `t.start()` | `spawn` starts the thread at once |
///
/// ```
/// use pytandem::thread::Builder;
///
/// fn worker(label: &str, count: usize) -> usize {
///     (0..count).map(|i| format!("{label}: {i}").len()).sum()
/// }
/// let handle = Builder::new()
///     .name("WorkerThread")
///     .stack_size(256 * 1024)
///     .spawn(|| worker("Thread-1", 5))?;
/// assert_eq!(handle.name(), "WorkerThread");
/// assert_eq!(handle.join().unwrap(), 5 * "Thread-1: 0".len());
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Differences from Python
/// - Arguments are captured by the closure instead of passed as `args`/`kwargs`.
/// - There is no separate `start()`: a thread runs from the moment it is spawned.
/// - There is no `daemon` flag: like Python's daemon threads, a Rust program does not wait
///   for its threads when `main` returns; join the ones that must finish.
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until `spawn` is called"]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder for a thread with the default name and stack size.
    pub fn new() -> Self {
        Builder::default()
    }

    /// Names the thread; without a name it gets Python's default `Thread-N`.
    /// The name shows in panic messages, in [`ThreadPanic`] and in [`super::current_name`].
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the thread's stack size in bytes (the platform may round it up).
    pub fn stack_size(mut self, size: usize) -> Self {
        self.stack_size = Some(size);
        self
    }

    /// Spawns the thread, running `f`; its return value (or its panic) comes back through
    /// [`JoinHandle::join`].
    ///
    /// # Errors
    /// An [`io::ErrorKind::InvalidInput`] error if the name contains a NUL byte, or the
    /// operating system's error if it cannot create the thread.
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (name, builder) = self.into_std()?;
        let packet = Arc::new(Packet {
            done: Latch::new(1),
            name,
            ident: super::new_ident(),
            native_id: AtomicU64::new(0),
            result: UnsafeCell::new(None),
        });
        let theirs = Arc::clone(&packet);
        // Counted before the thread exists, so `is_alive()` and `active_count()` agree from
        // the moment `spawn` returns.
        let counted = Counted::new();
        let spawned = builder.spawn(move || {
            if let Some(id) = enter(theirs.ident) {
                theirs.native_id.store(id, StdOrdering::Relaxed);
            }
            let result = panic::catch_unwind(AssertUnwindSafe(f));
            // SAFETY: this thread is the only writer and writes before `done` is set; the
            // handle reads only after seeing `done` (acquire), and nobody reads before.
            theirs
                .result
                .with_mut(|slot| unsafe { *slot = Some(result) });
            drop(counted);
            theirs.done.open();
        });
        // On failure the closure, with its `Counted`, was dropped unrun: no longer counted.
        spawned.map(|native| JoinHandle { packet, native })
    }

    /// The thread's name (the one given, checked, or Python's default `Thread-N`) and a
    /// `std` builder for it: the one naming rule of every thread tandem starts, scoped
    /// ([`super::scope`]) or not.
    pub(super) fn into_std(self) -> io::Result<(String, std::thread::Builder)> {
        let name = match self.name {
            Some(name) if name.contains('\0') => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("thread name {name:?} contains a NUL byte: choose a name without one"),
                ))
            }
            Some(name) => name,
            None => format!(
                "Thread-{}",
                NEXT_DEFAULT_NAME.fetch_add(1, StdOrdering::Relaxed)
            ),
        };
        let mut builder = std::thread::Builder::new().name(name.clone());
        if let Some(size) = self.stack_size {
            builder = builder.stack_size(size);
        }
        Ok((name, builder))
    }
}

/// Counts a thread tandem starts in [`active_count`] from before the thread exists until its
/// function returns or panics, or, if the thread could not be started, until the unrun
/// closure that holds it is dropped.
pub(super) struct Counted(());

impl Counted {
    pub(super) fn new() -> Self {
        ACTIVE.fetch_add(1, StdOrdering::Relaxed);
        Counted(())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, StdOrdering::Relaxed);
    }
}

/// The first thing every thread tandem starts does: take the identifier its handle reports
/// (for [`super::current_ident`] and the diagnostics). Returns the OS thread id, if known.
pub(super) fn enter(ident: u64) -> Option<u64> {
    super::set_current_ident(ident);
    super::native_thread_id()
}

/// What a thread and its handle share.
struct Packet<T> {
    done: Latch,
    name: String,
    ident: u64,
    /// 0 until the thread has started and stored its OS id.
    native_id: AtomicU64,
    result: UnsafeCell<Option<std::thread::Result<T>>>,
}

// SAFETY: `result` is written once by the spawned thread before `done` is set (release) and
// read only by the unique `JoinHandle` after it saw `done` (acquire): never at the same time.
// Everything else is immutable or atomic. Moving a `T` between threads needs `T: Send`.
unsafe impl<T: Send> Sync for Packet<T> {}

/// A handle to a thread spawned by tandem: join it, with or without a timeout, and ask how it
/// is doing. Python: the `threading.Thread` object after `start()`.
///
/// | Python | tandem |
/// | --- | --- |
/// | `t.join()` | `h.join()` → `Result<T, ThreadPanic>` |
/// | `t.join(timeout)`; `t.is_alive()` | `h.join_timeout(d)` → `Err(JoinTimeoutError::Timeout(h))` hands the handle back |
/// | `t.is_alive()` | `h.is_alive()` (`!h.is_finished()`) |
/// | `t.name`, `t.ident`, `t.native_id` | `h.name()`, `h.ident()`, `h.native_id()` |
/// | `t.join()` from several threads | `h.joiner()` → [`Joiner`], cloneable, one per waiting thread |
///
/// Dropping the handle detaches the thread: it runs on, and its result is dropped when it
/// finishes.
///
/// # Differences from Python
/// - `join` returns the thread's return value, or its panic as a [`ThreadPanic`] (Python
///   prints an uncaught exception through `threading.excepthook` and `join` returns `None`).
/// - `join` returns once the thread is gone, its thread-local destructors included. The
///   timeout of [`join_timeout`](Self::join_timeout) bounds the wait for the function; a
///   thread-local destructor that blocks after the function returned is waited for.
#[must_use = "dropping a JoinHandle detaches the thread; join it to get its result"]
pub struct JoinHandle<T> {
    packet: Arc<Packet<T>>,
    native: std::thread::JoinHandle<()>,
}

impl<T> JoinHandle<T> {
    /// Waits for the thread to finish and returns what its function returned, or its panic
    /// (with the thread's name and the panic message). Python: `t.join()`.
    ///
    /// # Panics
    /// If called on the thread itself (its handle was sent to it), which would wait forever:
    /// Python raises `RuntimeError: cannot join current thread`. [`Joiner::join`] returns
    /// that as a [`SelfJoinError`] instead.
    #[track_caller]
    pub fn join(self) -> Result<T, ThreadPanic> {
        self.refuse_self_join();
        self.packet.done.wait_until(Deadline::NEVER);
        self.into_result()
    }

    /// Panics with [`SelfJoinError`]'s message on the thread itself.
    #[track_caller]
    fn refuse_self_join(&self) {
        if super::current_ident() == self.packet.ident {
            panic!("{}", SelfJoinError { _private: () });
        }
    }

    /// A handle that waits for this thread to finish, from any number of threads and any
    /// number of times, with or without a timeout: Python's `t.join()` called from several
    /// threads. It does not hand out the result, which stays with this `JoinHandle`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (go, wait) = std::sync::mpsc::channel::<()>();
    /// let worker = pytandem::thread::spawn(move || wait.recv().is_ok())?;
    /// let joiner = worker.joiner();
    /// let watchers: Vec<_> = (0..3)
    ///     .map(|_| {
    ///         let joiner = joiner.clone();
    ///         std::thread::spawn(move || joiner.join_timeout(Duration::from_secs(60)))
    ///     })
    ///     .collect();
    /// assert_eq!(joiner.join_timeout(Duration::ZERO), Ok(false)); // still running
    /// go.send(()).unwrap();
    /// for w in watchers {
    ///     assert_eq!(w.join().unwrap(), Ok(true));
    /// }
    /// assert_eq!(worker.join().unwrap(), true);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn joiner(&self) -> Joiner
    where
        T: Send + 'static,
    {
        Joiner {
            packet: Arc::clone(&self.packet) as Arc<dyn Finish>,
        }
    }

    /// Waits at most `timeout` for the thread to finish. On timeout the handle comes back in
    /// [`JoinTimeoutError::Timeout`], to join again later. A zero timeout only checks; a
    /// timeout too large to represent waits forever. Python: `t.join(timeout)`, then
    /// `t.is_alive()` to learn whether it timed out.
    ///
    /// # Panics
    /// On the thread itself, as [`join`](Self::join).
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// use pytandem::thread::{self, JoinTimeoutError};
    ///
    /// let (go, wait) = mpsc::channel::<()>();
    /// let handle = thread::spawn(move || wait.recv().map(|()| "done"))?;
    /// let handle = match handle.join_timeout(Duration::from_millis(10)) {
    ///     Err(JoinTimeoutError::Timeout(handle)) => handle, // still blocked on `wait`
    ///     other => panic!("unexpected {other:?}"),
    /// };
    /// go.send(()).unwrap();
    /// assert_eq!(handle.join_timeout(Duration::from_secs(60)).unwrap(), Ok("done"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn join_timeout(self, timeout: Duration) -> Result<T, JoinTimeoutError<T>> {
        self.join_deadline(Deadline::after(timeout))
    }

    /// Waits until `deadline` at the latest for the thread to finish; see
    /// [`join_timeout`](Self::join_timeout).
    #[track_caller]
    pub fn join_until(self, deadline: Instant) -> Result<T, JoinTimeoutError<T>> {
        self.join_deadline(Deadline::at(deadline))
    }

    #[track_caller]
    fn join_deadline(self, deadline: Deadline) -> Result<T, JoinTimeoutError<T>> {
        self.refuse_self_join();
        if self.packet.done.wait_until(deadline) {
            self.into_result().map_err(JoinTimeoutError::Panicked)
        } else {
            Err(JoinTimeoutError::Timeout(self))
        }
    }

    /// The result of a finished thread, once the OS thread is gone.
    fn into_result(self) -> Result<T, ThreadPanic> {
        // The function has returned: only thread-local destructors are left to run. The
        // closure catches the function's panic, so this join reports none.
        let _ = self.native.join();
        // SAFETY: `done` is set (the caller waited for it, with acquire ordering), so the
        // thread has stored its result and will never touch it again; this handle is the
        // only reader and is consumed here.
        let result = self
            .packet
            .result
            .with_mut(|slot| unsafe { (*slot).take() });
        match result.expect("a finished thread has stored its result") {
            Ok(value) => Ok(value),
            Err(payload) => Err(ThreadPanic::new(self.packet.name.clone(), payload)),
        }
    }

    /// Whether the thread's function has returned (or panicked): `join` will not block.
    pub fn is_finished(&self) -> bool {
        self.packet.done.is_open()
    }

    /// Whether the thread is still running its function. Python: `t.is_alive()`.
    pub fn is_alive(&self) -> bool {
        !self.is_finished()
    }

    /// The thread's name: the one given to [`Builder::name`], or `Thread-N`.
    /// Python: `t.name`.
    pub fn name(&self) -> &str {
        &self.packet.name
    }

    /// The thread's identifier, the value [`super::current_ident`] returns on it: unique in
    /// the process and never reused. Python: `t.ident`.
    pub fn ident(&self) -> u64 {
        self.packet.ident
    }

    /// The operating system's id of the thread (Linux: its `gettid()`), once the thread has
    /// started running; `None` before that, or on platforms where tandem cannot ask.
    /// Python: `t.native_id`.
    pub fn native_id(&self) -> Option<u64> {
        match self.packet.native_id.load(StdOrdering::Relaxed) {
            0 => None,
            id => Some(id),
        }
    }

    /// The standard library's handle on the thread (to `unpark` it, or read its `id`).
    pub fn thread(&self) -> &std::thread::Thread {
        self.native.thread()
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("name", &self.name())
            .field("ident", &self.ident())
            .field("alive", &self.is_alive())
            .finish()
    }
}

/// What a [`Joiner`] needs of a thread's packet, whatever the thread returns.
trait Finish: Send + Sync {
    fn done(&self) -> &Latch;
    fn name(&self) -> &str;
    fn ident(&self) -> u64;
}

impl<T: Send> Finish for Packet<T> {
    fn done(&self) -> &Latch {
        &self.done
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn ident(&self) -> u64 {
        self.ident
    }
}

/// Waits for a thread to finish, from any number of threads: Python's `t.join()` (which any
/// thread may call, any number of times, with or without a timeout). Made by
/// [`JoinHandle::joiner`]; cheap to clone, and it may outlive the `JoinHandle`.
///
/// A `Joiner` only waits: the thread's result (or panic) stays with its [`JoinHandle`].
///
/// # Differences from Python
/// - A thread that joins itself gets [`SelfJoinError`] (Python's `RuntimeError`) instead of
///   an exception.
/// - It returns once the thread's function has returned (or panicked); unlike
///   [`JoinHandle::join`] it does not wait for the thread's thread-local destructors.
#[derive(Clone)]
pub struct Joiner {
    packet: Arc<dyn Finish>,
}

impl Joiner {
    /// Waits until the thread's function has returned (or panicked). Python: `t.join()`.
    ///
    /// # Errors
    /// [`SelfJoinError`] if called on the thread itself, which would wait forever.
    pub fn join(&self) -> Result<(), SelfJoinError> {
        self.join_deadline(Deadline::NEVER).map(|_| ())
    }

    /// Waits at most `timeout`; `Ok(true)` if the thread finished, `Ok(false)` on timeout. A
    /// zero timeout only checks. Python: `t.join(timeout)`, then `not t.is_alive()`.
    ///
    /// # Errors
    /// [`SelfJoinError`] if called on the thread itself.
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool, SelfJoinError> {
        self.join_deadline(Deadline::after(timeout))
    }

    /// Waits until `deadline` at the latest; see [`join_timeout`](Self::join_timeout).
    ///
    /// # Errors
    /// [`SelfJoinError`] if called on the thread itself.
    pub fn join_until(&self, deadline: Instant) -> Result<bool, SelfJoinError> {
        self.join_deadline(Deadline::at(deadline))
    }

    fn join_deadline(&self, deadline: Deadline) -> Result<bool, SelfJoinError> {
        if super::current_ident() == self.packet.ident() {
            return Err(SelfJoinError { _private: () });
        }
        Ok(self.packet.done().wait_until(deadline))
    }

    /// Whether the thread is still running its function. Python: `t.is_alive()`.
    pub fn is_alive(&self) -> bool {
        !self.packet.done().is_open()
    }

    /// The thread's name. Python: `t.name`.
    pub fn name(&self) -> &str {
        self.packet.name()
    }

    /// The thread's identifier (see [`JoinHandle::ident`]). Python: `t.ident`.
    pub fn ident(&self) -> u64 {
        self.packet.ident()
    }
}

impl fmt::Debug for Joiner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Joiner")
            .field("name", &self.name())
            .field("ident", &self.ident())
            .field("alive", &self.is_alive())
            .finish()
    }
}

/// A thread tried to join itself, which would wait forever: Python's
/// `RuntimeError: cannot join current thread`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelfJoinError {
    _private: (),
}

impl fmt::Display for SelfJoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a thread cannot join itself (it would wait for itself forever): join it from \
             another thread, or let it return",
        )
    }
}

impl std::error::Error for SelfJoinError {}

/// A panic payload, kept only to be handed back by value.
struct Payload(Box<dyn Any + Send>);

// SAFETY: the payload is never reachable through a shared reference: `ThreadPanic` exposes it
// only by value (`into_payload`, `resume`), so sharing a `&ThreadPanic` between threads
// cannot touch it concurrently (the same reasoning as `std::sync::Exclusive`).
unsafe impl Sync for Payload {}

/// A thread's panic, reported by [`JoinHandle::join`]: the thread's name, the panic message
/// and the original payload.
///
/// Displays as `thread 'worker-1' panicked: <message>`. To let the panic continue in the
/// joining thread, call [`resume`](Self::resume).
pub struct ThreadPanic {
    name: String,
    message: String,
    payload: Payload,
}

impl ThreadPanic {
    /// The panic of the thread `name`, from the payload `catch_unwind` or `join` gave.
    pub(super) fn new(name: String, payload: Box<dyn Any + Send>) -> Self {
        ThreadPanic {
            name,
            message: super::panic_message(&*payload),
            payload: Payload(payload),
        }
    }

    /// The name of the thread that panicked.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The panic message (the string given to `panic!`), or a note that the payload was not
    /// a string.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The original panic payload, e.g. for `std::panic::resume_unwind`.
    pub fn into_payload(self) -> Box<dyn Any + Send> {
        self.payload.0
    }

    /// Continues the panic in the calling thread.
    pub fn resume(self) -> ! {
        panic::resume_unwind(self.payload.0)
    }
}

impl fmt::Debug for ThreadPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPanic")
            .field("name", &self.name)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ThreadPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "thread '{}' panicked: {}", self.name, self.message)
    }
}

impl std::error::Error for ThreadPanic {}

/// Why [`JoinHandle::join_timeout`] did not return the thread's value.
pub enum JoinTimeoutError<T> {
    /// The thread is still running; here is its handle back, to join again later.
    Timeout(JoinHandle<T>),
    /// The thread finished by panicking.
    Panicked(ThreadPanic),
}

impl<T> JoinTimeoutError<T> {
    /// Whether the join timed out (the thread is still running).
    pub fn is_timeout(&self) -> bool {
        matches!(self, JoinTimeoutError::Timeout(_))
    }

    /// The handle of a thread that is still running, to join again.
    pub fn into_handle(self) -> Option<JoinHandle<T>> {
        match self {
            JoinTimeoutError::Timeout(handle) => Some(handle),
            JoinTimeoutError::Panicked(_) => None,
        }
    }
}

impl<T> fmt::Debug for JoinTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinTimeoutError::Timeout(h) => f.debug_tuple("Timeout").field(h).finish(),
            JoinTimeoutError::Panicked(p) => f.debug_tuple("Panicked").field(p).finish(),
        }
    }
}

impl<T> fmt::Display for JoinTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinTimeoutError::Timeout(h) => write!(
                f,
                "thread '{}' is still running after the join timeout: take the handle back \
                 with into_handle() and join again later",
                h.name()
            ),
            JoinTimeoutError::Panicked(p) => fmt::Display::fmt(p, f),
        }
    }
}

impl<T> std::error::Error for JoinTimeoutError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JoinTimeoutError::Timeout(_) => None,
            JoinTimeoutError::Panicked(p) => Some(p),
        }
    }
}

#[cfg(all(test, not(tandem_loom)))]
mod tests {
    use super::*;

    #[test]
    fn nul_in_name_is_an_error() {
        let err = Builder::new().name("a\0b").spawn(|| ()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("NUL"));
    }

    #[test]
    fn handles_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<JoinHandle<String>>();
        check::<ThreadPanic>();
        check::<JoinTimeoutError<Vec<u8>>>();
    }
}
