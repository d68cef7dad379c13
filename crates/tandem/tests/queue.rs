//! Every behaviour of the queue module, errors and timeouts included.
//!
//! No test sleeps to synchronise: "thread B is blocked" is observed through
//! `waiting_getters()` / `waiting_putters()` / `unfinished_tasks()` with a deadline.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use pytandem::queue::{
    GetTimeoutError, LifoQueue, PriorityQueue, PutError, PutTimeoutError, Queue, ShutDown,
    SimpleQueue, TaskDoneError, TryGetError, TryPutError,
};

mod common;
use common::eventually;

/// Generous bound for "returns promptly" on a loaded 2-core machine.
const PROMPT: Duration = Duration::from_secs(5);

// ----- construction, sharing, sizes ---------------------------------------------------------

#[test]
fn queues_are_send_and_sync_and_cheap_handles() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Queue<String>>();
    send_sync::<LifoQueue<String>>();
    send_sync::<PriorityQueue<String>>();
    send_sync::<SimpleQueue<String>>();
    send_sync::<pytandem::queue::IntoIter<Queue<String>>>();
    assert_eq!(
        std::mem::size_of::<Queue<u64>>(),
        std::mem::size_of::<usize>()
    );
    assert_eq!(
        std::mem::size_of::<SimpleQueue<u64>>(),
        std::mem::size_of::<usize>()
    );
}

#[test]
fn maxsize_conventions() {
    assert_eq!(Queue::<u8>::new().maxsize(), None);
    assert_eq!(Queue::<u8>::bounded(3).maxsize(), Some(3));
    assert_eq!(
        Queue::<u8>::with_maxsize(0).maxsize(),
        None,
        "Python: 0 is unbounded"
    );
    assert_eq!(Queue::<u8>::with_maxsize(7).maxsize(), Some(7));
    assert_eq!(LifoQueue::<u8>::with_maxsize(0).maxsize(), None);
    assert_eq!(PriorityQueue::<u8>::bounded(1).maxsize(), Some(1));
    let unbounded = Queue::new();
    unbounded.put_many(0..10_000).unwrap();
    assert!(!unbounded.is_full());
}

#[test]
fn bounded_zero_panics_with_a_helpful_message() {
    let err = std::panic::catch_unwind(|| Queue::<u8>::bounded(0)).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(
        msg.contains("Queue::new()") && msg.contains("with_maxsize(0)"),
        "{msg}"
    );
}

#[test]
fn shared_by_reference_in_scoped_threads_and_by_clone() {
    let q = Queue::new();
    std::thread::scope(|s| {
        s.spawn(|| q.put(1).unwrap());
    });
    let handle = q.clone();
    std::thread::spawn(move || handle.put(2).unwrap())
        .join()
        .unwrap();
    assert_eq!(q.get_many(2).unwrap(), vec![1, 2]);
}

#[test]
fn dropping_the_last_handle_frees_the_items() {
    let marker = std::sync::Arc::new(());
    let q = SimpleQueue::new();
    let q2 = q.clone();
    for _ in 0..3 {
        q.put(std::sync::Arc::clone(&marker)).unwrap();
    }
    drop(q);
    assert_eq!(std::sync::Arc::strong_count(&marker), 4);
    drop(q2);
    assert_eq!(std::sync::Arc::strong_count(&marker), 1);
}

// ----- put / get: blocking, non-blocking, timeouts ------------------------------------------

#[test]
fn try_put_on_full_and_try_get_on_empty() {
    let q = Queue::bounded(1);
    assert_eq!(q.try_get(), Err(TryGetError::Empty));
    q.try_put("a").unwrap();
    assert!(q.is_full());
    assert_eq!(q.try_put("b"), Err(TryPutError::Full("b")));
    assert_eq!(q.try_get(), Ok("a"));
    assert!(q.is_empty());
}

