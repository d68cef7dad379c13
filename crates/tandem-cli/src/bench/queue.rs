//! `queue.*`: tandem's queues against crossbeam-channel, flume, std's channels, a
//! `Mutex<BinaryHeap>` + `Condvar` priority queue, and CPython's `queue` module.
//!
//! One operation is one message: a put on a producer thread and the get of it on a consumer
//! thread. Threads are spawned before the clock starts and released together; the time runs
//! until the last consumer has its last item.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hint::black_box;
use std::sync::{Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::Bench;

/// The bound of the bounded benchmarks.
const BOUND: usize = 1024;

/// A job for one thread of a benchmark.
type Job<'a> = Box<dyn FnOnce() + Send + 'a>;

/// Runs each job on its own thread, all released together; the time until the last is done.
fn together(jobs: Vec<Job<'_>>) -> Duration {
    let start_line = Barrier::new(jobs.len() + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .into_iter()
            .map(|job| {
                let start_line = &start_line;
                s.spawn(move || {
                    start_line.wait();
                    job();
                })
            })
            .collect();
        start_line.wait();
        let start = Instant::now();
        for h in handles {
            h.join().expect("benchmark thread panicked");
        }
        start.elapsed()
    })
}

/// `pairs` producers and `pairs` consumers moving `iters` messages in all (rounded down to
/// a multiple of `pairs`): `put(i)` sends, `get()` receives one.
fn pipe<'a>(
    pairs: u64,
    iters: u64,
    put: impl Fn(u64) + Sync + 'a,
    get: impl Fn() + Sync + 'a,
) -> Duration {
    let share = (iters / pairs).max(1);
    let (put, get) = (&put, &get);
    let mut jobs: Vec<Job<'_>> = Vec::new();
    for _ in 0..pairs {
        jobs.push(Box::new(move || {
            for i in 0..share {
                put(i);
            }
        }));
        jobs.push(Box::new(move || {
            for _ in 0..share {
                get();
            }
        }));
    }
    together(jobs)
}

/// std's receivers are not `Sync`: one producer and one consumer that owns its end.
fn std_spsc(iters: u64, send: impl Fn(u64) + Send, recv: impl Fn() + Send) -> Duration {
    together(vec![
        Box::new(move || {
            for i in 0..iters {
                send(i);
            }
        }),
        Box::new(move || {
            for _ in 0..iters {
                recv();
            }
        }),
    ])
}

/// "N threads on C cores", for the descriptions of multi-thread rows (the cores are this
/// machine's, so the reader knows whether the threads could all run at once).
fn on_cores(about: &str, threads: usize) -> &'static str {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let text = format!("{about} ({threads} threads on {cores} cores)");
    Box::leak(text.into_boxed_str())
}

/// Messages per batch of the burst row.
const BURST: usize = 64;

/// One producer moving `iters` messages in batches of [`BURST`] (the last may be shorter)
/// with `put_batch`, one consumer taking them with `get_batch` (which takes at most
/// [`BURST`] and returns how many it got).
fn burst<'a>(
    iters: u64,
    put_batch: impl Fn(std::ops::Range<u64>) + Send + 'a,
    get_batch: impl Fn() -> usize + Send + 'a,
) -> Duration {
    together(vec![
        Box::new(move || {
            let mut start = 0;
            while start < iters {
                let end = (start + BURST as u64).min(iters);
                put_batch(start..end);
                start = end;
            }
        }),
        Box::new(move || {
            let mut got = 0;
            while got < iters as usize {
                got += get_batch();
            }
        }),
    ])
}

