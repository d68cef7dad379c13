//! The behaviours CPython's `Lib/test/test_queue.py` checks, ported (in our own code) to
//! tandem's queues: `Queue`, `LifoQueue`, `PriorityQueue` (one module each, same tests) and
//! `SimpleQueue`, shutdown included.
//!
//! CPython's `_TriggerThread` sleeps 0.1 s to let the main thread block before unblocking
//! it; here the trigger thread instead waits until the main thread is observably blocked
//! (`waiting_putters()` / `waiting_getters()`), then records that it fired before acting.
//! Python sentinels (`None`, `-1`) become shutdowns where the test is about the queue, not
//! the sentinel.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::Duration;

mod common;
use common::eventually;

/// CPython's `do_blocking_test`: runs `block` here; a trigger thread waits until `blocked()`
/// is observed, marks that it fired, then runs `trigger`. `block` must not return before the
/// trigger fired.
fn do_blocking_test<R: Send>(
    block: impl FnOnce() -> R,
    blocked: impl Fn() -> bool + Sync,
    trigger: impl FnOnce() + Send,
) -> R {
    let fired = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            eventually("the blocking call waits", &blocked);
            fired.store(true, Ordering::SeqCst);
            trigger();
        });
        let result = block();
        assert!(
            fired.load(Ordering::SeqCst),
            "blocking function appeared not to block"
        );
        result
    })
}

const QUEUE_SIZE: usize = 5;

