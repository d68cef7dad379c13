//! Queue scenarios: the seeds' producer/consumer programs, ending with a shutdown instead of
//! `None` sentinels; a `task_done`/`join` work queue; an immediate shutdown that loses
//! nothing.

use std::collections::HashMap;
use std::time::Duration;

use pytandem::queue::{PriorityQueue, Queue};
use pytandem::sync::Lock;

use super::{Report, Scenario};

pub(crate) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "queue-1p1c",
            title: "One producer, one consumer: a queue ended by shutdown, not a None sentinel",
            seed:
                "003 (Queue Example), 000 (Queue for Thread Communication), 004 (Producer-Consumer)",
            run: one_to_one,
        },
        Scenario {
            name: "queue-3p3c",
            title: "Three producers, three consumers, every item consumed exactly once",
            seed: "003 (Queue Example 2)",
            run: three_by_three,
        },
        Scenario {
            name: "queue-work",
            title: "A work queue: workers call task_done, the main thread join()s",
            seed: "000 (queue.task_done), 004 (Producer-Consumer)",
            run: work_queue,
        },
        Scenario {
            name: "queue-shutdown-now",
            title: "An immediate shutdown hands back every unprocessed item: nothing is lost",
            seed: "003 (queues), 004 (best practices: cleanup)",
            run: shutdown_now,
        },
    ]
}

/// A deterministic stand-in for the seeds' `random.randint(1, 100)`.
fn pseudo_random(i: u64) -> u64 {
    (i.wrapping_mul(2_654_435_761) >> 7) % 100 + 1
}

fn one_to_one(r: &mut Report) {
    r.say("Python (seed 003) stops its consumer with a None sentinel: `if item is None: break`.");
    r.say("Here the producer calls q.shutdown(false) when done; the consumer's");
    r.say("`for item in &q` loop drains what is queued and then ends by itself.");
    let q = Queue::new();
    let log = Lock::new(Vec::new());
    let produced: Vec<u64> = (0..10).map(pseudo_random).collect();
    let consumed: Vec<u64> = std::thread::scope(|s| {
        let consumer = s.spawn(|| {
            let mut got = Vec::new();
            for item in &q {
                log.acquire().push(format!("Consumer: consumed {item}"));
                got.push(item);
            }
            got
        });
        for &item in &produced {
            q.put(item).unwrap();
            log.acquire().push(format!("Producer: produced {item}"));
        }
        q.shutdown(false);
        consumer.join().unwrap()
    });
    for line in log.into_inner().iter().take(8) {
        r.say(line);
    }
    r.say("…");
    r.check_eq("items consumed", consumed.len(), produced.len());
    r.check(
        "consumed in the order produced (FIFO), each exactly once",
        consumed == produced,
    );
    r.check_eq("left in the queue", q.len(), 0);
}

