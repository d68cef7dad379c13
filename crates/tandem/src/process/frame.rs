//! Framed messages over a Unix stream socket: the transport under `Connection` and under the
//! start-up and result messages between a parent and its child.
//!
//! A frame is an 8-byte header — payload length (`u32`, little-endian) and the number of file
//! descriptors it carries (`u32`) — then the payload. The descriptors travel with
//! `SCM_RIGHTS` on the `sendmsg` that starts the frame, so they reach the receiver no later
//! than the frame's header; the receiver keeps them in arrival order and hands each frame
//! the number its header names.
//!
//! Reads are buffered: one read takes whatever has arrived (often several small frames), so
//! a stream of small messages costs one system call per batch. Writes are one `send` per
//! frame with `MSG_NOSIGNAL`: a dead peer is `EPIPE` (→ `FrameError::Disconnected`), never
//! `SIGPIPE`.
//!
//! A channel with a *side socket* (every `Connection`) reads its stream with plain `recv`
//! and passes descriptors on the side socket: a frame's descriptors are sent there (one
//! `sendmsg`) just before the frame, and read from there when the frame's header says it
//! has some. `recvmsg` with room for descriptors costs the kernel measurably more per call
//! than `recv` (about 5% of a small message's round trip here), and a `recv` would destroy
//! descriptors attached to the stream, so the common case — a message without handles —
//! never pays for the rare one. A channel without a side socket (the start-up and result
//! messages between a parent and its child) carries descriptors on the stream itself.

use super::codec::MAX_FDS;
use crate::sync::Lock;
use crate::wait::Deadline;
use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::{
    recvmsg, send, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};
use std::collections::VecDeque;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes of a frame's header.
pub(crate) const HEADER: usize = 8;
/// The largest payload a channel accepts unless told otherwise: 1 GiB.
pub(crate) const DEFAULT_LIMIT: usize = 1 << 30;
/// Bytes read per `recvmsg` at most (the buffer grows beyond this only for one large frame).
const READ_CHUNK: usize = 64 * 1024;

/// Why a frame was not sent or not received.
#[derive(Debug)]
pub(crate) enum FrameError {
    /// The other end is closed, or its process died.
    Disconnected,
    /// The deadline passed first (nothing was consumed).
    Timeout,
    /// Non-blocking receive: no whole frame is there yet.
    WouldBlock,
    /// A payload of this many bytes is over the limit.
    TooLarge { len: usize, limit: usize },
    /// The peer broke the framing protocol.
    Protocol(&'static str),
    /// The operating system refused.
    Io(std::io::Error),
}

impl From<Errno> for FrameError {
    fn from(e: Errno) -> Self {
        match e {
            Errno::PIPE | Errno::CONNRESET => FrameError::Disconnected,
            e => FrameError::Io(e.into()),
        }
    }
}

/// Received bytes not yet handed out, and the descriptors that came with them.
#[derive(Default)]
struct Rx {
    buf: Vec<u8>,
    head: usize,
    tail: usize,
    fds: VecDeque<OwnedFd>,
    /// Bytes of an over-limit frame still to be thrown away.
    discard: usize,
    eof: bool,
}

/// One end of a framed stream socket. Sends and receives may run on different threads at
/// once; two senders (or two receivers) take turns.
pub(crate) struct Channel {
    fd: OwnedFd,
    /// Where descriptors travel, if not on `fd` (see the module docs).
    side: Option<OwnedFd>,
    rx: Lock<Rx>,
    tx: Lock<()>,
    limit: AtomicUsize,
    /// Whether a blocking receive lingers awake before sleeping (see `recv_with`).
    linger: std::sync::atomic::AtomicBool,
}

impl Channel {
    /// A channel over a connected `SOCK_STREAM` Unix socket.
    pub(crate) fn new(fd: OwnedFd) -> Channel {
        Channel::with_side(fd, None)
    }

    /// A channel whose descriptors travel on `side`, a second connected socket.
    pub(crate) fn with_side(fd: OwnedFd, side: Option<OwnedFd>) -> Channel {
        Channel {
            fd,
            side,
            rx: Lock::new(Rx::default()),
            tx: Lock::new(()),
            limit: AtomicUsize::new(DEFAULT_LIMIT),
            linger: std::sync::atomic::AtomicBool::new(true),
        }
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The side socket, if descriptors travel on one.
    pub(crate) fn side(&self) -> Option<BorrowedFd<'_>> {
        self.side.as_ref().map(AsFd::as_fd)
    }

