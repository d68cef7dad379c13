//! The lock-free FIFO under `Queue` and `SimpleQueue`: a list of blocks of slots.
//!
//! A put claims the next slot by advancing `tail` with a compare-and-swap, then writes its
//! item there and sets the slot's `WRITE` bit; a get claims the slot at `head` the same way,
//! waits for `WRITE` (the put that claimed it is between its two steps) and reads it. Each
//! block holds `BLOCK_CAP` slots; the thread that claims a block's last slot installs the
//! next block, and the last reader of a block frees it (the `READ`/`DESTROY` bits settle
//! which reader is last when readers finish out of order). So memory follows the queue's
//! length: a drained queue holds one block.
//!
//! This is the design of crossbeam-channel's list flavour (Dmitry Vyukov's unbounded MPMC
//! queue), written again here because tandem needs what a channel does not expose: a bound
//! checked against a cached head (so a bounded put does not read the consumers' cache line
//! on every call), a put that may exceed the bound for one item (a waiting putter's item
//! handed over by a getter), the put count the task accounting is derived from, and the
//! shutdown bit in `tail` that makes a put after shutdown impossible to lose.
//!
//! # Indices
//! `tail` and `head` count slots shifted left by [`SHIFT`]; bit 0 of `tail` is [`SHUT`]
//! (set once by shutdown: no put can claim a slot after it), bit 0 of `head` is [`HAS_NEXT`]
//! (the head block is not the last, so a get need not read `tail` to know an item is there).
//! Index `i` sits at offset `i % LAP` of its block; offset `BLOCK_CAP` (= `LAP - 1`) is never
//! a slot: it marks "the next block is being installed", and the index skips it. Indices wrap
//! at `2^(usize::BITS - 1)`, a multiple of `LAP`, so offsets stay right across the wrap; the
//! counts derived from them (see [`count`]) are kept modulo [`COUNT_MOD`].

use std::mem::MaybeUninit;
use std::ptr;

use crate::primitive::atomic::{AtomicPtr, AtomicUsize, Ordering};
use crate::primitive::{spin_loop, yield_now, UnsafeCell};

/// Index units per slot: bit 0 is a flag.
const SHIFT: usize = 1;
/// In `tail`: shut down, no more puts.
const SHUT: usize = 1;
/// In `head`: the head block has a successor (a hint that spares a read of `tail`).
const HAS_NEXT: usize = 1;
/// Indices per block (a power of two): `BLOCK_CAP` slots and the "installing" marker.
/// Small under loom, so the models cross block boundaries.
const LAP: usize = if cfg!(tandem_loom) { 4 } else { 32 };
/// Slots per block.
pub(crate) const BLOCK_CAP: usize = LAP - 1;

/// Slot state: the item is written.
const WRITE: usize = 1;
/// Slot state: the item has been read.
const READ: usize = 2;
/// Slot state: the block's destruction reached this slot while its reader was still reading;
/// that reader goes on with it.
const DESTROY: usize = 4;

/// Counts ([`count`]) live modulo this: the number of slot indices below the wrap of the
/// shifted index, `2^(BITS-1)`, less the skipped markers.
pub(crate) const COUNT_MOD: usize = (usize::MAX >> SHIFT) + 1 - ((usize::MAX >> SHIFT) + 1) / LAP;

/// Slots put through a (shifted-out) index `i`, modulo [`COUNT_MOD`]: the markers skipped
/// are not slots. (The marker just below the wrap counts as the wrap itself, 0.)
#[inline]
fn count(index: usize) -> usize {
    let i = index >> SHIFT;
    let c = i - i / LAP;
    if c == COUNT_MOD {
        0
    } else {
        c
    }
}

/// `a - b` modulo [`COUNT_MOD`], for counts below it.
#[inline]
pub(crate) fn count_sub(a: usize, b: usize) -> usize {
    if a >= b {
        a - b
    } else {
        COUNT_MOD - (b - a)
    }
}

