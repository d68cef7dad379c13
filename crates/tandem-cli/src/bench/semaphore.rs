//! `semaphore.*`: tandem's `Semaphore` against a counting semaphore built the textbook way on
//! std's (and parking_lot's) `Mutex<usize>` + `Condvar` — neither crate has a semaphore —
//! and CPython's `threading.Semaphore`.

use std::hint::black_box;

use super::{contended, time, Bench};

/// The semaphore people write when their library has none: a count under a mutex, and a
/// condition variable to wait for it to become positive.
struct StdSemaphore {
    count: std::sync::Mutex<usize>,
    available: std::sync::Condvar,
}

impl StdSemaphore {
    fn new(count: usize) -> Self {
        StdSemaphore {
            count: std::sync::Mutex::new(count),
            available: std::sync::Condvar::new(),
        }
    }

    fn acquire(&self) {
        let mut count = self.count.lock().unwrap();
        while *count == 0 {
            count = self.available.wait(count).unwrap();
        }
        *count -= 1;
    }

    fn release(&self) {
        *self.count.lock().unwrap() += 1;
        self.available.notify_one();
    }
}

/// The same on parking_lot's mutex and condition variable.
struct PlSemaphore {
    count: parking_lot::Mutex<usize>,
    available: parking_lot::Condvar,
}

impl PlSemaphore {
    fn new(count: usize) -> Self {
        PlSemaphore {
            count: parking_lot::Mutex::new(count),
            available: parking_lot::Condvar::new(),
        }
    }

    fn acquire(&self) {
        let mut count = self.count.lock();
        while *count == 0 {
            self.available.wait(&mut count);
        }
        *count -= 1;
    }

    fn release(&self) {
        *self.count.lock() += 1;
        self.available.notify_one();
    }
}

pub(crate) fn benches() -> Vec<Bench> {
    vec![
        Bench::new(
            "semaphore.uncontended",
            "acquire + release of one permit, one thread (std/parking_lot: Mutex<usize> + Condvar)",
        )
        .native("tandem", |iters| {
            let sem = pytandem::sync::Semaphore::new(4);
            time(|| {
                for _ in 0..iters {
                    drop(black_box(black_box(&sem).acquire()));
                }
            })
        })
        .native("std", |iters| {
            let sem = StdSemaphore::new(4);
            time(|| {
                for _ in 0..iters {
                    black_box(&sem).acquire();
                    black_box(&sem).release();
                }
            })
        })
        .native("parking_lot", |iters| {
            let sem = PlSemaphore::new(4);
            time(|| {
                for _ in 0..iters {
                    black_box(&sem).acquire();
                    black_box(&sem).release();
                }
            })
        })
        .cpython(
            "import threading\nsem = threading.Semaphore(4)\n",
            "for _ in range(n):\n    with sem:\n        pass",
        ),
        Bench::new(
            "semaphore.contended",
            "acquire + release, 4 threads sharing 2 permits (tandem hands off in FIFO order)",
        )
        .native("tandem", |iters| {
            let sem = pytandem::sync::Semaphore::new(2);
            contended(4, iters, |n| {
                for _ in 0..n {
                    drop(black_box(sem.acquire()));
                }
            })
        })
        .native("std", |iters| {
            let sem = StdSemaphore::new(2);
            contended(4, iters, |n| {
                for _ in 0..n {
                    sem.acquire();
                    sem.release();
                }
            })
        })
        .native("parking_lot", |iters| {
            let sem = PlSemaphore::new(2);
            contended(4, iters, |n| {
                for _ in 0..n {
                    sem.acquire();
                    sem.release();
                }
            })
        })
        .cpython(
            "import threading\nsem = threading.Semaphore(2)\n\
             def work(k):\n    for _ in range(k):\n        with sem:\n            pass\n",
            "ts = [threading.Thread(target=work, args=(n // 4,)) for _ in range(4)]\n\
             for t in ts: t.start()\n\
             for t in ts: t.join()",
        ),
    ]
}

pub(crate) fn sizes() -> Vec<(&'static str, usize)> {
    vec![
        (
            "tandem Semaphore",
            std::mem::size_of::<pytandem::sync::Semaphore>(),
        ),
        (
            "tandem BoundedSemaphore",
            std::mem::size_of::<pytandem::sync::BoundedSemaphore>(),
        ),
        (
            "std Mutex<usize> + Condvar",
            std::mem::size_of::<StdSemaphore>(),
        ),
    ]
}
