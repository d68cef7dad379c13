//! The queue engine, written once: blocking, bounding, timeouts, `task_done`/`join`
//! accounting and shutdown. FIFO, LIFO, priority and simple queues differ only in their
//! [`Policy`] (the buffer and its order).
//!
//! # State
//! The buffer lives inside a [`Lock`] with two counts of promises (below); every change
//! happens in a short critical section. Beside it, atomics read without the lock:
//!
//! | field        | meaning                                   | written                        |
//! |--------------|-------------------------------------------|--------------------------------|
//! | `len`        | items in the buffer (`len()`)             | under the lock (a plain store) |
//! | `avail`      | items not promised to a woken getter      | under the lock                 |
//! | `occupied`   | items + free slots promised to putters    | under the lock                 |
//! | `shut`       | shut down (never cleared)                 | under the lock                 |
//! | `unfinished` | items put and not yet `task_done`         | under the lock                 |
//! | `joiners`    | a joiner may be parked                    | under the lock                 |
//! | `getters`    | getters registered to wait                | atomic RMW (see below)         |
//! | `putters`    | putters registered to wait                | atomic RMW (see below)         |
//! | `parked_*`   | of those, the ones parked right now       | under the wait layer's lock    |
//!
//! Invariants (under the lock): `avail = len - promised_items >= 0` and
//! `occupied = len + promised_slots <= maxsize`.
//!
//! # Sleeping and waking
//! A getter that finds no available item spins briefly on `avail` (without the lock), then,
//! under the lock, adds itself to `getters` and parks on the address of `getters` (the "not
//! empty" key), validating — atomically with joining the wait queue — that `avail` is still 0
//! and the queue is not shut down. Because registration and a putter's check of `getters`
//! are both under the lock, either the putter sees the getter registered or the getter saw
//! the item; because validation re-reads `avail` inside the wait layer's queue lock, a wake-up
//! cannot slip between registering and parking. Putters waiting for room are the mirror
//! image (`putters`, `occupied`, the "not full" key). Joiners set `joiners` under the lock and
//! park on the address of `unfinished` until it is 0.
//!
//! `getters`/`putters` count threads registered and not yet gone: a thread leaves the count
//! exactly once — taken out by the waker that unparks it (in the wake-up callback), by its
//! own failed validation, or by its own time-out, all three under the wait layer's queue
//! lock. (`parked_getters`/`parked_putters` count the subset already in the wait queue,
//! counted in by a successful validation; they are what `waiting_getters()` reports, so a
//! test that sees a waiter knows a put will find it parked.) So put and get call the wait
//! layer only when somebody actually waits: the
//! uncontended path is a lock, the buffer operation and an unlock, no system call. An idle
//! consumer is parked and costs no CPU.
//!
//! # Hand-off (fairness)
//! A put that finds getters registered *promises* its item to the longest-waiting one: under
//! the lock it counts the item in `promised_items` (so other getters no longer see it as
//! available), and after unlocking it unparks that getter with [`TOKEN_PROMISE`]. The woken
//! getter takes the promise back under the lock and pops — it cannot be overtaken by a thread
//! that arrived later. If nobody was parked yet (the registered getter is still on its way to
//! park), the putter revokes the promise under the lock and wakes a getter normally.
//! A get that frees slots while putters wait promises each slot to the longest-waiting putter
//! the same way (`promised_slots`). So waiters are served in arrival order, one item (or slot)
//! each, and none starves under steady contention.
//!
//! A promised getter always takes its item, even if its deadline passed meanwhile (the
//! promise was made in time). An immediate shutdown drains promised items too and cancels
//! the promises; a promised getter then finds the queue shut down and drained.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};

use crate::diagnostics::{self, PrimitiveKind};
use crate::primitive::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::{Lock, LockGuard};
use crate::wait::{self, Deadline, ParkResult, SpinWait, UnparkToken};

pub(crate) use super::common::{checked_bound, python_maxsize, GetFail, PutFail, Wait};
use super::error::TaskDoneError;
use super::waiters::Waiters;

