//! RLock and Condition scenarios: a recursive function re-entering the lock it holds, and
//! producers and consumers meeting over a condition.

use std::cell::Cell;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use pytandem::sync::{Condition, Lock, RLock};
use pytandem::ReleaseError;

use super::{Report, Scenario};

pub(crate) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "rlock-recursion",
            title: "A recursive function re-enters the RLock it already holds",
            seed: "002 (Reentrant Lock), 003 (nested locks), 004 (RLock)",
            run: recursion,
        },
        Scenario {
            name: "condition",
            title: "Producers and consumers meet over a Condition (a bounded buffer)",
            seed: "000 (Condition Variable), 002 (Condition Variable), 004 (Condition)",
            run: producer_consumer,
        },
    ]
}

/// What the walk records, behind the RLock.
#[derive(Default)]
struct Walk {
    visited: Cell<u64>,
    deepest: Cell<usize>,
}

/// Visits a complete binary tree of `depth` levels below this node, holding the lock at
/// every level: Python's `def recursive_function(): with rlock: ... recursive_function()`.
fn visit(rlock: &RLock<Walk>, depth: u32) {
    let walk = rlock.acquire(); // the caller may already hold it: re-entry, no deadlock
    walk.visited.set(walk.visited.get() + 1);
    walk.deepest
        .set(walk.deepest.get().max(rlock.recursion_count()));
    if depth > 0 {
        visit(rlock, depth - 1);
        visit(rlock, depth - 1);
    }
}

fn recursion(r: &mut Report) {
    const THREADS: u64 = 4;
    const DEPTH: u32 = 9; // 2^10 - 1 = 1023 nodes per walk
    let nodes = (1u64 << (DEPTH + 1)) - 1;

    r.say("A plain Lock cannot be taken twice by the same thread: the second acquire would wait forever.");
    let plain = Lock::new(());
    let held = plain.acquire();
    r.check(
        "plain Lock held by this thread: try_acquire() = None (acquire() would deadlock)",
        plain.try_acquire().is_none(),
    );
    drop(held);

    r.say(format!(
        "{THREADS} threads each walk a tree of {nodes} nodes recursively, taking the RLock at every level."
    ));
    let rlock = RLock::new(Walk::default());
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| visit(&rlock, DEPTH));
        }
    });
    r.check("the lock is free again after the walks", !rlock.locked());
    let walk = rlock.into_inner();
    r.check_eq("nodes visited", walk.visited.get(), THREADS * nodes);
    r.check_eq(
        "deepest re-entry (recursion_count)",
        walk.deepest.get(),
        DEPTH as usize + 1,
    );

    r.say("Only the owner may release an RLock: another thread's release is refused, not obeyed.");
    let bare = RLock::new(());
    bare.acquire().forget(); // Python: rlock.acquire()
    let refused = std::thread::scope(|s| s.spawn(|| bare.release()).join().expect("no panic"));
    if let Err(e) = refused {
        r.say(format!("another thread's release(): {e}"));
    }
    r.check_eq(
        "release() from another thread",
        refused,
        Err(ReleaseError::NotOwner),
    );
    r.check_eq("release() by the owner", bare.release(), Ok(()));
    r.check_eq(
        "a second release()",
        bare.release(),
        Err(ReleaseError::Unlocked),
    );
}

/// The bounded buffer the producers and consumers share.
struct Buffer {
    items: VecDeque<u64>,
    producers_left: usize,
    /// How often a consumer found the buffer empty and waited; a producer found it full.
    consumer_waits: u64,
    producer_waits: u64,
}

fn producer_consumer(r: &mut Report) {
    const PRODUCERS: u64 = 2;
    const CONSUMERS: usize = 2;
    const PER_PRODUCER: u64 = 50_000;
    const CAPACITY: usize = 8;

    r.say(
        "The seeds' data_ready flag: the consumer waits until the producer sets it and notifies.",
    );
    let data_ready = Condition::new(false);
    let woke_to = std::thread::scope(|s| {
        let consumer = s.spawn(|| {
            let mut ready = data_ready.acquire();
            while !*ready {
                ready.wait(); // releases the lock while asleep
            }
            *ready
        });
        s.spawn(|| {
            let mut ready = data_ready.acquire();
            *ready = true;
            ready.notify_one();
        });
        consumer.join().expect("no panic")
    });
    r.check_eq("the consumer saw data_ready", woke_to, true);

    r.say(format!(
        "{PRODUCERS} producers put {PER_PRODUCER} numbered items each into a buffer of {CAPACITY}; \
         {CONSUMERS} consumers take them out."
    ));
    let buffer = Condition::new(Buffer {
        items: VecDeque::new(),
        producers_left: PRODUCERS as usize,
        consumer_waits: 0,
        producer_waits: 0,
    });
    let start = Instant::now();
    let taken: Vec<Vec<u64>> = std::thread::scope(|s| {
        for p in 0..PRODUCERS {
            let buffer = &buffer;
            s.spawn(move || {
                for i in 0..PER_PRODUCER {
                    let mut b = buffer.acquire();
                    if b.items.len() == CAPACITY {
                        b.producer_waits += 1;
                    }
                    b.wait_for(|b| b.items.len() < CAPACITY);
                    b.items.push_back(p * PER_PRODUCER + i);
                    b.notify_all(); // consumers and producers share the condition
                }
                let mut b = buffer.acquire();
                b.producers_left -= 1;
                b.notify_all();
            });
        }
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    let mut b = buffer.acquire();
                    loop {
                        if let Some(item) = b.items.pop_front() {
                            mine.push(item);
                            b.notify_all();
                        } else if b.producers_left == 0 {
                            return mine;
                        } else {
                            b.consumer_waits += 1;
                            b.wait();
                        }
                    }
                })
            })
            .collect();
        consumers
            .into_iter()
            .map(|c| c.join().expect("no panic"))
            .collect()
    });
    let took = start.elapsed();
    let b = buffer.into_inner();
    for (i, mine) in taken.iter().enumerate() {
        r.say(format!("consumer {i} took {} items", mine.len()));
    }
    r.say(format!(
        "consumers waited {} times on an empty buffer, producers {} times on a full one ({:.0} ms)",
        b.consumer_waits,
        b.producer_waits,
        took.as_secs_f64() * 1000.0
    ));
    let mut all: Vec<u64> = taken.into_iter().flatten().collect();
    all.sort_unstable();
    let total = PRODUCERS * PER_PRODUCER;
    r.check_eq("items consumed", all.len() as u64, total);
    r.check(
        "every item consumed exactly once (none lost, none twice)",
        all.iter().copied().eq(0..total),
    );
    r.check_eq("items left in the buffer", b.items.len(), 0);

    r.say("wait_for with a timeout gives up when nothing comes, returning the predicate's value.");
    let empty = Condition::new(VecDeque::<u64>::new());
    let mut q = empty.acquire();
    let t = Instant::now();
    let got = q.wait_for_timeout(|q| !q.is_empty(), Duration::from_millis(50));
    let waited = t.elapsed();
    r.check_eq("wait_for(non-empty, 50 ms) on an empty buffer", got, false);
    r.check(
        format!(
            "it waited {:.0} ms (at least 50)",
            waited.as_secs_f64() * 1000.0
        ),
        waited >= Duration::from_millis(50),
    );
}
