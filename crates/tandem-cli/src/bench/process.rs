//! Processes and pipes: start + join a child; a message's round trip to a child and back;
//! a one-way stream of small messages. Each against the floor the OS sets (this binary
//! re-executed with `std::process::Command`; a raw `socketpair` read/write loop),
//! `ipc-channel`, and CPython's `multiprocessing`.
//!
//! The children are this program started again: tandem's through `pytandem::process`, the
//! floors through [`floor_child`], which `main` calls when `TANDEM_BENCH_FLOOR` is set.

use super::{time, Bench};
use ipc_channel::ipc::{
    self, IpcBytesReceiver, IpcBytesSender, IpcOneShotServer, IpcReceiver, IpcSender,
};
use pytandem::process::{Connection, Pipe, Process};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};

/// The environment variable that makes this program a floor child: `exit`, `echo:N`
/// (echo N-byte messages on stdin) or `sink` (count 8-byte messages until the sentinel).
const FLOOR_ENV: &str = "TANDEM_BENCH_FLOOR";
/// The last message of a stream.
pub(super) const SENTINEL: u64 = u64::MAX;

pub(crate) fn benches() -> Vec<Bench> {
    vec![
        Bench::new(
            "process.spawn_join",
            "start a child process that runs a function, and join it (2 cores)",
        )
        .native("tandem", |iters| {
            time(|| {
                for _ in 0..iters {
                    Process::spawn(noop, ())
                        .expect("spawn")
                        .join()
                        .expect("join");
                }
            })
        })
        .native("floor", |iters| {
            time(|| {
                for _ in 0..iters {
                    let status = floor_command("exit").status().expect("re-exec");
                    assert!(status.success());
                }
            })
        })
        .cpython_as("cpython-fork", CPY_SPAWN_FORK, CPY_SPAWN_BODY)
        .cpython_as("cpython-spawn", CPY_SPAWN_SPAWN, CPY_SPAWN_BODY),
        roundtrip::<u64>(
            "pipe.roundtrip.8b",
            "an 8-byte message to a child process and back (2 processes, 2 cores)",
            7,
            roundtrip_script("", "7"),
        ),
        roundtrip_4k(),
        stream(),
    ]
}

pub(crate) fn sizes() -> Vec<(&'static str, usize)> {
    vec![
        ("process::Process<()>", std::mem::size_of::<Process<()>>()),
        (
            "process::Connection<u64>",
            std::mem::size_of::<Connection<u64>>(),
        ),
    ]
}

/// What a message in these benchmarks is: an 8-byte integer or a 4 KiB buffer.
trait Message: Serialize + DeserializeOwned + Clone + 'static {
    /// Its size on a raw socket (the floor sends exactly this many bytes).
    fn raw_len(&self) -> usize;
    /// tandem's echo child for this type.
    fn echo() -> fn(Connection<Self>);
}

impl Message for u64 {
    fn raw_len(&self) -> usize {
        8
    }
    fn echo() -> fn(Connection<Self>) {
        echo::<u64>
    }
}

fn roundtrip<M: Message>(
    name: &'static str,
    about: &'static str,
    msg: M,
    cpython: &'static str,
) -> Bench {
    let len = msg.raw_len();
    let (m1, m2) = (msg.clone(), msg);
    Bench::new(name, about)
        .native("tandem", {
            let child = RefCell::new(None::<(Connection<M>, Process<()>)>);
            move |iters| {
                let mut child = child.borrow_mut();
                let (conn, _) = child.get_or_insert_with(|| {
                    let (a, b) = Pipe::new::<M>().expect("pipe");
                    (a, Process::spawn(M::echo(), b).expect("spawn"))
                });
                time(|| {
                    for _ in 0..iters {
                        conn.send(&m1).expect("send");
                        conn.recv().expect("recv");
                    }
                })
            }
        })
        .native("floor", floor_roundtrip(len))
        .native("ipc-channel", {
            let child = RefCell::new(None::<IpcChild<M>>);
            move |iters| {
                let mut child = child.borrow_mut();
                let c = child.get_or_insert_with(|| IpcChild::start(ipc_echo::<M>));
                time(|| {
                    for _ in 0..iters {
                        c.tx.send(m2.clone()).expect("send");
                        c.rx.recv().expect("recv");
                    }
                })
            }
        })
        .cpython(cpython, CPY_ROUNDTRIP_BODY)
}

