//! Process queues: items from this process to a child (SPSC), small and 1 KiB, and from two
//! producer processes to two consumer processes (MPMC). Against a raw socket floor (this
//! binary re-executed, 8-byte writes), `ipc-channel`, and CPython's `multiprocessing.Queue`
//! and `SimpleQueue`. ns per item.

use super::process::FloorChild;
use super::{time, Bench};
use ipc_channel::ipc::{IpcOneShotServer, IpcReceiver, IpcSender};
use pytandem::process::{Connection, Pipe, Process, Queue, RawValue};
use serde_bytes::ByteBuf;
use std::cell::RefCell;
use std::io::{Read, Write};
use std::sync::atomic::Ordering;

/// Items per `get_many` in tandem's consumers.
const BATCH: usize = 256;

pub(crate) fn benches() -> Vec<Bench> {
    vec![
        spsc::<u64>(
            "process.queue.spsc",
            "u64 items, this process to a consumer child (2 processes, 2 cores)",
            7,
            8,
            "7",
        ),
        spsc::<ByteBuf>(
            "process.queue.spsc.1k",
            "1 KiB items, this process to a consumer child (2 processes, 2 cores)",
            ByteBuf::from(vec![42u8; 1024]),
            1024,
            "b'*' * 1024",
        ),
        mpmc(),
    ]
}

pub(crate) fn sizes() -> Vec<(&'static str, usize)> {
    vec![("process::Queue<u64>", std::mem::size_of::<Queue<u64>>())]
}

/// An item type of these benchmarks.
trait Item: serde::Serialize + serde::de::DeserializeOwned + Clone + std::fmt::Debug + 'static {}
impl Item for u64 {}
impl Item for ByteBuf {}

/// A consumer child and the queues to it and back.
struct Sink<M: Item> {
    q: Queue<Option<M>>,
    ack: Connection<u64>,
    _child: Process<()>,
}

impl<M: Item> Sink<M> {
    fn start() -> Self {
        let q = Queue::new().expect("queue");
        let (ack, theirs) = Pipe::new().expect("pipe");
        let child = Process::spawn(sink::<M>, (q.clone(), theirs)).expect("spawn");
        Sink {
            q,
            ack,
            _child: child,
        }
    }
}

impl<M: Item> Drop for Sink<M> {
    fn drop(&mut self) {
        self.q.shutdown(true);
    }
}

/// Counts items until a `None`, then reports the count; until the queue shuts down.
fn sink<M: Item>(args: (Queue<Option<M>>, Connection<u64>)) {
    let (q, ack) = args;
    let mut count = 0;
    while let Ok(batch) = q.get_many(BATCH) {
        for item in batch {
            match item {
                Some(_) => count += 1,
                None => {
                    if ack.send(&count).is_err() {
                        return;
                    }
                    count = 0;
                }
            }
        }
    }
}

fn spsc<M: Item>(
    name: &'static str,
    about: &'static str,
    msg: M,
    raw_len: usize,
    py_msg: &'static str,
) -> Bench {
    let (m1, m2) = (msg.clone(), msg);
    Bench::new(name, about)
        .native("tandem", {
            let sink = RefCell::new(None::<Sink<M>>);
            move |iters| {
                let mut sink = sink.borrow_mut();
                let s = sink.get_or_insert_with(Sink::start);
                time(|| {
                    for _ in 0..iters {
                        s.q.put(Some(m1.clone())).expect("put");
                    }
                    s.q.put(None).expect("put");
                    assert_eq!(s.ack.recv().expect("ack"), iters);
                })
            }
        })
        .native("floor", {
            let child = RefCell::new(None::<FloorChild>);
            move |iters| {
                let mut child = child.borrow_mut();
                let role = format!("sink:{raw_len}");
                let c = child.get_or_insert_with(|| FloorChild::start(&role));
                let item = vec![1u8; raw_len];
                let mut ack = [0u8; 8];
                time(|| {
                    for _ in 0..iters {
                        c.stream.write_all(&item).expect("write");
                    }
                    c.stream.write_all(&vec![0xff; raw_len]).expect("write");
                    c.stream.read_exact(&mut ack).expect("ack");
                    assert_eq!(u64::from_le_bytes(ack), iters);
                })
            }
        })
        .native("ipc-channel", {
            let child = RefCell::new(None::<(IpcSender<Option<M>>, IpcReceiver<u64>, Process<()>)>);
            move |iters| {
                let mut child = child.borrow_mut();
                let (tx, rx, _) = child.get_or_insert_with(|| {
                    let (server, name) =
                        IpcOneShotServer::<(IpcSender<Option<M>>, IpcReceiver<u64>)>::new()
                            .expect("server");
                    let p = Process::spawn(ipc_sink::<M>, name).expect("spawn");
                    let (_, (tx, rx)) = server.accept().expect("accept");
                    (tx, rx, p)
                });
                time(|| {
                    for _ in 0..iters {
                        tx.send(Some(m2.clone())).expect("send");
                    }
                    tx.send(None).expect("send");
                    assert_eq!(rx.recv().expect("ack"), iters);
                })
            }
        })
        .cpython(spsc_script("Queue", py_msg), CPY_SPSC_BODY)
        .cpython_as(
            "cpython-simple",
            spsc_script("SimpleQueue", py_msg),
            CPY_SPSC_BODY,
        )
}

