//! Loom models of the FIFO engine (`fifo_core.rs` over `list.rs`): every interleaving of
//! its puts, gets, wake-ups, hand-offs and shutdowns, within the preemption bound. Under
//! loom a block holds three slots, so two or three items already cross a block boundary.

use super::*;
use loom::sync::Arc;
use loom::thread;

fn fifo(maxsize: usize) -> Arc<FifoCore<u32>> {
    Arc::new(FifoCore::new(maxsize, true))
}

impl<T> FifoCore<T> {
    /// Threads registered to wait, parked or on their way: (getters, putters). The
    /// protocol's own counts must return to zero.
    fn registered(&self) -> (usize, usize) {
        (
            self.p().getters.registered(Ordering::Relaxed),
            self.c().putters.registered(Ordering::Relaxed),
        )
    }
}

/// Nobody waits any more, by either count.
fn settled(q: &FifoCore<u32>) {
    assert_eq!(q.registered(), (0, 0));
    assert_eq!(q.waiting_getters(), 0);
    assert_eq!(q.waiting_putters(), 0);
}

/// Capacity 1: a producer puts 2 items, a consumer gets 2. Both sides park (full, empty)
/// in some interleavings, and a get serves a parked putter: nothing is lost, order holds,
/// nobody sleeps forever.
#[test]
fn put_get_capacity_one() {
    loom::model(|| {
        let q = fifo(1);
        let q2 = Arc::clone(&q);
        let producer = thread::spawn(move || {
            q2.put(1, Wait::FOREVER).unwrap();
            q2.put(2, Wait::FOREVER).unwrap();
        });
        assert_eq!(q.get(Wait::FOREVER), Ok(1));
        assert_eq!(q.get(Wait::FOREVER), Ok(2));
        producer.join().unwrap();
        assert_eq!(q.len(), 0);
        assert_eq!(q.unfinished_tasks(), 2);
        settled(&q);
    });
}

/// Two getters waiting, two puts (one handed over, one through the list, or both either
/// way): both getters get an item; a lost or wasted wake-up would leave one asleep.
#[test]
fn two_getters_two_puts() {
    loom::model(|| {
        let q = fifo(usize::MAX);
        let getters: Vec<_> = (0..2)
            .map(|_| {
                let q = Arc::clone(&q);
                thread::spawn(move || q.get(Wait::FOREVER).unwrap())
            })
            .collect();
        q.put(1, Wait::FOREVER).unwrap();
        q.put(2, Wait::FOREVER).unwrap();
        let mut got: Vec<u32> = getters.into_iter().map(|g| g.join().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, vec![1, 2]);
        assert_eq!(q.unfinished_tasks(), 2, "hand-offs count as puts");
        settled(&q);
    });
}

/// A put racing an immediate shutdown, with a getter beside them: the item is got, or
/// drained by the shutdown, or handed back in the put's error — exactly one of the three.
#[test]
fn put_racing_immediate_shutdown() {
    loom::model(|| {
        let q = fifo(usize::MAX);
        let (q2, q3) = (Arc::clone(&q), Arc::clone(&q));
        let putter = thread::spawn(move || q2.put(1, Wait::FOREVER));
        let getter = thread::spawn(move || q3.get(Wait::FOREVER));
        let drained = q.shutdown(true);
        let put = putter.join().unwrap();
        let got = getter.join().unwrap();
        let mut seen = 0;
        if let Err(PutFail::ShutDown(1)) = put {
            seen += 1;
        } else {
            assert!(put.is_ok());
        }
        if got == Ok(1) {
            seen += 1;
        } else {
            assert_eq!(got, Err(GetFail::ShutDown));
        }
        seen += drained.len();
        assert_eq!(seen, 1, "put {put:?}, got {got:?}, drained {drained:?}");
        // Only the item a getter took is still a task.
        assert_eq!(q.unfinished_tasks(), usize::from(got.is_ok()));
        settled(&q);
    });
}

/// Hand-off against barging: a blocking getter and a `try_get` race for one item. Whoever
/// gets it, the other ends cleanly (the blocked getter via shutdown); got exactly once.
#[test]
fn handoff_against_barging_try_get() {
    loom::model(|| {
        let q = fifo(usize::MAX);
        let q2 = Arc::clone(&q);
        let getter = thread::spawn(move || q2.get(Wait::FOREVER));
        q.put(1, Wait::FOREVER).unwrap();
        let barged = q.get(Wait::No);
        if barged.is_ok() {
            q.shutdown(false);
        }
        let got = getter.join().unwrap();
        match (barged, got) {
            (Ok(1), Err(GetFail::ShutDown)) | (Err(GetFail::Empty), Ok(1)) => {}
            other => panic!("item lost or duplicated: {other:?}"),
        }
        settled(&q);
    });
}

