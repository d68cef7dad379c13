//! Starting a child process that runs a Rust function: `Process`, its builder, and the
//! child's side (`init`).
//!
//! A child is the current binary executed again (`/proc/self/exe`), never a bare `fork` of
//! a parent that may have threads. Its stdin is a Unix socket to the parent (stdin is then
//! replaced by `/dev/null`, as Python's children have it), and an environment variable tells
//! [`init`] that this process is a child. The parent sends a start-up message — a magic
//! number, the build's fingerprint, the function's and its typed trampoline's offsets in the
//! binary, the name, and the encoded arguments with their file descriptors — and the child
//! answers with one report: the encoded return value, a panic message, or why it refused.
//!
//! Functions are found by their offset from a fixed function of this crate, which is the
//! same in every process running the same binary; the fingerprint (the ELF build-id, or the
//! executable's identity when there is none) makes sure it is the same binary before any
//! offset is used.

mod child;
mod error;

pub use child::init;
use child::{fingerprint, trampoline};
pub use error::{ProcessError, SpawnError};

use super::codec;
use super::frame::Channel;
use super::supervisor::{ChildRecord, Exit, Supervisor};
use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
use rustix::process::Signal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The environment variable that marks a child: `"<parent pid>:<die with parent 0/1>"`.
const CHILD_ENV: &str = "TANDEM_PROCESS_CHILD";
/// The start-up message's magic: "tdmstart".
const MAGIC: u64 = u64::from_le_bytes(*b"tdmstart");
/// The argument a child gets: a program whose `main` forgot `init()` sees an unknown flag
/// and (with any argument parser) stops at once instead of running as the parent.
const CHILD_ARG: &str = "--tandem-process-child";

/// Report tags, the first byte of the child's report.
const RETURNED: u8 = 0;
const PANICKED: u8 = 1;
const REFUSED: u8 = 2;

/// Exit codes of a child: Python's 1 for an exception; 2 for a refused start.
const EXIT_PANICKED: i32 = 1;
const EXIT_REFUSED: i32 = 2;

/// The start-up message, before the arguments.
#[derive(Serialize, Deserialize)]
struct Start {
    magic: u64,
    fingerprint: u64,
    trampoline: isize,
    function: isize,
    name: String,
    daemon: bool,
    parent_name: String,
}

/// What a trampoline is: decode the arguments, run the function, report.
type Trampoline = fn(usize, &[u8], Vec<OwnedFd>, &Channel) -> i32;

/// The fixed point function offsets are measured from.
fn anchor() -> usize {
    init as fn() as usize
}

/// `f`'s offset from the anchor: the same in every process running this binary.
pub(crate) fn anchor_offset(f: usize) -> isize {
    f.wrapping_sub(anchor()) as isize
}

/// The address at `offset` from the anchor in this process.
pub(crate) fn from_anchor(offset: isize) -> usize {
    anchor().wrapping_add(offset as usize)
}

/// What this process knows of itself as a child.
struct Current {
    name: String,
    daemon: bool,
    parent: Option<(u32, String)>,
}

static CURRENT: OnceLock<Current> = OnceLock::new();
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A process as [`current_process`] and [`active_children`] describe it (Python's
/// `multiprocessing.current_process()` object, the parts that are data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    /// The operating system's process id.
    pub pid: u32,
    /// The name given at spawn, or Python's default: `"Process-N"`; the first process is
    /// `"MainProcess"`.
    pub name: String,
    /// Whether it is a daemon child (terminated when its parent exits).
    pub daemon: bool,
}

/// This process (Python's `multiprocessing.current_process()`).
pub fn current_process() -> ProcessInfo {
    let pid = std::process::id();
    match CURRENT.get() {
        Some(c) => ProcessInfo {
            pid,
            name: c.name.clone(),
            daemon: c.daemon,
        },
        None => ProcessInfo {
            pid,
            name: "MainProcess".into(),
            daemon: false,
        },
    }
}

