//! The executor's errors: why a task has no value ([`TaskError`]), why a pool refused a task
//! ([`SubmitError`]), why a pool is unusable ([`BrokenPool`]), a wait that ran out of time
//! ([`TimeoutError`]) and a bad configuration ([`BuildError`]).

use std::any::Any;
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// Why a [`Task`](super::Task) has no value: Python's exceptions out of `Future.result()`.
///
/// `E` is the error type of a task submitted with
/// [`submit_fallible`](super::ThreadPoolExecutor::submit_fallible) (its `Err(e)` comes back as
/// [`TaskError::Failed`]); for plain closures it is [`Infallible`], so that variant cannot
/// occur.
///
/// | Python | tandem |
/// | --- | --- |
/// | the task raised `exc` | `Panicked(panic)` (a panic: its message and payload, see [`TaskPanic`]) or `Failed(e)` (an `Err(e)`) |
/// | `raise future.exception()` | `error.resume_unwind()` (re-raises the task's own panic payload) |
/// | `CancelledError` | `Cancelled` |
/// | `BrokenThreadPool` | `BrokenPool(..)` |
/// | `TimeoutError` from `result(timeout)` | `Timeout` (only from the `_timeout` forms and timed `map`) |
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskError<E = Infallible> {
    /// The task panicked: the panic's message and its payload ([`TaskPanic`]). The worker
    /// that ran it survives. The panic hook has also reported the panic on stderr when it
    /// happened (see
    /// [`ThreadPoolExecutor`](super::ThreadPoolExecutor#a-panicking-task-also-prints-to-stderr)).
    Panicked(TaskPanic),
    /// The task returned `Err(e)`.
    Failed(E),
    /// The task was cancelled before it started: by [`Task::cancel`](super::Task::cancel)
    /// or by `shutdown(cancel_futures = true)`.
    #[doc(alias = "CancelledError")]
    Cancelled,
    /// The pool broke (an initializer failed) before the task could start.
    BrokenPool(BrokenPool),
    /// The wait ran out of time; the task itself goes on and its value can still be had.
    Timeout,
    /// The work was never submitted: the pool was shut down before a `buffersize`
    /// look-ahead of [`map_with`](super::ThreadPoolExecutor::map_with) could submit it
    /// (Python raises
    /// `RuntimeError: cannot schedule new futures after shutdown`). Not a cancellation:
    /// nothing was cancelled, the pool refused it.
    ShutDown,
}

impl<E> TaskError<E> {
    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, TaskError::Panicked(_))
    }

    /// Whether the task was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, TaskError::Cancelled)
    }

    /// Whether a wait timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, TaskError::Timeout)
    }

    /// The task's own error, if it returned one.
    pub fn into_failed(self) -> Option<E> {
        match self {
            TaskError::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// The task's panic, if it panicked.
    pub fn into_panic(self) -> Option<TaskPanic> {
        match self {
            TaskError::Panicked(p) => Some(p),
            _ => None,
        }
    }

    /// The panic's message, if the task panicked.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            TaskError::Panicked(p) => Some(p.message()),
            _ => None,
        }
    }

    /// Re-raises the task's panic on this thread with its original payload (see
    /// [`TaskPanic::resume_unwind`]); any other error is returned, so `?` can pass it on.
    /// Python: `raise future.exception()`, for a task that raised.
    ///
    /// ```
    /// use pytandem::executor::ThreadPoolExecutor;
    ///
    /// #[derive(Debug, PartialEq)]
    /// struct Overheated(u32);
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let task = pool.submit(|| -> u32 { std::panic::panic_any(Overheated(97)) })?;
    /// let error = task.result().unwrap_err();
    /// let caught = std::panic::catch_unwind(|| error.resume_unwind()).unwrap_err();
    /// assert_eq!(caught.downcast_ref::<Overheated>(), Some(&Overheated(97)));
    /// # Ok::<(), pytandem::executor::SubmitError>(())
    /// ```
    pub fn resume_unwind(self) -> Self {
        match self {
            TaskError::Panicked(p) => p.resume_unwind(),
            other => other,
        }
    }
}

