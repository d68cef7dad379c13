//! Stress tests that count: producers × consumers with a shutdown in the middle.
//!
//! Invariant: items got + items handed back by the shutdown + items handed back by failed
//! puts == items attempted, and no item is seen twice (a per-item tally). FIFO queues also
//! keep each producer's items in order as seen by any one consumer. Every item got is
//! marked `task_done`, so the task count ends at zero.
//!
//! Size: `TANDEM_STRESS_ITEMS` items per producer, default 250 000: the 4 producers ×
//! 4 consumers × 1M items (about 5 s for all nine tests in a debug build on 2 cores). Set it
//! higher for a longer soak.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::Duration;

use pytandem::queue::{LifoQueue, PriorityQueue, Queue, SimpleQueue};

const PRODUCERS: usize = 4;
const CONSUMERS: usize = 4;

fn items_per_producer() -> usize {
    std::env::var("TANDEM_STRESS_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250_000)
}

/// The operations the stress test needs, over every queue type.
trait StressQueue: Sync {
    fn put(&self, item: u64) -> Result<(), u64>;
    fn put_many(&self, items: Vec<u64>) -> Result<(), Vec<u64>>;
    fn put_timeout(&self, item: u64) -> Result<(), (u64, bool)>;
    fn get(&self) -> Option<u64>;
    fn get_many(&self, n: usize) -> Option<Vec<u64>>;
    fn get_timeout(&self) -> Result<u64, bool>;
    fn task_done(&self);
    fn unfinished(&self) -> usize;
    fn shutdown(&self, immediate: bool) -> Vec<u64>;
    fn len(&self) -> usize;
    const FIFO: bool;
}

macro_rules! stress_queue {
    ($Q:ident, fifo: $fifo:tt, tasks: $tasks:tt) => {
        impl StressQueue for $Q<u64> {
            fn put(&self, item: u64) -> Result<(), u64> {
                $Q::put(self, item).map_err(|e| e.into_inner())
            }
            fn put_many(&self, items: Vec<u64>) -> Result<(), Vec<u64>> {
                $Q::put_many(self, items).map_err(|e| e.into_inner())
            }
            fn put_timeout(&self, item: u64) -> Result<(), (u64, bool)> {
                stress_queue!(@put_timeout $tasks, self, item)
            }
            fn get(&self) -> Option<u64> {
                $Q::get(self).ok()
            }
            fn get_many(&self, n: usize) -> Option<Vec<u64>> {
                $Q::get_many(self, n).ok()
            }
            fn get_timeout(&self) -> Result<u64, bool> {
                $Q::get_timeout(self, Duration::from_micros(200)).map_err(|e| e.is_shutdown())
            }
            fn task_done(&self) {
                stress_queue!(@task_done $tasks, self)
            }
            fn unfinished(&self) -> usize {
                stress_queue!(@unfinished $tasks, self)
            }
            fn shutdown(&self, immediate: bool) -> Vec<u64> {
                $Q::shutdown(self, immediate)
            }
            fn len(&self) -> usize {
                $Q::len(self)
            }
            const FIFO: bool = $fifo;
        }
    };
    (@put_timeout true, $q:ident, $item:ident) => {
        $q.put_timeout($item, Duration::from_micros(200))
            .map_err(|e| { let shut = e.is_shutdown(); (e.into_inner(), shut) })
    };
    (@put_timeout false, $q:ident, $item:ident) => {
        $q.put($item).map_err(|e| (e.into_inner(), true))
    };
    (@task_done true, $q:ident) => { $q.task_done().unwrap() };
    (@task_done false, $q:ident) => { () };
    (@unfinished true, $q:ident) => { $q.unfinished_tasks() };
    (@unfinished false, $q:ident) => { 0 };
}

stress_queue!(Queue, fifo: true, tasks: true);
stress_queue!(LifoQueue, fifo: false, tasks: true);
stress_queue!(PriorityQueue, fifo: false, tasks: true);
stress_queue!(SimpleQueue, fifo: true, tasks: false);

/// The stress tests run one at a time: each already runs 8 threads, and running them all
/// at once on a 2-core machine measures the scheduler, not the queue.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Item ids: producer in the high bits, sequence number in the low bits.
fn item(producer: usize, seq: usize) -> u64 {
    ((producer as u64) << 32) | seq as u64
}

/// Runs producers and consumers; `immediate` shuts down once about half the items were
/// consumed, otherwise after every producer is done (graceful, drained to the end).
fn stress<Q: StressQueue>(q: &Q, immediate: bool) {
    let _serial = one_at_a_time();
    let per = items_per_producer();
    let total = PRODUCERS * per;
    let consumed = AtomicUsize::new(0);
    let producers_done = AtomicUsize::new(0);
    let start = Barrier::new(PRODUCERS + CONSUMERS);

    let (failed, got, drained) = std::thread::scope(|s| {
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let (start, producers_done) = (&start, &producers_done);
                s.spawn(move || {
                    start.wait();
                    let mut failed = Vec::new();
                    let mut seq = 0;
                    while seq < per {
                        match p % 3 {
                            // Plain blocking puts.
                            0 => {
                                if let Err(x) = q.put(item(p, seq)) {
                                    failed.push(x);
                                }
                                seq += 1;
                            }
                            // Batches of up to 64.
                            1 => {
                                let end = (seq + 64).min(per);
                                let batch: Vec<u64> = (seq..end).map(|i| item(p, i)).collect();
                                if let Err(rest) = q.put_many(batch) {
                                    failed.extend(rest);
                                }
                                seq = end;
                            }
                            // Timed puts, retried on time-out (the item comes back each time).
                            _ => {
                                let mut x = item(p, seq);
                                loop {
                                    match q.put_timeout(x) {
                                        Ok(()) => break,
                                        Err((back, true)) => {
                                            failed.push(back);
                                            break;
                                        }
                                        Err((back, false)) => x = back,
                                    }
                                }
                                seq += 1;
                            }
                        }
                    }
                    producers_done.fetch_add(1, Ordering::SeqCst);
                    failed
                })
            })
            .collect();

        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|c| {
                let (start, consumed) = (&start, &consumed);
                s.spawn(move || {
                    start.wait();
                    let mut got = Vec::new();
                    let record = |x: u64, got: &mut Vec<u64>| {
                        got.push(x);
                        q.task_done();
                        consumed.fetch_add(1, Ordering::Relaxed);
                    };
                    loop {
                        match c % 3 {
                            0 => match q.get() {
                                Some(x) => record(x, &mut got),
                                None => break,
                            },
                            1 => match q.get_many(16) {
                                Some(xs) => {
                                    assert!(!xs.is_empty() && xs.len() <= 16);
                                    for x in xs {
                                        record(x, &mut got);
                                    }
                                }
                                None => break,
                            },
                            _ => match q.get_timeout() {
                                Ok(x) => record(x, &mut got),
                                Err(true) => break,
                                Err(false) => {}
                            },
                        }
                    }
                    got
                })
            })
            .collect();

        // The shutdown, from this thread.
        let drained = if immediate {
            while consumed.load(Ordering::Relaxed) < total / 2 {
                std::thread::yield_now();
            }
            q.shutdown(true)
        } else {
            while producers_done.load(Ordering::SeqCst) < PRODUCERS {
                std::thread::yield_now();
            }
            q.shutdown(false)
        };

        let failed: Vec<Vec<u64>> = producers.into_iter().map(|h| h.join().unwrap()).collect();
        let got: Vec<Vec<u64>> = consumers.into_iter().map(|h| h.join().unwrap()).collect();
        (failed, got, drained)
    });

    // Tally: every item attempted is accounted for exactly once.
    let mut seen = vec![0u8; total];
    let index = |x: u64| (x >> 32) as usize * per + (x & 0xffff_ffff) as usize;
    let mut count = |x: u64, from: &str| {
        let i = index(x);
        seen[i] += 1;
        assert_eq!(seen[i], 1, "item {x:#x} seen twice (last from {from})");
    };
    let n_got: usize = got.iter().map(Vec::len).sum();
    let n_failed: usize = failed.iter().map(Vec::len).sum();
    for xs in &got {
        for &x in xs {
            count(x, "get");
        }
    }
    for xs in &failed {
        for &x in xs {
            count(x, "failed put");
        }
    }
    for &x in &drained {
        count(x, "shutdown");
    }
    assert_eq!(
        n_got + n_failed + drained.len(),
        total,
        "got {n_got} + failed {n_failed} + drained {} != attempted {total}",
        drained.len()
    );
    assert!(seen.iter().all(|&n| n == 1));

    if immediate {
        assert!(n_got >= total / 2);
    } else {
        assert_eq!(
            n_failed, 0,
            "a graceful shutdown after the producers lost puts"
        );
        assert!(drained.is_empty());
        assert_eq!(
            n_got, total,
            "a graceful shutdown lets consumers drain everything"
        );
    }
    assert_eq!(q.len(), 0);
    assert_eq!(
        q.unfinished(),
        0,
        "every item got was marked done; the rest settled"
    );

    // FIFO: any one consumer sees each producer's items in increasing order.
    if Q::FIFO {
        for xs in &got {
            let mut last = [None::<u64>; PRODUCERS];
            for &x in xs {
                let p = (x >> 32) as usize;
                if let Some(prev) = last[p] {
                    assert!(x > prev, "FIFO order broken: {x:#x} after {prev:#x}");
                }
                last[p] = Some(x);
            }
        }
    }
}

