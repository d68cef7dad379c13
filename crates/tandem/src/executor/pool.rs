//! `ThreadPoolExecutor`: Python's `concurrent.futures.ThreadPoolExecutor`.

use std::cell::Cell as StdCell;
use std::convert::Infallible;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::AtomicU64 as StdAtomicU64;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use crossbeam_utils::CachePadded;

use super::cell::{quietly, Cell, CellApi, Ending, Run};
use super::error::{drop_payload, panic_message, BrokenPool, BuildError, SubmitError};
use super::injector::{Injector, Job, Pushed};
use super::map::{Map, MapOptions};
use super::scope::{self, Scope};
use super::task::Task;
use crate::primitive::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::sync::Lock;

/// An initializer, run once by each worker before its first task.
type Initializer = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Numbers pools for their default thread names (`ThreadPoolExecutor-0_0`, as Python).
static POOL_COUNTER: StdAtomicU64 = StdAtomicU64::new(0);

thread_local! {
    /// The pool this thread is a worker of (its `Shared`'s address), or 0.
    static CURRENT_POOL: StdCell<usize> = const { StdCell::new(0) };
}

/// Python's default `max_workers`: `min(32, cpus + 4)`.
fn default_max_workers() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    32.min(cpus + 4)
}

/// One worker's counters. Each worker writes only its own slot (plain stores, no
/// read-modify-write, no shared cache line); readers sum the slots.
#[derive(Default)]
struct Slot {
    /// Running a task (from taking it until just before publishing its result).
    busy: AtomicBool,
    completed: AtomicU64,
    failed: AtomicU64,
    /// Jobs that were cancelled while queued and that this worker dropped.
    cancelled: AtomicU64,
}

impl Slot {
    #[inline]
    fn bump(counter: &AtomicU64) {
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Called after a task ran, before its result is published.
    #[inline]
    fn finishing(&self, ending: Ending) {
        self.busy.store(false, Ordering::Relaxed);
        match ending {
            Ending::Ok => Slot::bump(&self.completed),
            Ending::Error => Slot::bump(&self.failed),
            Ending::Cancelled => Slot::bump(&self.cancelled),
        }
    }
}

/// What the executor handle and its workers share.
struct Shared {
    queue: Injector,
    max_workers: usize,
    prefix: String,
    initializer: Option<Initializer>,
    /// One per worker index, created when the worker is reserved.
    slots: Box<[OnceLock<Box<CachePadded<Slot>>>]>,
    handles: Lock<Vec<JoinHandle<()>>>,
    shut_down: AtomicBool,
    broken: OnceLock<BrokenPool>,
    /// Tasks cancelled or failed by `shutdown(cancel_futures)` or a broken pool, outside any
    /// worker.
    drained_cancelled: AtomicU64,
    drained_failed: AtomicU64,
}

impl Shared {
    fn slot(&self, index: usize) -> Option<&Slot> {
        self.slots.get(index)?.get().map(|s| &***s)
    }

    /// Busy workers among the first `started`.
    fn busy(&self, started: usize) -> usize {
        (0..started.min(self.slots.len()))
            .filter_map(|i| self.slot(i))
            .filter(|s| s.busy.load(Ordering::Relaxed))
            .count()
    }

    fn on_own_worker(self: &Arc<Self>) -> bool {
        CURRENT_POOL.with(|c| c.get()) == Arc::as_ptr(self) as usize
    }

    fn refusal(&self) -> SubmitError {
        match self.broken.get() {
            Some(b) => SubmitError::BrokenPool(b.clone()),
            None => SubmitError::ShutDown,
        }
    }

    /// Queues a job, starting a worker if the queue decides so. `task` is the job's task,
    /// borrowed from the submitter's own reference (to cancel it if no worker can start).
    #[inline]
    fn push(self: &Arc<Self>, job: Job, task: &dyn Run) -> Result<(), SubmitError> {
        match self
            .queue
            .push(job, self.max_workers, |started| self.busy(started))
        {
            Ok(Pushed::Queued) => Ok(()),
            Ok(Pushed::Spawn(index)) => self.spawn(index, task),
            Err(job) => {
                drop(job);
                Err(self.refusal())
            }
        }
    }

