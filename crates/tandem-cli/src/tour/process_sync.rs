//! Seed 002's primitives across processes — a condition, an event, a barrier with abort and
//! reset — and a lock whose holder is killed, told beside what Python does.

use std::time::{Duration, Instant};

use pytandem::process::{Barrier, Condition, Connection, Event, Lock, Pipe, Process, RawValue};
use pytandem::sync::BrokenReason;

use super::{eventually, Report, Scenario};

const LONG: Duration = Duration::from_secs(30);
const WORKERS: usize = 3;

pub(crate) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "process-sync",
            title: "Condition, Event and Barrier (abort, reset) between processes",
            seed: "002 (Condition, Event, Barrier with multiprocessing)",
            run: process_sync,
        },
        Scenario {
            name: "lock-owner-died",
            title: "A process killed holding a Lock: Python's stays locked forever, tandem's is handed on",
            seed: "002 (Lock), 001 (processes)",
            run: owner_died,
        },
    ]
}

// ---- process-sync ----

/// Waits (under the condition) until `items` reaches `want`; the value it saw.
fn consumer(args: (Condition<u32>, u32)) -> u32 {
    let (items, want) = args;
    let mut g = items.acquire().expect("lock");
    g.wait_for_timeout(|n| *n >= want, LONG);
    *g
}

/// Counts itself in, then waits for the start event; whether it was set in time.
fn racer(args: (Event, RawValue<u32>)) -> bool {
    let (start, ready) = args;
    ready.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    start.wait_timeout(LONG)
}

/// Waits at the barrier; the index, or why it broke.
fn party(barrier: Barrier) -> Result<usize, String> {
    barrier
        .wait_timeout(LONG)
        .map_err(|e| format!("{:?}", e.reason()))
}

fn process_sync(r: &mut Report) {
    r.say("condition = Condition(); a consumer process waits with wait_for(items >= 3):");
    let items = Condition::new(0u32).expect("condition");
    let consumer = Process::spawn(consumer, (items.clone(), 3)).expect("spawn");
    for _ in 0..3 {
        let mut g = items.acquire().expect("lock");
        *g += 1;
        g.notify_all();
    }
    r.check_eq(
        "the consumer process saw items",
        consumer.join().ok(),
        Some(3),
    );

    r.say(format!(
        "event = Event(); {WORKERS} processes wait for it, then the parent sets it:"
    ));
    let start = Event::new().expect("event");
    let ready = RawValue::new(0u32).expect("counter");
    let racers: Vec<_> = (0..WORKERS)
        .map(|_| Process::spawn(racer, (start.clone(), ready.clone())).expect("spawn"))
        .collect();
    let all_in = eventually(|| ready.load(std::sync::atomic::Ordering::SeqCst) == WORKERS as u32);
    r.check("every process reached event.wait()", all_in);
    r.check("event.is_set() before set()", !start.is_set());
    start.set();
    let woke: Vec<bool> = racers
        .into_iter()
        .map(|p| p.join().unwrap_or(false))
        .collect();
    r.check_eq("each process's wait() returned", woke, vec![true; WORKERS]);

    r.say(format!(
        "barrier = Barrier({}); {WORKERS} processes and the parent meet:",
        WORKERS + 1
    ));
    let barrier = Barrier::new(WORKERS + 1).expect("barrier");
    let parties: Vec<_> = (0..WORKERS)
        .map(|_| Process::spawn(party, barrier.clone()).expect("spawn"))
        .collect();
    let mine = barrier.wait_timeout(LONG).map_err(|e| e.to_string());
    let mut indices: Vec<usize> = parties
        .into_iter()
        .filter_map(|p| p.join().ok()?.ok())
        .collect();
    indices.extend(mine.ok());
    indices.sort();
    r.check_eq("the arrival indices", indices, (0..=WORKERS).collect());

    r.say("barrier.abort() while two processes wait, then barrier.reset():");
    let parties: Vec<_> = (0..2)
        .map(|_| Process::spawn(party, barrier.clone()).expect("spawn"))
        .collect();
    let both_wait = eventually(|| barrier.n_waiting() == 2);
    r.check("two processes wait at the barrier", both_wait);
    barrier.abort();
    let outcomes: Vec<_> = parties.into_iter().map(|p| p.join().ok()).collect();
    r.check_eq(
        "each waiter's wait() failed with",
        outcomes,
        vec![Some(Err(format!("{:?}", BrokenReason::Aborted))); 2],
    );
    r.check("barrier.broken after abort()", barrier.is_broken());
    barrier.reset();
    r.check("barrier.broken after reset()", !barrier.is_broken());
}

// ---- lock-owner-died ----

/// Takes the lock, half-updates the account (debited, not yet credited), says so, and waits
/// to be killed.
fn transfer_then_die(args: (Lock<[i64; 2]>, Connection<u8>)) {
    let (accounts, conn) = args;
    let mut g = accounts.acquire().unwrap_or_else(|died| died.into_inner());
    g[0] -= 50; // debit A...
    conn.send(&1).expect("send");
    loop {
        std::thread::park(); // ...and die before crediting B
    }
}

fn owner_died(r: &mut Report) {
    r.say("accounts = Lock([100, 100]); a child takes the lock, debits A by 50, and is SIGKILLed");
    r.say("before it credits B. In Python, a multiprocessing.Lock whose holder is killed stays");
    r.say("locked forever (cpython gh-88304): every later acquire() hangs.");
    let accounts = Lock::new([100i64, 100]).expect("lock");
    let (a, b) = Pipe::new::<u8>().expect("pipe");
    let child = Process::spawn(transfer_then_die, (accounts.clone(), b)).expect("spawn");
    r.check(
        "the child holds the lock",
        a.recv_timeout(LONG).is_ok() && accounts.locked(),
    );
    let killed = Instant::now();
    child.kill().expect("kill");
    let taken = accounts.acquire_timeout(LONG);
    let took = killed.elapsed();
    let ended = child.join().err().and_then(|e| e.exitcode());
    r.check_eq("the child's exit code (killed by SIGKILL)", ended, Some(-9));
    match taken {
        Some(Err(died)) => {
            r.say(format!(
                "tandem: the next acquire() got the lock {took:.1?} after the kill,"
            ));
            r.say(format!("with OwnerDied: \"{died}\""));
            let mut g = died.into_inner();
            r.check_eq("the accounts as the dead holder left them", *g, [50, 100]);
            g[0] += 50; // repair: undo the half-done transfer
            drop(g);
            r.check_eq(
                "the accounts after the repair",
                *accounts.acquire().expect("clean"),
                [100, 100],
            );
            r.check("the lock is free and clean again", !accounts.locked());
        }
        Some(Ok(_)) => {
            r.check("the death was reported (OwnerDied)", false);
        }
        None => {
            r.check("the lock was recovered within 30 s", false);
        }
    }
}
