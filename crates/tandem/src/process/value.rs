//! `Value` and `Array` (Python's `multiprocessing.Value`, `Array`) with a lock, and
//! `RawValue` and `RawArray` (Python's `RawValue`, `RawArray`) with atomic access: plain data
//! in a shared memory segment that every process holding the handle sees.

use super::codec::{deserialize_fd, handle_de_error, serialize_fd};
use super::raw_mutex::RawMutex;
use super::shm::{type_tag, Kind, Segment};
use crate::wait::Deadline;
use bytemuck::Pod;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic;
use std::sync::Arc;
use std::time::Duration;

/// Where the data starts after the lock word: `T`'s alignment, at least 4.
const fn data_offset<T>() -> usize {
    let a = std::mem::align_of::<T>();
    if a > 4 {
        a
    } else {
        4
    }
}

/// A lock word followed by `len` `T`s in one segment.
struct Locked<T> {
    segment: Arc<Segment>,
    len: usize,
    _type: PhantomData<T>,
}

impl<T: Pod> Locked<T> {
    fn create(kind: Kind, values: impl ExactSizeIterator<Item = T>) -> io::Result<Self> {
        let len = values.len();
        let bytes = std::mem::size_of::<T>()
            .checked_mul(len)
            .and_then(|b| b.checked_add(data_offset::<T>()))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "array too large"))?;
        let segment = Segment::create(kind, type_tag::<T>(), len, bytes)?;
        let this = Locked {
            segment: Arc::new(segment),
            len,
            _type: PhantomData,
        };
        // SAFETY: the segment is new and not shared yet; the slice is in bounds and aligned.
        let data = unsafe { std::slice::from_raw_parts_mut(this.data_ptr(), len) };
        for (slot, v) in data.iter_mut().zip(values) {
            *slot = v;
        }
        Ok(this)
    }

    fn open(kind: Kind, fd: std::os::fd::OwnedFd) -> Result<Self, String> {
        let (segment, len) = Segment::open(fd, kind, type_tag::<T>())?;
        Ok(Locked {
            segment: Arc::new(segment),
            len,
            _type: PhantomData,
        })
    }

    fn lock(&self) -> RawGuard<'_, T> {
        self.raw_mutex().lock();
        RawGuard { owner: self }
    }

    fn try_lock(&self) -> Option<RawGuard<'_, T>> {
        self.raw_mutex()
            .try_lock()
            .then(|| RawGuard { owner: self })
    }

    fn lock_timeout(&self, timeout: Duration) -> Option<RawGuard<'_, T>> {
        let locked = self.raw_mutex().lock_deadline(Deadline::after(timeout));
        locked.then(|| RawGuard { owner: self })
    }
}

impl<T> Locked<T> {
    fn raw_mutex(&self) -> &RawMutex {
        // SAFETY: the payload starts with the lock word (4-byte aligned, zero-initialized by
        // the memfd), which lives as long as the segment this borrows.
        unsafe { &*self.segment.payload().cast::<RawMutex>() }
    }

    fn data_ptr(&self) -> *mut T {
        // SAFETY: the payload holds `data_offset + len * size_of::<T>()` bytes.
        unsafe { self.segment.payload().add(data_offset::<T>()).cast::<T>() }
    }
}

impl<T> Clone for Locked<T> {
    fn clone(&self) -> Self {
        Locked {
            segment: Arc::clone(&self.segment),
            len: self.len,
            _type: PhantomData,
        }
    }
}

/// Holds a shared lock; releases it on drop. Wrapped by [`ValueGuard`] and [`ArrayGuard`].
struct RawGuard<'a, T> {
    owner: &'a Locked<T>,
}

