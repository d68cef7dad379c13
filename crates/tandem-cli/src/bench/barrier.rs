//! `barrier.round` and `thread.spawn_join`: tandem's `Barrier` against std's and CPython's
//! `threading.Barrier`; tandem's threads against std's and CPython's `threading.Thread`.

use super::lock::contended;
use super::{time, Bench};

pub(crate) fn benches() -> Vec<Bench> {
    vec![
        // `contended(2, 2 * iters, ..)` gives each of the 2 threads `iters` waits: `iters`
        // rounds in all.
        Bench::new("barrier.round", "one round of a 2-party barrier (both threads wait once)")
            .native("tandem", |iters| {
                let barrier = pytandem::sync::Barrier::new(2).expect("2 parties");
                contended(2, 2 * iters, |n| {
                    for _ in 0..n {
                        barrier.wait().expect("nobody breaks the barrier");
                    }
                })
            })
            .native("std", |iters| {
                let barrier = std::sync::Barrier::new(2);
                contended(2, 2 * iters, |n| {
                    for _ in 0..n {
                        barrier.wait();
                    }
                })
            })
            .cpython(
                "import threading\nbarrier = threading.Barrier(2)\n\
                 def other(k):\n    for _ in range(k):\n        barrier.wait()\n",
                "t = threading.Thread(target=other, args=(n,))\nt.start()\n\
                 for _ in range(n):\n    barrier.wait()\nt.join()",
            ),
        Bench::new("thread.spawn_join", "spawn a thread that does nothing, then join it")
            .native("tandem", |iters| {
                time(|| {
                    for _ in 0..iters {
                        pytandem::thread::spawn(|| ())
                            .expect("spawn")
                            .join()
                            .expect("no panic");
                    }
                })
            })
            .native("std", |iters| {
                time(|| {
                    for _ in 0..iters {
                        std::thread::spawn(|| ()).join().expect("no panic");
                    }
                })
            })
            .cpython(
                "import threading\ndef nothing():\n    pass\n",
                "for _ in range(n):\n    t = threading.Thread(target=nothing)\n    t.start()\n    t.join()",
            ),
    ]
}

pub(crate) fn sizes() -> Vec<(&'static str, usize)> {
    vec![
        (
            "tandem Barrier",
            std::mem::size_of::<pytandem::sync::Barrier>(),
        ),
        ("std Barrier", std::mem::size_of::<std::sync::Barrier>()),
        (
            "tandem thread::JoinHandle<()>",
            std::mem::size_of::<pytandem::thread::JoinHandle<()>>(),
        ),
        (
            "std thread::JoinHandle<()>",
            std::mem::size_of::<std::thread::JoinHandle<()>>(),
        ),
    ]
}
