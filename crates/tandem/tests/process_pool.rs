//! `ProcessPoolExecutor` and `Pool`: results, panics, a crash storm in which only the
//! crashing tasks fail, timeouts, retries, worker recycling, and the deadlock cases of
//! CPython's `test_concurrent_futures` (`test_deadlock.py`), which end here in errors.
#![cfg(target_os = "linux")]

pytandem::child_entry!();

mod common;

use pytandem::executor::{TaskError, ThreadPoolExecutor};
use pytandem::process::{active_children, Pool, PoolTaskError, ProcessPoolExecutor, WorkerError};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

fn square(x: u64) -> u64 {
    x * x
}

fn pid_of(_: u32) -> u32 {
    std::process::id()
}

fn boom(msg: String) -> u32 {
    panic!("{msg}")
}

/// How task `i` of the storm ends: normally, or by killing its own process in one of four
/// ways.
fn storm_task(i: u32) -> u32 {
    if i % 100 == 37 {
        match (i / 100) % 4 {
            // SAFETY: raising a signal at ourselves; the process dies, which is the point.
            0 => unsafe {
                libc::raise(libc::SIGKILL);
            },
            1 => std::process::abort(),
            // SAFETY: as above.
            2 => unsafe {
                libc::raise(libc::SIGSEGV);
            },
            _ => std::process::exit(3),
        }
    }
    i.wrapping_mul(3)
}

fn expected_death(i: u32) -> (Option<i32>, Option<i32>) {
    match (i / 100) % 4 {
        0 => (Some(9), None),
        1 => (Some(6), None),
        2 => (Some(11), None),
        _ => (None, Some(3)),
    }
}

fn sleep_long(_: ()) {
    std::thread::sleep(LONG * 2);
}

/// Says it runs (creates `marker`), then works for far longer than any test waits.
fn announce_then_sleep(marker: String) {
    std::fs::write(&marker, b"running").unwrap();
    std::thread::sleep(LONG * 2);
}

/// Dies the first time it runs (it leaves a marker file), succeeds after.
fn die_once(marker: String) -> u32 {
    if std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&marker)
        .is_ok()
    {
        std::process::abort();
    }
    7
}

static INITIALIZED: AtomicU32 = AtomicU32::new(0);

fn initializer() {
    INITIALIZED.store(42, Ordering::SeqCst);
}

fn read_initialized(_: ()) -> u32 {
    INITIALIZED.load(Ordering::SeqCst)
}

#[derive(Debug)]
struct BadResult;
impl serde::Serialize for BadResult {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("cannot serialize the result"))
    }
}
impl<'de> serde::Deserialize<'de> for BadResult {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Ok(BadResult)
    }
}

fn returns_bad(_: ()) -> BadResult {
    BadResult
}

fn pair_sum(args: (u32, u32)) -> u32 {
    args.0 + args.1
}

#[test]
fn submit_map_and_panics_fail_only_their_task() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    assert_eq!(pool.submit(square, 12).unwrap().result(), Ok(144));
    let panicked = pool
        .submit(boom, "raised in the worker".to_string())
        .unwrap()
        .result();
    assert_eq!(
        panicked,
        Err(TaskError::Failed(WorkerError::Panicked(
            "raised in the worker".into()
        )))
    );
    let results = pool.map(square, 0..20, 3).unwrap();
    assert_eq!(
        results.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
        (0..20u64).map(|x| x * x).collect::<Vec<_>>()
    );
    // The worker that ran the panicking task survived: still at most 2 worker processes.
    let pids: std::collections::HashSet<u32> = (0..20)
        .map(|i| pool.submit(pid_of, i).unwrap().result().unwrap())
        .collect();
    assert!(pids.len() <= 2, "{pids:?}");
}

#[test]
fn a_crash_storm_fails_exactly_the_crashing_tasks() {
    let n: u32 = std::env::var("TANDEM_CRASH_STORM_TASKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let pool = ProcessPoolExecutor::builder()
        .max_workers(4)
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..n)
        .map(|i| pool.submit(storm_task, i).unwrap())
        .collect();
    let mut crashed = 0;
    for (i, t) in (0..n).zip(tasks) {
        match t.result() {
            Ok(v) => {
                assert!(i % 100 != 37, "task {i} should have crashed");
                assert_eq!(v, i.wrapping_mul(3));
            }
            Err(TaskError::Failed(WorkerError::Died { signal, code, pid })) => {
                assert_eq!(
                    i % 100,
                    37,
                    "task {i} failed but did not crash (worker {pid})"
                );
                assert_eq!((signal, code), expected_death(i), "task {i}");
                crashed += 1;
            }
            Err(e) => panic!("task {i}: {e}"),
        }
    }
    assert_eq!(crashed, n / 100);
    // The pool goes on, with at most 4 live workers; nothing else is left running.
    assert_eq!(pool.submit(square, 3).unwrap().result(), Ok(9));
    common::eventually("dead workers are reaped", || active_children().len() <= 4);
    pool.shutdown(true, false);
    drop(pool);
    common::eventually("the workers end with the pool", || {
        active_children().is_empty()
    });
}

