//! The supervisor: one thread per parent process that starts children and reaps them.
//!
//! It holds a pidfd for every live child and polls them with the children's result sockets
//! and an eventfd for requests. When a child exits, the supervisor drains what the child
//! sent, reaps it at once with `waitid(P_PIDFD)` — no zombie lingers, no `SIGCHLD` handler
//! is installed, and no bare PID is used after reaping (signals go through the pidfd) — then
//! records how it ended and wakes its joiners.
//!
//! Children are *started* on this thread too: the kernel delivers a child's parent-death
//! signal (`PR_SET_PDEATHSIG`) when the *thread* that forked it exits, so a child started
//! from a short-lived thread would be killed with that thread. The supervisor lives as long
//! as the process.

use super::frame::{Channel, FrameError};
use crate::sync::{Event, Lock};
use crate::wait::Deadline;
use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags};
use rustix::io::Errno;
use rustix::process::{
    pidfd_open, pidfd_send_signal, waitid, PidfdFlags, Signal, WaitId, WaitIdOptions,
};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Command;
use std::sync::{Arc, OnceLock};

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// `exit(code)`.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
    /// Reaped by someone else (the process ignores `SIGCHLD`, or called `wait` itself).
    Lost,
}

impl Exit {
    /// Python's `exitcode`: the code, or the negated signal.
    pub(crate) fn code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => -s,
            Exit::Lost => 255,
        }
    }
}

/// What a child's record holds once it has ended.
#[derive(Default)]
pub(crate) struct Outcome {
    pub(crate) exit: Option<Exit>,
    /// The child's report frame (payload and descriptors), if one arrived whole.
    pub(crate) report: Option<(Vec<u8>, Vec<OwnedFd>)>,
    /// Whether the parent has taken the report (`join`).
    pub(crate) taken: bool,
}

/// One child, shared by its `Process` handle, the supervisor and `active_children`.
pub(crate) struct ChildRecord {
    pub(crate) pid: u32,
    pub(crate) name: String,
    pub(crate) daemon: bool,
    pidfd: OwnedFd,
    /// The parent's end of the child's control socket: start-up message out, report in.
    pub(crate) channel: Channel,
    pub(crate) outcome: Lock<Outcome>,
    pub(crate) done: Event,
}

