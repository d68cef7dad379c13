//! `pytandem::thread`: names, join (with timeout), panics, idents and native ids,
//! `active_count`, and `Local<T>`.
//!
//! Every test holds `SERIAL`: `active_count()` counts tandem threads process-wide, so tests
//! that spawn them must not overlap for its counts to be exact.

use std::collections::BTreeSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pytandem::thread::{self, Builder, JoinTimeoutError, Local};

mod common;
use common::eventually;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn default_number(name: &str) -> u64 {
    name.strip_prefix("Thread-")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name:?} is not a default name"))
}

#[test]
fn unnamed_threads_get_pythons_default_names() {
    let _s = serial();
    let a = thread::spawn(thread::current_name).unwrap();
    let b = Builder::new().spawn(thread::current_name).unwrap();
    let (na, nb) = (a.name().to_owned(), b.name().to_owned());
    assert!(default_number(&na) < default_number(&nb), "{na} then {nb}");
    assert_eq!(a.thread().name(), Some(na.as_str()));
    assert_eq!(a.join().unwrap(), Some(na));
    assert_eq!(b.join().unwrap(), Some(nb));
}

#[test]
fn custom_names_are_visible_everywhere() {
    let _s = serial();
    let h = Builder::new()
        .name("worker-1")
        .stack_size(128 * 1024)
        .spawn(|| {
            (
                thread::current_name(),
                std::thread::current().name().map(String::from),
            )
        })
        .unwrap();
    assert_eq!(h.name(), "worker-1");
    assert_eq!(h.thread().name(), Some("worker-1"));
    let (ours, std_name) = h.join().unwrap();
    assert_eq!(ours.as_deref(), Some("worker-1"));
    assert_eq!(std_name.as_deref(), Some("worker-1"));
    assert_eq!(
        thread::current_name().is_some(),
        std::thread::current().name().is_some()
    );
}

#[test]
fn nul_byte_in_name_is_an_error_not_a_panic() {
    let _s = serial();
    let err = Builder::new().name("bad\0name").spawn(|| ()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn join_returns_the_value_with_arguments_captured() {
    let _s = serial();
    // Python: threading.Thread(target=worker, args=("Thread-1", 5), name="WorkerThread")
    fn worker(label: &str, count: usize) -> Vec<String> {
        (0..count).map(|i| format!("{label}: {i}")).collect()
    }
    let (label, count) = (String::from("Thread-1"), 5);
    let h = Builder::new()
        .name("WorkerThread")
        .spawn(move || worker(&label, count))
        .unwrap();
    let lines = h.join().unwrap();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[4], "Thread-1: 4");
}

#[test]
fn panic_is_reported_with_name_and_message() {
    let _s = serial();
    let h = Builder::new()
        .name("worker-1")
        .spawn(|| -> u8 { panic!("boom {}", 42) })
        .unwrap();
    let err = h.join().unwrap_err();
    assert_eq!(err.name(), "worker-1");
    assert_eq!(err.message(), "boom 42");
    assert_eq!(err.to_string(), "thread 'worker-1' panicked: boom 42");
    let _: &(dyn std::error::Error + Send + Sync) = &err;

    // The original payload can continue the panic in the joining thread.
    let resumed = panic::catch_unwind(AssertUnwindSafe(|| err.resume())).unwrap_err();
    let text = resumed
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| resumed.downcast_ref::<String>().map(String::as_str));
    assert_eq!(text, Some("boom 42"));

    let err = thread::spawn(|| std::panic::panic_any(7u32))
        .unwrap()
        .join()
        .unwrap_err();
    assert!(err.message().contains("not a string"));
    assert_eq!(
        err.into_payload().downcast::<u32>().ok().map(|b| *b),
        Some(7)
    );
}

#[test]
fn join_timeout_times_out_on_a_blocked_thread_then_succeeds() {
    let _s = serial();
    let (release, gate) = mpsc::channel::<u32>();
    let h = Builder::new()
        .name("blocked")
        .spawn(move || gate.recv().unwrap() * 2)
        .unwrap();

    let start = Instant::now();
    let err = h.join_timeout(Duration::from_millis(50)).unwrap_err();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(50),
        "returned early: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "returned late: {took:?}");
    assert!(err.is_timeout());
    assert!(err.to_string().contains("'blocked' is still running"));
    let h = err.into_handle().unwrap();
    assert!(h.is_alive());

    // A zero timeout only checks.
    let h = match h.join_timeout(Duration::ZERO) {
        Err(JoinTimeoutError::Timeout(h)) => h,
        other => panic!("expected a timeout, got {other:?}"),
    };
    release.send(21).unwrap();
    assert_eq!(h.join_timeout(Duration::from_secs(60)).unwrap(), 42);
}