macro_rules! base_queue_tests {
    ($module:ident, $Q:ident, $order:expr) => {
        mod $module {
            use super::*;
            use pytandem::queue::{
                $Q, PutTimeoutError, ShutDown, TaskDoneError, TryGetError, TryPutError,
            };

            type Q = $Q<i64>;

            fn qfull(q: &Q) -> bool {
                q.maxsize().is_some_and(|m| q.len() == m)
            }

            /// CPython: `basic_queue_test`, run twice on the same queue (`test_basic`).
            fn basic_queue_test(q: &Q) {
                assert!(q.is_empty());
                assert!(!q.is_full());
                q.put(111).unwrap();
                q.put(333).unwrap();
                q.put(222).unwrap();
                let actual = vec![q.get().unwrap(), q.get().unwrap(), q.get().unwrap()];
                assert_eq!(actual, $order, "didn't seem to queue the correct data");
                for i in 0..QUEUE_SIZE as i64 - 1 {
                    q.put(i).unwrap();
                    assert!(!q.is_empty(), "queue should not be empty");
                }
                assert!(!qfull(q), "queue should not be full");
                let last = 2 * QUEUE_SIZE as i64;
                let full = 3 * 2 * QUEUE_SIZE as i64;
                q.put(last).unwrap();
                assert!(qfull(q), "queue should be full");
                assert!(!q.is_empty());
                assert!(q.is_full());
                assert_eq!(q.try_put(full), Err(TryPutError::Full(full)));
                assert_eq!(
                    q.put_timeout(full, Duration::from_millis(10)),
                    Err(PutTimeoutError::Timeout(full))
                );
                // A blocking put, released by a get.
                do_blocking_test(
                    || q.put(full).unwrap(),
                    || q.waiting_putters() == 1,
                    || {
                        q.get().unwrap();
                    },
                );
                do_blocking_test(
                    || q.put_timeout(full, Duration::from_secs(10)).unwrap(),
                    || q.waiting_putters() == 1,
                    || {
                        q.get().unwrap();
                    },
                );
                for _ in 0..QUEUE_SIZE {
                    q.get().unwrap();
                }
                assert!(q.is_empty(), "queue should be empty");
                assert_eq!(q.try_get(), Err(TryGetError::Empty));
                assert_eq!(
                    q.get_timeout(Duration::from_millis(10)),
                    Err(pytandem::queue::GetTimeoutError::Timeout)
                );
                // A blocking get, released by a put.
                let got = do_blocking_test(
                    || q.get().unwrap(),
                    || q.waiting_getters() == 1,
                    || q.put(-7).unwrap(),
                );
                assert_eq!(got, -7);
                let got = do_blocking_test(
                    || q.get_timeout(Duration::from_secs(10)).unwrap(),
                    || q.waiting_getters() == 1,
                    || q.put(-8).unwrap(),
                );
                assert_eq!(got, -8);
            }

            #[test]
            fn test_basic() {
                let q = Q::bounded(QUEUE_SIZE);
                basic_queue_test(&q);
                basic_queue_test(&q);
            }

            /// CPython: `queue_join_test` — two workers sum items and call task_done; join
            /// waits for all of them; twice on one queue. Workers stop on a shutdown here
            /// instead of `-1` sentinels.
            fn queue_join_test(q: &Q) {
                let cum = Mutex::new(0i64);
                std::thread::scope(|s| {
                    for _ in 0..2 {
                        s.spawn(|| {
                            for x in q {
                                *cum.lock().unwrap() += x;
                                q.task_done().unwrap();
                            }
                        });
                    }
                    for i in 0..100 {
                        q.put(i).unwrap();
                    }
                    q.join();
                    assert_eq!(
                        *cum.lock().unwrap(),
                        (0..100).sum::<i64>(),
                        "join() did not block until all tasks were done"
                    );
                    q.join(); // join twice
                    q.shutdown(false);
                });
            }

            #[test]
            fn test_queue_join() {
                queue_join_test(&Q::new());
                queue_join_test(&Q::new());
                let q = Q::new();
                q.put(1).unwrap();
                q.get().unwrap();
                q.task_done().unwrap();
                assert_eq!(
                    q.task_done(),
                    Err(TaskDoneError),
                    "task count went negative"
                );
            }

            /// The sentinel version too, as CPython writes it: workers stop on `-1`.
            #[test]
            fn test_queue_join_with_sentinels() {
                let q = Q::new();
                let cum = AtomicUsize::new(0);
                std::thread::scope(|s| {
                    for _ in 0..2 {
                        s.spawn(|| loop {
                            let x = q.get().unwrap();
                            if x < 0 {
                                q.task_done().unwrap();
                                return;
                            }
                            cum.fetch_add(x as usize, Ordering::SeqCst);
                            q.task_done().unwrap();
                        });
                    }
                    for i in 0..100 {
                        q.put(i).unwrap();
                    }
                    q.join();
                    assert_eq!(cum.load(Ordering::SeqCst), 4950);
                    q.put(-1).unwrap();
                    q.put(-1).unwrap();
                    q.join();
                });
            }

            #[test]
            fn test_queue_task_done() {
                assert_eq!(Q::new().task_done(), Err(TaskDoneError));
            }

            #[test]
            fn test_nowait() {
                let q = Q::bounded(QUEUE_SIZE);
                for _ in 0..QUEUE_SIZE {
                    q.try_put(1).unwrap();
                }
                assert!(q.try_put(1).unwrap_err().is_full());
                for _ in 0..QUEUE_SIZE {
                    q.try_get().unwrap();
                }
                assert_eq!(q.try_get(), Err(TryGetError::Empty));
            }

            // CPython's test_negative_timeout_raises_exception has no counterpart: a
            // `Duration` cannot be negative. test_shrinking_queue neither: `maxsize` is fixed
            // at construction here.

            #[test]
            fn test_shutdown_empty() {
                let q = Q::new();
                q.shutdown(false);
                assert!(q.put(1).is_err());
                assert_eq!(q.get(), Err(ShutDown));
            }

            #[test]
            fn test_shutdown_nonempty() {
                let q = Q::new();
                q.put(1).unwrap();
                q.shutdown(false);
                q.get().unwrap();
                assert_eq!(q.get(), Err(ShutDown));
            }

            #[test]
            fn test_shutdown_immediate() {
                let q = Q::new();
                q.put(1).unwrap();
                assert_eq!(q.shutdown(true), vec![1]);
                assert_eq!(q.get(), Err(ShutDown));
            }

            #[test]
            fn test_shutdown_allowed_transitions() {
                let q = Q::new();
                assert!(!q.is_shutdown());
                q.shutdown(false);
                assert!(q.is_shutdown());
                q.shutdown(true);
                assert!(q.is_shutdown());
                q.shutdown(false);
                assert!(q.is_shutdown());
            }

            fn shutdown_all_methods_in_one_thread(immediate: bool) {
                let q = Q::bounded(2);
                q.put(1).unwrap();
                q.try_put(2).unwrap();
                q.shutdown(immediate);
                assert!(q.put(3).is_err());
                assert!(q.try_put(4).unwrap_err().is_shutdown());
                if immediate {
                    assert_eq!(q.get(), Err(ShutDown));
                    assert_eq!(q.try_get(), Err(TryGetError::ShutDown));
                    assert_eq!(q.task_done(), Err(TaskDoneError));
                    q.join();
                } else {
                    assert!([1, 2].contains(&q.get().unwrap()));
                    q.task_done().unwrap();
                    assert!([1, 2].contains(&q.get().unwrap()));
                    q.task_done().unwrap();
                    q.join();
                    assert_eq!(q.get(), Err(ShutDown));
                    assert_eq!(q.try_get(), Err(TryGetError::ShutDown));
                    assert!(q
                        .get_timeout(Duration::from_secs(1))
                        .unwrap_err()
                        .is_shutdown());
                }
            }

            #[test]
            fn test_shutdown_all_methods_in_one_thread() {
                shutdown_all_methods_in_one_thread(false);
            }

            #[test]
            fn test_shutdown_immediate_all_methods_in_one_thread() {
                shutdown_all_methods_in_one_thread(true);
            }

            /// CPython: `_shutdown_all_methods_in_many_threads` — 4 writers, 6 readers, (2
            /// joiners when immediate) and one thread shutting down in the middle.
            fn shutdown_all_methods_in_many_threads(immediate: bool) {
                let q = Q::new();
                let write_threads = 4;
                let read_threads = 6;
                let join_threads = if immediate { 2 } else { 0 };
                let nb_msgs = 1024 * 16;
                let nb_msgs_w = nb_msgs / write_threads;
                let when_exec_shutdown = nb_msgs_w / 2;
                let barrier_start = Barrier::new(write_threads + read_threads + join_threads);
                let shutdown_requested = AtomicBool::new(false);
                let res_puts = Mutex::new(Vec::new());
                let res_gets = Mutex::new(Vec::new());
                let res_shutdown = Mutex::new(Vec::new());
                std::thread::scope(|s| {
                    for _ in 0..write_threads {
                        s.spawn(|| {
                            for i in 0..when_exec_shutdown / 2 {
                                q.put(i as i64).unwrap();
                            }
                            barrier_start.wait();
                            for i in when_exec_shutdown / 2..nb_msgs_w {
                                if q.put(i as i64).is_err() {
                                    res_puts.lock().unwrap().push(false);
                                    break;
                                }
                                if i == when_exec_shutdown
                                    && !shutdown_requested.swap(true, Ordering::SeqCst)
                                {
                                    res_puts.lock().unwrap().push(true);
                                }
                            }
                        });
                    }
                    for _ in 0..read_threads {
                        s.spawn(|| {
                            q.get().unwrap();
                            q.task_done().unwrap();
                            barrier_start.wait();
                            loop {
                                match q.try_get() {
                                    Ok(_) => q.task_done().unwrap(),
                                    Err(TryGetError::ShutDown) => {
                                        res_gets.lock().unwrap().push(true);
                                        break;
                                    }
                                    Err(TryGetError::Empty) => std::thread::yield_now(),
                                }
                            }
                        });
                    }
                    s.spawn(|| {
                        eventually("a writer asks for shutdown", || {
                            shutdown_requested.load(Ordering::SeqCst)
                        });
                        q.shutdown(immediate);
                        res_shutdown.lock().unwrap().push(q.is_empty());
                    });
                    for _ in 0..join_threads {
                        s.spawn(|| {
                            barrier_start.wait();
                            q.join();
                        });
                    }
                });
                assert!(res_puts.lock().unwrap().contains(&true));
                assert_eq!(res_gets.lock().unwrap().len(), read_threads);
                if immediate {
                    assert_eq!(*res_shutdown.lock().unwrap(), vec![true]);
                    assert!(q.is_empty());
                }
                // Every reader drained until ShutDown: nothing is left, every task is done.
                assert!(q.is_empty());
                assert_eq!(q.unfinished_tasks(), 0);
            }

            #[test]
            fn test_shutdown_all_methods_in_many_threads() {
                shutdown_all_methods_in_many_threads(false);
            }

            #[test]
            fn test_shutdown_immediate_all_methods_in_many_threads() {
                shutdown_all_methods_in_many_threads(true);
            }

            /// CPython: `_shutdown_get` — getters on a full queue of 2 released by shutdown:
            /// graceful lets two of three get items and the third fails; immediate fails all.
            fn shutdown_get(immediate: bool) {
                let q = Q::bounded(2);
                q.put(1).unwrap();
                q.put(2).unwrap();
                let n = if immediate { 2 } else { 3 };
                let go = Barrier::new(n + 1);
                let results: Vec<bool> = std::thread::scope(|s| {
                    let getters: Vec<_> = (0..n)
                        .map(|_| {
                            s.spawn(|| {
                                go.wait();
                                q.get().is_ok()
                            })
                        })
                        .collect();
                    q.shutdown(immediate);
                    go.wait();
                    getters.into_iter().map(|g| g.join().unwrap()).collect()
                });
                let mut results = results;
                results.sort();
                if immediate {
                    assert_eq!(results, vec![false, false]);
                } else {
                    assert_eq!(results, vec![false, true, true]);
                }
            }

            #[test]
            fn test_shutdown_get() {
                shutdown_get(false);
            }

            #[test]
            fn test_shutdown_immediate_get() {
                shutdown_get(true);
            }

            /// Getters already blocked on an empty queue when it shuts down (CPython's
            /// `test_shutdown_pending_get`, with several getters).
            #[test]
            fn test_shutdown_pending_get() {
                let q = Q::new();
                std::thread::scope(|s| {
                    let getters: Vec<_> = (0..3).map(|_| s.spawn(|| q.get())).collect();
                    eventually("three getters wait", || q.waiting_getters() == 3);
                    q.shutdown(false);
                    for g in getters {
                        assert_eq!(g.join().unwrap(), Err(ShutDown));
                    }
                });
            }

            /// CPython: `_shutdown_put` — putters blocked on a full queue fail with ShutDown.
            fn shutdown_put(immediate: bool) {
                let q = Q::bounded(2);
                q.put(1).unwrap();
                q.put(2).unwrap();
                std::thread::scope(|s| {
                    let q = &q;
                    let putters: Vec<_> = [3, 4]
                        .into_iter()
                        .map(|x| s.spawn(move || q.put(x)))
                        .collect();
                    eventually("two putters wait", || q.waiting_putters() == 2);
                    q.shutdown(immediate);
                    for p in putters {
                        assert!(p.join().unwrap().is_err());
                    }
                });
            }

            #[test]
            fn test_shutdown_put() {
                shutdown_put(false);
            }

            #[test]
            fn test_shutdown_immediate_put() {
                shutdown_put(true);
            }

            /// CPython: `_shutdown_join` — joiners released by an immediate shutdown, or (when
            /// graceful) by a consumer that drains and calls task_done.
            fn shutdown_join(immediate: bool) {
                let q = Q::new();
                q.put(1).unwrap();
                std::thread::scope(|s| {
                    let joiners: Vec<_> = (0..2).map(|_| s.spawn(|| q.join())).collect();
                    if !immediate {
                        s.spawn(|| {
                            q.get().unwrap();
                            q.task_done().unwrap();
                        });
                    }
                    q.shutdown(immediate);
                    for j in joiners {
                        j.join().unwrap();
                    }
                });
                assert_eq!(q.unfinished_tasks(), 0);
            }

            #[test]
            fn test_shutdown_join() {
                shutdown_join(false);
            }

            #[test]
            fn test_shutdown_immediate_join() {
                shutdown_join(true);
            }

            /// CPython: `_shutdown_put_join`.
            fn shutdown_put_join(immediate: bool) {
                let q = Q::bounded(2);
                q.put(1).unwrap();
                let go = Barrier::new(2);
                std::thread::scope(|s| {
                    let putter = s.spawn(|| {
                        go.wait();
                        q.put(2)
                    });
                    let joiner = s.spawn(|| q.join());
                    assert_eq!(q.unfinished_tasks(), 1);
                    q.shutdown(immediate);
                    go.wait();
                    if immediate {
                        assert_eq!(q.try_get(), Err(TryGetError::ShutDown));
                    } else {
                        assert_eq!(q.get(), Ok(1));
                        q.task_done().unwrap();
                    }
                    assert!(putter.join().unwrap().is_err());
                    joiner.join().unwrap();
                });
            }

            #[test]
            fn test_shutdown_put_join() {
                shutdown_put_join(false);
            }

            #[test]
            fn test_shutdown_immediate_put_join() {
                shutdown_put_join(true);
            }

            /// CPython: `test_shutdown_get_task_done_join`.
            #[test]
            fn test_shutdown_get_task_done_join() {
                let q = Q::bounded(2);
                q.put(1).unwrap();
                q.put(2).unwrap();
                assert_eq!(q.unfinished_tasks(), q.len());
                let go = Barrier::new(3);
                std::thread::scope(|s| {
                    let workers: Vec<_> = (0..2)
                        .map(|_| {
                            s.spawn(|| {
                                go.wait();
                                q.get().unwrap();
                                q.task_done().unwrap();
                            })
                        })
                        .collect();
                    let joiners: Vec<_> = (0..2).map(|_| s.spawn(|| q.join())).collect();
                    go.wait();
                    q.shutdown(false);
                    for t in workers {
                        t.join().unwrap();
                    }
                    for t in joiners {
                        t.join().unwrap();
                    }
                });
            }
        }
    };
}

