//! `Pool`: Python's `multiprocessing.Pool` vocabulary (`apply`, `map`, `imap`,
//! `AsyncResult`, …) over the same worker processes as [`ProcessPoolExecutor`].

use crate::executor::{SubmitError, Task, TaskError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

use super::{PoolBuilder, PoolError, ProcessPoolExecutor, ProcessTask, WorkerError};

/// Python's `multiprocessing.Pool(processes)`: the same worker processes as
/// [`ProcessPoolExecutor`], with `Pool`'s vocabulary.
///
/// | Python | tandem |
/// | --- | --- |
/// | `pool.apply(f, (a,))` | `pool.apply(f, a)` |
/// | `pool.apply_async(f, (a,))` → `AsyncResult` | `pool.apply_async(f, a)?` → [`AsyncResult`]: `get`, `get_timeout`, `wait`, `ready`, `successful` |
/// | `pool.map(f, items, chunksize)` | `pool.map(f, items)` (chunks chosen as Python does), `pool.map_chunked(f, items, n)` |
/// | `pool.map_async(f, items)` → `MapResult` | `pool.map_async(f, items)?` → [`MapResult`]: `get`, `wait`, `ready`, `successful` |
/// | `pool.starmap(f, [(a, b), ...])` | `pool.starmap(f, items)` with `f: fn((A, B)) -> R` |
/// | `pool.imap(f, items)`, `imap_unordered` | `pool.imap(f, items)`, `pool.imap_unordered(f, items)` |
/// | `pool.close()`, `pool.terminate()`, `pool.join()` | the same |
///
/// A worker that dies fails only the task (or chunk) it ran — Python's `Pool` hangs.
///
/// ```
/// pytandem::process::init();
/// use pytandem::process::Pool;
///
/// fn square(x: u32) -> u32 {
///     x * x
/// }
///
/// let pool = Pool::new(4)?;
/// assert_eq!(pool.map(square, 0..10)?, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pool {
    executor: ProcessPoolExecutor,
}

/// A pool task's failure: Python's exception from `get()`.
pub type PoolTaskError = TaskError<WorkerError>;

/// A submission the pool refused, as a task's failure: it was shut down (or broken).
fn refused(e: SubmitError) -> PoolTaskError {
    match e {
        SubmitError::BrokenPool(b) => TaskError::BrokenPool(b),
        _ => TaskError::ShutDown,
    }
}

impl Pool {
    /// A pool of `processes` workers (Python's `Pool(processes)`).
    pub fn new(processes: usize) -> Result<Pool, PoolError> {
        Ok(Pool {
            executor: PoolBuilder::default().max_workers(processes).build()?,
        })
    }

    /// A pool with every [`PoolBuilder`] setting.
    pub fn with(builder: PoolBuilder) -> Result<Pool, PoolError> {
        Ok(Pool {
            executor: builder.build()?,
        })
    }