    /// Starts worker `index` (reserved by the queue). If it cannot start and no worker is
    /// left to run `task`, cancels `task` and reports the error.
    #[cold]
    fn spawn(self: &Arc<Self>, index: usize, task: &dyn Run) -> Result<(), SubmitError> {
        // The queue hands out indices below `max_workers`, reusing those of failed starts.
        let slot = &self.slots[index];
        let _ = slot.set(Box::default());
        let shared = Arc::clone(self);
        // Held from before the thread exists until its handle is stored: a racing
        // `shutdown(wait = true)` that saw the worker leave then waits here for its handle,
        // and joins it.
        let mut handles = self.handles.acquire();
        let spawned = spawn_thread(
            std::thread::Builder::new().name(format!("{}_{index}", self.prefix)),
            move || worker_main(shared, index),
        );
        match spawned {
            Ok(handle) => {
                handles.push(handle);
                Ok(())
            }
            Err(e) => {
                drop(handles);
                if self.queue.spawn_failed(index) != 0 {
                    // Other workers live: one of them runs it.
                    self.queue.wake_sleeper();
                    return Ok(());
                }
                // No worker at all: nothing queued can run. Cancel it all (owners are told)
                // rather than leave it pending; a later submission starts a worker again.
                let ours = task.cancel_unstarted();
                let others = self.queue.cancel_all();
                self.drained_cancelled
                    .fetch_add((usize::from(ours) + others) as u64, Ordering::Relaxed);
                if ours {
                    Err(SubmitError::Spawn(e))
                } else {
                    Ok(()) // a worker started meanwhile took it
                }
            }
        }
    }

