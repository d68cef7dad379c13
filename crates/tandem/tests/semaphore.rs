//! `Semaphore` and `BoundedSemaphore`: behaviour, errors, timeouts, FIFO hand-off, stress,
//! and CPython's `Lib/test/lock_tests.py` (`BaseSemaphoreTests`, `SemaphoreTests`,
//! `BoundedSemaphoreTests`) ported with handshakes in place of sleeps.
// Real threads and real time: not for loom builds (the loom models live beside the code).
#![cfg(not(tandem_loom))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use pytandem::sync::{BoundedSemaphore, OverReleaseError, Semaphore, SemaphorePermit};

mod common;
use common::eventually;

/// Floods the semaphore with permits if the test panics, so blocked helper threads finish
/// and the failure is reported instead of hanging the scope that joins them.
struct UnblockOnPanic<'a>(&'a Semaphore);

impl Drop for UnblockOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            let _ = self.0.try_release_n(1_000);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Type contracts
// ---------------------------------------------------------------------------------------

#[test]
fn types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Semaphore>();
    send_sync::<BoundedSemaphore>();
    send_sync::<SemaphorePermit<'static>>();
    send_sync::<OverReleaseError>();
    send_sync::<pytandem::sync::TooManyPermitsError>();
}

#[test]
fn sizes() {
    // With diagnostics compiled in, each also carries its name tag (one pointer).
    let tag = if cfg!(feature = "diagnostics") { 8 } else { 0 };
    assert!(std::mem::size_of::<Semaphore>() <= 16 + tag);
    assert!(std::mem::size_of::<BoundedSemaphore>() <= 16 + tag);
}

#[test]
fn const_construction() {
    static POOL: Semaphore = Semaphore::new(2);
    static BOUNDED: BoundedSemaphore = BoundedSemaphore::new(1);
    let _a = POOL.acquire();
    let _b = BOUNDED.acquire();
    assert_eq!(POOL.available_permits(), 1);
    assert_eq!(BOUNDED.available_permits(), 0);
}

// ---------------------------------------------------------------------------------------
// lock_tests.py: BaseSemaphoreTests
// ---------------------------------------------------------------------------------------

/// test_constructor: the value is unsigned, so only the upper limit remains to check;
/// 0 is allowed.
#[test]
fn constructor_accepts_zero() {
    let sem = Semaphore::new(0);
    assert_eq!(sem.available_permits(), 0);
    assert!(sem.try_acquire().is_none());
    let b = BoundedSemaphore::new(0);
    assert_eq!(b.bound(), 0);
    assert!(b.try_acquire().is_none());
    assert!(b.try_release().is_err());
}

/// test_acquire
#[test]
fn acquire_and_release() {
    let sem = Semaphore::new(1);
    sem.acquire().forget();
    sem.release();
    let sem = Semaphore::new(2);
    sem.acquire().forget();
    sem.acquire().forget();
    sem.release();
    sem.release();
    assert_eq!(sem.available_permits(), 2);
}

/// test_acquire_destroy: a semaphore dropped while a permit was forgotten is fine.
#[test]
fn acquire_destroy() {
    {
        let sem = Semaphore::new(1);
        sem.acquire().forget();
    } // dropped with its only permit still taken: nothing to release, nothing leaks
    let sem = Box::new(BoundedSemaphore::new(2));
    sem.acquire_many(2).unwrap().forget();
}

/// test_acquire_contended: with 7 permits taken and 10 threads blocked, each release lets
/// exactly as many threads through as permits released.
#[test]
fn acquire_contended() {
    let sem = Semaphore::new(7);
    for _ in 0..7 {
        sem.acquire().forget();
    }
    let through = AtomicUsize::new(0);
    thread::scope(|s| {
        let _unblock = UnblockOnPanic(&sem);
        for _ in 0..10 {
            s.spawn(|| {
                sem.acquire().forget();
                through.fetch_add(1, Ordering::SeqCst);
            });
        }
        eventually("10 blocked acquirers", || sem.n_waiting() == 10);
        assert_eq!(through.load(Ordering::SeqCst), 0);

        for _ in 0..6 {
            sem.release();
        }
        eventually("6 acquirers through", || {
            through.load(Ordering::SeqCst) == 6
        });
        assert_eq!(sem.n_waiting(), 4);
        assert_eq!(sem.available_permits(), 0);

        for _ in 0..4 {
            sem.release();
        }
    });
    assert_eq!(through.into_inner(), 10);
    assert_eq!(sem.available_permits(), 0);
}

