//! `rlock.*`: tandem's `RLock` against parking_lot's `ReentrantMutex` and CPython's
//! `threading.RLock` (std's `ReentrantLock` is not stable yet).

use std::cell::Cell;
use std::hint::black_box;

use super::{time, Bench};

pub(crate) fn benches() -> Vec<Bench> {
    vec![Bench::new(
        "rlock.reentrant",
        "acquire, re-enter (depth 2), increment, release both; one thread",
    )
    .native("tandem", |iters| {
        let lock = pytandem::sync::RLock::new(Cell::new(0u64));
        time(|| {
            for _ in 0..iters {
                let lock = black_box(&lock);
                let outer = lock.acquire();
                let inner = lock.acquire();
                inner.set(inner.get() + 1);
                drop(inner);
                drop(outer);
            }
        })
    })
    .native("parking_lot", |iters| {
        let lock = parking_lot::ReentrantMutex::new(Cell::new(0u64));
        time(|| {
            for _ in 0..iters {
                let lock = black_box(&lock);
                let outer = lock.lock();
                let inner = lock.lock();
                inner.set(inner.get() + 1);
                drop(inner);
                drop(outer);
            }
        })
    })
    .cpython(
        "import threading\nlock = threading.RLock()\n",
        "for _ in range(n):\n    with lock:\n        with lock:\n            pass",
    )]
}

pub(crate) fn sizes() -> Vec<(&'static str, usize)> {
    vec![
        (
            "tandem RLock<()>",
            std::mem::size_of::<pytandem::sync::RLock<()>>(),
        ),
        (
            "parking_lot ReentrantMutex<()>",
            std::mem::size_of::<parking_lot::ReentrantMutex<()>>(),
        ),
    ]
}
