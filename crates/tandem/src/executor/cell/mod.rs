//! The completion cell under every [`Task`](super::Task): one allocation holding the task's
//! closure, then its outcome ([`Cell`]), and the untyped [`Header`] every thread reads
//! without a lock (`header.rs`: the state word, the registrations and their lock).

mod header;

use header::*;
pub(crate) use header::{Ending, Header, Outcome};

use std::mem;
use std::panic::{self, AssertUnwindSafe};

use super::error::{drop_payload, BrokenPool, TaskError, TaskPanic};
use crate::primitive::atomic::Ordering;
use crate::primitive::UnsafeCell;
use crate::wait::Deadline;

/// Runs a done-callback; a panic in it is caught (the panic hook has already reported it,
/// as Python logs a failing callback) and harms nothing else.
fn run_callback(callback: Callback, outcome: *const ()) {
    quietly(move || callback(outcome));
}

/// Runs user code whose panic must not unwind into tandem.
pub(crate) fn quietly(f: impl FnOnce()) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
        drop_payload(payload);
    }
}

/// What a cell holds: the closure until a worker or a canceller claims it, then the outcome.
enum Stage<T, E, F> {
    Pending(F),
    Running,
    Done(Outcome<T, E>),
    Taken,
}

/// A task: its header and its stage, in one allocation (`Arc<Cell>`), shared by the pool's
/// queue entry and the user's `Task`.
pub(crate) struct Cell<T, E, F> {
    header: Header,
    stage: UnsafeCell<Stage<T, E, F>>,
}

// SAFETY: the stage is touched by one thread at a time (the claimer until `DONE`, then the
// owning `Task`); `F` and the outcome move between threads, hence `Send` bounds. Shared
// reads of the outcome from several threads happen only through `&Task` and done-callbacks,
// which require `T: Sync, E: Sync` at their own entry points.
unsafe impl<T: Send, E: Send, F: Send> Sync for Cell<T, E, F> {}
// SAFETY: as above.
unsafe impl<T: Send, E: Send, F: Send> Send for Cell<T, E, F> {}

/// What the pool sees of a queued task.
pub(crate) trait Run: Send + Sync {
    /// Runs the task unless it was cancelled first; `finishing(ending)` is called after the
    /// closure returned and before the outcome is published. `false` if nothing ran.
    fn run(&self, finishing: &dyn Fn(Ending)) -> bool;
    /// Cancels the task if it has not started; whether this call cancelled it.
    fn cancel_unstarted(&self) -> bool;
    /// Fails the task with `BrokenPool` if it has not started; whether this call did.
    fn fail_unstarted(&self, broken: &BrokenPool) -> bool;
}

/// What a `Task<T, E>` sees of its cell, whatever the closure type.
pub(crate) trait CellApi<T, E>: Send + Sync {
    /// The untyped part.
    fn header(&self) -> &Header;
    /// Python's `cancel()`: `true` if the task is (now) cancelled, `false` if it started.
    fn cancel(&self) -> bool;
    /// Moves the outcome out; `None` if it was already taken.
    ///
    /// # Safety
    /// The task must be done (`DONE` observed with acquire), and the caller must be the only
    /// one accessing the outcome (the owning `Task`, through `&mut` or by value).
    unsafe fn take(&self) -> Option<Outcome<T, E>>;
    /// The outcome; `None` if it was taken.
    ///
    /// # Safety
    /// The task must be done, and nobody may take the outcome while the reference lives
    /// (the caller borrows the owning `Task`).
    unsafe fn outcome(&self) -> Option<&Outcome<T, E>>;
}

/// What `end_unstarted` found.
enum Claim {
    /// This call ended the task.
    Ended,
    /// A worker is running (or ran) it.
    Started,
    /// It was already cancelled (perhaps still being published).
    AlreadyCancelled,
}

