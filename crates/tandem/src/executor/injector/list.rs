//! The pool's job list: the lock-free push for submitters and the pop for workers (one at
//! a time, under `consumer`), as one more `impl Injector` over the fields it owns.
//!
//! # The queue
//! A linked list of blocks of [`BLOCK_CAP`] slots (crossbeam-channel's unbounded "list"
//! flavour, simplified: one consumer at a time). The tail index counts slots claimed; bit 0
//! of it (`MARK_BIT`) means closed. Index positions run in laps of [`LAP`] = `BLOCK_CAP + 1`;
//! the last position of a lap is never a slot: a tail there means "the next block is being
//! installed".
//! - **Push** (any thread): claim a slot by a compare-exchange on the tail index (failing if
//!   closed); the claimer of a block's last slot installs the next block (tail block
//!   pointer, then index past the gap, then the old block's `next`); then write the job and
//!   set the slot's `written` flag. A pusher never touches a block after setting `written`.
//! - **Pop** (workers, under `consumer`, so one at a time): empty when the head index
//!   equals the tail's; otherwise wait for the slot's `written` (its pusher is between claim
//!   and write), take the job, and after a block's last slot follow `next` (set before that
//!   slot was written) and free the block: every slot of it was written and read, and a
//!   pusher with a stale block pointer fails its compare-exchange, since the index moved on.

use std::mem::MaybeUninit;
use std::ptr;

use super::{Injector, Job};
use crate::primitive::atomic::{AtomicBool, AtomicPtr, Ordering};
use crate::primitive::{spin_loop, yield_now, UnsafeCell};

/// Slots per block (two under loom, so the models cross block boundaries).
pub(super) const BLOCK_CAP: usize = if cfg!(tandem_loom) { 2 } else { 31 };
/// Index positions per block: the slots, then one position meaning "installing the next".
pub(super) const LAP: usize = BLOCK_CAP + 1;
/// Index units are `1 << SHIFT`; the low bit is `MARK_BIT`.
pub(super) const SHIFT: usize = 1;
/// Set in the tail index once the queue is closed.
pub(super) const MARK_BIT: usize = 1;

pub(super) struct Slot {
    job: UnsafeCell<MaybeUninit<Job>>,
    written: AtomicBool,
}

pub(super) struct Block {
    next: AtomicPtr<Block>,
    slots: [Slot; BLOCK_CAP],
}

impl Block {
    /// Makes an emptied block (every slot read) ready to be installed again.
    fn reset(&mut self) {
        // Plain stores in effect (we own the block); atomics' `get_mut` is not in loom.
        self.next.store(ptr::null_mut(), Ordering::Relaxed);
        for slot in &self.slots {
            slot.written.store(false, Ordering::Relaxed);
        }
    }

    pub(super) fn new() -> Box<Block> {
        Box::new(Block {
            next: AtomicPtr::new(ptr::null_mut()),
            slots: std::array::from_fn(|_| Slot {
                job: UnsafeCell::new(MaybeUninit::uninit()),
                written: AtomicBool::new(false),
            }),
        })
    }
}

/// Jobs pushed before index `index` (the lap gaps are not slots).
#[inline]
pub(super) fn count(index: usize) -> usize {
    let i = index >> SHIFT;
    i - i / LAP
}

/// The consumers' end, behind `Injector::consumer`.
pub(super) struct Head {
    pub(super) index: usize,
    pub(super) block: *mut Block,
}

// SAFETY: the block pointer is only dereferenced by the consumer holding the lock.
unsafe impl Send for Head {}

/// Why `try_pop` found nothing.
pub(super) enum Empty {
    Open,
    Closed,
}

impl Injector {
    /// Jobs queued (a snapshot).
    pub(crate) fn len(&self) -> usize {
        let head = self.head_index.load(Ordering::Relaxed);
        let tail = self.tail_index.load(Ordering::Relaxed) & !MARK_BIT;
        count(tail).saturating_sub(count(head))
    }

    /// Whether jobs are queued or the queue is closed: a worker must not sleep.
    #[inline]
    pub(super) fn has_news(&self) -> bool {
        let tail = self.tail_index.load(Ordering::SeqCst);
        tail & MARK_BIT != 0 || tail >> SHIFT != self.head_index.load(Ordering::Relaxed) >> SHIFT
    }

