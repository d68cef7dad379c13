//! `Local<T>`: Python's `threading.local()`, one value per thread per object.
//!
//! Built on the `thread_local` crate's `ThreadLocal`, which gives each thread a slot in the
//! object. That crate recycles a slot when its thread exits and a new thread arrives, so a
//! new thread could find a dead thread's value; each slot is therefore tagged with its
//! owner's [`current_ident`](super::current_ident) (never reused), and a slot found under a
//! different owner has its old value retired to a side list — never shown to the new thread,
//! still collected by [`Local::into_values`] and [`Local::iter_mut`].

use std::cell::{Ref, RefCell, RefMut};
use std::fmt;

use thread_local::ThreadLocal;

use crate::sync::Lock;

/// One thread's slot: whose it is, and its value (if set).
struct Slot<T> {
    owner: u64,
    value: Option<T>,
}

/// Per-object thread-local values: Python's `threading.local()`.
///
/// Every thread sees its own value in each `Local`; two `Local`s never share values. A value
/// is created on first access by the `Local`'s initializer ([`Local::with_init`]) or set with
/// [`set`](Local::set); a [`Local::new`] without an initializer starts empty on every thread.
/// Once the threads are done, the owner of the `Local` can collect every thread's value
/// ([`into_values`](Local::into_values), [`iter_mut`](Local::iter_mut)) — handy for
/// per-thread accumulators that are summed at the end.
///
/// | Python | tandem |
/// | --- | --- |
/// | `data = threading.local()` | `let data = Local::new();` |
/// | `class C(threading.local): def __init__(self): self.x = ...` | `Local::with_init(\|\| ...)` |
/// | `data.x = v` | `data.set(v)` |
/// | `data.x` (a copy) | `data.get()` → `Option<T>` (`T: Clone`) |
/// | `data.x += 1` | `data.with(\|x\| *x += 1)` |
/// | `getattr(data, "x", default)` | `data.get_or(\|\| default)` |
/// | `del data.x` | `data.take()` |
///
/// # Examples
/// The seeds' thread-local storage: each thread stores its own name and reads back its own.
/// ```
/// use tandem::thread::{self, Builder, Local};
/// use std::sync::Arc;
///
/// let name_here = Arc::new(Local::new());
/// let handles: Vec<_> = (0..3)
///     .map(|i| {
///         let local = Arc::clone(&name_here);
///         Builder::new().name(format!("worker-{i}")).spawn(move || {
///             local.set(thread::current_name().unwrap());
///             local.get().unwrap() // this thread's value, whatever the others stored
///         })
///     })
///     .collect::<Result<_, _>>()?;
/// for (i, h) in handles.into_iter().enumerate() {
///     assert_eq!(h.join().unwrap(), format!("worker-{i}"));
/// }
/// assert_eq!(name_here.get(), None); // the main thread never set one
///
/// let mut names: Vec<String> = Arc::into_inner(name_here).unwrap().into_values().collect();
/// names.sort();
/// assert_eq!(names, ["worker-0", "worker-1", "worker-2"]);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Access and panics
/// A thread's value lives in a `RefCell`: [`with`](Local::with) lends it mutably for the
/// closure's duration and [`get_or`](Local::get_or) lends it shared as a [`Ref`]. Touching the
/// same `Local` again on the same thread while such a loan is live (e.g. calling `set` inside
/// `with`) panics, as a `RefCell` does. Other threads are never affected: they have their own
/// values.
///
/// # Differences from Python
/// - One value per object rather than a namespace of attributes: use a struct for several.
/// - A value left by a thread outlives the thread (until the `Local` is dropped or the values
///   collected); Python deletes a thread's attributes when the thread ends.
pub struct Local<T: Send> {
    slots: ThreadLocal<RefCell<Slot<T>>>,
    init: Option<Box<dyn Fn() -> T + Send + Sync>>,
    /// Values of exited threads whose slots were recycled for new threads.
    retired: Lock<Vec<T>>,
}

impl<T: Send> Local<T> {
    /// A `Local` with no value on any thread until it is set. Python: `threading.local()`.
    pub fn new() -> Self {
        Local {
            slots: ThreadLocal::new(),
            init: None,
            retired: Lock::new(Vec::new()),
        }
    }

