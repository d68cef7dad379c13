//! `Pipe` and `Connection`: typed, framed messages between processes (Python's
//! `multiprocessing.Pipe`).

use super::codec::{self, deserialize_fd, serialize_fd};
use super::frame::{Channel, FrameError};
use crate::wait::Deadline;
use rustix::net::{socketpair, AddressFamily, Shutdown, SocketFlags, SocketType};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

/// Python's `multiprocessing.Pipe()`: a connected pair of [`Connection`]s.
///
/// | Python | tandem |
/// | --- | --- |
/// | `a, b = Pipe()` | `let (a, b) = Pipe::new::<T>()?;` |
/// | `r, w = Pipe(duplex=False)` | `let (r, w) = Pipe::one_way::<T>()?;` |
///
/// The ends are Unix stream sockets carrying length-prefixed frames, so a message of any
/// size (up to [`Connection::set_max_message_size`], 1 GiB by default) arrives whole, and
/// either end may be passed to a child process in its arguments or sent over another
/// `Connection`.
///
/// # Examples
/// ```
/// use pytandem::process::Pipe;
///
/// let (a, b) = Pipe::new::<String>()?;
/// a.send(&"ping".to_string())?;
/// assert_eq!(b.recv()?, "ping");
/// b.send(&"pong".to_string())?;
/// assert_eq!(a.recv()?, "pong");
/// drop(b);
/// assert!(a.recv().unwrap_err().is_disconnected()); // Python: EOFError
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Pipe(());

impl Pipe {
    /// A duplex pair: each end sends and receives (Python's `Pipe()`).
    #[allow(clippy::new_ret_no_self)]
    pub fn new<T>() -> io::Result<(Connection<T>, Connection<T>)> {
        let (a, b) = pair()?;
        let (sa, sb) = pair()?;
        Ok((
            Connection::from_fds(a, sa, true, true),
            Connection::from_fds(b, sb, true, true),
        ))
    }

    /// A one-way pair `(receiver, sender)`: the first end only receives, the second only
    /// sends (Python's `Pipe(duplex=False)`, same order).
    pub fn one_way<T>() -> io::Result<(Connection<T>, Connection<T>)> {
        let (r, w) = pair()?;
        let (sr, sw) = pair()?;
        rustix::net::shutdown(&r, Shutdown::Write)?;
        rustix::net::shutdown(&w, Shutdown::Read)?;
        Ok((
            Connection::from_fds(r, sr, true, false),
            Connection::from_fds(w, sw, false, true),
        ))
    }
}

/// A connected pair of Unix stream sockets.
fn pair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// One end of a [`Pipe`]: sends and receives values of type `T` (Python's
/// `multiprocessing.connection.Connection`).
///
/// Values are encoded with `serde` + `postcard`; a `T` that carries handles (another
/// `Connection`, a [`Value`](super::Value), …) carries their file descriptors along, so the
/// receiving process gets working handles. `send` and `recv` may be called from several
/// threads; each message is sent and received whole.
///
/// | Python | tandem |
/// | --- | --- |
/// | `conn.send(obj)` | `conn.send(&value)?` |
/// | `conn.recv()` | `conn.recv()?` |
/// | `conn.poll(timeout)` | `conn.poll(timeout)?` |
/// | `conn.send_bytes(b)`, `conn.recv_bytes()` | `conn.send_bytes(&b)?`, `conn.recv_bytes()?` |
/// | `EOFError` | [`ConnectionError::Disconnected`] |
/// | `conn.close()` | `drop(conn)` |
///
/// Differences: `recv_timeout` and `try_recv` exist (Python has only `poll`); a message
/// bigger than [`max_message_size`](Connection::max_message_size) is refused at both ends
/// (and skipped by the receiver, so the stream stays usable); writing to a dead peer is an
/// error, never `SIGPIPE`. Raw bytes (`send_bytes`) and typed values share the stream: a
/// typed `recv` of a raw message is a decode error, as `recv` of `send_bytes` data is in
/// Python.
pub struct Connection<T> {
    channel: Channel,
    readable: bool,
    writable: bool,
    _type: PhantomData<fn(T) -> T>,
}

impl<T> Connection<T> {
    // An end over a stream socket and its side socket for descriptors (`frame.rs`).
    fn from_fds(fd: OwnedFd, side: OwnedFd, readable: bool, writable: bool) -> Self {
        Connection {
            channel: Channel::with_side(fd, Some(side)),
            readable,
            writable,
            _type: PhantomData,
        }
    }

