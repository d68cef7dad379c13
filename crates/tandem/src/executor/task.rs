//! `Task<T, E>`: Python's `concurrent.futures.Future`, the handle to one submitted task.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::cell::{self, CellApi, Header, Outcome};
use super::error::{TaskError, TimeoutError};
use super::waiter::{sealed, Waitable};
use crate::wait::Deadline;

const TAKEN: &str = "the task's result was already taken (by polling the task to completion as \
                     a future); read it only once that way";

/// The handle to a submitted task and, once it is done, its result: Python's
/// `concurrent.futures.Future`.
///
/// It is called `Task` rather than `Future` so it does not collide with
/// [`std::future::Future`], which it also implements: async code can `.await` a `Task`
/// (without any runtime), and blocking code calls [`result`](Task::result).
///
/// | Python | tandem |
/// | --- | --- |
/// | `f = executor.submit(fn, *args)` | `let t = pool.submit(move \|\| fn(args))?;` |
/// | `f.result()` | `t.result()` → `Result<T, TaskError<E>>` (takes the value) |
/// | `f.result()` again, from any thread | `t.result_ref()` → `Result<&T, &TaskError<E>>` |
/// | `f.result(timeout=s)` | `t.result_timeout(d)` (a clone; `Err(TaskError::Timeout)`; `t` stays usable), or `t.result_ref_timeout(d)` |
/// | `f.exception()` | `t.error()` → `Option<&TaskError<E>>` |
/// | `f.cancel()` | `t.cancel()` |
/// | `f.cancelled()`, `f.running()`, `f.done()` | `t.is_cancelled()`, `t.is_running()`, `t.is_done()` |
/// | `f.add_done_callback(fn)` | `t.add_done_callback(\|outcome\| ...)` |
/// | `wait([f])` | `t.wait()`, `t.wait_timeout(d)` |
/// | `await asyncio.wrap_future(f)` | `t.await` |
///
/// # Examples
/// ```
/// use pytandem::executor::{TaskError, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::new();
/// let sum = pool.submit(|| (1..=100).sum::<u32>())?;
/// let boom = pool.submit(|| -> u32 { panic!("division by zero") })?;
/// assert_eq!(sum.result(), Ok(5050));
/// assert_eq!(boom.result(), Err(TaskError::Panicked("division by zero".into())));
/// # Ok::<(), pytandem::executor::SubmitError>(())
/// ```
///
/// # Differences from Python
/// - The value is owned by the `Task`. [`result`](Task::result) moves it out and consumes
///   the task; every other read leaves it in place, so it can be read any number of times,
///   from several threads: by reference ([`result_ref`](Task::result_ref),
///   [`result_ref_timeout`](Task::result_ref_timeout), [`error`](Task::error)) or as a
///   clone ([`result_timeout`](Task::result_timeout), for `T: Clone`). Python returns the
///   same object each call.
/// - Done-callbacks receive the outcome (`&Result<T, TaskError<E>>`), not the future, and
///   all callbacks registered before completion have run when [`result`](Task::result)
///   returns.
/// - Dropping a `Task` does not cancel it: the task still runs, its result is discarded.
///
/// # Thread safety
/// A task's value crosses from the worker to whoever takes it, so it must be `Send`:
/// ```compile_fail
/// let pool = pytandem::executor::ThreadPoolExecutor::new();
/// let task = pool.submit(|| std::rc::Rc::new(5)); // Rc is not Send
/// ```
/// A `Task` is `Send` when its value is, and `Sync` (shareable, e.g. for [`wait`] from
/// several threads) when its value is also `Sync`, since `&Task` lends out `&T`.
///
/// [`wait`]: super::wait
pub struct Task<T, E = Infallible> {
    cell: Arc<dyn CellApi<T, E>>,
    /// `Send`/`Sync` as the outcome: `&Task` hands out `&T`.
    _outcome: PhantomData<Outcome<T, E>>,
}

// The outcome lives in the heap cell, never inside the `Task`, so moving a pinned `Task` is
// fine whatever `T` is.
impl<T, E> Unpin for Task<T, E> {}