fn ipc_sink<M: Item>(server: String) {
    let (tx, from_parent) = ipc_channel::ipc::channel::<Option<M>>().expect("channel");
    let (to_parent, rx) = ipc_channel::ipc::channel::<u64>().expect("channel");
    let hello = IpcSender::connect(server).expect("connect");
    hello.send((tx, rx)).expect("handshake");
    let mut count = 0;
    while let Ok(item) = from_parent.recv() {
        match item {
            Some(_) => count += 1,
            None => {
                if to_parent.send(count).is_err() {
                    return;
                }
                count = 0;
            }
        }
    }
}

/// Two producer children and two consumer children around one queue. Consumers count every
/// item into `counted`; the one whose batch brings it to the round's `target` acknowledges.
struct Mpmc {
    commands: Queue<u64>,
    acks: Queue<u64>,
    q: Queue<u64>,
    counted: RawValue<u64>,
    target: RawValue<u64>,
    _children: Vec<Process<()>>,
}

impl Drop for Mpmc {
    fn drop(&mut self) {
        self.commands.shutdown(true);
        self.q.shutdown(true);
    }
}

fn producer(args: (Queue<u64>, Queue<u64>)) {
    let (commands, q) = args;
    while let Ok(n) = commands.get() {
        for i in 0..n {
            if q.put(i).is_err() {
                return;
            }
        }
    }
}

fn consumer(args: (Queue<u64>, Queue<u64>, RawValue<u64>, RawValue<u64>)) {
    let (q, acks, counted, target) = args;
    while let Ok(batch) = q.get_many(BATCH) {
        let k = batch.len() as u64;
        let total = counted.fetch_add(k, Ordering::AcqRel) + k;
        if total == target.load(Ordering::Acquire) {
            let _ = acks.put(total);
        }
    }
}

fn mpmc() -> Bench {
    Bench::new(
        "process.queue.mpmc",
        "u64 items, 2 producer processes to 2 consumer processes (4 processes, 2 cores)",
    )
    .native("tandem", {
        let state = RefCell::new(None::<Mpmc>);
        move |iters| {
            let mut state = state.borrow_mut();
            let m = state.get_or_insert_with(|| {
                let (commands, acks, q) = (Queue::new().expect("q"), Queue::new().expect("q"), Queue::new().expect("q"));
                let (counted, target) = (RawValue::new(0u64).expect("counter"), RawValue::new(0u64).expect("target"));
                let mut children = Vec::new();
                for _ in 0..2 {
                    children.push(Process::spawn(producer, (commands.clone(), q.clone())).expect("spawn"));
                    let args = (q.clone(), acks.clone(), counted.clone(), target.clone());
                    children.push(Process::spawn(consumer, args).expect("spawn"));
                }
                Mpmc { commands, acks, q, counted, target, _children: children }
            });
            m.counted.store(0, Ordering::Release);
            m.target.store(iters, Ordering::Release);
            time(|| {
                m.commands.put(iters / 2).expect("command");
                m.commands.put(iters - iters / 2).expect("command");
                assert_eq!(m.acks.get().expect("ack"), iters);
            })
        }
    })
    .skip("floor", "a raw pipe has no consumer-side record boundaries for several readers of variable speed; see BENCHMARKS.md")
    .skip("ipc-channel", "ipc-channel has no multi-consumer receiver (an IpcReceiver cannot be shared)")
    .cpython(mpmc_script("Queue"), CPY_MPMC_BODY)
    .cpython_as("cpython-simple", mpmc_script("SimpleQueue"), CPY_MPMC_BODY)
}

/// CPython's SPSC set-up: a consumer child counting items of `multiprocessing.<kind>` until a
/// `None`, then reporting the count; `msg` is the item. (Leaked: the harness keeps scripts
/// for the whole run.)
fn spsc_script(kind: &str, msg: &str) -> &'static str {
    Box::leak(
        format!(
            "import multiprocessing as mp
def sink(q, ack):
    count = 0
    while True:
        m = q.get()
        if m is None:
            ack.put(count)
            count = 0
        else:
            count += 1
if __name__ == '__main__':
    q, ack = mp.{kind}(), mp.{kind}()
    p = mp.get_context('fork').Process(target=sink, args=(q, ack), daemon=True)
    p.start()
    msg = {msg}"
        )
        .into_boxed_str(),
    )
}

/// CPython's MPMC set-up over `multiprocessing.<kind>`. Consumers count every item into a
/// shared counter; the one that reaches the round's goal acknowledges (as tandem's
/// consumers do, which count a batch at a time).
fn mpmc_script(kind: &str) -> &'static str {
    Box::leak(
        format!(
            "import multiprocessing as mp
def producer(cmd, q):
    while True:
        n = cmd.get()
        for i in range(n):
            q.put(i)
def consumer(q, ack, counted, goal):
    while True:
        q.get()
        with counted.get_lock():
            counted.value += 1
            done = counted.value == goal.value
        if done:
            ack.put(1)
if __name__ == '__main__':
    cmd, q, ack = mp.{kind}(), mp.{kind}(), mp.{kind}()
    counted, goal = mp.Value('q', 0), mp.Value('q', 0)
    ctx = mp.get_context('fork')
    for _ in range(2):
        ctx.Process(target=producer, args=(cmd, q), daemon=True).start()
        ctx.Process(target=consumer, args=(q, ack, counted, goal), daemon=True).start()"
        )
        .into_boxed_str(),
    )
}

const CPY_SPSC_BODY: &str = "for _ in range(n):
    q.put(msg)
q.put(None)
assert ack.get() == n";

const CPY_MPMC_BODY: &str = "counted.value = 0
goal.value = n
cmd.put(n // 2)
cmd.put(n - n // 2)
ack.get()";
