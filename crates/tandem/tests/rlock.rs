//! `RLock`: CPython's `Lib/test/lock_tests.py` (`BaseLockTests`, `RLockTests`) ported, with
//! its sleeps replaced by observable handshakes, plus stress tests with invariants.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use pytandem::sync::{RLock, RLockGuard};
use pytandem::ReleaseError;

mod common;
use common::eventually;

/// Generous bound for "this must not hang" on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(10);

// ---- BaseLockTests ----

#[test]
fn constructor_and_debug() {
    let lock = RLock::new(());
    assert_eq!(format!("{lock:?}"), "RLock { data: () }");
    let lock: RLock<u8> = RLock::default();
    assert!(!lock.locked());
    let lock = RLock::from(3);
    assert_eq!(*lock.acquire(), 3);
}

#[test]
fn acquire_destroy() {
    // Python: lock.acquire(); del lock — dropping a held (leaked) lock is fine.
    let lock = RLock::new(String::from("held"));
    lock.acquire().forget();
    assert!(lock.locked());
    drop(lock);
}

#[test]
fn acquire_release_and_try_acquire() {
    let lock = RLock::new(());
    lock.acquire().forget();
    assert_eq!(lock.release(), Ok(()));
    let g = lock.try_acquire();
    assert!(g.is_some());
    drop(g);
    assert!(!lock.locked());
}

#[test]
fn try_acquire_contended() {
    let lock = RLock::new(());
    let _g = lock.acquire();
    let other = thread::scope(|s| s.spawn(|| lock.try_acquire().is_some()).join().unwrap());
    assert!(!other, "another thread must not get a held RLock");
}

#[test]
fn acquire_contended_blocks_until_released() {
    // Python starts 5 threads that acquire and release a held lock, sleeps, and checks that
    // none finished. Here each thread checks, once inside, that the main thread had already
    // given the lock up: entering while it was held fails the test, whatever the timing.
    const N: usize = 5;
    let lock = RLock::new(());
    let released = AtomicBool::new(false);
    let started = AtomicUsize::new(0);
    let entered = AtomicUsize::new(0);
    let held = lock.acquire();
    thread::scope(|s| {
        for _ in 0..N {
            s.spawn(|| {
                started.fetch_add(1, Ordering::SeqCst);
                let g = lock.acquire();
                assert!(
                    released.load(Ordering::SeqCst),
                    "entered while another thread held the lock"
                );
                entered.fetch_add(1, Ordering::SeqCst);
                drop(g);
            });
        }
        eventually("all threads started", || {
            started.load(Ordering::SeqCst) == N
        });
        assert_eq!(entered.load(Ordering::SeqCst), 0);
        released.store(true, Ordering::SeqCst);
        drop(held);
    });
    assert_eq!(entered.load(Ordering::SeqCst), N);
    assert!(!lock.locked());
}

#[test]
fn with_releases_on_panic() {
    // Python's `with lock: raise err` leaves the lock unacquired.
    let lock = RLock::new(());
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        let _outer = lock.acquire();
        let _inner = lock.acquire();
        panic!("boom");
    }));
    assert!(caught.is_err());
    assert!(!lock.locked());
    assert!(thread::scope(|s| s
        .spawn(|| lock.try_acquire().is_some())
        .join()
        .unwrap()));
}

#[test]
fn timeouts() {
    let lock = RLock::new(());
    // Python: TIMEOUT_MAX is ok. Here anything, even Duration::MAX, means "forever".
    drop(lock.acquire_timeout(Duration::MAX).expect("free lock"));
    let t = Instant::now();
    drop(
        lock.acquire_timeout(Duration::from_secs(5))
            .expect("free lock"),
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "did not wait for a free lock"
    );

    let _held = lock.acquire();
    let (got, took) = thread::scope(|s| {
        s.spawn(|| {
            let t = Instant::now();
            let got = lock.acquire_timeout(Duration::from_millis(50)).is_some();
            (got, t.elapsed())
        })
        .join()
        .unwrap()
    });
    assert!(!got);
    assert!(took >= Duration::from_millis(50), "{took:?}");
    assert!(took < PATIENCE, "{took:?}");
    let zero = thread::scope(|s| {
        s.spawn(|| lock.acquire_timeout(Duration::ZERO).is_some())
            .join()
            .unwrap()
    });
    assert!(!zero);
}