impl<T, E> Task<T, E> {
    pub(crate) fn new(cell: Arc<dyn CellApi<T, E>>) -> Self {
        Task {
            cell,
            _outcome: PhantomData,
        }
    }

    #[inline]
    fn header(&self) -> &Header {
        self.cell.header()
    }

    /// Blocks until the task is done, then moves out its value or why there is none.
    /// Python: `future.result()`. To read it without consuming the task, use
    /// [`result_ref`](Task::result_ref).
    ///
    /// # Panics
    /// Only if the task was polled to completion as a [`Future`] before (which takes the
    /// value); no other read takes it.
    #[track_caller]
    pub fn result(self) -> Result<T, TaskError<E>> {
        self.header().wait_until(Deadline::NEVER);
        // SAFETY: done (seen with acquire), and `self` is the owning Task, by value.
        unsafe { self.cell.take() }.expect(TAKEN)
    }

    /// Waits at most `timeout` for the task; `Err(TaskError::Timeout)` if it is not done by
    /// then (the task goes on, and this `Task` can be waited on again). Otherwise returns a
    /// copy of its result, which stays in the task: it can be read again, by this call,
    /// [`result_ref`](Task::result_ref) or [`result`](Task::result), from any thread.
    /// Python: `future.result(timeout=t)`. For a value that is not `Clone`, use
    /// [`result_ref_timeout`](Task::result_ref_timeout).
    ///
    /// A zero timeout checks once; a timeout too large to represent waits forever.
    ///
    /// # Panics
    /// As [`result`](Task::result).
    #[track_caller]
    pub fn result_timeout(&self, timeout: Duration) -> Result<T, TaskError<E>>
    where
        T: Clone,
        E: Clone,
    {
        match self.result_ref_timeout(timeout) {
            Ok(outcome) => outcome.cloned().map_err(Clone::clone),
            Err(TimeoutError) => Err(TaskError::Timeout),
        }
    }

    /// Blocks until the task is done, then lends its result: Python's `future.result()`,
    /// which any number of threads may call any number of times. The value stays in the
    /// task.
    ///
    /// # Panics
    /// As [`result`](Task::result).
    #[track_caller]
    pub fn result_ref(&self) -> Result<&T, &TaskError<E>> {
        self.header().wait_until(Deadline::NEVER);
        self.done_outcome()
    }

    /// Waits at most `timeout`, then lends the task's result, or returns
    /// `Err(TimeoutError)` if it is not done yet (the same shape as
    /// [`error_timeout`](Task::error_timeout)). Python: `future.result(timeout=t)`.
    ///
    /// # Panics
    /// As [`result`](Task::result).
    #[track_caller]
    pub fn result_ref_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Result<&T, &TaskError<E>>, TimeoutError> {
        if !self.header().wait_until(Deadline::after(timeout)) {
            return Err(TimeoutError);
        }
        Ok(self.done_outcome())
    }

    #[track_caller]
    fn done_outcome(&self) -> Result<&T, &TaskError<E>> {
        // SAFETY: done (seen with acquire); `&self` borrows the owner, so nobody can take the
        // outcome while the returned reference lives.
        unsafe { self.cell.outcome() }.expect(TAKEN).as_ref()
    }

    /// Blocks until the task is done (finished, failed or cancelled).
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn wait(&self) {
        self.header().wait_until(Deadline::NEVER);
    }

