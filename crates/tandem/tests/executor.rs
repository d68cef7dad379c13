//! `ThreadPoolExecutor` and `Task`: the behaviours CPython's
//! `Lib/test/test_concurrent_futures/` checks for the thread executor, futures, `wait`,
//! `as_completed`, `map` and shutdown (test_future.py, test_thread_pool.py, executor.py,
//! test_wait.py, test_as_completed.py, test_shutdown.py, test_init.py), ported with
//! handshakes instead of sleeps, plus tandem's own features (scopes, stats, async, typed
//! errors).

use std::collections::HashSet;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use pytandem::executor::{
    as_completed, wait, BuildError, MapOptions, ReturnWhen, SubmitError, Task, TaskError,
    ThreadPoolExecutor, TimeoutError, Waitable,
};

mod common;
use common::eventually;

// ----- helpers ------------------------------------------------------------------------------

/// A one-shot gate tasks can block on until the test opens it (test-side only).
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
    waiting: AtomicUsize,
}

impl Gate {
    fn new() -> Arc<Gate> {
        Arc::new(Gate::default())
    }

    fn wait(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
        drop(open);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }

    fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

fn pool(workers: usize) -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(workers)
        .build()
        .unwrap()
}

/// Submits a task that blocks on `gate` and waits until it is running.
fn blocked_task(pool: &ThreadPoolExecutor, gate: &Arc<Gate>) -> Task<&'static str> {
    let before = gate.waiting();
    let g = Arc::clone(gate);
    let task = pool
        .submit(move || {
            g.wait();
            "released"
        })
        .unwrap();
    eventually("the blocking task runs", || gate.waiting() > before);
    task
}

/// A minimal `block_on`: polls `fut`, sleeping on a channel until its waker is called.
fn block_on<F: Future>(fut: F) -> F::Output {
    struct ChannelWaker(Mutex<mpsc::Sender<()>>);
    impl Wake for ChannelWaker {
        fn wake(self: Arc<Self>) {
            let _ = self.0.lock().unwrap().send(());
        }
    }
    let (tx, rx) = mpsc::channel();
    let waker = Waker::from(Arc::new(ChannelWaker(Mutex::new(tx))));
    let mut cx = Context::from_waker(&waker);
    let mut fut = Box::pin(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        rx.recv_timeout(Duration::from_secs(20))
            .expect("the waker is called when the task completes");
    }
}

// ----- types --------------------------------------------------------------------------------

#[test]
fn auto_traits() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ThreadPoolExecutor>();
    send_sync::<Task<u32>>();
    send_sync::<Task<Vec<String>, std::io::Error>>();
    send_sync::<TaskError<String>>();
    send_sync::<SubmitError>();
    fn send<T: Send>() {}
    // A Task whose value is Send but not Sync can move, not be shared.
    send::<Task<std::cell::Cell<u8>>>();
    assert_eq!(std::mem::size_of::<Task<u64>>(), 16);
}

#[test]
fn task_overhead_is_at_most_64_bytes() {
    let x = 5u64;
    assert!(pytandem::executor::task_overhead(&|| 1u64) <= 64);
    assert!(pytandem::executor::task_overhead(&move || x + 1) <= 64);
    assert!(pytandem::executor::task_overhead(&|| [0u8; 4096]) <= 64);
}

// ----- futures (test_future.py) -------------------------------------------------------------

#[test]
fn result_of_finished_task() {
    let pool = pool(2);
    let t = pool.submit(|| 42).unwrap();
    assert_eq!(t.result(), Ok(42));
}

#[test]
fn states_pending_running_finished() {
    let pool = pool(1);
    let gate = Gate::new();
    let running = blocked_task(&pool, &gate);
    let pending = pool.submit(|| 1).unwrap();
    assert!(running.is_running() && !running.is_done() && !running.is_cancelled());
    assert!(!pending.is_running() && !pending.is_done() && !pending.is_cancelled());
    assert_eq!(format!("{running:?}"), r#"Task { state: "running" }"#);
    assert_eq!(format!("{pending:?}"), r#"Task { state: "pending" }"#);
    gate.open();
    running.wait();
    pending.wait();
    assert!(running.is_done() && !running.is_running());
    assert_eq!(format!("{pending:?}"), r#"Task { state: "done" }"#);
    assert_eq!(running.result(), Ok("released"));
}

#[test]
fn cancel_pending_running_finished() {
    let pool = pool(1);
    let gate = Gate::new();
    let running = blocked_task(&pool, &gate);
    let pending = pool.submit(|| 1).unwrap();
    assert!(pending.cancel(), "a pending task can be cancelled");
    assert!(pending.is_cancelled() && pending.is_done());
    assert!(pending.cancel(), "cancelling again still says true");
    assert_eq!(format!("{pending:?}"), r#"Task { state: "cancelled" }"#);
    assert!(!running.cancel(), "a running task cannot be cancelled");
    assert!(!running.is_cancelled());
    gate.open();
    running.wait();
    assert!(!running.cancel(), "a finished task cannot be cancelled");
    assert_eq!(pending.result(), Err(TaskError::Cancelled));
    assert_eq!(running.result(), Ok("released"));
}

#[test]
fn cancelled_task_never_runs() {
    let pool = pool(1);
    let gate = Gate::new();
    let running = blocked_task(&pool, &gate);
    let ran = Arc::new(AtomicBool::new(false));
    let r = Arc::clone(&ran);
    let pending = pool
        .submit(move || r.store(true, Ordering::SeqCst))
        .unwrap();
    assert!(pending.cancel());
    gate.open();
    running.result().unwrap();
    // A task queued after the cancelled one has run, so the worker passed it.
    pool.submit(|| ()).unwrap().result().unwrap();
    assert!(!ran.load(Ordering::SeqCst));
    eventually("the pool counts the cancelled task", || {
        pool.stats().tasks_cancelled == 1
    });
}

#[test]
fn result_timeout_pending_then_done() {
    let pool = pool(1);
    let gate = Gate::new();
    let task = blocked_task(&pool, &gate);
    let start = Instant::now();
    assert_eq!(
        task.result_timeout(Duration::from_millis(50)),
        Err(TaskError::Timeout)
    );
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(50), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(task.result_timeout(Duration::ZERO), Err(TaskError::Timeout));
    gate.open();
    assert_eq!(task.result_timeout(Duration::MAX), Ok("released"));
}

/// Python's `future.result()` may be called any number of times, by several threads, with
/// or without a timeout: the value stays in the task (a timed read used to move it out, and
/// a later `result()` panicked "already taken").
#[test]
fn result_can_be_read_any_number_of_times() {
    let pool = pool(1);
    let task = pool.submit(|| String::from("done")).unwrap();
    assert_eq!(
        task.result_timeout(Duration::from_secs(30)).as_deref(),
        Ok("done")
    );
    assert_eq!(
        task.result_timeout(Duration::from_secs(30)).as_deref(),
        Ok("done")
    );
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..3)
            .map(|_| s.spawn(|| task.result_ref().cloned()))
            .collect();
        for r in readers {
            assert_eq!(r.join().unwrap().as_deref(), Ok("done"));
        }
    });
    assert_eq!(
        task.result_ref_timeout(Duration::ZERO).map(|r| r.cloned()),
        Ok(Ok(String::from("done")))
    );
    assert_eq!(task.result().as_deref(), Ok("done"));
}

#[test]
fn result_wakes_on_completion_from_another_thread() {
    // Python: test_result_with_success — a waiter blocked in result() gets the value.
    let pool = pool(1);
    let gate = Gate::new();
    let task = blocked_task(&pool, &gate);
    std::thread::scope(|s| {
        let waiter = s.spawn(move || task.result());
        gate.open();
        assert_eq!(waiter.join().unwrap(), Ok("released"));
    });
}

#[test]
fn result_wakes_on_cancellation() {
    // Python: test_result_with_cancel — a waiter blocked on a pending task is woken by its
    // cancellation.
    let pool = pool(1);
    let gate = Gate::new();
    let running = blocked_task(&pool, &gate);
    let pending = Arc::new(pool.submit(|| 5).unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        let p = Arc::clone(&pending);
        s.spawn(move || {
            tx.send(()).unwrap();
            p.wait();
            assert!(p.is_cancelled());
        });
        rx.recv().unwrap();
        assert!(pending.cancel());
    });
    gate.open();
    running.result().unwrap();
}

