//! `Lock`: the behaviours CPython's `Lib/test/lock_tests.py` checks for `threading.Lock`
//! (BaseLockTests, LockTests), ported with handshakes instead of sleeps, plus stress tests.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pytandem::sync::Lock;
use pytandem::ReleaseError;

mod common;
use common::eventually;

#[test]
fn constructor_and_debug() {
    let lock = Lock::new(());
    assert!(!lock.locked());
    assert_eq!(format!("{lock:?}"), "Lock { data: () }");
    let _g = lock.acquire();
    assert_eq!(format!("{lock:?}"), "Lock { data: <locked> }");
}

#[test]
fn acquire_release() {
    let lock = Lock::new(());
    let g = lock.acquire();
    assert!(lock.locked());
    drop(g);
    assert!(!lock.locked());
}

#[test]
fn try_acquire() {
    let lock = Lock::new(());
    let g = lock.try_acquire();
    assert!(g.is_some());
    assert!(lock.try_acquire().is_none());
    drop(g);
    assert!(lock.try_acquire().is_some());
}

#[test]
fn try_acquire_contended() {
    let lock = Lock::new(());
    let _g = lock.acquire();
    std::thread::scope(|s| {
        let got = s.spawn(|| lock.try_acquire().is_some()).join().unwrap();
        assert!(!got, "another thread must not get a held lock");
    });
}

#[test]
fn acquire_contended_blocks_until_released() {
    let lock = Lock::new(0);
    let g = lock.acquire();
    let started = AtomicBool::new(false);
    let finished = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            started.store(true, Ordering::SeqCst);
            *lock.acquire() += 1;
            finished.store(true, Ordering::SeqCst);
        });
        eventually("the thread started", || started.load(Ordering::SeqCst));
        // It cannot finish while we hold the lock: check a few times, then release.
        for _ in 0..100 {
            assert!(!finished.load(Ordering::SeqCst));
            std::thread::yield_now();
        }
        drop(g);
    });
    assert!(finished.load(Ordering::SeqCst));
    assert_eq!(*lock.acquire(), 1);
}

#[test]
fn panic_in_critical_section_releases() {
    let lock = Lock::new(1);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _g = lock.acquire();
        panic!("inside the lock");
    }));
    assert!(r.is_err());
    assert!(
        !lock.locked(),
        "no poisoning: the guard released the lock while unwinding"
    );
    assert_eq!(*lock.acquire(), 1);
}

#[test]
fn timeout_gives_up_then_succeeds_after_release() {
    let lock = Lock::new(());
    let g = lock.acquire();
    std::thread::scope(|s| {
        s.spawn(|| {
            let start = Instant::now();
            assert!(lock.acquire_timeout(Duration::from_millis(50)).is_none());
            let took = start.elapsed();
            assert!(took >= Duration::from_millis(50), "gave up early: {took:?}");
            assert!(
                took < Duration::from_secs(5),
                "gave up far too late: {took:?}"
            );
            // A zero timeout tries once.
            assert!(lock.acquire_timeout(Duration::ZERO).is_none());
        });
    });
    drop(g);
    // An absurd timeout is "forever", not an overflow panic, and succeeds on a free lock.
    assert!(lock.acquire_timeout(Duration::MAX).is_some());
}

#[test]
fn timed_acquire_gets_lock_released_meanwhile() {
    let lock = Lock::new(());
    let g = lock.acquire();
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            tx.send(()).unwrap();
            assert!(lock.acquire_timeout(Duration::from_secs(30)).is_some());
        });
        rx.recv().unwrap();
        drop(g);
    });
}

#[test]
fn state_after_timeout() {
    // CPython issue #11618: a timed-out acquire must not leave the lock in a bad state.
    let lock = Lock::new(());
    let g = lock.acquire();
    std::thread::scope(|s| {
        s.spawn(|| assert!(lock.acquire_timeout(Duration::from_millis(10)).is_none()));
    });
    drop(g);
    assert!(!lock.locked());
    assert!(lock.try_acquire().is_some());
}

