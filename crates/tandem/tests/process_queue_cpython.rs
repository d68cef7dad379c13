#![cfg(target_os = "linux")]
pytandem::child_entry!();

// The behaviours CPython's `Lib/test/_test_multiprocessing.py` checks for process queues
// (`_TestQueue`, `TestSimpleQueue`), ported to `pytandem::process::{Queue, JoinableQueue,
// SimpleQueue}` in our own words. Every test has a child process on the other end of the
// queue. Where CPython closes a queue, tandem shuts it down: `close()` and `join_thread()`
// do not exist (there is no feeder thread and no pipe), and Python 3.13's `shutdown`
// semantics (`queue.py`) replace them, so those tests check what `test_queue.py`'s
// `test_shutdown_*` tests expect of a shut-down queue, across processes. Each test names
// the CPython test it ports; where a behaviour differs by design a comment says so instead
// of a test.
//
// No test sleeps to synchronize: the handshakes are process `Event`s, the queue's own
// observable state (`len`) watched with `common::eventually`, or a child that publishes its
// thread id before a blocking call and is then seen asleep in `/proc`. Timing checks are
// one-sided (a timed wait lasts at least its timeout), every wait has a 30 s deadline, and
// every child is joined (or killed, then joined) before its test ends.

mod common;

use pytandem::process::{
    Connection, Event, GetError, JoinableQueue, Pipe, Process, ProcessError, PutError, Queue,
    RawValue, SimpleQueue,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

/// How long anything may take before the test is declared stuck (not slow).
const LONG: Duration = Duration::from_secs(30);

/// The timeout of the waits that are meant to time out (CPython's `TIMEOUT1`…`TIMEOUT3`).
const SHORT: Duration = Duration::from_millis(100);

/// Python's `join_process`: the child's result, failing the test if the child hangs.
fn join_within<R: DeserializeOwned>(mut child: Process<R>) -> Result<R, ProcessError> {
    match child.join_timeout(LONG) {
        Err(ProcessError::Timeout { pid }) => {
            let _ = child.kill();
            let _ = child.join_timeout(LONG);
            panic!("child {pid} did not end within {LONG:?}");
        }
        other => other,
    }
}

/// The child's result; a child that failed fails the test with its error.
fn result_of<R: DeserializeOwned>(child: Process<R>) -> R {
    join_within(child).unwrap_or_else(|e| panic!("the child failed: {e}"))
}

/// Runs `f(args)` in a child process and returns what it returned.
fn in_child<A, R>(f: fn(A) -> R, args: A) -> R
where
    A: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    result_of(Process::spawn(f, args).unwrap())
}

/// The state letter of thread `tid` of process `pid` (`S`: asleep), from its `/proc` `stat`.
fn state_of(pid: u32, tid: i64) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

fn my_tid() -> i64 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

/// Waits until `child`'s thread that published its id in `tid` (just before a blocking
/// queue call) is asleep: it is then inside that call, waiting.
fn until_blocked<R>(child: &Process<R>, tid: &RawValue<i64>, what: &str) {
    common::eventually(what, || {
        let t = tid.load(SeqCst);
        t != 0 && state_of(child.pid(), t) == Some('S')
    });
}

/// Runs `f`, returning its result and how long it took.
fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let start = Instant::now();
    let r = f();
    (r, start.elapsed())
}

// =======================================================================================
// _TestQueue
// =======================================================================================

/// CPython's `_TestQueue._test_put`: waits for the go-ahead, takes six items, says so.
/// Returns whether it saw the queue full, and what it took.
fn take_six_when_told(args: (Queue<u32>, Event, Event)) -> (bool, Vec<u32>) {
    let (q, child_can_start, parent_can_continue) = args;
    assert!(child_can_start.wait_timeout(LONG), "no go-ahead");
    let was_full = q.is_full();
    let got = (0..6).map(|_| q.get_timeout(LONG).unwrap()).collect();
    parent_can_continue.set();
    (was_full, got)
}

