//! Stress tests for `ThreadPoolExecutor` and `Task`, with invariants: every task resolved
//! exactly once; cancel storms where every task ends in exactly one of result / error /
//! cancelled; shutdown racing submit loses nothing silently.
//!
//! Sizes: `TANDEM_STRESS_TASKS` sets the number of tiny tasks of the big run (default one
//! million: about a second in a debug build on 2 cores).

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pytandem::executor::{
    as_completed, wait, ReturnWhen, SubmitError, Task, TaskError, ThreadPoolExecutor,
};

mod common;
use common::{eventually, rng};

fn stress_tasks() -> usize {
    std::env::var("TANDEM_STRESS_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn pool(workers: usize) -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(workers)
        .build()
        .unwrap()
}

#[test]
fn a_million_tiny_tasks_each_resolved_exactly_once() {
    let n = stress_tasks();
    let pool = Arc::new(pool(4));
    let runs: Arc<Vec<AtomicU8>> = Arc::new((0..n).map(|_| AtomicU8::new(0)).collect());
    let callbacks = Arc::new(AtomicUsize::new(0));
    const BATCH: usize = 20_000;
    std::thread::scope(|s| {
        for submitter in 0..2 {
            let (pool, runs, callbacks) = (&pool, &runs, &callbacks);
            s.spawn(move || {
                let mine: Vec<usize> = (submitter..n).step_by(2).collect();
                for batch in mine.chunks(BATCH) {
                    let tasks: Vec<(usize, Task<usize>)> = batch
                        .iter()
                        .map(|&i| {
                            let runs = Arc::clone(runs);
                            let task = pool
                                .submit(move || {
                                    runs[i].fetch_add(1, Ordering::Relaxed);
                                    i
                                })
                                .unwrap();
                            if i % 16 == 0 {
                                let c = Arc::clone(callbacks);
                                task.add_done_callback(move |o| {
                                    assert_eq!(o, &Ok(i));
                                    c.fetch_add(1, Ordering::Relaxed);
                                });
                            }
                            (i, task)
                        })
                        .collect();
                    for (i, task) in tasks {
                        assert_eq!(task.result(), Ok(i));
                    }
                }
            });
        }
    });
    let bad = runs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.load(Ordering::Relaxed) != 1)
        .count();
    assert_eq!(bad, 0, "tasks that did not run exactly once");
    assert_eq!(callbacks.load(Ordering::Relaxed), n.div_ceil(16));
    let stats = pool.stats();
    assert_eq!(stats.tasks_completed, n as u64);
    assert_eq!((stats.tasks_failed, stats.tasks_cancelled), (0, 0));
    assert_eq!(stats.tasks_queued, 0);
}