#[test]
fn panic_becomes_error_and_worker_survives() {
    let pool = pool(1);
    let t = pool.submit(|| -> u8 { panic!("kaboom {}", 7) }).unwrap();
    let thread_of_panic = pool.submit(|| std::thread::current().id()).unwrap();
    assert_eq!(t.result(), Err(TaskError::Panicked("kaboom 7".into())));
    let next = pool.submit(|| std::thread::current().id()).unwrap();
    assert_eq!(thread_of_panic.result(), next.result(), "same worker");
    let stats = pool.stats();
    assert_eq!(stats.tasks_failed, 1);
    assert_eq!(stats.tasks_completed, 2);
    assert_eq!(stats.workers_alive, 1);
}

#[test]
fn fallible_task_error_comes_back() {
    let pool = pool(2);
    let ok = pool.submit_fallible(|| "7".parse::<u32>()).unwrap();
    let bad = pool.submit_fallible(|| "seven".parse::<u32>()).unwrap();
    assert_eq!(ok.result(), Ok(7));
    let err = bad.result().unwrap_err();
    assert!(matches!(err, TaskError::Failed(_)));
    assert!(err.to_string().contains("invalid digit"), "{err}");
}

#[test]
fn error_of_task() {
    // Python: test_exception_with_timeout / test_exception_with_success.
    let pool = pool(1);
    let ok = pool.submit(|| 1).unwrap();
    let bad = pool.submit_fallible(|| Err::<u8, _>("no")).unwrap();
    assert_eq!(ok.error(), None);
    assert_eq!(bad.error(), Some(&TaskError::Failed("no")));
    assert_eq!(bad.error(), Some(&TaskError::Failed("no")), "repeatable");
    let gate = Gate::new();
    let blocked = blocked_task(&pool, &gate);
    assert_eq!(
        blocked.error_timeout(Duration::from_millis(10)),
        Err(TimeoutError)
    );
    gate.open();
    assert_eq!(blocked.error_timeout(Duration::from_secs(20)), Ok(None));
    assert_eq!(bad.result(), Err(TaskError::Failed("no")));
}

#[test]
fn wait_timeout_on_task() {
    let pool = pool(1);
    let gate = Gate::new();
    let t = blocked_task(&pool, &gate);
    let start = Instant::now();
    assert!(!t.wait_timeout(Duration::from_millis(30)));
    assert!(start.elapsed() >= Duration::from_millis(30));
    gate.open();
    assert!(t.wait_timeout(Duration::from_secs(20)));
    assert!(t.is_done());
}