/// CPython: _TestQueue.test_put: a queue of six fills through every form of put; once full,
/// the non-blocking forms fail at once and the timed one after its timeout, each handing
/// the item back; a child process then sees it full and empties it.
#[test]
fn test_put() {
    const MAXSIZE: usize = 6;
    let q = Queue::bounded(MAXSIZE).unwrap();
    let (child_can_start, parent_can_continue) = (Event::new().unwrap(), Event::new().unwrap());
    let child = Process::spawn(
        take_six_when_told,
        (
            q.clone(),
            child_can_start.clone(),
            parent_can_continue.clone(),
        ),
    )
    .unwrap();
    assert!(q.is_empty());
    assert!(!q.is_full());

    q.put(1).unwrap(); // put(1), put(2, True)
    q.put(2).unwrap();
    q.put_timeout(3, LONG).unwrap(); // put(3, True, timeout)
    q.try_put(4).unwrap(); // put(4, False), put(5, False, None), put_nowait(6)
    q.try_put(5).unwrap();
    q.try_put(6).unwrap();
    // CPython sleeps here: its items may still sit in the feeder thread's buffer. A tandem
    // put returns once the item is in shared memory, so the queue is full at once.
    assert!(!q.is_empty());
    assert!(q.is_full());
    assert_eq!(q.len(), MAXSIZE);

    // put(7, False), put(7, False, None), put_nowait(7), put(7, False, TIMEOUT2): a put that
    // may not wait fails with `Full` (not `Timeout`: it did not wait).
    let err = q.try_put(7).unwrap_err();
    assert!(matches!(err, PutError::Full(7)), "{err:?}");
    // put(7, True, TIMEOUT1), put(7, True, timeout=TIMEOUT3): fails after the timeout.
    for _ in 0..2 {
        let (r, took) = timed(|| q.put_timeout(7, SHORT));
        let err = r.unwrap_err();
        assert!(
            err.is_full() && matches!(err, PutError::Timeout(_)),
            "{err:?}"
        );
        assert_eq!(err.into_inner(), 7, "the item comes back");
        assert!(took >= SHORT, "gave up after {took:?}");
    }
    assert_eq!(q.len(), MAXSIZE, "no failed put left anything behind");

    child_can_start.set();
    assert!(parent_can_continue.wait_timeout(LONG));
    assert!(q.is_empty());
    assert!(!q.is_full());
    assert_eq!(result_of(child), (true, vec![1, 2, 3, 4, 5, 6]));
}

/// Publishes its thread id, then puts `item` into the full queue (a blocking put).
fn put_into_full(args: (Queue<u32>, RawValue<i64>, u32)) -> bool {
    let (q, tid, item) = args;
    tid.store(my_tid(), SeqCst);
    q.put(item).is_ok()
}

/// CPython: _TestQueue.test_put, the blocking `put(item)` — which CPython's test only calls
/// while there is room: here a child's put into a full queue waits, and completes when this
/// process takes an item.
#[test]
fn test_put_blocks_until_another_process_gets() {
    let q = Queue::bounded(2).unwrap();
    q.put_many([1, 2]).unwrap();
    let tid = RawValue::new(0i64).unwrap();
    let child = Process::spawn(put_into_full, (q.clone(), tid.clone(), 3)).unwrap();
    until_blocked(&child, &tid, "the child waits in put");
    assert_eq!(q.len(), 2, "the waiting put added nothing");
    assert_eq!(q.get_timeout(LONG).unwrap(), 1);
    assert!(result_of(child), "the put went through once there was room");
    assert_eq!(q.get_many_timeout(5, LONG).unwrap(), [2, 3]);
}

/// CPython's `_TestQueue._test_get`: waits for the go-ahead, puts 2..=5, says so.
fn put_four_when_told(args: (Queue<u32>, Event, Event)) {
    let (q, child_can_start, parent_can_continue) = args;
    assert!(child_can_start.wait_timeout(LONG), "no go-ahead");
    for i in 2..=5 {
        q.put(i).unwrap();
    }
    parent_can_continue.set();
}