#[test]
fn cancel_storm_every_task_ends_exactly_one_way() {
    const N: usize = 20_000;
    for round in 0..3u64 {
        let pool = pool(2);
        let runs: Vec<AtomicU8> = (0..N).map(|_| AtomicU8::new(0)).collect();
        let cancelled_by: Vec<AtomicBool> = (0..N).map(|_| AtomicBool::new(false)).collect();
        let tasks: Vec<Task<usize>> = {
            let runs = Arc::new(runs);
            let tasks = (0..N)
                .map(|i| {
                    let runs = Arc::clone(&runs);
                    pool.submit(move || {
                        runs[i].fetch_add(1, Ordering::Relaxed);
                        if i % 7 == 3 {
                            panic!("task {i} fails");
                        }
                        i
                    })
                    .unwrap()
                })
                .collect();
            std::thread::scope(|s| {
                // Two cancellers sweep in different orders while the workers run from the
                // front.
                for c in 0..2u64 {
                    let (tasks, cancelled_by): (&Vec<Task<usize>>, _) = (&tasks, &cancelled_by);
                    s.spawn(move || {
                        let mut next = rng(0x9E37_79B9 + round * 7 + c);
                        for _ in 0..N {
                            let i = (next() % N as u64) as usize;
                            if tasks[i].cancel() {
                                cancelled_by[i].store(true, Ordering::Relaxed);
                            }
                        }
                    });
                }
            });
            let results: Vec<_> = tasks;
            // Every task ends: cancelled, panicked or returned.
            let r = wait(
                &results,
                Some(Duration::from_secs(60)),
                ReturnWhen::AllCompleted,
            );
            assert!(r.not_done.is_empty());
            let mut counts = [0usize; 3];
            for (i, task) in results.into_iter().enumerate() {
                let ran = runs[i].load(Ordering::Relaxed);
                let cancelled = cancelled_by[i].load(Ordering::Relaxed);
                assert_eq!(task.is_cancelled(), cancelled, "task {i}");
                match task.result() {
                    Ok(v) => {
                        assert_eq!((v, ran, cancelled), (i, 1, false), "task {i}");
                        counts[0] += 1;
                    }
                    Err(TaskError::Panicked(m)) => {
                        assert_eq!((ran, cancelled), (1, false), "task {i}");
                        assert_eq!(m, format!("task {i} fails"));
                        counts[1] += 1;
                    }
                    Err(TaskError::Cancelled) => {
                        assert_eq!((ran, cancelled), (0, true), "task {i}");
                        counts[2] += 1;
                    }
                    Err(e) => panic!("task {i}: unexpected {e}"),
                }
            }
            assert_eq!(counts.iter().sum::<usize>(), N);
            // A worker counts a cancelled job just after taking it off the queue, so the
            // counters settle a moment after the queue is empty: wait for them to add up.
            let settled = |stats: &pytandem::executor::PoolStats| {
                stats.tasks_queued == 0
                    && [
                        stats.tasks_completed as usize,
                        stats.tasks_failed as usize,
                        stats.tasks_cancelled as usize,
                    ] == counts
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let stats = pool.stats();
                if settled(&stats) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the pool's counters never matched the endings {counts:?}: {stats:?}"
                );
                std::thread::yield_now();
            }
            Vec::new()
        };
        drop(tasks);
    }
}

#[test]
fn shutdown_racing_submit_loses_nothing() {
    for round in 0..8 {
        let wait_for_it = round % 2 == 0;
        let cancel = round % 4 >= 2;
        let pool = pool(2);
        let ran = Arc::new(AtomicUsize::new(0));
        let submitted = AtomicUsize::new(0);
        let accepted: Mutex<Vec<Task<()>>> = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..2 {
                let (pool, ran, submitted, accepted) = (&pool, &ran, &submitted, &accepted);
                s.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        // Borrowing a counter from the stack: scoped submissions.
                        let counter: &AtomicUsize = ran;
                        let ok = pool.scope(|sc| {
                            match sc.submit(move || {
                                counter.fetch_add(1, Ordering::Relaxed);
                            }) {
                                Ok(task) => {
                                    submitted.fetch_add(1, Ordering::Relaxed);
                                    task.wait();
                                    mine.push(task);
                                    true
                                }
                                Err(SubmitError::ShutDown) => false,
                                Err(e) => panic!("{e}"),
                            }
                        });
                        if !ok {
                            break;
                        }
                        // And plain ones, not waited for here.
                        let counter = Arc::clone(ran);
                        match pool.submit(move || {
                            counter.fetch_add(1, Ordering::Relaxed);
                        }) {
                            Ok(task) => {
                                submitted.fetch_add(1, Ordering::Relaxed);
                                mine.push(task);
                            }
                            Err(SubmitError::ShutDown) => break,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    accepted.lock().unwrap().extend(mine);
                });
            }
            eventually("submissions are flowing", || {
                submitted.load(Ordering::Relaxed) >= 2_000
            });
            pool.shutdown(wait_for_it, cancel);
        });
        let tasks = accepted.into_inner().unwrap();
        assert_eq!(tasks.len(), submitted.load(Ordering::Relaxed));
        if wait_for_it {
            let pending = tasks.iter().filter(|t| !t.is_done()).count();
            assert_eq!(
                pending, 0,
                "shutdown(wait) returned with accepted tasks pending"
            );
        }
        let mut ok = 0;
        let mut cancelled = 0;
        for t in tasks {
            match t.result() {
                Ok(()) => ok += 1,
                Err(TaskError::Cancelled) if cancel => cancelled += 1,
                other => panic!("round {round}: {other:?}"),
            }
        }
        assert_eq!(
            ok,
            ran.load(Ordering::Relaxed),
            "every accepted task ran once or was cancelled"
        );
        pool.shutdown(true, false);
        let stats = pool.stats();
        assert_eq!(stats.tasks_completed as usize, ok);
        assert_eq!(stats.tasks_cancelled as usize, cancelled);
        assert_eq!(stats.workers_alive, 0);
    }
}