impl<T, E, F> Cell<T, E, F>
where
    F: FnOnce() -> Result<T, E>,
{
    /// A pending task that will run `f`.
    pub(crate) fn new(f: F) -> Self {
        Cell {
            header: Header::new(),
            stage: UnsafeCell::new(Stage::Pending(f)),
        }
    }

    /// Pointer to the outcome, for callbacks.
    ///
    /// # Safety
    /// The caller owns the stage (claimed and not yet published) and has written the outcome.
    unsafe fn outcome_ptr(&self) -> *const () {
        // SAFETY: the caller owns the stage.
        match self.stage.with(|p| unsafe { &*p }) {
            Stage::Done(outcome) => outcome as *const Outcome<T, E> as *const (),
            _ => unreachable!("the outcome is written before it is published"),
        }
    }

    /// Ends a task that has not started, with `outcome` (cancelled or broken pool).
    fn end_unstarted(&self, ending: Ending, outcome: impl FnOnce() -> Outcome<T, E>) -> Claim {
        let state = &self.header.state;
        let mut s = state.load(Ordering::Acquire);
        loop {
            match s & PHASE {
                PENDING => {}
                RUNNING => return Claim::Started,
                // COMPLETING or DONE: cancelled already, or it ran (or the pool broke, which
                // is not a cancellation either).
                _ if s & CANCELLED != 0 => return Claim::AlreadyCancelled,
                _ => return Claim::Started,
            }
            let next = (s & FLAGS) | COMPLETING | ending.bits();
            match state.compare_exchange_weak(s, next, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => break,
                Err(actual) => s = actual,
            }
        }
        // SAFETY: we moved the phase out of PENDING, so we own the stage until we publish.
        let stage = self.stage.with_mut(|p| unsafe { &mut *p });
        let closure = mem::replace(stage, Stage::Done(outcome()));
        // The closure's destructor is user code: a panic in it is contained.
        quietly(move || drop(closure));
        // SAFETY: we own the stage and wrote the outcome.
        let ptr = unsafe { self.outcome_ptr() };
        self.header.publish_slow(ending, ptr);
        Claim::Ended
    }
}

impl<T, E, F> Run for Cell<T, E, F>
where
    T: Send,
    E: Send,
    F: FnOnce() -> Result<T, E> + Send,
{
    fn run(&self, finishing: &dyn Fn(Ending)) -> bool {
        let state = &self.header.state;
        let mut s = state.load(Ordering::Relaxed);
        loop {
            if s & PHASE != PENDING {
                return false;
            }
            match state.compare_exchange_weak(
                s,
                (s & !PHASE) | RUNNING,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => s = actual,
            }
        }
        // SAFETY: we moved the phase to RUNNING, so we own the stage until we publish.
        let stage = self.stage.with_mut(|p| unsafe { &mut *p });
        let Stage::Pending(f) = mem::replace(stage, Stage::Running) else {
            unreachable!("a pending cell holds its closure")
        };
        let (outcome, ending) = match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(Ok(value)) => (Ok(value), Ending::Ok),
            Ok(Err(e)) => (Err(TaskError::Failed(e)), Ending::Error),
            Err(payload) => (
                Err(TaskError::Panicked(TaskPanic::new(payload))),
                Ending::Error,
            ),
        };
        finishing(ending);
        *stage = Stage::Done(outcome);
        // SAFETY: we own the stage and wrote the outcome.
        let ptr = unsafe { self.outcome_ptr() };
        self.header.publish(ending, ptr);
        true
    }

    fn cancel_unstarted(&self) -> bool {
        matches!(
            self.end_unstarted(Ending::Cancelled, || Err(TaskError::Cancelled)),
            Claim::Ended
        )
    }

    fn fail_unstarted(&self, broken: &BrokenPool) -> bool {
        matches!(
            self.end_unstarted(Ending::Error, || Err(TaskError::BrokenPool(broken.clone()))),
            Claim::Ended
        )
    }
}