/// `a + b` modulo [`COUNT_MOD`], for counts below it.
#[inline]
pub(crate) fn count_add(a: usize, b: usize) -> usize {
    count_sub(a, COUNT_MOD - b % COUNT_MOD)
}

/// One item's place.
struct Slot<T> {
    item: UnsafeCell<MaybeUninit<T>>,
    state: AtomicUsize,
}

impl<T> Slot<T> {
    /// Waits until the put that claimed this slot has written it (it is between two
    /// instructions: a claim and a write, never blocked).
    fn wait_write(&self) {
        let mut backoff = Backoff::new();
        while self.state.load(Ordering::Acquire) & WRITE == 0 {
            backoff.snooze();
        }
    }
}

/// `BLOCK_CAP` slots and the link to the next block.
struct Block<T> {
    next: AtomicPtr<Block<T>>,
    slots: [Slot<T>; BLOCK_CAP],
}

impl<T> Block<T> {
    fn new() -> Box<Self> {
        Box::new(Block {
            next: AtomicPtr::new(ptr::null_mut()),
            slots: std::array::from_fn(|_| Slot {
                item: UnsafeCell::new(MaybeUninit::uninit()),
                state: AtomicUsize::new(0),
            }),
        })
    }

    /// Waits for the next block: the thread that claimed this block's last slot is about to
    /// link it.
    fn wait_next(&self) -> *mut Block<T> {
        let mut backoff = Backoff::new();
        loop {
            let next = self.next.load(Ordering::Acquire);
            if !next.is_null() {
                return next;
            }
            backoff.snooze();
        }
    }

    /// Frees `this` once every slot from `start` on has been read; a slot still being read
    /// is marked `DESTROY`, and its reader calls this again from the next slot.
    ///
    /// # Safety
    /// `this` is a block whose every slot was claimed by a get, and slots before `start`
    /// have been read; no thread will touch it again except readers of later slots.
    unsafe fn destroy(this: *mut Block<T>, start: usize) {
        // The last slot needs no mark: its reader is the one that calls `destroy(_, 0)`.
        for i in start..BLOCK_CAP - 1 {
            // SAFETY: the block is alive until this loop's end decides it is not (the
            // caller's contract).
            let slot = unsafe { &(*this).slots[i] };
            if slot.state.load(Ordering::Acquire) & READ == 0
                && slot.state.fetch_or(DESTROY, Ordering::AcqRel) & READ == 0
            {
                // That slot's reader has not finished: it will free the block.
                return;
            }
        }
        // SAFETY: every slot has been read and no thread holds the block any more; it came
        // from `Box::into_raw`.
        drop(unsafe { Box::from_raw(this) });
    }
}

/// A spin-then-yield wait for another thread that is between two steps.
struct Backoff(u32);

impl Backoff {
    fn new() -> Self {
        Backoff(0)
    }

    fn snooze(&mut self) {
        if cfg!(not(tandem_loom)) && self.0 < 6 {
            for _ in 0..1 << self.0 {
                spin_loop();
            }
        } else {
            yield_now();
        }
        self.0 += 1;
    }

    /// A short spin after a lost race (the winner is already done).
    fn spin(&mut self) {
        if cfg!(tandem_loom) {
            yield_now();
            return;
        }
        for _ in 0..1 << self.0.min(6) {
            spin_loop();
        }
        self.0 += 1;
    }
}

/// Why a put did not claim a slot; the item is inside.
#[derive(Debug)]
pub(crate) enum PushFail<T> {
    /// `bound` items are queued.
    Full(T),
    /// Shut down.
    Shut(T),
}

/// Why a claim of `tail` failed.
enum Claim {
    /// `bound` items are queued.
    Full,
    /// Shut down.
    Shut,
}

/// Why a get found nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PopFail {
    /// No item, not shut down.
    Empty,
    /// No item, and shut down: none will come.
    Shut,
}

