//! `ProcessPoolExecutor` and `Pool` (Python's `concurrent.futures.ProcessPoolExecutor` and
//! `multiprocessing.Pool`): worker processes that survive a crashed task.
//!
//! # Design
//! The pool is a [`ThreadPoolExecutor`] whose every thread drives one worker process over a
//! [`Connection`]: a submitted task is an ordinary executor task that sends the job to its
//! thread's worker and waits for the answer. So process tasks are the same [`Task`] as thread
//! tasks (`wait`, `as_completed`, `cancel`, callbacks and `.await` mix both), and the pool's
//! queueing, cancellation and shutdown are the thread pool's, already tested.
//!
//! The thread knows which job its worker runs: when the worker dies (killed, a segfault,
//! `abort`, `exit` inside the job), exactly that job fails with [`WorkerError::Died`]
//! naming the pid and the signal or exit code, the dead worker is reaped (its supervisor does
//! that) and the thread starts a fresh one for its next job. Nothing else is affected —
//! Python's `ProcessPoolExecutor` raises `BrokenProcessPool` for every pending future and
//! refuses all later work, and `multiprocessing.Pool` hangs.
//!
//! A job is a plain `fn(A) -> R` found by its offset in the binary, as [`Process::spawn`]
//! finds its function; the arguments and result travel encoded with serde.

//!
//! - `mod.rs`: [`ProcessPoolExecutor`], its [`PoolBuilder`] and [`WorkerError`].
//! - `worker.rs`: jobs on the wire and the worker processes each pool thread drives.
//! - `mp.rs`: [`Pool`], [`AsyncResult`], [`MapResult`]: `multiprocessing.Pool`'s vocabulary.

mod mp;
mod worker;

pub use mp::{AsyncResult, MapResult, Pool, PoolTaskError};
use worker::*;

use super::codec;
use super::spawn::anchor_offset;
use crate::executor::{SubmitError, Task, TaskError, ThreadPoolExecutor};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// How a job that ran (or was meant to run) in a worker process failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerError {
    /// The job panicked in the worker; the message. The worker survives.
    Panicked(String),
    /// The worker process died while running this job (and only this job failed).
    Died {
        /// The worker's pid.
        pid: u32,
        /// The signal that killed it (9 for SIGKILL, 6 for `abort`, 11 for a segfault).
        signal: Option<i32>,
        /// Its exit code, if it exited (`exit(3)` inside the job).
        code: Option<i32>,
    },
    /// The job ran longer than the pool's task timeout: its worker was killed and replaced.
    Timeout {
        /// The worker's pid.
        pid: u32,
    },
    /// The arguments could not be encoded, or the result not decoded.
    Codec(String),
    /// A worker process could not be started.
    Spawn(String),
}

impl fmt::Display for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerError::Panicked(m) => write!(f, "the task panicked in its worker process: {m}"),
            WorkerError::Died {
                pid,
                signal: Some(s),
                ..
            } => write!(
                f,
                "the worker process {pid} running this task was killed by signal {s}; only this \
                 task failed and the worker was replaced"
            ),
            WorkerError::Died { pid, code, .. } => write!(
                f,
                "the worker process {pid} running this task exited (code {}) before the task \
                 returned; only this task failed and the worker was replaced",
                code.map_or_else(|| "unknown".into(), |c| c.to_string())
            ),
            WorkerError::Timeout { pid } => write!(
                f,
                "the task ran past the pool's task timeout: its worker process {pid} was killed \
                 and replaced"
            ),
            WorkerError::Codec(e) => write!(
                f,
                "the task's arguments or result could not be (de)serialized: {e}"
            ),
            WorkerError::Spawn(e) => write!(f, "a worker process could not be started: {e}"),
        }
    }
}

impl std::error::Error for WorkerError {}

/// What a process task's [`Task`] gives.
pub type ProcessTask<R> = Task<R, WorkerError>;

/// A submitted chunk of a `map`: how many items it holds, and its task.
type Chunk<R> = (usize, ProcessTask<Vec<R>>);

/// Settings for a [`ProcessPoolExecutor`] (Python's constructor keywords).
#[derive(Debug, Default)]
pub struct PoolBuilder {
    max_workers: Option<usize>,
    initializer: Option<fn()>,
    max_tasks_per_child: Option<usize>,
    task_timeout: Option<Duration>,
    retries: u32,
}