    /// An initializer failed: no task runs anymore here (Python's `_initializer_failed`).
    fn break_pool(&self, message: String) {
        let _ = self.broken.set(BrokenPool::new(message));
        let broken = self.broken.get().expect("just set");
        self.queue.close();
        let failed = self.queue.fail_all(broken);
        self.drained_failed
            .fetch_add(failed as u64, Ordering::Relaxed);
    }
}

/// Starts a worker thread. In tests, `FAIL_SPAWNS` makes the next few starts on this thread
/// fail, as the operating system may, and `AFTER_SPAWN` runs once a thread has started.
fn spawn_thread(
    builder: std::thread::Builder,
    f: impl FnOnce() + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    #[cfg(all(test, not(tandem_loom)))]
    if tests::FAIL_SPAWNS.with(|n| n.replace(n.get().saturating_sub(1))) != 0 {
        return Err(std::io::Error::other("spawn failure injected by a test"));
    }
    let handle = builder.spawn(f)?;
    #[cfg(all(test, not(tandem_loom)))]
    if let Some(hook) = tests::AFTER_SPAWN.with(|h| h.take()) {
        hook();
    }
    Ok(handle)
}

fn worker_main(shared: Arc<Shared>, index: usize) {
    CURRENT_POOL.with(|c| c.set(Arc::as_ptr(&shared) as usize));
    if let Some(init) = &shared.initializer {
        let failure = match panic::catch_unwind(AssertUnwindSafe(init)) {
            Ok(Ok(())) => None,
            Ok(Err(message)) => Some(message),
            Err(payload) => {
                let message = panic_message(&*payload);
                drop_payload(payload);
                Some(format!("panicked: {message}"))
            }
        };
        if let Some(message) = failure {
            shared.break_pool(message);
            shared.queue.leave();
            return;
        }
    }
    let slot = shared.slot(index).expect("slot created before the worker");
    let finishing = |ending| slot.finishing(ending);
    while let Some(job) = shared.queue.pop(&slot.busy) {
        if !job.task.run(&finishing) {
            // Cancelled while queued: nothing ran.
            slot.finishing(Ending::Cancelled);
        }
        // If the Task was dropped, this frees the result here: its destructor is user code,
        // and a panic in it must not kill the worker.
        quietly(move || drop(job));
    }
}

/// A pool of worker threads that run submitted closures and hand back their results:
/// Python's `concurrent.futures.ThreadPoolExecutor`.
///
/// | Python | tandem |
/// | --- | --- |
/// | `ThreadPoolExecutor()` | [`ThreadPoolExecutor::new()`] |
/// | `ThreadPoolExecutor(max_workers=4)` | `ThreadPoolExecutor::with_max_workers(4)` |
/// | `ThreadPoolExecutor(max_workers=4, thread_name_prefix="io", initializer=f)` | `ThreadPoolExecutor::builder().max_workers(4).thread_name_prefix("io").initializer(f).build()?` |
/// | `f = ex.submit(fn, a)` | `let t = pool.submit(move \|\| fn(a))?` → [`Task`] |
/// | `ex.submit(fn_that_raises)` | [`submit_fallible`](Self::submit_fallible) for closures returning `Result` |
/// | `ex.map(fn, items)` | `pool.map(fn, items)?` → [`Map`], every item submitted at the call |
/// | `ex.map(fn, items, timeout=t)` | `pool.map(fn, items)?.timeout(t)` |
/// | `ex.map(fn, items, buffersize=n)` | `pool.map_with(fn, items, MapOptions::new().buffersize(n))?` |
/// | `ex.map(fn, items)` with a `fn` or `items` that borrow | `pool.scope(\|s\| s.map(fn, &items))` → [`ScopeMap`](super::ScopeMap) |
/// | `ex.shutdown(wait=True, cancel_futures=False)` | `pool.shutdown(true, false)` |
/// | `with ThreadPoolExecutor() as ex:` | the pool's `Drop` (shuts down and waits) |
/// | (no equivalent) | [`scope`](Self::scope): tasks borrowing from the stack |
/// | (no equivalent) | [`stats`](Self::stats): workers alive/idle, tasks queued/running/… |
///
/// # Examples
/// The seeds' I/O-bound pool: many slow calls overlap.
/// ```
/// use std::time::Duration;
/// use pytandem::executor::ThreadPoolExecutor;
///
/// fn download(page: u32) -> String {
///     std::thread::sleep(Duration::from_millis(20)); // stands for the network
///     format!("page {page}")
/// }
///
/// let pool = ThreadPoolExecutor::builder().max_workers(10).build()?;
/// let tasks: Vec<_> = (0..10).map(|p| pool.submit(move || download(p)).unwrap()).collect();
/// let pages: Vec<String> = tasks.into_iter().map(|t| t.result().unwrap()).collect();
/// assert_eq!(pages[3], "page 3");
/// # Ok::<(), pytandem::executor::BuildError>(())
/// ```
///
/// # Workers
/// Workers start lazily: a submission starts one only when fewer than `max_workers` live and
/// the queued tasks outnumber the idle workers, so an idle worker is reused before a new
/// one starts. Tasks start in submission order (FIFO). A task that panics fails only its own
/// [`Task`] (with the panic message); its worker goes on. An idle worker sleeps in the wait
/// layer and uses no CPU.
///
/// # A panicking task also prints to stderr
/// Rust runs the process's panic hook when the panic happens, before the worker catches it
/// for the task's [`Task`]: with the default hook, `thread '<worker name>' panicked at
/// <file:line>` and the message appear on stderr at once, even if the task's result is
/// never read. (Python prints nothing until `result()` re-raises the exception.) The hook is
/// process-wide: to silence or redirect these reports, install one with
/// `std::panic::set_hook`; the [`TaskError::Panicked`](crate::executor::TaskError::Panicked)
/// message is kept either way.
///
/// # Shutdown and drop
/// [`shutdown`](Self::shutdown) refuses new work; queued tasks still run (unless
/// `cancel_futures`), then the workers exit. Dropping the pool is
/// `shutdown(wait = true, cancel_futures = false)`: it returns when every task submitted has
/// finished and every worker has exited, as Python's `with` block does. Called on one of the
/// pool's own workers (a task dropping the last handle), the wait is skipped: a worker cannot
/// wait for itself.
///
/// # Differences from Python
/// - `submit` returns `Result`: after shutdown, or when the pool is broken, it is an error
///   value, not an exception.
/// - `map` yields every item's result, a panicking item's as `Err` (Python's iterator
///   stops at the first exception); it also takes a `chunksize`
///   ([`MapOptions::chunksize`]), which Python's thread pool ignores.
/// - Tasks may borrow from the caller's stack through [`scope`](Self::scope).
pub struct ThreadPoolExecutor {
    shared: Arc<Shared>,
}

/// Configures a [`ThreadPoolExecutor`]: Python's constructor arguments.
pub struct Builder {
    max_workers: Option<usize>,
    prefix: Option<String>,
    initializer: Option<Initializer>,
}

impl Builder {
    /// The defaults: `min(32, cpus + 4)` workers, threads named
    /// `ThreadPoolExecutor-<n>_<i>`, no initializer.
    pub fn new() -> Self {
        Builder {
            max_workers: None,
            prefix: None,
            initializer: None,
        }
    }

