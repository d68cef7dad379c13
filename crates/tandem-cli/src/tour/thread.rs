//! Thread scenarios: named threads with arguments, thread-local storage, and a panic that
//! comes back through `join`.

use std::sync::{mpsc, Arc};
use std::time::Duration;

use pytandem::thread::{self, Builder, Local};

use super::{quietly, Report, Scenario};

pub(crate) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "threads",
            title: "Named threads with arguments, joined (with and without a timeout)",
            seed: "004 (Thread with Arguments), 000 (threads), 003 (thread best practices)",
            run: named,
        },
        Scenario {
            name: "thread-local",
            title: "Thread-local storage: each thread's value is its own",
            seed: "004 (Thread Local Storage)",
            run: local,
        },
        Scenario {
            name: "thread-panic",
            title: "A panic in a thread comes back through join, with the thread's name",
            seed: "004 (best practices: error handling, monitoring)",
            run: panic_through_join,
        },
    ]
}

/// The seeds' `worker(name, count)`: returns the lines it would print.
fn worker(name: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{name}: {i}")).collect()
}

fn named(r: &mut Report) {
    r.say("Python: threading.Thread(target=worker, args=(\"Thread-1\", 3), name=\"WorkerThread\")");
    let handles: Vec<_> = (1..=3)
        .map(|i| {
            let (label, count) = (format!("job-{i}"), i);
            Builder::new()
                .name(format!("WorkerThread-{i}"))
                .spawn(move || (thread::current_name(), worker(&label, count)))
                .expect("spawn")
        })
        .collect();
    let names: Vec<String> = handles.iter().map(|h| h.name().to_owned()).collect();
    let mut all_ok = true;
    for (i, h) in handles.into_iter().enumerate() {
        let (seen, lines) = h.join().expect("no panic");
        r.say(format!(
            "{:?} returned {lines:?}",
            seen.as_deref().unwrap_or("?")
        ));
        all_ok &= seen.as_deref() == Some(names[i].as_str()) && lines.len() == i + 1;
    }
    r.check(
        "each thread saw its own name and returned its own lines",
        all_ok,
    );

    let anonymous = thread::spawn(|| ()).expect("spawn");
    r.say(format!(
        "an unnamed thread gets Python's default name: {}",
        anonymous.name()
    ));
    r.check(
        "default name is Thread-N",
        anonymous.name().starts_with("Thread-"),
    );
    anonymous.join().expect("no panic");

    r.say("join with a timeout: a thread blocked on a handshake is still alive after 20 ms.");
    let (go, gate) = mpsc::channel::<()>();
    let blocked = Builder::new()
        .name("blocked")
        .spawn(move || gate.recv().is_ok())
        .expect("spawn");
    let blocked = match blocked.join_timeout(Duration::from_millis(20)) {
        Err(e) if e.is_timeout() => {
            r.say(format!("join_timeout(20 ms): {e}"));
            let h = e.into_handle().expect("a timeout hands the handle back");
            r.check("is_alive() after the timeout", h.is_alive());
            h
        }
        other => {
            r.check(format!("join_timeout timed out (got {other:?})"), false);
            return;
        }
    };
    go.send(()).expect("the thread waits");
    let joined = blocked.join_timeout(Duration::from_secs(30));
    r.check_eq(
        "after the handshake, join_timeout returns",
        joined.ok(),
        Some(true),
    );
}

fn local(r: &mut Report) {
    r.say("Python: thread_local = threading.local(); each worker stores its own name in it.");
    let storage = Arc::new(Local::new());
    storage.set(String::from("main"));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let storage = Arc::clone(&storage);
            Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || {
                    let before = storage.get();
                    storage.set(thread::current_name().expect("named"));
                    std::thread::yield_now(); // give the others a chance to overwrite it
                    (before, storage.get(), thread::current_name())
                })
                .expect("spawn")
        })
        .collect();
    let mut own = true;
    let mut fresh = true;
    for h in handles {
        let (before, after, name) = h.join().expect("no panic");
        r.say(format!(
            "{}: thread-local value = {:?} (before setting: {before:?})",
            name.as_deref().unwrap_or("?"),
            after.as_deref().unwrap_or("?")
        ));
        own &= after == name;
        fresh &= before.is_none();
    }
    r.check("each thread read back its own name", own);
    r.check("each thread started without a value", fresh);
    r.check_eq(
        "the main thread's value",
        storage.get().as_deref(),
        Some("main"),
    );
    let all: Vec<String> = Arc::into_inner(storage)
        .expect("threads are done")
        .into_values()
        .collect();
    r.say(format!(
        "after the threads ended, the values left: {all:?} (as Python's threading.local, a \
         thread's value is dropped when the thread exits)"
    ));
    r.check_eq(
        "values left: only the running main thread's",
        all,
        vec!["main".to_string()],
    );
}

fn panic_through_join(r: &mut Report) {
    r.say("worker-7 panics; Python would print a traceback and join() would return None.");
    let result = quietly(|| {
        Builder::new()
            .name("worker-7")
            .spawn(|| -> u32 { panic!("could not open config.toml") })
            .expect("spawn")
            .join()
    })
    .expect("join itself does not panic");
    match &result {
        Ok(v) => r.say(format!("unexpectedly returned {v}")),
        Err(p) => r.say(format!("join() = Err: {p}")),
    }
    r.check(
        "the error names the thread and carries the message",
        matches!(&result, Err(p) if p.name() == "worker-7" && p.message() == "could not open config.toml"),
    );
    let survivor = thread::spawn(|| 42).expect("spawn").join();
    r.check_eq(
        "the program (and other threads) carry on",
        survivor.ok(),
        Some(42),
    );
}