/// A task's panic, kept where its result is read: the message, and the payload the task
/// panicked with (the value given to `panic!` or `std::panic::panic_any`), to inspect
/// (`into_payload().downcast::<P>()`) or re-raise ([`resume_unwind`](Self::resume_unwind)), as
/// rayon does when a joined closure panicked.
///
/// A task's result can be read several times ([`Task::result_ref`](super::Task::result_ref),
/// [`Task::result_timeout`](super::Task::result_timeout), done-callbacks), so the payload is
/// shared by every copy of the error: the first of them to call
/// [`into_payload`](Self::into_payload) or [`resume_unwind`](Self::resume_unwind) takes the
/// original payload; the others, later, get the message as a `String` payload instead (what
/// `panic!("{message}")` would have carried). [`message`](Self::message) always works.
///
/// Two `TaskPanic`s are equal when their messages are; `TaskPanic::from("message")` makes
/// one without a payload (for comparisons in tests, say).
#[derive(Clone)]
pub struct TaskPanic {
    message: Arc<str>,
    payload: Arc<PayloadSlot>,
}

/// The payload, until one of the error's copies takes it. Dropped through `drop_payload`,
/// since it is user data whose destructor may panic (and this may drop on a worker).
struct PayloadSlot(Mutex<Option<Box<dyn Any + Send>>>);

impl Drop for PayloadSlot {
    fn drop(&mut self) {
        let slot = self.0.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(payload) = slot.take() {
            drop_payload(payload);
        }
    }
}

impl TaskPanic {
    /// The panic of a task, from the payload `catch_unwind` returned.
    pub(crate) fn new(payload: Box<dyn Any + Send>) -> Self {
        TaskPanic {
            message: panic_message(&*payload).into(),
            payload: Arc::new(PayloadSlot(Mutex::new(Some(payload)))),
        }
    }

    /// The panic's message: the `&str` or `String` given to `panic!`, or a note that the
    /// payload was something else.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the original payload is still here (no copy of this error has taken it).
    pub fn has_payload(&self) -> bool {
        self.lock().is_some()
    }

    /// The payload the task panicked with, taken out (every copy of this error shares it):
    /// the original the first time, afterwards a `String` holding the message.
    pub fn into_payload(self) -> Box<dyn Any + Send> {
        let taken = self.lock().take();
        taken.unwrap_or_else(|| Box::new(self.message.to_string()))
    }

    /// Re-raises the panic on this thread with [`into_payload`](Self::into_payload)'s
    /// payload (`std::panic::resume_unwind`: the panic hook does not run again).
    pub fn resume_unwind(self) -> ! {
        std::panic::resume_unwind(self.into_payload())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Box<dyn Any + Send>>> {
        // Nothing panics while the slot is held, but a poisoned slot is still consistent.
        self.payload
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl From<&str> for TaskPanic {
    fn from(message: &str) -> Self {
        TaskPanic::from(String::from(message))
    }
}

impl From<String> for TaskPanic {
    /// A panic with this message and no payload of its own.
    fn from(message: String) -> Self {
        TaskPanic {
            message: message.into(),
            payload: Arc::new(PayloadSlot(Mutex::new(None))),
        }
    }
}

impl PartialEq for TaskPanic {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl Eq for TaskPanic {}

impl PartialEq<str> for TaskPanic {
    fn eq(&self, other: &str) -> bool {
        &*self.message == other
    }
}

impl PartialEq<&str> for TaskPanic {
    fn eq(&self, other: &&str) -> bool {
        &*self.message == *other
    }
}

impl PartialEq<String> for TaskPanic {
    fn eq(&self, other: &String) -> bool {
        *self.message == **other
    }
}

impl fmt::Debug for TaskPanic {
    /// The message, quoted: `Panicked("boom")`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.message, f)
    }
}

impl fmt::Display for TaskPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: fmt::Display> fmt::Display for TaskError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Panicked(panic) => write!(f, "the task panicked: {panic}"),
            TaskError::Failed(e) => write!(f, "the task failed: {e}"),
            TaskError::Cancelled => f.write_str(
                "the task was cancelled before it started (by cancel(), by a shutdown that \
                 cancelled pending work, or because the pool shut down)",
            ),
            TaskError::BrokenPool(b) => write!(f, "the task never ran: {b}"),
            TaskError::ShutDown => f.write_str(
                "the work was never submitted: the pool was shut down first; map before \
                 shutting the pool down, or use another pool",
            ),
            TaskError::Timeout => f.write_str(
                "timed out waiting for the task; it is still pending or running, so wait \
                 again, wait longer, or cancel it",
            ),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for TaskError<E> {}

impl<E> From<TimeoutError> for TaskError<E> {
    fn from(_: TimeoutError) -> Self {
        TaskError::Timeout
    }
}

impl<E> From<BrokenPool> for TaskError<E> {
    fn from(b: BrokenPool) -> Self {
        TaskError::BrokenPool(b)
    }
}

/// Why [`submit`](super::ThreadPoolExecutor::submit) refused a task. Python raises
/// `RuntimeError` (after shutdown) or `BrokenThreadPool`.
///
/// The refused closure is dropped, not handed back: it never ran, so nothing happened that
/// the caller does not know about, and keeping it would make the error generic over an
/// unnameable closure type (so `?` into `Box<dyn Error + Send + Sync>` would fail for
/// closures that are not `Sync`). Submit the work elsewhere by building the closure again.
#[derive(Debug)]
#[non_exhaustive]
pub enum SubmitError {
    /// [`shutdown`](super::ThreadPoolExecutor::shutdown) was called: the pool takes no new
    /// work.
    ShutDown,
    /// An initializer failed, so the pool is unusable.
    BrokenPool(BrokenPool),
    /// The pool had no worker and could not start one.
    Spawn(std::io::Error),
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::ShutDown => f.write_str(
                "cannot submit a task after the pool was shut down: submit before calling \
                 shutdown(), or use a new pool",
            ),
            SubmitError::BrokenPool(b) => write!(f, "cannot submit a task: {b}"),
            SubmitError::Spawn(e) => write!(
                f,
                "cannot submit a task: the pool has no worker and could not start one ({e})"
            ),
        }
    }
}

impl std::error::Error for SubmitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SubmitError::BrokenPool(b) => Some(b),
            SubmitError::Spawn(e) => Some(e),
            SubmitError::ShutDown => None,
        }
    }
}