impl<T> RawGuard<'_, T> {
    fn slice(&self) -> &[T] {
        // SAFETY: the lock is held, so no other thread or process touches the data; the
        // slice is in bounds, aligned and initialized (zero or written at creation).
        unsafe { std::slice::from_raw_parts(self.owner.data_ptr(), self.owner.len) }
    }

    fn slice_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `slice`; `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.owner.data_ptr(), self.owner.len) }
    }
}

impl<T> Drop for RawGuard<'_, T> {
    fn drop(&mut self) {
        self.owner.raw_mutex().unlock();
    }
}

/// Holds the lock of a [`Value`]; dereferences to the value; releases the lock on drop.
pub struct ValueGuard<'a, T>(RawGuard<'a, T>);

impl<T> Deref for ValueGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0.slice()[0]
    }
}

impl<T> DerefMut for ValueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0.slice_mut()[0]
    }
}

impl<T: fmt::Debug> fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

/// Holds the lock of an [`Array`]; dereferences to its elements; releases the lock on drop.
pub struct ArrayGuard<'a, T>(RawGuard<'a, T>);

impl<T> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.0.slice()
    }
}

impl<T> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.0.slice_mut()
    }
}

impl<T: fmt::Debug> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

/// Python's `multiprocessing.Value(typecode, value)`: one plain-data `T` in shared memory,
/// with a lock that works across processes.
///
/// `T` is any [`bytemuck::Pod`] type (integers, floats, arrays of them, `#[repr(C)]` structs
/// of them): types that carry pointers, references or heap data cannot be shared between
/// processes and are refused at compile time. Clone the handle to share it between
/// threads; pass it in a child's arguments or over a [`Connection`](super::Connection) to
/// share it with a process.
///
/// | Python | tandem |
/// | --- | --- |
/// | `v = Value('i', 0)` | `let v = Value::new(0i32)?;` |
/// | `v.value` / `v.value = 3` | `v.get()` / `v.set(3)` (each takes the lock, as Python's property does) |
/// | `with v.get_lock(): v.value += 1` | `*v.lock() += 1;` |
/// | `v.get_lock().acquire(timeout=t)` | `v.lock_timeout(t)` |
///
/// A process killed while holding the lock leaves it held: keep critical sections short and
/// free of anything that can kill the process. (The cross-process `Lock` with owner-died
/// recovery is a separate primitive.)
///
/// # Examples
/// The race the seeds teach, across processes, fixed with the value's lock:
/// ```
/// tandem::process::init(); // first in main: a child runs its function here
/// use tandem::process::{Process, Value};
///
/// fn add(counter: Value<u64>) {
///     for _ in 0..1000 {
///         *counter.lock() += 1;
///     }
/// }
///
/// let counter = Value::new(0u64)?;
/// let children: Vec<_> = (0..2)
///     .map(|_| Process::spawn(add, counter.clone()))
///     .collect::<Result<_, _>>()?;
/// for child in children {
///     child.join()?;
/// }
/// assert_eq!(counter.get(), 2000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Value<T> {
    inner: Locked<T>,
}

impl<T: Pod> Value<T> {
    /// A new shared value (Python's `Value(typecode, value)`).
    ///
    /// # Errors
    /// The operating system could not create the shared segment (out of memory or file
    /// descriptors).
    pub fn new(value: T) -> io::Result<Self> {
        Ok(Value {
            inner: Locked::create(Kind::Value, std::iter::once(value))?,
        })
    }

    /// Takes the lock; the guard dereferences to the value (Python's `with v.get_lock():`).
    pub fn lock(&self) -> ValueGuard<'_, T> {
        ValueGuard(self.inner.lock())
    }

    /// Takes the lock if it is free.
    pub fn try_lock(&self) -> Option<ValueGuard<'_, T>> {
        self.inner.try_lock().map(ValueGuard)
    }

    /// Takes the lock, waiting at most `timeout` (`Duration::MAX` waits forever).
    pub fn lock_timeout(&self, timeout: Duration) -> Option<ValueGuard<'_, T>> {
        self.inner.lock_timeout(timeout).map(ValueGuard)
    }

    /// The value, read under the lock (Python's `v.value`).
    pub fn get(&self) -> T {
        *self.lock()
    }

    /// Replaces the value under the lock (Python's `v.value = x`).
    pub fn set(&self, value: T) {
        *self.lock() = value;
    }
}