/// test_multirelease: `release(n)` lets n waiters through at once.
#[test]
fn multirelease() {
    let sem = Semaphore::new(7);
    for _ in 0..7 {
        sem.acquire().forget();
    }
    let through = AtomicUsize::new(0);
    thread::scope(|s| {
        let _unblock = UnblockOnPanic(&sem);
        for _ in 0..10 {
            s.spawn(|| {
                sem.acquire().forget();
                through.fetch_add(1, Ordering::SeqCst);
            });
        }
        eventually("10 blocked acquirers", || sem.n_waiting() == 10);
        sem.release_n(6);
        eventually("6 acquirers through", || {
            through.load(Ordering::SeqCst) == 6
        });
        assert_eq!(sem.n_waiting(), 4);
        sem.release_n(4);
    });
    assert_eq!(through.into_inner(), 10);
    assert_eq!(sem.available_permits(), 0);
}

/// test_try_acquire
#[test]
fn try_acquire() {
    let sem = Semaphore::new(2);
    let a = sem.try_acquire().expect("first");
    let b = sem.try_acquire().expect("second");
    assert!(sem.try_acquire().is_none());
    drop((a, b));
    assert_eq!(sem.available_permits(), 2);
}

/// test_try_acquire_contended: another thread's non-blocking acquire fails.
#[test]
fn try_acquire_contended() {
    let sem = Semaphore::new(4);
    for _ in 0..4 {
        sem.acquire().forget();
    }
    let got = thread::scope(|s| s.spawn(|| sem.try_acquire().is_some()).join().unwrap());
    assert!(!got);
}

/// test_acquire_timeout
#[test]
fn acquire_timeout() {
    let sem = Semaphore::new(2);
    assert!(sem
        .acquire_timeout(Duration::ZERO)
        .map(SemaphorePermit::forget)
        .is_some());
    assert!(sem
        .acquire_timeout(Duration::from_millis(5))
        .map(SemaphorePermit::forget)
        .is_some());
    assert!(sem.acquire_timeout(Duration::ZERO).is_none());
    let start = Instant::now();
    assert!(sem.acquire_timeout(Duration::from_millis(50)).is_none());
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(50),
        "returned early: {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "returned late: {waited:?}");
    sem.release();
    assert!(
        sem.acquire_timeout(Duration::MAX).is_some(),
        "absurd timeout = forever"
    );
    assert!(
        sem.acquire_until(Instant::now()).is_some(),
        "a passed deadline tries once"
    );
    assert!(sem.acquire_until(Instant::now()).is_some());
    let b = BoundedSemaphore::new(1);
    let _p = b.acquire();
    let start = Instant::now();
    assert!(b.acquire_until(start + Duration::from_millis(30)).is_none());
    assert!(start.elapsed() >= Duration::from_millis(30));
}

/// test_default_value: Python's `Semaphore()` holds one permit.
#[test]
fn default_value() {
    let sem = Semaphore::default();
    assert_eq!(sem.available_permits(), 1);
    let p = sem.acquire();
    assert!(sem.try_acquire().is_none());
    drop(p);
    assert_eq!(BoundedSemaphore::default().bound(), 1);
}

/// test_with: the permit returns at the end of the scope, and also when the holder panics.
#[test]
fn permit_returns_on_scope_exit_and_panic() {
    let sem = Semaphore::new(2);
    {
        let _p = sem.acquire();
        assert_eq!(sem.available_permits(), 1);
    }
    assert_eq!(sem.available_permits(), 2);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _p = sem.acquire();
        panic!("inside the with block");
    }));
    assert!(r.is_err());
    assert_eq!(sem.available_permits(), 2);
}

/// SemaphoreTests.test_release_unacquired: a plain semaphore may grow past its start value.
#[test]
fn plain_release_unacquired_grows() {
    let sem = Semaphore::new(1);
    sem.release();
    sem.acquire().forget();
    sem.acquire().forget();
    sem.release();
    assert_eq!(sem.available_permits(), 1);
}

/// BoundedSemaphoreTests.test_release_unacquired: over-release is refused, as Python's
/// `ValueError`, and nothing changes.
#[test]
fn bounded_release_unacquired_is_an_error() {
    let sem = BoundedSemaphore::new(1);
    let err = sem.try_release().unwrap_err();
    assert_eq!((err.released(), err.available(), err.bound()), (1, 1, 1));
    sem.acquire().forget();
    assert_eq!(sem.try_release(), Ok(()));
    assert!(sem.try_release().is_err());
    assert_eq!(sem.available_permits(), 1);
    let msg = err.to_string();
    assert!(
        msg.contains("released too many times") && msg.contains("bound of 1"),
        "{msg}"
    );
}

