//! `Local<T>`: Python's `threading.local()`, one value per thread per object.
//!
//! Built on the `thread_local` crate's `ThreadLocal`, which gives each thread a slot in the
//! object. A thread's values are dropped when it exits, as Python's are: the first time a
//! thread uses a `Local`, it registers an exit hook (in a thread-local list of its own,
//! whose destructor runs the hooks) that takes its value out of its slot and drops it.
//!
//! The `thread_local` crate recycles a slot when its thread exits and a new thread arrives,
//! possibly before the old thread's exit hook has run. So each slot is tagged with its
//! owner's [`current_ident`](super::current_ident) (never reused), and the two moments that
//! can meet — a new thread claiming a slot, an exit hook emptying it — both happen under
//! the `Local`'s `exits` lock: the hook empties the slot only if its thread still owns it,
//! and a claiming thread drops whatever value a dead owner left. Outside those moments a
//! slot is touched only by its owner.

use std::cell::{Ref, RefCell, RefMut};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use thread_local::ThreadLocal;

use crate::sync::Lock;

/// One thread's slot: whose it is (0: nobody's), and its value (if set).
struct Slot<T> {
    owner: AtomicU64,
    value: RefCell<Option<T>>,
}

// SAFETY: a slot's `RefCell` is used by its owner thread, or under the `Local`'s `exits`
// lock by an exit hook (for a slot its own exiting thread owns) or by the `Local`'s owner
// through `&mut Local` / `Local` by value (`iter_mut`, `into_values`, `clear`), when no
// thread can be using the `Local`. Never by two threads at once; values cross threads only
// as `T: Send` allows.
unsafe impl<T: Send> Sync for Slot<T> {}

/// What a `Local` and its threads' exit hooks share.
struct Inner<T: Send> {
    slots: ThreadLocal<Slot<T>>,
    init: Option<Box<dyn Fn() -> T + Send + Sync>>,
    /// Held while a slot changes owner (a thread claims it, an exit hook empties it) and
    /// while the owner of the `Local` reads every slot.
    exits: Lock<()>,
}

/// Per-object thread-local values: Python's `threading.local()`.
///
/// Every thread sees its own value in each `Local`; two `Local`s never share values. A value
/// is created on first access by the `Local`'s initializer ([`Local::with_init`]) or set with
/// [`set`](Local::set); a [`Local::new`] without an initializer starts empty on every thread.
/// A thread's value is dropped when the thread exits (as Python's `threading.local` drops a
/// thread's attributes), or when the `Local` is dropped, whichever comes first.
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
/// use pytandem::thread::{self, Builder, Local};
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
/// name_here.set("main".to_string());
/// // The workers have exited: their values are gone, as in Python.
/// let values: Vec<String> = Arc::into_inner(name_here).unwrap().into_values().collect();
/// assert_eq!(values, ["main"]);
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
/// - The owner of the `Local` can reach the values of the threads still running
///   ([`iter_mut`](Local::iter_mut), [`into_values`](Local::into_values)); to collect
///   per-thread results after the threads end, have each thread return or send its own.
pub struct Local<T: Send + 'static> {
    inner: Arc<Inner<T>>,
}

