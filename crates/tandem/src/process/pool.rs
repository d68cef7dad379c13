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

use super::codec;
use super::pipe::{Connection, ConnectionError, Pipe};
use super::spawn::{anchor_offset, from_anchor, Process, ProcessError};
use crate::error::panic_message;
use crate::executor::{SubmitError, Task, TaskError, ThreadPoolExecutor};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
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

/// A job on the wire: which trampoline and function, and the encoded arguments.
#[derive(Serialize, Deserialize)]
struct Job {
    trampoline: isize,
    function: isize,
    args: codec::Bytes,
}

/// A job's answer: the encoded result, or a panic message.
#[derive(Serialize, Deserialize)]
enum Answer {
    Returned(codec::Bytes),
    Panicked(String),
    Codec(String),
}

type JobTrampoline = fn(usize, &[u8]) -> Answer;

fn job_trampoline<A: DeserializeOwned, R: Serialize>(function: usize, args: &[u8]) -> Answer {
    let args: A = match codec::decode(args, Vec::new()) {
        Ok(a) => a,
        Err(e) => return Answer::Codec(format!("the arguments: {}", e.0)),
    };
    // SAFETY: `function` is the address of a `fn(A) -> R` of this binary: the pool took it
    // from a value of that type and sent its offset; the worker runs the same build (its
    // start checked the fingerprint), and this trampoline is instantiated with the same A, R.
    let function: fn(A) -> R = unsafe { std::mem::transmute::<usize, fn(A) -> R>(function) };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| function(args))) {
        Ok(r) => match codec::encode_into(&r, Vec::new()) {
            Ok((bytes, fds)) if fds.is_empty() => Answer::Returned(codec::Bytes(bytes)),
            Ok(_) => Answer::Codec("the result carries a process handle".into()),
            Err(e) => Answer::Codec(format!("the result: {}", e.0)),
        },
        Err(payload) => Answer::Panicked(panic_message(&*payload)),
    }
}

/// A chunk: the function applied to each of several arguments.
fn chunk_trampoline<A: DeserializeOwned, R: Serialize>(function: usize, args: &[u8]) -> Answer {
    let items: Vec<A> = match codec::decode(args, Vec::new()) {
        Ok(a) => a,
        Err(e) => return Answer::Codec(format!("the arguments: {}", e.0)),
    };
    // SAFETY: as in `job_trampoline`.
    let function: fn(A) -> R = unsafe { std::mem::transmute::<usize, fn(A) -> R>(function) };
    let run = std::panic::AssertUnwindSafe(|| items.into_iter().map(function).collect::<Vec<R>>());
    match std::panic::catch_unwind(run) {
        Ok(r) => match codec::encode_into(&r, Vec::new()) {
            Ok((bytes, _)) => Answer::Returned(codec::Bytes(bytes)),
            Err(e) => Answer::Codec(format!("the result: {}", e.0)),
        },
        Err(payload) => Answer::Panicked(panic_message(&*payload)),
    }
}

/// The worker process: runs the initializer, then jobs until the connection closes.
fn worker_main(args: (Connection<Job>, Connection<Answer>, Option<isize>)) {
    let (jobs, answers, initializer) = args;
    jobs.set_linger(false); // as the driving thread: do not take a core from the others
    if let Some(offset) = initializer {
        // SAFETY: the offset was taken from a `fn()` of this binary (`Builder::initializer`).
        let init: fn() = unsafe { std::mem::transmute::<usize, fn()>(from_anchor(offset)) };
        init();
    }
    while let Ok(job) = jobs.recv() {
        // SAFETY: the offset was taken from a `JobTrampoline` of this binary.
        let trampoline: JobTrampoline =
            unsafe { std::mem::transmute::<usize, JobTrampoline>(from_anchor(job.trampoline)) };
        let answer = trampoline(from_anchor(job.function), &job.args.0);
        if answers.send(&answer).is_err() {
            return;
        }
    }
}

/// One worker process, as its driving thread holds it.
struct Worker {
    jobs: Connection<Job>,
    answers: Connection<Answer>,
    process: Process<()>,
    done: usize,
}