#[test]
fn join_timeout_reports_a_panic() {
    let _s = serial();
    let h = Builder::new()
        .name("doomed")
        .spawn(|| -> () { panic!("no") })
        .unwrap();
    match h.join_until(Instant::now() + Duration::from_secs(60)) {
        Err(JoinTimeoutError::Panicked(p)) => {
            assert_eq!(p.name(), "doomed");
            assert_eq!(p.message(), "no");
        }
        other => panic!("expected the panic, got {other:?}"),
    }
    // An absurd timeout waits (forever, here: until the thread ends).
    let h = thread::spawn(|| 1).unwrap();
    assert_eq!(h.join_timeout(Duration::MAX).unwrap(), 1);
}

#[test]
fn active_count_counts_the_main_thread_as_python_does() {
    let _s = serial();
    // Python: threading.active_count() == 1 in a program that started no thread.
    eventually("no tandem thread is left running", || {
        thread::active_count() == 1
    });
    let (tx, rx) = mpsc::channel::<()>();
    let worker = thread::spawn(move || rx.recv().unwrap()).unwrap();
    assert_eq!(thread::active_count(), 2);
    tx.send(()).unwrap();
    worker.join().unwrap();
    assert_eq!(thread::active_count(), 1);
}

#[test]
fn is_alive_and_active_count_follow_the_thread() {
    let _s = serial();
    let base = thread::active_count();
    let gates: Vec<_> = (0..3).map(|_| mpsc::channel::<()>()).collect();
    let (senders, receivers): (Vec<_>, Vec<_>) = gates.into_iter().unzip();
    let handles: Vec<_> = receivers
        .into_iter()
        .map(|gate| thread::spawn(move || gate.recv().unwrap()).unwrap())
        .collect();
    assert_eq!(thread::active_count(), base + 3);
    assert!(handles.iter().all(|h| h.is_alive() && !h.is_finished()));

    senders[0].send(()).unwrap();
    eventually("thread 0 finishes", || handles[0].is_finished());
    assert!(!handles[0].is_alive());
    assert!(handles[1].is_alive() && handles[2].is_alive());
    assert_eq!(thread::active_count(), base + 2);

    for s in &senders[1..] {
        s.send(()).unwrap();
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(thread::active_count(), base);
}

#[cfg(target_os = "linux")]
#[test]
fn native_ids_are_distinct_and_match_gettid() {
    let _s = serial();
    let (report, reports) = mpsc::channel::<(usize, u64, Option<u64>)>();
    let (release, gate) = mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new(gate));
    let handles: Vec<_> = (0..3)
        .map(|i| {
            let (report, gate) = (report.clone(), Arc::clone(&gate));
            thread::spawn(move || {
                // SAFETY: `gettid` takes no arguments and cannot fail.
                let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u64;
                report.send((i, tid, thread::current_native_id())).unwrap();
                let _ = gate.lock().unwrap().recv();
            })
            .unwrap()
        })
        .collect();
    let mut tids = BTreeSet::new();
    for _ in 0..3 {
        let (i, tid, seen) = reports.recv().unwrap();
        assert_eq!(seen, Some(tid));
        assert_eq!(
            handles[i].native_id(),
            Some(tid),
            "known once the thread started"
        );
        tids.insert(tid);
    }
    assert_eq!(tids.len(), 3, "native ids are distinct");
    assert!(!tids.contains(&thread::current_native_id().unwrap()));
    drop(release);
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn idents_are_unique_and_match_inside() {
    let _s = serial();
    let handles: Vec<_> = (0..4)
        .map(|_| thread::spawn(thread::current_ident).unwrap())
        .collect();
    let mut seen = BTreeSet::from([thread::current_ident()]);
    for h in handles {
        let ident = h.ident();
        assert_eq!(h.join().unwrap(), ident);
        assert!(seen.insert(ident), "ident {ident} reused");
    }
}

// ---- Local<T> -------------------------------------------------------------------------------

#[test]
fn local_values_are_per_thread_and_per_object() {
    let _s = serial();
    let names = Arc::new(Local::new());
    let lengths = Arc::new(Local::new());
    names.set(String::from("main"));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let (names, lengths) = (Arc::clone(&names), Arc::clone(&lengths));
            Builder::new()
                .name(format!("local-{i}"))
                .spawn(move || {
                    assert_eq!(names.get(), None, "a new thread starts without a value");
                    let me = thread::current_name().unwrap();
                    names.set(me.clone());
                    assert_eq!(
                        lengths.get(),
                        None,
                        "setting one Local leaves another alone"
                    );
                    lengths.set(me.len() * 10);
                    std::thread::yield_now(); // let the others overwrite, if they could
                    (names.get().unwrap(), lengths.get().unwrap(), me)
                })
                .unwrap()
        })
        .collect();
    for h in handles {
        let (name, length, me) = h.join().unwrap();
        assert_eq!(name, me);
        assert_eq!(length, me.len() * 10);
    }
    assert_eq!(names.get().as_deref(), Some("main"));
    assert_eq!(lengths.get(), None);
}

