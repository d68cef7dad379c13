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

use super::codec;
use super::frame::Channel;
use super::supervisor::{ChildRecord, Exit, Supervisor};
use crate::error::panic_message;
use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
use rustix::process::Signal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, OwnedFd};
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

/// The child side of a function call: `A` in, `R` out, as the report frame.
fn trampoline<A: DeserializeOwned, R: Serialize>(
    function: usize,
    args: &[u8],
    fds: Vec<OwnedFd>,
    channel: &Channel,
) -> i32 {
    let args: A = match codec::decode(args, fds) {
        Ok(a) => a,
        Err(e) => {
            return refuse(
                channel,
                &format!("the arguments could not be decoded: {}", e.0),
            );
        }
    };
    // SAFETY: `function` is the address of a `fn(A) -> R` in this very binary: the parent
    // took it from a value of exactly this type (the trampoline is instantiated with the
    // same `A` and `R`), sent its offset from `anchor`, and `run_child` checked that this
    // process runs the same build (the fingerprint) before calling us.
    let function: fn(A) -> R = unsafe { std::mem::transmute::<usize, fn(A) -> R>(function) };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| function(args)));
    match outcome {
        Ok(value) => {
            let mut frame = Channel::frame_buffer();
            frame.push(RETURNED);
            match codec::encode_into(&value, frame) {
                Ok((mut frame, fds)) => {
                    let _ = channel.send(&mut frame, &fds);
                    0
                }
                Err(e) => report_panic(
                    channel,
                    &format!(
                        "the function's return value could not be serialized: {}",
                        e.0
                    ),
                ),
            }
        }
        Err(payload) => report_panic(channel, &panic_message(&*payload)),
    }
}

fn report_panic(channel: &Channel, message: &str) -> i32 {
    send_text(channel, PANICKED, message);
    EXIT_PANICKED
}

fn refuse(channel: &Channel, message: &str) -> i32 {
    eprintln!("tandem: child process refused to start: {message}");
    send_text(channel, REFUSED, message);
    EXIT_REFUSED
}

fn send_text(channel: &Channel, tag: u8, message: &str) {
    let mut frame = Channel::frame_buffer();
    frame.push(tag);
    frame.extend_from_slice(message.as_bytes());
    let _ = channel.send(&mut frame, &[]);
}

/// Python's `if __name__ == "__main__":` guard. Call it first in `main`: in a child process
/// started by [`Process::spawn`], it runs the child's function and exits the process; in
/// any other process it returns at once (one environment lookup).
///
/// Test binaries and doc tests, whose `main` you do not write, use [`child_entry!`]
/// (one line per test file) or call `init()` first in the doc test.
///
/// # Examples
/// ```
/// tandem::process::init();
/// // ... the program: children started from here run their function inside init()
/// ```
///
/// [`child_entry!`]: crate::child_entry
pub fn init() {
    if let Some(marker) = std::env::var_os(CHILD_ENV) {
        run_child(marker);
    }
}

/// Runs [`process::init`](crate::process::init) before `main`, for binaries whose `main`
/// you do not write: the test harness of an integration test file (put it at the top of
/// the file), or a program that cannot call `init` first.
///
/// It places a function in the ELF `.init_array`, as the `ctor` crate does; the loader
/// runs it before `main`. In a parent it only looks up one environment variable.
///
/// ```
/// tandem::child_entry!();
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! child_entry {
    () => {
        // Hand-written rather than the `ctor` crate: a proc-macro dependency for three lines,
        // and the expansion must not need the user's crate to depend on anything but tandem.
        #[used]
        #[cfg_attr(target_os = "linux", link_section = ".init_array")]
        static __TANDEM_CHILD_ENTRY: extern "C" fn() = {
            extern "C" fn __tandem_child_entry() {
                $crate::process::init();
            }
            __tandem_child_entry
        };
    };
}

