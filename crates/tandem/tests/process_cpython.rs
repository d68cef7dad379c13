#![cfg(target_os = "linux")]
pytandem::child_entry!();

// The behaviours CPython's `Lib/test/_test_multiprocessing.py` checks for `Process`
// (`_TestProcess`), `Pipe`/`Connection` (`_TestConnection`, `_TestPoll`,
// `_TestPicklingConnections`) and `Value`/`Array` (`_TestValue`, `_TestArray`,
// `_TestSharedCTypes`), ported to `pytandem::process` in our own words. Each test names the
// CPython test it ports; what `tests/process.rs` already checks exactly is not repeated, and
// where a CPython behaviour does not apply to tandem (or differs by design) a comment says
// so instead of a test.
//
// Every wait has a generous timeout (`LONG`), every handshake goes through a `Connection`,
// and every child a test starts is joined (or stopped, then joined) before the test ends;
// grandchildren end on their own once their handshake is over. A child that waits for the
// test does so on a connection whose other end the test holds: if the test fails and
// unwinds, that end is dropped and the child returns on its own.

use pytandem::process::{
    active_children, cpu_count, current_process, parent_process, Array, Connection,
    ConnectionError, Pipe, Process, ProcessError, RawArray, RawValue, Value,
};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long anything may take before the test is declared stuck (not slow).
const LONG: Duration = Duration::from_secs(30);

/// Python's `join_process`-style wait: the child's result, failing the test if it hangs.
fn join_within<R: serde::de::DeserializeOwned>(child: &mut Process<R>) -> Result<R, ProcessError> {
    match child.join_timeout(LONG) {
        Err(ProcessError::Timeout { pid }) => {
            let _ = child.kill();
            panic!("child {pid} did not end within {LONG:?}");
        }
        other => other,
    }
}

// ---------------------------------------------------------------------------------------
// Child functions. Plain `fn`s: the child finds them by their place in the binary.
// ---------------------------------------------------------------------------------------

fn square(x: u64) -> u64 {
    x * x
}

fn identity<T>(x: T) -> T {
    x
}

/// Says "ready", then waits until the test sends something or drops its end.
fn ready_then_wait(conn: Connection<String>) {
    conn.send(&"ready".to_string()).unwrap();
    let _ = conn.recv();
}

/// Waits until the test sends something or drops its end; sends nothing first.
fn wait_for_word(conn: Connection<String>) {
    let _ = conn.recv();
}

/// Work that takes a little while; the tests never depend on how long.
fn nap(_: ()) {
    std::thread::sleep(Duration::from_millis(10));
}

fn exit_with(code: i32) {
    std::process::exit(code)
}

fn abort_quietly(_: ()) {
    // No core file for a deliberate abort.
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit with a valid, initialized struct.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) };
    std::process::abort()
}

/// Keeps a deliberate panic off the terminal: the parent gets its message anyway.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|_| {}));
}

fn panic_with_a_number(_: ()) {
    quiet_panics();
    std::panic::panic_any(42u32)
}

fn panic_with_a_long_message(len: usize) {
    quiet_panics();
    panic!("{}", "x".repeat(len))
}

fn my_ids(_: ()) -> (u32, i64) {
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    (std::process::id(), tid)
}

fn my_cpu_count(_: ()) -> usize {
    cpu_count()
}

/// What a child of `test_process` sends back: its arguments, name and pid.
type Report = (Vec<i32>, Vec<(String, f64)>, String, u32, bool);

fn report_and_wait(args: (Connection<Report>, Vec<i32>, Vec<(String, f64)>)) {
    let (conn, positional, keywords) = args;
    let me = current_process();
    conn.send(&(positional, keywords, me.name, me.pid, me.daemon))
        .unwrap();
    // Wait for the test to let us finish.
    let _ = conn.recv();
}

/// (who I am, my parent's pid, my parent's name)
type Lineage = (String, u32, String);

fn report_parent(w: Connection<Lineage>) {
    let parent = parent_process().expect("a child has a parent");
    w.send(&(current_process().name, parent.pid, parent.name))
        .unwrap();
}

fn report_parent_then_spawn_leaf(w: Connection<Lineage>) -> u32 {
    let parent = parent_process().expect("a child has a parent");
    w.send(&(current_process().name, parent.pid, parent.name))
        .unwrap();
    let leaf = Process::builder()
        .name("leaf")
        .spawn(report_parent, w)
        .unwrap();
    let pid = leaf.pid();
    leaf.join().unwrap();
    pid
}

/// "alive" while the process that started us is still our parent.
fn parent_status() -> String {
    let parent = parent_process().expect("a child has a parent").pid;
    if std::os::unix::process::parent_id() == parent {
        "alive".into()
    } else {
        "not alive".into()
    }
}

fn watch_parent(conn: Connection<String>) {
    conn.send(&parent_status()).unwrap();
    if conn.recv().is_ok() {
        let _ = conn.send(&parent_status());
    }
}

fn start_watcher_then_wait(args: (Connection<String>, Connection<()>)) {
    let (for_grandchild, hold) = args;
    let _watcher = Process::builder()
        .outlive_parent(true)
        .spawn(watch_parent, for_grandchild)
        .unwrap();
    // Until the test terminates us (or goes away).
    let _ = hold.recv();
}

/// Sends its path in the tree, then starts its two children one after the other; hands
/// the shared writer back through `join`.
fn recurse(args: (Connection<Vec<u8>>, Vec<u8>)) -> Connection<Vec<u8>> {
    let (mut w, id) = args;
    w.send(&id).unwrap();
    if id.len() < 2 {
        for i in 0..2 {
            let mut next = id.clone();
            next.push(i);
            w = Process::spawn(recurse, (w, next)).unwrap().join().unwrap();
        }
    }
    w
}

fn count_fds_then_wait(conn: Connection<usize>) {
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count();
    conn.send(&open).unwrap();
    let _ = conn.recv();
}

fn leaf_sets_value(args: (Connection<()>, Value<u32>)) {
    let (go, value) = args;
    if go.recv().is_ok() {
        value.set(1);
    }
}

fn start_leaf_and_return(args: (Connection<()>, Connection<()>, Value<u32>)) {
    let (to_test, for_leaf, value) = args;
    // Dropping the handle does not stop the leaf; our exit waits for it (it is no daemon).
    drop(Process::spawn(leaf_sets_value, (for_leaf, value)).unwrap());
    to_test.send(&()).unwrap();
}

fn close_std_streams() {
    // SAFETY: closing this process's own stdout and stderr; Rust's stdio treats the
    // resulting EBADF as success, which is what the test checks.
    unsafe {
        libc::close(1);
        libc::close(2);
    }
}

fn print_to_closed_streams(_: ()) -> String {
    close_std_streams();
    println!("to a closed stdout");
    eprintln!("to a closed stderr");
    "still fine".into()
}