/// CPython: _TestQueue.test_get: what a child process put is there at once, and comes out
/// in order through every form of get; on the empty queue, the non-blocking forms fail at
/// once and the timed one after its timeout.
#[test]
fn test_get() {
    let q = Queue::new().unwrap();
    let (child_can_start, parent_can_continue) = (Event::new().unwrap(), Event::new().unwrap());
    let child = Process::spawn(
        put_four_when_told,
        (
            q.clone(),
            child_can_start.clone(),
            parent_can_continue.clone(),
        ),
    )
    .unwrap();
    assert!(q.is_empty());
    child_can_start.set();
    assert!(parent_can_continue.wait_timeout(LONG));
    // No sleep (CPython's DELTA): the child's puts returned with the items in the queue.
    assert!(!q.is_empty());
    assert_eq!(q.len(), 4);

    assert_eq!(q.get().unwrap(), 2); // get(True, None)
    assert_eq!(q.get().unwrap(), 3); // get(True)
    assert_eq!(q.get_timeout(Duration::from_secs(1)).unwrap(), 4); // get(timeout=1)
    assert_eq!(q.try_get().unwrap(), 5); // get_nowait()
    assert!(q.is_empty());

    // get(False), get(False, None), get_nowait(), get(False, TIMEOUT2): `Empty` at once.
    assert_eq!(q.try_get().unwrap_err(), GetError::Empty);
    // get(True, TIMEOUT1), get(timeout=TIMEOUT3): `Timeout` after the timeout.
    for _ in 0..2 {
        let (r, took) = timed(|| q.get_timeout(SHORT));
        assert_eq!(r.unwrap_err(), GetError::Timeout);
        assert!(took >= SHORT, "gave up after {took:?}");
    }
    result_of(child);
}

/// Publishes its thread id, then waits for an item (a blocking get).
fn get_from_empty(args: (Queue<u32>, RawValue<i64>)) -> Result<u32, bool> {
    let (q, tid) = args;
    tid.store(my_tid(), SeqCst);
    q.get().map_err(|e| e.is_shutdown())
}

/// CPython: _TestQueue.test_get, the blocking `get()` — which CPython's test only calls on
/// a queue with items: here a child's get on the empty queue waits, and returns the item
/// this process then puts.
#[test]
fn test_get_blocks_until_another_process_puts() {
    let q = Queue::new().unwrap();
    let tid = RawValue::new(0i64).unwrap();
    let child = Process::spawn(get_from_empty, (q.clone(), tid.clone())).unwrap();
    until_blocked(&child, &tid, "the child waits in get");
    q.put(42).unwrap();
    assert_eq!(result_of(child), Ok(42));
    assert!(q.is_empty(), "the child took it");
}

/// CPython's `_TestQueue._test_fork`: puts 10..20 and returns at once.
fn put_ten_more(q: Queue<u32>) {
    for i in 10..20 {
        q.put(i).unwrap();
    }
}

/// CPython: _TestQueue.test_fork: a queue this process already used works in a child
/// started afterwards; this process gets its own items and then the child's, in order,
/// and nothing else. (CPython's concern, a feeder thread not re-created in the child, does
/// not arise — there is none — and the child may exit before anyone reads its items.)
#[test]
fn test_fork() {
    let q = Queue::new().unwrap();
    for i in 0..10 {
        q.put(i).unwrap();
    }
    let child = Process::spawn(put_ten_more, q.clone()).unwrap();
    for i in 0..20 {
        assert_eq!(q.get_timeout(LONG).unwrap(), i);
    }
    assert_eq!(q.try_get().unwrap_err(), GetError::Empty);
    result_of(child);
}

/// Puts `Some(item)` or, given `None`, takes one; returns what it took and the size then.
fn put_or_take(args: (Queue<u32>, Option<u32>)) -> (Option<u32>, usize) {
    let (q, item) = args;
    let took = match item {
        Some(item) => {
            q.put(item).unwrap();
            None
        }
        None => Some(q.try_get().unwrap()),
    };
    (took, q.len())
}

/// CPython: _TestQueue.test_qsize: the size follows puts and gets — the ones made by other
/// processes too, and as both sides see it.
#[test]
fn test_qsize() {
    let q = Queue::new().unwrap();
    assert_eq!(q.len(), 0);
    q.put(1).unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(in_child(put_or_take, (q.clone(), Some(5))), (None, 2));
    assert_eq!(q.len(), 2);
    assert_eq!(in_child(put_or_take, (q.clone(), None)), (Some(1), 1));
    assert_eq!(q.len(), 1);
    assert_eq!(q.get_timeout(LONG).unwrap(), 5);
    assert_eq!(q.len(), 0);
}

