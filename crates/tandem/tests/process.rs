//! `pytandem::process`: `Process` lifecycle, `Pipe`/`Connection`, `Value`/`Array` across real
//! child processes. Includes the behaviours CPython's `_test_multiprocessing.py` checks for
//! `Process` (`_TestProcess`) and `Connection` (`_TestConnection`), ported in our own words.
#![cfg(target_os = "linux")]

pytandem::child_entry!();

mod common;

use pytandem::process::{
    active_children, cpu_count, current_process, parent_process, Array, Connection,
    ConnectionError, Pipe, Process, ProcessError, RawValue, SpawnError, Value,
};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(30);

// ---- child functions (plain fns: the child finds them by address) ----

fn square(x: u64) -> u64 {
    x * x
}

fn panics(message: String) -> u64 {
    panic!("{message}")
}

fn exits(code: i32) {
    std::process::exit(code)
}

/// Says "ready", then waits for the parent to close the connection (or forever).
fn ready_then_block(conn: Connection<String>) {
    conn.send(&"ready".to_string()).unwrap();
    let _ = conn.recv();
    loop {
        std::thread::park();
    }
}

fn whoami(_: ()) -> (u32, String, bool, Option<(u32, String)>) {
    let me = current_process();
    let parent = parent_process().map(|p| (p.pid, p.name));
    (me.pid, me.name, me.daemon, parent)
}

fn echo(conn: Connection<Vec<u8>>) {
    while let Ok(msg) = conn.recv() {
        conn.send(&msg).unwrap();
    }
}

fn add_locked(counter: Value<u64>) {
    for _ in 0..2000 {
        *counter.lock() += 1;
    }
}

