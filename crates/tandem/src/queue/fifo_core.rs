//! The engine of `Queue` and `SimpleQueue`: a lock-free FIFO ([`List`]) with blocking,
//! bounds, timeouts, hand-off, `task_done`/`join` and shutdown around it.
//!
//! (`LifoQueue` and `PriorityQueue` keep the lock-based engine in `core.rs`: their orders
//! need a lock anyway. The public API of all four is the same macro-generated vocabulary.)
//!
//! # Fast paths
//! A put claims a slot in the list (one compare-and-swap on the producers' cache line) and
//! writes its item; a get claims and reads one on the consumers' line. Beside each end's
//! index sits what that side reads on every call: the count of getters registered to sleep
//! beside `tail`, of putters beside `head`. An uncontended put or get therefore touches
//! its own line and the slot, makes no system call and takes no lock.
//!
//! # Sleeping and waking (no lost wake-up)
//! A getter that finds the list empty spins briefly, then registers in `getters`
//! (`SeqCst`), and parks on the address of `getters` while — checked inside the wait
//! layer's queue lock — the list is still empty and not shut down. A put claims its slot
//! (`SeqCst`) and then reads `getters` (`SeqCst`): in the single order of those four
//! operations, either the getter's check comes after the claim (and sees the item) or the
//! put's read comes after the registration (and wakes a getter; the wait layer's queue lock
//! orders that wake after the getter's check, so it reaches the getter or the getter saw the
//! item). Putters waiting for room on a bounded queue are the mirror image (`putters`, the
//! get's claim of `head`). Under loom, which does not model `SeqCst` read-modify-writes as
//! a total order, a `SeqCst` fence after each claim and registration gives the models the
//! same guarantee (on the hardware the claim is already a full barrier).
//!
//! # Hand-off and fairness
//! - A put that finds getters parked (and the list empty) gives its item straight to the
//!   one that has waited longest (written into that getter's waiting slot under the wait
//!   layer's queue lock): the item never enters the list, so no later arrival can take it.
//! - A get from a bounded queue that finds putters parked first moves the longest-waiting
//!   putter's item into the list (one over the bound, for the instant until this get takes
//!   its own item) and releases that putter: the freed slot cannot go to a later arrival.
//!
//! So parked waiters are served in arrival order, one item or slot each. What is given up
//! against a lock-based queue: a waiter that is registered but not yet parked when the item
//! (or slot) comes, or that a normal wake-up reached, retries like any thread, and a thread
//! arriving at that instant may take the item first; the waiter then parks again at the
//! back of the line. Under steady load waiters are parked and served in order, so none
//! starves.
//!
//! # Tasks
//! The unfinished-task count is not kept on the put path: it is derived as (puts through the
//! list, read from `tail`) + (items handed straight to getters) − (`task_done` calls and
//! items an immediate shutdown removed), all modulo the list's count range.

use std::collections::VecDeque;

use crate::diagnostics::{self, PrimitiveKind};
use crate::primitive::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::primitive::UnsafeCell;
use crate::wait::{self, Deadline, FilterOp, ParkResult, ParkToken, UnparkResult, UnparkToken};

use super::core::{spin_while, GetFail, PutFail, Wait};
use super::error::TaskDoneError;
use super::list::{count_add, count_sub, List, PopFail, PushFail, BLOCK_CAP as LIST_BLOCK};
use super::waiters::Waiters;

/// Rounds of eager spinning (8 spin hints each) of a get that found the queue empty, before
/// `spin_while`'s yields. None under loom, where a spin is a yield (see `spin_while`).
const EAGER_SPINS: usize = if cfg!(tandem_loom) { 0 } else { 64 };

/// Unpark token: woken to look again.
const TOKEN_NORMAL: UnparkToken = wait::DEFAULT_UNPARK_TOKEN;
/// Unpark token: woken done — a getter's item is in its slot, a putter's item is in the list.
const TOKEN_DONE: UnparkToken = UnparkToken(1);

/// A parked waiter's slot, on its stack; its address is the park token. A getter's holds
/// nothing until a put hands it an item; a putter's holds its item until a get moves it
/// into the list. Only touched by its owner (before parking and after waking) and by a
/// waker inside the wait layer's queue lock while the owner is parked.
struct Waiter<T> {
    item: UnsafeCell<Option<T>>,
}