/// A pool whose initializer failed or panicked: Python's `BrokenThreadPool`. The pool runs
/// nothing more: tasks still queued fail with [`TaskError::BrokenPool`] and later submissions
/// with [`SubmitError::BrokenPool`].
#[derive(Clone, PartialEq, Eq)]
pub struct BrokenPool {
    message: Arc<str>,
}

impl BrokenPool {
    pub(crate) fn new(message: impl Into<Arc<str>>) -> Self {
        BrokenPool {
            message: message.into(),
        }
    }

    /// What the initializer said: its error's message or its panic's.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Debug for BrokenPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BrokenPool").field(&self.message).finish()
    }
}

impl fmt::Display for BrokenPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a thread initializer failed ({}), so the pool is not usable anymore; fix the \
             initializer and build a new pool",
            self.message
        )
    }
}

impl std::error::Error for BrokenPool {}

/// A wait ([`as_completed`](super::as_completed)) that ran out of time. Python's
/// `concurrent.futures.TimeoutError`. Nothing is lost: the tasks go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TimeoutError;

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "timed out before every task completed; the unfinished ones go on (wait again, \
             or cancel them)",
        )
    }
}

impl std::error::Error for TimeoutError {}

/// A pool configuration that cannot work (Python raises `ValueError`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// `max_workers(0)`: a pool needs at least one worker.
    ZeroWorkers,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroWorkers => f.write_str(
                "max_workers must be at least 1 (leave it unset for the default, \
                 min(32, cpus + 4))",
            ),
        }
    }
}

impl std::error::Error for BuildError {}

pub(crate) use crate::error::panic_message;

/// Drops a panic payload, whose own destructor might panic again (it is user data): that
/// second panic is swallowed rather than unwinding through a worker.
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(payload)));
}

#[cfg(all(test, not(tandem_loom)))]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_to_do() {
        let e: TaskError = TaskError::Panicked("boom".into());
        assert_eq!(e.to_string(), "the task panicked: boom");
        assert!(e.is_panic());
        let e: TaskError<String> = TaskError::Failed("no disk".into());
        assert_eq!(e.to_string(), "the task failed: no disk");
        assert_eq!(e.into_failed().as_deref(), Some("no disk"));
        assert!(TaskError::<Infallible>::Cancelled
            .to_string()
            .contains("cancelled"));
        assert!(TaskError::<Infallible>::from(TimeoutError).is_timeout());
        let b = BrokenPool::new("no config");
        assert_eq!(b.message(), "no config");
        assert!(SubmitError::BrokenPool(b.clone())
            .to_string()
            .contains("no config"));
        assert!(SubmitError::ShutDown.to_string().contains("shut down"));
        assert!(BuildError::ZeroWorkers.to_string().contains("at least 1"));
        assert!(TimeoutError.to_string().contains("timed out"));
    }

    #[test]
    fn errors_box_into_dyn_error() {
        fn boxed(e: impl std::error::Error + Send + Sync + 'static) -> Box<dyn std::error::Error> {
            Box::new(e)
        }
        boxed(TaskError::<Infallible>::Cancelled);
        boxed(TaskError::<std::io::Error>::Timeout);
        boxed(SubmitError::ShutDown);
        boxed(TimeoutError);
    }
}