#[test]
fn done_callbacks() {
    // Python: test_done_callback_with_result / _exception / _cancel / already_*.
    let pool = pool(1);
    let gate = Gate::new();
    let running = blocked_task(&pool, &gate);
    let (tx, rx) = mpsc::channel::<String>();

    let ok = pool.submit(|| 10).unwrap();
    let t = tx.clone();
    ok.add_done_callback(move |o| t.send(format!("ok {o:?}")).unwrap());
    let bad = pool.submit(|| -> i32 { panic!("bad") }).unwrap();
    let t = tx.clone();
    bad.add_done_callback(move |o| t.send(format!("bad {o:?}")).unwrap());
    let cancelled = pool.submit(|| 0).unwrap();
    let t = tx.clone();
    cancelled.add_done_callback(move |o| t.send(format!("cancelled {o:?}")).unwrap());

    assert!(rx.try_recv().is_err(), "nothing is done yet");
    assert!(cancelled.cancel());
    assert_eq!(rx.try_recv().unwrap(), "cancelled Err(Cancelled)");
    gate.open();
    assert_eq!(rx.recv().unwrap(), "ok Ok(10)");
    assert_eq!(rx.recv().unwrap(), r#"bad Err(Panicked("bad"))"#);

    // Already done: the callback runs at once, on this thread.
    let here = std::thread::current().id();
    let t = tx.clone();
    ok.add_done_callback(move |o| {
        assert_eq!(std::thread::current().id(), here);
        t.send(format!("late {o:?}")).unwrap();
    });
    assert_eq!(rx.try_recv().unwrap(), "late Ok(10)");
    running.result().unwrap();
}

#[test]
fn done_callbacks_run_in_order_before_result_returns() {
    let pool = pool(1);
    let gate = Gate::new();
    let task = {
        let g = Arc::clone(&gate);
        pool.submit(move || g.wait()).unwrap()
    };
    let order = Arc::new(Mutex::new(Vec::new()));
    for i in 0..5 {
        let o = Arc::clone(&order);
        task.add_done_callback(move |_| o.lock().unwrap().push(i));
    }
    gate.open();
    task.result().unwrap();
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
}

#[test]
fn panicking_callback_is_contained() {
    // Python: test_done_callback_raises — the error is logged, other callbacks still run.
    let pool = pool(1);
    let gate = Gate::new();
    let task = {
        let g = Arc::clone(&gate);
        pool.submit(move || {
            g.wait();
            3
        })
        .unwrap()
    };
    let after = Arc::new(AtomicBool::new(false));
    task.add_done_callback(|_| panic!("callback bug"));
    let a = Arc::clone(&after);
    task.add_done_callback(move |_| a.store(true, Ordering::SeqCst));
    gate.open();
    assert_eq!(task.result(), Ok(3));
    assert!(after.load(Ordering::SeqCst));
    // The worker survived.
    assert_eq!(pool.submit(|| 4).unwrap().result(), Ok(4));
    // A callback panicking when run at once does not unwind into the caller either.
    let done = pool.submit(|| 5).unwrap();
    done.wait();
    done.add_done_callback(|_| panic!("late callback bug"));
    assert_eq!(done.result(), Ok(5));
}

#[test]
fn task_is_awaitable_without_a_runtime() {
    let pool = pool(2);
    let gate = Gate::new();
    let slow = {
        let g = Arc::clone(&gate);
        pool.submit(move || {
            g.wait();
            "slow"
        })
        .unwrap()
    };
    let fast = pool.submit(|| 1 + 1).unwrap();
    assert_eq!(block_on(fast), Ok(2));
    let opener = {
        let gate = Arc::clone(&gate);
        std::thread::spawn(move || {
            eventually("the slow task blocks", || gate.waiting() == 1);
            gate.open();
        })
    };
    assert_eq!(block_on(slow), Ok("slow"));
    opener.join().unwrap();
    let bad = pool.submit(|| -> u8 { panic!("async boom") }).unwrap();
    assert_eq!(
        block_on(async move { bad.await.map(|v| v + 1) }),
        Err(TaskError::Panicked("async boom".into()))
    );
}

#[test]
fn dropping_a_task_detaches_it() {
    let pool = pool(1);
    let (tx, rx) = mpsc::channel();
    drop(pool.submit(move || tx.send(9).unwrap()).unwrap());
    assert_eq!(rx.recv_timeout(Duration::from_secs(20)), Ok(9));
}

#[test]
fn closure_and_result_are_freed() {
    // Python: test_free_reference / test_no_stale_references.
    let pool = pool(1);
    let captured = Arc::new(());
    let c = Arc::clone(&captured);
    let task = pool.submit(move || drop(c)).unwrap();
    task.result().unwrap();
    assert_eq!(Arc::strong_count(&captured), 1, "the closure was dropped");
    let value = Arc::new(());
    let v = Arc::clone(&value);
    let task = pool.submit(move || v).unwrap();
    task.wait();
    drop(task);
    eventually("the result is freed with its task", || {
        Arc::strong_count(&value) == 1
    });
    let cancelled_capture = Arc::new(());
    let gate = Gate::new();
    let blocked = blocked_task(&pool, &gate);
    let c = Arc::clone(&cancelled_capture);
    let task = pool.submit(move || drop(c)).unwrap();
    assert!(task.cancel());
    assert_eq!(
        Arc::strong_count(&cancelled_capture),
        1,
        "cancel drops the closure at once"
    );
    gate.open();
    blocked.result().unwrap();
}

#[test]
fn a_result_whose_drop_panics_does_not_kill_the_worker() {
    struct Grenade;
    impl Drop for Grenade {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("grenade dropped");
            }
        }
    }
    let pool = pool(1);
    let (tx, rx) = mpsc::channel::<()>();
    let task = pool
        .submit(move || {
            rx.recv().unwrap();
            Grenade
        })
        .unwrap();
    drop(task); // the worker will free the result
    tx.send(()).unwrap();
    let next = pool
        .submit(|| 1)
        .unwrap()
        .result_timeout(Duration::from_secs(20));
    if next.is_err() {
        std::mem::forget(pool); // its only worker died: dropping it would wait forever
        panic!("the worker died with the result's destructor");
    }
    assert_eq!(next, Ok(1), "the worker lives on");
    pool.shutdown(true, false);
    assert_eq!(pool.stats().workers_alive, 0);
}

// ----- the pool (test_thread_pool.py, executor.py) --------------------------------------------

#[test]
fn max_workers_zero_is_an_error() {
    assert_eq!(
        ThreadPoolExecutor::builder().max_workers(0).build().err(),
        Some(BuildError::ZeroWorkers)
    );
}

#[test]
fn default_max_workers() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(ThreadPoolExecutor::new().max_workers(), 32.min(cpus + 4));
}

#[test]
fn workers_start_lazily_and_idle_ones_are_reused() {
    // Python: test_idle_thread_reuse.
    let pool = pool(4);
    assert_eq!(
        pool.stats().workers_alive,
        0,
        "no worker before the first task"
    );
    for i in 0..20 {
        assert_eq!(pool.submit(move || i * 2).unwrap().result(), Ok(i * 2));
    }
    assert_eq!(pool.stats().workers_alive, 1, "one idle worker was reused");
}

#[test]
fn saturation_starts_max_workers_and_no_more() {
    // Python: test_saturation.
    let pool = pool(4);
    let gate = Gate::new();
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let g = Arc::clone(&gate);
            pool.submit(move || g.wait()).unwrap()
        })
        .collect();
    eventually("4 tasks block", || gate.waiting() == 4);
    let stats = pool.stats();
    assert_eq!(stats.workers_alive, 4);
    assert_eq!(stats.tasks_running, 4);
    assert_eq!(stats.tasks_queued, 36);
    assert_eq!(stats.workers_idle, 0);
    gate.open();
    for t in tasks {
        t.result().unwrap();
    }
    let stats = pool.stats();
    assert_eq!(stats.workers_alive, 4);
    assert_eq!(stats.tasks_completed, 40);
    assert_eq!(stats.tasks_queued, 0);
}

#[test]
fn tasks_start_in_submission_order() {
    let pool = pool(1);
    let order = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let o = Arc::clone(&order);
            pool.submit(move || o.lock().unwrap().push(i)).unwrap()
        })
        .collect();
    for t in tasks {
        t.result().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..100).collect::<Vec<_>>());
}

#[test]
fn thread_names() {
    let named = ThreadPoolExecutor::builder()
        .max_workers(2)
        .thread_name_prefix("downloader")
        .build()
        .unwrap();
    let name = named
        .submit(|| std::thread::current().name().map(str::to_owned))
        .unwrap()
        .result()
        .unwrap()
        .unwrap();
    assert_eq!(name, "downloader_0");
    let default = pool(1);
    let name = default
        .submit(|| std::thread::current().name().map(str::to_owned))
        .unwrap()
        .result()
        .unwrap()
        .unwrap();
    assert!(
        name.starts_with("ThreadPoolExecutor-") && name.ends_with("_0"),
        "{name}"
    );
}

