//! `scope`: scoped threads that may borrow from the caller's stack, with tandem's names.
//!
//! `std::thread::scope` underneath (its joining and panic rules, unchanged); each thread is
//! named, counted and identified by the same code as [`super::Builder::spawn`]
//! (`Builder::into_std`, `Counted`, `enter` in `spawn.rs`).

use std::fmt;
use std::io;

use super::spawn::{enter, Counted};
use super::{Builder, ThreadPanic};

/// Runs `f` with a [`Scope`] in which threads may borrow anything that outlives the call;
/// returns what `f` returns once every thread spawned in it has finished. Python: start N
/// `threading.Thread`s, then `join()` each of them — without the joins.
///
/// Every thread is named (given with [`Scope::builder`], or Python's default `Thread-N`),
/// and the name is what [`current_name`](super::current_name), panic messages and the
/// diagnostics report; the threads count in [`active_count`](super::active_count) while
/// they run.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use pytandem::thread;
///
/// let total = AtomicU32::new(0);
/// let names = thread::scope(|s| {
///     for i in 1..=3 {
///         let total = &total;
///         s.builder().name(format!("w-{i}")).spawn(move || {
///             total.fetch_add(i, Ordering::Relaxed);
///         });
///     }
///     let named = s.builder().name("reporter").spawn(thread::current_name);
///     named.join().unwrap()
/// });
/// assert_eq!(total.into_inner(), 6); // every thread was joined at the end of the scope
/// assert_eq!(names.as_deref(), Some("reporter"));
/// ```
///
/// # Panics
/// As `std::thread::scope`: if `f` panics, or a thread panicked and its handle was not
/// joined, once every thread has finished. A thread's panic read through
/// [`ScopedJoinHandle::join`] is the caller's to handle (a [`ThreadPanic`]) and does not
/// make the scope panic.
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    std::thread::scope(|s| f(Scope::wrap(s)))
}

/// A scope to spawn named threads in, made by [`scope`]: `std::thread::Scope` with
/// tandem's [`spawn`](Self::spawn) and [`builder`](Self::builder).
#[repr(transparent)]
pub struct Scope<'scope, 'env: 'scope> {
    inner: std::thread::Scope<'scope, 'env>,
}

impl<'scope, 'env> Scope<'scope, 'env> {
    fn wrap<'a>(inner: &'a std::thread::Scope<'scope, 'env>) -> &'a Self {
        // SAFETY: `Scope` is a `repr(transparent)` wrapper of `std::thread::Scope` with the
        // same lifetimes, so the two references have the same layout and validity.
        unsafe { &*(inner as *const std::thread::Scope<'scope, 'env> as *const Self) }
    }

    /// Spawns a thread with Python's default name (`Thread-N`) running `f`, which may
    /// borrow from outside the scope; it is joined at the end of the scope at the latest.
    /// Python: `threading.Thread(target=f).start()`.
    ///
    /// # Panics
    /// If the operating system cannot create a thread (as `std::thread::Scope::spawn`);
    /// [`ScopedBuilder::try_spawn`] returns the error instead.
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.builder().spawn(f)
    }

    /// Configures a thread before spawning it in this scope: its name (Python's `name=`)
    /// and stack size, as [`Builder`].
    pub fn builder(&'scope self) -> ScopedBuilder<'scope, 'env> {
        ScopedBuilder {
            scope: self,
            builder: Builder::new(),
        }
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope").finish_non_exhaustive()
    }
}

/// A thread's configuration in a [`Scope`], made by [`Scope::builder`].
#[must_use = "a builder does nothing until `spawn` is called"]
pub struct ScopedBuilder<'scope, 'env: 'scope> {
    scope: &'scope Scope<'scope, 'env>,
    builder: Builder,
}

impl<'scope, 'env> ScopedBuilder<'scope, 'env> {
    /// Names the thread; without a name it gets Python's default `Thread-N`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.builder = self.builder.name(name);
        self
    }

    /// Sets the thread's stack size in bytes (the platform may round it up).
    pub fn stack_size(mut self, size: usize) -> Self {
        self.builder = self.builder.stack_size(size);
        self
    }

    /// Spawns the thread, running `f`.
    ///
    /// # Panics
    /// If the name contains a NUL byte or the operating system cannot create a thread;
    /// [`try_spawn`](Self::try_spawn) returns those errors instead.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        match self.try_spawn(f) {
            Ok(handle) => handle,
            Err(e) => panic!("pytandem::thread::scope could not spawn a thread: {e}"),
        }
    }

    /// Spawns the thread, running `f`.
    ///
    /// # Errors
    /// An [`io::ErrorKind::InvalidInput`] error if the name contains a NUL byte, or the
    /// operating system's error if it cannot create the thread.
    pub fn try_spawn<F, T>(self, f: F) -> io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let (name, builder) = self.builder.into_std()?;
        let ident = super::new_ident();
        let counted = Counted::new();
        let inner = builder.spawn_scoped(&self.scope.inner, move || {
            let _counted = counted; // un-counted when `f` returns or unwinds
            enter(ident);
            f()
        })?;
        Ok(ScopedJoinHandle { inner, name, ident })
    }
}

impl fmt::Debug for ScopedBuilder<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedBuilder")
            .field("builder", &self.builder)
            .finish_non_exhaustive()
    }
}

/// A handle to a thread spawned in a [`Scope`]; joining it is optional, since the scope
/// joins every thread at its end.
pub struct ScopedJoinHandle<'scope, T> {
    inner: std::thread::ScopedJoinHandle<'scope, T>,
    name: String,
    ident: u64,
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the thread and returns what its function returned, or its panic (with
    /// the thread's name and message). Python: `t.join()`.
    pub fn join(self) -> Result<T, ThreadPanic> {
        let name = self.name;
        self.inner
            .join()
            .map_err(|payload| ThreadPanic::new(name, payload))
    }

    /// The thread's name. Python: `t.name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The thread's identifier, as [`current_ident`](super::current_ident) reports it on
    /// that thread. Python: `t.ident`.
    pub fn ident(&self) -> u64 {
        self.ident
    }

    /// Whether the thread's function has returned (or panicked). Python: `not t.is_alive()`.
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }
}

impl<T> fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedJoinHandle")
            .field("name", &self.name)
            .field("ident", &self.ident)
            .finish_non_exhaustive()
    }
}