fn panic_with_closed_stderr(_: ()) {
    close_std_streams();
    // With stderr closed the default hook's output goes nowhere; keep it in place.
    panic!("nobody hears this but the parent");
}

/// Python's `_TestConnection._echo`: echoes raw messages until an empty one.
fn echo_bytes<T>(conn: Connection<T>) {
    while let Ok(msg) = conn.recv_bytes() {
        if msg.is_empty() {
            break;
        }
        conn.send_bytes(&msg).unwrap();
    }
}

/// Sends `strings` as raw messages, in order, then ends (closing its end).
fn send_strings(args: (Connection<()>, Vec<Vec<u8>>)) {
    let (conn, strings) = args;
    for s in &strings {
        conn.send_bytes(s).unwrap();
    }
}

/// Polls the reader (which must not take anything from it) and hands it back.
fn poll_and_give_back(r: Connection<()>) -> (bool, Connection<()>) {
    let ready = r.poll(LONG).unwrap();
    let again = r.poll(Duration::ZERO).unwrap();
    (ready && again, r)
}

/// The writing end of a one-way pipe, as the child sees it after the trip.
fn write_one_way(w: Connection<(bool, bool)>) -> bool {
    w.send(&(w.readable(), w.writable())).unwrap();
    w.send_bytes(b"raw from the child").unwrap();
    matches!(w.recv(), Err(ConnectionError::NotReadable))
        && matches!(w.recv_bytes(), Err(ConnectionError::NotReadable))
}

/// Occupies every descriptor number below `above`, then receives a connection (which lands
/// above it) and talks through it.
fn use_a_high_descriptor(args: (Connection<Connection<String>>, i32)) -> i32 {
    let (conn, above) = args;
    let null = std::fs::File::open("/dev/null").unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&null);
    let mut highest = raw;
    while highest < above {
        // SAFETY: dup of an open descriptor; the copies live until the process exits.
        highest = unsafe { libc::dup(raw) };
        assert!(highest >= 0, "dup failed");
    }
    let inner = conn.recv().unwrap();
    assert!(
        inner.poll(LONG).unwrap(),
        "nothing arrived on the passed connection"
    );
    let ping = inner.recv().unwrap();
    inner.send(&format!("{ping} -> pong")).unwrap();
    highest
}

/// `_TestPicklingConnections.child_access`'s messages: connections or text.
#[derive(Serialize, Deserialize, Debug)]
enum Access {
    Conn(Connection<String>),
    Text(String),
}

fn child_access(conn: Connection<Access>) {
    let Access::Conn(w) = conn.recv().unwrap() else {
        panic!("expected a connection")
    };
    w.send(&"all is well".to_string()).unwrap();
    drop(w);
    let Access::Conn(r) = conn.recv().unwrap() else {
        panic!("expected a connection")
    };
    let msg = r.recv().unwrap();
    conn.send(&Access::Text(msg.repeat(2))).unwrap();
}

type Values = (Value<i32>, Value<f64>, Value<i16>, Value<i64>, Value<u8>);

fn set_values(v: Values) {
    v.0.set(24234);
    v.1.set(-4.25);
    v.2.set(234);
    v.3.set(1 << 34);
    v.4.set(b'y');
}

type RawValues = (RawValue<i32>, RawValue<i16>, RawValue<i64>, RawValue<u8>);

fn set_raw_values(v: RawValues) {
    v.0.store(24234, Ordering::SeqCst);
    v.1.store(234, Ordering::SeqCst);
    v.2.store(1 << 34, Ordering::SeqCst);
    v.3.store(b'y', Ordering::SeqCst);
}

fn hold_locks(args: (Value<u32>, Array<i32>, Connection<String>)) {
    let (value, array, conn) = args;
    let mut v = value.lock();
    let mut a = array.lock();
    *v = 7;
    a[0] = 9;
    conn.send(&"locked".to_string()).unwrap();
    // Hold both until the test says so (or goes away).
    let _ = conn.recv();
    drop(a);
    drop(v);
}

fn probe_locks(args: (Value<u32>, Array<i32>)) -> (bool, bool, bool) {
    let (value, array) = args;
    let value_busy = value.try_lock().is_none();
    let array_busy = array.try_lock().is_none();
    let still_busy = value.lock_timeout(Duration::from_millis(20)).is_none();
    (value_busy, array_busy, still_busy)
}

fn prefix_sums(array: Array<i32>) {
    let mut g = array.lock();
    for i in 1..g.len() {
        g[i] += g[i - 1];
    }
}

fn raw_prefix_sums(array: RawArray<i32>) {
    for i in 1..array.len() {
        let before = array[i - 1].load(Ordering::SeqCst);
        array[i].fetch_add(before, Ordering::SeqCst);
    }
}

/// `_TestSharedCTypes`'s `_Foo` structure: `int`, `double`, `long long`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
struct Foo {
    x: i32,
    _pad: u32,
    y: f64,
    z: i64,
}

/// `_TestSharedCTypes._double`'s arguments: x, y, z, a `_Foo`, an array and a string.
type SharedCTypes = (
    Value<i32>,
    Value<f64>,
    Value<i64>,
    Value<Foo>,
    Array<f64>,
    Value<[u8; 16]>,
);

fn double_everything(args: SharedCTypes) {
    let (x, y, z, record, arr, string) = args;
    *x.lock() *= 2;
    *y.lock() *= 2.0;
    *z.lock() *= 2;
    {
        let mut f = record.lock();
        f.x *= 2;
        f.y *= 2.0;
    }
    for v in arr.lock().iter_mut() {
        *v *= 2.0;
    }
    let mut s = string.lock();
    let len = s.iter().position(|&b| b == 0).unwrap_or(s.len());
    let copy: Vec<u8> = s[..len].to_vec();
    s[len..2 * len].copy_from_slice(&copy);
}

// =======================================================================================
// _TestProcess
// =======================================================================================

/// CPython: _TestProcess.test_current
///
/// `current_process()` is plain data here (`ProcessInfo`): it has no `authkey` (tandem has
/// no `Listener`/`Client` to authenticate), no `is_alive()` and no `exitcode`.
#[test]
fn test_current() {
    let me = current_process();
    assert_eq!(me.pid, std::process::id());
    assert_eq!(me.name, "MainProcess");
    assert!(!me.daemon);
    assert!(parent_process().is_none());
}