/// Python's `multiprocessing.Array(typecode, size_or_initializer)`: a fixed-length slice
/// of plain-data `T` in shared memory, with one lock for the whole array.
///
/// | Python | tandem |
/// | --- | --- |
/// | `a = Array('d', 10)` | `let a = Array::<f64>::new(10)?;` (zeros) |
/// | `a = Array('i', [1, 2, 3])` | `let a = Array::from_slice(&[1i32, 2, 3])?;` |
/// | `a[i]`, `a[i] = x` | `a.get(i)`, `a.set(i, x)` |
/// | `a[:]` | `a.to_vec()` |
/// | `with a.get_lock(): a[0] += a[1]` | `let mut g = a.lock(); g[0] += g[1];` |
///
/// `get` and `set` take the lock; they panic on an index out of bounds, as slices do. The
/// same caveat as [`Value`] applies to a holder killed inside the lock.
///
/// # Examples
/// ```
/// use tandem::process::Array;
///
/// let a = Array::from_slice(&[1.0f64, 2.0, 3.0])?;
/// a.set(0, 10.0);
/// {
///     let mut g = a.lock();
///     g[1] += g[2];
/// }
/// assert_eq!(a.to_vec(), [10.0, 5.0, 3.0]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Array<T> {
    inner: Locked<T>,
}

impl<T: Pod> Array<T> {
    /// `len` zeros (Python's `Array(typecode, size)`).
    pub fn new(len: usize) -> io::Result<Self> {
        Ok(Array {
            inner: Locked::create(Kind::Array, (0..len).map(|_| T::zeroed()))?,
        })
    }

    /// A copy of `values` (Python's `Array(typecode, initializer)`).
    pub fn from_slice(values: &[T]) -> io::Result<Self> {
        Ok(Array {
            inner: Locked::create(Kind::Array, values.iter().copied())?,
        })
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.inner.len
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.inner.len == 0
    }

    /// Takes the lock; the guard dereferences to the elements.
    pub fn lock(&self) -> ArrayGuard<'_, T> {
        ArrayGuard(self.inner.lock())
    }

    /// Takes the lock if it is free.
    pub fn try_lock(&self) -> Option<ArrayGuard<'_, T>> {
        self.inner.try_lock().map(ArrayGuard)
    }

    /// Takes the lock, waiting at most `timeout` (`Duration::MAX` waits forever).
    pub fn lock_timeout(&self, timeout: Duration) -> Option<ArrayGuard<'_, T>> {
        self.inner.lock_timeout(timeout).map(ArrayGuard)
    }

    /// Element `index`, read under the lock.
    ///
    /// # Panics
    /// If `index >= len()`.
    #[track_caller]
    pub fn get(&self, index: usize) -> T {
        self.lock()[index]
    }

    /// Sets element `index` under the lock.
    ///
    /// # Panics
    /// If `index >= len()`.
    #[track_caller]
    pub fn set(&self, index: usize, value: T) {
        self.lock()[index] = value;
    }

    /// A copy of every element, taken under the lock (Python's `a[:]`).
    pub fn to_vec(&self) -> Vec<T> {
        self.lock().to_vec()
    }
}

/// Integer types with an atomic twin: what [`RawValue`] and [`RawArray`] hold.
pub trait AtomicRepr: Copy + sealed::Sealed {
    /// The atomic type of the same size (`u64` → `AtomicU64`).
    type Atomic: Sync;
    #[doc(hidden)]
    fn new_atomic(self) -> Self::Atomic;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! atomic_repr {
    ($($t:ty => $a:ty),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl AtomicRepr for $t {
            type Atomic = $a;
            fn new_atomic(self) -> $a {
                <$a>::new(self)
            }
        }
    )*};
}

atomic_repr! {
    u8 => atomic::AtomicU8, u16 => atomic::AtomicU16, u32 => atomic::AtomicU32,
    u64 => atomic::AtomicU64, usize => atomic::AtomicUsize,
    i8 => atomic::AtomicI8, i16 => atomic::AtomicI16, i32 => atomic::AtomicI32,
    i64 => atomic::AtomicI64, isize => atomic::AtomicIsize, bool => atomic::AtomicBool,
}

/// Atomic slots in one segment, without a lock.
struct Atomics<T: AtomicRepr> {
    segment: Arc<Segment>,
    len: usize,
    _type: PhantomData<T>,
}