#[test]
fn initializer_runs_once_per_worker_before_tasks() {
    // Python: test_init.py InitializerMixin.
    thread_local!(static INITIALIZED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    let inits = Arc::new(AtomicUsize::new(0));
    let i = Arc::clone(&inits);
    let pool = ThreadPoolExecutor::builder()
        .max_workers(3)
        .initializer(move || {
            INITIALIZED.with(|c| c.set(true));
            i.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let gate = Gate::new();
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let g = Arc::clone(&gate);
            pool.submit(move || {
                g.wait();
                INITIALIZED.with(|c| c.get())
            })
            .unwrap()
        })
        .collect();
    eventually("3 workers block", || gate.waiting() == 3);
    gate.open();
    for t in tasks {
        assert_eq!(t.result(), Ok(true));
    }
    assert_eq!(inits.load(Ordering::SeqCst), 3);
}

#[test]
fn failing_initializer_breaks_the_pool() {
    // Python: FailingInitializerMixin — pending futures get BrokenThreadPool, and so does
    // every later submit.
    for panics in [false, true] {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(2)
            .try_initializer(move || {
                if panics {
                    panic!("config missing")
                } else {
                    Err("config missing")
                }
            })
            .build()
            .unwrap();
        let tasks: Vec<_> = (0..10).map(|i| pool.submit(move || i)).collect();
        let mut broken = 0;
        for t in tasks {
            // A submission racing the failure may be refused instead of failed.
            match t {
                Ok(t) => match t.result() {
                    Err(TaskError::BrokenPool(b)) => {
                        assert!(b.message().contains("config missing"), "{b}");
                        broken += 1;
                    }
                    other => panic!("expected a broken pool, got {other:?}"),
                },
                Err(SubmitError::BrokenPool(_)) => broken += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(broken, 10);
        assert!(pool.broken().is_some());
        assert!(matches!(pool.submit(|| 0), Err(SubmitError::BrokenPool(_))));
        assert_eq!(pool.stats().tasks_completed, 0);
    }
}

#[test]
fn initializer_panic_via_plain_initializer() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .initializer(|| panic!("no database"))
        .build()
        .unwrap();
    let t = pool.submit(|| 1);
    match t {
        Ok(t) => assert!(matches!(t.result(), Err(TaskError::BrokenPool(_)))),
        Err(e) => assert!(matches!(e, SubmitError::BrokenPool(_))),
    }
    let err = pool.submit(|| 1).unwrap_err();
    assert!(err.to_string().contains("no database"), "{err}");
}

// ----- shutdown (test_shutdown.py) ----------------------------------------------------------

#[test]
fn submit_after_shutdown_is_an_error() {
    // Python: test_run_after_shutdown.
    let pool = pool(2);
    pool.submit(|| ()).unwrap().result().unwrap();
    pool.shutdown(true, false);
    assert!(pool.is_shutdown());
    assert!(matches!(pool.submit(|| 1), Err(SubmitError::ShutDown)));
    assert!(matches!(
        pool.submit_fallible(|| Ok::<_, ()>(1)),
        Err(SubmitError::ShutDown)
    ));
    pool.shutdown(true, true); // again: harmless
}

#[test]
fn shutdown_wait_runs_queued_tasks_and_joins_workers() {
    // Python: test_threads_terminate / test_context_manager_shutdown.
    let pool = pool(3);
    let done = Arc::new(AtomicUsize::new(0));
    let gate = Gate::new();
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let (g, d) = (Arc::clone(&gate), Arc::clone(&done));
            pool.submit(move || {
                g.wait();
                d.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap()
        })
        .collect();
    eventually("3 workers block", || gate.waiting() == 3);
    let opener = {
        let gate = Arc::clone(&gate);
        std::thread::spawn(move || gate.open())
    };
    pool.shutdown(true, false);
    assert_eq!(
        done.load(Ordering::SeqCst),
        30,
        "queued tasks ran before shutdown returned"
    );
    assert_eq!(pool.stats().workers_alive, 0);
    assert!(tasks.iter().all(|t| t.is_done()));
    opener.join().unwrap();
}

#[test]
fn shutdown_without_wait_returns_at_once_and_work_still_finishes() {
    // Python: test_shutdown_no_wait.
    let pool = pool(2);
    let gate = Gate::new();
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let g = Arc::clone(&gate);
            pool.submit(move || {
                g.wait();
                i
            })
            .unwrap()
        })
        .collect();
    eventually("2 workers block", || gate.waiting() == 2);
    pool.shutdown(false, false);
    assert!(!tasks[5].is_done(), "returned without waiting");
    gate.open();
    let results: Vec<_> = tasks.into_iter().map(|t| t.result().unwrap()).collect();
    assert_eq!(results, [0, 1, 2, 3, 4, 5]);
    eventually("the workers exit", || pool.stats().workers_alive == 0);
}

#[test]
fn shutdown_cancel_futures() {
    // Python: test_cancel_futures / test_cancel_futures_wait_false.
    for wait_for_it in [true, false] {
        let pool = pool(2);
        let gate = Gate::new();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let g = Arc::clone(&gate);
                pool.submit(move || g.wait()).unwrap()
            })
            .collect();
        eventually("2 workers block", || gate.waiting() == 2);
        std::thread::scope(|s| {
            s.spawn(|| {
                eventually("shutdown has cancelled the queue", || {
                    pool.is_shutdown() && pool.stats().tasks_queued == 0
                });
                gate.open()
            });
            pool.shutdown(wait_for_it, true);
        });
        let mut cancelled = 0;
        let mut finished = 0;
        for t in tasks {
            match t.result() {
                Ok(()) => finished += 1,
                Err(TaskError::Cancelled) => cancelled += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(finished, 2, "the running tasks finish");
        assert_eq!(cancelled, 18, "the queued ones are cancelled");
        assert_eq!(pool.stats().tasks_cancelled, 18);
    }
}