/// CPython: _TestProcess.test_set_executable
///
/// Python accepts `str`, `bytes` and path-like objects; here anything that converts into a
/// `PathBuf` does: a `PathBuf`, a `String`, raw bytes as an `OsString`, and a copy of the
/// binary elsewhere (the same build, so the child accepts it).
#[test]
fn test_set_executable() {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let exe = std::env::current_exe().unwrap();
    let copy = std::env::temp_dir().join(format!(
        "tandem-process-cpython-{}-exe-copy",
        std::process::id()
    ));
    std::fs::copy(&exe, &copy).unwrap();
    struct RemoveOnDrop(std::path::PathBuf);
    impl Drop for RemoveOnDrop {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _cleanup = RemoveOnDrop(copy.clone());

    let builders = [
        Process::builder().executable(exe.clone()),
        Process::builder().executable(exe.to_str().unwrap().to_string()),
        Process::builder().executable(std::ffi::OsString::from_vec(
            exe.as_os_str().as_bytes().to_vec(),
        )),
        Process::builder().executable(copy.clone()),
    ];
    for (i, builder) in builders.into_iter().enumerate() {
        let mut child = builder.spawn(square, 7).unwrap();
        assert_eq!(join_within(&mut child).unwrap(), 49, "path #{i}");
        assert_eq!(child.exitcode(), Some(0), "path #{i}");
    }
}

/// CPython: _TestProcess.test_args_argument
///
/// Python's `args` may be a list or a tuple of positional arguments; here the one argument
/// is any serde type, so the check is that values of many shapes arrive unchanged (and,
/// since tandem returns the function's result, come back through `join`).
#[test]
fn test_args_argument() {
    fn round_trip<T>(value: T)
    where
        T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug + Clone,
    {
        let mut child = Process::builder()
            .daemon(true)
            .spawn(identity::<T>, value.clone())
            .unwrap();
        assert_eq!(join_within(&mut child).unwrap(), value);
    }
    round_trip(1i64);
    round_trip("str".to_string());
    round_trip(vec![1i32]);
    round_trip((1u8,));
    round_trip((vec![Some(1.5f64), None], "mixed".to_string(), [0u16; 3]));
    round_trip(());
}

// CPython: _TestProcess.test_daemon_argument — differs by design. Python's default `daemon`
// is the current process's flag (and a daemonic process may not start children at all);
// tandem's default is `false` everywhere and a daemon child may start children of its own.
// The explicit `daemon(true)` / default `false` cases are in `tests/process.rs`
// (`names_pids_and_the_parent_as_the_child_sees_them`) and in `test_process` below.

/// CPython: _TestProcess.test_parent_process_attributes
///
/// Extends `tests/process.rs` (which checks a child's view of the main process) one
/// generation down: a grandchild sees the child's pid and name as its parent's. (Default
/// names differ by design: tandem numbers `Process-N` per process, where Python names a
/// grandchild `Process-1:1`; the names here are given explicitly.)
#[test]
fn test_parent_process_attributes() {
    assert!(parent_process().is_none());
    let (r, w) = Pipe::one_way::<Lineage>().unwrap();
    let mut middle = Process::builder()
        .name("middle")
        .spawn(report_parent_then_spawn_leaf, w)
        .unwrap();
    let middle_pid = middle.pid();
    let leaf_pid = join_within(&mut middle).unwrap();
    assert_ne!(leaf_pid, middle_pid);
    assert_eq!(
        r.recv_timeout(LONG).unwrap(),
        (
            "middle".to_string(),
            std::process::id(),
            "MainProcess".to_string()
        )
    );
    assert_eq!(
        r.recv_timeout(LONG).unwrap(),
        ("leaf".to_string(), middle_pid, "middle".to_string())
    );
    // Both writers are gone with their processes.
    assert!(r.recv_timeout(LONG).unwrap_err().is_disconnected());
}

/// CPython: _TestProcess.test_parent_process
///
/// By default tandem's children die with their parent (`tests/process.rs` checks that), so
/// the grandchild here is started with `outlive_parent(true)`, as a Python child is. Its
/// `parent_process()` is data (pid and name) without `is_alive()`, so "alive" is "the
/// process that started me is still my parent".
#[test]
fn test_parent_process() {
    let (a, b) = Pipe::new::<String>().unwrap();
    let (hold, held) = Pipe::new::<()>().unwrap();
    let mut middle = Process::spawn(start_watcher_then_wait, (b, held)).unwrap();
    assert_eq!(a.recv_timeout(LONG).unwrap(), "alive");
    middle.terminate().unwrap();
    assert_eq!(
        join_within(&mut middle).unwrap_err(),
        ProcessError::Signaled {
            pid: middle.pid(),
            signal: libc::SIGTERM
        }
    );
    // The middle process is reaped, so the grandchild has been handed to a new parent.
    a.send(&"and now?".to_string()).unwrap();
    assert_eq!(a.recv_timeout(LONG).unwrap(), "not alive");
    // The grandchild returns after its answer: its end closes.
    assert!(a.recv_timeout(LONG).unwrap_err().is_disconnected());
    drop(hold);
}

/// CPython: _TestProcess.test_process (and the list checks of test_active_children)
///
/// Python's kwargs become a second argument here; `authkey` does not exist in tandem.
#[test]
fn test_process() {
    let (conn, child_conn) = Pipe::new::<Report>().unwrap();
    let positional = vec![1, 2];
    let keywords = vec![("hello".to_string(), 23.0), ("bye".to_string(), 2.54)];
    let mut p = Process::builder()
        .name("SomeProcess")
        .daemon(true)
        .spawn(
            report_and_wait,
            (child_conn, positional.clone(), keywords.clone()),
        )
        .unwrap();
    assert_eq!(p.name(), "SomeProcess");
    assert!(p.daemon());
    assert_eq!(p.exitcode(), None);
    assert!(p.is_alive());

    let (got_positional, got_keywords, name, pid, daemon) = conn.recv_timeout(LONG).unwrap();
    assert_eq!(got_positional, positional);
    assert_eq!(got_keywords, keywords);
    assert_eq!(name, "SomeProcess");
    assert_eq!(pid, p.pid());
    assert!(daemon);

    // It is waiting for us: running, listed, no exit code yet.
    assert!(p.is_alive());
    assert_eq!(p.exitcode(), None);
    let listed: Vec<_> = active_children()
        .into_iter()
        .filter(|c| c.pid == p.pid())
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "SomeProcess");
    assert!(listed[0].daemon);

    conn.send(&(vec![], vec![], String::new(), 0, false))
        .unwrap();
    join_within(&mut p).unwrap();
    assert_eq!(p.exitcode(), Some(0));
    assert!(!p.is_alive());
    assert!(!active_children().iter().any(|c| c.pid == p.pid()));
}

/// CPython: _TestProcess.test_process_mainthread_native_id
///
/// The function runs on the child's own main thread (its thread id is its pid), which is
/// not any thread of ours.
#[test]
fn test_process_mainthread_native_id() {
    let child = Process::spawn(my_ids, ()).unwrap();
    let child_pid = child.pid();
    let (pid, tid) = child.join().unwrap();
    assert_eq!(pid, child_pid);
    assert_eq!(
        tid,
        i64::from(child_pid),
        "the function runs on the main thread"
    );
    assert_ne!(tid, i64::from(std::process::id()));
}