impl<T: Send + 'static> Local<T> {
    /// A `Local` with no value on any thread until it is set. Python: `threading.local()`.
    pub fn new() -> Self {
        Local::from_init(None)
    }

    fn from_init(init: Option<Box<dyn Fn() -> T + Send + Sync>>) -> Self {
        Local {
            inner: Arc::new(Inner {
                slots: ThreadLocal::new(),
                init,
                exits: Lock::new(()),
            }),
        }
    }

    /// A `Local` whose value on each thread starts as `init()`, called on that thread's first
    /// access (and again after a [`take`](Local::take)). Python: a `threading.local` subclass
    /// with an `__init__`.
    ///
    /// ```
    /// use pytandem::thread::Local;
    ///
    /// let calls = Local::with_init(|| 0u32);
    /// calls.with(|n| *n += 1);
    /// calls.with(|n| *n += 1);
    /// assert_eq!(calls.get(), Some(2));
    /// let other = std::thread::scope(|s| s.spawn(|| calls.get()).join().unwrap());
    /// assert_eq!(other, Some(0)); // another thread starts from the initializer
    /// ```
    pub fn with_init(init: impl Fn() -> T + Send + Sync + 'static) -> Self {
        Local::from_init(Some(Box::new(init)))
    }

    /// This thread's slot's value, the slot claimed for this thread first if it is new to
    /// it (a value a dead owner left in it is dropped, and an exit hook is registered).
    fn slot(&self) -> RefMut<'_, Option<T>> {
        let me = super::current_ident();
        let slot = self.inner.slots.get_or(|| Slot {
            owner: AtomicU64::new(0),
            value: RefCell::new(None),
        });
        if slot.owner.load(Ordering::Relaxed) != me {
            self.claim(slot, me);
        }
        slot.value.try_borrow_mut().unwrap_or_else(|_| reentrant())
    }

    /// Makes `slot` this thread's (`me`), and arranges for its value to be dropped when this
    /// thread exits.
    #[cold]
    fn claim(&self, slot: &Slot<T>, me: u64) {
        let left = {
            let _exits = self.inner.exits.acquire();
            slot.owner.store(me, Ordering::Relaxed);
            // A dead owner's exit hook has not run yet (it will find the slot not its own).
            slot.value.try_borrow_mut().ok().and_then(|mut v| v.take())
        };
        drop(left);
        let weak = Arc::downgrade(&self.inner);
        let slot: *const Slot<T> = slot;
        on_thread_exit(Box::new(move || drop_on_exit(&weak, slot, me)));
    }

    /// This thread's value, created by the initializer if it has none and there is one.
    fn slot_initialized(&self) -> RefMut<'_, Option<T>> {
        let mut value = self.slot();
        if value.is_none() {
            if let Some(init) = &self.inner.init {
                *value = Some(init());
            }
        }
        value
    }

    /// This thread's value, created by `init` if the thread has none (the `Local`'s own
    /// initializer is not used here). The value stays lent while the [`Ref`] lives.
    ///
    /// ```
    /// use pytandem::thread::Local;
    ///
    /// let greeting = Local::new();
    /// assert_eq!(*greeting.get_or(|| "hello".to_string()), "hello");
    /// assert_eq!(*greeting.get_or(|| "ignored".to_string()), "hello");
    /// ```
    pub fn get_or(&self, init: impl FnOnce() -> T) -> Ref<'_, T> {
        {
            let mut value = self.slot();
            if value.is_none() {
                *value = Some(init());
            }
        }
        let slot = self
            .inner
            .slots
            .get()
            .expect("slot() created this thread's slot");
        let value = slot.value.try_borrow().unwrap_or_else(|_| reentrant());
        Ref::map(value, |v| v.as_ref().expect("set just above"))
    }

    /// Runs `f` on this thread's value, created by the initializer if needed.
    ///
    /// # Panics
    /// If this thread has no value and the `Local` has no initializer (Python raises
    /// `AttributeError`): [`set`](Local::set) one first, use [`try_with`](Local::try_with),
    /// or build the `Local` with [`with_init`](Local::with_init). Also on re-entrant access
    /// (see the type's docs).
    #[track_caller]
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        match self.try_with(f) {
            Some(r) => r,
            None => panic!(
                "Local::with on a thread that has no value, and the Local has no initializer: \
                 call set() first, use try_with(), or build it with Local::with_init()"
            ),
        }
    }

    /// Runs `f` on this thread's value, created by the initializer if needed; `None` if
    /// there is no value and no initializer.
    pub fn try_with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let mut value = self.slot_initialized();
        value.as_mut().map(f)
    }

    /// Sets this thread's value, returning the previous one. Python: `data.x = value`.
    pub fn set(&self, value: T) -> Option<T> {
        self.slot().replace(value)
    }

    /// Removes this thread's value and returns it. The next access on this thread runs the
    /// initializer again (if any). Python: `del data.x`.
    pub fn take(&self) -> Option<T> {
        self.slot().take()
    }

    /// Whether this thread has a value now (the initializer is not run).
    pub fn is_set(&self) -> bool {
        self.slot().is_some()
    }

    /// The value of every thread still running, mutably, in no particular order: the owner
    /// of the `Local` can inspect or adjust them. Threads that exit meanwhile wait for the
    /// iterator to be dropped before their value is.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        let exits = self.inner.exits.acquire();
        let values: Vec<*mut T> = self
            .inner
            .slots
            .iter()
            .filter(|slot| slot.owner.load(Ordering::Relaxed) != 0)
            .filter_map(|slot| {
                // SAFETY: `&mut self` keeps every thread from using this `Local`, and the
                // `exits` lock, held until the iterator is dropped, keeps exit hooks and
                // claims away: nothing else touches the slots meanwhile.
                unsafe { (*slot.value.as_ptr()).as_mut() }.map(|v| v as *mut T)
            })
            .collect();
        values.into_iter().map(move |v| {
            let _held = &exits;
            // SAFETY: as above; each pointer is to a distinct slot's value, handed out once.
            unsafe { &mut *v }
        })
    }

    /// Consumes the `Local`, returning the value of every thread still running, in no
    /// particular order.
    pub fn into_values(self) -> impl Iterator<Item = T> {
        let values: Vec<T> = {
            let _exits = self.inner.exits.acquire();
            self.inner
                .slots
                .iter()
                .filter(|slot| slot.owner.load(Ordering::Relaxed) != 0)
                .filter_map(|slot| slot.value.try_borrow_mut().ok().and_then(|mut v| v.take()))
                .collect()
        };
        values.into_iter()
    }

    /// Drops every thread's value; each thread starts afresh (from the initializer, if any).
    pub fn clear(&mut self) {
        let taken: Vec<T> = {
            let _exits = self.inner.exits.acquire();
            self.inner
                .slots
                .iter()
                .filter_map(|slot| slot.value.try_borrow_mut().ok().and_then(|mut v| v.take()))
                .collect()
        };
        drop(taken);
    }
}