    /// At most `n` worker threads (Python's `max_workers`). Zero is refused by
    /// [`build`](Builder::build).
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max_workers = Some(n);
        self
    }

    /// Names the workers `<prefix>_<i>` (Python's `thread_name_prefix`).
    pub fn thread_name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Runs `f` on each worker before its first task (Python's `initializer`; capture the
    /// `initargs`). If it panics, the pool is broken: queued tasks fail with
    /// [`TaskError::BrokenPool`](super::TaskError::BrokenPool) and later submissions with
    /// [`SubmitError::BrokenPool`].
    pub fn initializer(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.initializer = Some(Box::new(move || {
            f();
            Ok(())
        }));
        self
    }

    /// Like [`initializer`](Builder::initializer), for one that can fail: an `Err` breaks the
    /// pool as a panic does, with the error's message.
    pub fn try_initializer<E: fmt::Display>(
        mut self,
        f: impl Fn() -> Result<(), E> + Send + Sync + 'static,
    ) -> Self {
        self.initializer = Some(Box::new(move || f().map_err(|e| e.to_string())));
        self
    }

    /// Builds the pool; no thread starts until the first submission.
    pub fn build(self) -> Result<ThreadPoolExecutor, BuildError> {
        let max_workers = self.max_workers.unwrap_or_else(default_max_workers);
        if max_workers == 0 {
            return Err(BuildError::ZeroWorkers);
        }
        let prefix = self.prefix.unwrap_or_else(|| {
            format!(
                "ThreadPoolExecutor-{}",
                POOL_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            )
        });
        Ok(ThreadPoolExecutor {
            shared: Arc::new(Shared {
                queue: Injector::new(),
                max_workers,
                prefix,
                initializer: self.initializer,
                slots: (0..max_workers).map(|_| OnceLock::new()).collect(),
                handles: Lock::new(Vec::new()),
                shut_down: AtomicBool::new(false),
                broken: OnceLock::new(),
                drained_cancelled: AtomicU64::new(0),
                drained_failed: AtomicU64::new(0),
            }),
        })
    }
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("max_workers", &self.max_workers)
            .field("thread_name_prefix", &self.prefix)
            .field("initializer", &self.initializer.is_some())
            .finish()
    }
}