/// The producers' end. Its own cache line: puts touch only this (and the slots).
#[repr(align(64))]
struct Tail<T, P> {
    index: AtomicUsize,
    block: AtomicPtr<Block<T>>,
    /// A `head` index seen by a put: the bound is checked against it, and `head` itself is
    /// read only when this says the queue may be full. `head` only grows, so a stale value
    /// only under-counts the room.
    head_seen: AtomicUsize,
    /// The owner's state that puts read (on the same line).
    producer: P,
}

/// The consumers' end, on a cache line of its own.
#[repr(align(64))]
struct Head<T, C> {
    index: AtomicUsize,
    block: AtomicPtr<Block<T>>,
    /// The owner's state that gets read (on the same line).
    consumer: C,
}

/// The list, with room on each end's cache line for the owner's state of that side (`P`
/// beside `tail`, `C` beside `head`). Only the owner ([`super::fifo_core`]) decides when to
/// block; the list never does.
pub(crate) struct List<T, P, C> {
    tail: Tail<T, P>,
    head: Head<T, C>,
}

// SAFETY: the list moves `T`s between threads (so `T: Send`), and never hands out a shared
// reference to an item: every item is written by one put and read by one get.
unsafe impl<T: Send, P: Send, C: Send> Send for List<T, P, C> {}
// SAFETY: as above; all shared state is atomics and slots claimed by exactly one thread.
unsafe impl<T: Send, P: Sync, C: Sync> Sync for List<T, P, C> {}

impl<T, P, C> List<T, P, C> {
    /// An empty list; its first block is allocated by the first put.
    pub(crate) fn new(producer: P, consumer: C) -> Self {
        List {
            tail: Tail {
                index: AtomicUsize::new(0),
                block: AtomicPtr::new(ptr::null_mut()),
                head_seen: AtomicUsize::new(0),
                producer,
            },
            head: Head {
                index: AtomicUsize::new(0),
                block: AtomicPtr::new(ptr::null_mut()),
                consumer,
            },
        }
    }

    /// The owner's producer-side state.
    #[inline]
    pub(crate) fn producer(&self) -> &P {
        &self.tail.producer
    }

    /// The owner's consumer-side state.
    #[inline]
    pub(crate) fn consumer(&self) -> &C {
        &self.head.consumer
    }

    /// Puts `item` unless `bound` items are queued (`usize::MAX`: no bound; a getter moving
    /// a parked putter's item in passes it to go one over) or the list is shut down.
    ///
    /// The claim of the slot is a sequentially consistent read-modify-write of `tail`: a
    /// getter that registers to sleep and then reads `tail` (both `SeqCst`) either sees this
    /// put, or this put's later read of the sleeper count sees the getter.
    #[inline]
    pub(crate) fn push(&self, item: T, bound: usize) -> Result<(), PushFail<T>> {
        match self.claim_tail(1, bound) {
            // SAFETY: the claim gave us this one slot to write.
            Ok((block, offset, _)) => unsafe {
                Self::write(block, offset, item);
                Ok(())
            },
            Err(Claim::Full) => Err(PushFail::Full(item)),
            Err(Claim::Shut) => Err(PushFail::Shut(item)),
        }
    }

    /// Puts items from the front of `items` while there is room, as many as one claim of
    /// `tail` can take (the rest of the current block at most); returns how many. `Err` if
    /// the list is full (`Full`: none put) or shut down.
    pub(crate) fn push_some(
        &self,
        items: &mut std::collections::VecDeque<T>,
        bound: usize,
    ) -> Result<usize, PopFail> {
        match self.claim_tail(items.len(), bound) {
            Ok((block, offset, k)) => {
                for (i, item) in items.drain(..k).enumerate() {
                    // SAFETY: the claim gave us slots `offset..offset + k` of `block`.
                    unsafe { Self::write(block, offset + i, item) };
                }
                Ok(k)
            }
            Err(Claim::Full) => Err(PopFail::Empty),
            Err(Claim::Shut) => Err(PopFail::Shut),
        }
    }