/// This process as a child: set up, read the start-up message, run, report, exit.
fn run_child(marker: OsString) -> ! {
    // Children of this child must not see the marker (they get their own).
    std::env::remove_var(CHILD_ENV);
    let marker = marker.to_string_lossy().into_owned();
    let (parent, die_with_parent) = marker.split_once(':').unwrap_or((&marker, "1"));
    let parent: u32 = parent.parse().unwrap_or(0);
    if die_with_parent == "1" {
        let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
        // The parent may have died before the line above: then nobody will signal us.
        if std::os::unix::process::parent_id() != parent {
            std::process::exit(EXIT_REFUSED);
        }
    }
    // stdin is the socket to the parent: keep it on a close-on-exec descriptor and give
    // stdin /dev/null, so grandchildren do not inherit the socket.
    let socket = match io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => fd,
        Err(_) => std::process::exit(EXIT_REFUSED),
    };
    if let Ok(null) = std::fs::File::open("/dev/null") {
        // SAFETY: plain dup2 of two open descriptors onto 0; nothing in this process holds
        // a reference to the old stdin (we cloned it above).
        unsafe {
            libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 0);
        }
    }
    let channel = Channel::new(socket);
    let frame = channel.recv_with(crate::wait::Deadline::NEVER, false, |b, fds| {
        (b.to_vec(), fds)
    });
    let Ok((bytes, fds)) = frame else {
        // The parent went away before sending anything.
        std::process::exit(EXIT_REFUSED);
    };
    let code = match codec::decode_prefix::<Start>(&bytes, Vec::new()) {
        Err(_) => refuse(
            &channel,
            "the start-up message is not one this build understands",
        ),
        Ok((start, _)) if start.magic != MAGIC || start.fingerprint != fingerprint() => refuse(
            &channel,
            "the child runs a different build of the program than its parent (was the \
             executable rebuilt or replaced, or set with Builder::executable?): both must be \
             the same binary",
        ),
        Ok((start, args)) => {
            let _ = CURRENT.set(Current {
                name: start.name,
                daemon: start.daemon,
                parent: Some((parent, start.parent_name)),
            });
            // SAFETY: the fingerprint matched, so this is the binary the parent took the
            // trampoline's address from; `Trampoline` is the type it was cast from.
            let trampoline: Trampoline =
                unsafe { std::mem::transmute::<usize, Trampoline>(from_anchor(start.trampoline)) };
            trampoline(from_anchor(start.function), args, fds, &channel)
        }
    };
    drop(channel);
    std::process::exit(code)
}

/// This binary's identity: its ELF build-id, or else the executable's device, inode, size
/// and modification time.
fn fingerprint() -> u64 {
    static FINGERPRINT: OnceLock<u64> = OnceLock::new();
    *FINGERPRINT.get_or_init(|| {
        let seed = super::shm::BUILD;
        if let Some(id) = elf_build_id() {
            return super::shm::fnv(&id, seed);
        }
        let meta = std::fs::metadata("/proc/self/exe");
        let identity = meta.map(|m| {
            use std::os::unix::fs::MetadataExt;
            [
                m.dev(),
                m.ino(),
                m.size(),
                m.mtime() as u64,
                m.mtime_nsec() as u64,
            ]
        });
        let bytes: Vec<u8> = identity
            .unwrap_or_default()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        super::shm::fnv(&bytes, seed)
    })
}

/// The `NT_GNU_BUILD_ID` note of the main executable, read from its loaded program headers.
fn elf_build_id() -> Option<Vec<u8>> {
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        out: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: the loader passes a valid `dl_phdr_info` for the duration of the call,
        // whose program headers and segments are mapped; `out` is the `Option<Vec<u8>>` that
        // `elf_build_id` passed in. The first object visited is the main executable.
        unsafe {
            let info = &*info;
            let out = &mut *(out as *mut Option<Vec<u8>>);
            let phdrs = std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize);
            for ph in phdrs.iter().filter(|p| p.p_type == libc::PT_NOTE) {
                let mut at =
                    (info.dlpi_addr as usize).wrapping_add(ph.p_vaddr as usize) as *const u8;
                let end = at.add(ph.p_memsz as usize);
                while at.add(12) <= end {
                    let word = |i: usize| u32::from_ne_bytes(*(at.add(4 * i) as *const [u8; 4]));
                    let (namesz, descsz, kind) = (word(0) as usize, word(1) as usize, word(2));
                    let name_at = at.add(12);
                    let desc_at = name_at.add((namesz + 3) & !3);
                    if desc_at.add(descsz) > end {
                        break;
                    }
                    if kind == 3
                        && namesz == 4
                        && std::slice::from_raw_parts(name_at, 4) == b"GNU\0"
                    {
                        *out = Some(std::slice::from_raw_parts(desc_at, descsz).to_vec());
                        return 1;
                    }
                    at = desc_at.add((descsz + 3) & !3);
                }
            }
            1 // only the main executable
        }
    }
    let mut out: Option<Vec<u8>> = None;
    // SAFETY: `visit` upholds dl_iterate_phdr's contract (reads only what the loader hands
    // it, never unwinds) and `out` outlives the call.
    unsafe {
        libc::dl_iterate_phdr(
            Some(visit),
            &mut out as *mut Option<Vec<u8>> as *mut libc::c_void,
        );
    }
    out
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
/// tandem::process::init();
/// use tandem::process::Process;
///
/// fn greet(who: String) -> String {
///     format!("hello {who} from {}", tandem::process::current_process().name)
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
/// tandem::process::init();
/// use tandem::process::Process;
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