/// A snapshot of a pool's activity (the seeds' "monitor thread resources"). Counts are
/// read without stopping the pool, so they may be a moment apart from one another.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// The pool's `max_workers`.
    pub max_workers: usize,
    /// Worker threads started (or starting) and not yet exited.
    pub workers_alive: usize,
    /// Live workers not running a task.
    pub workers_idle: usize,
    /// Tasks waiting in the queue (including ones cancelled there and not yet dropped).
    pub tasks_queued: usize,
    /// Tasks running right now.
    pub tasks_running: usize,
    /// Tasks that returned a value.
    pub tasks_completed: u64,
    /// Tasks that panicked, returned `Err`, or were failed by a broken pool.
    pub tasks_failed: u64,
    /// Tasks the pool dropped because they were cancelled: counted when a worker reaches
    /// them in the queue, or when `shutdown(cancel_futures)` cancels them.
    pub tasks_cancelled: u64,
}

impl ThreadPoolExecutor {
    /// A pool with Python's defaults (`min(32, cpus + 4)` workers, started lazily).
    /// Python: `ThreadPoolExecutor()`.
    pub fn new() -> Self {
        Builder::new()
            .build()
            .expect("the default configuration is valid")
    }

    /// A pool of at most `n` workers (started lazily), otherwise Python's defaults.
    /// Python: `ThreadPoolExecutor(max_workers=n)`; for names or an initializer, use
    /// [`builder`](Self::builder).
    ///
    /// ```
    /// use pytandem::executor::ThreadPoolExecutor;
    ///
    /// let pool = ThreadPoolExecutor::with_max_workers(4);
    /// assert_eq!(pool.max_workers(), 4);
    /// let squares: Result<Vec<u64>, _> = pool.map(|x: u64| x * x, 1..=4)?.collect();
    /// assert_eq!(squares?, [1, 4, 9, 16]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Panics
    /// If `n` is 0 (Python: `ValueError: max_workers must be greater than 0`);
    /// `builder().max_workers(n).build()` returns that as [`BuildError::ZeroWorkers`].
    #[track_caller]
    #[doc(alias = "max_workers")]
    pub fn with_max_workers(n: usize) -> Self {
        match Builder::new().max_workers(n).build() {
            Ok(pool) => pool,
            Err(e) => panic!("ThreadPoolExecutor::with_max_workers({n}): {e}"),
        }
    }