    /// Whether blocking receives linger awake before sleeping (on by default). Off where
    /// the answer takes long or the spinning would take a core from the one answering
    /// (a pool's driving threads beside their workers).
    pub(crate) fn set_linger(&self, on: bool) {
        self.linger.store(on, Ordering::Relaxed);
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    pub(crate) fn set_limit(&self, limit: usize) {
        self.limit
            .store(limit.min(u32::MAX as usize), Ordering::Relaxed);
    }

    /// Whether received bytes are waiting in the buffer (a handle carrying this socket to
    /// another process would leave them behind).
    pub(crate) fn has_buffered(&self) -> bool {
        let rx = self.rx.acquire();
        rx.tail > rx.head || !rx.fds.is_empty()
    }

    /// A frame buffer: the header's room, to append the payload to.
    pub(crate) fn frame_buffer() -> Vec<u8> {
        let mut buf = Vec::with_capacity(64);
        buf.resize(HEADER, 0);
        buf
    }

    /// Sends `frame` (built on [`Channel::frame_buffer`]) with `fds`.
    pub(crate) fn send(&self, frame: &mut [u8], fds: &[RawFd]) -> Result<(), FrameError> {
        let len = frame.len() - HEADER;
        let limit = self.limit();
        if len > limit {
            return Err(FrameError::TooLarge { len, limit });
        }
        frame[..4].copy_from_slice(&(len as u32).to_le_bytes());
        frame[4..HEADER].copy_from_slice(&(fds.len() as u32).to_le_bytes());
        let flags = SendFlags::NOSIGNAL;
        let _turn = self.tx.acquire();
        let mut sent = 0;
        if let (Some(side), false) = (&self.side, fds.is_empty()) {
            // The descriptors go first, on the side socket: they are there by the time the
            // receiver reads this frame's header.
            send_fds(side.as_fd(), &[0], fds, flags)?;
        } else if !fds.is_empty() {
            // SAFETY: the caller's handles own these descriptors and outlive this call (they
            // are borrowed from the value being sent).
            let borrowed: Vec<BorrowedFd<'_>> = fds
                .iter()
                .map(|&fd| unsafe { BorrowedFd::borrow_raw(fd) })
                .collect();
            let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            if !control.push(SendAncillaryMessage::ScmRights(&borrowed)) {
                return Err(FrameError::Protocol("too many descriptors for one message"));
            }
            sent = loop {
                match sendmsg(&self.fd, &[IoSlice::new(frame)], &mut control, flags) {
                    Err(Errno::INTR) => continue,
                    r => break r?,
                }
            };
        }
        while sent < frame.len() {
            match send(&self.fd, &frame[sent..], flags) {
                Ok(n) => sent += n,
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Receives one frame and hands its payload and descriptors to `read`, until `deadline`.
    /// With `nonblocking`, returns [`FrameError::WouldBlock`] instead of waiting.
    pub(crate) fn recv_with<R>(
        &self,
        deadline: Deadline,
        nonblocking: bool,
        read: impl FnOnce(&[u8], Vec<OwnedFd>) -> R,
    ) -> Result<R, FrameError> {
        let mut rx = self.rx.acquire();
        let mut lingered = false;
        loop {
            if rx.discard > 0 {
                let n = rx.discard.min(rx.tail - rx.head);
                rx.head += n;
                rx.discard -= n;
            }
            let available = rx.tail - rx.head;
            if rx.discard == 0 && available >= HEADER {
                let h = &rx.buf[rx.head..rx.head + HEADER];
                let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
                let nfds = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
                let limit = self.limit();
                if len > limit {
                    // Throw the frame away (and its descriptors), so the stream stays usable.
                    rx.head += HEADER;
                    rx.discard = len;
                    let n = nfds.min(rx.fds.len());
                    rx.fds.drain(..n);
                    return Err(FrameError::TooLarge { len, limit });
                }
                if available >= HEADER + len {
                    if rx.fds.len() < nfds {
                        if let Some(side) = &self.side {
                            // Sent before the frame: already queued on the side socket.
                            if recv_fds(side.as_fd(), &mut rx.fds)? == 0 {
                                return Err(FrameError::Disconnected);
                            }
                            continue;
                        }
                        return Err(FrameError::Protocol(
                            "a frame arrived without its descriptors",
                        ));
                    }
                    let fds: Vec<OwnedFd> = rx.fds.drain(..nfds).collect();
                    let start = rx.head + HEADER;
                    rx.head = start + len;
                    let out = read(&rx.buf[start..start + len], fds);
                    if rx.head == rx.tail {
                        rx.head = 0;
                        rx.tail = 0;
                    }
                    return Ok(out);
                }
                // Make room for the whole frame.
                rx.reserve(HEADER + len);
            } else {
                rx.reserve(HEADER);
            }
            if rx.eof {
                return Err(FrameError::Disconnected);
            }
            if !nonblocking && deadline != Deadline::NEVER && !self.wait_readable(deadline)? {
                return Err(FrameError::Timeout);
            }
            if self.side.is_some() {
                if !nonblocking && !lingered && self.linger.load(Ordering::Relaxed) {
                    // An answer is often microseconds away (a round trip to another process):
                    // look for it awake for a moment before sleeping in the kernel, whose
                    // wake-up costs tens of microseconds on a VM whose idle CPU halts.
                    lingered = true;
                    let mut got = false;
                    crate::wait::futex::linger_until(|| {
                        got =
                            !matches!(rx.read(self.fd.as_fd(), true), Err(FrameError::WouldBlock));
                        got
                    });
                    if got {
                        continue;
                    }
                }
                rx.read(self.fd.as_fd(), nonblocking)?;
            } else {
                rx.fill(self.fd.as_fd(), nonblocking)?;
            }
        }
    }

    /// Whether a frame (or the end of the stream) can be read without waiting, waiting until
    /// `deadline` for one.
    pub(crate) fn poll(&self, deadline: Deadline) -> Result<bool, FrameError> {
        {
            let rx = self.rx.acquire();
            if rx.eof || rx.tail > rx.head {
                return Ok(true);
            }
        }
        self.wait_readable(deadline)
    }

    /// Waits until the socket is readable (data or end of stream); false once `deadline` passed.
    fn wait_readable(&self, deadline: Deadline) -> Result<bool, FrameError> {
        wait_fd(self.fd.as_fd(), PollFlags::IN, deadline)
    }
}

/// Waits until `fd` reports one of `events` (or hang-up/error), until `deadline`.
pub(crate) fn wait_fd(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    deadline: Deadline,
) -> Result<bool, FrameError> {
    loop {
        let timeout = deadline.remaining_timespec();
        let mut fds = [PollFd::from_borrowed_fd(fd, events)];
        match poll(&mut fds, timeout.as_ref()) {
            Ok(0) => {
                if deadline.has_passed() {
                    return Ok(false);
                }
            }
            Ok(_) => return Ok(true),
            Err(Errno::INTR) => {}
            Err(e) => return Err(FrameError::Io(e.into())),
        }
    }
}

/// One `sendmsg` of `bytes` with `fds` attached; the bytes sent.
fn send_fds(
    socket: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[RawFd],
    flags: SendFlags,
) -> Result<usize, FrameError> {
    // SAFETY: the caller's handles own these descriptors and outlive this call (they are
    // borrowed from the value being sent).
    let borrowed: Vec<BorrowedFd<'_>> = fds
        .iter()
        .map(|&fd| unsafe { BorrowedFd::borrow_raw(fd) })
        .collect();
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&borrowed)) {
        return Err(FrameError::Protocol("too many descriptors for one message"));
    }
    loop {
        match sendmsg(socket, &[IoSlice::new(bytes)], &mut control, flags) {
            Err(Errno::INTR) => continue,
            r => return Ok(r?),
        }
    }
}

/// One `recvmsg` into `buf`, queueing the descriptors that come with the bytes; the bytes
/// read (0: end of stream, also for a reset connection).
fn recv_with_fds(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
    queue: &mut VecDeque<OwnedFd>,
    nonblocking: bool,
) -> Result<usize, FrameError> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut flags = RecvFlags::CMSG_CLOEXEC;
    if nonblocking {
        flags |= RecvFlags::DONTWAIT;
    }
    let msg = loop {
        let mut iov = [IoSliceMut::new(buf)];
        match recvmsg(socket, &mut iov, &mut control, flags) {
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => return Err(FrameError::WouldBlock),
            Err(Errno::CONNRESET) => return Ok(0),
            Err(e) => return Err(FrameError::Io(e.into())),
            Ok(msg) => break msg,
        }
    };
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            queue.extend(fds);
        }
    }
    if msg.flags.contains(ReturnFlags::CTRUNC) {
        return Err(FrameError::Protocol("descriptors were cut off in transit"));
    }
    Ok(msg.bytes)
}