#[test]
fn drop_waits_for_running_and_queued_work() {
    // Python: `with ThreadPoolExecutor() as ex:` waits at the end of the block.
    let done = Arc::new(AtomicUsize::new(0));
    let gate = Gate::new();
    {
        let pool = pool(2);
        for _ in 0..10 {
            let (g, d) = (Arc::clone(&gate), Arc::clone(&done));
            drop(
                pool.submit(move || {
                    g.wait();
                    d.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap(),
            );
        }
        eventually("2 workers block", || gate.waiting() == 2);
        let gate = Arc::clone(&gate);
        std::thread::spawn(move || gate.open());
        // `pool` drops here.
    }
    assert_eq!(done.load(Ordering::SeqCst), 10);
}

#[test]
fn shutdown_from_inside_a_task_does_not_deadlock() {
    let pool = Arc::new(pool(1));
    let p = Arc::clone(&pool);
    let t = pool
        .submit(move || {
            p.shutdown(true, false); // a worker cannot wait for itself: returns
            p.is_shutdown()
        })
        .unwrap();
    assert_eq!(t.result(), Ok(true));
    // The last handle dropped inside a task: also fine.
    let pool2 = Arc::new(self::pool(1));
    let p2 = Arc::clone(&pool2);
    let (tx, rx) = mpsc::channel();
    pool2
        .submit(move || {
            rx.recv().unwrap();
            drop(p2);
        })
        .unwrap();
    drop(pool2);
    tx.send(()).unwrap();
}

// ----- map (executor.py ExecutorTest.test_map*) ---------------------------------------------

#[test]
fn map_in_order() {
    let pool = pool(4);
    let out: Vec<_> = pool
        .map(|x: u64| x.pow(2), 0..100)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(out, (0..100u64).map(|x| x * x).collect::<Vec<_>>());
    let chunked: Vec<_> = pool
        .map_with(|x: u64| x + 1, 0..1000, MapOptions::new().chunksize(64))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(chunked, (1..=1000).collect::<Vec<_>>());
    let empty: Vec<_> = pool.map(|x: u8| x, Vec::new()).unwrap().collect();
    assert!(empty.is_empty());
}

#[test]
fn map_submits_every_item_at_the_call() {
    // Python: executor.map submits every item when it is called (it used to be lazy here).
    let pool = pool(2);
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = Arc::clone(&pulled);
    let items = (0..10).inspect(move |_| {
        p.fetch_add(1, Ordering::SeqCst);
    });
    let mut results = pool.map(|x: i32| x, items).unwrap();
    assert_eq!(
        pulled.load(Ordering::SeqCst),
        10,
        "without buffersize, every item at the call"
    );
    assert_eq!(results.next(), Some(Ok(0)));
}

#[test]
fn shutdown_right_after_map_runs_every_item() {
    // Python: with ThreadPoolExecutor() as ex: it = ex.map(f, items) — leaving the block
    // (shutdown(wait=True)) runs every item, and their results can still be read.
    for chunk in [1, 3] {
        let pool = pool(1);
        let results = pool
            .map_with(|x: u32| x * 2, 0..20, MapOptions::new().chunksize(chunk))
            .unwrap();
        pool.shutdown(true, false);
        let out: Vec<_> = results.collect();
        assert_eq!(out, (0..20).map(|x| Ok(x * 2)).collect::<Vec<_>>());
        assert_eq!(pool.stats().tasks_cancelled, 0);
    }
}

#[test]
fn map_panic_fails_only_its_item() {
    // Python: test_map_exception (Python stops at the exception; tandem yields it and goes on).
    for chunk in [1, 4] {
        let pool = pool(2);
        let out: Vec<_> = pool
            .map_with(
                |x: i32| {
                    if x == 5 {
                        panic!("five")
                    }
                    x
                },
                0..10,
                MapOptions::new().chunksize(chunk),
            )
            .unwrap()
            .collect();
        assert_eq!(out.len(), 10);
        assert_eq!(out[5], Err(TaskError::Panicked("five".into())));
        assert_eq!(out[4], Ok(4));
        assert_eq!(out[6], Ok(6));
    }
}

#[test]
fn map_timeout() {
    // Python: test_map_timeout — a result not ready in time raises TimeoutError.
    let pool = pool(2);
    let gate = Gate::new();
    let g = Arc::clone(&gate);
    let start = Instant::now();
    let results: Vec<_> = pool
        .map(
            move |x: i32| {
                if x == 3 {
                    g.wait();
                }
                x
            },
            0..6,
        )
        .unwrap()
        .timeout(Duration::from_millis(100))
        .collect();
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert_eq!(&results[..3], &[Ok(0), Ok(1), Ok(2)]);
    assert_eq!(results[3], Err(TaskError::Timeout));
    assert_eq!(results.len(), 4, "the iteration ends at the timeout");
    gate.open();
}

#[test]
fn map_buffersize_bounds_look_ahead() {
    // Python 3.14: test_map_buffersize_on_infinite_iterable / _value_tracking.
    let pool = pool(2);
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = Arc::clone(&pulled);
    let endless = (0u64..).inspect(move |_| {
        p.fetch_add(1, Ordering::SeqCst);
    });
    let mut results = pool
        .map_with(|x| x * 10, endless, MapOptions::new().buffersize(4))
        .unwrap();
    assert_eq!(
        pulled.load(Ordering::SeqCst),
        4,
        "buffersize tasks submitted at the call"
    );
    assert_eq!(results.next(), Some(Ok(0)));
    assert_eq!(
        pulled.load(Ordering::SeqCst),
        5,
        "one more per result taken"
    );
    let first: Vec<_> = results.by_ref().take(99).map(Result::unwrap).collect();
    assert_eq!(first[98], 990);
    let n = pulled.load(Ordering::SeqCst);
    assert!((100..=105).contains(&n), "pulled {n}");
    drop(results);
    // Chunks count as one task each.
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = Arc::clone(&pulled);
    let endless = (0u64..).inspect(move |_| {
        p.fetch_add(1, Ordering::SeqCst);
    });
    let options = MapOptions::new().buffersize(2).chunksize(8);
    let mut results = pool.map_with(|x| x, endless, options).unwrap();
    assert_eq!(pulled.load(Ordering::SeqCst), 2 * 8);
    assert_eq!(results.next(), Some(Ok(0)));
    assert!(pulled.load(Ordering::SeqCst) <= 3 * 8);
}

#[test]
fn dropping_map_cancels_pending_items() {
    // Python's map generator cancels the remaining futures when it is closed.
    let pool = pool(1);
    let gate = Gate::new();
    let ran = Arc::new(AtomicUsize::new(0));
    let (g, r) = (Arc::clone(&gate), Arc::clone(&ran));
    let mut results = pool
        .map(
            move |x: i32| {
                r.fetch_add(1, Ordering::SeqCst);
                if x == 1 {
                    g.wait();
                }
                x
            },
            0..50,
        )
        .unwrap();
    assert_eq!(results.next(), Some(Ok(0)));
    eventually("item 1 blocks the only worker", || gate.waiting() == 1);
    drop(results);
    gate.open();
    pool.shutdown(true, false);
    assert_eq!(ran.load(Ordering::SeqCst), 2, "items 2.. were cancelled");
    assert_eq!(pool.stats().tasks_cancelled, 48);
}

#[test]
fn map_after_shutdown_fails_at_the_call() {
    // Python: RuntimeError from the map call itself, not item by item, and never Cancelled.
    let pool = pool(1);
    pool.shutdown(true, false);
    assert!(matches!(
        pool.map(|x: i32| x, 0..3),
        Err(SubmitError::ShutDown)
    ));
    let options = MapOptions::new().buffersize(2);
    assert!(matches!(
        pool.map_with(|x: i32| x, 0..3, options),
        Err(SubmitError::ShutDown)
    ));
    assert_eq!(pool.stats().tasks_cancelled, 0);
}

#[test]
fn map_look_ahead_refused_by_shutdown_yields_shut_down_not_cancelled() {
    // A buffersize look-ahead that meets a shutdown: the tasks submitted at the call still
    // run; the first item the pool refused is reported, in order, as refused.
    let pool = pool(1);
    let results = pool
        .map_with(|x: i32| x, 0..5, MapOptions::new().buffersize(2))
        .unwrap();
    pool.shutdown(true, false);
    let out: Vec<_> = results.collect();
    assert_eq!(out, [Ok(0), Ok(1), Err(TaskError::ShutDown)]);
}

#[test]
#[should_panic(expected = "buffersize(0)")]
fn map_buffersize_zero_is_an_error() {
    // Python 3.14: ValueError: buffersize must be None or > 0.
    let _ = MapOptions::new().buffersize(0);
}

// ----- wait (test_wait.py) ------------------------------------------------------------------

#[test]
fn wait_first_completed() {
    let pool = pool(3);
    let gate = Gate::new();
    let slow1 = blocked_task(&pool, &gate);
    let slow2 = blocked_task(&pool, &gate);
    let fast = pool.submit(|| "fast").unwrap();
    let r = wait(
        [&slow1, &slow2, &fast],
        Some(Duration::from_secs(20)),
        ReturnWhen::FirstCompleted,
    );
    assert_eq!(r.done.len(), 1);
    assert!(std::ptr::eq(r.done[0], &fast));
    assert_eq!(r.not_done.len(), 2);
    gate.open();
}

#[test]
fn wait_first_completed_some_already_completed() {
    let pool = pool(2);
    let done = pool.submit(|| "one").unwrap();
    done.wait();
    let cancelled = pool.submit(|| "two").unwrap();
    let gate = Gate::new();
    let slow = blocked_task(&pool, &gate);
    let _ = cancelled.cancel(); // may have run already; either way it is done
    cancelled.wait();
    let r = wait(
        [&done, &cancelled, &slow],
        Some(Duration::ZERO),
        ReturnWhen::FirstCompleted,
    );
    assert_eq!(r.done.len(), 2);
    assert_eq!(r.not_done.len(), 1);
    gate.open();
}

#[test]
fn wait_first_exception() {
    let pool = pool(3);
    let gate = Gate::new();
    let slow = blocked_task(&pool, &gate);
    let ok = pool.submit(|| "ok").unwrap();
    ok.wait();
    let bad = pool
        .submit(|| -> &str { panic!("first exception") })
        .unwrap();
    let r = wait(
        [&slow, &ok, &bad],
        Some(Duration::from_secs(20)),
        ReturnWhen::FirstException,
    );
    assert_eq!(r.done.len(), 2);
    assert_eq!(r.not_done.len(), 1);
    assert!(std::ptr::eq(r.not_done[0], &slow));
    gate.open();
}

#[test]
fn wait_first_exception_ignores_cancelled_and_waits_for_all() {
    let pool = pool(1);
    let gate = Gate::new();
    let slow = blocked_task(&pool, &gate);
    let cancelled = pool.submit(|| "never").unwrap();
    assert!(cancelled.cancel());
    let opener = {
        let gate = Arc::clone(&gate);
        std::thread::spawn(move || gate.open())
    };
    // No failure: FIRST_EXCEPTION waits for every task (the slow one finishes when opened).
    let r = wait(
        [&cancelled, &slow],
        Some(Duration::from_secs(20)),
        ReturnWhen::FirstException,
    );
    assert_eq!(r.done.len(), 2);
    opener.join().unwrap();
}

#[test]
fn wait_first_exception_one_already_failed() {
    let pool = pool(2);
    let failed = pool.submit_fallible(|| Err::<&str, _>("no")).unwrap();
    failed.wait();
    let gate = Gate::new();
    let slow = blocked_task(&pool, &gate);
    let r = wait(
        [&failed as &dyn Waitable, &slow],
        None,
        ReturnWhen::FirstException,
    );
    assert_eq!(r.done.len(), 1);
    assert_eq!(r.not_done.len(), 1);
    gate.open();
}

#[test]
fn wait_all_completed_and_timeout() {
    let pool = pool(2);
    let tasks: Vec<_> = (0..10).map(|i| pool.submit(move || i).unwrap()).collect();
    let r = wait(tasks, None, ReturnWhen::AllCompleted);
    assert_eq!(r.done.len(), 10);
    assert!(r.not_done.is_empty());
    // test_timeout: one slow task; ALL_COMPLETED with a timeout returns it as not done.
    let gate = Gate::new();
    let slow = blocked_task(&pool, &gate);
    let fast = pool.submit(|| "fast").unwrap();
    let start = Instant::now();
    let r = wait(
        [&slow, &fast],
        Some(Duration::from_millis(60)),
        ReturnWhen::AllCompleted,
    );
    assert!(start.elapsed() >= Duration::from_millis(60));
    assert_eq!(r.done.len(), 1);
    assert_eq!(r.not_done.len(), 1);
    assert!(std::ptr::eq(r.not_done[0], &slow));
    gate.open();
    let empty: Vec<Task<u8>> = Vec::new();
    let r = wait(empty, None, ReturnWhen::FirstCompleted);
    assert!(r.done.is_empty() && r.not_done.is_empty());
}

#[test]
fn wait_pending_calls_race() {
    // Python: test_pending_calls_race — many tasks finishing while wait registers.
    let pool = pool(4);
    let tasks: Vec<_> = (0..500).map(|i| pool.submit(move || i).unwrap()).collect();
    let r = wait(&tasks, None, ReturnWhen::AllCompleted);
    assert_eq!(r.done.len(), 500);
}

#[test]
fn wait_across_executors_and_types() {
    let a = pool(1);
    let b = pool(1);
    let gate = Gate::new();
    let slow = blocked_task(&a, &gate);
    let other = b.submit(|| String::from("from b")).unwrap();
    let mixed: Vec<&dyn Waitable> = vec![&slow, &other];
    let r = wait(
        mixed,
        Some(Duration::from_secs(20)),
        ReturnWhen::FirstCompleted,
    );
    assert_eq!(r.done.len(), 1);
    assert!(r.done[0].is_done());
    gate.open();
    let r = wait(
        [&slow as &dyn Waitable, &other],
        None,
        ReturnWhen::AllCompleted,
    );
    assert_eq!(r.done.len(), 2);
}

#[test]
fn repeated_waits_leave_no_registrations() {
    let pool = pool(1);
    let gate = Gate::new();
    let slow = blocked_task(&pool, &gate);
    for _ in 0..1000 {
        let r = wait([&slow], Some(Duration::ZERO), ReturnWhen::FirstCompleted);
        assert_eq!(r.not_done.len(), 1);
    }
    for _ in 0..100 {
        let mut it = as_completed([&slow], Some(Duration::from_micros(1)));
        assert_eq!(it.next().map(|r| r.is_err()), Some(true));
    }
    gate.open();
    slow.result().unwrap();
}

// ----- as_completed (test_as_completed.py) ----------------------------------------------------

#[test]
fn as_completed_yields_in_completion_order() {
    let pool = pool(3);
    let gates: Vec<_> = (0..3).map(|_| Gate::new()).collect();
    let tasks: Vec<_> = gates
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let g = Arc::clone(g);
            (i, pool.submit(move || g.wait()).unwrap())
        })
        .collect();
    eventually("3 tasks block", || gates.iter().all(|g| g.waiting() == 1));
    let mut it = as_completed(tasks, Some(Duration::from_secs(20)));
    for i in [2, 0, 1] {
        gates[i].open();
        let (index, task) = it.next().unwrap().unwrap();
        assert_eq!(index, i);
        assert!(task.is_done());
    }
    assert!(it.next().is_none());
}

