//! `lock.*`: tandem's `Lock` against std's and parking_lot's mutexes and CPython's
//! `threading.Lock`.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use super::{time, Bench};

/// Runs `per_thread(iters / threads)` on `threads` threads started together; the time from
/// the common start until the last one finished.
pub(crate) fn contended(threads: usize, iters: u64, per_thread: impl Fn(u64) + Sync) -> Duration {
    let start_line = Barrier::new(threads + 1);
    let share = (iters / threads as u64).max(1);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                start_line.wait();
                per_thread(share);
            });
        }
        start_line.wait();
        let start = Instant::now();
        // The scope joins the threads before returning the elapsed time below.
        start
    })
    .elapsed()
}

pub(crate) fn benches() -> Vec<Bench> {
    vec![
        Bench::new("lock.uncontended", "acquire + increment + release, one thread")
            .native("tandem", |iters| {
                let lock = tandem::sync::Lock::new(0u64);
                time(|| {
                    for _ in 0..iters {
                        *black_box(&lock).acquire() += 1;
                    }
                })
            })
            .native("std", |iters| {
                let lock = std::sync::Mutex::new(0u64);
                time(|| {
                    for _ in 0..iters {
                        *black_box(&lock).lock().unwrap() += 1;
                    }
                })
            })
            .native("parking_lot", |iters| {
                let lock = parking_lot::Mutex::new(0u64);
                time(|| {
                    for _ in 0..iters {
                        *black_box(&lock).lock() += 1;
                    }
                })
            })
            .cpython(
                "import threading\nlock = threading.Lock()\n",
                "for _ in range(n):\n    with lock:\n        pass",
            ),
        Bench::new("lock.contended", "acquire + increment + release, 2 threads on one lock")
            .native("tandem", |iters| {
                let lock = tandem::sync::Lock::new(0u64);
                contended(2, iters, |n| {
                    for _ in 0..n {
                        *lock.acquire() += 1;
                    }
                })
            })
            .native("std", |iters| {
                let lock = std::sync::Mutex::new(0u64);
                contended(2, iters, |n| {
                    for _ in 0..n {
                        *lock.lock().unwrap() += 1;
                    }
                })
            })
            .native("parking_lot", |iters| {
                let lock = parking_lot::Mutex::new(0u64);
                contended(2, iters, |n| {
                    for _ in 0..n {
                        *lock.lock() += 1;
                    }
                })
            })
            .cpython(
                "import threading\nlock = threading.Lock()\ncounter = [0]\n\
                 def work(k):\n    for _ in range(k):\n        with lock:\n            counter[0] += 1\n",
                "ts = [threading.Thread(target=work, args=(n // 2,)) for _ in range(2)]\n\
                 for t in ts: t.start()\n\
                 for t in ts: t.join()",
            ),
    ]
}

pub(crate) fn sizes() -> Vec<(&'static str, usize)> {
    vec![
        (
            "tandem Lock<()>",
            std::mem::size_of::<tandem::sync::Lock<()>>(),
        ),
        ("std Mutex<()>", std::mem::size_of::<std::sync::Mutex<()>>()),
        (
            "parking_lot Mutex<()>",
            std::mem::size_of::<parking_lot::Mutex<()>>(),
        ),
    ]
}
