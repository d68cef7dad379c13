#![cfg(target_os = "linux")]
pytandem::child_entry!();

// The behaviours CPython checks for process pools, ported to `pytandem::process::
// {ProcessPoolExecutor, Pool}` in our own words: `test_concurrent_futures/test_process_pool.py`,
// the process-pool parts of `test_shutdown.py`, `test_deadlock.py`, and `_TestPool` (with
// `_TestPoolWorkerErrors`) of `_test_multiprocessing.py`. Each test names the CPython test
// it ports; where tandem differs by design, a comment says so instead of a test:
//
// * A worker that dies fails only the task (or chunk) it ran, with `WorkerError::Died`; the
//   worker is replaced and the pool goes on. `BrokenProcessPool` does not exist, so where
//   CPython expects it (and every later submit to fail) these tests expect `Died` for that
//   task and a working pool after it.
// * A task is a plain `fn(A) -> R` with serde arguments: there are no keyword arguments, no
//   `*args` (a tuple is the argument), and a Python exception is a panic
//   (`WorkerError::Panicked` with its message; there is no remote traceback object).
// * Task arguments cannot carry process handles (a `Semaphore`, `Event`, ...). Where CPython
//   blocks tasks on a semaphore, these tests block them on a [`Gate`]: a Unix socket each
//   task connects to (sending its pid) and reads from until the test closes it.
// * `Pool::map` returns the first failed item's error, as Python raises it. `map_async`
//   returns a `MapResult` (`starmap_async` is `map_async` with tuple arguments).
// * Items are submitted at the call (`imap` included), so an input iterator that fails
//   does so in the caller, before any result is yielded.
//
// No test sleeps to synchronize: workers announce themselves through the gate and the test
// waits for them with `common::eventually`. Every wait has a 30 s deadline (a stuck pool is
// terminated, then the test fails), and every pool is shut down or dropped, with its worker
// processes seen gone, before its test ends.

mod common;

use pytandem::executor::TaskError;
use pytandem::process::{
    active_children, Pool, PoolTaskError, ProcessPoolExecutor, ProcessTask, WorkerError,
};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long anything may take before the test is declared stuck (not slow).
const LONG: Duration = Duration::from_secs(30);

/// The timeout of the waits that are meant to time out (CPython's `TIMEOUT1`/`TIMEOUT2`).
const SHORT: Duration = Duration::from_millis(100);

// =======================================================================================
// Helpers
// =======================================================================================

/// A gate tasks wait at: each gated task connects to the socket, sends its pid, and waits
/// until the test closes the connection (or, if the gate is already open, passes at once).
struct Gate {
    path: PathBuf,
    listener: Option<UnixListener>,
    held: Vec<UnixStream>,
}

impl Gate {
    fn new() -> Gate {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "tandem-ppc-{}-{}.sock",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        Gate {
            path,
            listener: Some(listener),
            held: Vec::new(),
        }
    }

    /// The argument a gated task takes.
    fn arg(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    /// Waits until `n` more tasks wait at the gate; their worker pids.
    fn arrivals(&mut self, n: usize) -> Vec<u32> {
        let listener = self.listener.as_ref().expect("the gate is closed");
        let mut pids = Vec::new();
        common::eventually("tasks arrive at the gate", || {
            if let Ok((mut s, _)) = listener.accept() {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(LONG)).unwrap();
                let mut pid = [0u8; 4];
                s.read_exact(&mut pid).unwrap();
                pids.push(u32::from_le_bytes(pid));
                self.held.push(s);
            }
            pids.len() == n
        });
        pids
    }

    /// Lets every waiting task, and every later one, through.
    fn open(&mut self) {
        self.listener = None;
        self.held.clear();
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.open();
    }
}

/// The worker's side of a [`Gate`]: waits there, if it is closed.
fn pass_gate(path: &str) {
    if let Ok(mut s) = UnixStream::connect(path) {
        // A bound on the wait, so a worker never outlives a failed test for long.
        let _ = s.set_read_timeout(Some(LONG * 2));
        let _ = s.write_all(&std::process::id().to_le_bytes());
        let _ = s.read(&mut [0u8; 1]);
    }
}

/// Waits at the gate, then returns its worker's pid.
fn gated(path: String) -> u32 {
    pass_gate(&path);
    std::process::id()
}

/// Waits at the gate, then kills its own worker (CPython's `_crash` with a delay).
fn gated_then_abort(path: String) -> u32 {
    pass_gate(&path);
    std::process::abort()
}

/// Waits until none of `pids` is a live child of this process (other tests' pools run in
/// the same process, so only these pids are checked).
fn until_gone(pids: &[u32]) {
    common::eventually("the pool's worker processes end", || {
        active_children().iter().all(|c| !pids.contains(&c.pid))
    });
}

/// The task's outcome within [`LONG`]; a pool that does not answer by then is deadlocked:
/// it is terminated and the test fails (CPython's `_fail_on_deadlock`).
fn settle<R>(pool: &Pool, task: ProcessTask<R>) -> Result<R, PoolTaskError> {
    if !task.wait_timeout(LONG) {
        pool.terminate();
        pool.join();
        panic!("the pool did not answer within {LONG:?}: deadlock");
    }
    task.result()
}

/// Runs `f`, aborting the whole test binary (an error, never a hang) if it takes longer
/// than twice [`LONG`].
fn within<R>(what: &str, f: impl FnOnce() -> R) -> R {
    let (done, watch) = mpsc::channel::<()>();
    let what = what.to_string();
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = watch.recv_timeout(LONG * 2) {
            eprintln!("stuck: {what} did not return within {:?}", LONG * 2);
            std::process::abort();
        }
    });
    let r = f();
    drop(done);
    watchdog.join().unwrap();
    r
}

