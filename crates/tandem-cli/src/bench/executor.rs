//! `executor.*`: tandem's `ThreadPoolExecutor` against rayon (spawn + channel, `par_iter`),
//! threadpool (+ channel) and CPython's `concurrent.futures.ThreadPoolExecutor`.
//!
//! Every pool gets the same number of workers (`WORKERS`: the machine's CPU count, rayon's
//! default) and is built and warmed up outside the timed part. The peers return results
//! through one shared crossbeam channel (their cheapest way back); tandem hands each task
//! its own [`Task`](pytandem::executor::Task), as Python's futures do.

use std::hint::black_box;
use std::time::Duration;

use pytandem::executor::{MapOptions, ThreadPoolExecutor};
use rayon::prelude::*;

use super::{time, Bench};

/// Workers per pool: the CPU count (rayon's default).
fn workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Items per `map` task for tandem's `map` (rayon splits adaptively; Python's thread pool
/// ignores `chunksize`).
const MAP_CHUNK: usize = 1024;

fn tandem_pool() -> ThreadPoolExecutor {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(workers())
        .build()
        .expect("valid configuration");
    // Start every worker before timing.
    let tasks: Vec<_> = (0..workers() * 8)
        .map(|i| pool.submit(move || i).expect("open pool"))
        .collect();
    for t in tasks {
        t.result().expect("trivial task");
    }
    pool
}

fn rayon_pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(workers())
        .build()
        .expect("rayon pool")
}

fn submit_result(iters: u64) -> Duration {
    let pool = tandem_pool();
    time(|| {
        let tasks: Vec<_> = (0..iters)
            .map(|i| pool.submit(move || black_box(i)).expect("open pool"))
            .collect();
        for t in tasks {
            black_box(t.result().expect("trivial task"));
        }
    })
}

fn rayon_spawn(iters: u64) -> Duration {
    let pool = rayon_pool();
    pool.install(|| {});
    time(|| {
        let (tx, rx) = crossbeam_channel::unbounded();
        for i in 0..iters {
            let tx = tx.clone();
            pool.spawn(move || tx.send(black_box(i)).expect("receiver alive"));
        }
        drop(tx);
        for _ in 0..iters {
            black_box(rx.recv().expect("every task sends"));
        }
    })
}

fn threadpool_execute(iters: u64) -> Duration {
    let pool = threadpool::ThreadPool::new(workers());
    time(|| {
        let (tx, rx) = crossbeam_channel::unbounded();
        for i in 0..iters {
            let tx = tx.clone();
            pool.execute(move || tx.send(black_box(i)).expect("receiver alive"));
        }
        drop(tx);
        for _ in 0..iters {
            black_box(rx.recv().expect("every task sends"));
        }
    })
}

fn tandem_map(iters: u64) -> Duration {
    let pool = tandem_pool();
    time(|| {
        let out: Vec<u64> = pool
            .map_with(
                |x: u64| black_box(x) * 2,
                0..iters,
                MapOptions::new().chunksize(MAP_CHUNK),
            )
            .expect("the pool is open")
            .map(|r| r.expect("trivial item"))
            .collect();
        black_box(out);
    })
}

fn rayon_map(iters: u64) -> Duration {
    let pool = rayon_pool();
    pool.install(|| {});
    time(|| {
        let out: Vec<u64> = pool.install(|| {
            (0..iters)
                .into_par_iter()
                .map(|x| black_box(x) * 2)
                .collect()
        });
        black_box(out);
    })
}

const PY_SETUP: &str = "import os\n\
from concurrent.futures import ThreadPoolExecutor\n\
ex = ThreadPoolExecutor(max_workers=os.cpu_count() or 2)\n\
def f(i):\n    return i\n\
def g(x):\n    return x * 2\n\
list(ex.map(f, range(64)))\n";

pub(crate) fn benches() -> Vec<Bench> {
    vec![
        Bench::new(
            "executor.submit_result",
            "submit N trivial tasks, then collect every result (per task; CPU-count workers)",
        )
        .native("tandem", submit_result)
        .native("rayon", rayon_spawn)
        .native("threadpool", threadpool_execute)
        .cpython(PY_SETUP, "fs = [ex.submit(f, i) for i in range(n)]\nfor x in fs:\n    x.result()"),
        Bench::new(
            "executor.map",
            "map a trivial function over N items, results in order (per item; tandem chunksize 1024)",
        )
        .native("tandem", tandem_map)
        .native("rayon", rayon_map)
        .cpython(PY_SETUP, "list(ex.map(g, range(n)))"),
    ]
}

pub(crate) fn sizes() -> Vec<(&'static str, usize)> {
    vec![
        (
            "tandem Task<u64> (handle)",
            std::mem::size_of::<pytandem::executor::Task<u64>>(),
        ),
        (
            "tandem task cell beyond its u64",
            pytandem::executor::task_overhead(&|| 0u64),
        ),
    ]
}