    /// Configures a pool: worker count, thread names, initializer.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// Submits `f` to run on a worker; the returned [`Task`] gives its value (or its panic).
    /// Python: `executor.submit(fn, *args)`.
    ///
    /// Fails with [`SubmitError::ShutDown`] after [`shutdown`](Self::shutdown) and with
    /// [`SubmitError::BrokenPool`] once an initializer failed; the closure is then dropped
    /// unrun.
    #[inline]
    pub fn submit<F, T>(&self, f: F) -> Result<Task<T>, SubmitError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_cell(Cell::new(move || Ok::<T, Infallible>(f())))
    }

    /// Submits a closure that returns `Result`: its `Err(e)` comes back as
    /// [`TaskError::Failed(e)`](super::TaskError::Failed), so a task can fail without
    /// panicking (Python: a task that raises).
    ///
    /// ```
    /// use pytandem::executor::{TaskError, ThreadPoolExecutor};
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let t = pool.submit_fallible(|| "42".parse::<u8>())?;
    /// assert_eq!(t.result(), Ok(42));
    /// let t = pool.submit_fallible(|| "x".parse::<u8>())?;
    /// assert!(matches!(t.result(), Err(TaskError::Failed(_))));
    /// # Ok::<(), pytandem::executor::SubmitError>(())
    /// ```
    #[inline]
    pub fn submit_fallible<F, T, E>(&self, f: F) -> Result<Task<T, E>, SubmitError>
    where
        F: FnOnce() -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        self.submit_cell(Cell::new(f))
    }

    #[inline]
    fn submit_cell<T, E, F>(&self, cell: Cell<T, E, F>) -> Result<Task<T, E>, SubmitError>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: FnOnce() -> Result<T, E> + Send + 'static,
    {
        let cell = Arc::new(cell);
        let job = Job {
            task: Arc::clone(&cell) as Arc<dyn Run>,
            ticket: None,
        };
        self.submit_job(job, &*cell)?;
        Ok(Task::new(cell as Arc<dyn CellApi<T, E>>))
    }

    /// Queues a type-erased job (plain or scoped); `task` is its task, borrowed from the
    /// submitter's own reference.
    #[inline]
    pub(crate) fn submit_job(&self, job: Job, task: &dyn Run) -> Result<(), SubmitError> {
        self.shared.push(job, task)
    }

    /// Applies `f` to every item on the pool and yields the results in input order:
    /// Python's `executor.map(fn, items)`. Every item is submitted now, at the call (as
    /// Python does), so a [`shutdown`](Self::shutdown) right after still runs them all and
    /// the returned [`Map`] still yields their results. Add a deadline with
    /// [`Map::timeout`]; for a bounded look-ahead (Python 3.14's `buffersize`) or chunks,
    /// use [`map_with`](Self::map_with).
    ///
    /// # Errors
    /// The pool's refusal, at the call: [`SubmitError::ShutDown`] after `shutdown` (Python:
    /// `RuntimeError: cannot schedule new futures after shutdown`),
    /// [`SubmitError::BrokenPool`] once an initializer failed. The tasks submitted before a
    /// refusal (a shutdown racing the call) are cancelled: no one could read their results.
    ///
    /// ```
    /// use pytandem::executor::{SubmitError, ThreadPoolExecutor};
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let squares = pool.map(|x: u64| x * x, 1..=5)?;
    /// pool.shutdown(true, false); // the items were submitted at the call: they all ran
    /// assert_eq!(squares.collect::<Result<Vec<_>, _>>().unwrap(), [1, 4, 9, 16, 25]);
    ///
    /// // After shutdown, the call itself fails.
    /// assert!(matches!(pool.map(|x: u64| x, 0..3), Err(SubmitError::ShutDown)));
    /// # Ok::<(), SubmitError>(())
    /// ```
    #[doc(alias = "ThreadPoolExecutor.map")]
    pub fn map<I, F, T>(&self, f: F, items: I) -> Result<Map<'_, I::IntoIter, F, T>, SubmitError>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        self.map_with(f, items, MapOptions::new())
    }

    /// [`map`](Self::map) with [`MapOptions`]: Python's `executor.map(fn, items,
    /// buffersize=n)` is `pool.map_with(fn, items, MapOptions::new().buffersize(n))`, which
    /// submits `n` tasks at the call and one more each time a result is taken, so the input
    /// is read only that far ahead; [`MapOptions::chunksize`] sends items in chunks.
    ///
    /// # Errors
    /// As [`map`](Self::map), for the tasks submitted at the call. A refusal of a task
    /// submitted later (a `buffersize` look-ahead meeting a shutdown) comes in order, as
    /// `Err(TaskError::ShutDown)` for its items (never `Cancelled`), and ends the iteration.
    ///
    /// ```
    /// use pytandem::executor::{MapOptions, ThreadPoolExecutor};
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let opts = MapOptions::new().buffersize(8).chunksize(2);
    /// let first: Vec<u64> = pool.map_with(|x: u64| x + 1, 0.., opts)?.take(3).map(Result::unwrap).collect();
    /// assert_eq!(first, [1, 2, 3]);
    /// # Ok::<(), pytandem::executor::SubmitError>(())
    /// ```
    pub fn map_with<I, F, T>(
        &self,
        f: F,
        items: I,
        options: MapOptions,
    ) -> Result<Map<'_, I::IntoIter, F, T>, SubmitError>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        Map::new(self, f, items.into_iter(), options)
    }

    /// Runs `f` with a [`Scope`] whose tasks may borrow from the caller's stack, and returns
    /// once every task submitted in it is done — like `std::thread::scope`, with the pool's
    /// workers instead of new threads.
    ///
    /// ```
    /// use pytandem::executor::ThreadPoolExecutor;
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let data = vec![1, 2, 3, 4, 5, 6];
    /// let total: i32 = pool.scope(|s| {
    ///     let halves: Vec<_> = data
    ///         .chunks(3)
    ///         .map(|half| s.submit(move || half.iter().sum::<i32>()).unwrap())
    ///         .collect();
    ///     halves.into_iter().map(|t| t.result().unwrap()).sum()
    /// });
    /// assert_eq!(total, 21);
    /// ```
    ///
    /// Don't call it from one of this pool's own tasks when every worker may be busy
    /// waiting the same way: the scoped tasks would have no worker left to run on.
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn scope<'env, F, R>(&'env self, f: F) -> R
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
    {
        scope::scope(self, f)
    }

    /// Stops accepting tasks. Queued tasks still run unless `cancel_futures` (then they are
    /// cancelled: their result is `Err(TaskError::Cancelled)`); running ones finish. With
    /// `wait`, returns once every worker has exited (so every task that was not cancelled is
    /// done). Python: `executor.shutdown(wait=True, cancel_futures=False)`. Calling it again
    /// is harmless.
    ///
    /// On one of the pool's own workers, `wait` is ignored: a worker cannot wait for
    /// itself.
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        let shared = &self.shared;
        shared.shut_down.store(true, Ordering::Relaxed);
        shared.queue.close();
        if cancel_futures {
            let cancelled = shared.queue.cancel_all();
            shared
                .drained_cancelled
                .fetch_add(cancelled as u64, Ordering::Relaxed);
        }
        if wait && !shared.on_own_worker() {
            shared.queue.wait_all_exited();
            // Only if workers failed to start can tasks be left with no one to run them.
            let stranded = shared.queue.cancel_all();
            shared
                .drained_cancelled
                .fetch_add(stranded as u64, Ordering::Relaxed);
            let handles = std::mem::take(&mut *shared.handles.acquire());
            for handle in handles {
                // The worker has left its loop; this waits only for the thread to end.
                let _ = handle.join();
            }
        }
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutdown(&self) -> bool {
        self.shared.shut_down.load(Ordering::Relaxed)
    }

    /// Why the pool is broken, if an initializer failed.
    pub fn broken(&self) -> Option<&BrokenPool> {
        self.shared.broken.get()
    }

    /// The pool's `max_workers`.
    pub fn max_workers(&self) -> usize {
        self.shared.max_workers
    }

    /// A snapshot of the pool's workers and tasks.
    pub fn stats(&self) -> PoolStats {
        let shared = &self.shared;
        let mut stats = PoolStats {
            max_workers: shared.max_workers,
            workers_alive: shared.queue.alive(),
            tasks_queued: shared.queue.len(),
            tasks_cancelled: shared.drained_cancelled.load(Ordering::Relaxed),
            tasks_failed: shared.drained_failed.load(Ordering::Relaxed),
            ..PoolStats::default()
        };
        for i in 0..shared.queue.started().min(shared.slots.len()) {
            if let Some(slot) = shared.slot(i) {
                stats.tasks_running += usize::from(slot.busy.load(Ordering::Relaxed));
                stats.tasks_completed += slot.completed.load(Ordering::Relaxed);
                stats.tasks_failed += slot.failed.load(Ordering::Relaxed);
                stats.tasks_cancelled += slot.cancelled.load(Ordering::Relaxed);
            }
        }
        stats.workers_idle = stats.workers_alive.saturating_sub(stats.tasks_running);
        stats
    }
}