fn two_workers() -> Pool {
    Pool::with(ProcessPoolExecutor::builder().max_workers(2)).unwrap()
}

// ---- task functions -------------------------------------------------------------------

fn sqr(x: i64) -> i64 {
    x * x
}

fn sqr_slowly(x: i64) -> i64 {
    std::thread::sleep(Duration::from_millis(20));
    x * x
}

fn mul(args: (i64, i64)) -> i64 {
    args.0 * args.1
}

fn pow(args: (u64, u32)) -> u64 {
    args.0.wrapping_pow(args.1)
}

fn abs(x: i64) -> i64 {
    x.abs()
}

fn pid_of(_: u32) -> u32 {
    std::process::id()
}

fn raise_123(_: ()) -> u32 {
    panic!("RuntimeError(123)")
}

fn parse_int(s: String) -> i64 {
    s.parse().expect("invalid literal for int()")
}

fn raise_large(_: u32) -> u32 {
    panic!("{}", "x".repeat(1 << 20))
}

fn crash(_: ()) -> u32 {
    std::process::abort()
}

fn exit_now(_: ()) -> u32 {
    std::process::exit(5)
}

fn crash_with_data(data: String) -> usize {
    if !data.is_empty() {
        std::process::abort();
    }
    0
}

/// What goes wrong, and where (CPython's `CrashAtPickle`, `ExitAtUnpickle`, ...): pickling
/// is serializing, unpickling deserializing. Each is only (de)serialized on the side where
/// its failure is meant to happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trap {
    ErrorAtPickle,
    CrashAtPickle,
    ExitAtPickle,
    ErrorAtUnpickle,
    CrashAtUnpickle,
    ExitAtUnpickle,
}

const TRAPS: [Trap; 6] = [
    Trap::ErrorAtPickle,
    Trap::CrashAtPickle,
    Trap::ExitAtPickle,
    Trap::ErrorAtUnpickle,
    Trap::CrashAtUnpickle,
    Trap::ExitAtUnpickle,
];

impl serde::Serialize for Trap {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Trap::ErrorAtPickle => Err(serde::ser::Error::custom("error at pickle")),
            Trap::CrashAtPickle => std::process::abort(),
            Trap::ExitAtPickle => std::process::exit(5),
            other => s.serialize_u8(TRAPS.iter().position(|t| t == other).unwrap() as u8),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Trap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let i = <u8 as serde::Deserialize>::deserialize(d)?;
        match TRAPS[usize::from(i)] {
            Trap::ErrorAtUnpickle => Err(serde::de::Error::custom("error at unpickle")),
            Trap::CrashAtUnpickle => std::process::abort(),
            Trap::ExitAtUnpickle => std::process::exit(5),
            other => Ok(other),
        }
    }
}

/// CPython's `id`: takes anything, returns a number.
fn take_trap(_: Trap) -> u32 {
    1
}

/// CPython's `_return_instance`: makes the trap in the worker and returns it.
fn return_trap(i: u8) -> Trap {
    TRAPS[usize::from(i)]
}

fn trap_index(t: Trap) -> u8 {
    TRAPS.iter().position(|x| *x == t).unwrap() as u8
}

/// An iterator that fails (panics) at item `at` of `len` (CPython's
/// `exception_throwing_generator`).
fn failing_items(len: i64, at: i64) -> impl Iterator<Item = i64> {
    (0..len).inspect(move |&i| assert!(i != at, "SayWhenError"))
}

fn is_died(r: &Result<impl std::fmt::Debug, PoolTaskError>) -> bool {
    matches!(r, Err(TaskError::Failed(WorkerError::Died { .. })))
}

// =======================================================================================
// test_process_pool.py: ProcessPoolExecutorTest
// =======================================================================================

// test_max_workers_too_large: Windows only (its 61-handle limit); not applicable on Linux.
// test_ressources_gced_in_workers: arguments are decoded copies the worker drops after the
// call (Rust ownership); there is no garbage collector to observe.
// test_max_tasks_per_child_defaults_to_spawn_context: there is one start method (a fresh
// copy of the binary), so there is no context to choose.
// test_python_finalization_error: no interpreter finalization in Rust.

/// CPython: ProcessPoolExecutorTest.test_killed_child. Killing a worker in the middle of
/// a task fails that task with `Died` (CPython: `BrokenProcessPool` for it and for every
/// later submit); here the worker is replaced and later tasks run.
#[test]
fn test_killed_child() {
    let pool = two_workers();
    let mut gate = Gate::new();
    let task = pool.executor().submit(gated, gate.arg()).unwrap();
    let pid = gate.arrivals(1)[0];
    // SAFETY: sending a signal to our own worker process, whose pid we were just told.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    assert_eq!(
        settle(&pool, task),
        Err(TaskError::Failed(WorkerError::Died {
            pid,
            signal: Some(9),
            code: None
        }))
    );
    let next = pool.executor().submit(mul, (2, 8)).unwrap();
    assert_eq!(settle(&pool, next), Ok(16), "the pool goes on");
    pool.close();
    pool.join();
    until_gone(&[pid]);
}