/// CPython's `_TestQueue._test_task_done`: takes items until `None`, each marked done only
/// once `release` is set (CPython sleeps instead); how many real items it did.
fn task_worker(args: (JoinableQueue<Option<u32>>, Event)) -> u32 {
    let (q, release) = args;
    let mut done = 0;
    loop {
        let item = q.get_timeout(LONG).unwrap();
        assert!(release.wait_timeout(LONG), "never released");
        q.task_done().unwrap();
        match item {
            Some(_) => done += 1,
            None => return done,
        }
    }
}

/// CPython: _TestQueue.test_task_done: four worker processes; `join` waits until every
/// item put — the ones in the queue and the ones taken but not yet done — is marked done,
/// then returns; `None` per worker ends them.
#[test]
fn test_task_done() {
    let q = JoinableQueue::new().unwrap();
    let release = Event::new().unwrap();
    let workers: Vec<_> = (0..4)
        .map(|_| Process::spawn(task_worker, (q.clone(), release.clone())).unwrap())
        .collect();
    for i in 0..10 {
        q.put(Some(i)).unwrap();
    }
    // Each worker takes one item and holds it undone.
    common::eventually("every worker holds an item", || q.len() == 6);
    assert_eq!(q.unfinished_tasks(), 10);
    assert_eq!(q.join_timeout(SHORT), None, "ten tasks are unfinished");
    release.set();
    assert_eq!(q.join_timeout(LONG), Some(Ok(())));
    assert_eq!(q.unfinished_tasks(), 0);
    for _ in &workers {
        q.put(None).unwrap();
    }
    let done: u32 = workers.into_iter().map(result_of).sum();
    assert_eq!(done, 10);
    assert_eq!(
        q.join_timeout(LONG),
        Some(Ok(())),
        "the sentinels were done too"
    );
    // queue.py: more task_done() calls than items is a ValueError.
    assert!(q.task_done().is_err());
}

// A difference by design behind `test_task_done`'s workers calling `task_done` for their
// sentinel too: a process that ends (in any way) with items it got and never marked done
// has those tasks written off, and `join` then returns `Err(TasksLost)` instead of waiting
// forever as Python's would. (The death cases are in `tests/process_queue.rs`.)

// CPython: _TestQueue.test_no_import_lock_contention — does not apply: it guards against a
// queue's feeder thread deadlocking on Python's import lock. tandem has no import lock and
// no feeder thread; a put completes in the calling thread.

/// A child's side of `test_timeout`: a timed get on an empty queue and a timed put on a
/// full one, each with how long it took.
fn timed_waits(args: (Queue<u32>, Queue<u32>)) -> ((bool, Duration), (Option<u32>, Duration)) {
    let (empty, full) = args;
    let (got, get_took) = timed(|| empty.get_timeout(Duration::from_millis(200)));
    let (put, put_took) = timed(|| full.put_timeout(9, Duration::from_millis(200)));
    (
        (got == Err(GetError::Timeout), get_took),
        (
            put.err()
                .filter(|e| matches!(e, PutError::Timeout(_)))
                .map(PutError::into_inner),
            put_took,
        ),
    )
}

/// CPython: _TestQueue.test_timeout: a get with a 0.2 s timeout on an empty queue fails
/// with `Empty` no sooner than that — here in this process and, meanwhile, in a child,
/// which also times out a put on a full queue.
#[test]
fn test_timeout() {
    const TIMEOUT: Duration = Duration::from_millis(200);
    let empty = Queue::new().unwrap();
    let full = Queue::bounded(1).unwrap();
    full.put(1).unwrap();
    let child = Process::spawn(timed_waits, (empty.clone(), full.clone())).unwrap();
    let (r, took) = timed(|| empty.get_timeout(TIMEOUT));
    assert_eq!(r.unwrap_err(), GetError::Timeout);
    assert!(took >= TIMEOUT, "gave up after {took:?}");
    let ((get_timed_out, get_took), (put_back, put_took)) = result_of(child);
    assert!(get_timed_out);
    assert!(
        get_took >= TIMEOUT,
        "the child's get gave up after {get_took:?}"
    );
    assert_eq!(put_back, Some(9), "a timed-out put hands its item back");
    assert!(
        put_took >= TIMEOUT,
        "the child's put gave up after {put_took:?}"
    );
    assert_eq!(full.len(), 1);
    assert!(empty.is_empty());
}