/// The process that started this one, if tandem started it (Python's
/// `multiprocessing.parent_process()`): its pid and name. `None` in the main process.
pub fn parent_process() -> Option<ProcessInfo> {
    let (pid, name) = CURRENT.get()?.parent.clone()?;
    Some(ProcessInfo {
        pid,
        name,
        daemon: false,
    })
}

/// The children of this process that have not ended yet (Python's
/// `multiprocessing.active_children()`). Ended children are reaped as they end, so this is
/// never stale by more than the moment it takes.
pub fn active_children() -> Vec<ProcessInfo> {
    let Some(s) = Supervisor::started() else {
        return Vec::new();
    };
    s.live_children()
        .iter()
        .map(|c| ProcessInfo {
            pid: c.pid,
            name: c.name.clone(),
            daemon: c.daemon,
        })
        .collect()
}

/// The number of CPUs this process may run on (Python's `multiprocessing.cpu_count()`,
/// which counts all of the machine's; this respects the affinity mask and cgroup quota, as
/// Python 3.13's `process_cpu_count()` does).
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Settings for a child process (Python's `Process(name=…, daemon=…)` keywords).
///
/// ```
/// pytandem::process::init();
/// use pytandem::process::Process;
///
/// fn greet(who: String) -> String {
///     format!("hello {who} from {}", pytandem::process::current_process().name)
/// }
///
/// let child = Process::builder().name("greeter").spawn(greet, "bob".to_string())?;
/// assert_eq!(child.name(), "greeter");
/// assert_eq!(child.join()?, "hello bob from greeter");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Builder {
    name: Option<String>,
    daemon: bool,
    outlive_parent: bool,
    executable: Option<PathBuf>,
}

impl Builder {
    /// Default settings: named `"Process-N"`, not a daemon, killed if the parent dies.
    pub fn new() -> Self {
        Builder::default()
    }

    /// The child's name (Python's `name=`); see [`current_process`].
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// A daemon child is terminated (`SIGTERM`) when the parent exits normally; the parent
    /// waits for every other child at exit, as Python does (Python's `daemon=True`).
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = daemon;
        self
    }

    /// Let the child live on if the parent process dies abruptly (killed, or crashed). By
    /// default it is killed with `SIGKILL` then, so no child lingers unsupervised.
    pub fn outlive_parent(mut self, outlive: bool) -> Self {
        self.outlive_parent = outlive;
        self
    }

    /// The executable to start instead of this one (Python's
    /// `multiprocessing.set_executable`). It must be the same build of the same program —
    /// a copy, or the file behind a launcher — and call [`init`]; a different build refuses
    /// to run the function ([`ProcessError::Refused`]) rather than jump into other code.
    pub fn executable(mut self, path: impl Into<PathBuf>) -> Self {
        self.executable = Some(path.into());
        self
    }

    /// Starts a child process that runs `function(args)` and returns its result to
    /// [`Process::join`] (Python's `Process(target=function, args=(args,)).start()`).
    ///
    /// `function` is a plain `fn` (a closure that captures nothing coerces to one): the
    /// child is this program started again, and it finds the function by its place in the
    /// binary. `args` and the result travel encoded with serde; handles inside `args` (a
    /// [`Connection`](super::Connection), a [`Value`](super::Value), …) carry their file
    /// descriptors to the child, and the parent's copies are dropped with `args`.
    ///
    /// # Errors
    /// [`SpawnError::Encode`] if `args` cannot be serialized; [`SpawnError::NotInitialized`]
    /// in a child whose `main` did not call [`init`] first; [`SpawnError::Io`] if the
    /// operating system could not start the process.
    #[doc(alias = "start")]
    pub fn spawn<A, R>(self, function: fn(A) -> R, args: A) -> Result<Process<R>, SpawnError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        if std::env::var_os(CHILD_ENV).is_some() {
            return Err(SpawnError::NotInitialized);
        }
        let name = self
            .name
            .unwrap_or_else(|| format!("Process-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed)));
        let start = Start {
            magic: MAGIC,
            fingerprint: fingerprint(),
            trampoline: anchor_offset(trampoline::<A, R> as Trampoline as usize),
            function: anchor_offset(function as *const () as usize),
            name: name.clone(),
            daemon: self.daemon,
            parent_name: current_process().name,
        };
        let encode_err = |e: codec::CodecError| SpawnError::Encode(e.0);
        let (frame, _) = codec::encode_into(&start, Channel::frame_buffer()).map_err(encode_err)?;
        let (mut frame, fds) = codec::encode_into(&args, frame).map_err(encode_err)?;

        let (ours, theirs) = socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )?;
        let exe = self
            .executable
            .unwrap_or_else(|| PathBuf::from("/proc/self/exe"));
        let mut command = Command::new(exe);
        if let Some(arg0) = std::env::args_os().next() {
            command.arg0(arg0);
        }
        let die = if self.outlive_parent { 0 } else { 1 };
        command
            .arg(CHILD_ARG)
            .env(CHILD_ENV, format!("{}:{die}", std::process::id()))
            .stdin(Stdio::from(theirs));
        let supervisor = Supervisor::get()?;
        let record = supervisor.start(command, Channel::new(ours), name, self.daemon)?;
        // A child that died before reading this reports how it died at join.
        let _ = record.channel.send(&mut frame, &fds);
        drop(args);
        Ok(Process {
            record,
            joined: false,
            _result: PhantomData,
        })
    }
}

