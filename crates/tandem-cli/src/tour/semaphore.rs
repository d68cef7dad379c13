//! Semaphore scenario: a pool of 3 connections shared by 5 workers (the seeds' "only 3
//! threads access the resource at a time"), and the bounded semaphore's over-release error.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pytandem::sync::{BoundedSemaphore, Event, Lock, Semaphore};

use super::{eventually, Report, Scenario};

const CONNECTIONS: usize = 3;
const WORKERS: usize = 5;

pub(crate) fn scenarios() -> Vec<Scenario> {
    vec![Scenario {
        name: "semaphore-pool",
        title: "A semaphore lets 3 of 5 workers use a connection pool at once",
        seed: "000 (Semaphore), 002 (Semaphore), 003 (Semaphores for Threads), 004 (Semaphore)",
        run: pool,
    }]
}

fn pool(r: &mut Report) {
    r.say(format!(
        "pool = Semaphore({CONNECTIONS}): {CONNECTIONS} database connections for {WORKERS} workers."
    ));
    r.say("Each worker runs `let conn = pool.acquire();` (Python: `with pool:`) and queries.");

    let pool = Semaphore::new(CONNECTIONS);
    // The first queries are held until we have looked at the pool: a handshake, not a sleep.
    let queries_may_run = Event::new();
    let in_use = AtomicUsize::new(0);
    let most_in_use = AtomicUsize::new(0);
    let served = AtomicUsize::new(0);
    let log = Lock::new(Vec::new());

    let (full, queued, timed_out) = std::thread::scope(|s| {
        for worker in 1..=WORKERS {
            let (pool, queries_may_run, in_use, most_in_use, served, log) = (
                &pool,
                &queries_may_run,
                &in_use,
                &most_in_use,
                &served,
                &log,
            );
            s.spawn(move || {
                let conn = pool.acquire();
                let now = in_use.fetch_add(1, Ordering::SeqCst) + 1;
                most_in_use.fetch_max(now, Ordering::SeqCst);
                log.acquire()
                    .push(format!("worker {worker} got a connection ({now} in use)"));
                queries_may_run.wait();
                std::hint::black_box((0..10_000u64).sum::<u64>()); // the "query"
                in_use.fetch_sub(1, Ordering::SeqCst);
                served.fetch_add(1, Ordering::SeqCst);
                log.acquire()
                    .push(format!("worker {worker} returned its connection"));
                drop(conn);
            });
        }
        // All connections out, and the other two workers queued behind them.
        let full = eventually(|| {
            in_use.load(Ordering::SeqCst) == CONNECTIONS
                && pool.n_waiting() == WORKERS - CONNECTIONS
        });
        let queued = pool.n_waiting();
        // A sixth client that will not wait long: Python's `pool.acquire(timeout=0.05)`.
        let start = Instant::now();
        let timed_out = pool.acquire_timeout(Duration::from_millis(50)).is_none();
        let waited = start.elapsed();
        log.acquire().push(format!(
            "a client calling acquire_timeout(50 ms) gave up after {} ms: pool exhausted",
            waited.as_millis()
        ));
        queries_may_run.set();
        (full, queued, timed_out)
    });

    for line in log.into_inner() {
        r.say(line);
    }
    r.check(
        format!("all {CONNECTIONS} connections were in use at once, with {queued} workers queued"),
        full,
    );
    r.check("a client with a 50 ms timeout got None", timed_out);
    r.check_eq(
        "most connections in use at once",
        most_in_use.load(Ordering::SeqCst),
        CONNECTIONS,
    );
    r.check_eq("workers served", served.load(Ordering::SeqCst), WORKERS);
    r.check_eq(
        "connections back in the pool",
        pool.available_permits(),
        CONNECTIONS,
    );

    r.say("BoundedSemaphore refuses a release that was never paired with an acquire:");
    let bounded = BoundedSemaphore::new(CONNECTIONS);
    match bounded.try_release() {
        Ok(()) => {
            r.check("bounded.try_release() on a full pool is refused", false);
        }
        Err(e) => {
            r.say(format!("bounded.try_release() → Err: {e}"));
            r.check("bounded.try_release() on a full pool is refused", true);
        }
    }
    r.check_eq(
        "the bounded pool still holds",
        bounded.available_permits(),
        CONNECTIONS,
    );
}