impl<T, E, F> CellApi<T, E> for Cell<T, E, F>
where
    T: Send,
    E: Send,
    F: FnOnce() -> Result<T, E> + Send,
{
    #[inline]
    fn header(&self) -> &Header {
        &self.header
    }

    fn cancel(&self) -> bool {
        match self.end_unstarted(Ending::Cancelled, || Err(TaskError::Cancelled)) {
            Claim::Ended => true,
            Claim::Started => false,
            Claim::AlreadyCancelled => {
                // Cancelled already; another canceller may still be publishing: be done
                // when we say so.
                self.header.wait_until(Deadline::NEVER);
                true
            }
        }
    }

    #[inline]
    unsafe fn take(&self) -> Option<Outcome<T, E>> {
        // SAFETY: the caller guarantees the task is done and it alone accesses the outcome.
        match mem::replace(self.stage.with_mut(|p| unsafe { &mut *p }), Stage::Taken) {
            Stage::Done(outcome) => Some(outcome),
            Stage::Taken => None,
            Stage::Pending(_) | Stage::Running => unreachable!("taken before done"),
        }
    }

    unsafe fn outcome(&self) -> Option<&Outcome<T, E>> {
        // SAFETY: the caller guarantees the task is done and nobody takes the outcome while
        // the reference lives.
        match self.stage.with(|p| unsafe { &*p }) {
            Stage::Done(outcome) => Some(outcome),
            Stage::Taken => None,
            Stage::Pending(_) | Stage::Running => unreachable!("read before done"),
        }
    }
}

/// Registers `callback` on `cell`, or runs it at once (in this thread) if the outcome is
/// already written.
#[track_caller]
pub(crate) fn add_done_callback<T, E>(
    cell: &dyn CellApi<T, E>,
    callback: impl FnOnce(&Outcome<T, E>) + Send + 'static,
) where
    T: Send + Sync,
    E: Send + Sync,
{
    let erased: Callback = Box::new(move |ptr: *const ()| {
        // SAFETY: callbacks are only ever called with a pointer to this cell's outcome
        // (whose type is `Outcome<T, E>`), while it is written and not yet taken.
        callback(unsafe { &*(ptr as *const Outcome<T, E>) })
    });
    if let Err(erased) = cell.header().register_callback(erased) {
        // SAFETY: registration failed, so the outcome is written (COMPLETING or DONE, seen
        // with acquire); the caller borrows the owning Task, so nobody takes it meanwhile.
        let outcome = unsafe { cell.outcome() }.expect("the result was already taken");
        run_callback(erased, outcome as *const Outcome<T, E> as *const ());
    }
}

/// The bytes one task's allocation costs beyond its value `T`, for a closure of type `F`:
/// the `Arc`'s two counters, the header and the stage (closure or outcome).
pub(crate) fn overhead<T, E, F>() -> usize {
    2 * mem::size_of::<usize>() + mem::size_of::<Cell<T, E, F>>() - mem::size_of::<T>()
}