/// A putter parked on a full queue, a getter serving it and an immediate shutdown, all at
/// once: every item is got, drained or handed back exactly once.
#[test]
fn served_putter_against_immediate_shutdown() {
    loom::model(|| {
        let q = fifo(1);
        q.put(1, Wait::FOREVER).unwrap();
        let (q2, q3) = (Arc::clone(&q), Arc::clone(&q));
        let putter = thread::spawn(move || q2.put(2, Wait::FOREVER));
        let getter = thread::spawn(move || q3.get(Wait::FOREVER));
        let drained = q.shutdown(true);
        let put = putter.join().unwrap();
        let got = getter.join().unwrap();
        let mut items: Vec<u32> = drained;
        if let Ok(x) = got {
            items.push(x);
        }
        match put {
            Ok(()) => {}
            Err(PutFail::ShutDown(x)) => items.push(x),
            Err(other) => panic!("unexpected {other:?}"),
        }
        items.sort_unstable();
        assert_eq!(items, vec![1, 2]);
        settled(&q);
    });
}

/// join() against a consumer's get + task_done: join returns only after task_done and
/// never sleeps through it.
#[test]
fn join_waits_for_task_done() {
    loom::model(|| {
        use loom::sync::atomic::AtomicBool;
        let q = fifo(usize::MAX);
        let done = Arc::new(AtomicBool::new(false));
        q.put(7, Wait::FOREVER).unwrap();
        let (q2, done2) = (Arc::clone(&q), Arc::clone(&done));
        let consumer = thread::spawn(move || {
            assert_eq!(q2.get(Wait::FOREVER), Ok(7));
            done2.store(true, Ordering::Relaxed);
            q2.task_done().unwrap();
        });
        assert!(q.join(Deadline::NEVER));
        assert!(
            done.load(Ordering::Relaxed),
            "join returned before task_done"
        );
        consumer.join().unwrap();
        assert_eq!(q.task_done(), Err(TaskDoneError));
    });
}

/// A timed get racing a put: it gets the item, or times out and leaves it queued; the
/// counts are restored either way.
#[test]
fn timed_get_against_put() {
    loom::model(|| {
        let q = fifo(usize::MAX);
        let q2 = Arc::clone(&q);
        let getter = thread::spawn(move || {
            q2.get(Wait::Until(Deadline::after(
                std::time::Duration::from_secs(1),
            )))
        });
        q.put(5, Wait::FOREVER).unwrap();
        match getter.join().unwrap() {
            Ok(5) => assert_eq!(q.len(), 0),
            Err(GetFail::Timeout) => assert_eq!(q.get(Wait::No), Ok(5)),
            other => panic!("unexpected {other:?}"),
        }
        settled(&q);
    });
}

/// A producer and two consumers across a block boundary (three slots a block under loom):
/// two items queued before, two put while both consumers get; the put of the block's last
/// slot links the next block while a get may be waiting for it. Each item is got exactly
/// once, and each consumer sees the items in put order.
#[test]
fn across_a_block() {
    // A get that claimed a slot spins (yields, under loom) until its put writes it, and the
    // get at a block's end until the next block is linked: with three preemptions such
    // paths run past loom's default 1,000 branches.
    let mut model = loom::model::Builder::new();
    model.max_branches = 20_000;
    model.check(|| {
        let q = fifo(usize::MAX);
        q.put(0, Wait::FOREVER).unwrap();
        q.put(1, Wait::FOREVER).unwrap();
        let q2 = Arc::clone(&q);
        let producer = thread::spawn(move || {
            q2.put(2, Wait::FOREVER).unwrap();
            q2.put(3, Wait::FOREVER).unwrap();
        });
        let q3 = Arc::clone(&q);
        let consumer = thread::spawn(move || {
            [
                q3.get(Wait::FOREVER).unwrap(),
                q3.get(Wait::FOREVER).unwrap(),
            ]
        });
        let mine = [q.get(Wait::FOREVER).unwrap(), q.get(Wait::FOREVER).unwrap()];
        let theirs = consumer.join().unwrap();
        producer.join().unwrap();
        for pair in [mine, theirs] {
            assert!(pair[0] < pair[1], "FIFO: {pair:?}");
        }
        let mut all = [mine, theirs].concat();
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 2, 3]);
        settled(&q);
    });
}

/// A getter waiting, one `put_many` of two items (one claim, past the hand-off path): the
/// batch's wake-up reaches the getter (never lost between its check and its sleep), and the
/// other item stays queued. (Several getters woken by one batch: `tests/queue.rs`.)
#[test]
fn batch_put_wakes_a_getter() {
    loom::model(|| {
        let q = fifo(usize::MAX);
        let q2 = Arc::clone(&q);
        let getter = thread::spawn(move || q2.get(Wait::FOREVER).unwrap());
        assert!(q.put_many(VecDeque::from(vec![1, 2])).is_ok());
        let got = getter.join().unwrap();
        let rest = q.get(Wait::No).unwrap();
        assert_eq!((got, rest), (1, 2));
        settled(&q);
    });
}

/// Batches through capacity 2: `put_many` of three items must wait for room; `get_many`
/// takes what is there. All arrive, in order.
#[test]
fn batch_put_get_capacity_two() {
    loom::model(|| {
        let q = fifo(2);
        let q2 = Arc::clone(&q);
        let producer = thread::spawn(move || q2.put_many(VecDeque::from(vec![1, 2, 3])));
        let mut got = Vec::new();
        while got.len() < 3 {
            got.extend(q.get_many(3, Wait::FOREVER).unwrap());
        }
        assert_eq!(got, vec![1, 2, 3]);
        assert!(producer.join().unwrap().is_ok());
        settled(&q);
    });
}