fn three_by_three(r: &mut Report) {
    const THREADS: usize = 3;
    const PER_PRODUCER: usize = 10_000;
    r.say(format!(
        "{THREADS} producers put {PER_PRODUCER} items each; {THREADS} consumers take them."
    ));
    r.say("Seed 003 needs one None per consumer, and each of its producers puts 3 of them:");
    r.say("9 sentinels for 3 consumers, 6 left behind. A shutdown after the producers finish");
    r.say("replaces all that bookkeeping.");
    let q = Queue::bounded(64);
    let per_consumer: Vec<Vec<(usize, usize)>> = std::thread::scope(|s| {
        let consumers: Vec<_> = (0..THREADS)
            .map(|_| s.spawn(|| q.iter().collect::<Vec<(usize, usize)>>()))
            .collect();
        let producers: Vec<_> = (0..THREADS)
            .map(|p| {
                let q = &q;
                s.spawn(move || {
                    for i in 0..PER_PRODUCER {
                        q.put((p, i)).unwrap();
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        q.shutdown(false);
        consumers.into_iter().map(|c| c.join().unwrap()).collect()
    });
    for (c, items) in per_consumer.iter().enumerate() {
        r.say(format!("consumer {c} took {} items", items.len()));
    }
    let mut seen = vec![0u8; THREADS * PER_PRODUCER];
    for &(p, i) in per_consumer.iter().flatten() {
        seen[p * PER_PRODUCER + i] += 1;
    }
    let total: usize = per_consumer.iter().map(Vec::len).sum();
    r.check_eq("items consumed", total, THREADS * PER_PRODUCER);
    r.check(
        "every item consumed exactly once",
        seen.iter().all(|&n| n == 1),
    );
    let in_order = per_consumer.iter().all(|items| {
        let mut last: HashMap<usize, usize> = HashMap::new();
        items
            .iter()
            .all(|&(p, i)| last.insert(p, i).is_none_or(|prev| prev < i))
    });
    r.check(
        "each consumer saw each producer's items in the order they were put",
        in_order,
    );
}

fn work_queue(r: &mut Report) {
    const JOBS: u64 = 1_000;
    r.say("The seeds' consumer calls q.task_done() after each item; q.join() waits for all.");
    let q = Queue::new();
    let results = Lock::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for job in &q {
                    let square = job * job; // the work
                    results.acquire().push(square);
                    q.task_done().unwrap();
                }
            });
        }
        q.put_many(1..=JOBS).unwrap();
        r.say(format!(
            "put {JOBS} jobs for 4 workers; join() until every job is done…"
        ));
        q.join();
        let done = results.acquire().len();
        r.check_eq("jobs done when join() returned", done as u64, JOBS);
        r.check_eq("unfinished tasks", q.unfinished_tasks(), 0);
        let extra = q.task_done();
        r.check(
            format!(
                "one task_done too many is an error, not a crash: {:?}",
                extra
            ),
            extra.is_err(),
        );
        q.shutdown(false); // the workers' loops end
    });
    let sum: u64 = results.into_inner().iter().sum();
    r.check_eq(
        "sum of squares",
        sum,
        JOBS * (JOBS + 1) * (2 * JOBS + 1) / 6,
    );

    r.say("A PriorityQueue serves the most urgent job first; equal priorities keep their order:");
    let jobs = PriorityQueue::new();
    for (priority, name) in [
        (2, "write report"),
        (1, "fix outage"),
        (2, "answer mail"),
        (3, "tidy desk"),
    ] {
        jobs.put(Job { priority, name }).unwrap();
    }
    jobs.shutdown(false);
    let order: Vec<&str> = jobs.iter().map(|job| job.name).collect();
    r.say(format!("served: {order:?}"));
    r.check_eq(
        "priority order, ties first-come first-served",
        order,
        vec!["fix outage", "write report", "answer mail", "tidy desk"],
    );
}

/// A job ordered by its priority alone (a tuple would compare the names too).
struct Job {
    priority: u8,
    name: &'static str,
}

impl Ord for Job {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.priority.cmp(&other.priority)
    }
}

impl PartialOrd for Job {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Job {
    fn eq(&self, other: &Self) -> bool {
        self.priority == other.priority
    }
}

impl Eq for Job {}

fn shutdown_now(r: &mut Report) {
    const JOBS: usize = 200;
    r.say(format!(
        "A producer feeds {JOBS} jobs through a queue of 8 to 2 slow workers; midway, the"
    ));
    r.say("main thread calls shutdown(true): the queued jobs come back to it, the blocked");
    r.say("producer's put fails with its job inside, and the workers stop.");
    let q = Queue::bounded(8);
    let processed = Lock::new(Vec::new());
    let (returned_by_put, drained) = std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for job in &q {
                    std::thread::sleep(Duration::from_micros(200)); // slow work
                    processed.acquire().push(job);
                    q.task_done().unwrap();
                }
            });
        }
        let producer = s.spawn(|| {
            let mut returned = Vec::new();
            for job in 0..JOBS {
                if let Err(e) = q.put(job) {
                    returned.push(e.into_inner());
                }
            }
            returned
        });
        while processed.acquire().len() < JOBS / 4 {
            std::thread::yield_now();
        }
        let drained = q.shutdown(true);
        (producer.join().unwrap(), drained)
    });
    q.join(); // every job taken was marked done; the drained ones were settled
    let processed = processed.into_inner();
    r.say(format!(
        "processed {}, handed back by shutdown {}, handed back by failed puts {}",
        processed.len(),
        drained.len(),
        returned_by_put.len()
    ));
    let mut seen = [0u8; JOBS];
    for &job in processed.iter().chain(&drained).chain(&returned_by_put) {
        seen[job] += 1;
    }
    r.check_eq(
        "processed + handed back",
        processed.len() + drained.len() + returned_by_put.len(),
        JOBS,
    );
    r.check("no job lost, none twice", seen.iter().all(|&n| n == 1));
    r.check(
        "join() returned after the shutdown",
        q.unfinished_tasks() == 0,
    );
}