    /// See `Channel::set_linger`.
    pub(crate) fn set_linger(&self, on: bool) {
        self.channel.set_linger(on);
    }

    /// Whether this end may receive (Python's `readable`).
    pub fn readable(&self) -> bool {
        self.readable
    }

    /// Whether this end may send (Python's `writable`).
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// The largest message, in encoded bytes, this end sends or accepts (1 GiB by default).
    pub fn max_message_size(&self) -> usize {
        self.channel.limit()
    }

    /// Sets [`max_message_size`](Connection::max_message_size) (at most `u32::MAX`). A larger
    /// incoming message is discarded with [`ConnectionError::TooLarge`]; a larger outgoing
    /// one is not sent.
    pub fn set_max_message_size(&self, bytes: usize) {
        self.channel.set_limit(bytes);
    }

    /// Whether there is something to receive, waiting up to `timeout` (Python's
    /// `poll(timeout)`; `Duration::ZERO` checks without waiting). A closed peer counts as
    /// "something": the next `recv` reports [`ConnectionError::Disconnected`].
    pub fn poll(&self, timeout: Duration) -> Result<bool, ConnectionError> {
        self.check(self.readable, ConnectionError::NotReadable)?;
        self.channel
            .poll(Deadline::after(timeout))
            .map_err(ConnectionError::from)
    }

    /// Sends raw bytes as one message (Python's `send_bytes`).
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<(), ConnectionError> {
        self.check(self.writable, ConnectionError::NotWritable)?;
        let mut frame = Channel::frame_buffer();
        frame.extend_from_slice(bytes);
        self.channel
            .send(&mut frame, &[])
            .map_err(ConnectionError::from)
    }

    /// Receives one message as raw bytes (Python's `recv_bytes`).
    pub fn recv_bytes(&self) -> Result<Vec<u8>, ConnectionError> {
        self.recv_bytes_deadline(Deadline::NEVER)
    }

    /// [`recv_bytes`](Connection::recv_bytes), giving up after `timeout`.
    pub fn recv_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>, ConnectionError> {
        self.recv_bytes_deadline(Deadline::after(timeout))
    }

    fn recv_bytes_deadline(&self, deadline: Deadline) -> Result<Vec<u8>, ConnectionError> {
        self.check(self.readable, ConnectionError::NotReadable)?;
        self.channel
            .recv_with(deadline, false, |bytes, _fds| bytes.to_vec())
            .map_err(ConnectionError::from)
    }

    fn check(&self, allowed: bool, err: ConnectionError) -> Result<(), ConnectionError> {
        if allowed {
            Ok(())
        } else {
            Err(err)
        }
    }
}

impl<T: Serialize + DeserializeOwned> Connection<T> {
    /// Sends `value` (Python's `send(obj)`). Blocks only while the other end's socket buffer
    /// is full.
    ///
    /// # Errors
    /// [`ConnectionError::Disconnected`] if the other end is closed or its process died;
    /// [`ConnectionError::Encode`] if `value` cannot be serialized;
    /// [`ConnectionError::TooLarge`] over [`max_message_size`](Connection::max_message_size);
    /// [`ConnectionError::NotWritable`] on the receiving end of a one-way pipe.
    pub fn send(&self, value: &T) -> Result<(), ConnectionError> {
        self.check(self.writable, ConnectionError::NotWritable)?;
        let (mut frame, fds) = codec::encode_into(value, Channel::frame_buffer())
            .map_err(|e| ConnectionError::Encode(e.0))?;
        self.channel
            .send(&mut frame, &fds)
            .map_err(ConnectionError::from)
    }

    /// Receives the next value, waiting as long as it takes (Python's `recv()`).
    ///
    /// # Errors
    /// [`ConnectionError::Disconnected`] once the other end is closed and everything it sent
    /// has been received (Python's `EOFError`); [`ConnectionError::Decode`] if the message is
    /// not a `T`.
    pub fn recv(&self) -> Result<T, ConnectionError> {
        self.recv_deadline(Deadline::NEVER)
    }

    /// [`recv`](Connection::recv), giving up with [`ConnectionError::Timeout`] after
    /// `timeout` (nothing is consumed then). `Duration::MAX` waits forever.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, ConnectionError> {
        self.recv_deadline(Deadline::after(timeout))
    }

    /// [`recv`](Connection::recv) without waiting: [`ConnectionError::Timeout`] if no whole
    /// message is there.
    pub fn try_recv(&self) -> Result<T, ConnectionError> {
        self.recv_deadline(Deadline::after(Duration::ZERO))
    }

    fn recv_deadline(&self, deadline: Deadline) -> Result<T, ConnectionError> {
        self.check(self.readable, ConnectionError::NotReadable)?;
        let nonblocking = deadline.has_passed();
        match self
            .channel
            .recv_with(deadline, nonblocking, codec::decode::<T>)
        {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(ConnectionError::Decode(e.0)),
            Err(FrameError::WouldBlock) => Err(ConnectionError::Timeout),
            Err(e) => Err(e.into()),
        }
    }
}

