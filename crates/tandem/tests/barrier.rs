//! `Barrier`: CPython's `Lib/test/lock_tests.py` `BarrierTests`, ported with observable
//! handshakes instead of sleeps, plus errors, reuse stress and panicking actions.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use pytandem::sync::{Barrier, BrokenReason};

mod common;
use common::eventually;

const N: usize = 5;

/// Runs `f(i)` on `n` threads at once and returns their results in thread order.
fn run_threads<R: Send>(n: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                s.spawn({
                    let f = &f;
                    move || f(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

// ---- lock_tests.py BarrierTests -------------------------------------------------------------

/// test_barrier: several passes; nobody is ever a pass ahead or behind.
#[test]
fn test_barrier() {
    let barrier = Barrier::new(N).unwrap();
    let (before, after) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let passes = 10;
    run_threads(N, |_| {
        assert_eq!(barrier.parties(), N);
        for i in 0..passes {
            before.fetch_add(1, SeqCst);
            assert_eq!(after.load(SeqCst), i * N);
            barrier.wait().unwrap();
            after.fetch_add(1, SeqCst);
            assert_eq!(before.load(SeqCst), (i + 1) * N);
            barrier.wait().unwrap();
        }
    });
    assert_eq!(barrier.n_waiting(), 0);
    assert!(!barrier.is_broken());
}

/// test_wait_return: the arrival indices of one generation are exactly 0..parties.
#[test]
fn test_wait_return() {
    let barrier = Barrier::new(N).unwrap();
    let indices: BTreeSet<usize> = run_threads(N, |_| barrier.wait().unwrap())
        .into_iter()
        .collect();
    assert_eq!(indices, (0..N).collect());
}

/// test_action: the action runs once per generation, before anyone is released, in the thread
/// that arrived last (the one whose index is parties - 1).
#[test]
fn test_action() {
    let runs = Arc::new(AtomicUsize::new(0));
    let ran_on: Arc<Mutex<Vec<ThreadId>>> = Arc::default();
    let barrier = Barrier::builder(N)
        .action({
            let (runs, ran_on) = (Arc::clone(&runs), Arc::clone(&ran_on));
            move || {
                runs.fetch_add(1, SeqCst);
                ran_on.lock().unwrap().push(thread::current().id());
            }
        })
        .build()
        .unwrap();
    let results = run_threads(N, |_| {
        let index = barrier.wait().unwrap();
        assert_eq!(
            runs.load(SeqCst),
            1,
            "the action ran before anyone was released"
        );
        (index, thread::current().id())
    });
    assert_eq!(runs.load(SeqCst), 1);
    let leader = results.iter().find(|(i, _)| *i == N - 1).unwrap().1;
    assert_eq!(*ran_on.lock().unwrap(), vec![leader]);
}

/// test_abort: one thread aborts instead of waiting again; all the others get broken.
#[test]
fn test_abort() {
    let barrier = Barrier::new(N).unwrap();
    let (passed, broken) = (AtomicUsize::new(0), AtomicUsize::new(0));
    run_threads(N, |_| {
        let i = barrier.wait().unwrap();
        if i == N / 2 {
            barrier.abort(); // Python: raise RuntimeError, then abort() in the handler
            return;
        }
        match barrier.wait() {
            Ok(_) => passed.fetch_add(1, SeqCst),
            Err(e) => {
                assert_eq!(e.reason(), BrokenReason::Aborted);
                broken.fetch_add(1, SeqCst)
            }
        };
    });
    assert_eq!(passed.load(SeqCst), 0);
    assert_eq!(broken.load(SeqCst), N - 1);
    assert!(barrier.is_broken());
    assert_eq!(barrier.wait().unwrap_err().reason(), BrokenReason::Aborted);
}

/// test_reset: one thread resets while the others wait; they get broken, then everyone
/// passes the barrier again.
#[test]
fn test_reset() {
    let barrier = Barrier::new(N).unwrap();
    let (passed, broken, again) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    run_threads(N, |_| {
        let i = barrier.wait().unwrap();
        if i == N / 2 {
            eventually("the others wait", || barrier.n_waiting() == N - 1);
            barrier.reset();
        } else {
            match barrier.wait() {
                Ok(_) => passed.fetch_add(1, SeqCst),
                Err(e) => {
                    assert_eq!(e.reason(), BrokenReason::Reset);
                    broken.fetch_add(1, SeqCst)
                }
            };
        }
        barrier.wait().unwrap();
        again.fetch_add(1, SeqCst);
    });
    assert_eq!(passed.load(SeqCst), 0);
    assert_eq!(broken.load(SeqCst), N - 1);
    assert_eq!(again.load(SeqCst), N);
}

/// test_abort_and_reset: abort, everyone regroups on a second barrier, one resets, and the
/// first barrier works again.
#[test]
fn test_abort_and_reset() {
    let barrier = Barrier::new(N).unwrap();
    let barrier2 = Barrier::new(N).unwrap();
    let (passed, broken, again) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    run_threads(N, |_| {
        let i = barrier.wait().unwrap();
        if i == N / 2 {
            barrier.abort();
        } else {
            match barrier.wait() {
                Ok(_) => passed.fetch_add(1, SeqCst),
                Err(_) => broken.fetch_add(1, SeqCst),
            };
        }
        // Everyone has left `barrier` before the reset, and nobody enters it before.
        if barrier2.wait().unwrap() == N / 2 {
            barrier.reset();
        }
        barrier2.wait().unwrap();
        barrier.wait().unwrap();
        again.fetch_add(1, SeqCst);
    });
    assert_eq!(passed.load(SeqCst), 0);
    assert_eq!(broken.load(SeqCst), N - 1);
    assert_eq!(again.load(SeqCst), N);
}

/// test_timeout: one thread is late; the others' timed waits break the barrier, and the
/// late one finds it broken.
#[test]
fn test_timeout() {
    let barrier = Barrier::new(N).unwrap();
    let reasons = run_threads(N, |_| {
        let i = barrier.wait().unwrap();
        if i == N / 2 {
            // Late: arrive only once the others have given up (instead of sleeping).
            eventually("the barrier breaks", || barrier.is_broken());
        }
        barrier
            .wait_timeout(Duration::from_millis(50))
            .unwrap_err()
            .reason()
    });
    assert!(reasons.iter().all(|r| *r == BrokenReason::TimedOut));
    assert!(barrier.is_broken());
}

/// test_default_timeout: the builder's timeout applies to plain `wait()`.
#[test]
fn test_default_timeout() {
    let barrier = Barrier::builder(N)
        .timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    run_threads(N, |_| {
        let i = barrier.wait().unwrap();
        if i == N / 2 {
            eventually("the barrier breaks", || barrier.is_broken());
        }
        assert_eq!(barrier.wait().unwrap_err().reason(), BrokenReason::TimedOut);
    });
}

/// test_single_thread: a one-party barrier never blocks.
#[test]
fn test_single_thread() {
    let barrier = Barrier::new(1).unwrap();
    assert_eq!(barrier.wait(), Ok(0));
    assert_eq!(barrier.wait(), Ok(0));
}

// ---- errors, timing, breaking and repairing ------------------------------------------------

#[test]
fn zero_parties_is_a_typed_error() {
    let err = Barrier::new(0).unwrap_err();
    assert_eq!(err.parties(), 0);
    let _: &dyn std::error::Error = &err;
    assert!(err.to_string().contains("at least 1"));
}

#[test]
fn timed_out_wait_takes_about_its_timeout() {
    let barrier = Barrier::new(2).unwrap();
    let start = Instant::now();
    let err = barrier.wait_timeout(Duration::from_millis(50)).unwrap_err();
    let took = start.elapsed();
    assert_eq!(err.reason(), BrokenReason::TimedOut);
    assert!(
        took >= Duration::from_millis(50),
        "returned early: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "returned late: {took:?}");
}

#[test]
fn absurd_timeout_means_forever() {
    let barrier = Barrier::new(2).unwrap();
    let indices: BTreeSet<usize> = run_threads(2, |_| barrier.wait_timeout(Duration::MAX).unwrap())
        .into_iter()
        .collect();
    assert_eq!(indices, BTreeSet::from([0, 1]));
    let far = Barrier::builder(1).timeout(Duration::MAX).build().unwrap();
    assert_eq!(far.wait(), Ok(0));
}

#[test]
fn abort_wakes_waiters_and_stays_broken_until_reset() {
    let barrier = Barrier::new(3).unwrap();
    thread::scope(|s| {
        let waiters: Vec<_> = (0..2).map(|_| s.spawn(|| barrier.wait())).collect();
        eventually("two threads wait", || barrier.n_waiting() == 2);
        barrier.abort();
        for w in waiters {
            assert_eq!(
                w.join().unwrap().unwrap_err().reason(),
                BrokenReason::Aborted
            );
        }
    });
    assert!(barrier.is_broken());
    assert_eq!(barrier.n_waiting(), 0);
    let err = barrier.wait_timeout(Duration::from_secs(10)).unwrap_err();
    assert_eq!(err.reason(), BrokenReason::Aborted);
    assert!(err.to_string().contains("reset()"));
    barrier.reset();
    assert!(!barrier.is_broken());
    let indices: BTreeSet<usize> = run_threads(3, |_| barrier.wait().unwrap())
        .into_iter()
        .collect();
    assert_eq!(indices, BTreeSet::from([0, 1, 2]));
}

#[test]
fn reset_releases_waiters_with_reset_and_barrier_is_usable_at_once() {
    let barrier = Barrier::new(2).unwrap();
    thread::scope(|s| {
        let waiter = s.spawn(|| barrier.wait());
        eventually("one thread waits", || barrier.n_waiting() == 1);
        barrier.reset();
        let err = waiter.join().unwrap().unwrap_err();
        assert_eq!(err.reason(), BrokenReason::Reset);
        assert!(err.to_string().contains("wait again"));
    });
    assert!(!barrier.is_broken());
    assert_eq!(barrier.n_waiting(), 0);
    let indices: BTreeSet<usize> = run_threads(2, |_| barrier.wait().unwrap())
        .into_iter()
        .collect();
    assert_eq!(indices, BTreeSet::from([0, 1]));
}

#[test]
fn panicking_action_breaks_the_barrier_and_reports_its_message() {
    let first = Arc::new(AtomicBool::new(true));
    let barrier = Barrier::builder(3)
        .action({
            let first = Arc::clone(&first);
            move || {
                if first.swap(false, SeqCst) {
                    panic!("action failed");
                }
            }
        })
        .build()
        .unwrap();
    let errors = run_threads(3, |_| barrier.wait().unwrap_err());
    assert!(errors
        .iter()
        .all(|e| e.reason() == BrokenReason::ActionPanicked));
    let messages: Vec<_> = errors.iter().filter_map(|e| e.panic_message()).collect();
    assert_eq!(
        messages,
        ["action failed"],
        "only the leader carries the message"
    );
    let leader = errors.iter().find(|e| e.panic_message().is_some()).unwrap();
    assert!(leader
        .to_string()
        .contains("action panicked (action failed)"));
    assert!(barrier.is_broken());
    assert_eq!(
        barrier.wait().unwrap_err().reason(),
        BrokenReason::ActionPanicked
    );

    barrier.reset();
    let indices: BTreeSet<usize> = run_threads(3, |_| barrier.wait().unwrap())
        .into_iter()
        .collect();
    assert_eq!(indices, BTreeSet::from([0, 1, 2]));
}

/// Threads arriving for the next generation while the action runs wait for it, then form
/// the next generation; the action never runs twice at once.
#[test]
fn arrivals_during_the_action_join_the_next_generation() {
    let (release_action, action_gate) = mpsc::channel::<()>();
    let action_gate = Mutex::new(action_gate);
    let (in_action_tx, in_action) = mpsc::channel::<()>();
    let in_action_tx = Mutex::new(in_action_tx);
    let runs = Arc::new(AtomicUsize::new(0));
    let barrier = Barrier::builder(2)
        .action({
            let runs = Arc::clone(&runs);
            move || {
                if runs.fetch_add(1, SeqCst) == 0 {
                    in_action_tx.lock().unwrap().send(()).unwrap();
                    action_gate.lock().unwrap().recv().unwrap();
                }
            }
        })
        .build()
        .unwrap();
    thread::scope(|s| {
        let a = s.spawn(|| barrier.wait().unwrap());
        let b = s.spawn(|| barrier.wait().unwrap());
        in_action.recv().unwrap(); // generation 0 is running its action now
        let c = s.spawn(|| barrier.wait().unwrap());
        let d = s.spawn(|| barrier.wait().unwrap());
        assert_eq!(
            barrier.n_waiting(),
            0,
            "nobody counts as waiting during the action"
        );
        release_action.send(()).unwrap();
        let first: BTreeSet<usize> = [a.join().unwrap(), b.join().unwrap()].into();
        let second: BTreeSet<usize> = [c.join().unwrap(), d.join().unwrap()].into();
        assert_eq!(first, BTreeSet::from([0, 1]));
        assert_eq!(second, BTreeSet::from([0, 1]));
    });
    assert_eq!(runs.load(SeqCst), 2);
}

// ---- stress ---------------------------------------------------------------------------------

/// 4 threads x 1000 generations: each generation's indices are exactly {0, 1, 2, 3}, the
/// action runs once per generation, and nobody ever passes before all have arrived.
#[test]
fn stress_generations_have_exact_indices() {
    const THREADS: usize = 4;
    const GENERATIONS: usize = 1000;
    let actions = Arc::new(AtomicUsize::new(0));
    let barrier = Barrier::builder(THREADS)
        .action({
            let actions = Arc::clone(&actions);
            move || {
                actions.fetch_add(1, SeqCst);
            }
        })
        .build()
        .unwrap();
    let arrived = AtomicUsize::new(0);
    let per_thread = run_threads(THREADS, |_| {
        (0..GENERATIONS)
            .map(|g| {
                arrived.fetch_add(1, SeqCst);
                let index = barrier.wait().unwrap();
                assert!(
                    arrived.load(SeqCst) >= (g + 1) * THREADS,
                    "passed before all arrived"
                );
                assert_eq!(
                    actions.load(SeqCst),
                    g + 1,
                    "the action ran before the release"
                );
                index
            })
            .collect::<Vec<_>>()
    });
    for g in 0..GENERATIONS {
        let indices: BTreeSet<usize> = per_thread.iter().map(|v| v[g]).collect();
        assert_eq!(indices, (0..THREADS).collect(), "generation {g}");
    }
    assert_eq!(actions.load(SeqCst), GENERATIONS);
}

/// More threads than parties: generations overlap freely (a thread can lap a slow one), so
/// the spinner/draining hand-off is exercised. Every generation has indices {0, 1}: index 0
/// and index 1 are handed out equally often. A thread left alone at the end (its partners
/// are done) is released by `abort`, the only way out for it.
#[test]
fn stress_more_threads_than_parties() {
    const THREADS: usize = 4;
    const WAITS: usize = 1000;
    let barrier = Barrier::new(2).unwrap();
    let finished = AtomicUsize::new(0);
    let counts = thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    let mut counts = [0usize; 2];
                    for _ in 0..WAITS {
                        match barrier.wait() {
                            Ok(i) => counts[i] += 1,
                            Err(e) => {
                                assert_eq!(e.reason(), BrokenReason::Aborted);
                                break;
                            }
                        }
                    }
                    finished.fetch_add(1, SeqCst);
                    counts
                })
            })
            .collect();
        eventually("all threads finish or one is left alone", || {
            let done = finished.load(SeqCst);
            done == THREADS || (done == THREADS - 1 && barrier.n_waiting() == 1)
        });
        barrier.abort();
        workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .collect::<Vec<_>>()
    });
    let zeros: usize = counts.iter().map(|c| c[0]).sum();
    let ones: usize = counts.iter().map(|c| c[1]).sum();
    assert_eq!(zeros, ones, "every generation has exactly one 0 and one 1");
    assert!(
        zeros + ones >= THREADS * WAITS - WAITS,
        "most waits were released"
    );
}

/// Resets and aborts racing with waiters never hang anyone and never lose a fate: every wait
/// ends in a release or a broken error, and the barrier works afterwards.
#[test]
fn stress_reset_and_abort_race_with_waiters() {
    const THREADS: usize = 3;
    const WAITS: usize = 300;
    let barrier = Barrier::new(2).unwrap();
    let done = AtomicUsize::new(0);
    thread::scope(|s| {
        let disturber = s.spawn(|| {
            let mut n = 0u64;
            while done.load(SeqCst) < THREADS {
                if n % 3 == 0 {
                    barrier.abort();
                }
                barrier.reset();
                n += 1;
                thread::yield_now();
            }
        });
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..WAITS {
                    match barrier.wait_timeout(Duration::from_secs(30)) {
                        Ok(i) => assert!(i < 2),
                        Err(e) => assert_ne!(e.reason(), BrokenReason::TimedOut, "{e}"),
                    }
                }
                done.fetch_add(1, SeqCst);
            });
        }
        disturber.join().unwrap();
    });
    barrier.reset();
    let indices: BTreeSet<usize> = run_threads(2, |_| barrier.wait().unwrap())
        .into_iter()
        .collect();
    assert_eq!(indices, BTreeSet::from([0, 1]));
}