#[test]
fn put_timeout_on_full_returns_the_same_item_after_the_timeout() {
    let q = Queue::bounded(1);
    q.put(String::from("first")).unwrap();
    let timeout = Duration::from_millis(50);
    let start = Instant::now();
    let err = q.put_timeout(String::from("second"), timeout).unwrap_err();
    let waited = start.elapsed();
    assert!(err.is_timeout());
    assert_eq!(err.into_inner(), "second");
    assert!(waited >= timeout, "returned after {waited:?}");
    assert!(waited < PROMPT, "returned after {waited:?}");
    assert_eq!(q.len(), 1);
    assert_eq!(q.waiting_putters(), 0, "a timed-out putter deregisters");
}

#[test]
fn get_timeout_on_empty_times_out_after_the_timeout() {
    for q in [Queue::<u8>::new(), Queue::bounded(4)] {
        let timeout = Duration::from_millis(50);
        let start = Instant::now();
        assert_eq!(q.get_timeout(timeout), Err(GetTimeoutError::Timeout));
        let waited = start.elapsed();
        assert!(
            waited >= timeout && waited < PROMPT,
            "returned after {waited:?}"
        );
        assert_eq!(q.waiting_getters(), 0, "a timed-out getter deregisters");
    }
}

#[test]
fn zero_timeout_tries_once() {
    let q = Queue::bounded(1);
    let start = Instant::now();
    assert_eq!(q.get_timeout(Duration::ZERO), Err(GetTimeoutError::Timeout));
    q.put_timeout(1, Duration::ZERO).unwrap();
    assert_eq!(
        q.put_timeout(2, Duration::ZERO),
        Err(PutTimeoutError::Timeout(2))
    );
    assert_eq!(q.get_timeout(Duration::ZERO), Ok(1));
    assert!(!q.join_timeout(Duration::ZERO));
    assert!(start.elapsed() < PROMPT);
    // A deadline already in the past behaves the same.
    assert_eq!(q.get_until(Instant::now()), Err(GetTimeoutError::Timeout));
    q.put_until(3, Instant::now()).unwrap();
    assert_eq!(
        q.put_until(4, Instant::now()),
        Err(PutTimeoutError::Timeout(4))
    );
}

#[test]
fn absurd_timeouts_mean_forever() {
    let q = Queue::bounded(1);
    std::thread::scope(|s| {
        let getter = s.spawn(|| q.get_timeout(Duration::MAX));
        eventually("the getter waits", || q.waiting_getters() == 1);
        q.put(5).unwrap();
        assert_eq!(getter.join().unwrap(), Ok(5));

        q.put(6).unwrap();
        let putter = s.spawn(|| q.put_timeout(7, Duration::MAX));
        eventually("the putter waits", || q.waiting_putters() == 1);
        assert_eq!(q.get(), Ok(6));
        putter.join().unwrap().unwrap();
        assert_eq!(q.get_timeout(Duration::MAX), Ok(7));
    });
}

#[test]
fn blocked_get_is_woken_by_put() {
    let q = Queue::new();
    std::thread::scope(|s| {
        let getter = s.spawn(|| q.get());
        eventually("the getter waits", || q.waiting_getters() == 1);
        q.put(42).unwrap();
        assert_eq!(getter.join().unwrap(), Ok(42));
    });
    assert_eq!(q.waiting_getters(), 0);
}

#[test]
fn blocked_put_is_woken_by_get_and_keeps_fifo_order() {
    let q = Queue::bounded(2);
    q.put(1).unwrap();
    q.put(2).unwrap();
    std::thread::scope(|s| {
        let putter = s.spawn(|| q.put(3));
        eventually("the putter waits", || q.waiting_putters() == 1);
        assert_eq!(q.len(), 2, "a waiting putter does not overfill");
        assert_eq!(q.get(), Ok(1));
        putter.join().unwrap().unwrap();
    });
    assert_eq!(q.get_many(5).unwrap(), vec![2, 3]);
}

#[test]
fn each_put_wakes_one_of_several_getters() {
    let q = Queue::new();
    let got = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                q.get().unwrap();
                got.fetch_add(1, Ordering::SeqCst);
            });
        }
        eventually("three getters wait", || q.waiting_getters() == 3);
        q.put(()).unwrap();
        eventually("one getter got an item", || got.load(Ordering::SeqCst) == 1);
        q.put_many([(), ()]).unwrap();
    });
    assert_eq!(got.load(Ordering::SeqCst), 3);
    assert!(q.is_empty());
}