/// One blocking `recvmsg` of the marker byte on a side socket, queueing the descriptors it
/// carries; the bytes read (0: the peer closed it).
fn recv_fds(socket: BorrowedFd<'_>, queue: &mut VecDeque<OwnedFd>) -> Result<usize, FrameError> {
    recv_with_fds(socket, &mut [0u8; 1], queue, false)
}

impl Rx {
    /// One plain `recv` into the free end of the buffer (no descriptors on this socket).
    fn read(&mut self, fd: BorrowedFd<'_>, nonblocking: bool) -> Result<(), FrameError> {
        let flags = if nonblocking {
            RecvFlags::DONTWAIT
        } else {
            RecvFlags::empty()
        };
        let n = loop {
            match rustix::net::recv(fd, &mut self.buf[self.tail..], flags) {
                Ok((n, _)) => break n,
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => return Err(FrameError::WouldBlock),
                Err(Errno::CONNRESET) => break 0,
                Err(e) => return Err(FrameError::Io(e.into())),
            }
        };
        if n == 0 {
            self.eof = true;
        }
        self.tail += n;
        Ok(())
    }

    /// Room for `frame` bytes from `head` on: compact, then grow.
    fn reserve(&mut self, frame: usize) {
        if self.buf.is_empty() {
            self.buf = vec![0; READ_CHUNK.max(frame)];
        }
        if self.buf.len() - self.head < frame || self.tail == self.buf.len() {
            self.buf.copy_within(self.head..self.tail, 0);
            self.tail -= self.head;
            self.head = 0;
        }
        if self.buf.len() < frame {
            self.buf.resize(frame, 0);
        }
    }