fn add_atomic(counter: RawValue<u64>) {
    for _ in 0..2000 {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

fn fill(array: Array<f64>) {
    let mut g = array.lock();
    for (i, x) in g.iter_mut().enumerate() {
        *x = i as f64 * 0.5;
    }
}

/// Receives a connection over a connection, and answers on it.
fn relay(conn: Connection<Connection<String>>) {
    let inner = conn.recv().unwrap();
    inner
        .send(&"through a passed connection".to_string())
        .unwrap();
}

/// Sends a stream of messages until killed.
fn flood(conn: Connection<Vec<u8>>) {
    let msg = vec![7u8; 100_000];
    loop {
        if conn.send(&msg).is_err() {
            return;
        }
    }
}

/// Spawns a grandchild that blocks, sends its pid, then blocks itself.
fn spawn_grandchild(args: (Connection<u32>, bool)) {
    let (conn, daemon) = args;
    let (a, b) = Pipe::new().unwrap();
    let child = Process::builder()
        .daemon(daemon)
        .spawn(ready_then_block, b)
        .unwrap();
    assert_eq!(a.recv().unwrap(), "ready");
    conn.send(&child.pid()).unwrap();
    // Block until the parent is done with us (it kills us, or closes the connection).
    let _ = conn.recv();
    std::mem::forget(a);
}

fn nested_spawn_without_init(_: ()) -> bool {
    std::env::set_var("TANDEM_PROCESS_CHILD", "1:0");
    let r = Process::spawn(square, 2);
    std::env::remove_var("TANDEM_PROCESS_CHILD");
    matches!(r, Err(SpawnError::NotInitialized))
}

fn pid_alive(pid: u32) -> bool {
    // A pidfd names the process itself, so a reused pid cannot fool the check.
    match rustix_pidfd(pid) {
        None => false,
        Some(fd) => {
            let mut p = [libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            }];
            // SAFETY: one valid pollfd; zero timeout.
            let n = unsafe { libc::poll(p.as_mut_ptr(), 1, 0) };
            // SAFETY: we own fd.
            unsafe { libc::close(fd) };
            n == 0
        }
    }
}

fn rustix_pidfd(pid: u32) -> Option<i32> {
    // SAFETY: the pidfd_open system call with a pid and no flags.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    (fd >= 0).then_some(fd as i32)
}

// ---- Process ----

#[test]
fn a_child_returns_its_value_to_join() {
    let child = Process::spawn(square, 12).unwrap();
    assert!(child.pid() != std::process::id());
    assert_eq!(child.join().unwrap(), 144);
}

#[test]
fn a_capture_free_closure_is_a_function() {
    let child = Process::spawn(|s: String| s.len(), "four".to_string()).unwrap();
    assert_eq!(child.join().unwrap(), 4);
}

#[test]
fn a_panic_reaches_the_parent_with_its_message_and_exitcode_1() {
    let mut child = Process::spawn(panics, "boom in the child".to_string()).unwrap();
    let err = child.join_timeout(LONG).unwrap_err();
    assert_eq!(
        err,
        ProcessError::Panicked {
            pid: child.pid(),
            message: "boom in the child".into()
        }
    );
    assert!(err.to_string().contains("boom in the child"));
    assert_eq!(child.exitcode(), Some(1));
    assert_eq!(err.exitcode(), Some(1));
}

#[test]
fn exit_inside_the_function_is_its_exit_code() {
    let mut child = Process::spawn(exits, 3).unwrap();
    let err = child.join_timeout(LONG).unwrap_err();
    assert!(
        matches!(err, ProcessError::Exited { code: 3, .. }),
        "{err:?}"
    );
    assert_eq!(child.exitcode(), Some(3));
    assert!(err.to_string().contains("code 3"));
    let child = Process::spawn(exits, 0).unwrap();
    assert!(matches!(
        child.join(),
        Err(ProcessError::Exited { code: 0, .. })
    ));
}

#[test]
fn terminate_and_kill_give_negative_exitcodes() {
    for (signal, stop) in [(15, true), (9, false)] {
        let (a, b) = Pipe::new().unwrap();
        let mut child = Process::spawn(ready_then_block, b).unwrap();
        assert_eq!(a.recv().unwrap(), "ready");
        assert!(child.is_alive());
        assert_eq!(child.exitcode(), None);
        assert!(matches!(
            child.join_timeout(Duration::from_millis(10)),
            Err(ProcessError::Timeout { .. })
        ));
        if stop {
            child.terminate().unwrap();
        } else {
            child.kill().unwrap();
        }
        let err = child.join_timeout(LONG).unwrap_err();
        assert_eq!(
            err,
            ProcessError::Signaled {
                pid: child.pid(),
                signal
            }
        );
        assert_eq!(child.exitcode(), Some(-signal));
        assert!(!child.is_alive());
        // Signalling an ended child is not an error (Python: no-op).
        child.kill().unwrap();
        child.terminate().unwrap();
        // The result was taken: a second join says so.
        assert!(matches!(
            child.join_timeout(LONG),
            Err(ProcessError::AlreadyJoined { .. })
        ));
    }
}

#[test]
fn join_timeout_then_join_again_and_zero_and_huge_timeouts() {
    let mut child = Process::spawn(square, 3).unwrap();
    assert_eq!(child.join_timeout(Duration::MAX).unwrap(), 9);
    assert!(matches!(
        child.join(),
        Err(ProcessError::AlreadyJoined { .. })
    ));
    let (a, b) = Pipe::new().unwrap();
    let mut child = Process::spawn(ready_then_block, b).unwrap();
    assert_eq!(a.recv().unwrap(), "ready");
    let start = Instant::now();
    assert!(child
        .join_timeout(Duration::ZERO)
        .unwrap_err()
        .to_string()
        .contains("still running"));
    assert!(start.elapsed() < LONG);
    child.kill().unwrap();
    assert!(matches!(
        child.join(),
        Err(ProcessError::Signaled { signal: 9, .. })
    ));
}

#[test]
fn names_pids_and_the_parent_as_the_child_sees_them() {
    let child = Process::builder()
        .name("worker-7")
        .spawn(whoami, ())
        .unwrap();
    assert_eq!(child.name(), "worker-7");
    let pid = child.pid();
    let (seen_pid, name, daemon, parent) = child.join().unwrap();
    assert_eq!((seen_pid, name.as_str(), daemon), (pid, "worker-7", false));
    assert_eq!(
        parent,
        Some((std::process::id(), "MainProcess".to_string()))
    );
    assert_eq!(current_process().name, "MainProcess");
    assert!(parent_process().is_none());

    let child = Process::builder().daemon(true).spawn(whoami, ()).unwrap();
    assert!(child.daemon());
    assert!(child.name().starts_with("Process-"), "{}", child.name());
    let (_, name, daemon, _) = child.join().unwrap();
    assert!(name.starts_with("Process-") && daemon);
    assert!(cpu_count() >= 1);
}

#[test]
fn active_children_lists_running_children_only() {
    let (a, b) = Pipe::new().unwrap();
    let child = Process::builder()
        .name("listed")
        .spawn(ready_then_block, b)
        .unwrap();
    assert_eq!(a.recv().unwrap(), "ready");
    assert!(active_children()
        .iter()
        .any(|c| c.pid == child.pid() && c.name == "listed"));
    child.kill().unwrap();
    let pid = child.pid();
    assert!(child.join().is_err());
    assert!(!active_children().iter().any(|c| c.pid == pid));
}

#[test]
fn a_child_whose_parent_is_killed_does_not_linger() {
    let (a, b) = Pipe::new().unwrap();
    let parent = Process::spawn(spawn_grandchild, (b, false)).unwrap();
    let grandchild = a.recv_timeout(LONG).unwrap();
    assert!(pid_alive(grandchild));
    parent.kill().unwrap();
    assert!(parent.join().is_err());
    common::eventually("the grandchild dies with its parent", || {
        !pid_alive(grandchild)
    });
}

#[test]
fn daemon_children_are_terminated_when_their_parent_exits() {
    let (a, b) = Pipe::new().unwrap();
    let parent = Process::builder()
        .outlive_parent(true)
        .spawn(spawn_grandchild, (b, true))
        .unwrap();
    let grandchild = a.recv_timeout(LONG).unwrap();
    assert!(pid_alive(grandchild));
    // Closing our end lets the middle process return; at its exit it terminates the daemon.
    drop(a);
    parent.join().unwrap();
    common::eventually("the daemon grandchild is terminated", || {
        !pid_alive(grandchild)
    });
}

#[test]
fn bad_input_gives_typed_errors() {
    struct Unserializable;
    impl serde::Serialize for Unserializable {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("cannot serialize this"))
        }
    }
    impl<'de> serde::Deserialize<'de> for Unserializable {
        fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
            Ok(Unserializable)
        }
    }
    fn takes(_: Unserializable) {}
    let err = Process::spawn(takes, Unserializable).unwrap_err();
    assert!(matches!(err, SpawnError::Encode(_)), "{err:?}");
    assert!(
        err.to_string().contains("Serialize implementation"),
        "{err}"
    );

    // A child that tries to spawn while its own start was never initialized.
    assert!(Process::spawn(nested_spawn_without_init, ())
        .unwrap()
        .join()
        .unwrap());
}