/// A thread's exit hook for one `Local`: drops the value in `slot` if the `Local` is still
/// alive and the slot is still this thread's (`me`).
fn drop_on_exit<T: Send>(weak: &Weak<Inner<T>>, slot: *const Slot<T>, me: u64) {
    let Some(inner) = weak.upgrade() else {
        return; // the Local is gone, and its values with it
    };
    let value = {
        let _exits = inner.exits.acquire();
        // SAFETY: `inner` is alive, so its `ThreadLocal` is, and `ThreadLocal` never moves
        // or frees a slot before it is dropped: the pointer is valid. Under `exits`, only
        // the slot's owner or this hook touch it, and the owner is this exiting thread.
        let slot = unsafe { &*slot };
        if slot.owner.load(Ordering::Relaxed) == me {
            slot.owner.store(0, Ordering::Relaxed);
            slot.value.try_borrow_mut().ok().and_then(|mut v| v.take())
        } else {
            None
        }
    };
    drop(value);
}

/// The calling thread's exit hooks, run by the destructor of a thread-local when the thread
/// exits.
struct ExitHooks(RefCell<Vec<Box<dyn FnOnce()>>>);

impl Drop for ExitHooks {
    fn drop(&mut self) {
        for hook in self.0.take() {
            hook();
        }
    }
}

thread_local! {
    static EXIT_HOOKS: ExitHooks = const { ExitHooks(RefCell::new(Vec::new())) };
}

/// Runs `hook` when the calling thread exits. On a thread already exiting (from another
/// thread-local's destructor) the hook is dropped unrun: the value then lives until the
/// `Local` is dropped.
fn on_thread_exit(hook: Box<dyn FnOnce()>) {
    let _ = EXIT_HOOKS.try_with(|hooks| hooks.0.borrow_mut().push(hook));
}

impl<T: Send + Clone + 'static> Local<T> {
    /// A copy of this thread's value (created by the initializer if needed), or `None`.
    /// Python: reading `data.x` (where a missing attribute is `None` here).
    pub fn get(&self) -> Option<T> {
        self.slot_initialized().clone()
    }
}

impl<T: Send + 'static> Default for Local<T> {
    fn default() -> Self {
        Local::new()
    }
}

impl<T: Send + fmt::Debug + 'static> fmt::Debug for Local<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Local");
        let me = super::current_ident();
        match self.inner.slots.get() {
            Some(slot) if slot.owner.load(Ordering::Relaxed) == me => {
                match slot.value.try_borrow() {
                    Ok(value) => d.field("value", &*value),
                    Err(_) => d.field("value", &format_args!("<borrowed>")),
                }
            }
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
                })
                .join() // an explicit join waits for the thread's exit hooks
                .unwrap();
            });
        }
        assert_eq!(
            l.into_values().count(),
            0,
            "every thread's value left with it"
        );
    }

    /// Counts drops of its values.
    struct Counted(std::sync::Arc<std::sync::atomic::AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Python's `threading.local` drops a thread's attributes when the thread exits; so
    /// does `Local` (it used to keep every dead thread's value until the `Local` was
    /// dropped). A `Local` dropped first drops the values of the threads still running.
    #[test]
    fn values_are_dropped_when_their_thread_exits() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let drops = Arc::new(AtomicUsize::new(0));
        let l = Local::new();
        for _ in 0..5 {
            std::thread::scope(|s| {
                s.spawn(|| l.set(Counted(Arc::clone(&drops))))
                    .join()
                    .unwrap();
            });
        }
        // The explicit join waited for the thread to exit (the scope's own wait would not
        // wait for thread-local destructors): its exit hooks have run.
        assert_eq!(drops.load(Ordering::SeqCst), 5);
        l.set(Counted(Arc::clone(&drops)));
        assert_eq!(
            drops.load(Ordering::SeqCst),
            5,
            "the main thread's value lives on"
        );
        drop(l);
        assert_eq!(drops.load(Ordering::SeqCst), 6);
        // A thread that outlives its Local: its value goes with the Local, once.
        let l = Arc::new(Local::new());
        let (set, go) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
        std::thread::scope(|s| {
            let (theirs, drops2) = (Arc::clone(&l), Arc::clone(&drops));
            let (set, go) = (&set, &go);
            s.spawn(move || {
                theirs.set(Counted(drops2));
                drop(theirs);
                set.wait();
                go.wait(); // exits after the Local is gone
            });
            set.wait();
            drop(l); // the last reference: the Local goes
            assert_eq!(drops.load(Ordering::SeqCst), 7);
            go.wait();
        });
        assert_eq!(
            drops.load(Ordering::SeqCst),
            7,
            "dropped once, not again at exit"
        );
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
