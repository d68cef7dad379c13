//! Process pools: many trivial tasks submitted and collected, `map` over many trivial items
//! with chunking, and how long a crashed worker takes to be replaced. Against CPython's
//! `concurrent.futures.ProcessPoolExecutor` and `multiprocessing.Pool`. ns per task or item.

use super::{time, Bench};
use pytandem::process::{cpu_count, ProcessPoolExecutor};
use std::cell::RefCell;
use std::time::{Duration, Instant};

/// The chunk size both sides use in `process.pool.map`.
const CHUNK: usize = 4096;

pub(crate) fn benches() -> Vec<Bench> {
    vec![
        Bench::new(
            "process.pool.submit_result",
            "submit trivial tasks to a process pool, then collect every result; per task (2 workers, 2 cores)",
        )
        .native("tandem", {
            let pool = RefCell::new(None::<ProcessPoolExecutor>);
            move |iters| {
                let mut pool = pool.borrow_mut();
                let p = pool.get_or_insert_with(|| workers(2));
                time(|| {
                    let tasks: Vec<_> = (0..iters).map(|i| p.submit(add_one, i).expect("submit")).collect();
                    for t in tasks {
                        t.result().expect("result");
                    }
                })
            }
        })
        .cpython(CPY_EXECUTOR, "fs = [ex.submit(add_one, i) for i in range(n)]\nfor f in fs:\n    f.result()")
        .cpython_as("cpython-pool", CPY_POOL, "rs = [pool.apply_async(add_one, (i,)) for i in range(n)]\nfor r in rs:\n    r.get()"),
        Bench::new(
            "process.pool.map",
            "map a trivial function over many items, chunks of 4096; per item (2 workers, 2 cores)",
        )
        .native("tandem", {
            let pool = RefCell::new(None::<ProcessPoolExecutor>);
            move |iters| {
                let mut pool = pool.borrow_mut();
                let p = pool.get_or_insert_with(|| workers(2));
                time(|| {
                    let out = p.map(add_one, 0..iters, CHUNK).expect("map");
                    assert_eq!(out.len() as u64, iters);
                })
            }
        })
        .cpython(CPY_EXECUTOR, "assert len(list(ex.map(add_one, range(n), chunksize=4096))) == n")
        .cpython_as("cpython-pool", CPY_POOL, "assert len(pool.map(add_one, range(n), chunksize=4096)) == n"),
        Bench::new(
            "process.pool.respawn",
            "ns from a worker's crash (its task's failure) to a replacement worker's next result (1 worker)",
        )
        .native("tandem", |iters| {
            let pool = workers(1);
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let crash = pool.submit(crash, ()).expect("submit");
                let next = pool.submit(add_one, 1).expect("submit");
                assert!(crash.result().is_err());
                let died = Instant::now();
                next.result().expect("the replacement worker answers");
                total += died.elapsed();
            }
            total
        }),
    ]
}

pub(crate) fn sizes() -> Vec<(&'static str, usize)> {
    vec![]
}

fn workers(n: usize) -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .max_workers(n.min(cpu_count().max(1)).max(1))
        .build()
        .expect("pool")
}

fn add_one(x: u64) -> u64 {
    x + 1
}

fn crash(_: ()) {
    std::process::abort();
}

const CPY_EXECUTOR: &str = "import concurrent.futures as cf
import multiprocessing as mp
def add_one(x):
    return x + 1
if __name__ == '__main__':
    ex = cf.ProcessPoolExecutor(max_workers=2, mp_context=mp.get_context('fork'))
    ex.submit(add_one, 0).result()";

const CPY_POOL: &str = "import multiprocessing as mp
def add_one(x):
    return x + 1
if __name__ == '__main__':
    pool = mp.get_context('fork').Pool(2)
    pool.apply(add_one, (0,))";