#[test]
fn a_binary_that_never_calls_init_fails_at_join_not_silently() {
    // `sh` stands in for a program whose main forgot init(): it gets our flag and fails.
    let child = Process::builder()
        .executable("/bin/sh")
        .spawn(square, 2)
        .unwrap();
    let err = child.join().unwrap_err();
    assert!(matches!(err, ProcessError::Exited { .. }), "{err:?}");
    assert!(err.to_string().contains("init()"), "{err}");
}

// ---- Pipe / Connection ----

#[test]
fn pipe_send_recv_poll_and_bytes_in_one_process() {
    let (a, b) = Pipe::new::<(u32, String)>().unwrap();
    assert!(!b.poll(Duration::ZERO).unwrap());
    a.send(&(1, "one".into())).unwrap();
    assert!(b.poll(Duration::ZERO).unwrap());
    assert_eq!(b.recv().unwrap(), (1, "one".into()));
    assert!(b
        .recv_timeout(Duration::from_millis(10))
        .unwrap_err()
        .is_timeout());
    assert!(b.try_recv().unwrap_err().is_timeout());
    a.send_bytes(b"raw").unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"raw");
    b.send_bytes(b"").unwrap();
    assert_eq!(a.recv_bytes_timeout(LONG).unwrap(), b"");
    // A raw message read as a typed one is a decode error, and is consumed.
    a.send_bytes(&[0xff]).unwrap();
    assert!(matches!(b.recv(), Err(ConnectionError::Decode(_))));
    drop(a);
    assert!(b.poll(LONG).unwrap(), "EOF counts as readable");
    assert!(b.recv().unwrap_err().is_disconnected());
    assert!(b.send(&(2, "two".into())).unwrap_err().is_disconnected());
}

#[test]
fn one_way_pipes_refuse_the_wrong_direction() {
    let (r, w) = Pipe::one_way::<u8>().unwrap();
    assert!(r.readable() && !r.writable() && w.writable() && !w.readable());
    assert!(matches!(r.send(&1), Err(ConnectionError::NotWritable)));
    assert!(matches!(w.recv(), Err(ConnectionError::NotReadable)));
    assert!(matches!(
        w.poll(Duration::ZERO),
        Err(ConnectionError::NotReadable)
    ));
    w.send(&9).unwrap();
    assert_eq!(r.recv().unwrap(), 9);
}