    /// The lock-free push (module docs).
    pub(super) fn push_job(&self, job: Job) -> Result<(), Job> {
        let mut tail = self.tail_index.load(Ordering::Acquire);
        let mut block = self.tail_block.load(Ordering::Acquire);
        let mut next_block: Option<Box<Block>> = None;
        let mut spins = 0u32;
        loop {
            if tail & MARK_BIT != 0 {
                return Err(job);
            }
            let offset = (tail >> SHIFT) % LAP;
            if offset == BLOCK_CAP {
                // Another pusher is installing the next block.
                backoff(&mut spins);
                tail = self.tail_index.load(Ordering::Acquire);
                block = self.tail_block.load(Ordering::Acquire);
                continue;
            }
            if offset + 1 == BLOCK_CAP && next_block.is_none() {
                next_block = Some(self.fresh_block());
            }
            match self.tail_index.compare_exchange_weak(
                tail,
                tail + (1 << SHIFT),
                Ordering::SeqCst,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if offset + 1 == BLOCK_CAP {
                        let next = Box::into_raw(next_block.take().expect("allocated above"));
                        self.tail_block.store(next, Ordering::Release);
                        self.tail_index.fetch_add(1 << SHIFT, Ordering::Release);
                        // SAFETY: `block` is the tail block our claim was in: it cannot be
                        // freed before its last slot (ours) is written, below.
                        unsafe { (*block).next.store(next, Ordering::Release) };
                    }
                    // SAFETY: we claimed slot `offset` of `block` (the block the index
                    // pointed into, loaded after the index); only we write it, and the
                    // consumer reads it only after `written`.
                    unsafe {
                        let slot = &(*block).slots[offset];
                        slot.job.with_mut(|p| p.write(MaybeUninit::new(job)));
                        slot.written.store(true, Ordering::Release);
                    }
                    return Ok(());
                }
                Err(actual) => {
                    tail = actual;
                    block = self.tail_block.load(Ordering::Acquire);
                    spin_loop();
                }
            }
        }
    }

    /// A block to install: the spare if there is one, else a new one.
    pub(super) fn fresh_block(&self) -> Box<Block> {
        let spare = self.spare.swap(ptr::null_mut(), Ordering::AcqRel);
        if spare.is_null() {
            return Block::new();
        }
        // SAFETY: the consumer put it there after reading every slot; nobody else holds
        // it, and the swap (acquire) saw the consumer's reads complete.
        let mut block = unsafe { Box::from_raw(spare) };
        block.reset();
        block
    }

    /// Takes the next job; the caller holds `consumer` (`head`).
    ///
    /// The head slot's `written` flag is checked first: while jobs are queued, a worker
    /// never reads the tail index, whose cache line the submitters keep writing.
    pub(super) fn try_pop(&self, head: &mut Head) -> Result<Job, Empty> {
        let offset = (head.index >> SHIFT) % LAP;
        let block = head.block;
        // SAFETY: the head block is live: only the consumer frees blocks, after leaving them.
        let slot = unsafe { &(*block).slots[offset] };
        if !slot.written.load(Ordering::Acquire) {
            let tail = self.tail_index.load(Ordering::SeqCst);
            if head.index >> SHIFT == tail >> SHIFT {
                return Err(if tail & MARK_BIT != 0 {
                    Empty::Closed
                } else {
                    Empty::Open
                });
            }
            // Claimed, not yet written: its pusher is between the two steps.
            let mut spins = 0u32;
            while !slot.written.load(Ordering::Acquire) {
                backoff(&mut spins);
            }
        }
        // SAFETY: the slot is written (acquire) and not read before: the head only moves
        // forward, under the consumer lock.
        let job = slot.job.with(|p| unsafe { p.read().assume_init() });
        let mut next_index = head.index + (1 << SHIFT);
        if offset + 1 == BLOCK_CAP {
            // SAFETY: `next` was set before the last slot was written (seen above); every
            // slot of `block` has now been read and no pusher touches it anymore.
            unsafe {
                let next = (*block).next.load(Ordering::Acquire);
                debug_assert!(!next.is_null());
                head.block = next;
                let old = self.spare.swap(block, Ordering::AcqRel);
                if !old.is_null() {
                    drop(Box::from_raw(old));
                }
            }
            next_index += 1 << SHIFT; // skip the lap's gap
        }
        head.index = next_index;
        self.head_index.store(next_index, Ordering::Relaxed);
        Ok(job)
    }

    /// Takes every queued job (to cancel or fail them).
    pub(crate) fn drain(&self) -> Vec<Job> {
        let mut head = self.consumer.acquire();
        let mut jobs = Vec::new();
        while let Ok(job) = self.try_pop(&mut head) {
            jobs.push(job);
        }
        jobs
    }
}

/// Waits a moment for another thread's step in progress: spin, then yield.
#[inline]
fn backoff(spins: &mut u32) {
    if *spins < 6 {
        for _ in 0..1 << *spins {
            spin_loop();
        }
        *spins += 1;
    } else {
        yield_now();
    }
}