/// An item whose serialization always fails (CPython's `NotSerializable`).
#[derive(Debug, Deserialize)]
struct NotSerializable;

impl Serialize for NotSerializable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("NotSerializable refuses"))
    }
}

#[derive(Debug, Serialize, Deserialize)]
enum Item {
    Flag(bool),
    Odd(NotSerializable),
    /// A process handle: it cannot live in shared memory.
    Handle(Connection<u8>),
}

/// Takes one item; returns the flag it held and whether the queue was empty afterwards.
fn take_flag(q: Queue<Item>) -> (Option<bool>, bool) {
    let flag = match q.get_timeout(LONG).unwrap() {
        Item::Flag(b) => Some(b),
        _ => None,
    };
    (flag, q.is_empty())
}

/// CPython: _TestQueue.test_queue_feeder_donot_stop_onexc (bpo-30414, bpo-33078): an item
/// that cannot be serialized does not break the queue: the next item still reaches another
/// process, and the failed one is not counted in the size — with a bound of one item too.
/// tandem has no feeder thread: the put itself fails, with `PutError::Encode` holding the
/// item, and so does a put of an item carrying a process handle (a difference by design:
/// Python pickles those; tandem sends them over a `Connection` only).
#[test]
fn test_queue_feeder_donot_stop_onexc() {
    for maxsize in [0, 1] {
        let q = Queue::bounded(maxsize).unwrap();
        let err = q.put(Item::Odd(NotSerializable)).unwrap_err();
        // (postcard reports a custom serializer error without its message.)
        assert!(matches!(err, PutError::Encode { .. }), "{err:?}");
        assert!(
            matches!(err.into_inner(), Item::Odd(_)),
            "the item comes back"
        );
        let (a, _b) = Pipe::new::<u8>().unwrap();
        let err = q.put(Item::Handle(a)).unwrap_err();
        assert!(matches!(err, PutError::Encode { .. }), "{err:?}");
        assert!(matches!(err.into_inner(), Item::Handle(_)));
        assert_eq!(q.len(), 0, "failed puts are not counted");
        assert!(!q.is_full());
        q.put(Item::Flag(true)).unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(in_child(take_flag, q.clone()), (Some(true), true));
        assert!(q.is_empty());
    }
}

// CPython: _TestQueue.test_queue_feeder_on_queue_feeder_error (the `_on_queue_feeder_error`
// hook) — does not apply: with no feeder thread there is no hook; the putter gets the error
// and its item back (`test_queue_feeder_donot_stop_onexc` above).

/// What a child sees of two queues: (shut down, empty, size) for each.
type Looks = [(bool, bool, usize); 2];

fn look(args: (Queue<String>, JoinableQueue<String>)) -> Looks {
    let (q, jq) = args;
    [
        (q.is_shutdown(), q.is_empty(), q.len()),
        (jq.is_shutdown(), jq.is_empty(), jq.len()),
    ]
}

/// CPython: _TestQueue.test_closed_queue_empty_exceptions, with `close()` replaced by a
/// shutdown: asking whether a shut-down `Queue` or `JoinableQueue` is empty never fails,
/// used or not, here or in another process. (A difference by design: CPython's closed
/// queue raises `OSError` once it has been used; a shut-down one is still readable.)
#[test]
fn test_closed_queue_empty_exceptions() {
    // Unused, then shut down.
    let (q, jq) = (
        Queue::<String>::new().unwrap(),
        JoinableQueue::<String>::new().unwrap(),
    );
    assert!(q.shutdown(false).is_empty());
    assert!(jq.shutdown(false).is_empty());
    assert!(q.is_empty() && jq.is_empty());
    assert_eq!(
        in_child(look, (q.clone(), jq.clone())),
        [(true, true, 0); 2]
    );

    // Used, then shut down: still answers, and the item is still there to be drained.
    let (q, jq) = (
        Queue::<String>::new().unwrap(),
        JoinableQueue::<String>::new().unwrap(),
    );
    q.put("foo".into()).unwrap();
    jq.put("foo".into()).unwrap();
    assert!(q.shutdown(false).is_empty());
    assert!(jq.shutdown(false).is_empty());
    assert!(!q.is_empty() && !jq.is_empty());
    assert_eq!(
        in_child(look, (q.clone(), jq.clone())),
        [(true, false, 1); 2]
    );
    assert_eq!(q.try_get().unwrap(), "foo");
    assert_eq!(jq.try_get().unwrap(), "foo");
    assert!(q.is_empty() && jq.is_empty());
}