#[test]
fn a_task_timeout_kills_and_replaces_the_worker() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .task_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let r = pool.submit(sleep_long, ()).unwrap().result();
    assert!(
        matches!(r, Err(TaskError::Failed(WorkerError::Timeout { .. }))),
        "{r:?}"
    );
    assert_eq!(
        pool.submit(square, 5).unwrap().result(),
        Ok(25),
        "a fresh worker took over"
    );
}

#[test]
fn retries_run_a_task_again_on_a_fresh_worker() {
    let marker = std::env::temp_dir().join(format!("tandem-die-once-{}", std::process::id()));
    let marker = marker.to_string_lossy().into_owned();
    let _ = std::fs::remove_file(&marker);
    let no_retry = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let r = no_retry.submit(die_once, marker.clone()).unwrap().result();
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
    std::fs::remove_file(&marker).unwrap();
    let retry = ProcessPoolExecutor::builder()
        .max_workers(1)
        .retries(1)
        .build()
        .unwrap();
    assert_eq!(
        retry.submit(die_once, marker.clone()).unwrap().result(),
        Ok(7),
        "the retry ran it again"
    );
    std::fs::remove_file(&marker).unwrap();
}

#[test]
fn workers_are_recycled_and_initialized() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .max_tasks_per_child(2)
        .initializer(initializer)
        .build()
        .unwrap();
    let pids: Vec<u32> = (0..4)
        .map(|i| pool.submit(pid_of, i).unwrap().result().unwrap())
        .collect();
    assert_eq!(pids[0], pids[1]);
    assert_ne!(pids[1], pids[2], "a new worker after two tasks");
    assert_eq!(pids[2], pids[3]);
    assert_eq!(pool.submit(read_initialized, ()).unwrap().result(), Ok(42));
    assert_eq!(
        INITIALIZED.load(Ordering::SeqCst),
        0,
        "the initializer ran in the worker, not here"
    );
}

#[test]
fn bad_input_is_a_typed_error_not_a_hang() {
    assert!(ProcessPoolExecutor::builder()
        .max_workers(0)
        .build()
        .is_err());
    assert!(ProcessPoolExecutor::builder()
        .max_tasks_per_child(0)
        .build()
        .is_err());
    assert!(ProcessPoolExecutor::builder()
        .task_timeout(Duration::ZERO)
        .build()
        .is_err());
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    // CPython test_deadlock: an error while pickling the result ends in an error.
    let r = pool.submit(returns_bad, ()).unwrap().result();
    assert!(
        matches!(&r, Err(TaskError::Failed(WorkerError::Codec(m))) if m.contains("result")),
        "{r:?}"
    );
    assert_eq!(
        pool.submit(square, 2).unwrap().result(),
        Ok(4),
        "and the pool goes on"
    );
    pool.shutdown(true, false);
    assert!(pool.submit(square, 2).is_err(), "submit after shutdown");
}

#[test]
fn process_tasks_mix_with_thread_tasks() {
    let processes = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let threads = ThreadPoolExecutor::new();
    let p = processes.submit(square, 4).unwrap();
    let t = threads
        .submit_fallible(|| Ok::<u64, WorkerError>(5))
        .unwrap();
    let done = pytandem::executor::wait(
        [&p, &t],
        Some(LONG),
        pytandem::executor::ReturnWhen::AllCompleted,
    );
    assert_eq!(done.not_done.len(), 0);
    assert_eq!(p.result().unwrap() + t.result().unwrap(), 21);
}

#[test]
fn pool_vocabulary() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(
        pool.map(square, 0..10).unwrap(),
        (0..10u64).map(|x| x * x).collect::<Vec<_>>()
    );
    assert_eq!(pool.starmap(pair_sum, [(1, 2), (3, 4)]).unwrap(), [3, 7]);
    assert_eq!(pool.apply(square, 9).unwrap(), 81);
    let r = pool.apply_async(square, 6).unwrap();
    assert!(r.wait(Some(LONG)));
    assert!(r.ready());
    assert_eq!(r.successful(), Some(true));
    assert_eq!(r.get_timeout(LONG), Ok(36));
    let imap: Vec<u64> = pool
        .imap(square, 0..5)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(imap, [0, 1, 4, 9, 16]);
    let mut unordered: Vec<u64> = pool
        .imap_unordered(square, 0..5)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    unordered.sort();
    assert_eq!(unordered, [0, 1, 4, 9, 16]);
    let failed: Result<Vec<u32>, PoolTaskError> = pool.map(boom, ["a".to_string()]);
    assert!(matches!(
        failed,
        Err(TaskError::Failed(WorkerError::Panicked(_)))
    ));
    pool.close();
    pool.join();
    assert!(pool.apply_async(square, 1).is_err(), "closed");
    assert_eq!(
        pool.apply(square, 1),
        Err(TaskError::ShutDown),
        "refused, not cancelled"
    );
}

#[test]
fn terminate_stops_running_work() {
    let pool = Pool::new(1).unwrap();
    let marker = std::env::temp_dir().join(format!("tandem-terminate-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let r = pool
        .apply_async(announce_then_sleep, marker.to_string_lossy().into_owned())
        .unwrap();
    common::eventually("the task runs", || marker.exists());
    std::fs::remove_file(&marker).unwrap();
    pool.terminate();
    let outcome = r.get();
    assert!(
        matches!(outcome, Err(TaskError::Failed(WorkerError::Died { .. }))),
        "{outcome:?}"
    );
    pool.join();
}