impl<T: AtomicRepr> Atomics<T> {
    fn create(kind: Kind, values: impl ExactSizeIterator<Item = T>) -> io::Result<Self> {
        let len = values.len();
        let bytes = std::mem::size_of::<T::Atomic>()
            .checked_mul(len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "array too large"))?;
        let segment = Segment::create(kind, type_tag::<T>(), len, bytes)?;
        let this = Atomics {
            segment: Arc::new(segment),
            len,
            _type: PhantomData,
        };
        // SAFETY: the segment is new and not shared yet; writing whole atomics in bounds.
        unsafe {
            let base = this.segment.payload().cast::<T::Atomic>();
            for (i, v) in values.enumerate() {
                base.add(i).write(v.new_atomic());
            }
        }
        Ok(this)
    }

    fn open(kind: Kind, fd: std::os::fd::OwnedFd) -> Result<Self, String> {
        let (segment, len) = Segment::open(fd, kind, type_tag::<T>())?;
        Ok(Atomics {
            segment: Arc::new(segment),
            len,
            _type: PhantomData,
        })
    }

    fn slice(&self) -> &[T::Atomic] {
        // SAFETY: the payload holds `len` atomics (64-aligned, initialized at creation); an
        // atomic may be shared between threads and processes alike.
        unsafe { std::slice::from_raw_parts(self.segment.payload().cast::<T::Atomic>(), self.len) }
    }
}

impl<T: AtomicRepr> Clone for Atomics<T> {
    fn clone(&self) -> Self {
        Atomics {
            segment: Arc::clone(&self.segment),
            len: self.len,
            _type: PhantomData,
        }
    }
}

/// Python's `multiprocessing.RawValue`: one integer in shared memory without a lock,
/// accessed atomically. Dereferences to the atomic (`RawValue<u64>` → `AtomicU64`).
///
/// Python's `RawValue` is unsynchronized; tandem's gives atomic operations instead, so a
/// counter shared by processes needs no lock (`fetch_add`). For floats or structs, use
/// [`Value`].
///
/// # Examples
/// ```
/// use std::sync::atomic::Ordering;
/// use tandem::process::RawValue;
///
/// let hits = RawValue::new(0u64)?;
/// hits.fetch_add(5, Ordering::Relaxed);
/// assert_eq!(hits.load(Ordering::Relaxed), 5);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct RawValue<T: AtomicRepr> {
    inner: Atomics<T>,
}

impl<T: AtomicRepr> RawValue<T> {
    /// A new shared atomic holding `value`.
    pub fn new(value: T) -> io::Result<Self> {
        Ok(RawValue {
            inner: Atomics::create(Kind::RawValue, std::iter::once(value))?,
        })
    }
}

impl<T: AtomicRepr> Deref for RawValue<T> {
    type Target = T::Atomic;
    fn deref(&self) -> &T::Atomic {
        &self.inner.slice()[0]
    }
}

/// Python's `multiprocessing.RawArray`: integers in shared memory without a lock, each
/// accessed atomically. Dereferences to a slice of atomics.
///
/// # Examples
/// ```
/// use std::sync::atomic::Ordering;
/// use tandem::process::RawArray;
///
/// let slots = RawArray::<u32>::new(4)?;
/// slots[2].store(9, Ordering::Relaxed);
/// assert_eq!(slots.iter().map(|s| s.load(Ordering::Relaxed)).sum::<u32>(), 9);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct RawArray<T: AtomicRepr> {
    inner: Atomics<T>,
}

impl<T: AtomicRepr + Default> RawArray<T> {
    /// `len` zeros.
    pub fn new(len: usize) -> io::Result<Self> {
        Ok(RawArray {
            inner: Atomics::create(Kind::RawArray, (0..len).map(|_| T::default()))?,
        })
    }
}

impl<T: AtomicRepr> RawArray<T> {
    /// A copy of `values`.
    pub fn from_slice(values: &[T]) -> io::Result<Self> {
        Ok(RawArray {
            inner: Atomics::create(Kind::RawArray, values.iter().copied())?,
        })
    }
}

impl<T: AtomicRepr> Deref for RawArray<T> {
    type Target = [T::Atomic];
    fn deref(&self) -> &[T::Atomic] {
        self.inner.slice()
    }
}

