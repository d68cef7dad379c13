//! Why a child could not start ([`SpawnError`]) or did not return ([`ProcessError`]).

use super::{EXIT_PANICKED, EXIT_REFUSED};
use std::fmt;
use std::io;

#[cfg(doc)]
use super::{init, Process};

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
                 pytandem::process::init(): call it first in main (or put pytandem::child_entry!() \
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
                 called exit, or its main did not call pytandem::process::init() first)"
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