/// BoundedSemaphoreTests.test_multirelease: `release(n)` past the bound is refused whole.
#[test]
fn bounded_multirelease() {
    let sem = BoundedSemaphore::new(7);
    sem.acquire_many(3).unwrap().forget();
    assert!(sem.try_release_n(4).is_err(), "4 + 4 free > 7");
    assert_eq!(
        sem.available_permits(),
        4,
        "a refused release changes nothing"
    );
    assert_eq!(sem.try_release_n(2), Ok(()));
    assert_eq!(sem.try_release(), Ok(()));
    assert!(sem.try_release().is_err());
    assert_eq!(sem.available_permits(), 7);
}

// ---------------------------------------------------------------------------------------
// acquire_many and errors
// ---------------------------------------------------------------------------------------

#[test]
fn acquire_many_is_all_or_nothing() {
    let sem = Semaphore::new(5);
    let p = sem.acquire_many(3).unwrap();
    assert_eq!(p.count(), 3);
    assert_eq!(sem.available_permits(), 2);
    assert!(
        sem.try_acquire_many(3).unwrap().is_none(),
        "none taken when not all free"
    );
    assert_eq!(sem.available_permits(), 2);
    let start = Instant::now();
    assert!(sem
        .acquire_many_timeout(3, Duration::from_millis(30))
        .unwrap()
        .is_none());
    assert!(start.elapsed() >= Duration::from_millis(30));
    assert_eq!(sem.available_permits(), 2);
    drop(p);
    assert_eq!(sem.available_permits(), 5);
    let q = sem
        .acquire_many_until(5, Instant::now() + Duration::from_secs(1))
        .unwrap()
        .unwrap();
    assert_eq!(sem.available_permits(), 0);
    q.forget();
    sem.release_n(5);
    assert_eq!(sem.available_permits(), 5);
}

#[test]
fn acquire_zero_succeeds_at_once() {
    let sem = Semaphore::new(0);
    assert_eq!(sem.acquire_many(0).unwrap().count(), 0);
    assert!(sem.try_acquire_many(0).unwrap().is_some());
    // Even while somebody waits.
    thread::scope(|s| {
        let _unblock = UnblockOnPanic(&sem);
        s.spawn(|| sem.acquire().forget());
        eventually("a waiter", || sem.n_waiting() == 1);
        assert!(sem.try_acquire_many(0).unwrap().is_some());
        assert!(sem
            .acquire_many_timeout(0, Duration::ZERO)
            .unwrap()
            .is_some());
        sem.release();
    });
    let b = BoundedSemaphore::new(0);
    assert!(b.acquire_many(0).is_ok());
}

#[test]
fn more_than_the_bound_is_an_error_not_a_hang() {
    let sem = BoundedSemaphore::new(3);
    let err = sem.acquire_many(4).unwrap_err();
    assert_eq!((err.requested(), err.bound()), (4, 3));
    assert!(err.to_string().contains("could never be granted"), "{err}");
    assert!(sem.try_acquire_many(4).is_err());
    assert!(sem.acquire_many_timeout(4, Duration::MAX).is_err());
    assert!(sem.acquire_many_until(4, Instant::now()).is_err());
    assert_eq!(sem.available_permits(), 3);
    assert!(sem.acquire_many(3).is_ok());

    let plain = Semaphore::new(0);
    assert!(plain.acquire_many(Semaphore::MAX_PERMITS + 1).is_err());
    assert!(plain.try_acquire_many(usize::MAX).is_err());
}

#[test]
fn plain_release_overflow_is_refused() {
    let sem = Semaphore::new(Semaphore::MAX_PERMITS - 1);
    assert_eq!(sem.try_release(), Ok(()));
    let err = sem.try_release().unwrap_err();
    assert_eq!(err.bound(), Semaphore::MAX_PERMITS);
    assert_eq!(sem.available_permits(), Semaphore::MAX_PERMITS);
    let caught = std::panic::catch_unwind(|| sem.release());
    assert!(
        caught.is_err(),
        "release panics with a clear message past MAX_PERMITS"
    );
    assert_eq!(sem.available_permits(), Semaphore::MAX_PERMITS);
}