/// A cheap deterministic key sequence (splitmix64), so priority benchmarks reorder.
fn key(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A buffer a std baseline keeps under its mutex: a stack or a heap.
trait Buffer: Default {
    fn push(&mut self, x: u64);
    fn pop(&mut self) -> Option<u64>;
    fn len(&self) -> usize;
}

impl Buffer for Vec<u64> {
    fn push(&mut self, x: u64) {
        Vec::push(self, x);
    }
    fn pop(&mut self) -> Option<u64> {
        Vec::pop(self)
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
}

impl Buffer for BinaryHeap<Reverse<u64>> {
    fn push(&mut self, x: u64) {
        BinaryHeap::push(self, Reverse(x));
    }
    fn pop(&mut self) -> Option<u64> {
        BinaryHeap::pop(self).map(|Reverse(x)| x)
    }
    fn len(&self) -> usize {
        BinaryHeap::len(self)
    }
}

/// The LIFO and priority baselines: what one writes by hand with std — a bounded stack
/// (`Vec`) or heap (`BinaryHeap`) under a mutex, with a condition variable for each side
/// (Python's `queue.LifoQueue` / `PriorityQueue` design).
struct MutexQueue<B> {
    buffer: Mutex<B>,
    not_empty: Condvar,
    not_full: Condvar,
}

impl<B: Buffer> MutexQueue<B> {
    fn new() -> Self {
        MutexQueue {
            buffer: Mutex::new(B::default()),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
        }
    }

    fn put(&self, x: u64) {
        let mut buffer = self.buffer.lock().unwrap();
        while buffer.len() >= BOUND {
            buffer = self.not_full.wait(buffer).unwrap();
        }
        buffer.push(x);
        drop(buffer);
        self.not_empty.notify_one();
    }

    fn get(&self) -> u64 {
        let mut buffer = self.buffer.lock().unwrap();
        loop {
            if let Some(x) = buffer.pop() {
                drop(buffer);
                self.not_full.notify_one();
                return x;
            }
            buffer = self.not_empty.wait(buffer).unwrap();
        }
    }
}

/// CPython: persistent worker threads (so a timed run does not pay for starting threads),
/// and `pipe(q, pairs, n)` moving `n` messages through `q` with `pairs` producers and
/// `pairs` consumers; `keyed=True` puts random 64-bit keys instead of counting.
const PY_SETUP: &str = "import queue, threading, random\n\
def _worker(cmds, done):\n    while True:\n        cmds.get()()\n        done.put(None)\n\
_cmds = [queue.SimpleQueue() for _ in range(4)]\n\
_done = queue.SimpleQueue()\n\
for _c in _cmds:\n    threading.Thread(target=_worker, args=(_c, _done), daemon=True).start()\n\
def produce(q, k, keyed):\n    put = q.put\n    if keyed:\n        r = random.getrandbits\n        for _ in range(k):\n            put(r(64))\n    else:\n        for i in range(k):\n            put(i)\n\
def consume(q, k):\n    get = q.get\n    for _ in range(k):\n        get()\n\
def pipe(q, pairs, n, keyed=False):\n    k = max(n // pairs, 1)\n    jobs = []\n    for _ in range(pairs):\n        jobs.append(lambda: produce(q, k, keyed))\n        jobs.append(lambda: consume(q, k))\n    for c, j in zip(_cmds, jobs):\n        c.put(j)\n    for _ in jobs:\n        _done.get()\n";

/// A sending and a receiving end from `$make`, through [`pipe`] with `$pairs` producers
/// and consumers, calling `$send` and `$recv` on them.
macro_rules! channel_pipe {
    ($pairs:expr, $make:expr) => {
        channel_pipe!($pairs, $make, send, recv)
    };
    ($pairs:expr, $make:expr, $send:ident, $recv:ident) => {
        |iters| {
            let (tx, rx) = $make;
            pipe(
                $pairs,
                iters,
                |i| tx.$send(i).unwrap(),
                || {
                    black_box(rx.$recv().unwrap());
                },
            )
        }
    };
}

/// A channel pair from `$make` through [`burst`]: a batch is sent one message at a time
/// (channels have no batch send), and a receive takes one message, waiting, then what else
/// is there, up to a batch.
macro_rules! channel_burst {
    ($make:expr) => {
        |iters| {
            let (tx, rx) = $make;
            burst(
                iters,
                move |batch| batch.for_each(|i| tx.send(i).unwrap()),
                move || {
                    black_box(rx.recv().unwrap());
                    1 + rx.try_iter().take(BURST - 1).map(black_box).count()
                },
            )
        }
    };
}

/// One of std's channel pairs from `$make`, through [`std_spsc`].
macro_rules! std_pipe {
    ($make:expr) => {
        |iters| {
            let (tx, rx) = $make;
            std_spsc(
                iters,
                move |i| tx.send(i).unwrap(),
                move || {
                    black_box(rx.recv().unwrap());
                },
            )
        }
    };
}

/// A tandem queue from `$make` (two handles to it), through [`pipe`].
macro_rules! tandem_pipe {
    ($pairs:expr, $make:expr) => {
        channel_pipe!(
            $pairs,
            {
                let q = $make;
                (q.clone(), q)
            },
            put,
            get
        )
    };
}

pub(crate) fn benches() -> Vec<Bench> {
    vec![
        Bench::new(
            "queue.spsc.bounded",
            on_cores("put + get of one message, 1 producer and 1 consumer, bound 1024", 2),
        )
        .native(
            "tandem",
            tandem_pipe!(1, pytandem::queue::Queue::bounded(BOUND)),
        )
        .native(
            "crossbeam",
            channel_pipe!(1, crossbeam_channel::bounded(BOUND)),
        )
        .native("flume", channel_pipe!(1, flume::bounded(BOUND)))
        .native("std", std_pipe!(std::sync::mpsc::sync_channel(BOUND)))
        .cpython(PY_SETUP, "pipe(queue.Queue(maxsize=1024), 1, n)"),
        Bench::new(
            "queue.spsc.unbounded",
            on_cores("put + get of one message, 1 producer and 1 consumer, unbounded", 2),
        )
        .native("tandem", tandem_pipe!(1, pytandem::queue::Queue::new()))
        .native(
            "crossbeam",
            channel_pipe!(1, crossbeam_channel::unbounded()),
        )
        .native("flume", channel_pipe!(1, flume::unbounded()))
        .native("std", std_pipe!(std::sync::mpsc::channel()))
        .cpython(PY_SETUP, "pipe(queue.Queue(), 1, n)"),
        Bench::new(
            "queue.mpmc.bounded",
            on_cores("put + get of one message, 2 producers and 2 consumers, bound 1024", 4),
        )
        .native(
            "tandem",
            tandem_pipe!(2, pytandem::queue::Queue::bounded(BOUND)),
        )
        .native(
            "crossbeam",
            channel_pipe!(2, crossbeam_channel::bounded(BOUND)),
        )
        .native("flume", channel_pipe!(2, flume::bounded(BOUND)))
        .cpython(PY_SETUP, "pipe(queue.Queue(maxsize=1024), 2, n)"),
        Bench::new(
            "queue.mpmc.unbounded",
            on_cores("put + get of one message, 2 producers and 2 consumers, unbounded", 4),
        )
        .native("tandem", tandem_pipe!(2, pytandem::queue::Queue::new()))
        .native(
            "crossbeam",
            channel_pipe!(2, crossbeam_channel::unbounded()),
        )
        .native("flume", channel_pipe!(2, flume::unbounded()))
        .cpython(PY_SETUP, "pipe(queue.Queue(), 2, n)"),
        Bench::new(
            "queue.priority",
            on_cores(
                "put + get of one message by key order, 1 producer and 1 consumer, bound 1024",
                2,
            ),
        )
        .native("tandem", |iters| {
            let q = pytandem::queue::PriorityQueue::bounded(BOUND);
            pipe(
                1,
                iters,
                |i| q.put(key(i)).unwrap(),
                || {
                    black_box(q.get().unwrap());
                },
            )
        })
        .native("std", |iters| {
            let q = MutexQueue::<BinaryHeap<Reverse<u64>>>::new();
            pipe(
                1,
                iters,
                |i| q.put(key(i)),
                || {
                    black_box(q.get());
                },
            )
        })
        .cpython(
            PY_SETUP,
            "pipe(queue.PriorityQueue(maxsize=1024), 1, n, keyed=True)",
        ),
        Bench::new(
            "queue.lifo",
            on_cores(
                "put + get of one message, last in first out, 1 producer and 1 consumer, bound 1024",
                2,
            ),
        )
        .native("tandem", |iters| {
            let q = pytandem::queue::LifoQueue::bounded(BOUND);
            pipe(
                1,
                iters,
                |i| q.put(i).unwrap(),
                || {
                    black_box(q.get().unwrap());
                },
            )
        })
        .native("std", |iters| {
            let q = MutexQueue::<Vec<u64>>::new();
            pipe(
                1,
                iters,
                |i| q.put(i),
                || {
                    black_box(q.get());
                },
            )
        })
        .cpython(PY_SETUP, "pipe(queue.LifoQueue(maxsize=1024), 1, n)"),
        Bench::new(
            "queue.burst",
            on_cores(
                "one message of bursts of 64: put_many + get_many on tandem's Queue (peers: 64 \
                 sends, then receives of what is there), 1 producer and 1 consumer, unbounded",
                2,
            ),
        )
        .native("tandem", |iters| {
            let q = pytandem::queue::Queue::new();
            burst(
                iters,
                |batch| q.put_many(batch).unwrap(),
                || q.get_many(BURST).unwrap().len(),
            )
        })
        .native("crossbeam", channel_burst!(crossbeam_channel::unbounded()))
        .native("flume", channel_burst!(flume::unbounded()))
        .native("std", channel_burst!(std::sync::mpsc::channel())),
        Bench::new(
            "queue.simple",
            on_cores(
                "put + get of one message on a SimpleQueue, 1 producer and 1 consumer",
                2,
            ),
        )
        .native("tandem", tandem_pipe!(1, pytandem::queue::SimpleQueue::new()))
        .native(
            "crossbeam",
            channel_pipe!(1, crossbeam_channel::unbounded()),
        )
        .native("flume", channel_pipe!(1, flume::unbounded()))
        .native("std", std_pipe!(std::sync::mpsc::channel()))
        .cpython(PY_SETUP, "pipe(queue.SimpleQueue(), 1, n)"),
    ]
}

pub(crate) fn sizes() -> Vec<(&'static str, usize)> {
    use std::mem::size_of;
    vec![
        (
            "tandem Queue<u64> (handle)",
            size_of::<pytandem::queue::Queue<u64>>(),
        ),
        (
            "tandem SimpleQueue<u64> (handle)",
            size_of::<pytandem::queue::SimpleQueue<u64>>(),
        ),
        (
            "crossbeam Sender<u64> + Receiver<u64>",
            size_of::<crossbeam_channel::Sender<u64>>()
                + size_of::<crossbeam_channel::Receiver<u64>>(),
        ),
        (
            "flume Sender<u64> + Receiver<u64>",
            size_of::<flume::Sender<u64>>() + size_of::<flume::Receiver<u64>>(),
        ),
    ]
}