/// The floor of a round trip: `len` raw bytes written to an echoing child (this binary
/// re-executed) and read back.
fn floor_roundtrip(len: usize) -> impl Fn(u64) -> std::time::Duration {
    let child = RefCell::new(None::<FloorChild>);
    move |iters| {
        let mut child = child.borrow_mut();
        let child = child.get_or_insert_with(|| FloorChild::start(&format!("echo:{len}")));
        let out = vec![42u8; len];
        let mut back = vec![0u8; len];
        let s = &mut child.stream;
        time(|| {
            for _ in 0..iters {
                s.write_all(&out).expect("write");
                s.read_exact(&mut back).expect("read");
            }
        })
    }
}

/// 4 KiB of bytes each way, through each transport's raw-bytes API (tandem's and Python's
/// `send_bytes`/`recv_bytes`, ipc-channel's bytes channel): typed `Vec<u8>` goes through
/// serde element by element in every Rust codec, which measures serde, not the pipe.
fn roundtrip_4k() -> Bench {
    const LEN: usize = 4096;
    Bench::new(
        "pipe.roundtrip.4k",
        "4 KiB of bytes to a child process and back, raw-bytes APIs (2 processes, 2 cores)",
    )
    .native("tandem", {
        let child = RefCell::new(None::<(Connection<()>, Process<()>)>);
        move |iters| {
            let mut child = child.borrow_mut();
            let (conn, _) = child.get_or_insert_with(|| {
                let (a, b) = Pipe::new::<()>().expect("pipe");
                (a, Process::spawn(echo_bytes, b).expect("spawn"))
            });
            let msg = vec![42u8; LEN];
            time(|| {
                for _ in 0..iters {
                    conn.send_bytes(&msg).expect("send");
                    conn.recv_bytes().expect("recv");
                }
            })
        }
    })
    .native("floor", floor_roundtrip(LEN))
    .native("ipc-channel", {
        let child = RefCell::new(None::<(IpcBytesSender, IpcBytesReceiver, Process<()>)>);
        move |iters| {
            let mut child = child.borrow_mut();
            let (tx, rx, _) = child.get_or_insert_with(|| {
                let (server, name) =
                    IpcOneShotServer::<(IpcBytesSender, IpcBytesReceiver)>::new().expect("server");
                let process = Process::spawn(ipc_echo_bytes, name).expect("spawn");
                let (_, (tx, rx)) = server.accept().expect("ipc accept");
                (tx, rx, process)
            });
            let msg = vec![42u8; LEN];
            time(|| {
                for _ in 0..iters {
                    tx.send(&msg).expect("send");
                    rx.recv().expect("recv");
                }
            })
        }
    })
    .cpython(
        roundtrip_script("_bytes", "b'*' * 4096"),
        CPY_ROUNDTRIP_BYTES_BODY,
    )
}