/// A child's puts and gets on a shut-down queue: every put form's error (item handed
/// back?) and every get until it fails.
fn use_shut_down(q: JoinableQueue<String>) -> (Vec<bool>, Vec<String>, bool) {
    let puts = vec![
        q.put("a".into())
            .is_err_and(|e| e.is_shutdown() && e.into_inner() == "a"),
        q.try_put("b".into())
            .is_err_and(|e| e.is_shutdown() && e.into_inner() == "b"),
        q.put_timeout("c".into(), LONG)
            .is_err_and(|e| e.is_shutdown() && e.into_inner() == "c"),
        q.put_many(["d".to_string()])
            .is_err_and(|e| e.is_shutdown() && e.into_inner() == ["d"]),
    ];
    let mut got = Vec::new();
    let end = loop {
        match q.get_timeout(LONG) {
            Ok(s) => {
                got.push(s);
                q.task_done().unwrap();
            }
            Err(e) => break e,
        }
    };
    (puts, got, end.is_shutdown())
}

/// CPython: _TestQueue.test_closed_queue_put_get_exceptions, with `close()` replaced by
/// Python 3.13's shutdown (`test_queue.py`'s test_shutdown_empty, test_shutdown_nonempty,
/// test_shutdown_all_methods_in_one_thread): after a shutdown every put fails — in another
/// process too — handing its item back, and gets drain what is queued, then fail with
/// `ShutDown` at once (even a timed get: not `Timeout`, and not after waiting).
#[test]
fn test_closed_queue_put_get_exceptions() {
    // Empty, then shut down: nothing to drain.
    let q = JoinableQueue::<String>::new().unwrap();
    assert!(q.shutdown(false).is_empty());
    assert!(q.is_shutdown());
    let (puts, got, ended) = in_child(use_shut_down, q.clone());
    assert_eq!(puts, [true; 4]);
    assert!(got.is_empty() && ended);
    assert!(q.put("e".into()).unwrap_err().is_shutdown());
    assert_eq!(q.try_get().unwrap_err(), GetError::ShutDown);
    let (r, took) = timed(|| q.get_timeout(LONG));
    assert_eq!(r.unwrap_err(), GetError::ShutDown);
    assert!(took < LONG, "did not wait for its timeout");

    // Two items, then a graceful shutdown: a child drains them and marks them done.
    let q = JoinableQueue::<String>::bounded(2).unwrap();
    q.put("L".into()).unwrap();
    q.try_put("O".into()).unwrap();
    assert!(
        q.shutdown(false).is_empty(),
        "a graceful shutdown removes nothing"
    );
    let (puts, got, ended) = in_child(use_shut_down, q.clone());
    assert_eq!(puts, [true; 4]);
    assert_eq!(got, ["L", "O"]);
    assert!(ended);
    assert_eq!(q.unfinished_tasks(), 0);
    assert_eq!(q.join_timeout(LONG), Some(Ok(())));

    // Two items, then an immediate shutdown: they come back, their tasks count as done.
    let q = JoinableQueue::<String>::bounded(2).unwrap();
    q.put("L".into()).unwrap();
    q.try_put("O".into()).unwrap();
    assert_eq!(q.shutdown(true), ["L", "O"]);
    assert_eq!(q.len(), 0);
    assert_eq!(q.unfinished_tasks(), 0);
    let (puts, got, ended) = in_child(use_shut_down, q.clone());
    assert_eq!(puts, [true; 4]);
    assert!(got.is_empty() && ended);
    assert!(q.task_done().is_err(), "no task is left (ValueError)");
    assert_eq!(q.join_timeout(LONG), Some(Ok(())));
}