    /// One `recvmsg` into the free end of the buffer.
    fn fill(&mut self, fd: BorrowedFd<'_>, nonblocking: bool) -> Result<(), FrameError> {
        let tail = self.tail;
        let n = recv_with_fds(fd, &mut self.buf[tail..], &mut self.fds, nonblocking)?;
        if n == 0 {
            self.eof = true;
        }
        self.tail += n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};

    fn pair() -> (Channel, Channel) {
        let (a, b) = socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        (Channel::new(a), Channel::new(b))
    }

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = Channel::frame_buffer();
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn frames_keep_their_boundaries() {
        let (a, b) = pair();
        for p in [&b"one"[..], b"", b"three"] {
            a.send(&mut frame(p), &[]).unwrap();
        }
        for p in [&b"one"[..], b"", b"three"] {
            let got = b
                .recv_with(Deadline::NEVER, false, |bytes, _| bytes.to_vec())
                .unwrap();
            assert_eq!(got, p);
        }
        assert!(matches!(
            b.recv_with(Deadline::NEVER, true, |_, _| ()),
            Err(FrameError::WouldBlock)
        ));
    }

    #[test]
    fn a_frame_larger_than_the_buffer_arrives_whole() {
        let (a, b) = pair();
        let big: Vec<u8> = (0..3 * READ_CHUNK + 17).map(|i| i as u8).collect();
        let sender = std::thread::spawn(move || a.send(&mut frame(&big), &[]).map(|_| big));
        let got = b
            .recv_with(Deadline::NEVER, false, |bytes, _| bytes.to_vec())
            .unwrap();
        assert_eq!(got, sender.join().unwrap().unwrap());
    }