/// A child process running a Rust function (Python's `multiprocessing.Process`).
///
/// | Python | tandem |
/// | --- | --- |
/// | `p = Process(target=f, args=(a,)); p.start()` | `let p = Process::spawn(f, a)?;` |
/// | `Process(target=f, name=…, daemon=…)` | `Process::builder().name(…).daemon(…).spawn(f, a)?` |
/// | `p.join()` | `p.join()` → the function's return value, or how the child failed |
/// | `p.join(timeout)` | `p.join_timeout(t)` |
/// | `p.exitcode`, `p.is_alive()`, `p.pid`, `p.name` | `p.exitcode()`, `p.is_alive()`, `p.pid()`, `p.name()` |
/// | `p.terminate()`, `p.kill()` | `p.terminate()` (`SIGTERM`), `p.kill()` (`SIGKILL`) |
/// | `if __name__ == "__main__":` | [`init()`] first in `main` ([`child_entry!`](crate::child_entry) in tests) |
///
/// Differences from Python: the child's function returns a value to `join` (Python's
/// discards it), and a panic's message reaches the parent ([`ProcessError::Panicked`]). A
/// `Process` is started by `spawn`, so "join before start" cannot happen; `join` consumes
/// the handle, so a second join is an error only after [`join_timeout`](Process::join_timeout)
/// has already returned the result. Dropping a `Process` does not stop the child: it runs
/// on, is still reaped when it ends, and is waited for at exit unless it is a daemon.
/// Children are reaped the moment they end — no zombies — and, unless
/// [`Builder::outlive_parent`] says otherwise, die with their parent.
///
/// # Examples
/// ```
/// pytandem::process::init();
/// use pytandem::process::Process;
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let child = Process::spawn(square, 12)?;
/// assert_eq!(child.join()?, 144);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Process<R> {
    record: Arc<ChildRecord>,
    joined: bool,
    _result: PhantomData<fn() -> R>,
}

impl Process<()> {
    /// [`Builder::new`]: settings before the start.
    pub fn builder() -> Builder {
        Builder::new()
    }
}

impl<R: DeserializeOwned> Process<R> {
    /// Starts a child running `function(args)` with default settings; see [`Builder::spawn`].
    #[doc(alias = "start")]
    pub fn spawn<A>(function: fn(A) -> R, args: A) -> Result<Process<R>, SpawnError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize,
    {
        Builder::new().spawn(function, args)
    }

