//! Shared memory segments: anonymous, sealed `memfd`s mapped in every process that holds the
//! handle.
//!
//! A segment is never named in `/dev/shm`: it lives as long as some process holds its file
//! descriptor or mapping, so a SIGKILL leaves nothing behind. Its size is sealed (no
//! process can shrink it under another's mapping, which would turn a read into `SIGBUS`).
//! Every segment starts with a [`Header`]; a process that maps a segment checks the magic,
//! the layout version, tandem's build identity, the kind of object and its element type,
//! and refuses a mismatch instead of reading memory laid out differently.

use rustix::fs::{fcntl_add_seals, fstat, ftruncate, memfd_create, MemfdFlags, SealFlags};
use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

/// "tandemsh" in ASCII.
const MAGIC: u64 = u64::from_le_bytes(*b"tandemsh");
/// Bumped whenever the layout of any shared object changes.
pub(crate) const LAYOUT_VERSION: u32 = 1;
/// Where the payload starts: the header has a cache line of its own.
pub(crate) const PAYLOAD_OFFSET: usize = 64;

/// Which object a segment holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Kind {
    Value = 1,
    Array = 2,
    RawValue = 3,
    RawArray = 4,
    Lock = 5,
    RLock = 6,
    Semaphore = 7,
    Event = 8,
    Condition = 9,
    Barrier = 10,
    Queue = 11,
}

/// The first bytes of every segment.
#[repr(C)]
struct Header {
    magic: u64,
    version: u32,
    kind: u32,
    build: u64,
    type_tag: u64,
    /// Elements (1 for a value).
    len: u64,
    /// Bytes after [`PAYLOAD_OFFSET`].
    payload: u64,
}

const _: () = assert!(std::mem::size_of::<Header>() <= PAYLOAD_OFFSET);

/// tandem's build identity for shared layouts: its version (FNV-1a).
pub(crate) const BUILD: u64 = fnv(env!("CARGO_PKG_VERSION").as_bytes(), 0xcbf2_9ce4_8422_2325);