#[test]
fn bounded_permit_drop_cannot_over_release() {
    let sem = BoundedSemaphore::new(2);
    let p = sem.acquire();
    assert_eq!(
        sem.try_release(),
        Ok(()),
        "explicit release refills the taken permit"
    );
    assert_eq!(sem.available_permits(), 2);
    drop(p); // would be a third permit: clamped to the bound
    assert_eq!(sem.available_permits(), 2);
    let p = sem.acquire_many(2).unwrap();
    drop(p);
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn permit_dropped_on_another_thread() {
    let sem = Semaphore::new(1);
    let p = sem.acquire();
    thread::scope(|s| {
        s.spawn(move || drop(p));
    });
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn release_from_another_thread_wakes_waiter() {
    let sem = BoundedSemaphore::new(1);
    sem.acquire().forget();
    thread::scope(|s| {
        let waiter = s.spawn(|| sem.acquire_timeout(Duration::from_secs(20)).is_some());
        eventually("the waiter", || sem.n_waiting() == 1);
        s.spawn(|| sem.release()).join().unwrap();
        assert!(waiter.join().unwrap());
    });
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn debug_output() {
    let sem = Semaphore::new(2);
    assert_eq!(
        format!("{sem:?}"),
        "Semaphore { available_permits: 2, has_waiters: false }"
    );
    let b = BoundedSemaphore::new(3);
    let p = b.acquire();
    assert_eq!(format!("{p:?}"), "SemaphorePermit { count: 1 }");
    assert_eq!(
        format!("{b:?}"),
        "BoundedSemaphore { available_permits: 2, bound: 3, has_waiters: false }"
    );
}

#[test]
#[should_panic(expected = "MAX_PERMITS")]
fn too_large_initial_value_panics() {
    let _ = Semaphore::new(usize::MAX);
}

#[test]
fn max_permits_round_trip() {
    let sem = Semaphore::new(Semaphore::MAX_PERMITS);
    let p = sem.acquire_many(Semaphore::MAX_PERMITS).unwrap();
    assert_eq!(sem.available_permits(), 0);
    drop(p);
    assert_eq!(sem.available_permits(), Semaphore::MAX_PERMITS);
}

#[test]
fn waiters_flag_and_count_track_the_queue() {
    let sem = Semaphore::new(0);
    assert!(!sem.has_waiters());
    assert_eq!(sem.n_waiting(), 0);
    thread::scope(|s| {
        let _unblock = UnblockOnPanic(&sem);
        s.spawn(|| {
            sem.acquire_timeout(Duration::from_secs(60))
                .map(SemaphorePermit::forget)
        });
        eventually("the waiter to queue", || sem.n_waiting() == 1);
        assert!(sem.has_waiters());
        sem.release();
    });
    assert!(!sem.has_waiters());
    assert_eq!(sem.n_waiting(), 0);
    assert_eq!(sem.available_permits(), 0);
}

// ---------------------------------------------------------------------------------------
// Fairness: strict FIFO hand-off
// ---------------------------------------------------------------------------------------

/// A queued `acquire_many(3)` is served before `acquire(1)`s that queued after it, even
/// when permits trickle in one at a time.
#[test]
fn fifo_big_request_is_served_before_later_small_ones() {
    let sem = Semaphore::new(0);
    let order = Mutex::new(Vec::new());
    thread::scope(|s| {
        let _unblock = UnblockOnPanic(&sem);
        let (sem, order) = (&sem, &order);
        s.spawn(move || {
            let p = sem.acquire_many(3).unwrap();
            order.lock().unwrap().push("big");
            p.forget();
        });
        eventually("the big request to queue", || sem.n_waiting() == 1);
        for i in 0..3 {
            s.spawn(move || {
                sem.acquire().forget();
                order
                    .lock()
                    .unwrap()
                    .push(["small0", "small1", "small2"][i]);
            });
            eventually("a small request to queue", || sem.n_waiting() == 2 + i);
        }
        // Two permits: not enough for the head, and nobody may take them past it.
        sem.release();
        sem.release();
        assert_eq!(sem.available_permits(), 2);
        assert_eq!(sem.n_waiting(), 4);
        assert!(
            sem.try_acquire().is_none(),
            "no barging past a queued waiter"
        );
        assert!(order.lock().unwrap().is_empty());
        // The third permit serves the head.
        sem.release();
        eventually("the big request", || order.lock().unwrap().len() == 1);
        assert_eq!(sem.n_waiting(), 3);
        // Then the small ones, in arrival order.
        for i in 0..3 {
            sem.release();
            eventually("the next small request", || {
                order.lock().unwrap().len() == 2 + i
            });
        }
    });
    assert_eq!(
        *order.lock().unwrap(),
        ["big", "small0", "small1", "small2"]
    );
    assert_eq!(sem.available_permits(), 0);
    assert!(!sem.has_waiters());
}

/// One release of several permits wakes every waiter it can serve, in order, and leaves
/// the rest.
#[test]
fn one_release_serves_several_waiters() {
    let sem = Semaphore::new(0);
    let through = AtomicUsize::new(0);
    thread::scope(|s| {
        let _unblock = UnblockOnPanic(&sem);
        for (i, want) in [1, 2, 1, 3].into_iter().enumerate() {
            let (sem, through) = (&sem, &through);
            s.spawn(move || {
                sem.acquire_many(want).unwrap().forget();
                through.fetch_add(1, Ordering::SeqCst);
            });
            eventually("the waiter to queue", || sem.n_waiting() == i + 1);
        }
        sem.release_n(5); // 1 + 2 + 1 served, 1 left: not enough for the 3
        eventually("three served", || through.load(Ordering::SeqCst) == 3);
        assert_eq!(sem.available_permits(), 1);
        assert_eq!(sem.n_waiting(), 1);
        sem.release_n(2);
    });
    assert_eq!(through.into_inner(), 4);
    assert_eq!(sem.available_permits(), 0);
}

/// A big request under steady pressure from small ones is not starved: small acquirers
/// hammer the semaphore while one thread asks for all permits at once.
#[test]
fn big_request_is_not_starved() {
    let sem = Semaphore::new(3);
    let stop = std::sync::atomic::AtomicBool::new(false);
    thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let _p = sem.acquire();
                    std::hint::spin_loop();
                }
            });
        }
        for _ in 0..20 {
            let p = sem
                .acquire_many_timeout(3, Duration::from_secs(20))
                .unwrap()
                .expect("a request for every permit starved behind small ones");
            assert_eq!(sem.available_permits(), 0);
            drop(p);
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(sem.available_permits(), 3);
}