#[test]
fn fifo_bounded_immediate_shutdown() {
    stress(&Queue::bounded(64), true);
}

#[test]
fn fifo_unbounded_immediate_shutdown() {
    stress(&Queue::new(), true);
}

#[test]
fn fifo_bounded_graceful_shutdown() {
    stress(&Queue::bounded(8), false);
}

#[test]
fn lifo_bounded_immediate_shutdown() {
    stress(&LifoQueue::bounded(64), true);
}

#[test]
fn priority_bounded_immediate_shutdown() {
    stress(&PriorityQueue::bounded(64), true);
}

#[test]
fn priority_unbounded_graceful_shutdown() {
    stress(&PriorityQueue::new(), false);
}

#[test]
fn simple_immediate_shutdown() {
    stress(&SimpleQueue::new(), true);
}

#[test]
fn simple_graceful_shutdown() {
    stress(&SimpleQueue::new(), false);
}

/// Capacity 1 with many threads maximises blocking on both sides: every put and get parks
/// and wakes. Counts must still balance exactly (graceful, so nothing is handed back).
#[test]
fn capacity_one_ping_pong() {
    let _serial = one_at_a_time();
    let q = Queue::bounded(1);
    let per = (items_per_producer() / 20).max(1000);
    let sum = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for p in 0..3 {
            let q = &q;
            s.spawn(move || {
                for i in 0..per {
                    q.put(p * per + i).unwrap();
                }
            });
        }
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0;
                    for x in &q {
                        sum.fetch_add(x, Ordering::Relaxed);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        while q.unfinished_tasks() < 3 * per {
            std::thread::yield_now();
        }
        q.shutdown(false);
        let n: usize = consumers.into_iter().map(|c| c.join().unwrap()).sum();
        assert_eq!(n, 3 * per);
    });
    let total = 3 * per;
    assert_eq!(sum.load(Ordering::Relaxed), total * (total - 1) / 2);
    assert_eq!(q.waiting_getters(), 0);
    assert_eq!(q.waiting_putters(), 0);
}