fn stream() -> Bench {
    Bench::new(
        "pipe.stream",
        "one-way 8-byte messages to a child process, per message (2 processes, 2 cores)",
    )
    .native("tandem", {
        let child = RefCell::new(None::<(Connection<u64>, Process<()>)>);
        move |iters| {
            let mut child = child.borrow_mut();
            let (conn, _) = child.get_or_insert_with(|| {
                let (a, b) = Pipe::new::<u64>().expect("pipe");
                (a, Process::spawn(sink, b).expect("spawn"))
            });
            time(|| {
                for i in 0..iters {
                    conn.send(&i).expect("send");
                }
                conn.send(&SENTINEL).expect("send");
                assert_eq!(conn.recv().expect("ack"), iters);
            })
        }
    })
    .native("floor", {
        let child = RefCell::new(None::<FloorChild>);
        move |iters| {
            let mut child = child.borrow_mut();
            let s = &mut child
                .get_or_insert_with(|| FloorChild::start("sink"))
                .stream;
            let mut ack = [0u8; 8];
            time(|| {
                for i in 0..iters {
                    s.write_all(&i.to_le_bytes()).expect("write");
                }
                s.write_all(&SENTINEL.to_le_bytes()).expect("write");
                s.read_exact(&mut ack).expect("ack");
                assert_eq!(u64::from_le_bytes(ack), iters);
            })
        }
    })
    .native("ipc-channel", {
        let child = RefCell::new(None::<IpcChild<u64>>);
        move |iters| {
            let mut child = child.borrow_mut();
            let c = child.get_or_insert_with(|| IpcChild::start(ipc_sink));
            time(|| {
                for i in 0..iters {
                    c.tx.send(i).expect("send");
                }
                c.tx.send(SENTINEL).expect("send");
                assert_eq!(c.rx.recv().expect("ack"), iters);
            })
        }
    })
    .cpython(CPY_STREAM, CPY_STREAM_BODY)
}

// ---- tandem's children ----

fn noop(_: ()) {}

fn echo<M: Message>(conn: Connection<M>) {
    while let Ok(m) = conn.recv() {
        if conn.send(&m).is_err() {
            return;
        }
    }
}

fn echo_bytes(conn: Connection<()>) {
    while let Ok(m) = conn.recv_bytes() {
        if conn.send_bytes(&m).is_err() {
            return;
        }
    }
}

fn sink(conn: Connection<u64>) {
    let mut count = 0;
    while let Ok(m) = conn.recv() {
        if m == SENTINEL {
            if conn.send(&count).is_err() {
                return;
            }
            count = 0;
        } else {
            count += 1;
        }
    }
}

// ---- ipc-channel's children: tandem starts the process, ipc-channel connects ----

/// The channels a child hands its parent: one to send on, one to receive from.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct Handshake<M: Message>(IpcSender<M>, IpcReceiver<M>);

struct IpcChild<M: Message> {
    tx: IpcSender<M>,
    rx: IpcReceiver<M>,
    _process: Process<()>,
}

impl<M: Message> IpcChild<M> {
    fn start(child: fn(String)) -> Self {
        let (server, name) = IpcOneShotServer::<Handshake<M>>::new().expect("ipc server");
        let process = Process::spawn(child, name).expect("spawn");
        let (_, Handshake(tx, rx)) = server.accept().expect("ipc accept");
        IpcChild {
            tx,
            rx,
            _process: process,
        }
    }
}

/// Connects to the parent; the channel it receives on and the one it answers on.
fn ipc_connect<M: Message>(server: String) -> (IpcReceiver<M>, IpcSender<M>) {
    let (to_child, from_parent) = ipc::channel::<M>().expect("channel");
    let (to_parent, from_child) = ipc::channel::<M>().expect("channel");
    let hello = IpcSender::<Handshake<M>>::connect(server).expect("connect");
    hello
        .send(Handshake(to_child, from_child))
        .expect("handshake");
    (from_parent, to_parent)
}

fn ipc_echo<M: Message>(server: String) {
    let (rx, tx) = ipc_connect::<M>(server);
    while let Ok(m) = rx.recv() {
        if tx.send(m).is_err() {
            return;
        }
    }
}

fn ipc_echo_bytes(server: String) {
    let (to_child, from_parent) = ipc::bytes_channel().expect("channel");
    let (to_parent, from_child) = ipc::bytes_channel().expect("channel");
    let hello = IpcSender::connect(server).expect("connect");
    hello.send((to_child, from_child)).expect("handshake");
    while let Ok(m) = from_parent.recv() {
        if to_parent.send(&m).is_err() {
            return;
        }
    }
}

fn ipc_sink(server: String) {
    let (rx, tx) = ipc_connect::<u64>(server);
    let mut count = 0;
    while let Ok(m) = rx.recv() {
        if m == SENTINEL {
            if tx.send(count).is_err() {
                return;
            }
            count = 0;
        } else {
            count += 1;
        }
    }
}

// ---- the floors: this binary re-executed, raw reads and writes ----