/// A buffer policy: where `push` puts an item and which item `pop` takes.
pub(crate) trait Policy {
    /// The queued item.
    type Item;
    /// Whether puts count unfinished tasks (`task_done`/`join`); `SimpleQueue` does not.
    const TRACKS_TASKS: bool = true;
    /// Whether `push`/`pop` run user code that may panic (a priority queue's `Ord`). Such a
    /// policy must leave the buffer whole when they do: a panicking `pop` takes nothing, a
    /// panicking `push` either keeps its item or drops it; the engine then brings its counts
    /// in line with the buffer ([`Core::on_buffer`]).
    const MAY_PANIC: bool = false;

    /// Adds an item.
    fn push(&mut self, item: Self::Item);
    /// Takes the next item in this policy's order.
    fn pop(&mut self) -> Option<Self::Item>;
    /// Items held.
    fn len(&self) -> usize;
    /// Frees the buffer's spare capacity.
    fn shrink_to_fit(&mut self);
    /// Moves the first `n` items of `items` in, in order.
    fn push_from(&mut self, items: &mut VecDeque<Self::Item>, n: usize) {
        for item in items.drain(..n) {
            self.push(item);
        }
    }
    /// Moves up to `n` items out, in `pop` order.
    fn pop_into(&mut self, out: &mut Vec<Self::Item>, n: usize) {
        for _ in 0..n {
            match self.pop() {
                Some(item) => out.push(item),
                None => break,
            }
        }
    }
}

/// Unpark token: woken to look again (an item or slot may be there, or a shutdown).
const TOKEN_NORMAL: UnparkToken = wait::DEFAULT_UNPARK_TOKEN;
/// Unpark token: woken with a promise — an item (getters) or a slot (putters) is reserved
/// for this thread.
const TOKEN_PROMISE: UnparkToken = UnparkToken(1);

/// What the lock guards: the buffer and the promises made to woken waiters.
pub(crate) struct Inner<P> {
    buf: P,
    /// Items reserved for getters that were woken with a promise and have not taken them.
    promised_items: usize,
    /// Free slots reserved for putters woken with a promise.
    promised_slots: usize,
}

/// Which waiters: getters (promised items) or putters (promised slots).
#[derive(Clone, Copy)]
enum Side {
    /// Getters, and the items promised to them.
    Items,
    /// Putters, and the slots promised to them.
    Slots,
}

/// The engine shared by every queue type. See the module docs for the protocol.
///
/// Fields in the order put and get touch them (`repr(C)` keeps it): the lock and buffer,
/// the lock-free views they store, then what they read; the slow path's state last.
///
/// `avail` and `occupied` are stored as computed values rather than derived by readers from
/// `len` and separate promise counts: a reader combining two atomics written at different
/// moments could under-count available items and park with no wake-up to come (the loom
/// models find that interleaving).
#[repr(C)]
pub(crate) struct Core<P> {
    inner: Lock<Inner<P>>,
    len: AtomicUsize,
    avail: AtomicUsize,
    occupied: AtomicUsize,
    /// Shut down (gracefully or immediately); never cleared.
    shut: AtomicBool,
    /// A joiner may be parked on `unfinished`.
    joiners: AtomicBool,
    /// Getters waiting for an item ("not empty").
    getters: Waiters,
    /// Putters waiting for room ("not full").
    putters: Waiters,
    /// Items put and not yet `task_done`; its address is the "all tasks done" key.
    unfinished: AtomicUsize,
    /// `usize::MAX` for an unbounded queue.
    maxsize: usize,
    /// Diagnostics: name and wait statistics (zero-sized without the feature).
    tag: diagnostics::Tag,
}

type Guard<'a, P> = LockGuard<'a, Inner<P>>;

impl<P: Policy> Core<P> {
    /// Names the queue in diagnostics reports (nothing without the feature).
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub(crate) fn set_name(&self, name: String) {
        self.tag
            .set_name(PrimitiveKind::Queue, wait::key_of(self), name);
    }

    /// The queue's diagnostics name (always `None` without the feature).
    pub(crate) fn name(&self) -> Option<String> {
        self.tag.name()
    }