#[test]
fn as_completed_no_timeout_with_done_and_pending() {
    // Python: test_no_timeout — finished first, then the rest.
    let pool = pool(2);
    let done = pool.submit(|| "one").unwrap();
    done.wait();
    let gate = Gate::new();
    let slow = blocked_task(&pool, &gate);
    let mut it = as_completed([("done", &done), ("slow", &slow)], None);
    assert_eq!(it.next().unwrap().unwrap().0, "done");
    gate.open();
    assert_eq!(it.next().unwrap().unwrap().0, "slow");
    assert!(it.next().is_none());
}

#[test]
fn as_completed_times_out_with_done_first() {
    // Python: test_future_times_out — yields the finished ones, then raises TimeoutError.
    let pool = pool(2);
    let done = pool.submit(|| "one").unwrap();
    done.wait();
    let gate = Gate::new();
    let slow = blocked_task(&pool, &gate);
    let start = Instant::now();
    let mut it = as_completed(vec![(0, slow), (1, done)], Some(Duration::from_millis(40)));
    assert_eq!(it.next().unwrap().unwrap().0, 1);
    assert_eq!(it.next().unwrap().err(), Some(TimeoutError));
    assert!(start.elapsed() >= Duration::from_millis(40));
    assert!(it.next().is_none(), "ends after the timeout");
    let remaining = it.into_remaining();
    assert_eq!(remaining.len(), 1, "the unfinished task is handed back");
    gate.open();
    let (_, slow) = remaining.into_iter().next().unwrap();
    assert_eq!(slow.result(), Ok("released"));
}