impl ChildRecord {
    /// Sends `signal` through the pidfd; a child that has already exited is not an error.
    pub(crate) fn signal(&self, signal: Signal) -> io::Result<()> {
        match pidfd_send_signal(&self.pidfd, signal) {
            Ok(()) | Err(Errno::SRCH) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads what the child has sent so far, without waiting; whether its socket is done
    /// (a whole report arrived, or the child closed it).
    fn read_report(&self) -> bool {
        loop {
            match self
                .channel
                .recv_with(Deadline::NEVER, true, |b, fds| (b.to_vec(), fds))
            {
                Ok(report) => {
                    self.outcome.acquire().report.get_or_insert(report);
                    return true;
                }
                Err(FrameError::WouldBlock) => return false,
                Err(FrameError::TooLarge { .. }) => continue,
                Err(_) => return true,
            }
        }
    }
}

/// A start request from a spawning thread, and where the answer goes.
struct Request {
    command: Command,
    channel: Option<Channel>,
    name: String,
    daemon: bool,
    reply: Arc<Reply>,
}

/// The answer to a start request, and the event that says it is there.
type Reply = (Lock<Option<io::Result<Arc<ChildRecord>>>>, Event);

struct Shared {
    requests: VecDeque<Request>,
    children: Vec<Arc<ChildRecord>>,
}

pub(crate) struct Supervisor {
    wake: OwnedFd,
    shared: Lock<Shared>,
}

static SUPERVISOR: OnceLock<&'static Supervisor> = OnceLock::new();

impl Supervisor {
    /// The process's supervisor, started on first use.
    pub(crate) fn get() -> io::Result<&'static Supervisor> {
        if let Some(s) = SUPERVISOR.get() {
            return Ok(*s);
        }
        let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        let mut started = Ok(());
        let s = SUPERVISOR.get_or_init(|| {
            // Lives as long as the process: the thread and `at_exit` hold it.
            let s: &'static Supervisor = Box::leak(Box::new(Supervisor {
                wake,
                shared: Lock::new(Shared {
                    requests: VecDeque::new(),
                    children: Vec::new(),
                }),
            }));
            started = std::thread::Builder::new()
                .name("tandem-supervisor".into())
                .spawn(move || s.run())
                .map(drop);
            // SAFETY: `at_exit` is a plain `extern "C" fn` that never unwinds (it catches
            // nothing because it calls nothing that panics: see its body).
            unsafe {
                libc::atexit(at_exit);
            }
            s
        });
        started.map(|()| *s)
    }

    /// The supervisor, if this process has started one.
    pub(crate) fn started() -> Option<&'static Supervisor> {
        SUPERVISOR.get().copied()
    }

    /// Starts `command` (whose stdin is the child's end of `channel`'s socket) on the
    /// supervisor thread; the child's record.
    pub(crate) fn start(
        &self,
        command: Command,
        channel: Channel,
        name: String,
        daemon: bool,
    ) -> io::Result<Arc<ChildRecord>> {
        let reply = Arc::new((Lock::new(None), Event::new()));
        self.shared.acquire().requests.push_back(Request {
            command,
            channel: Some(channel),
            name,
            daemon,
            reply: Arc::clone(&reply),
        });
        self.poke();
        reply.1.wait();
        let result = reply.0.acquire().take();
        result.unwrap_or_else(|| Err(io::Error::other("the supervisor dropped a start request")))
    }

    fn poke(&self) {
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }

    /// The children not yet reaped.
    pub(crate) fn live_children(&self) -> Vec<Arc<ChildRecord>> {
        self.shared.acquire().children.clone()
    }

    fn run(&self) {
        loop {
            let children = self.live_children();
            // Poll the wake-up eventfd, every child's pidfd, and the sockets of the children
            // whose report is not complete yet (a closed socket would report POLLHUP forever).
            let mut fds = Vec::with_capacity(1 + 2 * children.len());
            let mut owners = Vec::with_capacity(fds.capacity());
            fds.push(PollFd::new(&self.wake, PollFlags::IN));
            owners.push(None);
            for (i, c) in children.iter().enumerate() {
                fds.push(PollFd::from_borrowed_fd(c.pidfd.as_fd(), PollFlags::IN));
                owners.push(Some((i, true)));
                if c.outcome.acquire().report.is_none() {
                    fds.push(PollFd::from_borrowed_fd(c.channel.fd(), PollFlags::IN));
                    owners.push(Some((i, false)));
                }
            }
            match poll(&mut fds, None) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(_) => continue,
            }
            let ready: Vec<_> = fds
                .iter()
                .zip(&owners)
                .filter(|(f, _)| !f.revents().is_empty())
                .map(|(_, o)| *o)
                .collect();
            drop(fds);
            // Reports before exits: a child's last bytes are read before it is reaped.
            for owner in &ready {
                match owner {
                    None => {
                        let mut buf = [0u8; 8];
                        let _ = rustix::io::read(&self.wake, &mut buf);
                        self.serve_requests();
                    }
                    Some((i, false)) => {
                        children[*i].read_report();
                    }
                    Some((_, true)) => {}
                }
            }
            for owner in &ready {
                if let Some((i, true)) = owner {
                    self.reap(&children[*i]);
                }
            }
        }
    }

    fn serve_requests(&self) {
        loop {
            let Some(mut request) = self.shared.acquire().requests.pop_front() else {
                return;
            };
            let channel = request.channel.take().expect("a request is served once");
            let result = start_child(&mut request.command, channel, request.name, request.daemon);
            if let Ok(child) = &result {
                self.shared.acquire().children.push(Arc::clone(child));
            }
            *request.reply.0.acquire() = Some(result);
            request.reply.1.set();
        }
    }

    /// The child's pidfd is readable: it has exited. Drain its report, reap it, record how
    /// it ended, wake its joiners.
    fn reap(&self, child: &Arc<ChildRecord>) {
        // The child is gone, so everything it wrote is in the socket: one non-blocking
        // drain reads it (only a descendant still holding the socket could keep it open).
        child.read_report();
        // Before the reap, while its pid cannot be reused: give back what it held.
        super::robust::owner_died(child.pid);
        let exit = loop {
            match waitid(
                WaitId::PidFd(child.pidfd.as_fd()),
                WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
            ) {
                Ok(Some(status)) => {
                    break match (status.exit_status(), status.terminating_signal()) {
                        (_, Some(sig)) => Exit::Signal(sig),
                        (Some(code), None) => Exit::Code(code),
                        (None, None) => Exit::Lost,
                    };
                }
                // Readable pidfd but not yet waitable: cannot happen for an exited child.
                Ok(None) => return,
                Err(Errno::INTR) => continue,
                Err(_) => break Exit::Lost,
            }
        };
        child.outcome.acquire().exit = Some(exit);
        self.shared
            .acquire()
            .children
            .retain(|c| !Arc::ptr_eq(c, child));
        child.done.set();
    }
}

fn start_child(
    command: &mut Command,
    channel: Channel,
    name: String,
    daemon: bool,
) -> io::Result<Arc<ChildRecord>> {
    let spawned = command.spawn()?;
    let pid = spawned.id();
    // Nobody else reaps our children (unless the program ignores SIGCHLD), so the pid still
    // names this child, alive or a zombie.
    let raw =
        rustix::process::Pid::from_raw(pid as i32).ok_or_else(|| io::Error::other("pid 0"))?;
    let pidfd = pidfd_open(raw, PidfdFlags::empty())?;
    drop(spawned);
    Ok(Arc::new(ChildRecord {
        pid,
        name,
        daemon,
        pidfd,
        channel,
        outcome: Lock::new(Outcome::default()),
        done: Event::new(),
    }))
}

/// At exit, as Python's `multiprocessing` does: terminate daemonic children, then wait for
/// every child.
extern "C" fn at_exit() {
    let Some(s) = SUPERVISOR.get() else { return };
    let children = s.live_children();
    for c in children.iter().filter(|c| c.daemon) {
        let _ = c.signal(Signal::TERM);
    }
    for c in &children {
        c.done.wait();
    }
}
