//! Event scenario: workers wait at the start line until the main thread fires an event
//! (the seeds' `event.wait()` / `event.set()`), including the `set` + immediate `clear` case.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pytandem::sync::Event;

use super::{eventually, Report, Scenario};

const WORKERS: usize = 4;

pub(crate) fn scenarios() -> Vec<Scenario> {
    vec![Scenario {
        name: "event-start",
        title: "An event releases every waiting worker at once",
        seed: "002 (Event), 004 (Event)",
        run: start_line,
    }]
}

/// `WORKERS` threads wait on `event`; once all are blocked, `fire` runs. Returns whether all
/// were seen blocked, how many had started before `fire`, and each wait's return value.
fn workers_wait_then(event: &Event, fire: impl FnOnce()) -> (bool, usize, Vec<bool>) {
    let started = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                s.spawn(|| {
                    let woke = event.wait_timeout(Duration::from_secs(30));
                    started.fetch_add(1, Ordering::SeqCst);
                    woke
                })
            })
            .collect();
        let all_blocked = eventually(|| event.n_waiting() == WORKERS);
        let before = started.load(Ordering::SeqCst);
        fire();
        let woke = workers
            .into_iter()
            .map(|w| w.join().expect("a worker panicked"))
            .collect();
        (all_blocked, before, woke)
    })
}

fn start_line(r: &mut Report) {
    let start = Event::new();
    r.say(format!(
        "{WORKERS} workers call `start.wait()`; the main thread calls `start.set()` when ready."
    ));
    r.check(
        "start.wait_timeout(10 ms) on an unset event returns false",
        !start.wait_timeout(Duration::from_millis(10)),
    );

    let (blocked, before, woke) = workers_wait_then(&start, || start.set());
    r.check(
        format!("all {WORKERS} workers were blocked in wait()"),
        blocked,
    );
    r.check_eq("workers that started before set()", before, 0);
    r.check_eq(
        "workers released by set()",
        woke.iter().filter(|&&w| w).count(),
        WORKERS,
    );
    r.check("start.is_set() afterwards", start.is_set());
    r.check(
        "a late wait() on a set event returns at once",
        start.wait_timeout(Duration::ZERO),
    );

    r.say("Again, but the main thread calls clear() right after set(), before anyone runs:");
    start.clear();
    let (blocked, _, woke) = workers_wait_then(&start, || {
        start.set();
        start.clear();
    });
    r.check(
        format!("all {WORKERS} workers were blocked in wait()"),
        blocked,
    );
    r.check_eq(
        "workers whose wait() returned true anyway",
        woke.iter().filter(|&&w| w).count(),
        WORKERS,
    );
    r.check("the event is clear again", !start.is_set());
}