#[test]
fn as_completed_zero_timeout() {
    let pool = pool(1);
    let gate = Gate::new();
    let slow = blocked_task(&pool, &gate);
    let mut it = as_completed([&slow], Some(Duration::ZERO));
    assert_eq!(it.next().unwrap().err(), Some(TimeoutError));
    gate.open();
}

#[test]
fn as_completed_duplicates_yielded_once() {
    // Python: test_duplicate_futures.
    let pool = pool(1);
    let t = pool.submit(|| 1).unwrap();
    let yielded: Vec<_> = as_completed([&t, &t, &t], None).collect();
    assert_eq!(yielded.len(), 1);
}

#[test]
fn as_completed_across_executors() {
    let a = pool(2);
    let b = pool(2);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let p = if i % 2 == 0 { &a } else { &b };
        tasks.push(p.submit(move || i).unwrap());
    }
    let mut values: Vec<i32> = as_completed(tasks, Some(Duration::from_secs(20)))
        .map(|r| r.unwrap().result().unwrap())
        .collect();
    values.sort();
    assert_eq!(values, (0..20).collect::<Vec<_>>());
}

// ----- scopes ---------------------------------------------------------------------------------

#[test]
fn scoped_tasks_borrow_the_stack() {
    let pool = pool(3);
    let mut data = vec![0u64; 1000];
    let total = 7u64;
    pool.scope(|s| {
        for (i, chunk) in data.chunks_mut(100).enumerate() {
            s.submit(move || {
                for x in chunk.iter_mut() {
                    *x = i as u64 + total;
                }
            })
            .unwrap();
        }
    });
    // Every task finished before scope returned.
    for (i, chunk) in data.chunks(100).enumerate() {
        assert!(chunk.iter().all(|&x| x == i as u64 + 7));
    }
    let words = ["alpha", "beta", "gamma"];
    let lens: Vec<usize> = pool.scope(|s| {
        let tasks: Vec<_> = words
            .iter()
            .map(|w| s.submit(move || w.len()).unwrap())
            .collect();
        tasks.into_iter().map(|t| t.result().unwrap()).collect()
    });
    assert_eq!(lens, [5, 4, 5]);
}

#[test]
fn scope_waits_even_when_handles_are_dropped_or_cancelled() {
    let pool = pool(1);
    let counter = AtomicUsize::new(0);
    let gate = Gate::new();
    pool.scope(|s| {
        let g = Arc::clone(&gate);
        let counter = &counter;
        drop(
            s.submit(move || {
                g.wait();
                counter.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap(),
        );
        let cancelled = s
            .submit(|| counter.fetch_add(100, Ordering::SeqCst))
            .unwrap();
        assert!(cancelled.cancel());
        for _ in 0..5 {
            drop(s.submit(|| counter.fetch_add(1, Ordering::SeqCst)).unwrap());
        }
        let gate = Arc::clone(&gate);
        std::thread::spawn(move || {
            eventually("the first task blocks", || gate.waiting() == 1);
            gate.open();
        });
    });
    assert_eq!(counter.load(Ordering::SeqCst), 6);
}

#[test]
fn scope_waits_when_its_closure_panics() {
    let pool = pool(2);
    let finished = AtomicBool::new(false);
    let gate = Gate::new();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.scope(|s| {
            let g = Arc::clone(&gate);
            let finished = &finished;
            s.submit(move || {
                g.wait();
                finished.store(true, Ordering::SeqCst);
            })
            .unwrap();
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || {
                eventually("the task blocks", || gate.waiting() == 1);
                gate.open();
            });
            panic!("scope body fails");
        })
    }));
    assert!(caught.is_err());
    assert!(
        finished.load(Ordering::SeqCst),
        "the task finished before the panic continued"
    );
}

#[test]
fn scoped_submit_after_shutdown_is_refused() {
    let pool = pool(1);
    pool.shutdown(true, false);
    let x = 5;
    pool.scope(|s| {
        assert!(matches!(s.submit(|| x + 1), Err(SubmitError::ShutDown)));
    });
}