base_queue_tests!(fifo, Queue, vec![111, 333, 222]);
base_queue_tests!(lifo, LifoQueue, vec![222, 333, 111]);
base_queue_tests!(priority, PriorityQueue, vec![111, 222, 333]);

/// CPython's `BaseSimpleQueueTest`, for `SimpleQueue`, with shutdown instead of sentinels.
mod simple {
    use super::*;
    use pytandem::queue::{GetTimeoutError, SimpleQueue, TryGetError};

    #[test]
    fn test_basic() {
        let q = SimpleQueue::new();
        assert!(q.is_empty());
        assert_eq!(q.len(), 0);
        q.put(1).unwrap();
        assert!(!q.is_empty());
        assert_eq!(q.len(), 1);
        q.put(2).unwrap();
        q.put(3).unwrap();
        q.put(4).unwrap();
        assert_eq!(q.len(), 4);
        assert_eq!(q.get(), Ok(1));
        assert_eq!(q.len(), 3);
        assert_eq!(q.try_get(), Ok(2));
        assert_eq!(q.len(), 2);
        assert_eq!(q.try_get(), Ok(3));
        assert_eq!(q.len(), 1);
        assert_eq!(q.get_timeout(Duration::from_millis(100)), Ok(4));
        assert!(q.is_empty());
        assert_eq!(q.try_get(), Err(TryGetError::Empty));
        assert_eq!(
            q.get_timeout(Duration::from_millis(1)),
            Err(GetTimeoutError::Timeout)
        );
        assert!(q.is_empty());
    }