/// Clone, Debug, and passing to another process, alike for the four types.
macro_rules! shared_handle {
    ($name:ident, $inner:ident, $kind:expr, $bound:path) => {
        impl<T: $bound> Clone for $name<T> {
            /// Another handle to the same shared memory (nothing is copied).
            fn clone(&self) -> Self {
                $name {
                    inner: self.inner.clone(),
                }
            }
        }

        impl<T: $bound> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("type", &std::any::type_name::<T>())
                    .field("len", &self.inner.len)
                    .finish_non_exhaustive()
            }
        }

        /// The handle travels to another process with its shared memory segment.
        impl<T: $bound> Serialize for $name<T> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serialize_fd(self.inner.segment.fd(), s)
            }
        }

        impl<'de, T: $bound> Deserialize<'de> for $name<T> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let fd = deserialize_fd(d)?;
                let inner = $inner::open($kind, fd).map_err(handle_de_error)?;
                Ok($name { inner })
            }
        }
    };
}

shared_handle!(Value, Locked, Kind::Value, Pod);
shared_handle!(Array, Locked, Kind::Array, Pod);
shared_handle!(RawValue, Atomics, Kind::RawValue, AtomicRepr);
shared_handle!(RawArray, Atomics, Kind::RawArray, AtomicRepr);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::codec;
    use std::os::fd::{BorrowedFd, OwnedFd};
    use std::sync::atomic::Ordering;

    /// A copy of a descriptor that a live handle owns.
    fn dup(fd: std::os::fd::RawFd) -> OwnedFd {
        // SAFETY: every caller passes a descriptor of a handle alive for the call.
        unsafe { BorrowedFd::borrow_raw(fd) }
            .try_clone_to_owned()
            .unwrap()
    }

    /// Sends `value` through the codec as to another process (its descriptors duplicated).
    fn transfer<T: Serialize + serde::de::DeserializeOwned>(value: &T) -> Result<T, String> {
        let (bytes, fds) = codec::encode_into(value, Vec::new()).map_err(|e| e.0)?;
        let fds: Vec<OwnedFd> = fds.iter().map(|&fd| dup(fd)).collect();
        codec::decode(&bytes, fds).map_err(|e| e.0)
    }

    #[test]
    fn values_and_arrays_share_memory_through_a_transfer() {
        let v = Value::new(41u32).unwrap();
        let w = transfer(&v).unwrap();
        *w.lock() += 1;
        assert_eq!(v.get(), 42);
        let a = Array::<f64>::new(3).unwrap();
        let b = transfer(&a).unwrap();
        b.set(2, 1.5);
        assert_eq!(a.to_vec(), [0.0, 0.0, 1.5]);
        assert_eq!(b.len(), 3);
    }

    #[test]
    fn a_handle_of_another_type_is_refused() {
        let v = Value::new(1u32).unwrap();
        let (bytes, fds) = codec::encode_into(&v, Vec::new()).unwrap();
        let fds = vec![dup(fds[0])];
        let err = codec::decode::<Value<i32>>(&bytes, fds).unwrap_err();
        assert!(err.0.contains("element type"), "{}", err.0);
        let a = Array::<u32>::new(1).unwrap();
        let (bytes, fds) = codec::encode_into(&a, Vec::new()).unwrap();
        let fds = vec![dup(fds[0])];
        assert!(codec::decode::<Value<u32>>(&bytes, fds).is_err());
    }

    #[test]
    fn the_lock_excludes_and_times_out() {
        let v = Value::new([0u8; 3]).unwrap();
        let g = v.lock();
        assert!(v.try_lock().is_none());
        assert!(v.lock_timeout(Duration::from_millis(10)).is_none());
        drop(g);
        v.lock()[1] = 7;
        assert_eq!(v.get(), [0, 7, 0]);
        let total = Arc::new(Value::new(0u64).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let total = Arc::clone(&total);
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        *total.lock() += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(total.get(), 40_000);
    }

    #[test]
    fn raw_values_are_atomics() {
        let v = RawValue::new(5i64).unwrap();
        let w = transfer(&v).unwrap();
        w.fetch_sub(6, Ordering::SeqCst);
        assert_eq!(v.load(Ordering::SeqCst), -1);
        let a = RawArray::from_slice(&[true, false]).unwrap();
        let b = transfer(&a).unwrap();
        b[1].store(true, Ordering::SeqCst);
        assert!(a.iter().all(|x| x.load(Ordering::SeqCst)));
        assert!(RawArray::<u8>::new(0).unwrap().is_empty());
        assert!(Array::<u8>::new(0).unwrap().is_empty());
    }
}