#[test]
fn local_values_of_running_threads_are_collected() {
    // A thread's value lives as long as the thread (Python's threading.local): collect
    // per-thread values while the threads run, or have each thread return its own.
    let _s = serial();
    let counts = Arc::new(Local::with_init(|| 0u64));
    let (counted, done) = (
        Arc::new(std::sync::Barrier::new(5)),
        Arc::new(std::sync::Barrier::new(5)),
    );
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (counts, counted, done) =
                (Arc::clone(&counts), Arc::clone(&counted), Arc::clone(&done));
            thread::spawn(move || {
                for _ in 0..1000 {
                    counts.with(|n| *n += 1);
                }
                counted.wait();
                done.wait();
                counts.get().unwrap()
            })
            .unwrap()
        })
        .collect();
    counted.wait();
    // Every worker is alive and done counting; only they can touch their values, and they
    // wait at `done`. Read them through a shared view: each worker's count is 1000.
    done.wait();
    let mut totals: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    totals.sort();
    assert_eq!(totals, vec![1000; 4]);
    let mut counts = Arc::into_inner(counts).expect("every thread dropped its clone");
    assert_eq!(
        counts.iter_mut().count(),
        0,
        "the workers' values left with them"
    );
    counts.with(|n| *n += 2);
    assert_eq!(counts.into_values().collect::<Vec<_>>(), [2]);
}

#[test]
fn local_get_or_take_and_try_with() {
    let _s = serial();
    let l: Local<Vec<u8>> = Local::new();
    assert_eq!(l.try_with(|v| v.len()), None);
    assert_eq!(*l.get_or(|| vec![1, 2]), [1, 2]);
    assert_eq!(l.try_with(|v| v.len()), Some(2));
    assert_eq!(l.take(), Some(vec![1, 2]));
    assert!(!l.is_set());
    let other = thread::spawn(|| ()).unwrap(); // unrelated thread: no effect on ours
    other.join().unwrap();
    assert_eq!(l.get(), None);
}

/// Sets its flag when dropped, after a pause that lets a `join` that does not wait for the
/// OS thread return first (the pause only widens that window; nothing waits on it).
struct SetOnDrop(&'static std::sync::atomic::AtomicBool);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        std::thread::sleep(Duration::from_millis(100));
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// `join` returns once the thread is gone: its thread-local destructors have run (it used
/// to return as soon as the function's result was stored).
#[test]
fn join_waits_for_thread_local_destructors() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static DROPPED: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];
    thread_local!(static GUARD: std::cell::RefCell<Option<SetOnDrop>> = const { std::cell::RefCell::new(None) });
    let _serial = serial();
    let h =
        thread::spawn(|| GUARD.with(|g| *g.borrow_mut() = Some(SetOnDrop(&DROPPED[0])))).unwrap();
    h.join().unwrap();
    assert!(
        DROPPED[0].load(Ordering::SeqCst),
        "join returned before the thread exited"
    );
    let h =
        thread::spawn(|| GUARD.with(|g| *g.borrow_mut() = Some(SetOnDrop(&DROPPED[1])))).unwrap();
    h.join_timeout(Duration::from_secs(30)).unwrap();
    assert!(
        DROPPED[1].load(Ordering::SeqCst),
        "join_timeout returned before the thread exited"
    );
}

/// Python: several threads may join the same thread, with or without a timeout, any number
/// of times; every one returns once it finishes.
#[test]
fn several_threads_join_the_same_thread() {
    let _s = serial();
    let (go, wait) = mpsc::channel::<()>();
    let worker = thread::spawn(move || wait.recv().is_ok()).unwrap();
    let joiner = worker.joiner();
    let started = Arc::new(std::sync::Barrier::new(5));
    let watchers: Vec<_> = (0..4)
        .map(|i| {
            let (joiner, started) = (joiner.clone(), Arc::clone(&started));
            std::thread::spawn(move || {
                started.wait();
                if i % 2 == 0 {
                    joiner.join().map(|()| true)
                } else {
                    joiner.join_timeout(Duration::from_secs(30))
                }
            })
        })
        .collect();
    started.wait();
    assert_eq!(joiner.join_timeout(Duration::ZERO), Ok(false));
    assert!(joiner.is_alive());
    go.send(()).unwrap();
    for w in watchers {
        assert_eq!(w.join().unwrap(), Ok(true));
    }
    assert_eq!(joiner.join(), Ok(()), "joining again returns at once");
    assert!(worker.join().unwrap());
    assert!(!joiner.is_alive());
}