/// CPython: _TestQueue.test_closed_queue_put_get_exceptions with Python 3.13's shutdown:
/// "all blocked callers of put() and get() will be unblocked" (`test_queue.py`'s
/// test_shutdown_pending_get): a child waiting in get on the empty queue gets `ShutDown`.
#[test]
fn test_shutdown_wakes_a_getter_in_another_process() {
    let q = Queue::new().unwrap();
    let tid = RawValue::new(0i64).unwrap();
    let child = Process::spawn(get_from_empty, (q.clone(), tid.clone())).unwrap();
    until_blocked(&child, &tid, "the child waits in get");
    assert!(q.shutdown(false).is_empty());
    assert_eq!(result_of(child), Err(true), "woken with ShutDown");
}

/// CPython: _TestQueue.test_closed_queue_put_get_exceptions with Python 3.13's shutdown
/// (`test_queue.py`'s test_shutdown_put): a child waiting in put on the full queue is woken
/// by the shutdown and fails with `ShutDown`; the queued items still drain.
#[test]
fn test_shutdown_wakes_a_putter_in_another_process() {
    let q = Queue::bounded(2).unwrap();
    q.put_many([1, 2]).unwrap();
    let tid = RawValue::new(0i64).unwrap();
    let child = Process::spawn(put_into_full, (q.clone(), tid.clone(), 3)).unwrap();
    until_blocked(&child, &tid, "the child waits in put");
    assert!(q.shutdown(false).is_empty());
    assert!(!result_of(child), "woken with ShutDown");
    assert_eq!(q.get_many_timeout(5, LONG).unwrap(), [1, 2]);
    assert_eq!(q.try_get().unwrap_err(), GetError::ShutDown);
}

/// Waits for `go`, then gets one item (`Err(true)`: the queue was shut down).
fn get_after_go(args: (Queue<u32>, Event)) -> Result<u32, bool> {
    let (q, go) = args;
    assert!(go.wait_timeout(LONG), "no go-ahead");
    q.get_timeout(LONG).map_err(|e| e.is_shutdown())
}

/// CPython: _TestQueue.test_closed_queue_put_get_exceptions with Python 3.13's shutdown
/// (`test_queue.py`'s test_shutdown_get and test_shutdown_immediate_get): getter processes
/// let loose on a full queue after a shutdown — after a graceful one, they drain the two
/// items and the third fails with `ShutDown`; after an immediate one, both fail.
#[test]
fn test_shutdown_get() {
    for immediate in [false, true] {
        let q = Queue::bounded(2).unwrap();
        q.put_many([1, 2]).unwrap();
        let go = Event::new().unwrap();
        let getters: Vec<_> = (0..if immediate { 2 } else { 3 })
            .map(|_| Process::spawn(get_after_go, (q.clone(), go.clone())).unwrap())
            .collect();
        let removed = q.shutdown(immediate);
        go.set();
        let mut results: Vec<_> = getters.into_iter().map(result_of).collect();
        results.sort();
        if immediate {
            assert_eq!(removed, [1, 2]);
            assert_eq!(results, [Err(true), Err(true)]);
        } else {
            assert!(removed.is_empty());
            assert_eq!(results, [Ok(1), Ok(2), Err(true)]);
        }
    }
}

/// Publishes its thread id, then joins the queue; the outcome (`Err`: tasks lost).
fn join_queue(args: (JoinableQueue<u32>, RawValue<i64>)) -> Option<Result<(), u64>> {
    let (q, tid) = args;
    tid.store(my_tid(), SeqCst);
    q.join_timeout(LONG).map(|r| r.map_err(|lost| lost.count))
}

/// CPython: _TestQueue.test_closed_queue_put_get_exceptions with Python 3.13's shutdown
/// (`test_queue.py`'s test_shutdown_join and test_shutdown_immediate_join): a child waits in
/// `join` for one task. An immediate shutdown marks the removed item's task done, so the
/// child returns — with no task lost; a graceful one removes nothing, so the child returns
/// once this process has got the item and marked it done.
#[test]
fn test_shutdown_join() {
    for immediate in [true, false] {
        let q = JoinableQueue::new().unwrap();
        q.put(1).unwrap();
        let tid = RawValue::new(0i64).unwrap();
        let child = Process::spawn(join_queue, (q.clone(), tid.clone())).unwrap();
        until_blocked(&child, &tid, "the child waits in join");
        if immediate {
            assert_eq!(q.shutdown(true), [1]);
        } else {
            assert!(q.shutdown(false).is_empty());
            assert!(child.is_alive(), "one task is still unfinished");
            assert_eq!(q.unfinished_tasks(), 1);
            assert_eq!(q.get_timeout(LONG).unwrap(), 1);
            q.task_done().unwrap();
        }
        assert_eq!(result_of(child), Some(Ok(())));
        assert_eq!(q.unfinished_tasks(), 0);
        assert_eq!(q.try_get().unwrap_err(), GetError::ShutDown);
    }
}

