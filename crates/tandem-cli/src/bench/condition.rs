//! `condition.*`: tandem's `Condition` against std's and parking_lot's `Mutex` + `Condvar`
//! and CPython's `threading.Condition`.
//!
//! `condition.pingpong`: two threads hand a turn back and forth through one condition. The
//! shared counter is even on the first thread's turn and odd on the second's; each thread
//! waits for its turn, increments, and notifies. Figures are **ns per round trip** (two
//! hand-offs: there and back).

use std::sync::Barrier;
use std::time::Duration;

use super::{time, Bench};

/// Runs `iters` round trips: `side(0, iters)` on this thread (timed), `side(1, iters)` on
/// another, started together.
fn pingpong(iters: u64, side: impl Fn(u64, u64) + Sync) -> Duration {
    let start = Barrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| {
            start.wait();
            side(1, iters);
        });
        start.wait();
        // `side(0, ..)` returns once the other side's last hand-off is back.
        time(|| side(0, iters))
    })
}

pub(crate) fn benches() -> Vec<Bench> {
    vec![Bench::new(
        "condition.pingpong",
        "2 threads alternate a turn through one condition; ns per round trip (2 hand-offs)",
    )
    .native("tandem", |iters| {
        let cond = pytandem::sync::Condition::new(0u64);
        pingpong(iters, |me, n| {
            for _ in 0..n {
                let mut turn = cond.acquire();
                while *turn % 2 != me {
                    turn.wait();
                }
                *turn += 1;
                turn.notify_one();
            }
            if me == 0 {
                let mut turn = cond.acquire();
                while *turn != 2 * n {
                    turn.wait();
                }
            }
        })
    })
    .native("std", |iters| {
        let lock = std::sync::Mutex::new(0u64);
        let cv = std::sync::Condvar::new();
        pingpong(iters, |me, n| {
            for _ in 0..n {
                let mut turn = lock.lock().unwrap();
                while *turn % 2 != me {
                    turn = cv.wait(turn).unwrap();
                }
                *turn += 1;
                cv.notify_one();
            }
            if me == 0 {
                let mut turn = lock.lock().unwrap();
                while *turn != 2 * n {
                    turn = cv.wait(turn).unwrap();
                }
            }
        })
    })
    .native("parking_lot", |iters| {
        let lock = parking_lot::Mutex::new(0u64);
        let cv = parking_lot::Condvar::new();
        pingpong(iters, |me, n| {
            for _ in 0..n {
                let mut turn = lock.lock();
                while *turn % 2 != me {
                    cv.wait(&mut turn);
                }
                *turn += 1;
                cv.notify_one();
            }
            if me == 0 {
                let mut turn = lock.lock();
                while *turn != 2 * n {
                    cv.wait(&mut turn);
                }
            }
        })
    })
    .cpython(
        "import threading\n\
         cond = threading.Condition()\n\
         turn = [0]\n\
         def side(me, k):\n    \
             for _ in range(k):\n        \
                 with cond:\n            \
                     while turn[0] % 2 != me:\n                \
                         cond.wait()\n            \
                     turn[0] += 1\n            \
                     cond.notify()\n",
        "turn[0] = 0\n\
         t = threading.Thread(target=side, args=(1, n))\n\
         t.start()\n\
         side(0, n)\n\
         with cond:\n    \
             while turn[0] != 2 * n:\n        \
                 cond.wait()\n\
         t.join()",
    )]
}

pub(crate) fn sizes() -> Vec<(&'static str, usize)> {
    vec![
        (
            "tandem Condition<()>",
            std::mem::size_of::<pytandem::sync::Condition<()>>(),
        ),
        (
            "tandem Condition<(), RLock<()>>",
            std::mem::size_of::<pytandem::sync::Condition<(), pytandem::sync::RLock<()>>>(),
        ),
        (
            "std Mutex<()> + Condvar",
            std::mem::size_of::<std::sync::Mutex<()>>() + std::mem::size_of::<std::sync::Condvar>(),
        ),
        (
            "parking_lot Mutex<()> + Condvar",
            std::mem::size_of::<parking_lot::Mutex<()>>()
                + std::mem::size_of::<parking_lot::Condvar>(),
        ),
    ]
}