/// CPython: ProcessPoolExecutorTest.test_map_chunksize. `map` gives the same results in
/// input order whatever the chunk size, including one larger than the input. CPython
/// rejects a negative chunk size with `ValueError`; a `usize` cannot be negative, and 0 is
/// taken as 1.
#[test]
fn test_map_chunksize() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let items = || (0..40u64).map(|i| (i, i as u32));
    let expected: Vec<u64> = items().map(pow).collect();
    for chunksize in [6, 50, 40, 1, 0] {
        let got: Vec<u64> = within("map", || pool.map(pow, items(), chunksize))
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, expected, "chunksize {chunksize}");
    }
    pool.shutdown(true, false);
}

/// CPython: ProcessPoolExecutorTest.test_traceback, and _TestPool.test_traceback and
/// test_wrapped_exception. An error raised in the worker reaches the caller as itself, with
/// its message: here the panic's message (there is no remote traceback to attach).
#[test]
fn test_traceback() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let r = pool.submit(raise_123, ()).unwrap().result();
    assert_eq!(
        r,
        Err(TaskError::Failed(WorkerError::Panicked(
            "RuntimeError(123)".into()
        )))
    );
    let display = r.unwrap_err().into_failed().unwrap().to_string();
    assert!(display.contains("RuntimeError(123)"), "{display}");
    // Through `Pool::apply`, the error is not wrapped any further.
    let p = Pool::new(1).unwrap();
    assert!(matches!(
        p.apply(raise_123, ()),
        Err(TaskError::Failed(WorkerError::Panicked(m))) if m == "RuntimeError(123)"
    ));
    p.close();
    p.join();
    pool.shutdown(true, false);
}

/// CPython: ProcessPoolExecutorTest.test_saturation. With many more blocked tasks than
/// workers, the pool starts exactly `max_workers` processes and no more: all of them are
/// busy at once, and after the release every task ran on one of them.
#[test]
fn test_saturation() {
    const WORKERS: usize = 2;
    let pool = Pool::new(WORKERS).unwrap();
    let mut gate = Gate::new();
    let tasks: Vec<_> = (0..15 * WORKERS)
        .map(|_| pool.executor().submit(gated, gate.arg()).unwrap())
        .collect();
    let busy = gate.arrivals(WORKERS);
    gate.open();
    let mut pids: Vec<u32> = tasks
        .into_iter()
        .map(|t| settle(&pool, t).unwrap())
        .collect();
    pids.sort_unstable();
    pids.dedup();
    let mut busy_sorted = busy.clone();
    busy_sorted.sort_unstable();
    busy_sorted.dedup();
    assert_eq!(busy_sorted.len(), WORKERS, "{busy:?}");
    assert_eq!(
        pids, busy_sorted,
        "every task ran on one of the first workers"
    );
    pool.close();
    pool.join();
    until_gone(&pids);
}

/// CPython: ProcessPoolExecutorTest.test_idle_process_reuse_one. Tasks submitted one after
/// another, each awaited, run on one idle worker: no second process is started.
#[test]
fn test_idle_process_reuse_one() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(4)
        .build()
        .unwrap();
    let pids: Vec<u32> = (0..3)
        .map(|i| pool.submit(pid_of, i).unwrap().result().unwrap())
        .collect();
    assert!(pids.iter().all(|p| *p == pids[0]), "{pids:?}");
    pool.shutdown(true, false);
    until_gone(&pids);
}

/// CPython: ProcessPoolExecutorTest.test_idle_process_reuse_multiple. Alternating awaited
/// and unawaited tasks on a pool of up to 4 workers use at most 3 processes.
#[test]
fn test_idle_process_reuse_multiple() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(4)
        .build()
        .unwrap();
    let mut pids = vec![pool.submit(pid_of, 0).unwrap().result().unwrap()];
    let a = pool.submit(pid_of, 1).unwrap();
    pids.push(pool.submit(pid_of, 2).unwrap().result().unwrap());
    let b = pool.submit(pid_of, 3).unwrap();
    pids.push(pool.submit(pid_of, 4).unwrap().result().unwrap());
    let c = pool.submit(pid_of, 5).unwrap();
    pids.extend([a, b, c].map(|t| t.result().unwrap()));
    pids.sort_unstable();
    pids.dedup();
    assert!(pids.len() <= 3, "{pids:?}");
    pool.shutdown(true, false);
    until_gone(&pids);
}

/// CPython: ProcessPoolExecutorTest.test_max_tasks_per_child. A worker runs its three
/// tasks, then is replaced by a new process; the old one is reaped.
#[test]
fn test_max_tasks_per_child() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .max_tasks_per_child(3)
        .build()
        .unwrap();
    let pids: Vec<u32> = (0..4)
        .map(|i| pool.submit(pid_of, i).unwrap().result().unwrap())
        .collect();
    assert_eq!([pids[1], pids[2]], [pids[0]; 2], "{pids:?}");
    assert_ne!(pids[3], pids[0], "a new worker after three tasks");
    until_gone(&pids[..1]);
    pool.shutdown(true, false);
    until_gone(&pids);
}

/// CPython: ProcessPoolExecutorTest.test_max_tasks_early_shutdown. Workers that retire
/// after every task, and a shutdown right after the submissions: every task still runs.
#[test]
fn test_max_tasks_early_shutdown() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(3)
        .max_tasks_per_child(1)
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..6).map(|i| pool.submit(mul, (i, i)).unwrap()).collect();
    within("shutdown", || pool.shutdown(true, false));
    for (i, t) in (0..6).zip(tasks) {
        assert_eq!(t.result(), Ok(i * i));
    }
}

// =======================================================================================
// test_shutdown.py: ExecutorShutdownTest and ProcessPoolShutdownTest
// =======================================================================================