    /// A `Local` whose value on each thread starts as `init()`, called on that thread's first
    /// access (and again after a [`take`](Local::take)). Python: a `threading.local` subclass
    /// with an `__init__`.
    ///
    /// ```
    /// use tandem::thread::Local;
    ///
    /// let calls = Local::with_init(|| 0u32);
    /// calls.with(|n| *n += 1);
    /// calls.with(|n| *n += 1);
    /// assert_eq!(calls.get(), Some(2));
    /// let other = std::thread::scope(|s| s.spawn(|| calls.get()).join().unwrap());
    /// assert_eq!(other, Some(0)); // another thread starts from the initializer
    /// ```
    pub fn with_init(init: impl Fn() -> T + Send + Sync + 'static) -> Self {
        Local {
            init: Some(Box::new(init)),
            ..Local::new()
        }
    }

    /// This thread's slot, claimed for this thread: a value left by an exited thread that
    /// used the same slot is retired first.
    fn slot(&self) -> RefMut<'_, Slot<T>> {
        let me = super::current_ident();
        let cell = self.slots.get_or(|| {
            RefCell::new(Slot {
                owner: me,
                value: None,
            })
        });
        let mut slot = cell.try_borrow_mut().unwrap_or_else(|_| reentrant());
        if slot.owner != me {
            slot.owner = me;
            if let Some(old) = slot.value.take() {
                self.retired.acquire().push(old);
            }
        }
        slot
    }

    /// This thread's slot, with a value if one exists or the initializer can make one.
    fn slot_initialized(&self) -> RefMut<'_, Slot<T>> {
        let mut slot = self.slot();
        if slot.value.is_none() {
            if let Some(init) = &self.init {
                slot.value = Some(init());
            }
        }
        slot
    }

    /// This thread's value, created by `init` if the thread has none (the `Local`'s own
    /// initializer is not used here). The value stays lent while the [`Ref`] lives.
    ///
    /// ```
    /// use tandem::thread::Local;
    ///
    /// let greeting = Local::new();
    /// assert_eq!(*greeting.get_or(|| "hello".to_string()), "hello");
    /// assert_eq!(*greeting.get_or(|| "ignored".to_string()), "hello");
    /// ```
    pub fn get_or(&self, init: impl FnOnce() -> T) -> Ref<'_, T> {
        {
            let mut slot = self.slot();
            if slot.value.is_none() {
                slot.value = Some(init());
            }
        }
        let cell = self.slots.get().expect("slot() created this thread's slot");
        let slot = cell.try_borrow().unwrap_or_else(|_| reentrant());
        Ref::map(slot, |s| s.value.as_ref().expect("set just above"))
    }

    /// Runs `f` on this thread's value, created by the initializer if needed.
    ///
    /// # Panics
    /// If this thread has no value and the `Local` has no initializer (Python raises
    /// `AttributeError`): [`set`](Local::set) one first, use [`try_with`](Local::try_with),
    /// or build the `Local` with [`with_init`](Local::with_init). Also on re-entrant access
    /// (see the type's docs).
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.try_with(f).unwrap_or_else(|| {
            panic!(
                "Local::with on a thread that has no value, and the Local has no initializer: \
                 call set() first, use try_with(), or build it with Local::with_init()"
            )
        })
    }

    /// Runs `f` on this thread's value, created by the initializer if needed; `None` if
    /// there is no value and no initializer.
    pub fn try_with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let mut slot = self.slot_initialized();
        slot.value.as_mut().map(f)
    }

    /// Sets this thread's value, returning the previous one. Python: `data.x = value`.
    pub fn set(&self, value: T) -> Option<T> {
        self.slot().value.replace(value)
    }

    /// Removes this thread's value and returns it. The next access on this thread runs the
    /// initializer again (if any). Python: `del data.x`.
    pub fn take(&self) -> Option<T> {
        self.slot().value.take()
    }

    /// Whether this thread has a value now (the initializer is not run).
    pub fn is_set(&self) -> bool {
        self.slot().value.is_some()
    }

    /// Every thread's value, mutably, in no particular order: the owner of the `Local` can
    /// inspect or adjust the values all threads left.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots
            .iter_mut()
            .filter_map(|cell| cell.get_mut().value.as_mut())
            .chain(self.retired.get_mut().iter_mut())
    }

    /// Consumes the `Local`, returning every thread's value, in no particular order.
    pub fn into_values(self) -> impl Iterator<Item = T> {
        self.slots
            .into_iter()
            .filter_map(|cell| cell.into_inner().value)
            .chain(self.retired.into_inner())
    }

    /// Drops every thread's value; each thread starts afresh (from the initializer, if any).
    pub fn clear(&mut self) {
        self.slots.clear();
        self.retired.get_mut().clear();
    }
}