/// FNV-1a over `bytes`, from `seed`.
pub(crate) const fn fnv(bytes: &[u8], seed: u64) -> u64 {
    let mut h = seed;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

/// A tag for the element type `T`: its name, size and alignment.
pub(crate) fn type_tag<T>() -> u64 {
    let h = fnv(std::any::type_name::<T>().as_bytes(), 0xcbf2_9ce4_8422_2325);
    let h = fnv(&(std::mem::size_of::<T>() as u64).to_le_bytes(), h);
    fnv(&(std::mem::align_of::<T>() as u64).to_le_bytes(), h)
}

/// One mapped segment.
pub(crate) struct Segment {
    base: NonNull<u8>,
    size: usize,
    fd: OwnedFd,
}

// SAFETY: the mapping is plain shared memory owned by this value; what lives in it is
// accessed only through atomics or under the object's own lock (each object's docs).
unsafe impl Send for Segment {}
// SAFETY: as above.
unsafe impl Sync for Segment {}

impl Segment {
    /// A new zero-filled segment for `len` elements in `payload` bytes.
    pub(crate) fn create(
        kind: Kind,
        type_tag: u64,
        len: usize,
        payload: usize,
    ) -> io::Result<Segment> {
        let size = PAYLOAD_OFFSET
            .checked_add(payload)
            .filter(|&s| s <= isize::MAX as usize)
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "shared object too large")
            })?;
        let fd = memfd_create("tandem", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
        ftruncate(&fd, size as u64)?;
        fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?;
        let segment = Segment::map(fd, size)?;
        // SAFETY: the mapping is at least PAYLOAD_OFFSET bytes, page-aligned, and nobody else
        // has it yet: a plain write of the header is race-free.
        unsafe {
            segment.base.as_ptr().cast::<Header>().write(Header {
                magic: MAGIC,
                version: LAYOUT_VERSION,
                kind: kind as u32,
                build: BUILD,
                type_tag,
                len: len as u64,
                payload: payload as u64,
            });
        }
        Ok(segment)
    }

    /// Maps a segment received from another process, checking that it holds a `kind` of
    /// `type_tag` elements laid out as this build lays them out; its element count.
    pub(crate) fn open(fd: OwnedFd, kind: Kind, type_tag: u64) -> Result<(Segment, usize), String> {
        let size = fstat(&fd)
            .map_err(|e| format!("cannot inspect the shared segment: {e}"))?
            .st_size;
        let size = usize::try_from(size).unwrap_or(0);
        if size < PAYLOAD_OFFSET {
            return Err("the descriptor is not a tandem shared segment (too small)".into());
        }
        let segment =
            Segment::map(fd, size).map_err(|e| format!("cannot map the shared segment: {e}"))?;
        // SAFETY: the mapping holds at least a header; the header is written once, before the
        // segment was shared, and never again.
        let h = unsafe { &*segment.base.as_ptr().cast::<Header>() };
        if h.magic != MAGIC {
            return Err("the descriptor is not a tandem shared segment (bad magic)".into());
        }
        if h.version != LAYOUT_VERSION || h.build != BUILD {
            return Err(format!(
                "the shared segment was made by a different tandem (layout {} / build {:#x}, this \
                 one is {} / {:#x}): both processes must run the same build",
                h.version, h.build, LAYOUT_VERSION, BUILD
            ));
        }
        if h.kind != kind as u32 || h.type_tag != type_tag {
            return Err(format!(
                "the shared segment holds a different object or element type (expected a {kind:?} \
                 of the type this end names): both ends must use the same type"
            ));
        }
        if PAYLOAD_OFFSET as u64 + h.payload != size as u64 {
            return Err("the shared segment's size does not match its header".into());
        }
        let len = h.len as usize;
        Ok((segment, len))
    }

    fn map(fd: OwnedFd, size: usize) -> io::Result<Segment> {
        // SAFETY: a fresh shared mapping of `size` bytes of our own memfd, at an address the
        // kernel picks; it is unmapped exactly once, in Drop.
        let ptr = unsafe {
            mmap(
                std::ptr::null_mut(),
                size,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )?
        };
        let base =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Segment { base, size, fd })
    }

    /// The payload's first byte (aligned to 64).
    pub(crate) fn payload(&self) -> *mut u8 {
        // SAFETY: the mapping is at least PAYLOAD_OFFSET bytes long.
        unsafe { self.base.as_ptr().add(PAYLOAD_OFFSET) }
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    #[cfg(test)]
    fn header_mut(&self) -> *mut Header {
        self.base.as_ptr().cast()
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `map` with this size and is not used after drop
        // (every reference into it borrows the segment).
        unsafe {
            let _ = munmap(self.base.as_ptr().cast(), self.size);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reopen(s: &Segment) -> OwnedFd {
        s.fd().try_clone_to_owned().unwrap()
    }

    #[test]
    fn a_segment_reopens_with_its_layout() {
        let s = Segment::create(Kind::Array, type_tag::<u32>(), 10, 40).unwrap();
        // SAFETY: 40 payload bytes, u32-aligned (64), no other user.
        unsafe { s.payload().cast::<u32>().add(9).write(7) };
        let (t, len) = Segment::open(reopen(&s), Kind::Array, type_tag::<u32>()).unwrap();
        assert_eq!(len, 10);
        // SAFETY: as above; the write happened before in this thread.
        assert_eq!(unsafe { t.payload().cast::<u32>().add(9).read() }, 7);
    }

    #[test]
    fn mismatches_are_refused() {
        let s = Segment::create(Kind::Value, type_tag::<u64>(), 1, 8).unwrap();
        let err = Segment::open(reopen(&s), Kind::Array, type_tag::<u64>())
            .err()
            .unwrap();
        assert!(err.contains("different object"), "{err}");
        let err = Segment::open(reopen(&s), Kind::Value, type_tag::<i64>())
            .err()
            .unwrap();
        assert!(err.contains("element type"), "{err}");
        // SAFETY: the header is ours to corrupt in this test; nobody else reads it.
        unsafe { (*s.header_mut()).version += 1 };
        let err = Segment::open(reopen(&s), Kind::Value, type_tag::<u64>())
            .err()
            .unwrap();
        assert!(err.contains("different tandem"), "{err}");
        // SAFETY: as above.
        unsafe { (*s.header_mut()).magic = 0 };
        let err = Segment::open(reopen(&s), Kind::Value, type_tag::<u64>())
            .err()
            .unwrap();
        assert!(err.contains("bad magic"), "{err}");
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let err = Segment::open(a.into(), Kind::Value, type_tag::<u64>())
            .err()
            .unwrap();
        assert!(err.contains("not a tandem"), "{err}");
    }

    #[test]
    fn the_size_is_sealed() {
        let s = Segment::create(Kind::Value, type_tag::<u8>(), 1, 1).unwrap();
        assert!(ftruncate(s.fd(), 1).is_err());
        assert!(ftruncate(s.fd(), 1 << 20).is_err());
    }
}
