//! Barrier scenarios: threads meeting at a barrier, and breaking and repairing one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pytandem::sync::{Barrier, BrokenReason, Lock};

use super::{Report, Scenario};

pub(crate) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "barrier",
            title: "Threads meeting at a barrier: nobody goes on until all have arrived",
            seed: "002 (Barrier), 003 (Barriers for Threads), 004 (Barrier)",
            run: meet,
        },
        Scenario {
            name: "barrier-abort-reset",
            title: "Breaking a barrier (abort, a timeout) and repairing it with reset",
            seed: "002 (Barrier: abort, reset)",
            run: abort_reset,
        },
    ]
}

const THREADS: usize = 4;

fn meet(r: &mut Report) {
    r.say(format!(
        "{THREADS} threads initialise (each a different amount of work), wait at a Barrier({THREADS}), then go on."
    ));
    let arrived = AtomicUsize::new(0);
    let events = Lock::new(Vec::new());
    // The optional action runs once per generation, in the last thread to arrive, before
    // anyone is released.
    let actions = Arc::new(AtomicUsize::new(0));
    let barrier = Barrier::builder(THREADS)
        .action({
            let actions = Arc::clone(&actions);
            move || {
                actions.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build()
        .expect("4 parties is a valid barrier");
    let results: Vec<(usize, usize, bool)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|id| {
                let (arrived, events, barrier) = (&arrived, &events, &barrier);
                s.spawn(move || {
                    // Initialisation: thread `id` does (THREADS - id) units of work, so the
                    // arrival order tends to differ from the thread order.
                    for _ in 0..(THREADS - id) * 2000 {
                        std::hint::black_box(id);
                        std::thread::yield_now();
                    }
                    events
                        .acquire()
                        .push(format!("thread {id}: waiting at the barrier"));
                    arrived.fetch_add(1, Ordering::SeqCst);
                    let index = barrier.wait().expect("nobody breaks this barrier");
                    let all_there = arrived.load(Ordering::SeqCst) == THREADS;
                    events.acquire().push(format!(
                        "thread {id}: passed the barrier (arrival index {index})"
                    ));
                    (id, index, all_there)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });
    for line in events.into_inner() {
        r.say(line);
    }
    let mut indices: Vec<usize> = results.iter().map(|&(_, i, _)| i).collect();
    indices.sort_unstable();
    r.check_eq("arrival indices (sorted)", indices, (0..THREADS).collect());
    r.check(
        "no thread passed before all had arrived",
        results.iter().all(|&(_, _, all)| all),
    );
    r.check_eq("times the action ran", actions.load(Ordering::SeqCst), 1);

    r.say("The same barrier is reusable: 3 more generations, each with indices 0..4.");
    let generations: Vec<Vec<usize>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    (0..3)
                        .map(|_| barrier.wait().expect("ok"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });
    let all_exact = (0..3).all(|g| {
        let mut idx: Vec<usize> = generations.iter().map(|v| v[g]).collect();
        idx.sort_unstable();
        idx == (0..THREADS).collect::<Vec<_>>()
    });
    r.check("every generation's indices are exactly 0..4", all_exact);
    r.check_eq(
        "times the action ran (once per generation)",
        actions.load(Ordering::SeqCst),
        4,
    );
}

fn abort_reset(r: &mut Report) {
    let barrier = Barrier::new(3).expect("valid");
    r.say("Barrier(3): two workers wait; the third fails before arriving and calls abort().");
    let outcomes = std::thread::scope(|s| {
        let waiters: Vec<_> = (0..2).map(|_| s.spawn(|| barrier.wait())).collect();
        while barrier.n_waiting() < 2 {
            std::thread::yield_now(); // until both are waiting (observable, no sleep)
        }
        r.say(format!("n_waiting = {}; aborting", barrier.n_waiting()));
        barrier.abort();
        waiters
            .into_iter()
            .map(|w| w.join().expect("waiter"))
            .collect::<Vec<_>>()
    });
    for o in &outcomes {
        match o {
            Ok(i) => r.say(format!("a waiter passed with index {i}")),
            Err(e) => r.say(format!("a waiter got: {e}")),
        }
    }
    r.check(
        "both waiters got BrokenBarrierError (aborted)",
        outcomes
            .iter()
            .all(|o| matches!(o, Err(e) if e.reason() == BrokenReason::Aborted)),
    );
    r.check_eq("is_broken()", barrier.is_broken(), true);
    r.check(
        "a later wait fails at once while broken",
        barrier.wait().is_err(),
    );

    r.say("reset(): the barrier is whole again, and 3 threads meet at it.");
    barrier.reset();
    let mut indices: Vec<usize> = std::thread::scope(|s| {
        let ws: Vec<_> = (0..3).map(|_| s.spawn(|| barrier.wait())).collect();
        ws.into_iter()
            .filter_map(|w| w.join().expect("worker").ok())
            .collect()
    });
    indices.sort_unstable();
    r.check_eq("indices after reset", indices, vec![0, 1, 2]);

    r.say("A wait that times out breaks the barrier too (as in Python):");
    let err = barrier.wait_timeout(Duration::from_millis(20));
    match &err {
        Ok(i) => r.say(format!("unexpectedly passed with index {i}")),
        Err(e) => r.say(format!("wait_timeout(20 ms) alone: {e}")),
    }
    r.check(
        "the lone timed wait failed with TimedOut and broke the barrier",
        matches!(&err, Err(e) if e.reason() == BrokenReason::TimedOut) && barrier.is_broken(),
    );
    r.check(
        "Barrier::new(0) is an error, not a hang",
        Barrier::new(0).is_err(),
    );
    if let Err(e) = Barrier::new(0) {
        r.say(format!("Barrier::new(0): {e}"));
    }
}