/// A waiter that times out at the head of the queue passes the permits it was holding up
/// to those behind it. (Retried with a longer timeout in the unlikely case the head gives up
/// before the second waiter has even queued, which would not exercise the hand-on.)
#[test]
fn timed_out_head_redistributes() {
    for attempt in 0..4u32 {
        let sem = BoundedSemaphore::new(3);
        sem.acquire_many(3).unwrap().forget();
        let exercised = thread::scope(|s| {
            let head = s.spawn(|| {
                sem.acquire_many_timeout(3, Duration::from_millis(200 << attempt))
                    .unwrap()
                    .is_some()
            });
            eventually("the head", || sem.n_waiting() == 1);
            let behind = s.spawn(|| {
                sem.acquire_many_timeout(2, Duration::from_secs(20))
                    .unwrap()
                    .map(SemaphorePermit::forget)
                    .is_some()
            });
            eventually("the second waiter", || {
                sem.n_waiting() == 2 || head.is_finished()
            });
            let exercised = !head.is_finished();
            // Give back 2 of the 3: the head (wanting 3) holds them up until it times out.
            sem.release_n(2);
            assert!(!head.join().unwrap(), "only 2 permits were free");
            assert!(
                behind.join().unwrap(),
                "the waiter behind the timed-out head was served"
            );
            exercised
        });
        assert_eq!(sem.available_permits(), 0);
        assert_eq!(sem.try_release_n(3), Ok(()));
        if exercised {
            return;
        }
    }
    panic!("the head always timed out before the second waiter queued");
}

// ---------------------------------------------------------------------------------------
// Stress
// ---------------------------------------------------------------------------------------