#[test]
fn callbacks_registered_while_tasks_complete_run_once() {
    const N: usize = 20_000;
    let pool = pool(2);
    let calls: Arc<Vec<AtomicU8>> = Arc::new((0..N).map(|_| AtomicU8::new(0)).collect());
    let tasks: Vec<Task<usize>> = (0..N).map(|i| pool.submit(move || i).unwrap()).collect();
    std::thread::scope(|s| {
        for half in 0..2 {
            let (tasks, calls) = (&tasks, &calls);
            s.spawn(move || {
                for i in (half..N).step_by(2) {
                    let c = Arc::clone(calls);
                    tasks[i].add_done_callback(move |o| {
                        assert_eq!(o, &Ok(i));
                        c[i].fetch_add(1, Ordering::Relaxed);
                    });
                }
            });
        }
    });
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.result(), Ok(i));
        assert_eq!(calls[i].load(Ordering::Relaxed), 1, "callback {i}");
    }
}

#[test]
fn many_threads_register_on_one_task_while_it_completes() {
    for _ in 0..50 {
        let pool = pool(1);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let task = pool.submit(move || rx.recv().unwrap()).unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        std::thread::scope(|s| {
            for t in 0..4 {
                let (task, calls, tx) = (&task, &calls, tx.clone());
                s.spawn(move || {
                    for i in 0..250 {
                        let c = Arc::clone(calls);
                        task.add_done_callback(move |_| {
                            c.fetch_add(1, Ordering::Relaxed);
                        });
                        if t == 0 && i == 100 {
                            // Complete it while the others keep registering.
                            let _ = tx.send(());
                        }
                    }
                    let r = wait([task], None, ReturnWhen::AllCompleted);
                    assert_eq!(r.done.len(), 1);
                });
            }
        });
        task.result().unwrap();
        assert_eq!(
            calls.load(Ordering::Relaxed),
            1000,
            "every callback ran exactly once"
        );
    }
}

#[test]
fn many_waiters_on_many_tasks_across_pools() {
    let a = pool(2);
    let b = pool(2);
    let tasks: Vec<Task<usize>> = (0..4_000)
        .map(|i| if i % 2 == 0 { &a } else { &b }.submit(move || i).unwrap())
        .collect();
    std::thread::scope(|s| {
        for _ in 0..3 {
            let tasks = &tasks;
            s.spawn(move || {
                let mut seen = vec![false; tasks.len()];
                for done in as_completed(tasks.iter().enumerate(), Some(Duration::from_secs(60))) {
                    let (i, _) = done.unwrap();
                    assert!(!std::mem::replace(&mut seen[i], true), "{i} yielded twice");
                }
                assert!(seen.iter().all(|&s| s));
            });
            s.spawn(move || {
                let r = wait(tasks, None, ReturnWhen::FirstCompleted);
                assert!(!r.done.is_empty());
            });
        }
    });
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.result(), Ok(i));
    }
}

#[test]
fn concurrent_result_waiters_and_cancellers_on_blocked_tasks() {
    // Tasks that are pending behind a blocked worker, with threads blocked in `wait` on them
    // and others cancelling them: every waiter wakes, exactly the cancelled ones are
    // cancelled.
    for _ in 0..20 {
        let pool = pool(1);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let blocker = pool.submit(move || rx.recv().unwrap()).unwrap();
        let tasks: Vec<Task<u8>> = (0..8).map(|_| pool.submit(|| 1).unwrap()).collect();
        let woke = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for t in &tasks {
                let woke = &woke;
                s.spawn(move || {
                    t.wait();
                    woke.fetch_add(1, Ordering::SeqCst);
                });
            }
            for t in tasks.iter().step_by(2) {
                s.spawn(move || assert!(t.cancel()));
            }
            eventually("the cancelled ones wake their waiters", || {
                woke.load(Ordering::SeqCst) >= 4
            });
            tx.send(()).unwrap();
        });
        assert_eq!(woke.load(Ordering::SeqCst), 8);
        blocker.result().unwrap();
        for (i, t) in tasks.into_iter().enumerate() {
            let r = t.result();
            if i % 2 == 0 {
                assert_eq!(r, Err(TaskError::Cancelled));
            } else {
                assert_eq!(r, Ok(1));
            }
        }
    }
}