// ----- fairness: hand-off to the longest waiter --------------------------------------------

#[test]
fn an_item_put_while_a_getter_waits_is_handed_to_it_not_to_a_latecomer() {
    let q = Queue::new();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| q.get());
        eventually("the getter waits", || q.waiting_getters() == 1);
        q.put("for the waiter").unwrap();
        // The item is promised to the waiting getter: a thread arriving now cannot take it.
        assert_eq!(q.try_get(), Err(TryGetError::Empty));
        assert_eq!(waiter.join().unwrap(), Ok("for the waiter"));
    });
    assert!(q.is_empty());
}

#[test]
fn a_slot_freed_while_a_putter_waits_is_handed_to_it_not_to_a_latecomer() {
    let q = Queue::bounded(1);
    q.put(1).unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| q.put(2));
        eventually("the putter waits", || q.waiting_putters() == 1);
        assert_eq!(q.get(), Ok(1));
        // The freed slot is promised to the waiting putter.
        assert_eq!(q.try_put(3), Err(TryPutError::Full(3)));
        assert!(q.is_full());
        waiter.join().unwrap().unwrap();
    });
    assert_eq!(q.get(), Ok(2));
}

#[test]
fn waiting_getters_are_served_in_arrival_order() {
    let q = Queue::new();
    let served = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for id in 0..3 {
            let (q, served) = (&q, &served);
            s.spawn(move || {
                q.get().unwrap();
                served.lock().unwrap().push(id);
            });
            // Each getter parks before the next one starts: arrival order is 0, 1, 2.
            eventually("the getter waits", || q.waiting_getters() == id + 1);
        }
        // One item at a time, even with the later getters awake and retrying: each goes to
        // the longest waiter.
        for n in 1..=3 {
            q.put(()).unwrap();
            eventually("a getter was served", || served.lock().unwrap().len() == n);
        }
    });
    assert_eq!(
        served.into_inner().unwrap(),
        vec![0, 1, 2],
        "first come, first served"
    );
}

/// The fairness the lock-free `Queue` keeps (see its docs): under steady load — items
/// arriving while the getters are parked — every getter is served in turn, none starves.
/// Four getters share 400 items, each put made once all four are parked: hand-off to the
/// longest waiter makes it a strict rotation, so each gets exactly its share (whatever
/// the scheduler does, since each put waits for the served getter to park again).
#[test]
fn under_steady_load_no_waiting_getter_starves() {
    const GETTERS: usize = 4;
    const ITEMS: usize = 400;
    let q = Queue::new();
    let counts: Vec<usize> = std::thread::scope(|s| {
        let getters: Vec<_> = (0..GETTERS).map(|_| s.spawn(|| q.iter().count())).collect();
        for i in 0..ITEMS {
            eventually("every getter is parked", || q.waiting_getters() == GETTERS);
            q.put(i).unwrap();
        }
        q.shutdown(false);
        getters.into_iter().map(|g| g.join().unwrap()).collect()
    });
    assert_eq!(counts, vec![ITEMS / GETTERS; GETTERS], "served in turn");
}

#[test]
fn timed_get_is_woken_by_put_before_its_deadline() {
    let q = Queue::new();
    std::thread::scope(|s| {
        let getter = s.spawn(|| q.get_timeout(Duration::from_secs(60)));
        eventually("the getter waits", || q.waiting_getters() == 1);
        let start = Instant::now();
        q.put('x').unwrap();
        assert_eq!(getter.join().unwrap(), Ok('x'));
        assert!(start.elapsed() < PROMPT);
    });
}

// ----- batches ------------------------------------------------------------------------------

#[test]
fn get_many_waits_for_at_least_one_and_never_for_more() {
    let q = Queue::new();
    assert_eq!(q.get_many(0), Ok(vec![]), "n == 0 returns at once");
    assert_eq!(q.try_get_many(3), Err(TryGetError::Empty));
    assert_eq!(
        q.get_many_timeout(3, Duration::from_millis(10)),
        Err(GetTimeoutError::Timeout)
    );
    std::thread::scope(|s| {
        let getter = s.spawn(|| q.get_many(10));
        eventually("the getter waits", || q.waiting_getters() == 1);
        q.put(1).unwrap();
        let got = getter.join().unwrap().unwrap();
        assert_eq!(got, vec![1]);
    });
    q.put_many(0..5).unwrap();
    assert_eq!(q.get_many(3).unwrap(), vec![0, 1, 2]);
    assert_eq!(q.try_get_many(10).unwrap(), vec![3, 4]);
}