// test_interpreter_shutdown, test_submit_after_interpreter_shutdown, test_hang_gh83386:
// there is no interpreter exit or atexit hook; what they check (work submitted before the
// end still runs) is dropping the pool, test_del_shutdown below.

/// CPython: ExecutorShutdownTest.test_run_after_shutdown. After `shutdown`, `submit` is
/// refused (CPython: `RuntimeError`).
#[test]
fn test_run_after_shutdown() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    pool.shutdown(true, false);
    assert!(pool.submit(pow, (2, 5)).is_err());
    assert!(pool.map(pow, [(2, 5)], 1).is_err());
}

/// CPython: ExecutorShutdownTest.test_hang_issue12364. Many short tasks, then `shutdown`:
/// it returns once they are all done, each with its result.
#[test]
fn test_hang_issue12364() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|i| pool.submit(sqr_slowly, i).unwrap())
        .collect();
    within("shutdown", || pool.shutdown(true, false));
    for (i, t) in (0..50).zip(tasks) {
        assert!(t.is_done());
        assert_eq!(t.result(), Ok(i * i));
    }
}

/// CPython: ExecutorShutdownTest.test_cancel_futures. `shutdown(cancel_futures)` cancels
/// every queued task; the running ones finish normally.
#[test]
fn test_cancel_futures() {
    let pool = Pool::new(2).unwrap();
    let mut gate = Gate::new();
    let tasks: Vec<_> = (0..50)
        .map(|_| pool.executor().submit(gated, gate.arg()).unwrap())
        .collect();
    gate.arrivals(2);
    pool.executor().shutdown(false, true);
    let cancelled = tasks.iter().filter(|t| t.is_cancelled()).count();
    assert_eq!(cancelled, 48, "all queued tasks are cancelled");
    gate.open();
    let mut pids = Vec::new();
    for t in tasks.into_iter().filter(|t| !t.is_cancelled()) {
        pids.push(settle(&pool, t).unwrap());
    }
    assert_eq!(pids.len(), 2);
    within("shutdown", || pool.executor().shutdown(true, false));
    until_gone(&pids);
}

/// CPython: ExecutorShutdownTest.test_hang_gh94440. A task cancelled just before
/// `shutdown(wait)` does not make the shutdown hang.
#[test]
fn test_hang_gh94440() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let pid = pool.submit(pid_of, 0).unwrap().result().unwrap();
    let t = pool.submit(pid_of, 1).unwrap();
    let _ = t.cancel();
    within("shutdown", || pool.shutdown(true, false));
    assert!(t.is_done());
    until_gone(&[pid]);
}

/// CPython: ProcessPoolShutdownTest.test_processes_terminate. Workers start on demand
/// (three busy tasks, three processes, in a pool of five) and end with `shutdown`.
#[test]
fn test_processes_terminate() {
    let pool = Pool::new(5).unwrap();
    let mut gate = Gate::new();
    let tasks: Vec<_> = (0..3)
        .map(|_| pool.executor().submit(gated, gate.arg()).unwrap())
        .collect();
    let mut pids = gate.arrivals(3);
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 3, "three processes, one per busy task");
    gate.open();
    for t in tasks {
        settle(&pool, t).unwrap();
    }
    within("shutdown", || pool.executor().shutdown(true, false));
    until_gone(&pids);
}

/// CPython: ProcessPoolShutdownTest.test_context_manager_shutdown. The end of a scope (the
/// `with` block) shuts the pool down and its processes end.
#[test]
fn test_context_manager_shutdown() {
    let pids = {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(5)
            .build()
            .unwrap();
        let got: Vec<i64> = pool
            .map(abs, -5..5, 1)
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, [5, 4, 3, 2, 1, 0, 1, 2, 3, 4]);
        pool.map(pid_of, 0..10, 1)
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect::<Vec<u32>>()
    };
    until_gone(&pids);
}

/// CPython: ProcessPoolShutdownTest.test_del_shutdown. Dropping the pool with tasks still
/// queued waits for them: every result is there afterwards, and the workers are gone.
#[test]
fn test_del_shutdown() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(5)
        .build()
        .unwrap();
    let tasks: Vec<_> = (-5..5).map(|i| pool.submit(abs, i).unwrap()).collect();
    let pid_tasks: Vec<_> = (0..5).map(|i| pool.submit(pid_of, i).unwrap()).collect();
    within("drop", || drop(pool));
    for (v, t) in (-5i64..5).zip(tasks) {
        assert!(t.is_done());
        assert_eq!(t.result(), Ok(v.abs()));
    }
    let pids: Vec<u32> = pid_tasks.into_iter().map(|t| t.result().unwrap()).collect();
    until_gone(&pids);
}

/// CPython: ProcessPoolShutdownTest.test_shutdown_no_wait. `shutdown(wait=false)` returns
/// at once, the queued tasks still complete, and the workers end afterwards.
#[test]
fn test_shutdown_no_wait() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(5)
        .build()
        .unwrap();
    let tasks: Vec<_> = (-5..5).map(|i| pool.submit(abs, i).unwrap()).collect();
    let pid_task = pool.submit(pid_of, 0).unwrap();
    pool.shutdown(false, false);
    for (v, t) in (-5i64..5).zip(tasks) {
        assert_eq!(t.result_timeout(LONG), Ok(v.abs()));
    }
    let pid = pid_task.result_timeout(LONG).unwrap();
    until_gone(&[pid]);
    drop(pool);
}