impl<T: Send + Clone> Local<T> {
    /// A copy of this thread's value (created by the initializer if needed), or `None`.
    /// Python: reading `data.x` (where a missing attribute is `None` here).
    pub fn get(&self) -> Option<T> {
        self.slot_initialized().value.clone()
    }
}

impl<T: Send> Default for Local<T> {
    fn default() -> Self {
        Local::new()
    }
}

impl<T: Send + fmt::Debug> fmt::Debug for Local<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Local");
        let me = super::current_ident();
        match self.slots.get().map(RefCell::try_borrow) {
            Some(Ok(slot)) if slot.owner == me => d.field("value", &slot.value),
            Some(Err(_)) => d.field("value", &format_args!("<borrowed>")),
            _ => d.field("value", &None::<T>),
        };
        d.finish_non_exhaustive()
    }
}

#[cold]
fn reentrant() -> ! {
    panic!(
        "Local accessed again on the same thread while its value is lent out (inside `with`, \
         or while a `get_or` Ref lives): finish the first access before starting another"
    )
}

#[cfg(all(test, not(tandem_loom)))]
mod tests {
    use super::*;

    #[test]
    fn set_get_take() {
        let l = Local::new();
        assert_eq!(l.get(), None);
        assert!(!l.is_set());
        assert_eq!(l.try_with(|v: &mut i32| *v), None);
        assert_eq!(l.set(3), None);
        assert_eq!(l.set(4), Some(3));
        assert_eq!(l.with(|v| std::mem::replace(v, 5)), 4);
        assert_eq!(l.get(), Some(5));
        assert_eq!(l.take(), Some(5));
        assert_eq!(l.take(), None);
    }

    #[test]
    fn initializer_runs_per_thread_and_after_take() {
        let l = Local::with_init(|| vec![1]);
        l.with(|v| v.push(2));
        assert_eq!(l.get(), Some(vec![1, 2]));
        assert_eq!(l.take(), Some(vec![1, 2]));
        assert_eq!(l.get(), Some(vec![1]));
        let other = std::thread::scope(|s| s.spawn(|| l.get()).join().unwrap());
        assert_eq!(other, Some(vec![1]));
    }

    #[test]
    fn with_without_value_panics_with_advice() {
        let l: Local<u8> = Local::new();
        let err =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l.with(|_| ()))).unwrap_err();
        assert!(crate::thread::panic_message(&*err).contains("set() first"));
    }

    #[test]
    fn reentrant_access_panics_clearly() {
        let l = Local::with_init(|| 1);
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            l.with(|_| l.set(2));
        }))
        .unwrap_err();
        assert!(crate::thread::panic_message(&*err).contains("same thread"));
    }

    #[test]
    fn recycled_slot_does_not_leak_a_dead_threads_value() {
        let l = Local::new();
        // Many short threads in sequence: the thread_local crate recycles their slot.
        for i in 0..20u32 {
            std::thread::scope(|s| {
                s.spawn(|| {
                    assert_eq!(l.get(), None, "a new thread must start empty");
                    l.set(i);
                });
            });
        }
        let mut values: Vec<u32> = l.into_values().collect();
        values.sort();
        assert_eq!(values, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn debug_shows_this_threads_value() {
        let l = Local::new();
        assert_eq!(format!("{l:?}"), "Local { value: None, .. }");
        l.set("x");
        assert_eq!(format!("{l:?}"), "Local { value: Some(\"x\"), .. }");
    }

    #[test]
    fn local_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Local<std::cell::Cell<u8>>>();
    }
}