    /// Claims up to `want` (at least one) consecutive slots of one block for writing, within
    /// `bound`: the block, the first slot's offset and how many.
    #[inline]
    fn claim_tail(
        &self,
        want: usize,
        bound: usize,
    ) -> Result<(*mut Block<T>, usize, usize), Claim> {
        debug_assert!(want > 0);
        let mut backoff = Backoff::new();
        let mut tail = self.tail.index.load(Ordering::Acquire);
        let mut block = self.tail.block.load(Ordering::Acquire);
        let mut next_block: Option<Box<Block<T>>> = None;
        loop {
            if tail & SHUT != 0 {
                return Err(Claim::Shut);
            }
            let offset = (tail >> SHIFT) % LAP;
            if offset == BLOCK_CAP {
                // Another put is installing the next block.
                backoff.snooze();
                tail = self.tail.index.load(Ordering::Acquire);
                block = self.tail.block.load(Ordering::Acquire);
                continue;
            }
            let mut k = want.min(BLOCK_CAP - offset);
            if bound != usize::MAX {
                k = k.min(self.room(tail, bound));
                if k == 0 {
                    return Err(Claim::Full);
                }
            }
            // About to fill this block: have its successor ready before claiming, so the
            // claim-to-link window (in which other puts wait) is as short as can be.
            if offset + k == BLOCK_CAP && next_block.is_none() {
                next_block = Some(Block::new());
            }
            if block.is_null() {
                // The very first put installs the first block.
                let new = Box::into_raw(Block::new());
                match self.tail.block.compare_exchange(
                    block,
                    new,
                    Ordering::Release,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        self.head.block.store(new, Ordering::Release);
                        block = new;
                    }
                    Err(current) => {
                        // SAFETY: `new` was never shared; it came from `Box::into_raw`.
                        next_block = Some(unsafe { Box::from_raw(new) });
                        block = current;
                        tail = self.tail.index.load(Ordering::Acquire);
                        continue;
                    }
                }
            }
            let new_tail = tail + (k << SHIFT);
            match self.tail.index.compare_exchange_weak(
                tail,
                new_tail,
                Ordering::SeqCst,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if offset + k == BLOCK_CAP {
                        let next = Box::into_raw(next_block.take().expect("allocated above"));
                        self.tail.block.store(next, Ordering::Release);
                        self.tail.index.fetch_add(1 << SHIFT, Ordering::Release);
                        // SAFETY: the block lives until its every slot is read, and ours
                        // are not written yet.
                        unsafe { (*block).next.store(next, Ordering::Release) };
                    }
                    return Ok((block, offset, k));
                }
                Err(current) => {
                    tail = current;
                    block = self.tail.block.load(Ordering::Acquire);
                    backoff.spin();
                }
            }
        }
    }

    /// Writes `item` into a claimed slot.
    ///
    /// # Safety
    /// Slot `offset` of `block` was claimed by this thread with [`claim_tail`] and not
    /// written yet.
    #[inline]
    unsafe fn write(block: *mut Block<T>, offset: usize, item: T) {
        // SAFETY: the caller's claim makes the slot ours; the block cannot be freed before
        // this slot is read, which waits for the `WRITE` bit set below.
        unsafe {
            let slot = &(*block).slots[offset];
            slot.item.with_mut(|p| (*p).write(item));
            slot.state.fetch_or(WRITE, Ordering::Release);
        }
    }

    /// Whether a put at `tail` is within `bound`, reading `head` only if the cached view of
    /// it says the list may be full: the free places (0 if full).
    #[inline]
    fn room(&self, tail: usize, bound: usize) -> usize {
        let seen = self.tail.head_seen.load(Ordering::Relaxed);
        let len = count_sub(count(tail), count(seen));
        if len < bound {
            return bound - len;
        }
        let head = self.head.index.load(Ordering::SeqCst);
        self.tail
            .head_seen
            .store(head & !HAS_NEXT, Ordering::Relaxed);
        bound.saturating_sub(count_sub(count(tail), count(head)))
    }

    /// Takes the oldest item.
    ///
    /// The claim is a `SeqCst` read-modify-write of `head`: a putter that registers to
    /// sleep on a full queue and then reads `head` either sees it, or this get's later read
    /// of the sleeping putters sees the putter.
    #[inline]
    pub(crate) fn pop(&self) -> Result<T, PopFail> {
        let (block, offset, _) = self.claim_head(1)?;
        // SAFETY: the claim gave us this one slot to read.
        Ok(unsafe { Self::read(block, offset) })
    }

    /// Takes up to `n` (at least one) of the oldest items, as many as one claim of `head`
    /// can take (the rest of the current block at most), onto `out`; returns how many.
    pub(crate) fn pop_some(&self, n: usize, out: &mut Vec<T>) -> Result<usize, PopFail> {
        let (block, offset, k) = self.claim_head(n)?;
        for i in 0..k {
            // SAFETY: the claim gave us slots `offset..offset + k`, read here in order, so
            // each is handled as `k` single gets would.
            out.push(unsafe { Self::read(block, offset + i) });
        }
        Ok(k)
    }

    /// Claims up to `want` (at least one) consecutive queued slots of one block for reading.
    #[inline]
    fn claim_head(&self, want: usize) -> Result<(*mut Block<T>, usize, usize), PopFail> {
        debug_assert!(want > 0);
        let mut backoff = Backoff::new();
        let mut head = self.head.index.load(Ordering::Acquire);
        let mut block = self.head.block.load(Ordering::Acquire);
        loop {
            let offset = (head >> SHIFT) % LAP;
            if offset == BLOCK_CAP {
                // Another get is moving `head` to the next block.
                backoff.snooze();
                head = self.head.index.load(Ordering::Acquire);
                block = self.head.block.load(Ordering::Acquire);
                continue;
            }
            let mut k = want.min(BLOCK_CAP - offset);
            let mut has_next = head & HAS_NEXT != 0;
            if !has_next {
                let tail = self.tail.index.load(Ordering::SeqCst);
                if head >> SHIFT == tail >> SHIFT {
                    return Err(if tail & SHUT != 0 {
                        PopFail::Shut
                    } else {
                        PopFail::Empty
                    });
                }
                if (head >> SHIFT) / LAP != (tail >> SHIFT) / LAP {
                    // Head and tail in different blocks: every slot left here is claimed,
                    // and later gets in this block need not look at `tail`.
                    has_next = true;
                } else {
                    k = k.min((tail >> SHIFT) - (head >> SHIFT));
                }
            }
            if block.is_null() {
                // The first put is installing the first block.
                backoff.snooze();
                head = self.head.index.load(Ordering::Acquire);
                block = self.head.block.load(Ordering::Acquire);
                continue;
            }
            let new_head = ((head & !HAS_NEXT) + (k << SHIFT)) | usize::from(has_next);
            match self.head.index.compare_exchange_weak(
                head,
                new_head,
                Ordering::SeqCst,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if offset + k == BLOCK_CAP {
                        // SAFETY: the block lives until its every slot is read (ours are
                        // not), and the put that claimed its last slot links the next.
                        unsafe {
                            let next = (*block).wait_next();
                            let mut next_index = (new_head & !HAS_NEXT) + (1 << SHIFT);
                            if !(*next).next.load(Ordering::Relaxed).is_null() {
                                next_index |= HAS_NEXT;
                            }
                            self.head.block.store(next, Ordering::Release);
                            self.head.index.store(next_index, Ordering::Release);
                        }
                    }
                    return Ok((block, offset, k));
                }
                Err(current) => {
                    head = current;
                    block = self.head.block.load(Ordering::Acquire);
                    backoff.spin();
                }
            }
        }
    }

    /// Reads a claimed slot, waiting for its put to finish writing, and frees the block if
    /// this was its last unread slot.
    ///
    /// # Safety
    /// Slot `offset` of `block` was claimed by this thread with [`claim_head`], not read
    /// yet; a thread holding several claimed slots of a block reads them in order.
    #[inline]
    unsafe fn read(block: *mut Block<T>, offset: usize) -> T {
        // SAFETY: the caller's claim makes the slot ours to read once written; the block
        // lives until every slot is read, and `destroy` runs when this one is the last.
        unsafe {
            let slot = &(*block).slots[offset];
            slot.wait_write();
            let item = slot.item.with(|p| (*p).assume_init_read());
            if offset + 1 == BLOCK_CAP {
                Block::destroy(block, 0);
            } else if slot.state.fetch_or(READ, Ordering::AcqRel) & DESTROY != 0 {
                Block::destroy(block, offset + 1);
            }
            item
        }
    }

    /// Whether no item is claimed for reading: `head` has caught up with `tail` (an item
    /// being written counts as there). `SeqCst`, for the sleepers' validation.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        let tail = self.tail.index.load(Ordering::SeqCst);
        let head = self.head.index.load(Ordering::SeqCst);
        head >> SHIFT == tail >> SHIFT
    }

    /// Items queued (claimed by a put and not by a get): a snapshot.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        loop {
            let tail = self.tail.index.load(Ordering::SeqCst);
            let head = self.head.index.load(Ordering::SeqCst);
            // A consistent pair: `tail` unchanged while `head` was read.
            if self.tail.index.load(Ordering::SeqCst) == tail {
                return count_sub(count(tail), count(head));
            }
        }
    }

    /// Every put ever made, modulo [`COUNT_MOD`] (the unfinished-task count starts here).
    #[inline]
    pub(crate) fn puts(&self) -> usize {
        count(self.tail.index.load(Ordering::SeqCst))
    }

    /// Shuts the list: from now on every put fails. `true` if this call did it.
    pub(crate) fn shut(&self) -> bool {
        self.tail.index.fetch_or(SHUT, Ordering::SeqCst) & SHUT == 0
    }

    /// Whether [`shut`](Self::shut) was called.
    #[inline]
    pub(crate) fn is_shut(&self) -> bool {
        self.tail.index.load(Ordering::SeqCst) & SHUT != 0
    }
}