/// What puts read: on `tail`'s cache line.
pub(crate) struct Producer {
    /// Getters waiting for an item ("not empty").
    getters: Waiters,
    /// Items handed straight to parked getters (modulo the list's count range).
    handoffs: AtomicUsize,
    /// `usize::MAX` for an unbounded queue.
    maxsize: usize,
}

/// What gets read: on `head`'s cache line.
pub(crate) struct Consumer {
    /// Putters waiting for room ("not full").
    putters: Waiters,
    /// `task_done` calls and items removed by an immediate shutdown (modulo the count range).
    done: AtomicUsize,
    /// A joiner may be parked (this field's address is the "all tasks done" key).
    joiners: AtomicBool,
    /// The queue is bounded (so gets look for waiting putters): `maxsize != usize::MAX`,
    /// copied here so that gets read only their own cache line.
    bounded: bool,
    /// The queue counts unfinished tasks (`SimpleQueue` does not: it has no `task_done`).
    tasks: bool,
    /// Diagnostics: name and wait statistics (zero-sized without the feature).
    tag: diagnostics::Tag,
}

/// The FIFO engine. See the module docs for the protocol.
pub(crate) struct FifoCore<T> {
    list: List<T, Producer, Consumer>,
}

/// Orders a claim or registration before the loads that follow it, for loom (see the
/// module docs); on the hardware the `SeqCst` read-modify-write already does.
#[inline(always)]
fn claim_fence() {
    #[cfg(tandem_loom)]
    crate::primitive::atomic::fence(Ordering::SeqCst);
}

impl<T> FifoCore<T> {
    /// A queue holding at most `maxsize` items (`usize::MAX`: unbounded), counting
    /// unfinished tasks if `tasks`.
    pub(crate) fn new(maxsize: usize, tasks: bool) -> Self {
        debug_assert!(maxsize > 0);
        FifoCore {
            list: List::new(
                Producer {
                    getters: Waiters::new(),
                    handoffs: AtomicUsize::new(0),
                    maxsize,
                },
                Consumer {
                    putters: Waiters::new(),
                    done: AtomicUsize::new(0),
                    joiners: AtomicBool::new(false),
                    bounded: maxsize != usize::MAX,
                    tasks,
                    tag: diagnostics::Tag::new(),
                },
            ),
        }
    }

    #[inline]
    fn p(&self) -> &Producer {
        self.list.producer()
    }

    #[inline]
    fn c(&self) -> &Consumer {
        self.list.consumer()
    }

    /// Names the queue in diagnostics reports (nothing without the feature).
    #[cfg_attr(feature = "diagnostics", track_caller)]
    pub(crate) fn set_name(&self, name: String) {
        self.c()
            .tag
            .set_name(PrimitiveKind::Queue, wait::key_of(self), name);
    }

    /// The queue's diagnostics name (always `None` without the feature).
    pub(crate) fn name(&self) -> Option<String> {
        self.c().tag.name()
    }

    /// Statistics of the waits on this queue.
    #[cfg(feature = "diagnostics")]
    pub(crate) fn stats(&self) -> crate::diagnostics::Stats {
        self.c().tag.stats()
    }

    /// The bound, `None` when unbounded.
    #[inline]
    pub(crate) fn maxsize(&self) -> Option<usize> {
        self.c().bounded.then_some(self.p().maxsize)
    }

