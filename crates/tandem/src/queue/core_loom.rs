//! Loom models of the lock-based queue engine (`core.rs`): its put / get / wake /
//! hand-off / shutdown races, within the preemption bound.

use super::*;
use loom::sync::Arc;
use loom::thread;

fn fifo(maxsize: usize) -> Arc<Core<VecDeque<u32>>> {
    Arc::new(Core::new(VecDeque::new(), maxsize))
}

/// Capacity 1: a producer puts 2 items, a consumer gets 2. Both sides park (full /
/// empty) in some interleavings; nothing is lost, order holds, nobody sleeps forever,
/// and the waiter counts return to zero.
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
        assert_eq!(q.waiting_getters(), 0);
        assert_eq!(q.registered().0, 0);
        assert_eq!(q.waiting_putters(), 0);
        assert_eq!(q.registered().1, 0);
    });
}

/// Batches through capacity 1: `put_many` of 2 items must wait for room between them;
/// `get_many` takes what is there. Both items arrive, in order.
#[test]
fn batch_put_get_capacity_one() {
    loom::model(|| {
        let q = fifo(1);
        let q2 = Arc::clone(&q);
        let producer = thread::spawn(move || q2.put_many(VecDeque::from(vec![1, 2])));
        let mut got = q.get_many(2, Wait::FOREVER).unwrap();
        if got.len() < 2 {
            got.extend(q.get_many(2, Wait::FOREVER).unwrap());
        }
        assert_eq!(got, vec![1, 2]);
        assert!(producer.join().unwrap().is_ok());
        assert_eq!(q.waiting_putters(), 0);
        assert_eq!(q.registered().1, 0);
        assert_eq!(q.waiting_getters(), 0);
        assert_eq!(q.registered().0, 0);
    });
}

/// Two getters waiting, two puts: each put wakes one getter, so both get an item
/// (a lost or wasted wake-up would leave one asleep forever).
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
        assert_eq!(q.waiting_getters(), 0);
        assert_eq!(q.registered().0, 0);
    });
}

/// Hand-off against barging: a blocking getter and a `try_get` on another thread race
/// for one item. Whoever gets it, the other side ends cleanly (the blocked getter via
/// shutdown), the item is got exactly once, and no promise is left outstanding.
#[test]
fn promised_item_against_barging_try_get() {
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
        assert_eq!(q.inner.acquire().promised_items, 0);
        assert_eq!(q.waiting_getters(), 0);
        assert_eq!(q.registered().0, 0);
    });
}

/// Slot hand-off against barging and an immediate shutdown: a putter blocked on a full
/// queue, a `try_put` racing it for the freed slot, then an immediate shutdown. Every
/// item ends up in exactly one place: drained, or handed back by a failed put.
#[test]
fn promised_slot_against_barging_try_put() {
    loom::model(|| {
        let q = fifo(1);
        q.put(0, Wait::FOREVER).unwrap();
        let q2 = Arc::clone(&q);
        let putter = thread::spawn(move || q2.put(2, Wait::FOREVER));
        assert_eq!(q.get(Wait::FOREVER), Ok(0));
        let barged = q.put(3, Wait::No);
        let drained = q.shutdown(true);
        let put = putter.join().unwrap();
        let mut seen = drained.clone();
        match barged {
            Ok(()) => {}
            Err(PutFail::Full(x)) | Err(PutFail::ShutDown(x)) => seen.push(x),
            Err(other) => panic!("unexpected {other:?}"),
        }
        match put {
            Ok(()) => {}
            Err(PutFail::ShutDown(x)) => seen.push(x),
            Err(other) => panic!("unexpected {other:?}"),
        }
        seen.sort_unstable();
        assert_eq!(seen, vec![2, 3], "drained {drained:?}");
        assert_eq!(q.inner.acquire().promised_slots, 0);
        assert_eq!(q.waiting_putters(), 0);
        assert_eq!(q.registered().1, 0);
    });
}

/// A getter blocked on an empty queue and a putter blocked on a full one are both
/// released by an immediate shutdown, which hands back the queued item: the blocked
/// putter's item comes back in its error, so every item is accounted for exactly once.
#[test]
fn immediate_shutdown_releases_blocked_putter() {
    loom::model(|| {
        let q = fifo(1);
        q.put(1, Wait::FOREVER).unwrap();
        let q2 = Arc::clone(&q);
        let putter = thread::spawn(move || q2.put(2, Wait::FOREVER));
        let drained = q.shutdown(true);
        let put = putter.join().unwrap();
        // Either the putter got in before the shutdown (and its item was drained too)
        // or it failed with its item.
        match put {
            Ok(()) => assert_eq!(drained, vec![1, 2]),
            Err(PutFail::ShutDown(2)) => assert_eq!(drained, vec![1]),
            Err(other) => panic!("unexpected {other:?}"),
        }
        assert_eq!(q.unfinished_tasks(), 0);
        assert!(q.join(Deadline::NEVER));
        assert_eq!(q.waiting_putters(), 0);
        assert_eq!(q.registered().1, 0);
    });
}

/// A getter waiting on an empty queue against a graceful shutdown: it always wakes,
/// with `ShutDown`.
#[test]
fn shutdown_wakes_blocked_getter() {
    loom::model(|| {
        let q = fifo(1);
        let q2 = Arc::clone(&q);
        let getter = thread::spawn(move || q2.get(Wait::FOREVER));
        assert!(q.shutdown(false).is_empty());
        assert_eq!(getter.join().unwrap(), Err(GetFail::ShutDown));
        assert_eq!(q.waiting_getters(), 0);
        assert_eq!(q.registered().0, 0);
    });
}

/// join() against a consumer's get + task_done: join returns only after task_done, and
/// never sleeps through it.
#[test]
fn join_waits_for_task_done() {
    loom::model(|| {
        use loom::sync::atomic::AtomicBool;
        let q = fifo(1);
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

/// A timed get racing a put: it either gets the item or times out and leaves the item
/// queued; the registration count is restored either way.
#[test]
fn timed_get_against_put() {
    loom::model(|| {
        let q = fifo(1);
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
        assert_eq!(q.waiting_getters(), 0);
        assert_eq!(q.registered().0, 0);
    });
}
