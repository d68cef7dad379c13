//! Seed 000's producer/consumer queue and seed 003's 1 × 1 and 3 × 3 producer/consumer
//! lessons, with processes instead of threads and a shutdown instead of `None` sentinels;
//! and the `join()` deadlock Python's docs warn about, shown not to happen.

use std::time::Duration;

use pytandem::process::{JoinableQueue, Process, Queue};

use super::{Report, Scenario};

const LONG: Duration = Duration::from_secs(30);

pub(crate) fn scenarios() -> Vec<Scenario> {
    vec![Scenario {
        name: "process-queue",
        title: "Producer and consumer processes around a shared-memory queue, ended by shutdown",
        seed: "000 (Queue producer/consumer), 003 (queues with several producers and consumers), 001 (IPC)",
        run: process_queue,
    }]
}

/// Puts `count` items `(producer, i)`.
fn producer(args: (Queue<(u32, u32)>, u32, u32)) {
    let (q, id, count) = args;
    for i in 0..count {
        q.put((id, i)).expect("put");
    }
}

/// Takes items until the queue is shut down and drained (no sentinel needed).
fn consumer(q: Queue<(u32, u32)>) -> Vec<(u32, u32)> {
    q.iter().collect()
}

/// Seed 000's consumer: gets, handles, `task_done` — until shutdown.
fn joinable_consumer(q: JoinableQueue<u32>) -> u32 {
    let mut handled = 0;
    while let Ok(_item) = q.get() {
        handled += 1;
        q.task_done().expect("task_done");
    }
    handled
}

/// Puts 8 MiB and returns at once, nobody reading yet.
fn put_and_exit(q: Queue<Vec<u8>>) {
    for _ in 0..128 {
        q.put(vec![1u8; 64 * 1024]).expect("put");
    }
}

/// `producers` × `consumers` processes; every item must be consumed exactly once.
fn run_pc(r: &mut Report, producers: u32, consumers: u32, per_producer: u32) {
    r.say(format!(
        "{producers} producer process(es) × {per_producer} items, {consumers} consumer process(es); \
         then q.shutdown() instead of {consumers} None sentinel(s)"
    ));
    let q = Queue::bounded(50).expect("queue");
    let cons: Vec<_> = (0..consumers)
        .map(|_| Process::spawn(consumer, q.clone()).expect("spawn"))
        .collect();
    let prods: Vec<_> = (0..producers)
        .map(|id| Process::spawn(producer, (q.clone(), id, per_producer)).expect("spawn"))
        .collect();
    for p in prods {
        p.join().expect("producer");
    }
    // The producers are done: no more puts. Consumers drain what is left, then stop.
    q.shutdown(false);
    let mut got: Vec<(u32, u32)> = cons
        .into_iter()
        .flat_map(|c| c.join().expect("consumer"))
        .collect();
    let total = got.len();
    got.sort();
    got.dedup();
    let expected: Vec<(u32, u32)> = (0..producers)
        .flat_map(|p| (0..per_producer).map(move |i| (p, i)))
        .collect();
    r.check_eq(
        "items consumed (each exactly once)",
        (total, got == expected),
        ((producers * per_producer) as usize, true),
    );
}

fn process_queue(r: &mut Report) {
    r.say("Seed 000: producer puts 0..5; the consumer gets, handles and calls task_done():");
    let q = JoinableQueue::new().expect("queue");
    let c = Process::spawn(joinable_consumer, q.clone()).expect("spawn");
    q.put_many(0..5u32).map_err(|e| e.to_string()).expect("put");
    let joined = q.join_timeout(LONG);
    r.check(
        "q.join() returned once every task was done",
        joined == Some(Ok(())),
    );
    q.shutdown(false);
    r.check_eq("items the consumer process handled", c.join().ok(), Some(5));

    run_pc(r, 1, 1, 100);
    run_pc(r, 3, 3, 100);

    r.say("Python's docs: a process that has put items on a multiprocessing.Queue cannot be");
    r.say("joined until they are read (its feeder thread still holds them): join() deadlocks.");
    let q = Queue::new().expect("queue");
    let mut child = Process::spawn(put_and_exit, q.clone()).expect("spawn");
    let joined = child.join_timeout(LONG);
    r.check(
        "here the child that put 8 MiB was joined before anyone read",
        joined.is_ok(),
    );
    r.check_eq("and every item is still in the queue", q.len(), 128);
    let drained = q.shutdown(true).len();
    r.check_eq(
        "items handed back by shutdown(immediate=True)",
        drained,
        128,
    );
}
