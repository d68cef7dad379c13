//! `lock.*`: tandem's `Lock` against std's and parking_lot's mutexes and CPython's
//! `threading.Lock`.

use std::hint::black_box;

pub(crate) use super::contended;
use super::{time, Bench};

pub(crate) fn benches() -> Vec<Bench> {
    vec![
        Bench::new("lock.uncontended", "acquire + increment + release, one thread")
            .native("tandem", |iters| {
                let lock = pytandem::sync::Lock::new(0u64);
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
                let lock = pytandem::sync::Lock::new(0u64);
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
            std::mem::size_of::<pytandem::sync::Lock<()>>(),
        ),
        ("std Mutex<()>", std::mem::size_of::<std::sync::Mutex<()>>()),
        (
            "parking_lot Mutex<()>",
            std::mem::size_of::<parking_lot::Mutex<()>>(),
        ),
    ]
}