// =======================================================================================
// test_deadlock.py: ExecutorDeadlockTest — every case ends in an error, never a hang
// =======================================================================================

// test_exit_during_result_unpickle_in_result_handler: the result is decoded in the calling
// process itself (there is no result-handler thread whose `SystemExit` could be caught), so
// exiting there would end the test binary. An error while decoding is ported below.

/// CPython's `_check_crash`: a fresh pool of two, one task, its outcome within the
/// deadline; then the pool still works and shuts down.
fn check_crash<A, R>(f: fn(A) -> R, args: A) -> Result<R, PoolTaskError>
where
    A: serde::Serialize + serde::de::DeserializeOwned,
    R: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let pool = two_workers();
    let task = pool.executor().submit(f, args).unwrap();
    let r = settle(&pool, task);
    let next = pool.executor().submit(sqr, 3).unwrap();
    assert_eq!(
        settle(&pool, next),
        Ok(9),
        "the pool goes on after the failure"
    );
    pool.close();
    within("join", || pool.join());
    r
}

/// CPython: ExecutorDeadlockTest.test_error_at_task_pickle, test_exit_at_task_unpickle,
/// test_error_at_task_unpickle, test_crash_at_task_unpickle. Arguments that cannot be
/// encoded fail their task with `Codec`; arguments whose decoding in the worker fails give
/// `Codec`, and whose decoding exits or crashes the worker give `Died` (CPython:
/// `BrokenProcessPool`).
#[test]
fn test_task_pickle_and_unpickle_failures() {
    let r = check_crash(take_trap, Trap::ErrorAtPickle);
    assert!(
        matches!(&r, Err(TaskError::Failed(WorkerError::Codec(m))) if m.contains("Serialize")),
        "{r:?}"
    );
    let r = check_crash(take_trap, Trap::ErrorAtUnpickle);
    assert!(
        matches!(&r, Err(TaskError::Failed(WorkerError::Codec(m))) if m.contains("arguments")),
        "{r:?}"
    );
    let r = check_crash(take_trap, Trap::ExitAtUnpickle);
    assert!(
        matches!(
            r,
            Err(TaskError::Failed(WorkerError::Died { code: Some(5), .. }))
        ),
        "{r:?}"
    );
    let r = check_crash(take_trap, Trap::CrashAtUnpickle);
    assert!(
        matches!(
            r,
            Err(TaskError::Failed(WorkerError::Died {
                signal: Some(6),
                ..
            }))
        ),
        "{r:?}"
    );
}

/// CPython: ExecutorDeadlockTest.test_crash_during_func_exec_on_worker,
/// test_exit_during_func_exec_on_worker, test_error_during_func_exec_on_worker. A crash or
/// an exit in the task fails it with `Died` (CPython: `BrokenProcessPool`, and `SystemExit`
/// for the exit); an error (a panic) with `Panicked`.
#[test]
fn test_failures_during_func_exec_on_worker() {
    let r = check_crash(crash, ());
    assert!(
        matches!(
            r,
            Err(TaskError::Failed(WorkerError::Died {
                signal: Some(6),
                ..
            }))
        ),
        "{r:?}"
    );
    let r = check_crash(exit_now, ());
    assert!(
        matches!(
            r,
            Err(TaskError::Failed(WorkerError::Died { code: Some(5), .. }))
        ),
        "{r:?}"
    );
    let r = check_crash(raise_123, ());
    assert_eq!(
        r,
        Err(TaskError::Failed(WorkerError::Panicked(
            "RuntimeError(123)".into()
        )))
    );
}

/// CPython: ExecutorDeadlockTest.test_crash_during_result_pickle_on_worker,
/// test_exit_during_result_pickle_on_worker, test_error_during_result_pickle_on_worker,
/// test_error_during_result_unpickle_in_result_handler. A result whose encoding crashes or
/// exits the worker gives `Died`; one that cannot be encoded, or decoded here, `Codec`.
#[test]
fn test_result_pickle_and_unpickle_failures() {
    let r = check_crash(return_trap, trap_index(Trap::CrashAtPickle));
    assert!(
        matches!(
            r,
            Err(TaskError::Failed(WorkerError::Died {
                signal: Some(6),
                ..
            }))
        ),
        "{r:?}"
    );
    let r = check_crash(return_trap, trap_index(Trap::ExitAtPickle));
    assert!(
        matches!(
            r,
            Err(TaskError::Failed(WorkerError::Died { code: Some(5), .. }))
        ),
        "{r:?}"
    );
    let r = check_crash(return_trap, trap_index(Trap::ErrorAtPickle));
    assert!(
        matches!(&r, Err(TaskError::Failed(WorkerError::Codec(m))) if m.contains("result")),
        "{r:?}"
    );
    let r = check_crash(return_trap, trap_index(Trap::ErrorAtUnpickle));
    assert!(
        matches!(&r, Err(TaskError::Failed(WorkerError::Codec(m))) if m.contains("result")),
        "{r:?}"
    );
}

/// CPython: ExecutorDeadlockTest.test_shutdown_deadlock. A worker that crashes after
/// `shutdown(wait)` was called: the shutdown returns and the task has failed (`Died`;
/// CPython: `BrokenProcessPool`).
#[test]
fn test_shutdown_deadlock() {
    let pool = two_workers();
    let mut gate = Gate::new();
    let task = pool
        .executor()
        .submit(gated_then_abort, gate.arg())
        .unwrap();
    let pid = gate.arrivals(1)[0];
    std::thread::scope(|s| {
        // The crash is let loose from another thread while this one is in (or about to
        // enter) the waiting shutdown; both orders must end the same.
        s.spawn(move || gate.open());
        within("shutdown", || pool.executor().shutdown(true, false));
    });
    assert!(task.is_done());
    let r = task.result();
    assert!(
        matches!(r, Err(TaskError::Failed(WorkerError::Died { pid: p, signal: Some(6), .. })) if p == pid),
        "{r:?}"
    );
    until_gone(&[pid]);
}

