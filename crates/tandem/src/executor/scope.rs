//! Scoped tasks: closures that borrow from the caller's stack, run on a pool's workers, all
//! finished before [`ThreadPoolExecutor::scope`] returns (like `std::thread::scope`).

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::mem;
use std::sync::Arc;

use super::cell::{Cell, CellApi, Run};
use super::error::{SubmitError, TaskError};
use super::injector::Job;
use super::pool::ThreadPoolExecutor;
use super::task::Task;
use crate::wait::{Deadline, Latch};

/// How many of a scope's jobs the pool still holds a reference to: a latch that opens when
/// the pool has let go of every one.
pub(crate) struct ScopeState {
    outstanding: Latch,
}

impl ScopeState {
    fn new() -> Self {
        ScopeState {
            outstanding: Latch::new(0),
        }
    }

    /// Blocks until the pool has let go of every job of the scope.
    #[cfg_attr(feature = "diagnostics", track_caller)]
    fn wait_all_released(&self) {
        self.outstanding.wait_until(Deadline::NEVER);
    }
}

/// Carried by a scoped job; dropped after the job's reference to its task, it tells the
/// scope the pool is done with that job.
pub(crate) struct ScopeTicket(Arc<ScopeState>);

impl Drop for ScopeTicket {
    fn drop(&mut self) {
        self.0.outstanding.count_down();
    }
}

/// A scope in which tasks may borrow anything that outlives it (`'env`). Made by
/// [`ThreadPoolExecutor::scope`].
///
/// A task's result may leave the scope, but not if it borrows what the scope borrowed:
/// ```compile_fail
/// use pytandem::executor::ThreadPoolExecutor;
///
/// let pool = ThreadPoolExecutor::new();
/// let task = {
///     let name = String::from("short-lived");
///     pool.scope(|s| s.submit(|| name.as_str()).unwrap()) // Task<&str> borrowing `name`
/// };
/// drop(task);
/// ```
/// and a scoped closure must still be `Send`, since a worker runs it:
/// ```compile_fail
/// use pytandem::executor::ThreadPoolExecutor;
///
/// let pool = ThreadPoolExecutor::new();
/// let counter = std::rc::Rc::new(1);
/// pool.scope(|s| {
///     s.submit(|| *counter + 1).unwrap();
/// });
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    pool: &'env ThreadPoolExecutor,
    state: Arc<ScopeState>,
    // Invariance, as in `std::thread::Scope`.
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Submits `f`, which may borrow from outside the scope, to the scope's pool. The scope
    /// does not end before the task is done (or cancelled) and the pool has let go of it.
    pub fn submit<F, T>(&'scope self, f: F) -> Result<Task<T>, SubmitError>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let cell = Arc::new(Cell::new(move || Ok::<T, Infallible>(f())));
        let run: Arc<dyn Run + 'scope> = Arc::clone(&cell) as Arc<dyn Run + 'scope>;
        let api: Arc<dyn CellApi<T, Infallible> + 'scope> = Arc::clone(&cell) as _;
        // SAFETY: only the lifetime bound of the trait objects changes. The pool's reference
        // (`run`) is dropped before its ticket, and `scope` does not return before every
        // ticket is dropped, so the pool never touches the cell after 'scope. The `Task`
        // (`api`) may outlive the scope only if `T` does (its type still carries `T`'s
        // lifetime); by then the closure — the one part that borrows for 'scope — has been
        // consumed by the worker or dropped by a canceller, since every way a job leaves the
        // pool runs or cancels it first; what remains in the cell is the outcome.
        let (run, api) = unsafe {
            (
                mem::transmute::<Arc<dyn Run + 'scope>, Arc<dyn Run + 'static>>(run),
                mem::transmute::<
                    Arc<dyn CellApi<T, Infallible> + 'scope>,
                    Arc<dyn CellApi<T, Infallible> + 'static>,
                >(api),
            )
        };
        self.state.outstanding.increment();
        let job = Job {
            task: run,
            ticket: Some(ScopeTicket(Arc::clone(&self.state))),
        };
        self.pool.submit_job(job, &*cell)?;
        Ok(Task::new(api))
    }

    /// Runs `f` on every item on the scope's pool, and gives the results in the items'
    /// order: Python's `executor.map(fn, iterable)`, over input that may borrow from the
    /// caller's stack (`&items`) and with an `f` that may borrow too. Every item is submitted
    /// at the call (one task each); a panicking item yields `Err(TaskError::Panicked(..))`
    /// for that item only.
    ///
    /// ```
    /// use pytandem::executor::ThreadPoolExecutor;
    ///
    /// let pool = ThreadPoolExecutor::with_max_workers(4);
    /// let words = vec!["tandem".to_string(), "is".into(), "here".into()];
    /// let suffix = "!"; // borrowed by `f`
    /// let shouted = pool.scope(|s| -> Result<Vec<String>, Box<dyn std::error::Error>> {
    ///     let results = s.map(|w: &String| format!("{w}{suffix}"), &words)?;
    ///     Ok(results.collect::<Result<_, _>>()?)
    /// })?;
    /// assert_eq!(shouted, ["tandem!", "is!", "here!"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`submit`](Self::submit): [`SubmitError`] if the pool refused an item; the items
    /// submitted before it still run, and the scope waits for them.
    #[doc(alias = "ThreadPoolExecutor.map")]
    pub fn map<I, F, T>(&'scope self, f: F, items: I) -> Result<ScopeMap<T>, SubmitError>
    where
        I: IntoIterator,
        I::Item: Send + 'scope,
        F: Fn(I::Item) -> T + Send + Sync + 'scope,
        T: Send + 'scope,
    {
        let f = Arc::new(f);
        let tasks = items
            .into_iter()
            .map(|item| {
                let f = Arc::clone(&f);
                self.submit(move || f(item))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ScopeMap {
            tasks: tasks.into_iter(),
        })
    }
}

/// The results of [`Scope::map`], in the items' order; each `next` waits for its item.
#[must_use = "the results are in the iterator; the tasks run either way"]
pub struct ScopeMap<T> {
    tasks: std::vec::IntoIter<Task<T>>,
}

impl<T> Iterator for ScopeMap<T> {
    type Item = Result<T, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.tasks.next().map(Task::result)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.tasks.size_hint()
    }
}

impl<T> ExactSizeIterator for ScopeMap<T> {}

impl<T> fmt::Debug for ScopeMap<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeMap")
            .field("remaining", &self.tasks.len())
            .finish()
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("outstanding", &self.state.outstanding.count())
            .finish()
    }
}

/// Runs `f` with a new scope on `pool`, then waits until the pool has let go of every task
/// submitted in it, even if `f` panics (the panic then continues).
#[cfg_attr(feature = "diagnostics", track_caller)]
pub(crate) fn scope<'env, F, R>(pool: &'env ThreadPoolExecutor, f: F) -> R
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
{
    let scope = Scope {
        pool,
        state: Arc::new(ScopeState::new()),
        _scope: PhantomData,
        _env: PhantomData,
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&scope)));
    scope.state.wait_all_released();
    match result {
        Ok(r) => r,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}