    #[derive(Clone, Copy)]
    enum Consume {
        Blocking,
        NonBlocking,
        Timeout,
    }

    /// CPython's `run_threads`: `n` feeders share one input list; `n` consumers collect.
    /// Feeding ends with a graceful shutdown once every feeder is done.
    fn run_threads(n: usize, inputs: &[u32], consume: Consume) -> Vec<u32> {
        let q = SimpleQueue::new();
        let seq = Mutex::new(inputs.iter().rev().copied().collect::<Vec<_>>());
        let results = Mutex::new(Vec::new());
        let feeders_left = AtomicUsize::new(n);
        std::thread::scope(|s| {
            for _ in 0..n {
                s.spawn(|| {
                    loop {
                        let next = seq.lock().unwrap().pop();
                        match next {
                            Some(v) => q.put(v).unwrap(),
                            None => break,
                        }
                    }
                    if feeders_left.fetch_sub(1, Ordering::SeqCst) == 1 {
                        q.shutdown(false);
                    }
                });
            }
            for _ in 0..n {
                s.spawn(|| loop {
                    let got = match consume {
                        Consume::Blocking => q.get().ok(),
                        Consume::NonBlocking => loop {
                            match q.try_get() {
                                Ok(v) => break Some(v),
                                Err(TryGetError::ShutDown) => break None,
                                Err(TryGetError::Empty) => std::thread::yield_now(),
                            }
                        },
                        Consume::Timeout => loop {
                            match q.get_timeout(Duration::from_micros(10)) {
                                Ok(v) => break Some(v),
                                Err(GetTimeoutError::ShutDown) => break None,
                                Err(GetTimeoutError::Timeout) => {}
                            }
                        },
                    };
                    match got {
                        Some(v) => results.lock().unwrap().push(v),
                        None => break,
                    }
                });
            }
        });
        assert!(q.is_empty());
        assert_eq!(q.len(), 0);
        results.into_inner().unwrap()
    }