// ---- RLockTests ----

#[test]
fn reacquire() {
    let lock = RLock::new(());
    lock.acquire().forget();
    lock.acquire().forget();
    lock.release().unwrap();
    lock.acquire().forget();
    lock.release().unwrap();
    lock.release().unwrap();
    assert!(!lock.locked());
}

#[test]
fn release_unacquired() {
    let lock = RLock::new(());
    assert_eq!(lock.release(), Err(ReleaseError::Unlocked));
    lock.acquire().forget();
    lock.acquire().forget();
    lock.release().unwrap();
    lock.acquire().forget();
    lock.release().unwrap();
    lock.release().unwrap();
    assert_eq!(lock.release(), Err(ReleaseError::Unlocked));
    let message = ReleaseError::Unlocked.to_string();
    assert!(message.contains("unlocked"), "{message}");
}

#[test]
fn release_from_a_different_thread_is_refused() {
    let lock = RLock::new(());
    let (owned_tx, owned_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    thread::scope(|s| {
        let lock = &lock;
        s.spawn(move || {
            lock.acquire().forget();
            owned_tx.send(()).unwrap();
            done_rx.recv().unwrap();
            lock.release().unwrap();
        });
        owned_rx.recv().unwrap();
        assert_eq!(lock.release(), Err(ReleaseError::NotOwner));
        assert!(lock.locked(), "a refused release changes nothing");
        let message = ReleaseError::NotOwner.to_string();
        assert!(
            message.contains("only the thread that acquired"),
            "{message}"
        );
        done_tx.send(()).unwrap();
    });
    assert!(!lock.locked());
}

#[test]
fn is_owned() {
    let lock = RLock::new(());
    assert!(!lock.is_owned());
    let a = lock.acquire();
    assert!(lock.is_owned());
    let b = lock.acquire();
    assert!(lock.is_owned());
    let other = thread::scope(|s| s.spawn(|| lock.is_owned()).join().unwrap());
    assert!(!other);
    drop(b);
    assert!(lock.is_owned());
    drop(a);
    assert!(!lock.is_owned());
}

#[test]
fn recursion_count() {
    let lock = RLock::new(());
    assert_eq!(lock.recursion_count(), 0);
    let a = lock.acquire();
    assert_eq!(lock.recursion_count(), 1);
    let b = lock.acquire();
    let c = lock.acquire();
    assert_eq!(lock.recursion_count(), 3);
    drop(c);
    assert_eq!(lock.recursion_count(), 2);
    drop(b);
    drop(a);
    assert_eq!(lock.recursion_count(), 0);

    // Held by another thread: 0 as seen from here, and its own count as seen from there.
    let (held_tx, held_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    thread::scope(|s| {
        let lock = &lock;
        s.spawn(move || {
            let _a = lock.acquire();
            let _b = lock.acquire();
            held_tx.send(lock.recursion_count()).unwrap();
            go_rx.recv().unwrap();
        });
        assert_eq!(held_rx.recv().unwrap(), 2);
        assert!(lock.locked());
        assert_eq!(lock.recursion_count(), 0);
        go_tx.send(()).unwrap();
    });
    assert_eq!(lock.recursion_count(), 0);
    assert!(!lock.locked());
}

// ---- beyond lock_tests.py ----

#[test]
fn owner_reenters_with_timeouts_and_try() {
    let lock = RLock::new(5);
    let a = lock.acquire();
    let b = lock
        .try_acquire()
        .expect("owner re-enters without blocking");
    let c = lock
        .acquire_until(Instant::now())
        .expect("owner re-enters past its deadline");
    assert_eq!(*a + *b + *c, 15);
    assert_eq!(lock.recursion_count(), 3);
    assert!(std::ptr::eq(RLockGuard::lock(&c), &lock));
}

#[test]
fn seeds_recursive_function() {
    // Seed 004: a recursive function re-entering the lock it holds.
    fn sum_to(lock: &RLock<Cell<u64>>, n: u64) {
        let total = lock.acquire();
        total.set(total.get() + n);
        if n > 0 {
            sum_to(lock, n - 1);
        }
    }
    let lock = RLock::new(Cell::new(0));
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| sum_to(&lock, 100));
        }
    });
    assert_eq!(lock.into_inner().get(), 4 * 5050);
}