impl Worker {
    fn start(settings: &Settings) -> Result<Worker, WorkerError> {
        let spawn = |e: &dyn fmt::Display| WorkerError::Spawn(e.to_string());
        let (jobs, their_jobs) = Pipe::new::<Job>().map_err(|e| spawn(&e))?;
        let (answers, their_answers) = Pipe::new::<Answer>().map_err(|e| spawn(&e))?;
        // The driving thread waits for the worker's answer asleep: spinning would take a
        // core from the workers (a pool has as many workers as cores).
        answers.set_linger(false);
        let process = Process::builder()
            .name(format!("{}-worker", settings.name))
            .spawn(
                worker_main,
                (their_jobs, their_answers, settings.initializer),
            )
            .map_err(|e| spawn(&e))?;
        let mut workers = settings.workers.acquire();
        workers.retain(super::spawn::Killer::is_alive);
        let killer = process.killer();
        if settings
            .terminated
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            killer.kill(); // the pool was terminated while this worker started
        }
        workers.push(killer);
        drop(workers);
        Ok(Worker {
            jobs,
            answers,
            process,
            done: 0,
        })
    }

    /// How the worker ended, once it has (it is killed if it has not).
    fn died(mut self) -> WorkerError {
        let pid = self.process.pid();
        let _ = self.process.kill();
        match self.process.join_timeout(Duration::MAX) {
            Err(ProcessError::Signaled { signal, .. }) => WorkerError::Died {
                pid,
                signal: Some(signal),
                code: None,
            },
            Err(ProcessError::Exited { code, .. }) => WorkerError::Died {
                pid,
                signal: None,
                code: Some(code),
            },
            Err(ProcessError::Panicked { .. }) => WorkerError::Died {
                pid,
                signal: None,
                code: Some(1),
            },
            _ => WorkerError::Died {
                pid,
                signal: None,
                code: None,
            },
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing the job connection ends the worker's loop; its supervisor reaps it.
        let _ = self.process.terminate();
    }
}

thread_local! {
    /// The worker process this pool thread drives.
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
}

/// The settings every pool thread reads, and the live workers (for `terminate`).
struct Settings {
    name: String,
    workers: crate::sync::Lock<Vec<super::spawn::Killer>>,
    /// Set by `terminate`, under `workers`' lock: a worker started after it is killed.
    terminated: std::sync::atomic::AtomicBool,
    initializer: Option<isize>,
    max_tasks_per_child: Option<usize>,
    task_timeout: Option<Duration>,
    retries: u32,
}

/// Runs one job on this thread's worker process (starting one if needed).
fn run_job(settings: &Settings, job: &Job) -> Result<Vec<u8>, WorkerError> {
    let mut attempt = 0;
    loop {
        let result = WORKER.with(|slot| {
            let mut slot = slot.borrow_mut();
            if slot.is_none() {
                *slot = Some(Worker::start(settings)?);
            }
            let worker = slot.as_mut().expect("started above");
            let sent = worker.jobs.send(job);
            let answer = match (sent, settings.task_timeout) {
                (Err(e), _) => Err(e),
                (Ok(()), None) => worker.answers.recv(),
                (Ok(()), Some(t)) => worker.answers.recv_timeout(t),
            };
            match answer {
                Ok(answer) => {
                    worker.done += 1;
                    if settings
                        .max_tasks_per_child
                        .is_some_and(|m| worker.done >= m)
                    {
                        *slot = None; // retire it; the next job starts a fresh worker
                    }
                    Ok(answer)
                }
                Err(ConnectionError::Timeout) => {
                    let w = slot.take().expect("a worker");
                    let pid = w.process.pid();
                    let _ = w.died();
                    Err(WorkerError::Timeout { pid })
                }
                Err(_) => Err(slot.take().expect("a worker").died()),
            }
        });
        match result {
            Ok(Answer::Returned(bytes)) => return Ok(bytes.0),
            Ok(Answer::Panicked(m)) => return Err(WorkerError::Panicked(m)),
            Ok(Answer::Codec(e)) => return Err(WorkerError::Codec(e)),
            Err(e @ WorkerError::Died { .. }) if attempt < settings.retries => {
                attempt += 1;
                let _ = e;
            }
            Err(e) => return Err(e),
        }
    }
}

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
/// tandem::process::init();
/// use tandem::process::ProcessPoolExecutor;
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
/// tandem::process::init();
/// use tandem::process::Pool;
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