/// Why a child process could not be started.
#[derive(Debug)]
#[non_exhaustive]
pub enum SpawnError {
    /// The arguments could not be serialized (the message says which part).
    Encode(String),
    /// This process is itself a tandem child whose `main` did not call
    /// [`init`] first: it is running the parent's program instead of its function.
    NotInitialized,
    /// The operating system refused to start the process.
    Io(io::Error),
}

impl From<io::Error> for SpawnError {
    fn from(e: io::Error) -> Self {
        SpawnError::Io(e)
    }
}

impl From<rustix::io::Errno> for SpawnError {
    fn from(e: rustix::io::Errno) -> Self {
        SpawnError::Io(e.into())
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::Encode(e) => {
                write!(f, "the child's arguments could not be serialized: {e}")
            }
            SpawnError::NotInitialized => f.write_str(
                "this process was started by tandem as a child, but its main never called \
                 tandem::process::init(): call it first in main (or put tandem::child_entry!() \
                 in a test file)",
            ),
            SpawnError::Io(e) => write!(f, "the child process could not be started: {e}"),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpawnError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// How a child process failed, from [`Process::join`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessError {
    /// The child's function panicked (Python: an exception in the child, `exitcode` 1).
    Panicked {
        /// The child's pid.
        pid: u32,
        /// The panic message.
        message: String,
    },
    /// The child was killed by a signal (`exitcode` is minus the signal).
    Signaled {
        /// The child's pid.
        pid: u32,
        /// The signal number (9 for `SIGKILL`, 15 for `SIGTERM`, …).
        signal: i32,
    },
    /// The child exited before its function returned (it called `exit`, or its `main` never
    /// reached [`init`]).
    Exited {
        /// The child's pid.
        pid: u32,
        /// Its exit code.
        code: i32,
    },
    /// The child refused to run the function (a different build of the program, or
    /// arguments it could not decode); the message says which.
    Refused {
        /// The child's pid.
        pid: u32,
        /// Why.
        message: String,
    },
    /// The function returned, but its value could not be decoded as `R`.
    Decode(String),
    /// `join_timeout` gave up; the child is still running.
    Timeout {
        /// The child's pid.
        pid: u32,
    },
    /// The result was already taken by an earlier `join_timeout`.
    AlreadyJoined {
        /// The child's pid.
        pid: u32,
    },
}

impl ProcessError {
    /// Python's `exitcode` for this failure, where there is one.
    pub fn exitcode(&self) -> Option<i32> {
        match self {
            ProcessError::Panicked { .. } => Some(EXIT_PANICKED),
            ProcessError::Signaled { signal, .. } => Some(-signal),
            ProcessError::Exited { code, .. } => Some(*code),
            ProcessError::Refused { .. } => Some(EXIT_REFUSED),
            _ => None,
        }
    }
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessError::Panicked { pid, message } => {
                write!(f, "child process {pid} panicked: {message}")
            }
            ProcessError::Signaled { pid, signal } => {
                let name = match signal {
                    9 => " (SIGKILL)",
                    15 => " (SIGTERM)",
                    6 => " (SIGABRT)",
                    11 => " (SIGSEGV)",
                    _ => "",
                };
                write!(f, "child process {pid} was killed by signal {signal}{name}")
            }
            ProcessError::Exited { pid, code } => write!(
                f,
                "child process {pid} exited with code {code} before its function returned (it \
                 called exit, or its main did not call tandem::process::init() first)"
            ),
            ProcessError::Refused { pid, message } => {
                write!(
                    f,
                    "child process {pid} refused to run its function: {message}"
                )
            }
            ProcessError::Decode(e) => write!(f, "the child's result could not be decoded: {e}"),
            ProcessError::Timeout { pid } => {
                write!(f, "child process {pid} is still running after the timeout")
            }
            ProcessError::AlreadyJoined { pid } => write!(
                f,
                "child process {pid} was already joined and its result taken: keep the value \
                 join_timeout returned"
            ),
        }
    }
}

impl std::error::Error for ProcessError {}