/// Python's `_kill_process`: a daemon child that is running and listed, joined with a zero
/// timeout (still running), then stopped with `stop`; its exit code.
fn kill_process(stop: fn(&Process<()>)) -> i32 {
    let (a, b) = Pipe::new::<String>().unwrap();
    let mut p = Process::builder()
        .daemon(true)
        .spawn(ready_then_wait, b)
        .unwrap();
    assert!(p.is_alive());
    assert!(active_children()
        .iter()
        .any(|c| c.pid == p.pid() && c.daemon));
    assert_eq!(p.exitcode(), None);
    assert_eq!(a.recv_timeout(LONG).unwrap(), "ready");

    // Python's join(0) and join(-1): return at once, the child still runs. (A `Duration`
    // cannot be negative; zero is the shortest wait.)
    for _ in 0..2 {
        assert_eq!(
            p.join_timeout(Duration::ZERO).unwrap_err(),
            ProcessError::Timeout { pid: p.pid() }
        );
        assert!(p.is_alive());
    }

    stop(&p);
    let err = join_within(&mut p).unwrap_err();
    assert!(!p.is_alive());
    assert!(!active_children().iter().any(|c| c.pid == p.pid()));
    let code = p.exitcode().expect("an ended child has an exit code");
    assert_eq!(err.exitcode(), Some(code));
    drop(a);
    code
}

/// CPython: _TestProcess.test_terminate
#[test]
fn test_terminate() {
    let code = kill_process(|p| p.terminate().unwrap());
    assert_eq!(code, -libc::SIGTERM);
}

/// CPython: _TestProcess.test_kill
#[test]
fn test_kill() {
    let code = kill_process(|p| p.kill().unwrap());
    assert_eq!(code, -libc::SIGKILL);
}

/// CPython: _TestProcess.test_interrupt_no_handler
///
/// tandem has no `interrupt()` and Rust no `KeyboardInterrupt`, so CPython's
/// `test_interrupt` (exit code 1 from the exception) does not apply; a `SIGINT` sent by
/// other means finds no handler and ends the child with `-SIGINT`, as in this test.
#[test]
fn test_interrupt_no_handler() {
    let code = kill_process(|p| {
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped (it is
        // waiting on a connection we hold), so the pid still names it.
        let r = unsafe { libc::kill(p.pid() as libc::pid_t, libc::SIGINT) };
        assert_eq!(r, 0);
    });
    assert_eq!(code, -libc::SIGINT);
}

/// CPython: _TestProcess.test_cpu_count
///
/// Extends `tests/process.rs` (`cpu_count() >= 1`): a child counts the same CPUs.
#[test]
fn test_cpu_count() {
    let cpus = cpu_count();
    assert!(cpus >= 1);
    assert_eq!(
        Process::spawn(my_cpu_count, ()).unwrap().join().unwrap(),
        cpus
    );
}

// CPython: _TestProcess.test_active_children — covered by `tests/process.rs`
// (`active_children_lists_running_children_only`); `test_process` and `kill_process` above
// add the daemon flag and the "not listed once ended" checks for other exits.

/// CPython: _TestProcess.test_recursion
///
/// Each process passes the one writer on to its children in turn; a child hands it back
/// through `join` (a handle in a return value travels like one in the arguments).
#[test]
fn test_recursion() {
    let (r, w) = Pipe::one_way::<Vec<u8>>().unwrap();
    let w = recurse((w, vec![]));
    let mut result = Vec::new();
    loop {
        match r.try_recv() {
            Ok(id) => result.push(id),
            Err(e) => {
                assert!(e.is_timeout(), "{e:?}");
                break;
            }
        }
    }
    let expected: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        vec![0, 0],
        vec![0, 1],
        vec![1],
        vec![1, 0],
        vec![1, 1],
    ];
    assert_eq!(result, expected);
    drop(w);
    assert!(r.recv_timeout(LONG).unwrap_err().is_disconnected());
}

// CPython: _TestProcess.test_sentinel — does not apply: a `Process` exposes no descriptor to
// wait on; `join_timeout` and `is_alive` are the ways to wait for or check a child.

// CPython: _TestProcess.test_close — differs by design: there is no `close()`. Dropping a
// `Process` releases the handle (the child runs on and is still reaped), and `join`
// consumes it, so "use after close" cannot be written. A child that exits with code 0 from
// inside its function is checked in `tests/process.rs`.

/// CPython: _TestProcess.test_many_processes
///
/// Many children that end on their own, then many terminated at once — some of them
/// surely before they reached their function.
#[test]
fn test_many_processes() {
    const N: usize = 20;
    let mut procs: Vec<_> = (0..N).map(|_| Process::spawn(nap, ()).unwrap()).collect();
    for p in &mut procs {
        join_within(p).unwrap();
        assert_eq!(p.exitcode(), Some(0));
    }

    let mut ends = Vec::new();
    let mut procs: Vec<_> = (0..N)
        .map(|_| {
            let (a, b) = Pipe::new::<String>().unwrap();
            ends.push(a);
            Process::spawn(wait_for_word, b).unwrap()
        })
        .collect();
    for p in &procs {
        p.terminate().unwrap();
    }
    for p in &mut procs {
        let err = join_within(p).unwrap_err();
        assert_eq!(
            err,
            ProcessError::Signaled {
                pid: p.pid(),
                signal: libc::SIGTERM
            }
        );
        assert_eq!(p.exitcode(), Some(-libc::SIGTERM));
    }
    drop(ends);

    // Python's version tries to overwhelm the fork server; here, several threads start
    // children at once through the one supervisor.
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            scope.spawn(move || {
                for i in 0..N as u64 / 4 {
                    let x = t * 100 + i;
                    let mut p = Process::spawn(square, x).unwrap();
                    assert_eq!(join_within(&mut p).unwrap(), x * x);
                }
            });
        }
    });
}

static TRACKED_DROPS: AtomicUsize = AtomicUsize::new(0);

/// An argument that counts its drops in this process.
#[derive(Serialize, Deserialize)]
struct Tracked(u32);