/// A thread that joins itself gets an error (Python's `RuntimeError`), not a hang: through
/// a `Joiner` a typed error, through its own `JoinHandle` a panic with the same message.
#[test]
fn a_thread_joining_itself_gets_an_error() {
    type Own = (thread::Joiner, thread::JoinHandle<()>);
    let _s = serial();
    let (give, take) = mpsc::channel::<Own>();
    let (report, reports) = mpsc::channel();
    let worker = thread::spawn(move || {
        let (me, own) = take.recv().unwrap();
        let errors = (me.join(), me.join_timeout(Duration::from_secs(30)));
        let panic = panic::catch_unwind(AssertUnwindSafe(|| own.join())).unwrap_err();
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        report.send((errors, message)).unwrap();
    })
    .unwrap();
    let joiner = worker.joiner();
    give.send((joiner.clone(), worker)).unwrap();
    let ((e1, e2), message) = reports.recv_timeout(Duration::from_secs(30)).unwrap();
    let err = e1.unwrap_err();
    assert_eq!(e2, Err(err));
    assert!(err.to_string().contains("cannot join itself"), "{err}");
    assert!(message.contains("cannot join itself"), "{message}");
    assert_eq!(joiner.join_timeout(Duration::from_secs(30)), Ok(true));
}

// ---------------------------------------------------------------------------------------
// `thread::scope`: named, borrowing threads, all joined at the end.

/// The seeds' "start N threads, join them": borrowed data, no `Arc`, no `join` calls; the
/// names are what the threads see, the scope returns the closure's value.
#[test]
fn scope_runs_named_borrowing_threads_and_joins_them_all() {
    let _serial = serial();
    let seen = Mutex::new(BTreeSet::new());
    let before = thread::active_count();
    let (go, wait) = mpsc::channel::<()>();
    let wait = Mutex::new(wait);
    let (returned, default_name) = thread::scope(|s| {
        for i in 0..3 {
            let seen = &seen;
            s.builder().name(format!("w-{i}")).spawn(move || {
                let me = thread::current_name().expect("a named thread");
                seen.lock().unwrap().insert(me);
            });
        }
        let waiter = s.spawn(|| {
            wait.lock().unwrap().recv().unwrap();
            thread::current_name().unwrap()
        });
        assert!(!waiter.is_finished());
        assert!(
            thread::active_count() > before,
            "scoped threads are counted"
        );
        let default_name = waiter.name().to_owned();
        go.send(()).unwrap();
        assert_eq!(waiter.join().unwrap(), default_name);
        ("value", default_name)
    });
    assert_eq!(returned, "value");
    default_number(&default_name);
    let expected: BTreeSet<String> = (0..3).map(|i| format!("w-{i}")).collect();
    assert_eq!(
        *seen.lock().unwrap(),
        expected,
        "every thread ran before scope returned"
    );
    assert_eq!(thread::active_count(), before, "and none is counted after");
}

/// A scoped thread has the identifier its handle reports, as spawned threads do.
#[test]
fn scoped_threads_have_their_handles_ident() {
    let _serial = serial();
    thread::scope(|s| {
        let h = s.spawn(thread::current_ident);
        let ident = h.ident();
        assert_eq!(h.join().unwrap(), ident);
        assert_ne!(ident, thread::current_ident());
    });
}

/// Panics behave as in `std::thread::scope`: a joined thread's panic is the caller's (a
/// `ThreadPanic` with the thread's name), an unjoined one makes the scope panic once every
/// thread has finished.
#[test]
fn scoped_panics_propagate_like_std() {
    let _serial = serial();
    let joined = thread::scope(|s| {
        s.builder()
            .name("doomed")
            .spawn(|| -> u32 { panic!("joined boom") })
            .join()
            .unwrap_err()
    });
    assert_eq!(joined.name(), "doomed");
    assert_eq!(joined.message(), "joined boom");
    assert_eq!(
        joined.into_payload().downcast_ref::<&str>(),
        Some(&"joined boom")
    );

    let finished = std::sync::atomic::AtomicBool::new(false);
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        thread::scope(|s| {
            s.spawn(|| panic!("unjoined boom"));
            s.spawn(|| finished.store(true, std::sync::atomic::Ordering::SeqCst));
        })
    }));
    assert!(caught.is_err(), "an unjoined panic makes the scope panic");
    assert!(finished.into_inner(), "after every thread finished");

    let bad = panic::catch_unwind(AssertUnwindSafe(|| {
        thread::scope(|s| s.builder().name("nul\0").spawn(|| ()).join())
    }));
    let payload = bad.unwrap_err();
    let message = payload.downcast_ref::<String>().unwrap();
    assert!(message.contains("NUL"), "{message}");
    let err = thread::scope(|s| s.builder().name("nul\0").try_spawn(|| ()).unwrap_err());
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}