    /// Waits at most `timeout` for the task; whether it is done.
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.header().wait_until(Deadline::after(timeout))
    }

    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub(crate) fn wait_deadline(&self, deadline: Deadline) -> bool {
        self.header().wait_until(deadline)
    }

    /// Blocks until the task is done, then returns its error, or `None` if it succeeded.
    /// Python: `future.exception()`.
    ///
    /// # Panics
    /// If the result was already taken.
    #[track_caller]
    #[doc(alias = "exception")]
    pub fn error(&self) -> Option<&TaskError<E>> {
        self.header().wait_until(Deadline::NEVER);
        self.done_error()
    }

    /// Waits at most `timeout`, then returns the task's error (`Ok(None)` if it succeeded),
    /// or `Err(TimeoutError)` if it is not done yet. Python: `future.exception(timeout=t)`.
    ///
    /// # Panics
    /// If the result was already taken.
    #[track_caller]
    #[doc(alias = "exception")]
    pub fn error_timeout(&self, timeout: Duration) -> Result<Option<&TaskError<E>>, TimeoutError> {
        if !self.header().wait_until(Deadline::after(timeout)) {
            return Err(TimeoutError);
        }
        Ok(self.done_error())
    }

    #[track_caller]
    fn done_error(&self) -> Option<&TaskError<E>> {
        // SAFETY: done (seen with acquire); `&self` borrows the owner, so nobody can take the
        // outcome while the returned reference lives.
        unsafe { self.cell.outcome() }.expect(TAKEN).as_ref().err()
    }

    /// Cancels the task if it has not started: then it never runs, and its result is
    /// `Err(TaskError::Cancelled)`. Returns `true` if the task is cancelled (now or before),
    /// `false` if it is running or done. Python: `future.cancel()`.
    ///
    /// When this returns `true`, the task is done: callbacks have run and waiters are woken.
    pub fn cancel(&self) -> bool {
        self.cell.cancel()
    }

    /// Whether the task was cancelled. Python: `future.cancelled()`.
    #[doc(alias = "cancelled")]
    pub fn is_cancelled(&self) -> bool {
        self.header().is_cancelled()
    }

    /// Whether a worker is running the task right now (its done-callbacks included).
    /// Python: `future.running()`.
    #[doc(alias = "running")]
    pub fn is_running(&self) -> bool {
        self.header().is_running()
    }

    /// Whether the task is done: finished, failed or cancelled. Python: `future.done()`.
    #[doc(alias = "done")]
    pub fn is_done(&self) -> bool {
        self.header().is_done()
    }

    /// Calls `callback` with the task's outcome once it is done: on the thread that
    /// completes it (a worker, or a canceller), before [`result`](Task::result) returns to
    /// anyone; or at once, on this thread, if it is already done. Callbacks run in the order
    /// they were added. A callback that panics is reported by the panic hook and otherwise
    /// ignored: the task, the other callbacks and the worker are unaffected. Python:
    /// `future.add_done_callback(fn)`.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use pytandem::executor::ThreadPoolExecutor;
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let (tx, rx) = mpsc::channel();
    /// let task = pool.submit(|| 6 * 7)?;
    /// task.add_done_callback(move |outcome| tx.send(outcome.clone()).unwrap());
    /// assert_eq!(rx.recv().unwrap(), Ok(42));
    /// # Ok::<(), pytandem::executor::SubmitError>(())
    /// ```
    ///
    /// # Panics
    /// If the task is done and its result was already taken.
    #[track_caller]
    pub fn add_done_callback(
        &self,
        callback: impl FnOnce(&Result<T, TaskError<E>>) + Send + 'static,
    ) where
        T: Send + Sync,
        E: Send + Sync,
    {
        cell::add_done_callback(&*self.cell, callback);
    }
}

impl<T, E> Future for Task<T, E> {
    type Output = Result<T, TaskError<E>>;

    /// Ready once the task is done, with its result; the waker is woken by the completing
    /// thread. No runtime is needed: any executor (or `block_on`) can drive it.
    ///
    /// # Panics
    /// If polled again after it returned `Ready`.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let header = this.cell.header();
        if header.is_done() || !header.register_waker(cx.waker()) {
            // SAFETY: done (seen with acquire), and `Pin<&mut Self>` is exclusive access to
            // the owner.
            return Poll::Ready(unsafe { this.cell.take() }.expect(TAKEN));
        }
        Poll::Pending
    }
}

impl<T, E> sealed::Sealed for Task<T, E> {}

impl<T, E> Waitable for Task<T, E> {
    fn header(&self) -> &Header {
        self.cell.header()
    }
}

impl<T, E> fmt::Debug for Task<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = self.header();
        let state = if h.is_cancelled() {
            "cancelled"
        } else if h.is_done() {
            "done"
        } else if h.is_running() {
            "running"
        } else {
            "pending"
        };
        f.debug_struct("Task").field("state", &state).finish()
    }
}