impl Default for ThreadPoolExecutor {
    fn default() -> Self {
        ThreadPoolExecutor::new()
    }
}

impl Drop for ThreadPoolExecutor {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

impl fmt::Debug for ThreadPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolExecutor")
            .field("thread_name_prefix", &self.shared.prefix)
            .field("shutdown", &self.is_shutdown())
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(all(test, not(tandem_loom)))]
mod tests {
    use super::*;
    use std::time::Duration;

    thread_local! {
        /// Worker starts still to fail on this thread (see `spawn_thread`).
        pub(super) static FAIL_SPAWNS: StdCell<usize> = const { StdCell::new(0) };
        /// Runs on this thread right after the next worker thread starts.
        pub(super) static AFTER_SPAWN: StdCell<Option<Box<dyn FnOnce()>>> =
            const { StdCell::new(None) };
    }

    /// Makes the next `n` worker starts on this thread fail.
    fn fail_spawns(n: usize) {
        FAIL_SPAWNS.with(|c| c.set(n));
    }

    /// A failed start gives its worker slot back: after as many failures as `max_workers`,
    /// the pool still reaches `max_workers` live workers (it used to refuse every task:
    /// "no worker slot left").
    #[test]
    fn failed_spawns_give_their_slots_back() {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(2)
            .build()
            .unwrap();
        fail_spawns(2);
        for _ in 0..2 {
            match pool.submit(|| ()) {
                Err(SubmitError::Spawn(_)) => {}
                other => panic!("expected a spawn failure, got {other:?}"),
            }
        }
        assert_eq!(pool.stats().workers_alive, 0);
        // Two tasks that meet: both must run at once, so both workers must start.
        let arrived: Arc<[crate::sync::Event; 2]> = Arc::new(Default::default());
        let tasks: Vec<_> = (0..2)
            .map(|i| {
                let arrived = Arc::clone(&arrived);
                pool.submit(move || {
                    arrived[i].set();
                    arrived[1 - i].wait_timeout(Duration::from_secs(30))
                })
                .expect("a worker starts")
            })
            .collect();
        for t in tasks {
            assert!(t.result().unwrap());
        }
    }