#[test]
fn reacquire_from_another_thread_after_release() {
    // LockTests.test_reacquire: a lock can be re-acquired by a thread blocked on it once the
    // holder releases it, and then by the first thread again.
    let lock = Lock::new(());
    lock.acquire().forget();
    std::thread::scope(|s| {
        let t = s.spawn(|| {
            lock.acquire().forget();
            lock.release().unwrap();
        });
        lock.release().unwrap();
        t.join().unwrap();
    });
    assert!(lock.try_acquire().is_some());
}

#[test]
fn release_from_a_different_thread() {
    // LockTests.test_different_thread: Python locks may be released by another thread.
    let lock = Lock::new(());
    lock.acquire().forget();
    std::thread::scope(|s| {
        s.spawn(|| lock.release()).join().unwrap().unwrap();
    });
    assert!(!lock.locked());
    assert_eq!(lock.release(), Err(ReleaseError::Unlocked));
    let msg = ReleaseError::Unlocked.to_string();
    assert!(msg.contains("unlocked"), "{msg}");
}

#[test]
fn static_lock() {
    static GLOBAL: Lock<Vec<u32>> = Lock::new(Vec::new());
    GLOBAL.acquire().push(1);
    assert_eq!(*GLOBAL.acquire(), vec![1]);
}

#[test]
fn stress_counter_is_exact() {
    for threads in [2usize, 4, 8] {
        let per_thread = 20_000;
        let lock = Lock::new(0usize);
        let inside = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for t in 0..threads {
                let (lock, inside) = (&lock, &inside);
                s.spawn(move || {
                    for i in 0..per_thread {
                        // Mix every way of acquiring.
                        let mut g = match (i + t) % 3 {
                            0 => lock.acquire(),
                            1 => loop {
                                if let Some(g) = lock.try_acquire() {
                                    break g;
                                }
                                std::hint::spin_loop();
                            },
                            _ => loop {
                                if let Some(g) = lock.acquire_timeout(Duration::from_micros(50)) {
                                    break g;
                                }
                            },
                        };
                        assert_eq!(
                            inside.fetch_add(1, Ordering::Relaxed),
                            0,
                            "two threads inside"
                        );
                        *g += 1;
                        inside.fetch_sub(1, Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(lock.into_inner(), threads * per_thread);
    }
}

#[test]
fn stress_python_style_release_from_other_threads() {
    // Two threads pass a bare lock back and forth: each releases what the other acquired.
    let rounds = 5_000;
    let lock = Lock::new(());
    let (to_b, from_a) = mpsc::channel::<()>();
    let (to_a, from_b) = mpsc::channel::<()>();
    let lock = &lock;
    std::thread::scope(|s| {
        s.spawn(move || {
            for _ in 0..rounds {
                from_a.recv().unwrap();
                lock.release().expect("A left it held");
                lock.acquire().forget();
                to_a.send(()).unwrap();
            }
        });
        lock.acquire().forget();
        for _ in 0..rounds {
            to_b.send(()).unwrap();
            from_b.recv().unwrap();
            lock.release().expect("B left it held");
            lock.acquire().forget();
        }
    });
    assert!(lock.locked());
    lock.release().unwrap();
    assert_eq!(lock.release(), Err(ReleaseError::Unlocked));
}

/// `release` frees only a hold kept without a guard (`forget`): while a guard holds the lock,
/// it is refused, so a live guard keeps its mutual exclusion (it used to unlock the lock
/// under the guard, letting a second thread in).
#[test]
fn release_never_breaks_a_live_guard() {
    let lock = Lock::new(());
    let guard = lock.acquire();
    assert_eq!(lock.release(), Err(ReleaseError::HeldByGuard));
    assert!(
        lock.try_acquire().is_none(),
        "the guard still excludes others"
    );
    drop(guard);
    lock.acquire().forget();
    assert_eq!(lock.release(), Ok(()));
    assert_eq!(lock.release(), Err(ReleaseError::Unlocked));
}