    /// Items queued (a snapshot). While a get moves a waiting putter's item in, the list
    /// holds one item over the bound for an instant; that is not shown.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.list.len().min(self.p().maxsize)
    }

    /// Whether a put would find no room right now (a snapshot).
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.c().bounded && self.list.len() >= self.p().maxsize
    }

    /// Whether `shutdown` has been called.
    #[inline]
    pub(crate) fn is_shutdown(&self) -> bool {
        self.list.is_shut()
    }

    /// Threads parked waiting for an item (a snapshot; for tests and diagnostics).
    #[inline]
    pub(crate) fn waiting_getters(&self) -> usize {
        self.p().getters.parked()
    }

    /// Threads parked waiting for room (a snapshot; for tests and diagnostics).
    #[inline]
    pub(crate) fn waiting_putters(&self) -> usize {
        self.c().putters.parked()
    }

    /// Nothing to give back: the list frees each block as the queue drains past it.
    pub(crate) fn shrink_to_fit(&self) {}

    // ----- put -------------------------------------------------------------------------

    /// Puts `item`, waiting for room as `wait` allows.
    #[inline]
    pub(crate) fn put(&self, item: T, wait: Wait) -> Result<(), PutFail<T>> {
        if self.p().getters.registered(Ordering::Relaxed) != 0 {
            return self.put_to_waiter(item, wait);
        }
        match self.list.push(item, self.p().maxsize) {
            Ok(()) => {
                self.after_push();
                Ok(())
            }
            Err(PushFail::Full(item)) => self.put_slow(item, wait),
            Err(PushFail::Shut(item)) => Err(PutFail::ShutDown(item)),
        }
    }

    /// An item went into the list: wakes a getter if one registered to sleep.
    #[inline]
    fn after_push(&self) {
        claim_fence();
        if self.p().getters.registered(Ordering::SeqCst) != 0 {
            self.wake(Side::Getters, 1);
        }
    }

    /// Getters are registered: hands `item` to the longest-parked one, or (none parked yet)
    /// puts it in the list.
    #[cold]
    fn put_to_waiter(&self, item: T, wait: Wait) -> Result<(), PutFail<T>> {
        match self.hand_to_getter(item) {
            None => Ok(()),
            Some(item) => match self.list.push(item, self.p().maxsize) {
                Ok(()) => {
                    self.after_push();
                    Ok(())
                }
                Err(PushFail::Full(item)) => self.put_slow(item, wait),
                Err(PushFail::Shut(item)) => Err(PutFail::ShutDown(item)),
            },
        }
    }

    /// Writes `item` into the slot of the longest-parked getter and wakes it; gives the item
    /// back if no getter is parked, the list is not empty (FIFO: the list's items go first)
    /// or the queue is shut down.
    fn hand_to_getter(&self, item: T) -> Option<T> {
        let p = self.p();
        let mut item = Some(item);
        let filter = |token: ParkToken| {
            // Only past an empty list: an item already in it (say, a served putter's, put
            // by the same producer just before) must not be overtaken.
            if item.is_none() || self.list.is_shut() || !self.list.is_empty() {
                return FilterOp::Stop;
            }
            let waiter = token.0 as *const Waiter<T>;
            // SAFETY: a parked getter's token is the address of its `Waiter`, which lives
            // on its stack until it wakes; it is parked (we are in its queue under the wait
            // layer's lock), so nobody else touches the slot now, and it reads it only after
            // this unpark.
            unsafe { (*waiter).item.with_mut(|slot| *slot = item.take()) };
            FilterOp::Unpark
        };
        let callback = |result: UnparkResult| {
            let n = result.unparked_threads;
            p.getters.took(n);
            if n != 0 {
                add_count(&p.handoffs, 1);
            }
            TOKEN_DONE
        };
        // SAFETY: the key is the address of a field of this queue, so only its getters park
        // there; the closures only touch atomics and the parked getter's slot, never panic
        // and never call back into the wait layer.
        unsafe { wait::unpark_filter(p.getters.key(), filter, callback) };
        item
    }

    #[cold]
    fn put_slow(&self, mut item: T, wait: Wait) -> Result<(), PutFail<T>> {
        let (p, c) = (self.p(), self.c());
        let mut spun = false;
        loop {
            let deadline = match wait {
                Wait::No => return Err(PutFail::Full(item)),
                Wait::Until(deadline) => deadline,
            };
            if deadline.has_passed() {
                return Err(PutFail::Timeout(item));
            }
            let full = || self.list.len() >= p.maxsize && !self.list.is_shut();
            if !spun {
                spun = true;
                // Spin until a block's worth of room (or half the bound) is free, not just one
                // slot: the puts that follow then check the bound against their cached view
                // of `head` instead of reading the consumers' line once per item.
                let slack = (p.maxsize / 2).clamp(1, LIST_BLOCK);
                spin_while(|| self.list.len() + slack > p.maxsize && !self.list.is_shut());
            } else {
                c.putters.register(Ordering::SeqCst);
                claim_fence();
                let waiter = Waiter {
                    item: UnsafeCell::new(Some(item)),
                };
                let done = self.park(Side::Putters, full, &waiter, deadline);
                let back = waiter.item.into_inner();
                match back {
                    None if done => return Ok(()),
                    None => unreachable!("a putter's item is taken only with TOKEN_DONE"),
                    Some(back) => item = back,
                }
            }
            match self.list.push(item, p.maxsize) {
                Ok(()) => {
                    self.after_push();
                    return Ok(());
                }
                Err(PushFail::Full(back)) => item = back,
                Err(PushFail::Shut(back)) => return Err(PutFail::ShutDown(back)),
            }
        }
    }

    /// Puts every item of `items` in order, waiting for room whenever the queue is full.
    /// On shutdown, the items not put come back, in order. Items go in as many at a time as
    /// fit in the current block (one claim each), unless getters wait for a hand-off.
    pub(crate) fn put_many(&self, mut items: VecDeque<T>) -> Result<(), VecDeque<T>> {
        let (p, c) = (self.p(), self.c());
        while !items.is_empty() {
            if items.len() > 1 && p.getters.registered(Ordering::Relaxed) == 0 {
                match self.list.push_some(&mut items, p.maxsize) {
                    Ok(k) => {
                        claim_fence();
                        let waiting = p.getters.registered(Ordering::SeqCst);
                        if waiting != 0 {
                            self.wake(Side::Getters, k.min(waiting));
                        }
                        continue;
                    }
                    Err(PopFail::Shut) => return Err(items),
                    // Full: the single put below waits for room.
                    Err(PopFail::Empty) => debug_assert!(c.bounded),
                }
            }
            let item = items.pop_front().expect("not empty");
            if let Err(fail) = self.put(item, Wait::FOREVER) {
                let (PutFail::ShutDown(item) | PutFail::Full(item) | PutFail::Timeout(item)) = fail;
                items.push_front(item);
                return Err(items);
            }
        }
        Ok(())
    }

    // ----- get -------------------------------------------------------------------------

    /// Takes one item, waiting for one as `wait` allows.
    #[inline]
    pub(crate) fn get(&self, wait: Wait) -> Result<T, GetFail> {
        if self.c().putters.registered(Ordering::Relaxed) != 0 {
            self.serve_putter();
        }
        match self.list.pop() {
            Ok(item) => {
                self.after_pop();
                Ok(item)
            }
            Err(PopFail::Shut) => Err(GetFail::ShutDown),
            Err(PopFail::Empty) => self.get_slow(wait),
        }
    }

    /// An item left a bounded list: wakes a putter if one registered to sleep.
    #[inline]
    fn after_pop(&self) {
        if self.c().bounded {
            claim_fence();
            if self.c().putters.registered(Ordering::SeqCst) != 0 {
                self.wake(Side::Putters, 1);
            }
        }
    }

    /// Putters are registered: moves the longest-parked one's item into the list (past the
    /// bound, for the instant until this get takes its own item) and releases it.
    #[cold]
    fn serve_putter(&self) {
        let c = self.c();
        let mut served = false;
        let filter = |token: ParkToken| {
            if served {
                return FilterOp::Stop;
            }
            let waiter = token.0 as *const Waiter<T>;
            // SAFETY: as in `hand_to_getter`: the parked putter's `Waiter` lives on its stack
            // until it wakes, and only this waker touches it now.
            let moved = unsafe {
                (*waiter).item.with_mut(|slot| {
                    let item = (*slot).take().expect("a parked putter holds its item");
                    match self.list.push(item, usize::MAX) {
                        Ok(()) => true,
                        Err(PushFail::Shut(item) | PushFail::Full(item)) => {
                            *slot = Some(item);
                            false
                        }
                    }
                })
            };
            if moved {
                served = true;
                FilterOp::Unpark
            } else {
                // Shut down: the putter keeps its item and fails by itself when woken.
                FilterOp::Stop
            }
        };
        let callback = |result: UnparkResult| {
            c.putters.took(result.unparked_threads);
            TOKEN_DONE
        };
        // SAFETY: the key is the address of a field of this queue; the closures only touch
        // atomics, the list (which never blocks or calls the wait layer) and the parked
        // putter's slot, and never panic.
        unsafe { wait::unpark_filter(c.putters.key(), filter, callback) };
        if served {
            self.after_push();
        }
    }

    #[cold]
    fn get_slow(&self, wait: Wait) -> Result<T, GetFail> {
        let p = self.p();
        let mut spun = false;
        loop {
            let deadline = match wait {
                Wait::No => return Err(GetFail::Empty),
                Wait::Until(deadline) => deadline,
            };
            if deadline.has_passed() {
                return Err(GetFail::Timeout);
            }
            let empty = || self.list.is_empty() && !self.list.is_shut();
            if !spun {
                spun = true;
                // A producer that keeps up is usually a few hundred cycles away: spin on the
                // CPU for that long (about a microsecond, bounded) before the yields of
                // `spin_while`, so a get waiting for the next item rarely sleeps.
                let mut rounds = EAGER_SPINS;
                while rounds > 0 && empty() {
                    rounds -= 1;
                    for _ in 0..8 {
                        crate::primitive::spin_loop();
                    }
                }
                spin_while(empty);
            } else {
                p.getters.register(Ordering::SeqCst);
                claim_fence();
                let waiter = Waiter {
                    item: UnsafeCell::new(None),
                };
                let done = self.park(Side::Getters, empty, &waiter, deadline);
                if let Some(item) = waiter.item.into_inner() {
                    debug_assert!(done);
                    return Ok(item);
                }
            }
            if self.c().putters.registered(Ordering::Relaxed) != 0 {
                self.serve_putter();
            }
            match self.list.pop() {
                Ok(item) => {
                    self.after_pop();
                    return Ok(item);
                }
                Err(PopFail::Shut) => return Err(GetFail::ShutDown),
                Err(PopFail::Empty) => {}
            }
        }
    }

    /// Takes up to `n` items (at least one), waiting for one as `wait` allows. After the
    /// first, items come out as many at a time as the current block holds (one claim
    /// each), unless putters wait to be served.
    pub(crate) fn get_many(&self, n: usize, wait: Wait) -> Result<Vec<T>, GetFail> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let first = self.get(wait)?;
        let c = self.c();
        let mut out = Vec::with_capacity(n.min(64));
        out.push(first);
        while out.len() < n {
            if c.bounded && c.putters.registered(Ordering::Relaxed) != 0 {
                match self.get(Wait::No) {
                    Ok(item) => out.push(item),
                    Err(_) => break,
                }
                continue;
            }
            match self.list.pop_some(n - out.len(), &mut out) {
                Ok(k) => {
                    if c.bounded {
                        claim_fence();
                        let waiting = c.putters.registered(Ordering::SeqCst);
                        if waiting != 0 {
                            self.wake(Side::Putters, k.min(waiting));
                        }
                    }
                }
                Err(_) => break,
            }
        }
        Ok(out)
    }

    // ----- tasks -----------------------------------------------------------------------

    /// Items put and not yet marked done (a snapshot). Python: `q.unfinished_tasks`.
    #[inline]
    pub(crate) fn unfinished_tasks(&self) -> usize {
        if !self.c().tasks {
            return 0;
        }
        let done = self.c().done.load(Ordering::SeqCst);
        self.unfinished_given(done)
    }

    fn unfinished_given(&self, done: usize) -> usize {
        let handoffs = self.p().handoffs.load(Ordering::SeqCst);
        count_sub(count_add(self.list.puts(), handoffs), done)
    }

    /// Marks one item processed. Python: `q.task_done()`.
    pub(crate) fn task_done(&self) -> Result<(), TaskDoneError> {
        let c = self.c();
        let mut done = c.done.load(Ordering::SeqCst);
        loop {
            let unfinished = self.unfinished_given(done);
            if unfinished == 0 {
                return Err(TaskDoneError);
            }
            match c.done.compare_exchange_weak(
                done,
                count_add(done, 1),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => {
                    if unfinished == 1 {
                        self.wake_joiners();
                    }
                    return Ok(());
                }
                Err(current) => done = current,
            }
        }
    }

    /// Wakes the joiners if any may be parked (after the count may have reached 0).
    fn wake_joiners(&self) {
        let c = self.c();
        claim_fence();
        if c.joiners.load(Ordering::SeqCst) && c.joiners.swap(false, Ordering::SeqCst) {
            // SAFETY: the key is the address of this queue's `joiners` field, on which only
            // this queue's joiners park.
            unsafe { wait::unpark_all(wait::key_of(&c.joiners), TOKEN_NORMAL) };
        }
    }

    /// Waits until every item put has been marked done; `false` if `deadline` passed
    /// first. Python: `q.join()`.
    pub(crate) fn join(&self, deadline: Deadline) -> bool {
        let c = self.c();
        let key = wait::key_of(&c.joiners);
        loop {
            if self.unfinished_tasks() == 0 {
                return true;
            }
            if deadline.has_passed() {
                return false;
            }
            c.joiners.store(true, Ordering::SeqCst);
            claim_fence();
            let validate = || self.unfinished_tasks() != 0;
            diagnostics::wait_intent(PrimitiveKind::Queue, key, Some(&c.tag));
            // SAFETY: the key is the address of a field of this queue, so only its joiners
            // park on it; `validate` only reads atomics, never panics and never calls back
            // into the wait layer; the other callbacks do nothing.
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
        }
    }

    // ----- shutdown --------------------------------------------------------------------

    /// Shuts the queue down (Python 3.13's `shutdown`): puts fail from now on (the shutdown
    /// bit is in `tail`, so no put can claim a slot after it); getters drain what is queued
    /// and then fail. `immediate` also removes the queued items — returned in `get` order,
    /// each exactly once even with getters racing — and settles their unfinished tasks.
    /// Wakes every blocked caller.
    pub(crate) fn shutdown(&self, immediate: bool) -> Vec<T> {
        self.list.shut();
        // Orders the shutdown bit before the reads of the waiter counts in `wake_all`: a
        // waiter that registers after those reads sees the bit when it validates.
        claim_fence();
        let mut drained = Vec::new();
        if immediate {
            while let Ok(item) = self.list.pop() {
                drained.push(item);
            }
            if !drained.is_empty() {
                add_count(&self.c().done, drained.len());
                self.wake_joiners();
            }
        }
        self.wake_all(Side::Getters);
        self.wake_all(Side::Putters);
        drained
    }

    // ----- the wait layer --------------------------------------------------------------

    /// One side's waiters.
    #[inline]
    fn side(&self, side: Side) -> &Waiters {
        match side {
            Side::Getters => &self.p().getters,
            Side::Putters => &self.c().putters,
        }
    }

    /// Parks on `side` while `blocked()` holds, with `waiter` as the hand-off slot (its
    /// address is the park token). The caller has registered on that side. `true` if woken
    /// with [`TOKEN_DONE`].
    fn park(
        &self,
        side: Side,
        blocked: impl Fn() -> bool,
        waiter: &Waiter<T>,
        deadline: Deadline,
    ) -> bool {
        let token = ParkToken(waiter as *const Waiter<T> as usize);
        let result = self
            .side(side)
            .park(blocked, token, deadline, &self.c().tag);
        result == ParkResult::Unparked(TOKEN_DONE)
    }

    /// Wakes up to `n` of `side`'s parked threads, oldest first, to look again (after an
    /// item or slot, or `n` at once, came).
    #[cold]
    fn wake(&self, side: Side, n: usize) {
        self.side(side).wake(n, TOKEN_NORMAL);
    }

    /// Wakes every parked thread of `side` to look again.
    fn wake_all(&self, side: Side) {
        let waiters = self.side(side);
        if waiters.registered(Ordering::SeqCst) != 0 {
            waiters.wake(usize::MAX, TOKEN_NORMAL);
        }
    }
}

/// Which waiters.
#[derive(Clone, Copy)]
enum Side {
    /// Getters waiting for an item.
    Getters,
    /// Putters waiting for room.
    Putters,
}

/// Adds `n` to a count kept modulo the list's count range.
fn add_count(counter: &AtomicUsize, n: usize) {
    let mut current = counter.load(Ordering::SeqCst);
    while let Err(now) = counter.compare_exchange_weak(
        current,
        count_add(current, n),
        Ordering::SeqCst,
        Ordering::SeqCst,
    ) {
        current = now;
    }
}

#[cfg(all(test, tandem_loom))]
#[path = "fifo_loom.rs"]
mod loom_tests;
