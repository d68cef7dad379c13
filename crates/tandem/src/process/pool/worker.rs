//! The worker side of the process pool: the job and answer on the wire, the trampolines
//! that run a job's function in the worker process, and, on each pool thread, the worker
//! process it drives (started, retired, replaced when it dies).

use super::WorkerError;
use crate::error::panic_message;
use crate::process::codec;
use crate::process::pipe::{Connection, ConnectionError, Pipe};
use crate::process::spawn::{from_anchor, Process, ProcessError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::fmt;
use std::time::Duration;

/// A job on the wire: which trampoline and function, and the encoded arguments.
#[derive(Serialize, Deserialize)]
pub(super) struct Job {
    pub(super) trampoline: isize,
    pub(super) function: isize,
    pub(super) args: codec::Bytes,
}

/// A job's answer: the encoded result, or a panic message.
#[derive(Serialize, Deserialize)]
pub(super) enum Answer {
    Returned(codec::Bytes),
    Panicked(String),
    Codec(String),
}

pub(super) type JobTrampoline = fn(usize, &[u8]) -> Answer;

pub(super) fn job_trampoline<A: DeserializeOwned, R: Serialize>(
    function: usize,
    args: &[u8],
) -> Answer {
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
pub(super) fn chunk_trampoline<A: DeserializeOwned, R: Serialize>(
    function: usize,
    args: &[u8],
) -> Answer {
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
pub(super) fn worker_main(args: (Connection<Job>, Connection<Answer>, Option<isize>)) {
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
pub(super) struct Worker {
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
        workers.retain(crate::process::spawn::Killer::is_alive);
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
pub(super) struct Settings {
    pub(super) name: String,
    pub(super) workers: crate::sync::Lock<Vec<crate::process::spawn::Killer>>,
    /// Set by `terminate`, under `workers`' lock: a worker started after it is killed.
    pub(super) terminated: std::sync::atomic::AtomicBool,
    pub(super) initializer: Option<isize>,
    pub(super) max_tasks_per_child: Option<usize>,
    pub(super) task_timeout: Option<Duration>,
    pub(super) retries: u32,
}

/// Runs one job on this thread's worker process (starting one if needed).
pub(super) fn run_job(settings: &Settings, job: &Job) -> Result<Vec<u8>, WorkerError> {
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