impl Drop for Tracked {
    fn drop(&mut self) {
        TRACKED_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

fn take_tracked(args: (Tracked, Connection<u8>)) -> u32 {
    args.0 .0 + 1
}

/// CPython: _TestProcess.test_lose_target_ref
///
/// The target here is a plain `fn` (nothing to lose); the arguments are what a `Process`
/// could hold on to. `spawn` drops the parent's copy at once: the value is dropped before
/// `spawn` returns, and a connection end passed along is closed in the parent, so the end
/// we kept sees end-of-stream once the child is gone.
#[test]
fn test_lose_target_ref() {
    let (a, b) = Pipe::new::<u8>().unwrap();
    let before = TRACKED_DROPS.load(Ordering::SeqCst);
    let child = Process::spawn(take_tracked, (Tracked(5), b)).unwrap();
    assert_eq!(TRACKED_DROPS.load(Ordering::SeqCst), before + 1);
    assert_eq!(child.join().unwrap(), 6);
    assert!(a.recv_timeout(LONG).unwrap_err().is_disconnected());
}

/// CPython: _TestProcess.test_child_fd_inflation
///
/// Children started side by side do not inherit each other's descriptors: each has the
/// same number open.
#[test]
fn test_child_fd_inflation() {
    const N: usize = 5;
    let mut ends = Vec::new();
    let mut procs = Vec::new();
    for _ in 0..N {
        let (a, b) = Pipe::new::<usize>().unwrap();
        procs.push(Process::spawn(count_fds_then_wait, b).unwrap());
        ends.push(a);
    }
    let counts: Vec<usize> = ends.iter().map(|a| a.recv_timeout(LONG).unwrap()).collect();
    assert!(counts.iter().all(|&c| c == counts[0]), "{counts:?}");
    drop(ends);
    for p in &mut procs {
        join_within(p).unwrap();
    }
}

/// CPython: _TestProcess.test_wait_for_threads (the process analogue)
///
/// tandem's threads have no daemon flag and, as in any Rust program, a child does not wait
/// for its threads when its function returns (see `pytandem::thread`), so the thread version
/// does not apply. What does: a child waits at exit for its non-daemon children, as
/// Python's does, so its parent's `join` returns only after the grandchild's work.
#[test]
fn test_wait_for_threads() {
    let value = Value::new(0u32).unwrap();
    let (returned, child_end) = Pipe::new::<()>().unwrap();
    let (go, leaf_end) = Pipe::new::<()>().unwrap();
    let mut child =
        Process::spawn(start_leaf_and_return, (child_end, leaf_end, value.clone())).unwrap();
    returned.recv_timeout(LONG).unwrap();
    // The function has returned, but the leaf waits for `go`: the child cannot have ended.
    assert_eq!(
        child.join_timeout(Duration::from_millis(200)).unwrap_err(),
        ProcessError::Timeout { pid: child.pid() }
    );
    assert_eq!(value.get(), 0);
    go.send(&()).unwrap();
    join_within(&mut child).unwrap();
    assert_eq!(
        value.get(),
        1,
        "the child ended before its child's work was done"
    );
}

/// CPython: _TestProcess.test_error_on_stdio_flush_2
///
/// A child that breaks its own stdout and stderr still exits 0 and returns its value;
/// a panic with stderr closed still reaches the parent with its message. (The `_1` variant
/// breaks the parent's streams, which a test harness cannot do to itself.)
#[test]
fn test_error_on_stdio_flush() {
    let mut child = Process::spawn(print_to_closed_streams, ()).unwrap();
    assert_eq!(join_within(&mut child).unwrap(), "still fine");
    assert_eq!(child.exitcode(), Some(0));

    let mut child = Process::spawn(panic_with_closed_stderr, ()).unwrap();
    let err = join_within(&mut child).unwrap_err();
    assert_eq!(
        err,
        ProcessError::Panicked {
            pid: child.pid(),
            message: "nobody hears this but the parent".into()
        }
    );
    assert_eq!(child.exitcode(), Some(1));
}

// CPython: _TestProcess.check_forkserver_death, test_forkserver_* — do not apply: there is
// no fork server; every child is this binary started again by the supervisor thread.

/// CPython: _TestSubclassingProcess.test_sys_exit (exit codes) and
/// _TestPool.test_map_no_failfast's large exception
///
/// Extends `tests/process.rs` (exit codes 3 and 0, a panic's message): more codes, codes
/// that a panic (1) or a refused start (2) also give, an abort, a panic whose payload is
/// not a string, and a 1 MiB panic message arriving whole.
#[test]
fn test_sys_exit() {
    for code in [1, 2, 8, 127, 255] {
        let mut child = Process::spawn(exit_with, code).unwrap();
        let err = join_within(&mut child).unwrap_err();
        assert_eq!(
            err,
            ProcessError::Exited {
                pid: child.pid(),
                code
            },
            "exit({code}) is an exit, not a panic or a refusal"
        );
        assert_eq!(child.exitcode(), Some(code));
        assert_eq!(err.exitcode(), Some(code));
    }

    let mut child = Process::spawn(abort_quietly, ()).unwrap();
    let err = join_within(&mut child).unwrap_err();
    assert_eq!(
        err,
        ProcessError::Signaled {
            pid: child.pid(),
            signal: libc::SIGABRT
        }
    );
    assert_eq!(child.exitcode(), Some(-libc::SIGABRT));

    let mut child = Process::spawn(panic_with_a_number, ()).unwrap();
    let err = join_within(&mut child).unwrap_err();
    assert!(matches!(err, ProcessError::Panicked { .. }), "{err:?}");
    assert_eq!(child.exitcode(), Some(1));

    let len = 1 << 20;
    let mut child = Process::spawn(panic_with_a_long_message, len).unwrap();
    match join_within(&mut child).unwrap_err() {
        ProcessError::Panicked { message, .. } => {
            assert_eq!(message.len(), len);
            assert!(message.bytes().all(|b| b == b'x'));
        }
        other => panic!("expected a panic, got {other:?}"),
    }
}

// =======================================================================================
// _TestConnection, _TestPoll, _TestPicklingConnections
// =======================================================================================

/// Python's `[1, 2.25, None]`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum Py {
    Int(i64),
    Float(f64),
    None,
}

/// CPython: _TestConnection.test_connection
///
/// Typed values and raw bytes share one stream: a typed message echoed as raw bytes by the
/// child decodes again. `recv_bytes_into` and `fileno()` have no counterpart (a
/// `Connection` hands out owned `Vec`s and keeps its descriptor to itself).
#[test]
fn test_connection() {
    let (conn, child_conn) = Pipe::new::<Vec<Py>>().unwrap();
    let mut p = Process::builder()
        .daemon(true)
        .spawn(echo_bytes::<Vec<Py>>, child_conn)
        .unwrap();

    let seq = vec![Py::Int(1), Py::Float(2.25), Py::None];
    conn.send(&seq).unwrap();
    assert_eq!(conn.recv_timeout(LONG).unwrap(), seq);

    let msg = b"hello world".to_vec();
    conn.send_bytes(&msg).unwrap();
    assert_eq!(conn.recv_bytes_timeout(LONG).unwrap(), msg);
    let long_msg = msg.repeat(10);
    conn.send_bytes(&long_msg).unwrap();
    assert_eq!(conn.recv_bytes_timeout(LONG).unwrap(), long_msg);

    // Nothing to read: poll says so at once, and after a timeout no shorter than asked.
    assert!(!conn.poll(Duration::ZERO).unwrap());
    let timeout = Duration::from_millis(100);
    let start = Instant::now();
    assert!(!conn.poll(timeout).unwrap());
    assert!(
        start.elapsed() >= timeout,
        "poll gave up after {:?}",
        start.elapsed()
    );

    conn.send(&vec![Py::None]).unwrap();
    assert!(conn.poll(LONG).unwrap());
    assert_eq!(conn.recv().unwrap(), vec![Py::None]);

    let really_big = vec![b'X'; 16 << 20];
    conn.send_bytes(&really_big).unwrap();
    assert!(conn.recv_bytes_timeout(LONG).unwrap() == really_big);

    conn.send_bytes(b"").unwrap(); // tell the child to quit
    join_within(&mut p).unwrap();
    assert!(conn.readable() && conn.writable());
    assert!(conn.recv().unwrap_err().is_disconnected());
    assert!(conn.recv_bytes().unwrap_err().is_disconnected());
}

/// CPython: _TestConnection.test_duplex_false
///
/// Extends `tests/process.rs` (`one_way_pipes_refuse_the_wrong_direction`): the raw-bytes
/// calls are refused too, and the writing end keeps its direction after a trip to a child.
#[test]
fn test_duplex_false() {
    let (reader, writer) = Pipe::one_way::<(bool, bool)>().unwrap();
    assert!(matches!(
        reader.send_bytes(b"no"),
        Err(ConnectionError::NotWritable)
    ));
    assert!(matches!(
        writer.recv_bytes(),
        Err(ConnectionError::NotReadable)
    ));
    assert!(matches!(
        writer.recv_bytes_timeout(Duration::ZERO),
        Err(ConnectionError::NotReadable)
    ));
    assert!(matches!(
        writer.try_recv(),
        Err(ConnectionError::NotReadable)
    ));
    assert!(matches!(
        writer.recv_timeout(Duration::ZERO),
        Err(ConnectionError::NotReadable)
    ));

    let mut child = Process::spawn(write_one_way, writer).unwrap();
    assert_eq!(reader.recv_timeout(LONG).unwrap(), (false, true));
    assert_eq!(
        reader.recv_bytes_timeout(LONG).unwrap(),
        b"raw from the child"
    );
    assert!(
        join_within(&mut child).unwrap(),
        "the child's end could read"
    );
    assert!(reader.recv_timeout(LONG).unwrap_err().is_disconnected());

    // The other way round: the reader is gone, so sending is an error (Python's
    // `BrokenPipeError`), not a signal.
    let (reader, writer) = Pipe::one_way::<(bool, bool)>().unwrap();
    drop(reader);
    assert!(writer.send(&(true, true)).unwrap_err().is_disconnected());
    assert!(writer.send_bytes(b"x").unwrap_err().is_disconnected());
}

/// CPython: _TestConnection.test_spawn_close
///
/// `spawn` closes the parent's copy of a connection passed in the arguments before it
/// returns — possibly before the child has even started — and the child's copy still works.
/// Repeated, since the failure it guards against was a race.
#[test]
fn test_spawn_close() {
    for round in 0..20 {
        let (conn, child_conn) = Pipe::new::<()>().unwrap();
        let mut p = Process::builder()
            .daemon(true)
            .spawn(echo_bytes::<()>, child_conn)
            .unwrap();
        conn.send_bytes(b"hello").unwrap();
        assert_eq!(
            conn.recv_bytes_timeout(LONG).unwrap(),
            b"hello",
            "round {round}"
        );
        conn.send_bytes(b"").unwrap();
        drop(conn);
        join_within(&mut p).unwrap();
    }
}

/// CPython: _TestConnection.test_sendbytes and _TestPoll.test_empty_string
///
/// Python's `send_bytes(buf, offset, size)` is a slice here (an out-of-range slice panics
/// before the call, where Python raises `ValueError`). Empty messages are messages: poll
/// sees them, and does not consume them.
#[test]
fn test_sendbytes() {
    let msg: Vec<u8> = (b'a'..=b'z').collect();
    let (a, b) = Pipe::new::<()>().unwrap();
    assert!(!b.poll(Duration::ZERO).unwrap());
    a.send_bytes(&msg).unwrap();
    a.send_bytes(&msg[5..]).unwrap();
    a.send_bytes(&msg[7..7 + 8]).unwrap();
    a.send_bytes(&msg[26..]).unwrap();
    a.send_bytes(&msg[26..26]).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), msg);
    assert_eq!(b.recv_bytes().unwrap(), &msg[5..]);
    assert_eq!(b.recv_bytes().unwrap(), &msg[7..15]);
    assert!(b.poll(Duration::ZERO).unwrap());
    assert!(b.poll(Duration::ZERO).unwrap());
    assert_eq!(b.recv_bytes().unwrap(), b"");
    assert!(b.poll(Duration::ZERO).unwrap());
    assert_eq!(b.recv_bytes().unwrap(), b"");
    assert!(!b.poll(Duration::ZERO).unwrap());
    assert!(b
        .recv_bytes_timeout(Duration::ZERO)
        .unwrap_err()
        .is_timeout());
}

