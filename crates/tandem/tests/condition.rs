//! `Condition`: CPython's `Lib/test/lock_tests.py` (`ConditionTests`) ported, with its sleeps
//! replaced by observable handshakes, plus FIFO order, exact `notify(n)`, conditions over a
//! re-entered `RLock`, and stress tests with invariants.
//!
//! The handshake used throughout: a waiter records itself in the condition's data (under the
//! lock) right before it waits. `wait` queues the thread before it releases the lock, so once
//! another thread, holding the lock, sees the record, that waiter is parked and will get the
//! next notification.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use pytandem::sync::{Condition, ConditionGuard, Lock, RLock};

/// Generous bound for "this must not hang" on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(10);

/// Acquires `cond` until `ready` holds for its data, polling; fails after `PATIENCE`.
fn poll<T>(cond: &Condition<T>, what: &str, mut ready: impl FnMut(&T) -> bool) {
    let give_up = Instant::now() + PATIENCE;
    loop {
        if ready(&cond.acquire()) {
            return;
        }
        assert!(Instant::now() < give_up, "timed out waiting for: {what}");
        thread::yield_now();
    }
}

// ---- ConditionTests ----

#[test]
fn acquire() {
    // Python's default Condition is over an RLock: it can be acquired several times.
    let cond = Condition::new_reentrant(());
    let a = cond.acquire();
    let b = cond.acquire();
    assert_eq!(cond.lock().recursion_count(), 2);
    drop((b, a));
    assert!(!cond.locked());

    // Over a plain Lock: holding the condition holds the lock, and the other way round.
    let cond = Condition::with_lock(Lock::new(()));
    let g = cond.acquire();
    assert!(cond.lock().try_acquire().is_none());
    drop(g);
    let direct = cond.lock().try_acquire().expect("released with the guard");
    assert!(cond.try_acquire().is_none());
    assert!(cond.acquire_timeout(Duration::from_millis(1)).is_none());
    drop(direct);
    let g = cond
        .acquire_timeout(Duration::from_millis(1))
        .expect("free");
    assert!(cond.lock().try_acquire().is_none());
    drop(g);
    assert!(cond.acquire_until(Instant::now()).is_some());
}

/// State shared by `check_notify`'s workers.
#[derive(Default)]
struct Phases {
    phase: usize,
    /// Threads inside `wait` (recorded before waiting, removed after).
    waiting: usize,
    results1: Vec<(bool, usize)>,
    results2: Vec<(bool, usize)>,
}

/// `lock_tests.ConditionTests._check_notify`: 5 workers wait twice; notify 3, then 5 (some
/// are in their first wait, some in their second), then all.
fn check_notify(cond: &Condition<Phases>) {
    const N: usize = 5;
    let record = |first: bool| {
        let mut g = cond.acquire();
        g.waiting += 1;
        g.wait();
        g.waiting -= 1;
        let entry = (true, g.phase);
        if first {
            g.results1.push(entry);
        } else {
            g.results2.push(entry);
        }
    };
    thread::scope(|s| {
        for _ in 0..N {
            s.spawn(|| {
                record(true);
                record(false);
            });
        }
        poll(cond, "5 waiters", |p| p.waiting == N);
        assert!(cond.acquire().results1.is_empty());

        // Notify 3 threads at first.
        let mut g = cond.acquire();
        assert_eq!(g.notify(3), 3);
        g.phase = 1;
        drop(g);
        // The 3 woken go round to their second wait; all 5 waiting again.
        poll(cond, "3 results, 5 waiting", |p| {
            p.results1.len() == 3 && p.waiting == N
        });
        {
            let g = cond.acquire();
            assert_eq!(g.results1, vec![(true, 1); 3]);
            assert!(g.results2.is_empty());
        }

        // Notify 5: the 2 in their first wait came first, so they are woken first (FIFO).
        let mut g = cond.acquire();
        assert_eq!(g.notify(5), 5);
        g.phase = 2;
        drop(g);
        poll(cond, "8 results, 2 waiting", |p| {
            p.results1.len() + p.results2.len() == 8 && p.waiting == 2
        });
        {
            let g = cond.acquire();
            let mut want1 = vec![(true, 1); 3];
            want1.extend([(true, 2); 2]);
            assert_eq!(g.results1, want1);
            assert_eq!(g.results2, vec![(true, 2); 3]);
        }

        // Notify all: the 2 left are in their second wait.
        let mut g = cond.acquire();
        assert_eq!(g.notify_all(), 2);
        g.phase = 3;
        drop(g);
    });
    let mut g = cond.acquire();
    let mut want2 = vec![(true, 2); 3];
    want2.extend([(true, 3); 2]);
    assert_eq!(g.results2, want2);
    assert_eq!(g.waiting, 0);
    assert_eq!(g.notify_all(), 0, "nobody is left waiting");
    *g = Phases::default();
}