impl<T> fmt::Debug for Connection<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.channel.fd())
            .field("readable", &self.readable)
            .field("writable", &self.writable)
            .finish()
    }
}

/// A `Connection` travels to another process with its socket (see [`Connection`]).
impl<T> Serialize for Connection<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.channel.has_buffered() {
            return Err(codec::handle_error(
                "this Connection holds received data not yet read: read it before passing the \
                 Connection to another process",
            ));
        }
        let side = self.channel.side().expect("a Connection has a side socket");
        (
            Fd(self.channel.fd()),
            Fd(side),
            self.readable,
            self.writable,
            self.channel.limit() as u64,
        )
            .serialize(s)
    }
}

struct Fd<'a>(BorrowedFd<'a>);

impl Serialize for Fd<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_fd(self.0, s)
    }
}

struct OwnedFdDe(OwnedFd);

impl<'de> Deserialize<'de> for OwnedFdDe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_fd(d).map(OwnedFdDe)
    }
}

impl<'de, T> Deserialize<'de> for Connection<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (fd, side, readable, writable, limit) =
            <(OwnedFdDe, OwnedFdDe, bool, bool, u64)>::deserialize(d)?;
        let conn = Connection::from_fds(fd.0, side.0, readable, writable);
        conn.set_max_message_size(limit as usize);
        Ok(conn)
    }
}

/// Why a [`Connection`] could not send or receive.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The other end is closed, or its process died (Python's `EOFError` on `recv`,
    /// `BrokenPipeError` on `send`). Nothing more will arrive.
    Disconnected,
    /// No message arrived before the timeout (nothing was consumed).
    Timeout,
    /// The value could not be serialized; the message was not sent.
    Encode(String),
    /// The message is not a value of the connection's type (or is damaged); it was consumed.
    Decode(String),
    /// A message of `len` bytes is over the `limit` (see
    /// [`Connection::set_max_message_size`]); an incoming one was skipped.
    TooLarge {
        /// The message's size in bytes.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// `recv` on the sending end of a one-way pipe.
    NotReadable,
    /// `send` on the receiving end of a one-way pipe.
    NotWritable,
    /// The operating system refused (the error says why).
    Io(io::Error),
}

impl ConnectionError {
    /// Whether the other end is gone (Python's `EOFError`).
    pub fn is_disconnected(&self) -> bool {
        matches!(self, ConnectionError::Disconnected)
    }

    /// Whether a timed receive gave up.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ConnectionError::Timeout)
    }
}

impl From<FrameError> for ConnectionError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Disconnected => ConnectionError::Disconnected,
            FrameError::Timeout | FrameError::WouldBlock => ConnectionError::Timeout,
            FrameError::TooLarge { len, limit } => ConnectionError::TooLarge { len, limit },
            FrameError::Protocol(what) => {
                ConnectionError::Io(io::Error::new(io::ErrorKind::InvalidData, what))
            }
            FrameError::Io(e) => ConnectionError::Io(e),
        }
    }
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::Disconnected => f.write_str(
                "the other end of the connection is closed (or its process died): nothing more \
                 will arrive; stop reading or reconnect",
            ),
            ConnectionError::Timeout => f.write_str("no message arrived before the timeout"),
            ConnectionError::Encode(e) => write!(f, "the value could not be serialized: {e}"),
            ConnectionError::Decode(e) => write!(f, "the message could not be decoded: {e}"),
            ConnectionError::TooLarge { len, limit } => write!(
                f,
                "a message of {len} bytes is over this connection's limit of {limit} bytes: raise \
                 it with set_max_message_size on both ends, or send smaller messages"
            ),
            ConnectionError::NotReadable => {
                f.write_str("this end of a one-way pipe only sends: receive on the other end")
            }
            ConnectionError::NotWritable => {
                f.write_str("this end of a one-way pipe only receives: send on the other end")
            }
            ConnectionError::Io(e) => write!(f, "the connection failed: {e}"),
        }
    }
}

impl std::error::Error for ConnectionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectionError::Io(e) => Some(e),
            _ => None,
        }
    }
}