    #[test]
    fn test_order() {
        let inputs: Vec<u32> = (0..100).collect();
        assert_eq!(run_threads(1, &inputs, Consume::Blocking), inputs);
    }

    #[test]
    fn test_many_threads() {
        let inputs: Vec<u32> = (0..10_000).collect();
        let mut results = run_threads(16, &inputs, Consume::Blocking);
        results.sort();
        assert_eq!(results, inputs);
    }

    #[test]
    fn test_many_threads_nonblock() {
        let inputs: Vec<u32> = (0..10_000).collect();
        let mut results = run_threads(8, &inputs, Consume::NonBlocking);
        results.sort();
        assert_eq!(results, inputs);
    }

    #[test]
    fn test_many_threads_timeout() {
        let inputs: Vec<u32> = (0..10_000).collect();
        let mut results = run_threads(8, &inputs, Consume::Timeout);
        results.sort();
        assert_eq!(results, inputs);
    }

    /// CPython: `test_references` — items are not kept alive by the queue once got.
    #[test]
    fn test_references() {
        let marker = std::sync::Arc::new(());
        let q = SimpleQueue::new();
        q.put(std::sync::Arc::clone(&marker)).unwrap();
        let got = q.get().unwrap();
        drop(got);
        assert_eq!(std::sync::Arc::strong_count(&marker), 1);
    }