impl PoolBuilder {
    /// Worker processes (Python's `max_workers`; default [`cpu_count`](super::cpu_count)).
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max_workers = Some(n);
        self
    }

    /// Runs in every worker process before its first task (Python's `initializer`; a plain
    /// `fn()`: the worker finds it in its copy of the binary).
    pub fn initializer(mut self, f: fn()) -> Self {
        self.initializer = Some(f);
        self
    }

    /// Replaces a worker after it has run this many tasks (Python's `max_tasks_per_child`).
    pub fn max_tasks_per_child(mut self, n: usize) -> Self {
        self.max_tasks_per_child = Some(n);
        self
    }

    /// Fails a task that runs longer than `timeout` with [`WorkerError::Timeout`], killing and
    /// replacing its worker (Python has no such option).
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = Some(timeout);
        self
    }

    /// Runs a task again, on a fresh worker, up to `n` times if its worker dies (default 0).
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// Builds the pool. Worker processes start as tasks arrive.
    ///
    /// # Errors
    /// [`PoolError`] for zero workers, a `max_tasks_per_child` of 0, or a zero task timeout.
    pub fn build(self) -> Result<ProcessPoolExecutor, PoolError> {
        let workers = self.max_workers.unwrap_or_else(super::cpu_count);
        if workers == 0 {
            return Err(PoolError(
                "max_workers must be at least 1 (Python's ValueError)",
            ));
        }
        if self.max_tasks_per_child == Some(0) {
            return Err(PoolError(
                "max_tasks_per_child must be at least 1 (Python's ValueError)",
            ));
        }
        if self.task_timeout == Some(Duration::ZERO) {
            return Err(PoolError(
                "a task timeout of zero would fail every task: give a positive timeout",
            ));
        }
        let threads = ThreadPoolExecutor::builder()
            .max_workers(workers)
            .thread_name_prefix("tandem-process-pool")
            .build()
            .map_err(|_| PoolError("the pool's driving threads could not be started"))?;
        let settings = Settings {
            name: "ProcessPool".into(),
            workers: crate::sync::Lock::new(Vec::new()),
            terminated: std::sync::atomic::AtomicBool::new(false),
            initializer: self.initializer.map(|f| anchor_offset(f as usize)),
            max_tasks_per_child: self.max_tasks_per_child,
            task_timeout: self.task_timeout,
            retries: self.retries,
        };
        Ok(ProcessPoolExecutor {
            threads,
            settings: Arc::new(settings),
        })
    }
}

/// A pool that could not be built: what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolError(&'static str);

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for PoolError {}

/// Python's `concurrent.futures.ProcessPoolExecutor`: runs `fn(A) -> R` tasks in worker
/// processes, and survives a worker that crashes.
///
/// The vocabulary of [`ThreadPoolExecutor`]: `submit` returns the same [`Task`] (so
/// [`wait`](crate::executor::wait), [`as_completed`](crate::executor::as_completed),
/// `cancel`, callbacks and `.await` work on process tasks and mix with thread tasks), `map`
/// in order with a `chunksize`, `shutdown(wait, cancel_futures)`; dropping it waits for
/// running work. A task whose worker dies fails alone with [`WorkerError::Died`]; the worker
/// is replaced and the pool goes on (Python's raises `BrokenProcessPool` for every pending
/// task and refuses all later work). A panic fails only its task
/// ([`WorkerError::Panicked`]) and keeps the worker.
///
/// # Examples
/// ```
/// pytandem::process::init();
/// use pytandem::process::ProcessPoolExecutor;
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let pool = ProcessPoolExecutor::builder().max_workers(2).build()?;
/// let task = pool.submit(square, 7)?;
/// assert_eq!(task.result(), Ok(49));
/// let squares: Vec<u64> = pool.map(square, 0..10, 3)?.into_iter().map(Result::unwrap).collect();
/// assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ProcessPoolExecutor {
    threads: ThreadPoolExecutor,
    settings: Arc<Settings>,
}