#[cfg(all(test, not(tandem_loom)))]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::time::Duration;

    fn cell<T: Send, F: FnOnce() -> T + Send>(
        f: F,
    ) -> Arc<Cell<T, Infallible, impl FnOnce() -> Result<T, Infallible> + Send>> {
        Arc::new(Cell::new(move || Ok(f())))
    }

    #[test]
    fn run_then_take() {
        let c = cell(|| 41 + 1);
        assert!(!c.header.is_done());
        assert!(c.run(&|e| assert_eq!(e, Ending::Ok)));
        assert!(c.header.is_done());
        assert_eq!(c.header.ending(), Some(Ending::Ok));
        assert!(!c.run(&|_| {}), "a task runs once");
        assert!(!c.cancel(), "a finished task cannot be cancelled");
        // SAFETY: done, and this test is the only user.
        assert_eq!(unsafe { c.take() }, Some(Ok(42)));
        // SAFETY: as above.
        assert_eq!(unsafe { c.take() }, None);
    }

    #[test]
    fn panics_become_errors() {
        let c = cell(|| -> u8 { panic!("kaput") });
        assert!(c.run(&|e| assert_eq!(e, Ending::Error)));
        // SAFETY: done; sole user.
        let outcome = unsafe { c.take() };
        assert_eq!(outcome, Some(Err(TaskError::Panicked("kaput".into()))));
    }

    #[test]
    fn cancel_before_run() {
        let c = cell(|| 1);
        assert!(c.cancel());
        assert!(c.cancel(), "cancelling twice still says cancelled");
        assert!(c.header.is_cancelled());
        assert!(!c.run(&|_| panic!("must not run")));
        // SAFETY: done; sole user.
        assert_eq!(unsafe { c.take() }, Some(Err(TaskError::Cancelled)));
    }

    #[test]
    fn broken_pool_fails_pending_task() {
        let c = cell(|| 1);
        assert!(c.fail_unstarted(&BrokenPool::new("init")));
        assert!(!c.cancel(), "a failed task is not cancelled");
        assert_eq!(c.header.ending(), Some(Ending::Error));
        // SAFETY: done; sole user.
        let outcome = unsafe { c.take() };
        assert!(matches!(outcome, Some(Err(TaskError::BrokenPool(_)))));
    }

    #[test]
    fn callbacks_run_once_before_and_after_completion() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = cell(|| 7);
        let k = Arc::clone(&calls);
        add_done_callback(&*c, move |o| {
            assert_eq!(o, &Ok(7));
            k.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        c.run(&|_| {});
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let k = Arc::clone(&calls);
        add_done_callback(&*c, move |_| {
            k.fetch_add(10, Ordering::SeqCst);
        });
        assert_eq!(calls.load(Ordering::SeqCst), 11, "runs at once when done");
    }

    #[test]
    fn panicking_callback_harms_nothing() {
        let c = cell(|| 7);
        add_done_callback(&*c, |_| panic!("bad callback"));
        let ran = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&ran);
        add_done_callback(&*c, move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        });
        assert!(c.run(&|_| {}));
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert!(c.header.is_done());
    }

    #[test]
    fn wait_until_times_out_then_sees_completion() {
        let c = cell(|| 3);
        assert!(!c.header.wait_until(Deadline::after(Duration::ZERO)));
        assert!(!c
            .header
            .wait_until(Deadline::after(Duration::from_millis(5))));
        let c2 = Arc::clone(&c);
        let t = std::thread::spawn(move || c2.header.wait_until(Deadline::NEVER));
        c.run(&|_| {});
        assert!(t.join().unwrap());
    }

    #[test]
    fn overhead_is_at_most_64_bytes() {
        fn of<T, F: FnOnce() -> Result<T, Infallible>>(_: &F) -> usize {
            overhead::<T, Infallible, F>()
        }
        let small = of(&|| Ok(1u64));
        assert!(small <= 64, "overhead {small} bytes");
        let big = of(&|| Ok([0u8; 1024]));
        assert!(big <= 64, "overhead {big} bytes");
        let captured = 7u64;
        let capturing = of(&move || Ok(captured * 2));
        assert!(capturing <= 64, "overhead {capturing} bytes");
        assert_eq!(mem::size_of::<Header>(), 16);
    }
}