    /// CPython: `test_is_default` has no counterpart (one implementation); the reentrancy
    /// test neither (Rust has no `__del__` re-entering `put`).
    #[test]
    fn test_shutdown_wakes_pending_get() {
        let q = SimpleQueue::<u8>::new();
        std::thread::scope(|s| {
            let g = s.spawn(|| q.get());
            eventually("the getter waits", || q.waiting_getters() == 1);
            q.shutdown(false);
            assert!(g.join().unwrap().is_err());
        });
    }
}

/// Items stay in their queue's order under a single producer and single consumer even
/// when both block (CPython's `test_order`, for the bounded types).
#[test]
fn single_producer_single_consumer_order_bounded() {
    use pytandem::queue::{LifoQueue, Queue};
    let q = Queue::bounded(3);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..1000 {
                q.put(i).unwrap();
            }
            q.shutdown(false);
        });
        assert_eq!(q.iter().collect::<Vec<_>>(), (0..1000).collect::<Vec<_>>());
    });
    // A LIFO drained after the producer is done comes out reversed.
    let l = LifoQueue::new();
    l.put_many(0..10).unwrap();
    l.shutdown(false);
    assert_eq!(
        l.iter().collect::<Vec<_>>(),
        (0..10).rev().collect::<Vec<_>>()
    );
}