/// CPython: ExecutorDeadlockTest.test_shutdown_deadlock_pickle. A task whose arguments
/// cannot be encoded, followed by `shutdown(wait=false)`: the task fails with `Codec` and the
/// pool ends.
#[test]
fn test_shutdown_deadlock_pickle() {
    let pool = two_workers();
    let pid = settle(&pool, pool.executor().submit(pid_of, 42).unwrap()).unwrap();
    let task = pool
        .executor()
        .submit(take_trap, Trap::ErrorAtPickle)
        .unwrap();
    pool.executor().shutdown(false, false);
    let r = settle(&pool, task);
    assert!(
        matches!(&r, Err(TaskError::Failed(WorkerError::Codec(_)))),
        "{r:?}"
    );
    within("join", || pool.join());
    until_gone(&[pid]);
}

/// CPython: ExecutorDeadlockTest.test_crash_big_data. Workers that crash while large
/// arguments are in flight: every item fails with `Died` (CPython: `BrokenProcessPool`
/// from `map`), nothing hangs, and the pool goes on.
#[test]
fn test_crash_big_data() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    // Several times a pipe's 64 KiB buffer, as CPython's `PIPE_MAX_SIZE` is (its 4 MiB
    // would make this debug-build test take seconds in the encoding alone).
    let data = "a".repeat(256 << 10);
    let results = within("map", || pool.map(crash_with_data, vec![data; 10], 1)).unwrap();
    assert_eq!(results.len(), 10);
    assert!(results.iter().all(is_died), "{results:?}");
    assert_eq!(pool.submit(sqr, 4).unwrap().result(), Ok(16));
    within("shutdown", || pool.shutdown(true, false));
}

/// CPython: ExecutorDeadlockTest.test_gh105829_should_not_deadlock_if_wakeup_pipe_full.
/// CPython's internal wake-up pipe has no counterpart; what the test guards — submitting
/// many tasks while every worker is busy never blocks the submitter — is checked here.
#[test]
fn test_gh105829_submit_does_not_block_while_workers_are_busy() {
    let pool = two_workers();
    let mut gate = Gate::new();
    let busy: Vec<_> = (0..2)
        .map(|_| pool.executor().submit(gated, gate.arg()).unwrap())
        .collect();
    let pids = gate.arrivals(2);
    let queued: Vec<_> = within("submitting", || {
        (0..2000)
            .map(|i| pool.executor().submit(sqr, i).unwrap())
            .collect()
    });
    gate.open();
    for t in busy {
        settle(&pool, t).unwrap();
    }
    for (i, t) in (0..2000).zip(queued) {
        assert_eq!(settle(&pool, t), Ok(i * i));
    }
    pool.close();
    within("join", || pool.join());
    until_gone(&pids);
}

// =======================================================================================
// _test_multiprocessing.py: _TestPool and _TestPoolWorkerErrors
// =======================================================================================

// test_release_task_refs: arguments are moved into the pool and encoded; results are
// owned by the caller. Nothing is kept alive by reference to observe.
// test_enter: there is no `with` to re-enter; a terminated pool refusing work is checked in
// test_context.
// test_resource_warning: dropping a `Pool` shuts it down (it waits for running work);
// there is no unclosed-pool warning to emit.

/// CPython: _TestPool.test_apply. `apply` runs the function in a worker and returns its
/// value (keyword arguments do not exist: the argument is one serde value).
#[test]
fn test_apply() {
    let pool = Pool::new(4).unwrap();
    assert_eq!(pool.apply(sqr, 5), Ok(25));
    assert_eq!(pool.apply(mul, (3, 3)), Ok(9));
    pool.close();
    pool.join();
}

/// CPython: _TestPool.test_map. `map` keeps input order, with the default chunk size and
/// with an explicit one.
#[test]
fn test_map() {
    let pool = Pool::new(4).unwrap();
    assert_eq!(
        pool.map(sqr, 0..10),
        Ok((0..10).map(sqr).collect::<Vec<_>>())
    );
    assert_eq!(
        pool.map_chunked(sqr, 0..100, 20),
        Ok((0..100).map(sqr).collect::<Vec<_>>())
    );
    pool.close();
    pool.join();
}

/// CPython: _TestPool.test_starmap. The function takes a tuple: each item is unpacked into
/// it (with an explicit chunk size through `map_chunked`, as `starmap` is `map`).
#[test]
fn test_starmap() {
    let pool = Pool::new(4).unwrap();
    let tuples: Vec<(i64, i64)> = (0..10).zip((0..10).rev()).collect();
    assert_eq!(
        pool.starmap(mul, tuples.clone()),
        Ok(tuples.into_iter().map(mul).collect::<Vec<_>>())
    );
    let tuples: Vec<(i64, i64)> = (0..100).zip((0..100).rev()).collect();
    assert_eq!(
        pool.map_chunked(mul, tuples.clone(), 20),
        Ok(tuples.into_iter().map(mul).collect::<Vec<_>>())
    );
    pool.close();
    pool.join();
}

