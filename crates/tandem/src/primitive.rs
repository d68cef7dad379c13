//! The loom facade: every file takes its atomics, spin hints and thread identity from here.
//!
//! Normally these are `std`'s; under `--cfg tandem_loom` they are loom's, so the loom models
//! beside the code explore every interleaving of the same source that ships.

#[cfg(not(tandem_loom))]
pub(crate) use std::sync::atomic;

#[cfg(tandem_loom)]
pub(crate) use loom::sync::atomic;

/// Declares a function `const` normally and plain under loom, whose atomics and cells have
/// no `const fn new`: one body, written once, instead of two `cfg`'d copies.
///
/// ```ignore
/// loom_const_fn! {
///     /// An unlocked lock.
///     pub(crate) fn new() -> Self {
///         RawLock { state: AtomicU8::new(0) }
///     }
/// }
/// ```
macro_rules! loom_const_fn {
    ($(#[$attr:meta])* $vis:vis fn $name:ident ($($args:tt)*) -> $ret:ty $body:block) => {
        $(#[$attr])*
        #[cfg(not(tandem_loom))]
        $vis const fn $name($($args)*) -> $ret $body

        $(#[$attr])*
        #[cfg(tandem_loom)]
        $vis fn $name($($args)*) -> $ret $body
    };
}
pub(crate) use loom_const_fn;

/// A hint that we are spinning; under loom a yield, so models make progress.
#[inline]
#[allow(dead_code)]
pub(crate) fn spin_loop() {
    #[cfg(not(tandem_loom))]
    std::hint::spin_loop();
    #[cfg(tandem_loom)]
    loom::thread::yield_now();
}

/// Yields the processor to another thread.
#[inline]
#[allow(dead_code)]
pub(crate) fn yield_now() {
    #[cfg(not(tandem_loom))]
    std::thread::yield_now();
    #[cfg(tandem_loom)]
    loom::thread::yield_now();
}

/// A non-zero number unique to the calling thread among every thread this process ran:
/// taken from a global counter on the thread's first call and kept in a thread-local, so a
/// new thread never gets a dead thread's number (the address of a thread-local can be
/// reused, which made `RLock` take a new thread for a dead owner: rust-lang/rust#123458).
/// As cheap as the address was on `RLock`'s re-entry fast path: one thread-local read.
/// The thread-local has no destructor, so this works during thread-local destruction too.
/// (On a 32-bit target the counter would wrap after 2^32 threads.)
#[inline]
pub(crate) fn current_thread_token() -> usize {
    use std::cell::Cell;
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
    #[cfg(not(tandem_loom))]
    thread_local!(static TOKEN: Cell<usize> = const { Cell::new(0) });
    #[cfg(tandem_loom)]
    loom::thread_local!(static TOKEN: Cell<usize> = Cell::new(0));
    TOKEN.with(|t| match t.get() {
        0 => {
            let token = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            t.set(token);
            token
        }
        token => token,
    })
}

/// `UnsafeCell` with loom's checked interface: accesses go through [`with`](UnsafeCell::with)
/// (shared) and [`with_mut`](UnsafeCell::with_mut) (exclusive), which hand a raw pointer to a
/// closure. Normally this is `std::cell::UnsafeCell` and the closures are the whole cost;
/// under `--cfg tandem_loom` it is loom's, which checks every access against the others and
/// reports one that is not ordered with a write (a data race the atomics failed to prevent).
///
/// A reference taken inside the closure may be returned from it (a guard's `Deref` does):
/// loom then checks the moment of the access, not the reference's whole life.
pub(crate) struct UnsafeCell<T: ?Sized> {
    #[cfg(not(tandem_loom))]
    inner: std::cell::UnsafeCell<T>,
    #[cfg(tandem_loom)]
    inner: loom::cell::UnsafeCell<T>,
}

impl<T> UnsafeCell<T> {
    /// A cell holding `value`.
    #[cfg(not(tandem_loom))]
    #[inline]
    pub(crate) const fn new(value: T) -> Self {
        UnsafeCell {
            inner: std::cell::UnsafeCell::new(value),
        }
    }

    /// A cell holding `value`.
    #[cfg(tandem_loom)]
    pub(crate) fn new(value: T) -> Self {
        UnsafeCell {
            inner: loom::cell::UnsafeCell::new(value),
        }
    }

    /// The value, out of the cell.
    #[inline]
    pub(crate) fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T: ?Sized> UnsafeCell<T> {
    /// Runs `f` with a pointer for reading (a shared access, checked under loom).
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        #[cfg(not(tandem_loom))]
        return f(self.inner.get());
        #[cfg(tandem_loom)]
        return self.inner.with(f);
    }

    /// Runs `f` with a pointer for writing (an exclusive access, checked under loom).
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(not(tandem_loom))]
        return f(self.inner.get());
        #[cfg(tandem_loom)]
        return self.inner.with_mut(f);
    }

    /// The value, through a unique borrow of the cell (no other access can exist).
    #[inline]
    pub(crate) fn get_mut(&mut self) -> &mut T {
        #[cfg(not(tandem_loom))]
        return self.inner.get_mut();
        // SAFETY: `&mut self` excludes every other access to the cell for the borrow's life.
        #[cfg(tandem_loom)]
        return self.inner.with_mut(|p| unsafe { &mut *p });
    }
}
