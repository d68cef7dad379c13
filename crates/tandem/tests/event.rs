//! `Event`: behaviour, timeouts, and CPython's `Lib/test/lock_tests.py` `EventTests`
//! ported with handshakes in place of sleeps.
// Real threads and real time: not for loom builds (the loom models live beside the code).
#![cfg(not(tandem_loom))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use pytandem::sync::Event;

mod common;
use common::eventually;

/// Sets the event if the test panics, so blocked helper threads finish and the failure is
/// reported instead of hanging the scope that joins them.
struct UnblockOnPanic<'a>(&'a Event);

impl Drop for UnblockOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.set();
        }
    }
}

#[test]
fn type_contracts() {
    fn send_sync<T: Send + Sync + Default + std::fmt::Debug>() {}
    send_sync::<Event>();
    if !cfg!(feature = "diagnostics") {
        assert!(std::mem::size_of::<Event>() <= 8);
    }
    static READY: Event = Event::new();
    READY.set();
    assert!(READY.wait());
}

/// test_is_set
#[test]
fn is_set() {
    let e = Event::new();
    assert!(!e.is_set());
    e.set();
    assert!(e.is_set());
    e.set();
    assert!(e.is_set());
    e.clear();
    assert!(!e.is_set());
    e.clear();
    assert!(!e.is_set());
}

/// _check_notify / test_notify: every waiter wakes on set and returns true; after a clear,
/// it works again.
#[test]
fn notify_wakes_every_waiter() {
    const N: usize = 5;
    let e = Event::new();
    for round in 0..2 {
        let woke_true = AtomicUsize::new(0);
        thread::scope(|s| {
            let _unblock = UnblockOnPanic(&e);
            for i in 0..N {
                let (e, woke_true) = (&e, &woke_true);
                s.spawn(move || {
                    let r = if i % 2 == 0 {
                        e.wait()
                    } else {
                        e.wait_timeout(Duration::from_secs(60))
                    };
                    if r {
                        woke_true.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
            eventually("all waiters blocked", || e.n_waiting() == N);
            assert_eq!(woke_true.load(Ordering::SeqCst), 0);
            e.set();
        });
        assert_eq!(woke_true.into_inner(), N, "round {round}");
        assert_eq!(e.n_waiting(), 0);
        e.clear();
    }
}

/// test_timeout: a timed wait on a clear event returns false after the timeout; on a set
/// event it returns true at once.
#[test]
fn timeout() {
    let e = Event::new();
    assert!(!e.wait_timeout(Duration::ZERO));
    assert!(!e.wait_until(Instant::now()));
    let start = Instant::now();
    assert!(!e.wait_timeout(Duration::from_millis(50)));
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(50),
        "returned early: {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "returned late: {waited:?}");
    let start = Instant::now();
    assert!(!e.wait_until(start + Duration::from_millis(30)));
    assert!(start.elapsed() >= Duration::from_millis(30));

    e.set();
    assert!(e.wait_timeout(Duration::ZERO));
    assert!(e.wait_timeout(Duration::from_secs(60)));
    assert!(
        e.wait_timeout(Duration::MAX),
        "absurd timeout = forever, not a panic"
    );
    assert!(e.wait_until(Instant::now()));
}

/// A timed waiter is woken by a set from another thread well before its timeout.
#[test]
fn timed_waiter_woken_by_set() {
    let e = Event::new();
    thread::scope(|s| {
        let _unblock = UnblockOnPanic(&e);
        let w = s.spawn(|| {
            let start = Instant::now();
            (e.wait_timeout(Duration::from_secs(60)), start.elapsed())
        });
        eventually("the waiter", || e.n_waiting() == 1);
        e.set();
        let (r, took) = w.join().unwrap();
        assert!(r);
        assert!(took < Duration::from_secs(30));
    });
}

/// test_set_and_clear (gh-57711): waiters blocked in wait() return true even though the
/// event is cleared right after being set, before they run.
#[test]
fn set_and_clear() {
    const N: usize = 5;
    for _ in 0..20 {
        let e = Event::new();
        let results: Vec<bool> = thread::scope(|s| {
            let _unblock = UnblockOnPanic(&e);
            let waiters: Vec<_> = (0..N)
                .map(|_| s.spawn(|| e.wait_timeout(Duration::from_secs(60))))
                .collect();
            eventually("all waiters blocked", || e.n_waiting() == N);
            e.set();
            e.clear();
            waiters.into_iter().map(|w| w.join().unwrap()).collect()
        });
        assert_eq!(results, [true; N]);
        assert!(!e.is_set());
    }
}

/// A thread that starts waiting after set + clear is not released by that old set: it
/// waits for the next one.
#[test]
fn waiter_after_clear_waits_for_the_next_set() {
    let e = Event::new();
    e.set();
    e.clear();
    assert!(!e.wait_timeout(Duration::from_millis(20)));
    thread::scope(|s| {
        let _unblock = UnblockOnPanic(&e);
        let w = s.spawn(|| e.wait());
        eventually("the waiter", || e.n_waiting() == 1);
        e.set();
        assert!(w.join().unwrap());
    });
}

/// Waiters separated by set/clear cycles each see exactly their own wake-up.
#[test]
fn repeated_set_clear_cycles() {
    let e = Arc::new(Event::new());
    for _ in 0..50 {
        let e2 = Arc::clone(&e);
        let w = thread::spawn(move || e2.wait_timeout(Duration::from_secs(60)));
        eventually("the waiter", || e.n_waiting() == 1);
        e.set();
        e.clear();
        assert!(w.join().unwrap());
    }
}

/// Stress: a signalling chain where each thread waits for its event and then sets the
/// next; everything that was set happens-before the wake-up.
#[test]
fn stress_ping_pong() {
    const ROUNDS: usize = 2_000;
    let ping = Event::new();
    let pong = Event::new();
    let counter = AtomicUsize::new(0);
    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..ROUNDS {
                assert!(ping.wait());
                ping.clear();
                assert_eq!(counter.load(Ordering::Relaxed), 2 * i + 1);
                counter.store(2 * i + 2, Ordering::Relaxed);
                pong.set();
            }
        });
        for i in 0..ROUNDS {
            counter.store(2 * i + 1, Ordering::Relaxed);
            ping.set();
            assert!(pong.wait());
            pong.clear();
            assert_eq!(counter.load(Ordering::Relaxed), 2 * i + 2);
        }
    });
    assert_eq!(counter.into_inner(), 2 * ROUNDS);
}

/// Stress: many waiters and racing setters/clearers; every waiter that blocked before a
/// final set returns, and nobody is left parked.
#[test]
fn stress_racing_set_clear() {
    let e = Event::new();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let returned = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..500 {
                    e.wait_timeout(Duration::from_millis(1));
                    returned.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                e.set();
                thread::yield_now();
                e.clear();
            }
        });
        eventually("all waits done", || {
            returned.load(Ordering::Relaxed) == 2_000
        });
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(e.n_waiting(), 0);
}