/// `Semaphore(k)` never admits more than k holders at once, across 8 threads using every
/// acquire form, and every permit comes back.
#[test]
fn stress_never_more_than_k_holders() {
    const K: usize = 3;
    const THREADS: usize = 8;
    const ITERS: usize = 20_000;
    let sem = Arc::new(Semaphore::new(K));
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (sem, inside, most, done, start) = (
                Arc::clone(&sem),
                Arc::clone(&inside),
                Arc::clone(&most),
                Arc::clone(&done),
                Arc::clone(&start),
            );
            thread::spawn(move || {
                start.wait();
                for i in 0..ITERS {
                    let permit = match (t + i) % 5 {
                        0 => Some(sem.acquire()),
                        1 => sem.try_acquire(),
                        2 => sem.acquire_timeout(Duration::from_micros(50)),
                        3 => sem.acquire_many(2).ok(),
                        _ => sem
                            .acquire_many_timeout(2, Duration::from_micros(100))
                            .unwrap(),
                    };
                    let Some(permit) = permit else { continue };
                    let n = permit.count();
                    let now = inside.fetch_add(n, Ordering::SeqCst) + n;
                    most.fetch_max(now, Ordering::SeqCst);
                    assert!(now <= K, "{now} permits held at once, only {K} exist");
                    std::hint::spin_loop();
                    inside.fetch_sub(n, Ordering::SeqCst);
                    if i % 7 == 0 {
                        permit.forget();
                        sem.release_n(n);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(most.load(Ordering::SeqCst) <= K);
    assert!(most.load(Ordering::SeqCst) >= 1);
    // The blocking forms (2 of every 5 iterations) always succeed.
    assert!(done.load(Ordering::Relaxed) >= THREADS * ITERS * 2 / 5);
    assert_eq!(sem.available_permits(), K, "permits balance");
    assert!(!sem.has_waiters());
    assert_eq!(sem.n_waiting(), 0);
}

/// Bounded semaphore under contention with explicit release: the bound is never exceeded
/// and the count balances.
#[test]
fn stress_bounded_balances() {
    const K: usize = 2;
    let sem = BoundedSemaphore::new(K);
    thread::scope(|s| {
        for t in 0..4 {
            let sem = &sem;
            s.spawn(move || {
                for i in 0..3_000 {
                    if (t + i) % 2 == 0 {
                        let _p = sem.acquire();
                    } else {
                        sem.acquire().forget();
                        sem.try_release()
                            .expect("returning an acquired permit is in bounds");
                    }
                    assert!(sem.available_permits() <= K);
                }
            });
        }
    });
    assert_eq!(sem.available_permits(), K);
}

/// Python 3.9+: `sem.release(0)` raises `ValueError: n must be one or more`, for both kinds;
/// here a typed error (it used to be accepted silently), and nothing changes.
#[test]
fn release_of_zero_permits_is_an_error() {
    let sem = Semaphore::new(1);
    let err = sem.try_release_n(0).unwrap_err();
    assert_eq!(err.released(), 0);
    assert!(err.to_string().contains("one or more"), "{err}");
    let panic = std::panic::catch_unwind(|| sem.release_n(0)).unwrap_err();
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(message.contains("one or more"), "{message}");
    assert_eq!(sem.available_permits(), 1);
    let bounded = BoundedSemaphore::new(2);
    bounded.acquire().forget();
    let err = bounded.try_release_n(0).unwrap_err();
    assert_eq!((err.released(), err.available(), err.bound()), (0, 1, 2));
    assert_eq!(bounded.available_permits(), 1);
}

/// `release()` and `release_n(n)` have the same shape on both semaphores: they panic where
/// Python raises `ValueError`, naming the values and the caller's line (`#[track_caller]`);
/// `try_release()` / `try_release_n(n)` return the error. `release()` is one permit.
#[test]
fn release_shapes_match_and_panics_name_the_caller() {
    let plain = Semaphore::new(0);
    plain.release();
    plain.release_n(2);
    assert_eq!(plain.available_permits(), 3);
    let bounded = BoundedSemaphore::new(3);
    bounded.acquire_many(3).unwrap().forget();
    bounded.release();
    bounded.release_n(2);
    assert_eq!(bounded.available_permits(), 3);
    assert_eq!(bounded.try_release().unwrap_err().released(), 1);

    let (tx, rx) = std::sync::mpsc::channel();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let at = info.location().map(|l| (l.file().to_owned(), l.line()));
        let _ = tx.send((info.to_string(), at));
    }));
    let line = line!() + 1;
    let caught = std::panic::catch_unwind(|| bounded.release_n(2));
    std::panic::set_hook(previous);
    assert!(caught.is_err());
    // The hook is process-wide: other tests' panics may have passed through it too.
    let (message, at) = rx
        .try_iter()
        .find(|(m, _)| m.contains("released too many times"))
        .expect("the over-release panicked through the hook");
    assert!(
        message.contains("releasing 2 permit(s) with 3 free"),
        "{message}"
    );
    assert!(message.contains("bound of 3"), "{message}");
    assert_eq!(at, Some((file!().to_owned(), line)), "{message}");
    assert_eq!(bounded.available_permits(), 3, "nothing was released");
}
