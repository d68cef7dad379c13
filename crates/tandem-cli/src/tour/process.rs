//! Process scenarios: seed 000's sender and receiver processes joined by a `Pipe`, and seed
//! 001's "processes have their own memory, threads share it", side by side.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pytandem::process::{Connection, Pipe, Process, Value};
use pytandem::sync::Lock;

use super::{Report, Scenario};

pub(crate) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "pipe",
            title: "A sender process and a receiver process joined by a Pipe",
            seed: "000 (Process Communication using Pipes), 001 (multiprocessing)",
            run: pipe,
        },
        Scenario {
            name: "process-memory",
            title: "Processes have their own memory, threads share it; a shared Value bridges them",
            seed: "001 (processes vs threads), 000 (race condition)",
            run: memory,
        },
    ]
}

// ---- pipe ----

fn sender(conn: Connection<Vec<String>>) {
    conn.send(&vec!["hello".to_string()]).expect("send");
    // Python's conn.close(): dropping the end closes it.
    drop(conn);
}

/// What the receiver got, and whether it then saw the end of the stream (Python's EOFError).
fn receiver(conn: Connection<Vec<String>>) -> (Vec<String>, bool) {
    let msg = conn.recv().expect("recv");
    println!("    [receiver process {}] got {msg:?}", std::process::id());
    let eof = conn.recv().is_err_and(|e| e.is_disconnected());
    (msg, eof)
}

fn pipe(r: &mut Report) {
    r.say("parent_conn, child_conn = Pipe(); p1 = Process(sender, child_conn); p2 = Process(receiver, parent_conn)");
    let (parent_conn, child_conn) = Pipe::new().expect("pipe");
    let p1 = Process::spawn(sender, child_conn).expect("spawn sender");
    let p2 = Process::spawn(receiver, parent_conn).expect("spawn receiver");
    r.say(format!(
        "sender is process {}, receiver is process {} (this one is {})",
        p1.pid(),
        p2.pid(),
        std::process::id()
    ));
    let sent = p1.join();
    r.check("the sender process finished cleanly", sent.is_ok());
    match p2.join() {
        Ok((msg, eof)) => {
            r.check_eq("the receiver process got", msg, vec!["hello".to_string()]);
            r.say(
                "The ends were moved into the children, so once the sender closed its end the \
                 receiver saw the end of the stream. (In Python the parent keeps copies of both \
                 ends, and a second recv() would hang until the parent closes them too.)",
            );
            r.check(
                "the receiver's next recv() reported Disconnected (Python: EOFError)",
                eof,
            );
        }
        Err(e) => {
            r.check(format!("the receiver process failed: {e}"), false);
        }
    }
}

// ---- process-memory ----

/// Each process has its own copy of this static.
static COUNTER: AtomicU64 = AtomicU64::new(0);
const ADDS: u64 = 1000;
const WORKERS: usize = 4;

/// Adds to this process's own `COUNTER`; what it sees at the end.
fn add_to_own_memory(_: ()) -> u64 {
    for _ in 0..ADDS {
        COUNTER.fetch_add(1, Ordering::SeqCst);
    }
    COUNTER.load(Ordering::SeqCst)
}

/// Adds to a counter in shared memory, under its cross-process lock.
fn add_to_shared(counter: Value<u64>) {
    for _ in 0..ADDS {
        *counter.lock() += 1;
    }
}

fn memory(r: &mut Report) {
    r.say(format!(
        "{WORKERS} threads each add 1 to one counter {ADDS} times:"
    ));
    let shared = Arc::new(Lock::new(0u64));
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            let shared = Arc::clone(&shared);
            s.spawn(move || {
                for _ in 0..ADDS {
                    *shared.acquire() += 1;
                }
            });
        }
    });
    r.check_eq(
        "threads share memory: the counter",
        *shared.acquire(),
        WORKERS as u64 * ADDS,
    );

    r.say(format!(
        "{WORKERS} processes each add 1 to a global counter {ADDS} times:"
    ));
    let children: Vec<_> = (0..WORKERS)
        .map(|_| Process::spawn(add_to_own_memory, ()).expect("spawn"))
        .collect();
    let seen: Vec<u64> = children
        .into_iter()
        .map(|c| c.join().expect("join"))
        .collect();
    r.check_eq(
        "each process saw only its own additions",
        seen,
        vec![ADDS; WORKERS],
    );
    r.check_eq(
        "the parent's counter (processes have their own memory)",
        COUNTER.load(Ordering::SeqCst),
        0,
    );

    r.say("The same with a shared Value (Python's multiprocessing.Value('i', 0) and its lock):");
    let counter = Value::new(0u64).expect("shared memory");
    let children: Vec<_> = (0..WORKERS)
        .map(|_| Process::spawn(add_to_shared, counter.clone()).expect("spawn"))
        .collect();
    for c in children {
        c.join().expect("join");
    }
    r.check_eq(
        "the shared Value after the processes ran",
        counter.get(),
        WORKERS as u64 * ADDS,
    );
}