#[test]
fn scope_survives_shutdown_cancelling_its_tasks() {
    let pool = pool(1);
    let gate = Gate::new();
    let ran = AtomicUsize::new(0);
    pool.scope(|s| {
        let g = Arc::clone(&gate);
        let first = s.submit(move || g.wait()).unwrap();
        eventually("the first task blocks", || gate.waiting() == 1);
        let queued: Vec<_> = (0..5)
            .map(|_| s.submit(|| ran.fetch_add(1, Ordering::SeqCst)).unwrap())
            .collect();
        pool.shutdown(false, true);
        for t in queued {
            assert_eq!(t.result(), Err(TaskError::Cancelled));
        }
        gate.open();
        first.result().unwrap();
    });
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

// ----- stats -----------------------------------------------------------------------------------

#[test]
fn stats_track_every_task() {
    let pool = pool(2);
    let gate = Gate::new();
    let blocked: Vec<_> = (0..2)
        .map(|_| {
            let g = Arc::clone(&gate);
            pool.submit(move || g.wait()).unwrap()
        })
        .collect();
    eventually("2 tasks block", || gate.waiting() == 2);
    let queued: Vec<_> = (0..3).map(|i| pool.submit(move || i).unwrap()).collect();
    let failing = pool.submit(|| -> u8 { panic!("counted") }).unwrap();
    let cancelled = pool.submit(|| 0).unwrap();
    assert!(cancelled.cancel());
    let s = pool.stats();
    assert_eq!(
        (
            s.workers_alive,
            s.workers_idle,
            s.tasks_running,
            s.tasks_queued
        ),
        (2, 0, 2, 5)
    );
    assert_eq!(
        (s.tasks_completed, s.tasks_failed, s.tasks_cancelled),
        (0, 0, 0)
    );
    gate.open();
    for t in blocked {
        t.result().unwrap();
    }
    for t in queued {
        t.result().unwrap();
    }
    assert!(failing.result().is_err());
    eventually("the pool settles", || {
        let s = pool.stats();
        s.tasks_cancelled == 1 && s.tasks_running == 0
    });
    let s = pool.stats();
    assert_eq!(
        (s.tasks_completed, s.tasks_failed, s.tasks_queued),
        (5, 1, 0)
    );
    assert_eq!((s.workers_alive, s.workers_idle, s.max_workers), (2, 2, 2));
    assert!(format!("{pool:?}").contains("tasks_completed: 5"));
}

// ----- errors -----------------------------------------------------------------------------------

#[test]
fn errors_convert_with_question_mark() {
    fn run(pool: &ThreadPoolExecutor) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
        let t = pool.submit(|| 2)?;
        let u = pool.submit_fallible(|| "3".parse::<u32>())?;
        Ok(t.result()? + u.result()?)
    }
    let pool = pool(2);
    assert_eq!(run(&pool).unwrap(), 5);
    pool.shutdown(true, false);
    let err = run(&pool).unwrap_err();
    assert!(err.to_string().contains("shut down"), "{err}");
}

#[test]
fn many_tasks_from_many_submitters() {
    let pool = Arc::new(pool(4));
    let seen = Arc::new(Mutex::new(HashSet::new()));
    std::thread::scope(|s| {
        for t in 0..4 {
            let pool = Arc::clone(&pool);
            let seen = Arc::clone(&seen);
            s.spawn(move || {
                let tasks: Vec<_> = (0..2000)
                    .map(|i| pool.submit(move || t * 10_000 + i).unwrap())
                    .collect();
                for task in tasks {
                    assert!(seen.lock().unwrap().insert(task.result().unwrap()));
                }
            });
        }
    });
    assert_eq!(seen.lock().unwrap().len(), 8000);
}

#[test]
fn tasks_can_submit_tasks() {
    let pool = Arc::new(pool(2));
    let p = Arc::clone(&pool);
    let outer = pool
        .submit(move || p.submit(|| 21).unwrap().result().unwrap() * 2)
        .unwrap();
    assert_eq!(outer.result(), Ok(42));
}

#[test]
fn polled_pin_is_unpin() {
    fn unpin<T: Unpin>() {}
    unpin::<Task<std::marker::PhantomPinned>>();
    let pool = pool(1);
    let mut t = pool.submit(|| 3).unwrap();
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    t.wait();
    assert_eq!(Pin::new(&mut t).poll(&mut cx), Poll::Ready(Ok(3)));
}

/// `with_max_workers(n)` is Python's `ThreadPoolExecutor(max_workers=n)`; 0 is the caller's
/// mistake (Python's `ValueError`), a panic naming the value.
#[test]
fn with_max_workers_is_the_short_form() {
    let pool = ThreadPoolExecutor::with_max_workers(2);
    assert_eq!(pool.max_workers(), 2);
    assert_eq!(pool.submit(|| 6 * 7).unwrap().result(), Ok(42));
    let panic = std::panic::catch_unwind(|| ThreadPoolExecutor::with_max_workers(0)).unwrap_err();
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(message.contains("with_max_workers(0)"), "{message}");
    assert!(message.contains("at least 1"), "{message}");
}

/// `Scope::map` maps over borrowed input with a borrowing closure, in order; a panicking
/// item fails only its own result.
#[test]
fn scope_map_over_borrowed_items() {
    let pool = ThreadPoolExecutor::with_max_workers(3);
    let items: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    let offset = 100usize;
    let out: Vec<Result<usize, TaskError>> = pool.scope(|s| {
        let results = s
            .map(
                |x: &String| {
                    assert_ne!(x, "7", "seven");
                    x.parse::<usize>().unwrap() + offset
                },
                &items,
            )
            .unwrap();
        assert_eq!(results.len(), 20);
        results.collect()
    });
    for (i, r) in out.iter().enumerate() {
        if i == 7 {
            assert!(matches!(r, Err(e) if e.is_panic()), "{r:?}");
        } else {
            assert_eq!(*r, Ok(i + 100));
        }
    }
}

/// A failed task keeps its panic's payload, not only its message: it can be re-raised as
/// is. The result may be read several times; its copies share the payload: the first to
/// take it gets the original, later ones a `String` of the message.
#[test]
fn a_panicking_task_keeps_its_payload() {
    #[derive(Debug, PartialEq)]
    struct Overheated(u32);

    let pool = ThreadPoolExecutor::with_max_workers(1);
    let task = pool
        .submit(|| -> u32 { std::panic::panic_any(Overheated(97)) })
        .unwrap();
    let first = task.result_timeout(Duration::from_secs(60)).unwrap_err();
    let second = task.result_timeout(Duration::from_secs(60)).unwrap_err();
    assert_eq!(first, second, "copies compare by message");
    assert!(
        first.panic_message().unwrap().contains("not a string"),
        "{first}"
    );
    let panic = first.into_panic().expect("a panic");
    assert!(panic.has_payload());
    let caught = std::panic::catch_unwind(AssertUnwindSafe(|| panic.resume_unwind())).unwrap_err();
    assert_eq!(caught.downcast_ref::<Overheated>(), Some(&Overheated(97)));
    // Taken: the other copies (and the task's own result) now carry the message.
    let again = second.into_panic().unwrap();
    assert!(!again.has_payload());
    let message = again
        .into_payload()
        .downcast::<String>()
        .expect("the message");
    assert!(message.contains("not a string"), "{message}");
    assert!(task.result().unwrap_err().is_panic());

    // A string panic re-raised through `TaskError::resume_unwind`, from `map` too.
    let mut results = pool
        .map_with(
            |x: u32| if x == 2 { panic!("item {x}") } else { x },
            0..4,
            MapOptions::new().chunksize(2),
        )
        .unwrap();
    assert_eq!(results.next(), Some(Ok(0)));
    assert_eq!(results.next(), Some(Ok(1)));
    let error = results.next().unwrap().unwrap_err();
    let caught = std::panic::catch_unwind(AssertUnwindSafe(|| error.resume_unwind())).unwrap_err();
    assert_eq!(
        caught.downcast_ref::<String>().map(String::as_str),
        Some("item 2")
    );
    // Other errors come back to the caller.
    assert!(TaskError::<std::convert::Infallible>::Cancelled
        .resume_unwind()
        .is_cancelled());
}