/// CPython: _TestPoll.test_strings
///
/// (Python's child sleeps between messages; ours sends at its own pace, and the reader
/// polls before each one.)
#[test]
fn test_strings() {
    let strings: Vec<Vec<u8>> = [&b"hello"[..], b"", b"a", b"b", b"", b"bye", b"", b"lop"]
        .iter()
        .map(|s| s.to_vec())
        .collect();
    let (a, b) = Pipe::new::<()>().unwrap();
    let mut p = Process::spawn(send_strings, (b, strings.clone())).unwrap();
    for s in &strings {
        assert!(a.poll(LONG).unwrap());
        assert_eq!(&a.recv_bytes().unwrap(), s);
    }
    join_within(&mut p).unwrap();
    assert!(a.poll(LONG).unwrap(), "end of stream counts as readable");
    assert!(a.recv_bytes().unwrap_err().is_disconnected());
}

/// CPython: _TestPoll.test_boundaries
///
/// A poll in another process must not pull in (part of) a message. Python's reader is
/// shared by fork; ours goes to the child and comes back through `join` — which it could
/// not if the poll had buffered anything — and then both messages are still there, whole.
#[test]
fn test_boundaries() {
    let (r, w) = Pipe::one_way::<()>().unwrap();
    let mut p = Process::spawn(poll_and_give_back, r).unwrap();
    let messages: [&[u8]; 2] = [b"first", b"second"];
    for m in messages {
        w.send_bytes(m).unwrap();
    }
    drop(w);
    let (polled, r) = join_within(&mut p).unwrap();
    assert!(polled);
    assert_eq!(r.recv_bytes().unwrap(), messages[0]);
    assert_eq!(r.recv_bytes().unwrap(), messages[1]);
    assert!(r.recv_bytes().unwrap_err().is_disconnected());
}

