//! `Value` and `Array` (Python's `multiprocessing.Value`, `Array`) with a lock, and
//! `RawValue` and `RawArray` (Python's `RawValue`, `RawArray`) with atomic access: plain data
//! in a shared memory segment that every process holding the handle sees.

use super::robust::{RobustLock, Taken};
use super::shared::{shared_handle, Shared, SharedState};
use super::shm::Kind;
use crate::wait::Deadline;
use bytemuck::Pod;
use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::sync::atomic;
use std::time::Duration;

/// The state of a `Value`: its lock.
#[repr(C)]
pub(crate) struct ValueState(RobustLock);

/// The state of an `Array`: its lock.
#[repr(C)]
pub(crate) struct ArrayState(RobustLock);

// SAFETY: a robust lock is atomics only, unlocked when zeroed.
unsafe impl SharedState for ValueState {
    const KIND: Kind = Kind::Value;
    fn recover(&self, pid: u32) {
        self.0.recover(pid);
    }
}

// SAFETY: as for `ValueState`.
unsafe impl SharedState for ArrayState {
    const KIND: Kind = Kind::Array;
    fn recover(&self, pid: u32) {
        self.0.recover(pid);
    }
}

/// A lock word and `len` `T`s in one segment, as `Value` and `Array` share them.
trait Locked<T> {
    fn shared(&self) -> (&RobustLock, *mut T, usize);
}

impl<T: Pod> Locked<T> for Shared<ValueState, T> {
    fn shared(&self) -> (&RobustLock, *mut T, usize) {
        (&self.state().0, self.data_ptr(), self.len())
    }
}

impl<T: Pod> Locked<T> for Shared<ArrayState, T> {
    fn shared(&self) -> (&RobustLock, *mut T, usize) {
        (&self.state().0, self.data_ptr(), self.len())
    }
}

/// Holds a shared lock; releases it on drop. Wrapped by [`ValueGuard`] and [`ArrayGuard`].
struct RawGuard<'a, T> {
    lock: &'a RobustLock,
    data: *mut T,
    len: usize,
    owner_died: bool,
}

impl<'a, T> RawGuard<'a, T> {
    fn take(owner: &'a impl Locked<T>, deadline: Option<Deadline>) -> Option<Self> {
        let (lock, data, len) = owner.shared();
        let taken = match deadline {
            None => lock.try_lock()?,
            Some(d) => lock.lock(d)?,
        };
        Some(RawGuard {
            lock,
            data,
            len,
            owner_died: taken == Taken::OwnerDied,
        })
    }

    fn slice(&self) -> &[T] {
        // SAFETY: the lock is held, so no other thread or process touches the data; the
        // slice is in bounds, aligned and initialized (zero or written at creation).
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }

    fn slice_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `slice`; `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.data, self.len) }
    }
}

impl<T> Drop for RawGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.unlock();
    }
}

/// Holds the lock of a [`Value`]; dereferences to the value; releases the lock on drop.
pub struct ValueGuard<'a, T>(RawGuard<'a, T>);

impl<T> ValueGuard<'_, T> {
    /// Whether the lock's previous holder died holding it (its process was killed inside
    /// the critical section): the value may be half-updated; check or repair it.
    pub fn owner_died(&self) -> bool {
        self.0.owner_died
    }
}

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

impl<T> ArrayGuard<'_, T> {
    /// Whether the lock's previous holder died holding it: the elements may be
    /// half-updated; check or repair them.
    pub fn owner_died(&self) -> bool {
        self.0.owner_died
    }
}

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
/// A process killed while holding the lock does not leave it held: the next taker gets it,
/// and [`ValueGuard::owner_died`] tells it the value may be half-updated (Python's lock would
/// stay held forever). A tandem child's death is noticed at once; another process's within
/// a few milliseconds.
///
/// # Examples
/// The race the seeds teach, across processes, fixed with the value's lock:
/// ```
/// pytandem::process::init(); // first in main: a child runs its function here
/// use pytandem::process::{Process, Value};
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
pub struct Value<T: Pod> {
    inner: Shared<ValueState, T>,
}

impl<T: Pod> Value<T> {
    /// A new shared value (Python's `Value(typecode, value)`).
    ///
    /// # Errors
    /// The operating system could not create the shared segment (out of memory or file
    /// descriptors).
    pub fn new(value: T) -> io::Result<Self> {
        Ok(Value {
            inner: Shared::create(|_| {}, std::iter::once(value))?,
        })
    }

    /// Takes the lock; the guard dereferences to the value (Python's `with v.get_lock():`).
    #[doc(alias = "get_lock")]
    pub fn lock(&self) -> ValueGuard<'_, T> {
        ValueGuard(RawGuard::take(&self.inner, Some(Deadline::NEVER)).expect("no deadline"))
    }

    /// Takes the lock if it is free.
    pub fn try_lock(&self) -> Option<ValueGuard<'_, T>> {
        RawGuard::take(&self.inner, None).map(ValueGuard)
    }

    /// Takes the lock, waiting at most `timeout` (`Duration::MAX` waits forever).
    pub fn lock_timeout(&self, timeout: Duration) -> Option<ValueGuard<'_, T>> {
        RawGuard::take(&self.inner, Some(Deadline::after(timeout))).map(ValueGuard)
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
/// use pytandem::process::Array;
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
pub struct Array<T: Pod> {
    inner: Shared<ArrayState, T>,
}