#[test]
fn put_many_blocks_while_full_and_keeps_order() {
    let q = Queue::bounded(3);
    std::thread::scope(|s| {
        let producer = s.spawn(|| q.put_many(0..10));
        let mut got = Vec::new();
        while got.len() < 10 {
            got.extend(q.get_many(4).unwrap());
            assert!(q.len() <= 3, "never more than maxsize");
        }
        producer.join().unwrap().unwrap();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    });
    assert_eq!(q.unfinished_tasks(), 10);
}

#[test]
fn put_many_hands_back_the_rest_on_shutdown() {
    let q = Queue::bounded(2);
    std::thread::scope(|s| {
        let producer = s.spawn(|| q.put_many(vec![10, 11, 12, 13, 14]));
        eventually("the producer waits for room", || q.waiting_putters() == 1);
        q.shutdown(false);
        let PutError(rest) = producer.join().unwrap().unwrap_err();
        assert_eq!(rest, vec![12, 13, 14]);
    });
    // The two items put are still there for a graceful drain.
    assert_eq!(q.iter().collect::<Vec<_>>(), vec![10, 11]);
    assert_eq!(q.put_many([1, 2]), Err(PutError(vec![1, 2])));
}

#[test]
fn put_many_may_use_the_queue_in_its_iterator() {
    // The iterator runs outside the queue's lock, so this cannot deadlock.
    let q = Queue::new();
    q.put_many([1, 2]).unwrap();
    let source = q.clone();
    q.put_many(std::iter::from_fn(|| source.try_get().ok().map(|x| x * 10)))
        .unwrap();
    assert_eq!(q.try_iter().collect::<Vec<_>>(), vec![10, 20]);
}

// ----- tasks --------------------------------------------------------------------------------

#[test]
fn task_done_more_than_put_is_an_error() {
    let q = Queue::new();
    assert_eq!(q.task_done(), Err(TaskDoneError));
    q.put(1).unwrap();
    q.get().unwrap();
    q.task_done().unwrap();
    assert_eq!(q.task_done(), Err(TaskDoneError));
    assert_eq!(
        q.unfinished_tasks(),
        0,
        "a failed task_done changes nothing"
    );
}

#[test]
fn join_waits_for_every_task_done() {
    let q = Queue::new();
    q.put_many(0..3).unwrap();
    assert!(!q.join_timeout(Duration::from_millis(20)));
    let done = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let joiner = s.spawn(|| {
            q.join();
            done.load(Ordering::SeqCst)
        });
        for _ in 0..3 {
            q.get().unwrap();
            done.fetch_add(1, Ordering::SeqCst);
            q.task_done().unwrap();
        }
        assert_eq!(
            joiner.join().unwrap(),
            3,
            "join returned before the last task_done"
        );
    });
    assert!(q.join_timeout(Duration::ZERO));
    assert!(q.join_until(Instant::now()));
}

#[test]
fn join_timeout_respects_its_timeout() {
    let q = PriorityQueue::new();
    q.put(1).unwrap();
    let timeout = Duration::from_millis(50);
    let start = Instant::now();
    assert!(!q.join_timeout(timeout));
    let waited = start.elapsed();
    assert!(waited >= timeout && waited < PROMPT, "{waited:?}");
}

// ----- shutdown -----------------------------------------------------------------------------

#[test]
fn put_after_shutdown_hands_the_item_back() {
    let q = Queue::bounded(1);
    assert!(!q.is_shutdown());
    q.shutdown(false);
    assert!(q.is_shutdown());
    assert_eq!(q.put("a"), Err(PutError("a")));
    assert_eq!(q.try_put("b"), Err(TryPutError::ShutDown("b")));
    assert_eq!(
        q.put_timeout("c", Duration::from_secs(1)),
        Err(PutTimeoutError::ShutDown("c"))
    );
    assert_eq!(q.get(), Err(ShutDown));
    assert_eq!(q.try_get(), Err(TryGetError::ShutDown));
    assert_eq!(
        q.get_timeout(Duration::ZERO),
        Err(GetTimeoutError::ShutDown)
    );
    assert_eq!(q.get_many(3), Err(ShutDown));
}