    /// Statistics of the waits on this queue (puts, gets and joins that had to wait).
    #[cfg(feature = "diagnostics")]
    pub(crate) fn stats(&self) -> crate::diagnostics::Stats {
        self.tag.stats()
    }

    /// A queue over `policy` holding at most `maxsize` items (`usize::MAX`: unbounded).
    pub(crate) fn new(policy: P, maxsize: usize) -> Self {
        debug_assert!(maxsize > 0);
        Core {
            inner: Lock::new(Inner {
                buf: policy,
                promised_items: 0,
                promised_slots: 0,
            }),
            len: AtomicUsize::new(0),
            avail: AtomicUsize::new(0),
            occupied: AtomicUsize::new(0),
            shut: AtomicBool::new(false),
            joiners: AtomicBool::new(false),
            getters: Waiters::new(),
            putters: Waiters::new(),
            unfinished: AtomicUsize::new(0),
            maxsize,
            tag: diagnostics::Tag::new(),
        }
    }

    /// The bound, `None` when unbounded.
    #[inline]
    pub(crate) fn maxsize(&self) -> Option<usize> {
        (self.maxsize != usize::MAX).then_some(self.maxsize)
    }

    /// Items queued (a snapshot).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether a put would find no room right now (a snapshot): `maxsize` items are queued,
    /// or the free slots are promised to waiting putters.
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.occupied.load(Ordering::Relaxed) >= self.maxsize
    }

    /// Whether `shutdown` has been called.
    #[inline]
    pub(crate) fn is_shutdown(&self) -> bool {
        self.shut.load(Ordering::Relaxed)
    }

    /// Items put and not yet marked done (a snapshot). Python: `q.unfinished_tasks`.
    #[inline]
    pub(crate) fn unfinished_tasks(&self) -> usize {
        self.unfinished.load(Ordering::Relaxed)
    }

    /// Threads parked waiting for an item (a snapshot; for tests and diagnostics).
    #[inline]
    pub(crate) fn waiting_getters(&self) -> usize {
        self.getters.parked()
    }

    /// Threads parked waiting for room (a snapshot; for tests and diagnostics).
    #[inline]
    pub(crate) fn waiting_putters(&self) -> usize {
        self.putters.parked()
    }

    /// Threads registered to wait for an item or for room, parked or on their way (for the
    /// loom models: the protocol's own counts must return to zero).
    #[cfg(all(test, tandem_loom))]
    fn registered(&self) -> (usize, usize) {
        (
            self.getters.registered(Ordering::Relaxed),
            self.putters.registered(Ordering::Relaxed),
        )
    }

    /// The registration count and the parked count of one side.
    #[inline]
    fn side(&self, side: Side) -> &Waiters {
        match side {
            Side::Items => &self.getters,
            Side::Slots => &self.putters,
        }
    }

    /// Stores the lock-free views of the guarded state (under the lock).
    #[inline]
    fn publish(&self, inner: &Inner<P>) {
        let len = inner.buf.len();
        self.len.store(len, Ordering::Relaxed);
        self.avail
            .store(len - inner.promised_items, Ordering::Relaxed);
        self.occupied
            .store(len + inner.promised_slots, Ordering::Relaxed);
    }

    /// [`publish`](Self::publish) if `stale` (under the lock).
    #[inline]
    fn publish_if(&self, stale: bool, inner: &Inner<P>) {
        if stale {
            self.publish(inner);
        }
    }

    /// Free slots a put may use now (under the lock).
    #[inline]
    fn room(&self, inner: &Inner<P>) -> usize {
        self.maxsize - (inner.buf.len() + inner.promised_slots).min(self.maxsize)
    }

    // ----- put -------------------------------------------------------------------------

    /// Puts `item`, waiting for room as `wait` allows.
    #[inline]
    pub(crate) fn put(&self, item: P::Item, wait: Wait) -> Result<(), PutFail<P::Item>> {
        let inner = self.inner.acquire();
        if self.room(&inner) > 0 && !self.shut.load(Ordering::Relaxed) {
            let (inner, ()) = self.on_buffer(inner, |buf| buf.push(item));
            self.after_put(inner, 1);
            return Ok(());
        }
        drop(inner);
        self.put_slow(item, wait)
    }

    #[cold]
    fn put_slow(&self, item: P::Item, wait: Wait) -> Result<(), PutFail<P::Item>> {
        let mut spun = false;
        let mut promised = false;
        loop {
            let mut inner = self.inner.acquire();
            // The slot reserved for us is ours to use (or to give back on shutdown). The
            // lock-free views are published once, with the item: publishing the claim alone
            // would show the queue one slot emptier for a moment (`is_full` false on a full
            // queue).
            let claimed = std::mem::take(&mut promised);
            if claimed {
                inner.promised_slots -= 1;
            }
            if self.shut.load(Ordering::Relaxed) {
                self.publish_if(claimed, &inner);
                return Err(PutFail::ShutDown(item));
            }
            if self.room(&inner) > 0 {
                let (inner, ()) = self.on_buffer(inner, |buf| buf.push(item));
                self.after_put(inner, 1);
                return Ok(());
            }
            self.publish_if(claimed, &inner);
            let deadline = match wait {
                Wait::No => return Err(PutFail::Full(item)),
                Wait::Until(deadline) => deadline,
            };
            if deadline.has_passed() {
                return Err(PutFail::Timeout(item));
            }
            promised = self.wait_for_room(inner, deadline, &mut spun);
        }
    }

    /// Puts every item of `items` in order, waiting for room whenever the queue is full.
    /// On shutdown, the items not put come back, in order.
    pub(crate) fn put_many(&self, items: VecDeque<P::Item>) -> Result<(), VecDeque<P::Item>> {
        let mut items = items;
        let mut spun = false;
        let mut promised = false;
        while !items.is_empty() {
            let mut inner = self.inner.acquire();
            // As in `put_slow`: the claim is published with the items it makes room for.
            let claimed = std::mem::take(&mut promised);
            if claimed {
                inner.promised_slots -= 1;
            }
            if self.shut.load(Ordering::Relaxed) {
                self.publish_if(claimed, &inner);
                return Err(items);
            }
            let room = self.room(&inner);
            self.publish_if(claimed && room == 0, &inner);
            if room > 0 {
                let n = room.min(items.len());
                let (inner, ()) = self.on_buffer(inner, |buf| buf.push_from(&mut items, n));
                self.after_put(inner, n);
                spun = false;
                continue;
            }
            promised = self.wait_for_room(inner, Deadline::NEVER, &mut spun);
        }
        Ok(())
    }

    /// `added` items are in (under the lock): counts them as tasks, promises up to that
    /// many to registered getters, publishes, unlocks, and wakes the promised getters.
    #[inline]
    fn after_put(&self, mut inner: Guard<'_, P>, added: usize) {
        if P::TRACKS_TASKS {
            let n = self.unfinished.load(Ordering::Relaxed);
            self.unfinished.store(n + added, Ordering::Relaxed);
        }
        let promise = added.min(self.getters.registered(Ordering::Relaxed));
        inner.promised_items += promise;
        self.publish(&inner);
        drop(inner);
        if promise != 0 {
            self.hand_over(Side::Items, promise);
        }
    }

    /// Runs `op` on the buffer under the lock. If it panics (only a [`Policy::MAY_PANIC`]
    /// policy's user code can), the counts are brought in line with the buffer before the
    /// panic goes on: items it added are counted as tasks and offered to waiting getters, an
    /// item a promised getter gave up is offered again, and the lock-free views are
    /// published. So no item is lost or uncounted, and `join` still returns.
    #[inline]
    fn on_buffer<'a, R>(
        &'a self,
        mut inner: Guard<'a, P>,
        op: impl FnOnce(&mut P) -> R,
    ) -> (Guard<'a, P>, R) {
        if !P::MAY_PANIC {
            let r = op(&mut inner.buf);
            return (inner, r);
        }
        let before = inner.buf.len();
        match panic::catch_unwind(AssertUnwindSafe(|| op(&mut inner.buf))) {
            Ok(r) => (inner, r),
            Err(payload) => {
                let added = inner.buf.len().saturating_sub(before);
                self.after_panic(inner, added);
                panic::resume_unwind(payload)
            }
        }
    }

    /// A buffer operation panicked after adding `added` items: counts them, promises every
    /// available item to the registered getters that have none, publishes, unlocks and
    /// wakes them.
    #[cold]
    fn after_panic(&self, mut inner: Guard<'_, P>, added: usize) {
        if P::TRACKS_TASKS {
            let n = self.unfinished.load(Ordering::Relaxed);
            self.unfinished.store(n + added, Ordering::Relaxed);
        }
        let avail = inner.buf.len() - inner.promised_items;
        let promise = avail.min(self.getters.registered(Ordering::Relaxed));
        inner.promised_items += promise;
        self.publish(&inner);
        drop(inner);
        if promise != 0 {
            self.hand_over(Side::Items, promise);
        }
    }

    /// The queue is full and `inner` is held: the first time, unlock and spin briefly until
    /// it may have room; after that, register in `putters` and park until woken, the
    /// deadline, or shutdown. `true` if woken with a promised slot. The caller re-checks
    /// under the lock either way.
    fn wait_for_room(&self, inner: Guard<'_, P>, deadline: Deadline, spun: &mut bool) -> bool {
        let full = || self.occupied.load(Ordering::Relaxed) >= self.maxsize && !self.is_shutdown();
        if !*spun {
            *spun = true;
            drop(inner);
            spin_while(full);
            return false;
        }
        self.putters.register(Ordering::Relaxed);
        drop(inner);
        self.park(Side::Slots, full, deadline)
    }

    // ----- get -------------------------------------------------------------------------

    /// Takes one item, waiting for one as `wait` allows.
    #[inline]
    pub(crate) fn get(&self, wait: Wait) -> Result<P::Item, GetFail> {
        let inner = self.inner.acquire();
        if inner.buf.len() > inner.promised_items {
            if let (inner, Some(item)) = self.on_buffer(inner, P::pop) {
                self.after_get(inner, 1);
                return Ok(item);
            }
        } else {
            drop(inner);
        }
        self.get_slow(wait, |buf, avail| {
            if avail == 0 {
                return None;
            }
            buf.pop().map(|item| (item, 1))
        })
    }

    /// Takes up to `n` items (at least one), waiting for one as `wait` allows.
    pub(crate) fn get_many(&self, n: usize, wait: Wait) -> Result<Vec<P::Item>, GetFail> {
        if n == 0 {
            return Ok(Vec::new());
        }
        self.get_slow(wait, |buf, avail| {
            let k = n.min(avail);
            if k == 0 {
                return None;
            }
            let mut out = Vec::with_capacity(k);
            buf.pop_into(&mut out, k);
            let got = out.len();
            Some((out, got))
        })
    }

    /// Runs `take(buffer, available items)` under the lock until it takes something, waiting
    /// between attempts. `take` returns what it took and how many items that was.
    #[cold]
    fn get_slow<R>(
        &self,
        wait: Wait,
        mut take: impl FnMut(&mut P, usize) -> Option<(R, usize)>,
    ) -> Result<R, GetFail> {
        let mut spun = false;
        let mut promised = false;
        loop {
            let mut inner = self.inner.acquire();
            if promised {
                // Take back the item reserved for us (an immediate shutdown may have drained
                // it and cancelled every promise).
                if inner.promised_items > 0 {
                    inner.promised_items -= 1;
                }
            }
            let avail = inner.buf.len() - inner.promised_items;
            let (inner, taken) = self.on_buffer(inner, |buf| take(buf, avail));
            if let Some((taken, n)) = taken {
                self.after_get(inner, n);
                return Ok(taken);
            }
            if self.shut.load(Ordering::Relaxed) {
                return Err(GetFail::ShutDown);
            }
            let deadline = match wait {
                Wait::No => return Err(GetFail::Empty),
                Wait::Until(deadline) => deadline,
            };
            if deadline.has_passed() {
                return Err(GetFail::Timeout);
            }
            promised = self.wait_for_item(inner, deadline, &mut spun);
        }
    }

    /// `removed` items are out (under the lock): promises up to that many slots to
    /// registered putters, publishes, unlocks, and wakes the promised putters.
    #[inline]
    fn after_get(&self, mut inner: Guard<'_, P>, removed: usize) {
        let promise = removed.min(self.putters.registered(Ordering::Relaxed));
        inner.promised_slots += promise;
        self.publish(&inner);
        drop(inner);
        if promise != 0 {
            self.hand_over(Side::Slots, promise);
        }
    }

    /// The queue has no available item and `inner` is held: spin once, then register in
    /// `getters` and park (the mirror of [`Core::wait_for_room`]). `true` if woken with a
    /// promised item.
    fn wait_for_item(&self, inner: Guard<'_, P>, deadline: Deadline, spun: &mut bool) -> bool {
        let empty = || self.avail.load(Ordering::Relaxed) == 0 && !self.is_shutdown();
        if !*spun {
            *spun = true;
            drop(inner);
            spin_while(empty);
            return false;
        }
        self.getters.register(Ordering::Relaxed);
        drop(inner);
        self.park(Side::Items, empty, deadline)
    }

    // ----- hand-off --------------------------------------------------------------------

    /// `n` promises were made on `side`: wakes that many waiters, oldest first, with
    /// [`TOKEN_PROMISE`]. Promises nobody was parked to receive are revoked under the lock,
    /// and as many waiters as still registered are woken normally (a registered waiter that
    /// had not parked yet re-checks by itself; one that parked meanwhile needs the wake).
    #[cold]
    #[inline(never)]
    fn hand_over(&self, side: Side, n: usize) {
        let woken = self.wake(side, n, TOKEN_PROMISE);
        if woken == n {
            return;
        }
        let unused = n - woken;
        let mut inner = self.inner.acquire();
        match side {
            // An immediate shutdown may have cancelled the item promises already.
            Side::Items => inner.promised_items = inner.promised_items.saturating_sub(unused),
            Side::Slots => inner.promised_slots -= unused,
        }
        self.publish(&inner);
        let waiting = self.side(side).registered(Ordering::Relaxed);
        drop(inner);
        if waiting != 0 {
            self.wake(side, unused, TOKEN_NORMAL);
        }
    }

    /// Frees the buffer's spare capacity (under the lock; items and counts unchanged).
    pub(crate) fn shrink_to_fit(&self) {
        self.inner.acquire().buf.shrink_to_fit();
    }

    // ----- tasks -----------------------------------------------------------------------

    /// Marks one item processed. Python: `q.task_done()`.
    pub(crate) fn task_done(&self) -> Result<(), TaskDoneError> {
        let inner = self.inner.acquire();
        let n = self.unfinished.load(Ordering::Relaxed);
        if n == 0 {
            return Err(TaskDoneError);
        }
        // Release: work done before task_done happens-before a join that sees the new count
        // on its lock-free fast path.
        self.unfinished.store(n - 1, Ordering::Release);
        let wake = n == 1 && self.joiners.load(Ordering::Relaxed);
        if wake {
            self.joiners.store(false, Ordering::Relaxed);
        }
        drop(inner);
        if wake {
            self.wake_joiners();
        }
        Ok(())
    }

    /// Waits until every item put has been marked done; `false` if `deadline` passed
    /// first. Python: `q.join()`.
    pub(crate) fn join(&self, deadline: Deadline) -> bool {
        if self.unfinished.load(Ordering::Acquire) == 0 {
            return true;
        }
        self.join_slow(deadline)
    }

    #[cold]
    fn join_slow(&self, deadline: Deadline) -> bool {
        let key = wait::key_of(&self.unfinished);
        loop {
            {
                let _inner = self.inner.acquire();
                if self.unfinished.load(Ordering::Relaxed) == 0 {
                    return true;
                }
                if deadline.has_passed() {
                    return false;
                }
                self.joiners.store(true, Ordering::Relaxed);
            }
            let validate = || self.unfinished.load(Ordering::Relaxed) != 0;
            diagnostics::wait_intent(PrimitiveKind::Queue, key, Some(&self.tag));
            // SAFETY: the key is the address of a field of this queue, so only this queue's
            // joiners park on it; `validate` only reads an atomic, never panics and never
            // calls back into the wait layer; the other callbacks do nothing.
            unsafe {
                wait::park(
                    key,
                    validate,
                    || {},
                    |_, _| {},
                    wait::DEFAULT_PARK_TOKEN,
                    deadline.instant(),
                );
            }
            // Woken, invalid or timed out: re-check under the lock (a time-out returns there).
        }
    }

    #[cold]
    fn wake_joiners(&self) {
        // SAFETY: the key is the address of this queue's `unfinished` field, on which only
        // this queue's joiners park.
        unsafe {
            wait::unpark_all(wait::key_of(&self.unfinished), TOKEN_NORMAL);
        }
    }

    // ----- shutdown --------------------------------------------------------------------

    /// Shuts the queue down (Python 3.13's `shutdown`): puts fail from now on; getters drain
    /// what is queued and then fail. `immediate` also removes the queued items — returned
    /// in `get` order — cancels the promises made to woken getters, and settles the
    /// unfinished tasks of the removed items. Wakes every blocked caller.
    pub(crate) fn shutdown(&self, immediate: bool) -> Vec<P::Item> {
        let mut drained = Vec::new();
        let mut wake_joiners = false;
        {
            let mut inner = self.inner.acquire();
            self.shut.store(true, Ordering::Relaxed);
            if immediate {
                let n = inner.buf.len();
                drained.reserve_exact(n);
                inner.buf.pop_into(&mut drained, n);
                inner.promised_items = 0;
                self.publish(&inner);
                if P::TRACKS_TASKS {
                    let before = self.unfinished.load(Ordering::Relaxed);
                    let after = before.saturating_sub(drained.len());
                    self.unfinished.store(after, Ordering::Release);
                    if after == 0 && self.joiners.load(Ordering::Relaxed) {
                        self.joiners.store(false, Ordering::Relaxed);
                        wake_joiners = true;
                    }
                }
            }
        }
        if self.getters.registered(Ordering::Relaxed) != 0 {
            self.wake(Side::Items, usize::MAX, TOKEN_NORMAL);
        }
        if self.putters.registered(Ordering::Relaxed) != 0 {
            self.wake(Side::Slots, usize::MAX, TOKEN_NORMAL);
        }
        if wake_joiners {
            self.wake_joiners();
        }
        drained
    }

    // ----- the wait layer --------------------------------------------------------------

    /// Parks on `side` while `blocked()` holds (checked inside the wait layer's queue
    /// lock); the caller has registered on that side. `true` if woken with a promise.
    fn park(&self, side: Side, blocked: impl Fn() -> bool, deadline: Deadline) -> bool {
        let result = self
            .side(side)
            .park(blocked, wait::DEFAULT_PARK_TOKEN, deadline, &self.tag);
        result == ParkResult::Unparked(TOKEN_PROMISE)
    }

    /// Wakes up to `n` threads parked on `side`, oldest first, with `token`, taking each
    /// out of the counts; returns how many it woke.
    fn wake(&self, side: Side, n: usize, token: UnparkToken) -> usize {
        self.side(side).wake(n, token)
    }
}

/// Spins (briefly, with yields: never long on a 2-core machine) while `cond` holds.
///
/// Under loom it does nothing: spinning is only an optimisation, and loom's yields would
/// let the other thread run to completion, hiding the register-then-park window that the
/// models must explore within their preemption bound.
#[inline]
pub(crate) fn spin_while(cond: impl Fn() -> bool) {
    if cfg!(tandem_loom) {
        return;
    }
    let mut spin = SpinWait::new();
    while cond() && spin.spin() {}
}

#[cfg(test)]
#[path = "core_policy.rs"]
mod vecdeque_policy;

#[cfg(all(test, not(tandem_loom)))]
#[path = "core_tests.rs"]
mod tests;

#[cfg(all(test, tandem_loom))]
#[path = "core_loom.rs"]
mod loom_tests;