/// CPython: _TestPoll.test_dont_merge
#[test]
fn test_dont_merge() {
    let (a, b) = Pipe::new::<()>().unwrap();
    assert!(!a.poll(Duration::ZERO).unwrap());
    assert!(!a.poll(Duration::from_millis(100)).unwrap());
    let strings: Vec<Vec<u8>> = vec![b"a".to_vec(), b"b".to_vec(), b"cd".to_vec()];
    let mut p = Process::spawn(send_strings, (b, strings)).unwrap();
    assert_eq!(a.recv_bytes_timeout(LONG).unwrap(), b"a");
    assert!(a.poll(LONG).unwrap());
    assert!(a.poll(LONG).unwrap());
    assert_eq!(a.recv_bytes().unwrap(), b"b");
    assert!(a.poll(LONG).unwrap());
    assert!(a.poll(LONG).unwrap());
    assert!(a.poll(Duration::ZERO).unwrap());
    assert_eq!(a.recv_bytes().unwrap(), b"cd");
    join_within(&mut p).unwrap();
}

// CPython: _TestConnection.test_fd_transfer — raw descriptors are not sent on their own in
// tandem (`reduction.send_handle` has no counterpart); a descriptor travels inside a
// handle. A `Connection` passed over a `Connection` is checked in `tests/process.rs`
// (`a_connection_travels_to_a_child_and_over_a_connection`) and below.

/// CPython: _TestConnection.test_large_fd_transfer
///
/// The child fills every descriptor number below 1100 (past `select`'s 1024, when the limit
/// allows) before it receives a connection, which then lands above them and still works.
#[test]
fn test_large_fd_transfer() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we own.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(got, 0);
    let above = (limit.rlim_cur.saturating_sub(50)).min(1100) as i32;
    assert!(
        above > 256,
        "the descriptor limit is too small for this test"
    );

    let (a, b) = Pipe::new::<Connection<String>>().unwrap();
    let mut p = Process::spawn(use_a_high_descriptor, (b, above)).unwrap();
    let (x, y) = Pipe::new::<String>().unwrap();
    a.send(&y).unwrap();
    drop(y);
    x.send(&"ping".to_string()).unwrap();
    assert_eq!(x.recv_timeout(LONG).unwrap(), "ping -> pong");
    assert!(join_within(&mut p).unwrap() >= above);
    assert!(x.recv_timeout(LONG).unwrap_err().is_disconnected());
}