#[test]
fn graceful_shutdown_lets_getters_drain_then_fail() {
    let q = Queue::new();
    q.put_many([1, 2, 3]).unwrap();
    assert!(q.shutdown(false).is_empty());
    assert_eq!(q.len(), 3);
    assert_eq!(q.get(), Ok(1));
    assert_eq!(q.get_many(10), Ok(vec![2, 3]));
    assert_eq!(q.get(), Err(ShutDown));
    assert_eq!(q.unfinished_tasks(), 3, "graceful shutdown settles nothing");
}

#[test]
fn immediate_shutdown_returns_the_items_in_get_order_and_settles_tasks() {
    let fifo = Queue::new();
    fifo.put_many([1, 2, 3]).unwrap();
    assert_eq!(fifo.shutdown(true), vec![1, 2, 3]);
    assert!(fifo.is_empty());
    assert_eq!(fifo.unfinished_tasks(), 0);
    assert_eq!(fifo.task_done(), Err(TaskDoneError));
    fifo.join();

    let lifo = LifoQueue::new();
    lifo.put_many([1, 2, 3]).unwrap();
    assert_eq!(lifo.shutdown(true), vec![3, 2, 1]);

    let prio = PriorityQueue::new();
    prio.put_many([2, 3, 1]).unwrap();
    assert_eq!(prio.shutdown(true), vec![1, 2, 3]);

    let simple = SimpleQueue::new();
    simple.put_many([1, 2]).unwrap();
    assert_eq!(simple.shutdown(true), vec![1, 2]);
    assert_eq!(simple.get(), Err(ShutDown));
}

#[test]
fn graceful_then_immediate_shutdown() {
    let q = Queue::new();
    q.put_many([1, 2]).unwrap();
    assert!(q.shutdown(false).is_empty());
    assert_eq!(q.get(), Ok(1));
    assert_eq!(q.shutdown(true), vec![2]);
    assert!(q.shutdown(false).is_empty());
    assert!(q.is_shutdown());
}

#[test]
fn shutdown_wakes_every_blocked_getter() {
    for immediate in [false, true] {
        let q = Queue::<u8>::new();
        std::thread::scope(|s| {
            let getters: Vec<_> = (0..3).map(|_| s.spawn(|| q.get())).collect();
            let timed = s.spawn(|| q.get_timeout(Duration::from_secs(60)));
            eventually("four getters wait", || q.waiting_getters() == 4);
            let start = Instant::now();
            q.shutdown(immediate);
            for g in getters {
                assert_eq!(g.join().unwrap(), Err(ShutDown));
            }
            assert_eq!(timed.join().unwrap(), Err(GetTimeoutError::ShutDown));
            assert!(start.elapsed() < PROMPT);
        });
        assert_eq!(q.waiting_getters(), 0);
    }
}

#[test]
fn shutdown_wakes_every_blocked_putter_with_its_item() {
    for immediate in [false, true] {
        let q = Queue::bounded(1);
        q.put(0).unwrap();
        std::thread::scope(|s| {
            let q = &q;
            let putters: Vec<_> = (1..=3).map(|i| s.spawn(move || (i, q.put(i)))).collect();
            eventually("three putters wait", || q.waiting_putters() == 3);
            let drained = q.shutdown(immediate);
            assert_eq!(drained, if immediate { vec![0] } else { vec![] });
            for p in putters {
                let (i, result) = p.join().unwrap();
                assert_eq!(
                    result,
                    Err(PutError(i)),
                    "the blocked put hands back its item"
                );
            }
        });
        assert_eq!(q.waiting_putters(), 0);
    }
}