#[test]
fn notify() {
    let cond = Condition::new(Phases::default());
    check_notify(&cond);
    // A second time, to check the internal state is still fine.
    check_notify(&cond);
}

#[test]
fn wait_timeout_times_out() {
    // Python: 5 threads `wait(0.5)`; each returns False after about 0.5 s.
    const N: usize = 5;
    let cond = Condition::new(());
    let results: Vec<(Duration, bool)> = thread::scope(|s| {
        let threads: Vec<_> = (0..N)
            .map(|_| {
                s.spawn(|| {
                    let mut g = cond.acquire();
                    let t = Instant::now();
                    let notified = g.wait_timeout(Duration::from_millis(100));
                    (t.elapsed(), notified)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for (took, notified) in results {
        assert!(!notified);
        assert!(took >= Duration::from_millis(100), "{took:?}");
        assert!(took < PATIENCE, "{took:?}");
    }
    assert!(!cond.locked());
}

#[test]
fn wait_timeout_reports_notified() {
    let cond = Condition::new((false, 0usize));
    thread::scope(|s| {
        let waiter = s.spawn(|| {
            let mut g = cond.acquire();
            g.1 += 1;
            let notified = g.wait_timeout(PATIENCE);
            (notified, g.0)
        });
        poll(&cond, "the waiter", |d| d.1 == 1);
        let mut g = cond.acquire();
        g.0 = true;
        assert!(g.notify_one());
        drop(g);
        assert_eq!(waiter.join().unwrap(), (true, true));
    });
}

#[test]
fn wait_for() {
    // Python: the waiter waits for state == 4 while the main thread counts up, notifying.
    let cond = Condition::new((0u32, false));
    thread::scope(|s| {
        let waiter = s.spawn(|| {
            let mut g = cond.acquire();
            let mut checks = 0;
            g.wait_for(|(state, waiting)| {
                checks += 1;
                *waiting = *state != 4;
                !*waiting
            });
            (g.0, checks)
        });
        for _ in 0..4 {
            // Step only once the waiter is waiting, so every step is a real wake-up.
            poll(&cond, "the waiter", |d| d.1);
            let mut g = cond.acquire();
            g.0 += 1;
            g.1 = false;
            g.notify_one();
        }
        let (state, checks) = waiter.join().unwrap();
        assert_eq!(state, 4, "wait_for returns only once the predicate holds");
        assert_eq!(
            checks, 5,
            "checked once first, then after each of the 4 wake-ups"
        );
    });
}

#[test]
fn wait_for_timeout_shares_one_deadline() {
    // Python: state only reaches 3, so `wait_for(state == 4, timeout)` returns False after
    // about `timeout`. Here the main thread notifies every time the waiter waits, for as long
    // as it keeps waiting: with a deadline recomputed at each re-wait it would never return.
    let cond = Condition::new((0u32, false, false)); // (state, waiting, done)
    let timeout = Duration::from_millis(100);
    thread::scope(|s| {
        let waiter = s.spawn(|| {
            let mut g = cond.acquire();
            let t = Instant::now();
            let ok = g.wait_for_timeout(
                |(state, waiting, _)| {
                    *waiting = *state != 4;
                    !*waiting
                },
                timeout,
            );
            g.2 = true;
            (ok, t.elapsed())
        });
        let give_up = Instant::now() + PATIENCE;
        let mut notified = 0;
        loop {
            let mut g = cond.acquire();
            if g.2 {
                break;
            }
            assert!(Instant::now() < give_up, "wait_for never gave up");
            if g.1 {
                if g.0 < 3 {
                    g.0 += 1;
                }
                g.1 = false;
                if g.notify_one() {
                    notified += 1;
                }
            }
            drop(g);
            thread::yield_now();
        }
        let (ok, took) = waiter.join().unwrap();
        assert!(!ok);
        assert!(took >= timeout, "{took:?}");
        assert!(took < PATIENCE, "{took:?}");
        assert!(notified >= 3, "only {notified} wake-ups");
    });
}

// ---- beyond lock_tests.py ----

#[test]
fn wait_for_returns_the_predicates_last_value() {
    // The predicate is evaluated once more after the last (timed-out) wait, and that value
    // is returned: here it turns true on that very call.
    let cond = Condition::new(0u32);
    let mut g = cond.acquire();
    let ok = g.wait_for_timeout(
        |calls| {
            *calls += 1;
            *calls == 2
        },
        Duration::from_millis(10),
    );
    assert!(ok);
    assert_eq!(*g, 2);

    // True at once: no wait at all, even with a zero timeout.
    *g = 0;
    assert!(g.wait_for_timeout(|_| true, Duration::ZERO));
    // False with a zero timeout: checked, not waited for.
    let t = Instant::now();
    assert!(!g.wait_for_timeout(|_| false, Duration::ZERO));
    assert!(t.elapsed() < PATIENCE);
    // An absurd timeout is "forever", not an overflow.
    *g = 1;
    assert!(g.wait_for_timeout(|n| *n == 1, Duration::MAX));
}

/// Starts `n` waiters one at a time, each only once the previous one is parked, so their
/// arrival order is 0, 1, 2, …; each records its id in `woken` once notified.
fn start_waiters_in_order<'s>(
    s: &'s thread::Scope<'s, '_>,
    cond: &'s Condition<(usize, Vec<usize>)>,
    n: usize,
) {
    for id in 0..n {
        s.spawn(move || {
            let mut g = cond.acquire();
            g.0 += 1;
            g.wait();
            g.0 -= 1;
            g.1.push(id);
        });
        poll(cond, "the next waiter", |d| d.0 == id + 1);
    }
}

#[test]
fn notify_one_wakes_in_arrival_order() {
    const N: usize = 5;
    let cond = Condition::new((0usize, Vec::new())); // (waiting, woken ids)
    thread::scope(|s| {
        start_waiters_in_order(s, &cond, N);
        for k in 1..=N {
            assert!(cond.acquire().notify_one());
            poll(&cond, "the notified waiter", |d| d.1.len() == k);
        }
    });
    assert_eq!(cond.acquire().1, (0..N).collect::<Vec<_>>());
}

#[test]
fn notify_n_wakes_exactly_n_oldest() {
    const N: usize = 6;
    let cond = Condition::new((0usize, Vec::new()));
    thread::scope(|s| {
        start_waiters_in_order(s, &cond, N);
        assert_eq!(cond.acquire().notify(2), 2);
        poll(&cond, "2 woken", |d| d.1.len() == 2);
        {
            let g = cond.acquire();
            let mut woken = g.1.clone();
            woken.sort_unstable();
            assert_eq!(woken, vec![0, 1], "the two oldest");
            assert_eq!(g.0, N - 2, "the others still wait");
        }
        assert_eq!(cond.acquire().notify(0), 0);
        // Asking for more than wait wakes the rest, and says how many.
        assert_eq!(cond.acquire().notify(100), N - 2);
    });
    let g = cond.acquire();
    assert_eq!(g.0, 0);
    assert_eq!(g.1.len(), N);
}

#[test]
fn reentrant_condition_held_three_levels_deep() {
    // Condition over an RLock held 3 levels: waiting releases all of them (another thread
    // gets in and owns the lock at level 1) and restores all 3 afterwards.
    let cond = Condition::new_reentrant((Cell::new(false), Cell::new(0usize)));
    thread::scope(|s| {
        let waiter = s.spawn(|| {
            let a = cond.acquire();
            let b = cond.acquire();
            let mut c = cond.acquire();
            assert_eq!(cond.lock().recursion_count(), 3);
            c.1.set(1); // waiting
            let ok = c.wait_for_timeout(|(flag, _)| flag.get(), PATIENCE);
            let levels_after = cond.lock().recursion_count();
            drop(c);
            let after_one = cond.lock().recursion_count();
            drop(b);
            drop(a);
            (ok, levels_after, after_one, cond.lock().is_owned())
        });
        let give_up = Instant::now() + PATIENCE;
        loop {
            // Acquiring at all proves the waiter released every level.
            let g = cond.acquire();
            assert!(cond.lock().is_owned());
            assert_eq!(cond.lock().recursion_count(), 1);
            if g.1.get() == 1 {
                g.0.set(true);
                assert!(g.notify_one());
                break;
            }
            drop(g);
            assert!(Instant::now() < give_up);
            thread::yield_now();
        }
        assert_eq!(waiter.join().unwrap(), (true, 3, 2, false));
    });
    assert!(!cond.locked());
}

#[test]
fn reentrant_condition_timeout_restores_levels() {
    let cond = Condition::new_reentrant(());
    let a = cond.acquire();
    let mut b = cond.acquire();
    let t = Instant::now();
    assert!(!b.wait_timeout(Duration::from_millis(20)));
    assert!(t.elapsed() >= Duration::from_millis(20));
    assert_eq!(cond.lock().recursion_count(), 2);
    // Released while waiting: another thread could have taken it.
    drop((b, a));
    assert!(!cond.locked());
}

#[test]
fn guard_over_a_lock_can_move_to_another_thread() {
    // Over a plain Lock, a guard may be sent to another thread (Python lets another thread
    // release a Lock); it can still wait and notify there.
    let cond = Condition::new(0u8);
    let g = cond.acquire();
    thread::scope(|s| {
        s.spawn(move || {
            let mut g: ConditionGuard<'_, u8> = g;
            *g = 7;
            assert!(!g.wait_timeout(Duration::from_millis(1)));
            assert_eq!(g.notify_all(), 0);
        });
    });
    assert_eq!(*cond.acquire(), 7);
}

// ---- stress ----

#[test]
fn stress_bounded_buffer_every_item_once() {
    // 2 producers, 2 consumers, capacity 4, over one condition (`notify_all`, since both
    // kinds wait on it). Consumers alternate plain and timed waits so the time-out and
    // requeue paths race with notifications. Every item is consumed exactly once.
    const PER_PRODUCER: usize = 50_000;
    const PRODUCERS: usize = 2;
    const CAPACITY: usize = 4;
    struct Buffer {
        items: VecDeque<usize>,
        producers_left: usize,
    }
    let cond = Condition::new(Buffer {
        items: VecDeque::new(),
        producers_left: PRODUCERS,
    });
    let start = Barrier::new(4);
    let consumed: Vec<Vec<usize>> = thread::scope(|s| {
        for p in 0..PRODUCERS {
            let (cond, start) = (&cond, &start);
            s.spawn(move || {
                start.wait();
                for i in 0..PER_PRODUCER {
                    let mut g = cond.acquire();
                    g.wait_for(|b| b.items.len() < CAPACITY);
                    g.items.push_back(p * PER_PRODUCER + i);
                    g.notify_all();
                }
                let mut g = cond.acquire();
                g.producers_left -= 1;
                g.notify_all();
            });
        }
        let consumers: Vec<_> = (0..2)
            .map(|c| {
                let (cond, start) = (&cond, &start);
                s.spawn(move || {
                    start.wait();
                    let mut got = Vec::new();
                    let mut g = cond.acquire();
                    loop {
                        if let Some(item) = g.items.pop_front() {
                            got.push(item);
                            g.notify_all();
                        } else if g.producers_left == 0 {
                            return got;
                        } else if (got.len() + c) % 2 == 0 {
                            g.wait();
                        } else {
                            g.wait_timeout(Duration::from_micros(50));
                        }
                    }
                })
            })
            .collect();
        consumers.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let mut all: Vec<usize> = consumed.into_iter().flatten().collect();
    assert_eq!(
        all.len(),
        PRODUCERS * PER_PRODUCER,
        "items lost or duplicated"
    );
    all.sort_unstable();
    assert!(all.iter().copied().eq(0..PRODUCERS * PER_PRODUCER));
}

#[test]
fn stress_notify_counts_match_notified_waits() {
    // Waiters with short timeouts race a notifier: every `notify_one() == true` must match
    // exactly one wait that returned "notified", even when the waiter's deadline passed while
    // it was being requeued.
    const WAITERS: usize = 3;
    const WAITS: usize = 10_000;
    let cond = Condition::new(0usize); // waiters still running
    let notified_waits = AtomicUsize::new(0);
    let sent = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        for w in 0..WAITERS {
            let (cond, notified_waits) = (&cond, &notified_waits);
            s.spawn(move || {
                for i in 0..WAITS {
                    let mut g = cond.acquire();
                    let timeout = Duration::from_micros(((i + w) % 4 * 20) as u64);
                    if g.wait_timeout(timeout) {
                        notified_waits.fetch_add(1, Ordering::Relaxed);
                    }
                }
                *cond.acquire() += 1;
            });
        }
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                let g = cond.acquire();
                if *g == WAITERS {
                    done.store(true, Ordering::Relaxed);
                }
                let n = if *g % 2 == 0 {
                    usize::from(g.notify_one())
                } else {
                    g.notify(2)
                };
                sent.fetch_add(n, Ordering::Relaxed);
                drop(g);
                thread::yield_now();
            }
        });
    });
    let (sent, got) = (sent.into_inner(), notified_waits.into_inner());
    assert_eq!(
        sent, got,
        "notify counted {sent} wake-ups, waiters saw {got}"
    );
    assert!(got > 0, "the race never happened");
}

#[test]
fn stress_reentrant_pingpong() {
    // Two threads hand a turn back and forth through a condition over an RLock, each holding
    // it two levels deep while waiting.
    const ROUNDS: usize = 5_000;
    let cond = Condition::new_reentrant(Cell::new(0usize));
    thread::scope(|s| {
        for me in 0..2 {
            let cond = &cond;
            s.spawn(move || {
                for _ in 0..ROUNDS {
                    let _outer = cond.acquire();
                    let mut turn = cond.acquire();
                    turn.wait_for(|t| t.get() % 2 == me);
                    assert_eq!(cond.lock().recursion_count(), 2);
                    turn.set(turn.get() + 1);
                    turn.notify_one();
                }
            });
        }
    });
    assert_eq!(cond.into_inner().get(), 2 * ROUNDS);
}

#[test]
fn auto_traits_and_size() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<Condition<Cell<u8>>>();
    sync::<Condition<Cell<u8>>>();
    send::<Condition<Cell<u8>, RLock<Cell<u8>>>>();
    sync::<Condition<Cell<u8>, RLock<Cell<u8>>>>();
    send::<ConditionGuard<'static, u8>>();
    sync::<ConditionGuard<'static, u8>>();
    sync::<ConditionGuard<'static, u8, RLock<u8>>>();
    if !cfg!(feature = "diagnostics") {
        // The `diagnostics` feature adds an id, a counter and a pointer to the lock inside.
        assert!(std::mem::size_of::<Condition<()>>() <= 16);
    }
}

/// Python's `Condition(lock)`: two conditions over one existing lock (the shape of
/// `queue.Queue`: `not_empty` and `not_full`), each waiting through the lock's own guard,
/// and a notify on one wakes only its own waiters.
#[test]
fn two_condvars_share_one_lock() {
    use pytandem::sync::{Condvar, Lock};
    let buffer = Lock::new(Vec::<u32>::new());
    let (not_empty, not_full) = (Condvar::new(), Condvar::new());
    std::thread::scope(|s| {
        let consumer = s.spawn(|| {
            let mut b = buffer.acquire();
            assert!(not_empty.wait_for_timeout(&mut b, |b| !b.is_empty(), Duration::from_secs(30)));
            let item = b.pop().unwrap();
            not_full.notify_all(&b);
            item
        });
        let mut b = buffer.acquire();
        // Nobody waits on `not_full` yet: notifying it wakes nobody, and a timed wait on it
        // (releasing the lock meanwhile) times out.
        assert_eq!(not_full.notify_all(&b), 0);
        assert!(!not_full.wait_timeout(&mut b, Duration::from_millis(10)));
        b.push(7);
        // The consumer may not be waiting yet; a notify here or its first check finds 7.
        not_empty.notify_one(&b);
        drop(b);
        assert_eq!(consumer.join().unwrap(), 7);
    });
    assert!(buffer.acquire().is_empty());
}

/// `ConditionGuard::forget` keeps the lock held without a guard, like the other guards; the
/// lock's `release` frees it (Python: `cond.acquire()` ... `cond.release()`).
#[test]
fn condition_guard_leak_keeps_the_lock_held() {
    let cond = Condition::new(());
    cond.acquire().forget();
    assert!(cond.locked());
    assert!(cond.try_acquire().is_none());
    cond.lock().release().unwrap();
    assert!(!cond.locked());
    let reentrant = Condition::new_reentrant(());
    reentrant.acquire().forget();
    assert!(reentrant.locked());
    reentrant.lock().release().unwrap();
    assert!(!reentrant.locked());
}