fn double(x: u64) -> u64 {
    x * 2
}

/// CPython: _TestPool.test_map_async and test_starmap_async: the results come in order, and
/// a `MapResult` is ready only once every item is done.
#[test]
fn test_map_async() {
    let pool = Pool::new(2).unwrap();
    let r = pool.map_async(double, 0..100u64).unwrap();
    assert!(r.wait(Some(LONG)));
    assert!(r.ready());
    assert_eq!(r.successful(), Some(true));
    assert_eq!(
        r.get().unwrap(),
        (0..100u64).map(|x| x * 2).collect::<Vec<_>>()
    );
    pool.close();
    pool.join();
}

/// CPython: _TestPool.test_map_async_callbacks and _TestPoolWorkerErrors
/// .test_async_error_callback. A callback on the task gets the value on success and the
/// error on failure, exactly once each.
#[test]
fn test_map_async_callbacks() {
    let pool = Pool::new(2).unwrap();
    let (tx, rx) = mpsc::channel();
    for s in ["1", "a"] {
        let tx = tx.clone();
        let task = pool
            .apply_async(parse_int, s.to_string())
            .unwrap()
            .into_task();
        task.add_done_callback(move |outcome| tx.send(outcome.clone()).unwrap());
        task.wait();
    }
    drop(tx);
    assert_eq!(rx.recv_timeout(LONG).unwrap(), Ok(1));
    let second = rx.recv_timeout(LONG).unwrap();
    assert!(
        matches!(&second, Err(TaskError::Failed(WorkerError::Panicked(m))) if m.contains("invalid")),
        "{second:?}"
    );
    assert!(rx.recv_timeout(LONG).is_err(), "one call per task");
    pool.close();
    pool.join();
}

/// CPython: _TestPool.test_map_unplicklable. Items that cannot be encoded make `map` fail
/// with that error rather than hang; the pool goes on.
#[test]
fn test_map_unplicklable() {
    let pool = Pool::new(2).unwrap();
    let r = within("map", || pool.map(take_trap, [Trap::ErrorAtPickle; 10]));
    assert!(
        matches!(&r, Err(TaskError::Failed(WorkerError::Codec(m))) if m.contains("Serialize")),
        "{r:?}"
    );
    assert_eq!(pool.apply(sqr, 3), Ok(9));
    pool.close();
    pool.join();
}

/// CPython: _TestPool.test_map_chunksize and test_empty_iterable. An empty input gives
/// empty results at once, with any chunk size and from every form of map.
#[test]
fn test_empty_iterable() {
    let pool = Pool::new(1).unwrap();
    let empty = Vec::<i64>::new;
    assert_eq!(
        within("map", || pool.map_chunked(sqr, empty(), 1)),
        Ok(vec![])
    );
    assert_eq!(pool.map(sqr, empty()), Ok(vec![]));
    assert_eq!(pool.imap(sqr, empty()).unwrap().count(), 0);
    assert_eq!(pool.imap_unordered(sqr, empty()).unwrap().count(), 0);
    assert_eq!(pool.starmap(mul, Vec::new()), Ok(vec![]));
    pool.close();
    pool.join();
}

/// CPython: _TestPool.test_map_handle_iterable_exception,
/// test_imap_handle_iterable_exception, test_imap_unordered_handle_iterable_exception. An
/// input iterator that fails (panics) at its first item or later makes the call fail in the
/// caller, and again the second time (it is reentrant): the pool is unharmed. Items are
/// submitted at the call, so `imap` fails before yielding the items that came before
/// (CPython yields those first).
#[test]
fn test_handle_iterable_exception() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let pool = Pool::new(2).unwrap();
    for (len, at) in [(1, 0), (1, 0), (10, 3), (20, 7)] {
        let fails = |what: &str, f: &dyn Fn()| {
            let r = catch_unwind(AssertUnwindSafe(f));
            assert!(r.is_err(), "{what} over a failing iterator ({len}, {at})");
        };
        fails("map", &|| drop(pool.map(sqr, failing_items(len, at))));
        fails("map_chunked", &|| {
            drop(pool.map_chunked(sqr, failing_items(len, at), 2))
        });
        fails("imap", &|| drop(pool.imap(sqr, failing_items(len, at))));
        fails("imap_unordered", &|| {
            drop(pool.imap_unordered(sqr, failing_items(len, at)))
        });
        fails("executor map", &|| {
            drop(pool.executor().map(sqr, failing_items(len, at), 1))
        });
    }
    assert_eq!(
        pool.map(sqr, 0..4),
        Ok(vec![0, 1, 4, 9]),
        "the pool goes on"
    );
    pool.close();
    within("join", || pool.join());
}

/// CPython: _TestPool.test_async. `apply_async(...).get()` waits for a task that takes a
/// while and gives its value.
#[test]
fn test_async() {
    let pool = Pool::new(2).unwrap();
    let r = pool.apply_async(sqr_slowly, 7).unwrap();
    assert_eq!(r.get(), Ok(49));
    pool.close();
    pool.join();
}

/// CPython: _TestPool.test_async_timeout. `get` with a timeout on a task that is not done
/// fails with `Timeout` after about that long (at least that long here); the result can
/// still be had afterwards.
#[test]
fn test_async_timeout() {
    let pool = Pool::new(3).unwrap();
    let mut gate = Gate::new();
    let r = pool.apply_async(gated, gate.arg()).unwrap();
    let pid = gate.arrivals(1)[0];
    let start = Instant::now();
    assert_eq!(r.get_timeout(SHORT), Err(TaskError::Timeout));
    assert!(start.elapsed() >= SHORT, "{:?}", start.elapsed());
    assert!(!r.wait(Some(SHORT)));
    assert!(!r.ready());
    assert_eq!(r.successful(), None);
    gate.open();
    assert!(r.wait(Some(LONG)));
    assert_eq!(r.successful(), Some(true));
    assert_eq!(r.get_timeout(LONG), Ok(pid));
    pool.terminate();
    pool.join();
    until_gone(&[pid]);
}