#[test]
fn not_starved_by_a_thread_that_keeps_relocking() {
    // Eventual fairness: one thread re-takes the lock in a tight loop; a waiter still gets
    // it (the lock is handed over after about 0.5 ms).
    let lock = RLock::new(());
    let stop = AtomicBool::new(false);
    let started = Barrier::new(2);
    thread::scope(|s| {
        s.spawn(|| {
            started.wait();
            while !stop.load(Ordering::Relaxed) {
                let _a = lock.acquire();
                let _b = lock.acquire();
            }
        });
        started.wait();
        let t = Instant::now();
        let got = lock.acquire_timeout(PATIENCE).is_some();
        stop.store(true, Ordering::Relaxed);
        assert!(got, "waited {:?} without getting the lock", t.elapsed());
    });
}

#[test]
fn stress_nested_counter_is_exact() {
    // 4 threads, each incrementing under 1 to 3 levels of the lock; a second counter checks
    // nobody else is ever inside at the same time.
    const THREADS: usize = 4;
    const ROUNDS: usize = 20_000;
    let lock = RLock::new((Cell::new(0usize), Cell::new(0usize)));
    let inside = AtomicUsize::new(0);
    thread::scope(|s| {
        for t in 0..THREADS {
            let (lock, inside) = (&lock, &inside);
            s.spawn(move || {
                for i in 0..ROUNDS {
                    let depth = 1 + (i + t) % 3;
                    let guards: Vec<_> = (0..depth).map(|_| lock.acquire()).collect();
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                    assert_eq!(lock.recursion_count(), depth);
                    let (count, levels) = &*guards[0];
                    count.set(count.get() + 1);
                    levels.set(levels.get() + depth);
                    inside.fetch_sub(1, Ordering::SeqCst);
                }
            });
        }
    });
    let (count, levels) = lock.into_inner();
    assert_eq!(count.get(), THREADS * ROUNDS);
    let expected_levels: usize = (0..THREADS)
        .map(|t| (0..ROUNDS).map(|i| 1 + (i + t) % 3).sum::<usize>())
        .sum();
    assert_eq!(levels.get(), expected_levels);
}

#[test]
fn auto_traits() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    // `Cell` is Send but not Sync: the RLock still is Sync (guards give `&T` on one thread).
    send::<RLock<Cell<u8>>>();
    sync::<RLock<Cell<u8>>>();
    sync::<RLockGuard<'static, u8>>();
}

/// A thread that exits holding an `RLock` leaves it held, and no later thread is taken for
/// its owner: owners are identified by a number never reused, not by the address of a
/// thread-local (which a new thread may get again, rust-lang/rust#123458).
#[test]
fn a_new_thread_never_inherits_a_dead_owner() {
    let lock = std::sync::Arc::new(RLock::new(()));
    {
        let lock = std::sync::Arc::clone(&lock);
        std::thread::spawn(move || lock.acquire().forget())
            .join()
            .unwrap();
    }
    for _ in 0..50 {
        let lock = std::sync::Arc::clone(&lock);
        let (entered, owned) = std::thread::spawn(move || {
            let entered = lock.try_acquire().map(|g| g.forget()).is_some();
            (entered, lock.is_owned())
        })
        .join()
        .unwrap();
        assert!(
            !entered && !owned,
            "a new thread re-entered a dead thread's RLock"
        );
    }
    assert!(lock.locked());
}

/// The owner's `release` frees only a level kept without a guard (`forget`): with only
/// guards held it is refused, so a guard's level is never released under it (it used to
/// be, and the guard's drop then underflowed the count).
#[test]
fn release_never_breaks_a_live_guard() {
    let lock = RLock::new(());
    let guard = lock.acquire();
    assert_eq!(lock.release(), Err(ReleaseError::HeldByGuard));
    lock.acquire().forget();
    assert_eq!(lock.recursion_count(), 2);
    assert_eq!(lock.release(), Ok(()));
    assert_eq!(lock.release(), Err(ReleaseError::HeldByGuard));
    drop(guard);
    assert!(!lock.locked());
    assert_eq!(lock.release(), Err(ReleaseError::Unlocked));
}