    #[test]
    fn over_limit_frames_are_refused_and_skipped() {
        let (a, b) = pair();
        a.set_limit(4);
        assert!(matches!(
            a.send(&mut frame(b"12345"), &[]),
            Err(FrameError::TooLarge { len: 5, limit: 4 })
        ));
        a.set_limit(DEFAULT_LIMIT);
        b.set_limit(4);
        a.send(&mut frame(b"12345"), &[]).unwrap();
        a.send(&mut frame(b"ok"), &[]).unwrap();
        assert!(matches!(
            b.recv_with(Deadline::NEVER, false, |_, _| ()),
            Err(FrameError::TooLarge { len: 5, limit: 4 })
        ));
        let got = b
            .recv_with(Deadline::NEVER, false, |bytes, _| bytes.to_vec())
            .unwrap();
        assert_eq!(got, b"ok");
    }

    #[test]
    fn end_of_stream_and_timeouts() {
        let (a, b) = pair();
        let d = Deadline::after(std::time::Duration::from_millis(10));
        assert!(matches!(
            b.recv_with(d, false, |_, _| ()),
            Err(FrameError::Timeout)
        ));
        assert!(!b.poll(Deadline::after(std::time::Duration::ZERO)).unwrap());
        drop(a);
        assert!(b.poll(Deadline::NEVER).unwrap());
        assert!(matches!(
            b.recv_with(Deadline::NEVER, false, |_, _| ()),
            Err(FrameError::Disconnected)
        ));
        let (a, b) = pair();
        drop(b);
        assert!(matches!(
            a.send(&mut frame(b"x"), &[]),
            Err(FrameError::Disconnected)
        ));
    }

    #[test]
    fn descriptors_travel_on_the_side_socket_in_frame_order() {
        let (a, b) = pair();
        let (sa, sb) = pair();
        let (a, b) = (
            Channel::with_side(a.fd, Some(sa.fd)),
            Channel::with_side(b.fd, Some(sb.fd)),
        );
        let (x, y) = pair();
        let (u, v) = pair();
        use std::os::fd::AsRawFd;
        a.send(&mut frame(b"none"), &[]).unwrap();
        a.send(&mut frame(b"one"), &[y.fd.as_raw_fd()]).unwrap();
        a.send(&mut frame(b"two"), &[v.fd.as_raw_fd(), y.fd.as_raw_fd()])
            .unwrap();
        a.send(&mut frame(b"none again"), &[]).unwrap();
        drop((y, v));
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(
                b.recv_with(Deadline::NEVER, false, |bytes, fds| (bytes.to_vec(), fds))
                    .unwrap(),
            );
        }
        let counts: Vec<usize> = got.iter().map(|(_, f)| f.len()).collect();
        assert_eq!(counts, [0, 1, 2, 0]);
        // The descriptors are the ones sent, in order: talk through them.
        let (_, mut fds) = got.swap_remove(2);
        let y2 = Channel::new(fds.pop().unwrap());
        let v2 = Channel::new(fds.pop().unwrap());
        x.send(&mut frame(b"to y"), &[]).unwrap();
        u.send(&mut frame(b"to v"), &[]).unwrap();
        let read = |c: &Channel| {
            c.recv_with(Deadline::NEVER, false, |b, _| b.to_vec())
                .unwrap()
        };
        assert_eq!(read(&y2), b"to y");
        assert_eq!(read(&v2), b"to v");
    }

    #[test]
    fn descriptors_travel_with_their_frame() {
        let (a, b) = pair();
        let (x, y) = pair();
        a.send(&mut frame(b"plain"), &[]).unwrap();
        a.send(
            &mut frame(b"with"),
            &[std::os::fd::AsRawFd::as_raw_fd(&y.fd)],
        )
        .unwrap();
        drop(y);
        let n = b
            .recv_with(Deadline::NEVER, false, |_, fds| fds.len())
            .unwrap();
        assert_eq!(n, 0);
        let y2 = b
            .recv_with(Deadline::NEVER, false, |bytes, mut fds| {
                assert_eq!(bytes, b"with");
                Channel::new(fds.pop().unwrap())
            })
            .unwrap();
        x.send(&mut frame(b"through"), &[]).unwrap();
        let got = y2
            .recv_with(Deadline::NEVER, false, |b, _| b.to_vec())
            .unwrap();
        assert_eq!(got, b"through");
    }
}