impl<T, P, C> Drop for List<T, P, C> {
    fn drop(&mut self) {
        // (Plain loads: `&mut self` excludes every other access; loom has no `get_mut`.)
        let tail = self.tail.index.load(Ordering::Relaxed) & !SHUT;
        let mut head = self.head.index.load(Ordering::Relaxed) & !HAS_NEXT;
        let mut block = self.head.block.load(Ordering::Relaxed);
        // SAFETY: `&mut self`: no put or get is running, so every claimed slot is written
        // and unread between `head` and `tail`, and each block from the head block on is
        // owned by the list.
        unsafe {
            while head >> SHIFT != tail >> SHIFT {
                let offset = (head >> SHIFT) % LAP;
                if offset < BLOCK_CAP {
                    let slot = &(*block).slots[offset];
                    slot.item.with_mut(|p| (*p).assume_init_drop());
                } else {
                    let next = (*block).next.load(Ordering::Relaxed);
                    drop(Box::from_raw(block));
                    block = next;
                }
                head = head.wrapping_add(1 << SHIFT);
            }
            if !block.is_null() {
                drop(Box::from_raw(block));
            }
        }
    }
}

#[cfg(all(test, not(tandem_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn fifo_across_blocks_and_counts() {
        let list = List::new((), ());
        assert_eq!(list.pop(), Err(PopFail::Empty));
        for i in 0..1000 {
            list.push(i, usize::MAX).unwrap();
        }
        assert_eq!(list.len(), 1000);
        assert_eq!(list.puts(), 1000);
        for i in 0..1000 {
            assert_eq!(list.pop(), Ok(i));
        }
        assert!(list.is_empty());
        assert_eq!(list.pop(), Err(PopFail::Empty));
    }

    #[test]
    fn bound_and_shut() {
        let list = List::new((), ());
        for i in 0..40 {
            list.push(i, 40).unwrap();
        }
        assert!(matches!(list.push(99, 40), Err(PushFail::Full(99))));
        list.push(99, usize::MAX).unwrap(); // forced: one over
        assert_eq!(list.len(), 41);
        assert_eq!(list.pop(), Ok(0));
        assert!(list.shut());
        assert!(!list.shut());
        assert!(matches!(list.push(7, usize::MAX), Err(PushFail::Shut(7))));
        for i in 1..40 {
            assert_eq!(list.pop(), Ok(i));
        }
        assert_eq!(list.pop(), Ok(99));
        assert_eq!(list.pop(), Err(PopFail::Shut));
    }

    #[test]
    fn batches_claim_within_a_block() {
        let list = List::new((), ());
        let mut items: std::collections::VecDeque<u32> = (0..100).collect();
        // The first claim fills the first block, the next ones a block each.
        assert_eq!(list.push_some(&mut items, usize::MAX), Ok(BLOCK_CAP));
        assert_eq!(list.push_some(&mut items, usize::MAX), Ok(BLOCK_CAP));
        assert_eq!(list.push_some(&mut items, 70), Ok(70 - 2 * BLOCK_CAP));
        assert_eq!(list.push_some(&mut items, 70), Err(PopFail::Empty), "full");
        assert_eq!(list.len(), 70);
        let mut out = Vec::new();
        assert_eq!(list.pop_some(5, &mut out), Ok(5));
        assert_eq!(list.pop_some(100, &mut out), Ok(BLOCK_CAP - 5));
        while list.pop_some(100, &mut out).is_ok() {}
        assert_eq!(out, (0..70).collect::<Vec<_>>());
        assert!(list.shut());
        assert_eq!(list.push_some(&mut items, usize::MAX), Err(PopFail::Shut));
        assert_eq!(items.len(), 30, "nothing taken from a refused batch");
    }

    #[test]
    fn drop_frees_queued_items() {
        let item = Arc::new(());
        let list = List::new((), ());
        for _ in 0..100 {
            list.push(Arc::clone(&item), usize::MAX).unwrap();
        }
        for _ in 0..45 {
            drop(list.pop().unwrap());
        }
        drop(list);
        assert_eq!(Arc::strong_count(&item), 1);
    }

    #[test]
    fn modular_counts() {
        assert_eq!(count_sub(3, 5), COUNT_MOD - 2);
        assert_eq!(count_add(COUNT_MOD - 1, 3), 2);
        assert_eq!(count_sub(count_add(COUNT_MOD - 1, 3), COUNT_MOD - 1), 3);
        // The count of the index just below the wrap is the last count before COUNT_MOD.
        assert_eq!(count(usize::MAX & !SHUT), 0);
        assert_eq!(count((usize::MAX & !SHUT) - (1 << SHIFT)), COUNT_MOD - 1);
    }

    #[test]
    fn mpmc_nothing_lost_or_duplicated() {
        let list = Arc::new(List::new((), ()));
        const PER: usize = 20_000;
        let seen = std::thread::scope(|s| {
            for p in 0..2 {
                let list = &list;
                s.spawn(move || {
                    for i in 0..PER {
                        list.push(p * PER + i, 64).unwrap_or_else(|_| {
                            // Full: retry until there is room.
                            let mut item = p * PER + i;
                            loop {
                                match list.push(item, 64) {
                                    Ok(()) => break,
                                    Err(PushFail::Full(back)) => {
                                        item = back;
                                        std::thread::yield_now();
                                    }
                                    Err(PushFail::Shut(_)) => unreachable!(),
                                }
                            }
                        });
                    }
                });
            }
            let getters: Vec<_> = (0..2)
                .map(|_| {
                    let list = &list;
                    s.spawn(move || {
                        let mut got = Vec::new();
                        while got.len() < PER {
                            match list.pop() {
                                Ok(x) => got.push(x),
                                Err(_) => std::thread::yield_now(),
                            }
                        }
                        got
                    })
                })
                .collect();
            getters
                .into_iter()
                .flat_map(|g| g.join().unwrap())
                .collect::<Vec<_>>()
        });
        let mut sorted = seen;
        sorted.sort_unstable();
        assert_eq!(sorted, (0..2 * PER).collect::<Vec<_>>());
    }
}