    /// Sets its flag when dropped, after a pause that lets a `shutdown` that does not join
    /// the worker return first (the pause only widens that window; nothing waits on it).
    struct SetOnDrop(Arc<AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            std::thread::sleep(Duration::from_millis(100));
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// `shutdown(wait = true)` racing the submission that starts a worker still joins that
    /// worker's thread (it used to miss a handle stored after it looked).
    #[test]
    fn shutdown_joins_a_worker_started_by_a_racing_submit() {
        thread_local!(static GUARD: StdCell<Option<SetOnDrop>> = const { StdCell::new(None) });
        let pool = Arc::new(
            ThreadPoolExecutor::builder()
                .max_workers(1)
                .build()
                .unwrap(),
        );
        let gone = Arc::new(AtomicBool::new(false));
        let in_hook = Arc::new(crate::sync::Event::new());
        let submitter = {
            let (pool, gone, in_hook) =
                (Arc::clone(&pool), Arc::clone(&gone), Arc::clone(&in_hook));
            std::thread::spawn(move || {
                let pool2 = Arc::clone(&pool);
                AFTER_SPAWN.with(|h| {
                    h.set(Some(Box::new(move || {
                        in_hook.set();
                        // Stay between the start and storing the handle until shutdown has
                        // seen the worker leave (the pause after only widens the window in
                        // which an unfixed shutdown looks for handles).
                        let deadline = std::time::Instant::now() + Duration::from_secs(30);
                        while pool2.stats().workers_alive != 0
                            && std::time::Instant::now() < deadline
                        {
                            std::thread::yield_now();
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    })))
                });
                pool.submit(move || GUARD.with(|g| g.set(Some(SetOnDrop(gone)))))
                    .unwrap()
            })
        };
        assert!(in_hook.wait_timeout(Duration::from_secs(30)));
        pool.shutdown(true, false);
        assert!(
            gone.load(Ordering::SeqCst),
            "shutdown returned before the worker exited"
        );
        submitter.join().unwrap().result().unwrap();
    }
}