#[test]
fn immediate_shutdown_releases_joiners() {
    let q = Queue::new();
    q.put_many(["a", "b"]).unwrap();
    std::thread::scope(|s| {
        let joiners: Vec<_> = (0..2).map(|_| s.spawn(|| q.join())).collect();
        let timed = s.spawn(|| q.join_timeout(Duration::from_secs(60)));
        // A joiner's wait is not observable; this 20 ms join (which must fail) gives the
        // others time to park. If they have not, the test is weaker, never wrong.
        assert!(!q.join_timeout(Duration::from_millis(20)));
        q.shutdown(true);
        for j in joiners {
            j.join().unwrap();
        }
        assert!(timed.join().unwrap());
    });
}

#[test]
fn immediate_shutdown_join_still_waits_for_items_in_flight() {
    let q = Queue::new();
    q.put_many([1, 2, 3]).unwrap();
    let in_flight = q.get().unwrap();
    assert_eq!(q.shutdown(true), vec![2, 3]);
    assert_eq!(q.unfinished_tasks(), 1, "the item taken is not settled");
    assert!(!q.join_timeout(Duration::from_millis(10)));
    let _ = in_flight;
    q.task_done().unwrap();
    assert!(q.join_timeout(Duration::ZERO));
}

// ----- iteration ----------------------------------------------------------------------------

#[test]
fn iteration_ends_at_shutdown_without_sentinels() {
    let q = Queue::bounded(2);
    let start = Barrier::new(2);
    std::thread::scope(|s| {
        let consumer = s.spawn(|| {
            start.wait();
            (&q).into_iter().collect::<Vec<Option<u8>>>()
        });
        start.wait();
        // Values that would be sentinels in Python are ordinary data here.
        q.put_many([Some(1), None, Some(2)]).unwrap();
        q.shutdown(false);
        assert_eq!(consumer.join().unwrap(), vec![Some(1), None, Some(2)]);
    });
}

#[test]
fn owned_iteration_and_try_iter() {
    let q = LifoQueue::new();
    q.put_many([1, 2, 3]).unwrap();
    assert_eq!(q.try_iter().take(1).collect::<Vec<_>>(), vec![3]);
    let handle = q.clone();
    let consumer = std::thread::spawn(move || handle.into_iter().collect::<Vec<_>>());
    eventually("the consumer drained and waits", || {
        q.waiting_getters() == 1
    });
    q.put(4).unwrap();
    eventually("the consumer took 4 and waits", || {
        q.is_empty() && q.waiting_getters() == 1
    });
    q.shutdown(false);
    assert_eq!(consumer.join().unwrap(), vec![2, 1, 4]);
    assert_eq!(q.try_iter().count(), 0);
    assert_eq!(
        q.iter().next(),
        None,
        "a drained, shut-down queue ends every iterator"
    );
}

// ----- idle cost ----------------------------------------------------------------------------

/// A consumer blocked on an empty queue sleeps: it burns (almost) no CPU while it waits.
#[cfg(target_os = "linux")]
#[test]
fn an_idle_consumer_costs_no_cpu() {
    fn thread_cpu_time() -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        assert_eq!(rc, 0);
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }
    let q = SimpleQueue::new();
    let idle = Duration::from_millis(300);
    std::thread::scope(|s| {
        let consumer = s.spawn(|| {
            let before = thread_cpu_time();
            let item = q.get().unwrap();
            (item, thread_cpu_time() - before)
        });
        eventually("the consumer waits", || q.waiting_getters() == 1);
        // Not synchronisation: this is the idle period being measured.
        std::thread::sleep(idle);
        q.put(1).unwrap();
        let (item, cpu) = consumer.join().unwrap();
        assert_eq!(item, 1);
        assert!(
            cpu < idle / 3,
            "an idle consumer used {cpu:?} of CPU in {idle:?}"
        );
    });
}

#[test]
fn errors_flow_through_question_mark() {
    fn pipeline() -> Result<u32, Box<dyn std::error::Error>> {
        let q = Queue::bounded(1);
        q.put(20)?;
        let err = q.try_put(1).unwrap_err();
        assert!(err.to_string().contains("full"));
        let x = q.get()?;
        q.task_done()?;
        Ok(x + 1)
    }
    assert_eq!(pipeline().unwrap(), 21);
}