    /// Waits for the child to end; its function's return value.
    ///
    /// # Errors
    /// How the child failed: [`ProcessError::Panicked`] (with the message),
    /// [`ProcessError::Signaled`] (killed), [`ProcessError::Exited`] (it exited before its
    /// function returned), [`ProcessError::Refused`], [`ProcessError::Decode`], or
    /// [`ProcessError::AlreadyJoined`] if `join_timeout` already returned the result.
    pub fn join(mut self) -> Result<R, ProcessError> {
        self.record.done.wait();
        self.take_result()
    }

    /// Waits at most `timeout` for the child to end (Python's `join(timeout)`); the child is
    /// left running on [`ProcessError::Timeout`], and this may be called again.
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<R, ProcessError> {
        if !self.record.done.wait_timeout(timeout) {
            return Err(ProcessError::Timeout { pid: self.pid() });
        }
        self.take_result()
    }

    fn take_result(&mut self) -> Result<R, ProcessError> {
        let pid = self.pid();
        if self.joined {
            return Err(ProcessError::AlreadyJoined { pid });
        }
        self.joined = true;
        let mut outcome = self.record.outcome.acquire();
        outcome.taken = true;
        let exit = outcome.exit.unwrap_or(Exit::Lost);
        let Some((bytes, fds)) = outcome.report.take() else {
            return Err(match exit {
                Exit::Signal(signal) => ProcessError::Signaled { pid, signal },
                Exit::Code(code) => ProcessError::Exited { pid, code },
                Exit::Lost => ProcessError::Exited {
                    pid,
                    code: exit.code(),
                },
            });
        };
        drop(outcome);
        let text = || String::from_utf8_lossy(&bytes[1..]).into_owned();
        match bytes.first() {
            Some(&RETURNED) => {
                codec::decode(&bytes[1..], fds).map_err(|e| ProcessError::Decode(e.0))
            }
            Some(&PANICKED) => Err(ProcessError::Panicked {
                pid,
                message: text(),
            }),
            Some(&REFUSED) => Err(ProcessError::Refused {
                pid,
                message: text(),
            }),
            _ => Err(ProcessError::Decode("the child's report is damaged".into())),
        }
    }
}

impl<R> Process<R> {
    /// The child's process id (Python's `pid`).
    pub fn pid(&self) -> u32 {
        self.record.pid
    }

    /// The child's name (Python's `name`).
    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// Whether the child is a daemon (Python's `daemon`).
    pub fn daemon(&self) -> bool {
        self.record.daemon
    }

    /// Whether the child is still running (Python's `is_alive()`).
    pub fn is_alive(&self) -> bool {
        !self.record.done.is_set()
    }

    /// How the child ended (Python's `exitcode`): `None` while it runs, its exit code once
    /// it exited (0 after its function returned, 1 after a panic), or minus the signal that
    /// killed it (`-9` for `SIGKILL`, `-15` for `SIGTERM`).
    pub fn exitcode(&self) -> Option<i32> {
        if !self.record.done.is_set() {
            return None;
        }
        self.record.outcome.acquire().exit.map(Exit::code)
    }

    /// Asks the child to stop with `SIGTERM` (Python's `terminate()`); a child that has
    /// already ended is left alone.
    pub fn terminate(&self) -> io::Result<()> {
        self.record.signal(Signal::TERM)
    }

    /// Kills the child with `SIGKILL` (Python's `kill()`); a child that has already ended is
    /// left alone.
    pub fn kill(&self) -> io::Result<()> {
        self.record.signal(Signal::KILL)
    }
}

/// Kills a child process from anywhere (a pool keeps one per worker for `terminate`).
pub(crate) struct Killer(Arc<ChildRecord>);

impl Killer {
    pub(crate) fn kill(&self) {
        let _ = self.0.signal(Signal::KILL);
    }

    pub(crate) fn is_alive(&self) -> bool {
        !self.0.done.is_set()
    }
}

impl<R> Process<R> {
    pub(crate) fn killer(&self) -> Killer {
        Killer(Arc::clone(&self.record))
    }
}

impl<R> fmt::Debug for Process<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.pid())
            .field("name", &self.name())
            .field("daemon", &self.daemon())
            .field("exitcode", &self.exitcode())
            .finish()
    }
}