#[cfg(all(test, tandem_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use std::convert::Infallible;
    use std::sync::Arc;

    type TestCell = Cell<usize, Infallible, Box<dyn FnOnce() -> Result<usize, Infallible> + Send>>;

    fn cell(ran: Arc<AtomicUsize>) -> Arc<TestCell> {
        Arc::new(Cell::new(Box::new(move || {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok(5)
        })))
    }

    /// A worker runs while the owner cancels: exactly one wins; the outcome matches; the
    /// closure ran iff cancel failed.
    #[test]
    fn cancel_races_run() {
        loom::model(|| {
            let ran = Arc::new(AtomicUsize::new(0));
            let c = cell(Arc::clone(&ran));
            let c2 = Arc::clone(&c);
            let worker = loom::thread::spawn(move || c2.run(&|_| {}));
            let cancelled = c.cancel();
            let did_run = worker.join().unwrap();
            assert_ne!(cancelled, did_run, "exactly one of run / cancel wins");
            assert_eq!(ran.load(Ordering::SeqCst), usize::from(did_run));
            assert!(c.header.wait_until(Deadline::NEVER));
            assert_eq!(c.header.is_cancelled(), cancelled);
            // SAFETY: done; the worker is joined, so this thread is the only user.
            let outcome = unsafe { c.take() }.unwrap();
            if cancelled {
                assert_eq!(outcome, Err(TaskError::Cancelled));
            } else {
                assert_eq!(outcome, Ok(5));
            }
        });
    }

    /// The owner blocks for the result while a worker completes it: no lost wake-up (loom
    /// reports a deadlock if the parked owner is never woken).
    #[test]
    fn waiter_parks_against_completion() {
        loom::model(|| {
            let ran = Arc::new(AtomicUsize::new(0));
            let c = cell(ran);
            let c2 = Arc::clone(&c);
            let worker = loom::thread::spawn(move || {
                c2.run(&|_| {});
            });
            assert!(c.header.wait_until(Deadline::NEVER));
            // SAFETY: done (acquire), and the owner alone takes it.
            assert_eq!(unsafe { c.take() }, Some(Ok(5)));
            worker.join().unwrap();
        });
    }

    /// A callback registered while the task completes runs exactly once, whoever runs it,
    /// and always sees the outcome.
    #[test]
    fn callback_registration_races_completion() {
        loom::model(|| {
            let ran = Arc::new(AtomicUsize::new(0));
            let c = cell(ran);
            let c2 = Arc::clone(&c);
            let worker = loom::thread::spawn(move || {
                c2.run(&|_| {});
            });
            let calls = Arc::new(AtomicUsize::new(0));
            let k = Arc::clone(&calls);
            add_done_callback(&*c, move |o| {
                assert_eq!(o, &Ok(5));
                k.fetch_add(1, Ordering::SeqCst);
            });
            worker.join().unwrap();
            assert!(c.header.is_done());
            assert_eq!(calls.load(Ordering::SeqCst), 1);
        });
    }

    /// Two threads register callbacks at once, so one waits for the registrations lock
    /// (spinning, then parking); then the task runs: both callbacks run, once each.
    #[test]
    fn contended_registrations() {
        loom::model(|| {
            let ran = Arc::new(AtomicUsize::new(0));
            let c = cell(ran);
            let calls = Arc::new(AtomicUsize::new(0));
            let (c2, k2) = (Arc::clone(&c), Arc::clone(&calls));
            let other = loom::thread::spawn(move || {
                add_done_callback(&*c2, move |_| {
                    k2.fetch_add(1, Ordering::SeqCst);
                });
            });
            let k = Arc::clone(&calls);
            add_done_callback(&*c, move |_| {
                k.fetch_add(10, Ordering::SeqCst);
            });
            other.join().unwrap();
            assert_eq!(calls.load(Ordering::SeqCst), 0, "not before completion");
            assert!(c.run(&|_| {}));
            assert_eq!(calls.load(Ordering::SeqCst), 11);
            assert_eq!(c.header.state.load(Ordering::SeqCst) & LOCK_BITS, 0);
        });
    }

    /// Two cancellers race: both report cancelled, and the task is done when each returns.
    #[test]
    fn two_cancellers() {
        loom::model(|| {
            let ran = Arc::new(AtomicUsize::new(0));
            let c = cell(Arc::clone(&ran));
            let c2 = Arc::clone(&c);
            let other = loom::thread::spawn(move || {
                let r = c2.cancel();
                assert!(c2.header.is_done());
                r
            });
            assert!(c.cancel());
            assert!(c.header.is_done());
            assert!(other.join().unwrap());
            assert_eq!(ran.load(Ordering::SeqCst), 0);
        });
    }
}