/// CPython: _TestPool.test_imap. `imap` yields each result in input order, one `next` at a
/// time, then ends; also over a thousand items (`imap` takes no chunk size here).
#[test]
fn test_imap() {
    let pool = Pool::new(4).unwrap();
    let all: Vec<i64> = pool.imap(sqr, 0..10).unwrap().map(Result::unwrap).collect();
    assert_eq!(all, (0..10).map(sqr).collect::<Vec<_>>());
    let mut it = pool.imap(sqr, 0..10).unwrap();
    for i in 0..10 {
        assert_eq!(it.next(), Some(Ok(i * i)));
    }
    assert!(it.next().is_none());
    let mut it = pool.imap(sqr, 0..1000).unwrap();
    for i in 0..1000 {
        assert_eq!(it.next(), Some(Ok(i * i)));
    }
    assert!(it.next().is_none());
    pool.close();
    pool.join();
}

/// CPython: _TestPool.test_imap_unordered. `imap_unordered` yields every result once, in
/// any order.
#[test]
fn test_imap_unordered() {
    let pool = Pool::new(4).unwrap();
    for n in [10, 1000] {
        let mut got: Vec<i64> = pool
            .imap_unordered(sqr, 0..n)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..n).map(sqr).collect::<Vec<_>>());
    }
    pool.close();
    pool.join();
}

/// CPython: _TestPool.test_make_pool. A pool of zero processes is refused (CPython:
/// `ValueError`; a negative count cannot be written as a `usize`); one of three has three.
#[test]
fn test_make_pool() {
    assert!(Pool::new(0).is_err());
    let pool = Pool::new(3).unwrap();
    assert_eq!(pool.executor().max_workers(), 3);
    pool.close();
    pool.join();
}

/// CPython: _TestPool.test_terminate. With thousands of tasks that would block "forever",
/// `terminate` then `join` end promptly: the running tasks fail with `Died` (their workers
/// are killed), the queued ones are cancelled, and the workers are gone.
#[test]
fn test_terminate() {
    let pool = Pool::new(3).unwrap();
    let mut gate = Gate::new();
    let results: Vec<_> = (0..10_000)
        .map(|_| pool.apply_async(gated, gate.arg()).unwrap())
        .collect();
    let pids = gate.arrivals(3);
    within("terminate and join", || {
        pool.terminate();
        pool.join();
    });
    let (mut died, mut cancelled) = (0, 0);
    for r in results {
        assert!(r.ready(), "every task is done after join");
        match r.get() {
            Err(TaskError::Failed(WorkerError::Died { .. })) => died += 1,
            Err(TaskError::Cancelled) => cancelled += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((died, cancelled), (3, 9_997));
    until_gone(&pids);
    drop(gate);
}

/// CPython: _TestPool.test_context. A pool used for a `map`, then ended: it refuses work
/// afterwards (CPython: `ValueError` from `map_async` after the `with` block, which calls
/// `terminate`) and its workers are gone.
#[test]
fn test_context() {
    let pool = Pool::new(2).unwrap();
    let items: Vec<i64> = (0..10).collect();
    assert_eq!(
        pool.map(sqr, items.clone()),
        Ok(items.iter().copied().map(sqr).collect::<Vec<_>>())
    );
    let pids: Vec<u32> = pool.map_chunked(pid_of, 0..8, 1).unwrap();
    pool.terminate();
    pool.join();
    assert!(pool.apply_async(sqr, 1).is_err());
    assert!(pool.imap(sqr, items.clone()).is_err());
    assert_eq!(
        pool.map(sqr, items),
        Err(TaskError::ShutDown),
        "refused: the pool is shut down"
    );
    until_gone(&pids);
}

/// CPython: _TestPool.test_map_no_failfast. `map` over items that all fail raises the first
/// error (here with its 1 MiB message intact), and the following `close`/`join` do not
/// deadlock on the failed items' large results.
#[test]
fn test_map_no_failfast() {
    let pool = Pool::new(2).unwrap();
    let r = within("map", || pool.map_chunked(raise_large, [0, 1], 1));
    match r {
        Err(TaskError::Failed(WorkerError::Panicked(m))) => assert_eq!(m.len(), 1 << 20),
        other => panic!("{:?}", other.map_err(|e| e.to_string().len())),
    }
    pool.close();
    within("join", || pool.join());
}

/// CPython: _TestPoolWorkerErrors.test_unpickleable_result. A result that cannot be
/// encoded fails its task with `Codec`, every time, and the pool goes on.
#[test]
fn test_unpickleable_result() {
    let pool = Pool::new(2).unwrap();
    for _ in 0..10 {
        let r = pool
            .apply_async(return_trap, trap_index(Trap::ErrorAtPickle))
            .unwrap()
            .get();
        assert!(
            matches!(&r, Err(TaskError::Failed(WorkerError::Codec(m))) if m.contains("result")),
            "{r:?}"
        );
    }
    assert_eq!(pool.apply(sqr, 6), Ok(36));
    pool.close();
    pool.join();
}
