//! The child's side of a spawn: [`init`] (and [`child_entry!`](crate::child_entry)), which
//! in a child reads the start-up message, checks the build's fingerprint, runs the
//! function through its typed trampoline, reports and exits.

use crate::error::panic_message;
use crate::process::codec;
use crate::process::frame::Channel;
use rustix::process::Signal;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::OnceLock;

use super::*;

/// The child side of a function call: `A` in, `R` out, as the report frame.
pub(super) fn trampoline<A: DeserializeOwned, R: Serialize>(
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

pub(super) fn report_panic(channel: &Channel, message: &str) -> i32 {
    send_text(channel, PANICKED, message);
    EXIT_PANICKED
}

pub(super) fn refuse(channel: &Channel, message: &str) -> i32 {
    eprintln!("tandem: child process refused to start: {message}");
    send_text(channel, REFUSED, message);
    EXIT_REFUSED
}

pub(super) fn send_text(channel: &Channel, tag: u8, message: &str) {
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
/// pytandem::process::init();
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
/// pytandem::child_entry!();
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
pub(super) fn run_child(marker: OsString) -> ! {
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
pub(super) fn fingerprint() -> u64 {
    static FINGERPRINT: OnceLock<u64> = OnceLock::new();
    *FINGERPRINT.get_or_init(|| {
        let seed = crate::process::shm::BUILD;
        if let Some(id) = elf_build_id() {
            return crate::process::shm::fnv(&id, seed);
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
        crate::process::shm::fnv(&bytes, seed)
    })
}

/// The `NT_GNU_BUILD_ID` note of the main executable, read from its loaded program headers.
pub(super) fn elf_build_id() -> Option<Vec<u8>> {
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