impl<T: Pod> Array<T> {
    /// `len` zeros (Python's `Array(typecode, size)`).
    pub fn new(len: usize) -> io::Result<Self> {
        Ok(Array {
            inner: Shared::create(|_| {}, (0..len).map(|_| T::zeroed()))?,
        })
    }

    /// A copy of `values` (Python's `Array(typecode, initializer)`).
    pub fn from_slice(values: &[T]) -> io::Result<Self> {
        Ok(Array {
            inner: Shared::create(|_| {}, values.iter().copied())?,
        })
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.inner.len() == 0
    }

    /// Takes the lock; the guard dereferences to the elements.
    #[doc(alias = "get_lock")]
    pub fn lock(&self) -> ArrayGuard<'_, T> {
        ArrayGuard(RawGuard::take(&self.inner, Some(Deadline::NEVER)).expect("no deadline"))
    }

    /// Takes the lock if it is free.
    pub fn try_lock(&self) -> Option<ArrayGuard<'_, T>> {
        RawGuard::take(&self.inner, None).map(ArrayGuard)
    }

    /// Takes the lock, waiting at most `timeout` (`Duration::MAX` waits forever).
    pub fn lock_timeout(&self, timeout: Duration) -> Option<ArrayGuard<'_, T>> {
        RawGuard::take(&self.inner, Some(Deadline::after(timeout))).map(ArrayGuard)
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
pub trait AtomicRepr: Copy + Send + Sync + 'static + sealed::Sealed {
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

/// The (empty) state of a `RawValue`.
pub(crate) struct RawValueState;
/// The (empty) state of a `RawArray`.
pub(crate) struct RawArrayState;

// SAFETY: no fields.
unsafe impl SharedState for RawValueState {
    const KIND: Kind = Kind::RawValue;
}

// SAFETY: no fields.
unsafe impl SharedState for RawArrayState {
    const KIND: Kind = Kind::RawArray;
}

/// The elements of a raw object, as atomics.
fn atomics<S: SharedState, T: AtomicRepr>(shared: &Shared<S, T>) -> &[T::Atomic] {
    const { assert!(std::mem::size_of::<T>() == std::mem::size_of::<T::Atomic>()) };
    // SAFETY: `len` elements of `T` live at `data_ptr`, aligned to `T` — and an integer and
    // its atomic twin have the same size and (for these types, on Linux targets) alignment;
    // the memory is shared with other processes, which is what atomics are for.
    unsafe { std::slice::from_raw_parts(shared.data_ptr().cast::<T::Atomic>(), shared.len()) }
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
/// use pytandem::process::RawValue;
///
/// let hits = RawValue::new(0u64)?;
/// hits.fetch_add(5, Ordering::Relaxed);
/// assert_eq!(hits.load(Ordering::Relaxed), 5);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct RawValue<T: AtomicRepr> {
    inner: Shared<RawValueState, T>,
}

impl<T: AtomicRepr> RawValue<T> {
    /// A new shared atomic holding `value`.
    pub fn new(value: T) -> io::Result<Self> {
        Ok(RawValue {
            inner: Shared::create(|_| {}, std::iter::once(value))?,
        })
    }
}

impl<T: AtomicRepr> Deref for RawValue<T> {
    type Target = T::Atomic;
    fn deref(&self) -> &T::Atomic {
        &atomics(&self.inner)[0]
    }
}

/// Python's `multiprocessing.RawArray`: integers in shared memory without a lock, each
/// accessed atomically. Dereferences to a slice of atomics.
///
/// # Examples
/// ```
/// use std::sync::atomic::Ordering;
/// use pytandem::process::RawArray;
///
/// let slots = RawArray::<u32>::new(4)?;
/// slots[2].store(9, Ordering::Relaxed);
/// assert_eq!(slots.iter().map(|s| s.load(Ordering::Relaxed)).sum::<u32>(), 9);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct RawArray<T: AtomicRepr> {
    inner: Shared<RawArrayState, T>,
}

impl<T: AtomicRepr + Default> RawArray<T> {
    /// `len` zeros.
    pub fn new(len: usize) -> io::Result<Self> {
        Ok(RawArray {
            inner: Shared::create(|_| {}, (0..len).map(|_| T::default()))?,
        })
    }
}

impl<T: AtomicRepr> RawArray<T> {
    /// A copy of `values`.
    pub fn from_slice(values: &[T]) -> io::Result<Self> {
        Ok(RawArray {
            inner: Shared::create(|_| {}, values.iter().copied())?,
        })
    }
}

impl<T: AtomicRepr> Deref for RawArray<T> {
    type Target = [T::Atomic];
    fn deref(&self) -> &[T::Atomic] {
        atomics(&self.inner)
    }
}

shared_handle!(Value<T: Pod>);
shared_handle!(Array<T: Pod>);
shared_handle!(RawValue<T: AtomicRepr>);
shared_handle!(RawArray<T: AtomicRepr>);

macro_rules! debug_handle {
    ($($name:ident<$t:ident: $bound:path>),*) => {$(
        impl<$t: $bound> fmt::Debug for $name<$t> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("type", &std::any::type_name::<$t>())
                    .field("len", &self.inner.len())
                    .finish_non_exhaustive()
            }
        }
    )*};
}

debug_handle!(Value<T: Pod>, Array<T: Pod>, RawValue<T: AtomicRepr>, RawArray<T: AtomicRepr>);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::codec;
    use serde::Serialize;
    use std::os::fd::{BorrowedFd, OwnedFd};
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

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
