//! `Shared<S, T>`: the handle under every shared-memory object — a state `S` (atomics only,
//! valid when zeroed) followed by `len` elements of plain data `T`, in one segment — and how
//! such handles travel to other processes and register for recovery.

use super::codec::{deserialize_fd, handle_de_error, serialize_fd};
use super::robust::{register, Recover};
use super::shm::{fnv, type_tag, Kind, Segment};
use serde::{Deserializer, Serializer};
use std::io;
use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// The state of a shared object.
///
/// # Safety
/// The all-zero bit pattern is a valid `Self`, every field may be used from several
/// processes at once (atomics, or data only touched under a lock in `Self`), and `Self`
/// holds no pointer.
pub(crate) unsafe trait SharedState: Sync + Send + 'static {
    /// The segment kind, checked when another process maps it.
    const KIND: Kind;

    /// A process died holding something of this object (supervised path).
    fn recover(&self, _pid: u32) {}
}

struct Inner<S> {
    segment: Segment,
    len: usize,
    _state: PhantomData<S>,
}

impl<S: SharedState> Recover for Inner<S> {
    fn recover(&self, pid: u32) {
        state_of::<S>(&self.segment).recover(pid);
    }
}

fn state_of<S>(segment: &Segment) -> &S {
    // SAFETY: the payload starts (64-aligned) with an `S`, valid when zeroed (SharedState),
    // and it lives as long as the segment this borrows.
    unsafe { &*segment.payload().cast::<S>() }
}

/// Where `T` starts after `S`: aligned to `T`, and to 8 at least, so that integers can be
/// viewed as their atomic twins (whose alignment may exceed the integer's on some targets).
const fn data_offset<S, T>() -> usize {
    let a = if std::mem::align_of::<T>() > 8 {
        std::mem::align_of::<T>()
    } else {
        8
    };
    std::mem::size_of::<S>().div_ceil(a) * a
}

/// A handle to a shared object (cheap to clone: the mapping is shared).
pub(crate) struct Shared<S, T = ()> {
    inner: Arc<Inner<S>>,
    _data: PhantomData<T>,
}

impl<S: SharedState, T: Copy + 'static> Shared<S, T> {
    fn tag() -> u64 {
        fnv(&type_tag::<T>().to_le_bytes(), type_tag::<S>())
    }

    /// A new object: `init` sets up the zeroed state, `data` fills the elements.
    pub(crate) fn create(
        init: impl FnOnce(&S),
        data: impl ExactSizeIterator<Item = T>,
    ) -> io::Result<Self> {
        let len = data.len();
        let this = Self::wrap(Self::segment(len)?, len);
        init(this.state());
        // SAFETY: the segment is new and not shared yet; `len` elements fit after the state.
        unsafe {
            let base = this.data_ptr();
            for (i, v) in data.enumerate() {
                base.add(i).write(v);
            }
        }
        Ok(this)
    }

    /// A new object of `len` zeroed elements (the segment is zero-filled already, and its
    /// pages are only allocated when first touched).
    pub(crate) fn create_zeroed(init: impl FnOnce(&S), len: usize) -> io::Result<Self>
    where
        T: bytemuck::Zeroable,
    {
        let this = Self::wrap(Self::segment(len)?, len);
        init(this.state());
        Ok(this)
    }

    /// A zero-filled segment for the state and `len` elements.
    fn segment(len: usize) -> io::Result<Segment> {
        let bytes = std::mem::size_of::<T>()
            .checked_mul(len)
            .and_then(|b| b.checked_add(data_offset::<S, T>()))
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "shared object too large")
            })?;
        Segment::create(S::KIND, Self::tag(), len, bytes)
    }

    fn wrap(segment: Segment, len: usize) -> Self {
        let inner = Arc::new(Inner {
            segment,
            len,
            _state: PhantomData,
        });
        let weak: std::sync::Weak<Inner<S>> = Arc::downgrade(&inner);
        register(weak);
        Shared {
            inner,
            _data: PhantomData,
        }
    }

    /// Maps an object received from another process, checking its kind and types.
    pub(crate) fn open(fd: OwnedFd) -> Result<Self, String> {
        let (segment, len) = Segment::open(fd, S::KIND, Self::tag())?;
        Ok(Self::wrap(segment, len))
    }

    /// The state.
    pub(crate) fn state(&self) -> &S {
        state_of(&self.inner.segment)
    }

    /// The first element (valid for `len` elements; access them under the state's lock).
    pub(crate) fn data_ptr(&self) -> *mut T {
        // SAFETY: the payload holds the state, then `len` elements at `data_offset`.
        unsafe {
            self.inner
                .segment
                .payload()
                .add(data_offset::<S, T>())
                .cast::<T>()
        }
    }

    /// The number of elements.
    pub(crate) fn len(&self) -> usize {
        self.inner.len
    }

    /// Serializes the handle (its segment's descriptor).
    pub(crate) fn serialize<Z: Serializer>(&self, s: Z) -> Result<Z::Ok, Z::Error> {
        serialize_fd(self.inner.segment.fd(), s)
    }

    /// Deserializes a handle serialized with [`Shared::serialize`].
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fd = deserialize_fd(d)?;
        Self::open(fd).map_err(handle_de_error)
    }
}

impl<S, T> Clone for Shared<S, T> {
    fn clone(&self) -> Self {
        Shared {
            inner: Arc::clone(&self.inner),
            _data: PhantomData,
        }
    }
}

/// Clone, Serialize and Deserialize for a public handle type `$name` whose field `inner`
/// is a `Shared`; `$($bound)*` are the type parameter's bounds.
macro_rules! shared_handle {
    ($name:ident < $t:ident : $bound:path >) => {
        impl<$t: $bound> Clone for $name<$t> {
            /// Another handle to the same shared object (nothing is copied).
            fn clone(&self) -> Self {
                $name {
                    inner: self.inner.clone(),
                }
            }
        }

        /// The handle travels to another process with its shared memory segment.
        impl<$t: $bound> serde::Serialize for $name<$t> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.inner.serialize(s)
            }
        }

        impl<'de, $t: $bound> serde::Deserialize<'de> for $name<$t> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok($name {
                    inner: crate::process::shared::Shared::deserialize(d)?,
                })
            }
        }
    };
    ($name:ident) => {
        impl Clone for $name {
            /// Another handle to the same shared object (nothing is copied).
            fn clone(&self) -> Self {
                $name {
                    inner: self.inner.clone(),
                }
            }
        }

        /// The handle travels to another process with its shared memory segment.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.inner.serialize(s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok($name {
                    inner: crate::process::shared::Shared::deserialize(d)?,
                })
            }
        }
    };
}

pub(crate) use shared_handle;