    /// Runs `f(args)` in a worker and waits for it (Python's `apply`).
    pub fn apply<A, R>(&self, f: fn(A) -> R, args: A) -> Result<R, PoolTaskError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.apply_async(f, args).map_err(refused)?.get()
    }

    /// Starts `f(args)` in a worker (Python's `apply_async`).
    pub fn apply_async<A, R>(&self, f: fn(A) -> R, args: A) -> Result<AsyncResult<R>, SubmitError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        Ok(AsyncResult {
            task: self.executor.submit(f, args)?,
        })
    }

    /// `f` over every item, in order (Python's `map`, with its default chunk size: the items
    /// split into about four chunks per worker).
    ///
    /// # Errors
    /// The first failed item's error (Python raises it from `map`).
    pub fn map<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<Vec<R>, PoolTaskError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        let items: Vec<A> = items.into_iter().collect();
        let chunksize = self.default_chunksize(items.len());
        self.map_chunked(f, items, chunksize)
    }

    /// [`map`](Pool::map) with an explicit `chunksize`.
    pub fn map_chunked<A, R, I>(
        &self,
        f: fn(A) -> R,
        items: I,
        chunksize: usize,
    ) -> Result<Vec<R>, PoolTaskError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        let results = self.executor.map(f, items, chunksize).map_err(refused)?;
        results.into_iter().collect()
    }

    /// Starts `f` over every item (Python's `map_async`): a [`MapResult`] to wait on. Items
    /// are chunked as [`map`](Pool::map) chunks them.
    pub fn map_async<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<MapResult<R>, SubmitError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        let items: Vec<A> = items.into_iter().collect();
        let chunksize = self.default_chunksize(items.len());
        let chunks = self.executor.submit_chunks(f, items, chunksize)?;
        Ok(MapResult {
            chunks: chunks.into_iter().map(|(_, t)| t).collect(),
        })
    }

    /// Python's `starmap`: the arguments are tuples (`f: fn((A, B)) -> R`), so this is
    /// [`map`](Pool::map) by another name.
    pub fn starmap<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<Vec<R>, PoolTaskError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        self.map(f, items)
    }

    /// `f` over every item, each result in input order as it is ready (Python's `imap`):
    /// all items are submitted at the call.
    pub fn imap<A, R, I>(
        &self,
        f: fn(A) -> R,
        items: I,
    ) -> Result<impl Iterator<Item = Result<R, PoolTaskError>>, SubmitError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        Ok(self.submit_each(f, items)?.into_iter().map(Task::result))
    }

    /// `f` over every item, each result as soon as it is ready, in completion order (Python's
    /// `imap_unordered`).
    pub fn imap_unordered<A, R, I>(
        &self,
        f: fn(A) -> R,
        items: I,
    ) -> Result<impl Iterator<Item = Result<R, PoolTaskError>>, SubmitError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        let tasks = self.submit_each(f, items)?;
        // No timeout: `as_completed` yields every task.
        Ok(crate::executor::as_completed(tasks, None)
            .map(|t| t.map_err(|_| TaskError::Timeout).and_then(Task::result)))
    }

    /// Python's default chunk size: about four chunks per worker.
    fn default_chunksize(&self, items: usize) -> usize {
        items.div_ceil(self.executor.max_workers() * 4).max(1)
    }

    /// One task per item, all submitted now.
    fn submit_each<A, R, I>(
        &self,
        f: fn(A) -> R,
        items: I,
    ) -> Result<Vec<ProcessTask<R>>, SubmitError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        items
            .into_iter()
            .map(|a| self.executor.submit(f, a))
            .collect()
    }

    /// No more tasks (Python's `close()`); running and queued ones finish.
    pub fn close(&self) {
        self.executor.shutdown(false, false);
    }

    /// Stops now (Python's `terminate()`): queued tasks are cancelled and the workers killed,
    /// which fails their running tasks.
    pub fn terminate(&self) {
        self.executor.shutdown(false, true);
        self.executor.kill_workers();
    }

    /// Waits for the pool's work to end after [`close`](Pool::close) or
    /// [`terminate`](Pool::terminate) (Python's `join()`).
    pub fn join(&self) {
        self.executor.shutdown(true, false);
    }

    /// The executor underneath, for `submit`, `wait` and `as_completed`.
    pub fn executor(&self) -> &ProcessPoolExecutor {
        &self.executor
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("processes", &self.executor.max_workers())
            .finish()
    }
}

/// Python's `AsyncResult` of [`Pool::map_async`]: the chunks of one `map`, in order.
#[derive(Debug)]
pub struct MapResult<R> {
    chunks: Vec<ProcessTask<Vec<R>>>,
}

impl<R> MapResult<R> {
    /// Waits for every item (Python's `get()`): the results in order, or the first error.
    pub fn get(self) -> Result<Vec<R>, PoolTaskError> {
        let mut out = Vec::new();
        for chunk in self.chunks {
            out.extend(chunk.result()?);
        }
        Ok(out)
    }

    /// Waits until every item is done, at most `timeout` if given (Python's `wait`);
    /// whether all are done.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
        self.chunks.iter().all(|c| match deadline {
            None => {
                c.wait();
                true
            }
            Some(d) => c.wait_timeout(d.saturating_duration_since(std::time::Instant::now())),
        })
    }

    /// Whether every item is done (Python's `ready()`).
    pub fn ready(&self) -> bool {
        self.chunks.iter().all(Task::is_done)
    }

    /// Whether every item succeeded, once all are done (Python's `successful()`).
    pub fn successful(&self) -> Option<bool> {
        self.ready()
            .then(|| self.chunks.iter().all(|c| c.error().is_none()))
    }
}

/// Python's `AsyncResult`: a task started by [`Pool::apply_async`].
#[derive(Debug)]
pub struct AsyncResult<R> {
    task: ProcessTask<R>,
}

impl<R> AsyncResult<R> {
    /// Waits for the result (Python's `get()`).
    pub fn get(self) -> Result<R, PoolTaskError> {
        self.task.result()
    }

    /// Waits at most `timeout` (Python's `get(timeout)`): `Err(TaskError::Timeout)` leaves
    /// the result to be had later. A copy: the result stays, for later calls.
    pub fn get_timeout(&self, timeout: Duration) -> Result<R, PoolTaskError>
    where
        R: Clone,
    {
        self.task.result_timeout(timeout)
    }

    /// Waits until it is ready, at most `timeout` if given (Python's `wait(timeout)`);
    /// whether it is ready.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        match timeout {
            Some(t) => self.task.wait_timeout(t),
            None => {
                self.task.wait();
                true
            }
        }
    }

    /// Whether it is done (Python's `ready()`).
    pub fn ready(&self) -> bool {
        self.task.is_done()
    }

    /// Whether it succeeded, once done (Python's `successful()`, which raises before then:
    /// `None`).
    pub fn successful(&self) -> Option<bool> {
        self.task.is_done().then(|| self.task.error().is_none())
    }

    /// The task underneath.
    pub fn into_task(self) -> ProcessTask<R> {
        self.task
    }
}