// A difference by design for all of `_TestQueue`: CPython's unbounded queue is bounded only
// by memory; tandem's is also bounded by its ring's bytes (`capacity_bytes`, 16 MiB by
// default), so a put into an "unbounded" queue whose ring is full waits, and an item larger
// than the ring is refused (`PutError::TooLarge`). Checked in `tests/process_queue.rs`.
//
// Another: a queue's handle carries its item type's tag, so a handle that reaches a process
// naming another item type fails to decode there — a typed error, never a mis-read item —
// and an item that does not decode as the queue's type is `GetError::Decode`.

// =======================================================================================
// TestSimpleQueue (CPython 3.13's name for what older versions call _TestSimpleQueue)
// =======================================================================================

/// CPython's `TestSimpleQueue._test_empty`: waits for the go-ahead, puts whether the queue
/// is empty (twice: true, then false), says so.
fn put_emptiness(args: (SimpleQueue<bool>, Event, Event)) {
    let (q, child_can_start, parent_can_continue) = args;
    assert!(child_can_start.wait_timeout(LONG), "no go-ahead");
    q.put(q.is_empty()).unwrap();
    q.put(q.is_empty()).unwrap();
    parent_can_continue.set();
}

/// CPython: TestSimpleQueue.test_empty (issue 30301): a child process sees the queue empty,
/// then not, and this process sees what it put, in order.
#[test]
fn test_simple_queue_empty() {
    let q = SimpleQueue::new().unwrap();
    let (child_can_start, parent_can_continue) = (Event::new().unwrap(), Event::new().unwrap());
    let child = Process::spawn(
        put_emptiness,
        (
            q.clone(),
            child_can_start.clone(),
            parent_can_continue.clone(),
        ),
    )
    .unwrap();
    assert!(q.is_empty());
    child_can_start.set();
    assert!(parent_can_continue.wait_timeout(LONG));
    assert!(!q.is_empty());
    assert!(q.get().unwrap());
    assert!(!q.get().unwrap());
    assert!(q.is_empty());
    result_of(child);
}

/// Shuts the queue down gracefully; what came back and whether it is shut down.
fn shut_down(q: SimpleQueue<u32>) -> (Vec<u32>, bool) {
    (q.shutdown(false), q.is_shutdown())
}

/// CPython: TestSimpleQueue.test_close ("closing a queue twice should not fail"), with
/// `close()` replaced by a shutdown: shutting down again — from another process, gracefully
/// or immediately (`test_queue.py`'s test_shutdown_allowed_transitions) — never fails; a
/// later immediate shutdown still removes what was left.
#[test]
fn test_simple_queue_close() {
    let q = SimpleQueue::new().unwrap();
    q.put(1).unwrap();
    q.put(2).unwrap();
    assert!(!q.is_shutdown());
    assert_eq!(in_child(shut_down, q.clone()), (vec![], true));
    assert!(q.is_shutdown());
    assert!(q.shutdown(false).is_empty(), "a second shutdown is fine");
    assert_eq!(q.get().unwrap(), 1, "gets still drain");
    assert_eq!(q.shutdown(true), [2], "shut down, then immediately");
    assert!(q.shutdown(true).is_empty());
    assert!(q.shutdown(false).is_empty());
    assert_eq!(in_child(shut_down, q.clone()), (vec![], true));
    assert_eq!(q.get().unwrap_err(), GetError::ShutDown);
    assert!(q.put(3).unwrap_err().is_shutdown());
}

// CPython: TestSimpleQueue.test_empty_exceptions (emptiness of a closed SimpleQueue raises
// `OSError`) — differs by design: a shut-down queue still answers `is_empty`
// (`test_closed_queue_empty_exceptions` above; `SimpleQueue` is the same engine).
// TestSimpleQueue.test_closed (the private pipe ends are closed) — does not apply: there
// is no pipe.