impl ProcessPoolExecutor {
    /// A pool of [`cpu_count`](super::cpu_count) workers.
    pub fn new() -> Result<Self, PoolError> {
        PoolBuilder::default().build()
    }

    /// Settings before the start.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// The number of worker processes.
    pub fn max_workers(&self) -> usize {
        self.threads.max_workers()
    }

    fn submit_job<R, A>(
        &self,
        trampoline: isize,
        function: isize,
        args: &A,
    ) -> Result<ProcessTask<R>, SubmitError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        let encoded = codec::encode_into(args, Vec::new());
        let settings = Arc::clone(&self.settings);
        self.threads.submit_fallible(move || {
            let (bytes, fds) = encoded.map_err(|e| WorkerError::Codec(e.0))?;
            if !fds.is_empty() {
                return Err(WorkerError::Codec(
                    "a task's arguments cannot carry process handles (a Connection, Lock, ...): \
                     pass those to the workers through an initializer or a queue"
                        .into(),
                ));
            }
            let job = Job {
                trampoline,
                function,
                args: codec::Bytes(bytes),
            };
            let answer = run_job(&settings, &job)?;
            codec::decode(&answer, Vec::new())
                .map_err(|e| WorkerError::Codec(format!("the result: {}", e.0)))
        })
    }

    /// Runs `function(args)` in a worker process (Python's `submit(fn, *args)`).
    ///
    /// # Errors
    /// [`SubmitError`] after [`shutdown`](Self::shutdown). Failures of the task itself come
    /// through its [`Task`] as [`TaskError::Failed`]`(`[`WorkerError`]`)`.
    pub fn submit<A, R>(&self, function: fn(A) -> R, args: A) -> Result<ProcessTask<R>, SubmitError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let trampoline = anchor_offset(job_trampoline::<A, R> as JobTrampoline as usize);
        self.submit_job(
            trampoline,
            anchor_offset(function as *const () as usize),
            &args,
        )
    }

    /// Applies `function` to every item in worker processes, `chunksize` items per job;
    /// the results in input order, each a task's outcome (Python's `map(fn, items,
    /// chunksize)`; every item is submitted at the call, as Python does). A chunk whose
    /// worker dies fails all of its items.
    pub fn map<A, R, I>(
        &self,
        function: fn(A) -> R,
        items: I,
        chunksize: usize,
    ) -> Result<Vec<Result<R, TaskError<WorkerError>>>, SubmitError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        let tasks = self.submit_chunks(function, items, chunksize)?;
        let mut out = Vec::new();
        for (n, task) in tasks {
            match task.result() {
                Ok(values) => out.extend(values.into_iter().map(Ok)),
                Err(e) => out.extend((0..n).map(|_| Err(e.clone()))),
            }
        }
        Ok(out)
    }

    /// One job per `chunksize` items (at least 1), all submitted now; each with its size.
    fn submit_chunks<A, R, I>(
        &self,
        function: fn(A) -> R,
        items: I,
        chunksize: usize,
    ) -> Result<Vec<Chunk<R>>, SubmitError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        let trampoline = anchor_offset(chunk_trampoline::<A, R> as JobTrampoline as usize);
        let function = anchor_offset(function as *const () as usize);
        let mut items = items.into_iter().peekable();
        let mut tasks = Vec::new();
        while items.peek().is_some() {
            let chunk: Vec<A> = items.by_ref().take(chunksize.max(1)).collect();
            tasks.push((chunk.len(), self.submit_job(trampoline, function, &chunk)?));
        }
        Ok(tasks)
    }

    /// Stops taking tasks (Python's `shutdown(wait, cancel_futures)`); with `wait`, returns
    /// once running tasks are done. Worker processes end with their driving threads.
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.threads.shutdown(wait, cancel_futures);
    }
}

impl fmt::Debug for ProcessPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPoolExecutor")
            .field("max_workers", &self.max_workers())
            .finish_non_exhaustive()
    }
}

impl ProcessPoolExecutor {
    /// Kills every worker process now; their running tasks fail with [`WorkerError::Died`].
    fn kill_workers(&self) {
        let workers = self.settings.workers.acquire();
        self.settings
            .terminated
            .store(true, std::sync::atomic::Ordering::Relaxed);
        for w in workers.iter() {
            w.kill();
        }
    }
}