#[test]
fn messages_of_any_size_cross_processes_whole() {
    let (a, b) = Pipe::new::<Vec<u8>>().unwrap();
    let child = Process::spawn(echo, b).unwrap();
    for len in [0usize, 1, 8, 4096, 65_535, 65_536, 1 << 20, 16 << 20] {
        let msg: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        a.send(&msg).unwrap();
        assert_eq!(a.recv_timeout(LONG).unwrap(), msg, "length {len}");
    }
    drop(a);
    child.join().unwrap();
}

#[test]
fn the_message_size_limit_is_enforced_at_both_ends() {
    let (a, b) = Pipe::new::<Vec<u8>>().unwrap();
    a.set_max_message_size(100);
    assert_eq!(a.max_message_size(), 100);
    let err = a.send(&vec![0; 200]).unwrap_err();
    assert!(
        matches!(err, ConnectionError::TooLarge { limit: 100, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("set_max_message_size"));
    b.set_max_message_size(100);
    a.set_max_message_size(1 << 20);
    a.send(&vec![1; 1000]).unwrap();
    a.send(&vec![2; 10]).unwrap();
    assert!(matches!(b.recv(), Err(ConnectionError::TooLarge { .. })));
    assert_eq!(b.recv().unwrap(), vec![2; 10], "the stream stays usable");
}

#[test]
fn a_connection_travels_to_a_child_and_over_a_connection() {
    let (a, b) = Pipe::new::<Connection<String>>().unwrap();
    let child = Process::spawn(relay, b).unwrap();
    let (x, y) = Pipe::new::<String>().unwrap();
    a.send(&y).unwrap();
    drop(y);
    assert_eq!(x.recv_timeout(LONG).unwrap(), "through a passed connection");
    child.join().unwrap();
    // The child's copy is gone with it, and ours was dropped: end of stream.
    assert!(x.recv_timeout(LONG).unwrap_err().is_disconnected());
}

#[test]
fn a_child_killed_mid_send_gives_disconnected_not_a_hang() {
    let (a, b) = Pipe::new::<Vec<u8>>().unwrap();
    let child = Process::spawn(flood, b).unwrap();
    // Let it get going (it blocks on a full socket), then kill it mid-stream.
    assert_eq!(a.recv_timeout(LONG).unwrap().len(), 100_000);
    child.kill().unwrap();
    assert!(matches!(
        child.join(),
        Err(ProcessError::Signaled { signal: 9, .. })
    ));
    loop {
        match a.recv_timeout(LONG) {
            Ok(msg) => assert_eq!(msg.len(), 100_000, "no torn message is delivered"),
            Err(e) => {
                assert!(e.is_disconnected(), "{e:?}");
                break;
            }
        }
    }
}

#[test]
fn handles_refuse_foreign_serializers() {
    let (a, _b) = Pipe::new::<u8>().unwrap();
    let v = Value::new(1u8).unwrap();
    // Another serializer gets an error (it would otherwise write a number meaningless in
    // another process); the message itself is in the handle's `custom` error.
    assert!(postcard::to_allocvec(&a).is_err());
    assert!(postcard::to_allocvec(&v).is_err());
    let (c, _d) = Pipe::new::<u8>().unwrap();
    assert!(postcard::to_allocvec(&(1u8, c)).is_err());
}

// ---- Value / Array ----

#[test]
fn processes_have_their_own_memory_unless_it_is_shared() {
    // Seed 001: a counter incremented in children is not seen by the parent... unless shared.
    let counter = Value::new(0u64).unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| Process::spawn(add_locked, counter.clone()).unwrap())
        .collect();
    for c in children {
        c.join().unwrap();
    }
    assert_eq!(counter.get(), 6000);

    let atomic = RawValue::new(0u64).unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| Process::spawn(add_atomic, atomic.clone()).unwrap())
        .collect();
    for c in children {
        c.join().unwrap();
    }
    assert_eq!(atomic.load(Ordering::SeqCst), 6000);

    let array = Array::<f64>::new(4).unwrap();
    Process::spawn(fill, array.clone()).unwrap().join().unwrap();
    assert_eq!(array.to_vec(), [0.0, 0.5, 1.0, 1.5]);
}