fn floor_command(role: &str) -> Command {
    let mut c = Command::new("/proc/self/exe");
    c.env(FLOOR_ENV, role);
    c
}

/// A floor child with a raw socket on its stdin; dropped, it is sent EOF and reaped.
pub(super) struct FloorChild {
    child: Child,
    pub(super) stream: UnixStream,
}

impl FloorChild {
    pub(super) fn start(role: &str) -> Self {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        let child = floor_command(role)
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .spawn()
            .expect("re-exec");
        FloorChild {
            child,
            stream: ours,
        }
    }
}

impl Drop for FloorChild {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        let _ = self.child.wait();
    }
}

/// `main` calls this first: if this process is a floor child, it does its job and exits.
pub(crate) fn floor_child() {
    let Ok(role) = std::env::var(FLOOR_ENV) else {
        return;
    };
    let fd = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .expect("stdin");
    let mut s = UnixStream::from(fd);
    if let Some(len) = role.strip_prefix("echo:") {
        let mut buf = vec![0u8; len.parse().expect("echo length")];
        while s.read_exact(&mut buf).is_ok() && s.write_all(&buf).is_ok() {}
    } else if let Some(len) = role.strip_prefix("sink") {
        // Fixed-size records (8 bytes unless `sink:N`); a record of all 0xff ends a batch,
        // answered with the count of records before it.
        let len: usize = len
            .strip_prefix(':')
            .map_or(8, |l| l.parse().expect("sink length"));
        let mut record = vec![0u8; len];
        let mut count = 0u64;
        let mut reader =
            std::io::BufReader::with_capacity(64 * 1024, s.try_clone().expect("clone"));
        while reader.read_exact(&mut record).is_ok() {
            if record.iter().all(|&b| b == 0xff) {
                if s.write_all(&count.to_le_bytes()).is_err() {
                    break;
                }
                count = 0;
            } else {
                count += 1;
            }
        }
    }
    std::process::exit(0);
}

// ---- CPython ----

const CPY_SPAWN_FORK: &str = "import multiprocessing as mp
def noop():
    pass
ctx = mp.get_context('fork')";

const CPY_SPAWN_SPAWN: &str = "import multiprocessing as mp
def noop():
    pass
ctx = mp.get_context('spawn')";

const CPY_SPAWN_BODY: &str = "for _ in range(n):
    p = ctx.Process(target=noop)
    p.start()
    p.join()";

/// CPython's round-trip set-up: a forked child echoing over `mp.Pipe` with `send`/`recv`
/// (`verb` "") or `send_bytes`/`recv_bytes` (`verb` "_bytes"); `msg` is the message.
/// (Leaked: the harness keeps scripts for the whole run.)
fn roundtrip_script(verb: &str, msg: &str) -> &'static str {
    Box::leak(
        format!(
            "import multiprocessing as mp
def echo(c):
    while True:
        try:
            c.send{verb}(c.recv{verb}())
        except EOFError:
            return
if __name__ == '__main__':
    a, b = mp.Pipe()
    p = mp.get_context('fork').Process(target=echo, args=(b,), daemon=True)
    p.start()
    b.close()
    msg = {msg}"
        )
        .into_boxed_str(),
    )
}

const CPY_ROUNDTRIP_BODY: &str = "for _ in range(n):
    a.send(msg)
    a.recv()";

const CPY_ROUNDTRIP_BYTES_BODY: &str = "for _ in range(n):
    a.send_bytes(msg)
    a.recv_bytes()";

const CPY_STREAM: &str = "import multiprocessing as mp
def sink(c):
    count = 0
    while True:
        try:
            m = c.recv()
        except EOFError:
            return
        if m is None:
            c.send(count)
            count = 0
        else:
            count += 1
if __name__ == '__main__':
    a, b = mp.Pipe()
    p = mp.get_context('fork').Process(target=sink, args=(b,), daemon=True)
    p.start()
    b.close()";

const CPY_STREAM_BODY: &str = "for i in range(n):
    a.send(i)
a.send(None)
assert a.recv() == n";