/// CPython: _TestConnection.test_missing_fd_transfer
///
/// A message that should carry a handle but came without its descriptor (here: raw bytes
/// shaped like an encoded `Connection`) is a decode error, and the stream stays usable.
#[test]
fn test_missing_fd_transfer() {
    let (a, b) = Pipe::new::<Connection<u8>>().unwrap();
    // An encoded Connection: descriptor #0, readable, writable, limit 100 — but no descriptor.
    a.send_bytes(&[0, 1, 1, 100]).unwrap();
    match b.recv_timeout(LONG) {
        Err(ConnectionError::Decode(why)) => {
            assert!(why.contains("file descriptor"), "{why}")
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    let (x, y) = Pipe::new::<u8>().unwrap();
    a.send(&y).unwrap();
    drop(y);
    let y = b.recv_timeout(LONG).unwrap();
    y.send(&3).unwrap();
    assert_eq!(x.recv_timeout(LONG).unwrap(), 3);
}

// CPython: _TestConnection.test_context — differs by design: there is no `close()` or
// `with`; a `Connection` closes when dropped, and a dropped one cannot be used.

/// CPython: _TestPicklingConnections.test_access
///
/// Both ends of one-way pipes sent over a connection keep their direction in the child.
#[test]
fn test_access() {
    let (conn, child_conn) = Pipe::new::<Access>().unwrap();
    let mut p = Process::builder()
        .daemon(true)
        .spawn(child_access, child_conn)
        .unwrap();

    let (r, w) = Pipe::one_way::<String>().unwrap();
    conn.send(&Access::Conn(w)).unwrap();
    assert_eq!(r.recv_timeout(LONG).unwrap(), "all is well");
    // The child dropped the writer, and ours went with the message: end of stream.
    assert!(r.recv_timeout(LONG).unwrap_err().is_disconnected());

    let (r, w) = Pipe::one_way::<String>().unwrap();
    conn.send(&Access::Conn(r)).unwrap();
    w.send(&"foobar".to_string()).unwrap();
    drop(w);
    match conn.recv_timeout(LONG).unwrap() {
        Access::Text(t) => assert_eq!(t, "foobar".repeat(2)),
        other => panic!("expected text, got {other:?}"),
    }
    join_within(&mut p).unwrap();
}

// CPython: _TestPicklingConnections.test_pickling, _TestListener, _TestListenerClient — do
// not apply: tandem has no `Listener`/`Client` or socket pickling.

// =======================================================================================
// _TestValue, _TestArray, _TestSharedCTypes
// =======================================================================================

/// CPython: _TestValue.test_value
///
/// Python's type codes `i d h q c` are `i32 f64 i16 i64 u8` here.
#[test]
fn test_value() {
    let values: Values = (
        Value::new(4343).unwrap(),
        Value::new(3.625).unwrap(),
        Value::new(-232).unwrap(),
        Value::new(1 << 33).unwrap(),
        Value::new(b'x').unwrap(),
    );
    assert_eq!(values.0.get(), 4343);
    assert_eq!(values.1.get(), 3.625);
    assert_eq!(values.2.get(), -232);
    assert_eq!(values.3.get(), 1 << 33);
    assert_eq!(values.4.get(), b'x');
    let shared = (
        values.0.clone(),
        values.1.clone(),
        values.2.clone(),
        values.3.clone(),
        values.4.clone(),
    );
    let mut p = Process::builder()
        .daemon(true)
        .spawn(set_values, shared)
        .unwrap();
    join_within(&mut p).unwrap();
    assert_eq!(values.0.get(), 24234);
    assert_eq!(values.1.get(), -4.25);
    assert_eq!(values.2.get(), 234);
    assert_eq!(values.3.get(), 1 << 34);
    assert_eq!(values.4.get(), b'y');
}

/// CPython: _TestValue.test_rawvalue
///
/// A `RawValue` holds an integer (or `bool`) with atomic access, so the `d` (double) case of
/// `test_value` has no raw counterpart.
#[test]
fn test_rawvalue() {
    let values: RawValues = (
        RawValue::new(4343).unwrap(),
        RawValue::new(-232).unwrap(),
        RawValue::new(1 << 33).unwrap(),
        RawValue::new(b'x').unwrap(),
    );
    assert_eq!(values.0.load(Ordering::SeqCst), 4343);
    assert_eq!(values.1.load(Ordering::SeqCst), -232);
    assert_eq!(values.2.load(Ordering::SeqCst), 1 << 33);
    assert_eq!(values.3.load(Ordering::SeqCst), b'x');
    let shared = (
        values.0.clone(),
        values.1.clone(),
        values.2.clone(),
        values.3.clone(),
    );
    let mut p = Process::builder()
        .daemon(true)
        .spawn(set_raw_values, shared)
        .unwrap();
    join_within(&mut p).unwrap();
    assert_eq!(values.0.load(Ordering::SeqCst), 24234);
    assert_eq!(values.1.load(Ordering::SeqCst), 234);
    assert_eq!(values.2.load(Ordering::SeqCst), 1 << 34);
    assert_eq!(values.3.load(Ordering::SeqCst), b'y');
}

/// CPython: _TestValue.test_getobj_getlock and _TestArray.test_getobj_getlock_obj
///
/// `get_lock()` is `lock()` / `try_lock()` / `lock_timeout()`; the check is that the lock
/// excludes other *processes*, both ways. Python's `lock=None`/`lock=<Lock>`/`lock=False`
/// choices do not apply: a `Value`/`Array` always has its own lock, and the lock-free kind
/// is `RawValue`/`RawArray`, which has no lock method at all (checked by the compiler).
#[test]
fn test_getobj_getlock() {
    let value = Value::new(5u32).unwrap();
    let array = Array::from_slice(&[0i32, 1, 2, 3]).unwrap();

    // We hold both locks: a child can take neither.
    {
        let _v = value.lock();
        let _a = array.lock();
        let probe = Process::spawn(probe_locks, (value.clone(), array.clone())).unwrap();
        assert_eq!(probe.join().unwrap(), (true, true, true));
    }

    // A child holds both locks: we can take neither until it lets go.
    let (conn, child_conn) = Pipe::new::<String>().unwrap();
    let mut p = Process::spawn(hold_locks, (value.clone(), array.clone(), child_conn)).unwrap();
    assert_eq!(conn.recv_timeout(LONG).unwrap(), "locked");
    assert!(value.try_lock().is_none());
    assert!(array.try_lock().is_none());
    let start = Instant::now();
    assert!(value.lock_timeout(Duration::from_millis(20)).is_none());
    assert!(start.elapsed() >= Duration::from_millis(20));
    conn.send(&"release".to_string()).unwrap();
    assert_eq!(*value.lock_timeout(LONG).expect("the child let go"), 7);
    assert_eq!(array.lock_timeout(LONG).expect("the child let go")[0], 9);
    join_within(&mut p).unwrap();
    assert_eq!(array.to_vec(), [9, 1, 2, 3]);
}

// CPython: _TestValue.test_invalid_typecode, _TestArray.test_invalid_typecode — checked by
// the compiler: `Value`/`Array` need a `bytemuck::Pod` type and `RawValue`/`RawArray` an
// integer or `bool`, so there is no bad type code to pass at run time.

const SEQ: [i32; 10] = [680, 626, 934, 821, 150, 233, 548, 982, 714, 831];

fn expected_prefix_sums() -> Vec<i32> {
    let mut seq = SEQ.to_vec();
    seq[4..8].copy_from_slice(&[1, 2, 3, 4]);
    for i in 1..seq.len() {
        seq[i] += seq[i - 1];
    }
    seq
}

/// CPython: _TestArray.test_array
#[test]
fn test_array() {
    let arr = Array::from_slice(&SEQ).unwrap();
    assert_eq!(arr.len(), SEQ.len());
    assert_eq!(arr.get(3), SEQ[3]);
    assert_eq!(arr.to_vec()[2..7], SEQ[2..7]);
    arr.lock()[4..8].copy_from_slice(&[1, 2, 3, 4]);
    let mut seq = SEQ.to_vec();
    seq[4..8].copy_from_slice(&[1, 2, 3, 4]);
    assert_eq!(arr.to_vec(), seq);

    let mut p = Process::builder()
        .daemon(true)
        .spawn(prefix_sums, arr.clone())
        .unwrap();
    join_within(&mut p).unwrap();
    assert_eq!(arr.to_vec(), expected_prefix_sums());
}

/// CPython: _TestArray.test_rawarray
#[test]
fn test_rawarray() {
    let arr = RawArray::from_slice(&SEQ).unwrap();
    assert_eq!(arr.len(), SEQ.len());
    assert_eq!(arr[3].load(Ordering::SeqCst), SEQ[3]);
    for (slot, v) in arr[4..8].iter().zip([1, 2, 3, 4]) {
        slot.store(v, Ordering::SeqCst);
    }
    let mut p = Process::builder()
        .daemon(true)
        .spawn(raw_prefix_sums, arr.clone())
        .unwrap();
    join_within(&mut p).unwrap();
    let got: Vec<i32> = arr.iter().map(|s| s.load(Ordering::SeqCst)).collect();
    assert_eq!(got, expected_prefix_sums());
}

/// CPython: _TestArray.test_array_from_size
///
/// New arrays start zeroed, every time (issue #11675), locked and raw alike.
#[test]
fn test_array_from_size() {
    let size = 10;
    for _ in 0..3 {
        let arr = Array::<i32>::new(size).unwrap();
        assert_eq!(arr.len(), size);
        assert_eq!(arr.to_vec(), vec![0; size]);
        arr.lock()
            .iter_mut()
            .zip(0..)
            .for_each(|(slot, v)| *slot = v);
        assert_eq!(arr.to_vec(), (0..10).collect::<Vec<i32>>());

        let raw = RawArray::<i32>::new(size).unwrap();
        assert_eq!(raw.len(), size);
        assert!(raw.iter().all(|s| s.load(Ordering::SeqCst) == 0));
        for (slot, v) in raw.iter().zip(0..) {
            slot.store(v, Ordering::SeqCst);
        }
        assert_eq!(raw[9].load(Ordering::SeqCst), 9);
    }
}

/// CPython: _TestSharedCTypes.test_sharedctypes
///
/// A `#[repr(C)]` struct (CPython's `_Foo`: `int`, `double`, `long long`), numbers, an
/// array of doubles and a fixed byte string, all doubled by a child. (`lock=False` has
/// no counterpart: see `test_getobj_getlock`.)
#[test]
fn test_sharedctypes() {
    let x = Value::new(7i32).unwrap();
    let y = Value::new(1.0 / 3.0f64).unwrap();
    let z = Value::new(1i64 << 60 >> 1).unwrap();
    let record = Value::new(Foo {
        x: 3,
        _pad: 0,
        y: 2.0,
        z: 5,
    })
    .unwrap();
    let arr = Array::from_slice(&[0.0f64, 0.25, 0.5, 0.75, 1.0]).unwrap();
    let mut hello = [0u8; 16];
    hello[..5].copy_from_slice(b"hello");
    let string = Value::new(hello).unwrap();

    let args = (
        x.clone(),
        y.clone(),
        z.clone(),
        record.clone(),
        arr.clone(),
        string.clone(),
    );
    let mut p = Process::spawn(double_everything, args).unwrap();
    join_within(&mut p).unwrap();

    assert_eq!(x.get(), 14);
    assert_eq!(y.get(), 2.0 / 3.0);
    assert_eq!(z.get(), 1i64 << 60);
    assert_eq!(
        record.get(),
        Foo {
            x: 6,
            _pad: 0,
            y: 4.0,
            z: 5
        }
    );
    assert_eq!(arr.to_vec(), [0.0, 0.5, 1.0, 1.5, 2.0]);
    assert_eq!(&string.get()[..11], b"hellohello\0");
}
