//! The engine under the process queues: [`QueueState`] and its ring of length-prefixed
//! records in shared memory, typed by `T` in `Engine<T>`.
//!
//! # The ring
//! The segment holds the state below, then `capacity` bytes of ring. A record is a 4-byte
//! little-endian length and the item's encoding (serde + postcard), wrapping around the end
//! of the ring. `head` and `tail` are byte counters that only grow (64-bit: they never wrap),
//! so `tail - head` is the bytes in use.
//!
//! Items are encoded before the lock is taken and decoded after it is released: under the
//! lock a put only copies bytes in, a get only copies bytes out. The lock is the robust
//! process lock (`robust.rs`). Every change under it is journaled: the old `head`, `tail`,
//! item count, unfinished count and the taker's slot are saved first, and the next taker of
//! a lock whose holder died rolls them back. So a producer killed mid-put loses only its own
//! item (its half-written record lies beyond the restored `tail`), a consumer killed mid-get
//! loses nothing (its record is still there), and a consumer killed after a get loses at
//! most the item it took. Nobody is left holding the lock.
//!
//! # Waiting
//! Getters sleep on `not_empty`, putters on `not_full`, joiners on `all_done`: sequence
//! words bumped under the lock, woken only when a sleeper is counted. A getter that gives up
//! (timeout) while items remain passes its wake-up on, so a wake is never swallowed.

use crate::process::codec;
use crate::process::robust::{Holders, RobustLock, Taken, SLICE};
use crate::process::shared::{Shared, SharedState};
use crate::process::shm::Kind;
use crate::wait::{futex, Deadline};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::{GetError, PutError, TasksLost};

/// Bytes of a record's length prefix.
pub(super) const PREFIX: u64 = 4;

const OPEN: u32 = 0;
const SHUT: u32 = 1;

#[repr(C)]
pub(crate) struct QueueState {
    pub(super) lock: RobustLock,
    pub(super) head: AtomicU64,
    pub(super) tail: AtomicU64,
    pub(super) items: AtomicU64,
    /// Ring bytes.
    pub(super) capacity: AtomicU64,
    /// The item bound (0: none).
    pub(super) maxsize: AtomicU64,
    pub(super) not_empty: AtomicU32,
    pub(super) not_full: AtomicU32,
    pub(super) all_done: AtomicU32,
    pub(super) getters: AtomicU32,
    pub(super) putters: AtomicU32,
    pub(super) joiners: AtomicU32,
    pub(super) shutdown: AtomicU32,
    pub(super) joinable: AtomicU32,
    pub(super) unfinished: AtomicU64,
    /// Tasks abandoned by consumers that died (JoinableQueue).
    pub(super) lost: AtomicU64,
    /// The undo journal (see the module docs): 0 when nothing is in flight.
    pub(super) journal: AtomicU32,
    pub(super) journal_slot: AtomicU32,
    pub(super) journal_count: AtomicU32,
    pub(super) journal_head: AtomicU64,
    pub(super) journal_tail: AtomicU64,
    pub(super) journal_items: AtomicU64,
    pub(super) journal_unfinished: AtomicU64,
    /// The item type's tag, checked when another process maps the queue.
    pub(super) item_tag: AtomicU64,
    /// Per process: items got and not yet `task_done` (JoinableQueue).
    pub(super) takers: Holders,
}

// SAFETY: atomics only; zeroed it is an empty, open, unlocked queue (capacity is set by
// `create` before the handle exists).
unsafe impl SharedState for QueueState {
    const KIND: Kind = Kind::Queue;
    fn recover(&self, pid: u32) {
        self.lock.recover(pid);
        if self.joinable.load(Ordering::Relaxed) != 0 {
            let _guard = self.locked();
            self.reclaim_takers(Some(pid));
        }
    }
}

/// The lock of a queue, held; released on drop.
struct Held<'a>(&'a QueueState);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.lock.unlock();
    }
}

impl QueueState {
    /// Takes the lock, rolling back a dead holder's half-done change first.
    fn locked(&self) -> Held<'_> {
        if self.lock.lock(Deadline::NEVER) == Some(Taken::OwnerDied)
            && self.journal.load(Ordering::Relaxed) != 0
        {
            self.head
                .store(self.journal_head.load(Ordering::Relaxed), Ordering::Relaxed);
            self.tail
                .store(self.journal_tail.load(Ordering::Relaxed), Ordering::Relaxed);
            self.items.store(
                self.journal_items.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
            self.unfinished.store(
                self.journal_unfinished.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
            if let Some(i) = self.journal_slot.load(Ordering::Relaxed).checked_sub(1) {
                self.takers
                    .set_count(i as usize, self.journal_count.load(Ordering::Relaxed));
            }
            self.journal.store(0, Ordering::Release);
        }
        Held(self)
    }

    /// Under the lock: saves what the next change may touch.
    fn begin(&self, slot: Option<usize>) {
        self.journal_head
            .store(self.head.load(Ordering::Relaxed), Ordering::Relaxed);
        self.journal_tail
            .store(self.tail.load(Ordering::Relaxed), Ordering::Relaxed);
        self.journal_items
            .store(self.items.load(Ordering::Relaxed), Ordering::Relaxed);
        self.journal_unfinished
            .store(self.unfinished.load(Ordering::Relaxed), Ordering::Relaxed);
        match slot {
            Some(i) => {
                self.journal_count
                    .store(self.takers.count(i), Ordering::Relaxed);
                self.journal_slot.store(i as u32 + 1, Ordering::Relaxed);
            }
            None => self.journal_slot.store(0, Ordering::Relaxed),
        }
        self.journal.store(1, Ordering::Release);
    }

    /// Under the lock: the change is complete.
    fn commit(&self) {
        self.journal.store(0, Ordering::Release);
    }

    pub(super) fn is_shut(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst) != OPEN
    }

    /// Under the lock: whether a record of `len` payload bytes fits now.
    fn fits(&self, len: usize) -> bool {
        let max = self.maxsize.load(Ordering::Relaxed);
        let used = self.tail.load(Ordering::Relaxed) - self.head.load(Ordering::Relaxed);
        (max == 0 || self.items.load(Ordering::Relaxed) < max)
            && used + PREFIX + len as u64 <= self.capacity.load(Ordering::Relaxed)
    }

    /// Gives back the unfinished tasks of dead takers (`only`: that pid). Under the lock.
    fn reclaim_takers(&self, only: Option<u32>) {
        for i in self.takers.claim_dead(only) {
            let n = u64::from(self.takers.count(i));
            if n > 0 {
                self.begin(Some(i));
                let left = self.unfinished.load(Ordering::Relaxed).saturating_sub(n);
                self.unfinished.store(left, Ordering::Relaxed);
                self.lost.fetch_add(n, Ordering::Relaxed);
                self.takers.set_count(i, 0);
                self.commit();
                if left == 0 {
                    self.bump_all(&self.all_done, &self.joiners);
                }
            }
            self.takers.free(i);
        }
    }

    /// Under the lock: bumps a sequence word and wakes one sleeper, if one is counted.
    ///
    /// Only when someone sleeps: a sleeper counts itself and reads the word under the lock
    /// (see [`sleep`]), so a change made under the lock either sees it counted, or happened
    /// before it looked at the queue and so is no reason for it to sleep.
    fn bump_one(&self, word: &AtomicU32, sleepers: &AtomicU32) {
        if sleepers.load(Ordering::SeqCst) != 0 {
            word.fetch_add(1, Ordering::SeqCst);
            futex::wake(word, 1);
        }
    }

    /// Under the lock: [`bump_one`](Self::bump_one) for every sleeper.
    fn bump_all(&self, word: &AtomicU32, sleepers: &AtomicU32) {
        if sleepers.load(Ordering::SeqCst) != 0 {
            word.fetch_add(1, Ordering::SeqCst);
            futex::wake(word, u32::MAX);
        }
    }
}

/// Counts the caller as a sleeper and reads `word` — both under the lock — then releases
/// `held` and sleeps until the word changes or `deadline`; whether the deadline had not
/// passed.
fn sleep(held: Held<'_>, word: &AtomicU32, sleepers: &AtomicU32, deadline: Deadline) -> bool {
    sleepers.fetch_add(1, Ordering::SeqCst);
    let seq = word.load(Ordering::SeqCst);
    drop(held);
    let in_time = word.load(Ordering::SeqCst) != seq || futex::wait(word, seq, deadline);
    sleepers.fetch_sub(1, Ordering::SeqCst);
    in_time
}

/// The engine under the three queue types: the shared state and ring, typed by `T`.
pub(super) struct Engine<T> {
    pub(super) shared: Shared<QueueState, u8>,
    pub(super) _items: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Engine<T> {
    fn clone(&self) -> Self {
        Engine {
            shared: self.shared.clone(),
            _items: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> Engine<T> {
    pub(super) fn state(&self) -> &QueueState {
        self.shared.state()
    }

    pub(super) fn ring(&self) -> *mut u8 {
        self.shared.data_ptr()
    }

    /// Copies `bytes` into the ring at byte counter `at` (wrapping). Under the lock.
    pub(super) fn write(&self, at: u64, bytes: &[u8]) {
        let cap = self.state().capacity.load(Ordering::Relaxed);
        let start = (at % cap) as usize;
        let first = bytes.len().min(cap as usize - start);
        // SAFETY: under the queue's lock, the bytes from `tail` on are this writer's alone;
        // both copies stay within the ring's `cap` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ring().add(start), first);
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr().add(first),
                self.ring(),
                bytes.len() - first,
            );
        }
    }

    /// Copies `out.len()` bytes out of the ring from byte counter `at`. Under the lock.
    pub(super) fn read(&self, at: u64, out: &mut [u8]) {
        let cap = self.state().capacity.load(Ordering::Relaxed);
        let start = (at % cap) as usize;
        let first = out.len().min(cap as usize - start);
        // SAFETY: under the queue's lock, the bytes between `head` and `tail` are committed
        // records; both copies stay within the ring.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ring().add(start), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(
                self.ring(),
                out.as_mut_ptr().add(first),
                out.len() - first,
            );
        }
    }

    pub(super) fn encode(&self, item: T) -> Result<(Vec<u8>, T), PutError<T>> {
        match codec::encode_into(&item, Vec::new()) {
            Err(e) => Err(PutError::Encode { item, message: e.0 }),
            Ok((_, fds)) if !fds.is_empty() => Err(PutError::Encode {
                item,
                message: "it carries a process handle (a Connection, Lock, Value, ...), which \
                          cannot live in shared memory: send handles over a Connection"
                    .into(),
            }),
            Ok((bytes, _)) => {
                let limit =
                    self.state().capacity.load(Ordering::Relaxed) as usize - PREFIX as usize;
                if bytes.len() > limit {
                    return Err(PutError::TooLarge {
                        bytes: bytes.len(),
                        item,
                        limit,
                    });
                }
                Ok((bytes, item))
            }
        }
    }

    /// Under the lock: appends one record (it fits).
    pub(super) fn push(&self, bytes: &[u8]) {
        let s = self.state();
        let tail = s.tail.load(Ordering::Relaxed);
        self.write(tail, &(bytes.len() as u32).to_le_bytes());
        self.write(tail + PREFIX, bytes);
        s.tail
            .store(tail + PREFIX + bytes.len() as u64, Ordering::Relaxed);
        s.items
            .store(s.items.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        if s.joinable.load(Ordering::Relaxed) != 0 {
            s.unfinished
                .store(s.unfinished.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
    }

    /// Under the lock: takes the record at `head` (there is one).
    pub(super) fn pop(&self) -> Vec<u8> {
        let s = self.state();
        let head = s.head.load(Ordering::Relaxed);
        let mut prefix = [0u8; PREFIX as usize];
        self.read(head, &mut prefix);
        let mut bytes = vec![0u8; u32::from_le_bytes(prefix) as usize];
        self.read(head + PREFIX, &mut bytes);
        s.head
            .store(head + PREFIX + bytes.len() as u64, Ordering::Relaxed);
        s.items
            .store(s.items.load(Ordering::Relaxed) - 1, Ordering::Relaxed);
        bytes
    }

    pub(super) fn put(&self, item: T, deadline: Option<Deadline>) -> Result<(), PutError<T>> {
        let (bytes, item) = self.encode(item)?;
        let s = self.state();
        loop {
            let held = s.locked();
            if s.is_shut() {
                return Err(PutError::ShutDown(item));
            }
            if s.fits(bytes.len()) {
                s.begin(None);
                self.push(&bytes);
                s.commit();
                s.bump_one(&s.not_empty, &s.getters);
                return Ok(());
            }
            let Some(deadline) = deadline else {
                return Err(PutError::Full(item));
            };
            if deadline.has_passed() {
                return Err(PutError::Timeout(item));
            }
            if !sleep(held, &s.not_full, &s.putters, deadline) {
                // One last look, then give up (the item comes back).
                let _held = s.locked();
                if !s.is_shut() && s.fits(bytes.len()) {
                    s.begin(None);
                    self.push(&bytes);
                    s.commit();
                    s.bump_one(&s.not_empty, &s.getters);
                    return Ok(());
                }
                return Err(if s.is_shut() {
                    PutError::ShutDown(item)
                } else {
                    PutError::Timeout(item)
                });
            }
        }
    }

    /// Puts `items` in order, as many per lock as fit; the ones not put on failure.
    pub(super) fn put_many(&self, items: Vec<T>) -> Result<(), PutError<Vec<T>>> {
        let mut encoded = Vec::with_capacity(items.len());
        let mut items = items.into_iter();
        while let Some(item) = items.next() {
            match self.encode(item) {
                Ok(pair) => encoded.push(pair),
                Err(e) => {
                    let mut rest: Vec<T> = encoded.into_iter().map(|(_, t)| t).collect();
                    return Err(e.map(|t| {
                        rest.push(t);
                        rest.extend(items);
                        rest
                    }));
                }
            }
        }
        let s = self.state();
        let mut pending = encoded.into_iter().peekable();
        while pending.peek().is_some() {
            let held = s.locked();
            if s.is_shut() {
                return Err(PutError::ShutDown(pending.map(|(_, t)| t).collect()));
            }
            let mut put = 0;
            while let Some((bytes, _)) = pending.peek() {
                if !s.fits(bytes.len()) {
                    break;
                }
                s.begin(None);
                self.push(bytes);
                s.commit();
                pending.next();
                put += 1;
            }
            if put > 0 {
                if s.getters.load(Ordering::SeqCst) != 0 {
                    s.not_empty.fetch_add(1, Ordering::SeqCst);
                    futex::wake(&s.not_empty, put as u32);
                }
                drop(held);
                continue;
            }
            sleep(held, &s.not_full, &s.putters, Deadline::NEVER);
        }
        Ok(())
    }

    /// Takes up to `n` records (at least one), waiting until `deadline` (`None`: no wait).
    pub(super) fn get_records(
        &self,
        n: usize,
        deadline: Option<Deadline>,
    ) -> Result<Vec<Vec<u8>>, GetError> {
        let s = self.state();
        loop {
            let held = s.locked();
            let have = s.items.load(Ordering::Relaxed);
            if have > 0 {
                let joinable = s.joinable.load(Ordering::Relaxed) != 0;
                let slot = if joinable { s.takers.mine() } else { None };
                let take = (have as usize).min(n.max(1));
                s.begin(slot);
                let records: Vec<Vec<u8>> = (0..take).map(|_| self.pop()).collect();
                if let Some(i) = slot {
                    s.takers.set_count(i, s.takers.count(i) + take as u32);
                }
                s.commit();
                if take == 1 {
                    s.bump_one(&s.not_full, &s.putters);
                } else {
                    s.bump_all(&s.not_full, &s.putters);
                }
                if s.items.load(Ordering::Relaxed) > 0 {
                    // More left and others waiting: let one go on (no swallowed wake).
                    s.bump_one(&s.not_empty, &s.getters);
                }
                return Ok(records);
            }
            if s.is_shut() {
                return Err(GetError::ShutDown);
            }
            let Some(deadline) = deadline else {
                return Err(GetError::Empty);
            };
            if deadline.has_passed() {
                return Err(GetError::Timeout);
            }
            // A producer is often moments away: see its item without sleeping (and without
            // costing it a wake-up) if it comes within a few microseconds.
            drop(held);
            if futex::linger_until(|| s.items.load(Ordering::Acquire) > 0 || s.is_shut()) {
                continue;
            }
            let held = s.locked();
            if s.items.load(Ordering::Relaxed) > 0 || s.is_shut() {
                continue;
            }
            if !sleep(held, &s.not_empty, &s.getters, deadline) {
                if s.items.load(Ordering::SeqCst) > 0 {
                    // Items came as we gave up: take them (and so pass any wake on).
                    return self.get_records(n, None).map_err(|_| GetError::Timeout);
                }
                return Err(if s.is_shut() {
                    GetError::ShutDown
                } else {
                    GetError::Timeout
                });
            }
        }
    }

    pub(super) fn decode(records: Vec<Vec<u8>>) -> Result<Vec<T>, GetError> {
        records
            .iter()
            .map(|r| codec::decode::<T>(r, Vec::new()).map_err(|e| GetError::Decode(e.0)))
            .collect()
    }

    pub(super) fn get(&self, deadline: Option<Deadline>) -> Result<T, GetError> {
        let records = self.get_records(1, deadline)?;
        Ok(Self::decode(records)?.pop().expect("one record"))
    }

    pub(super) fn shutdown(&self, immediate: bool) -> Vec<T> {
        let s = self.state();
        let drained = {
            let _held = s.locked();
            s.shutdown.store(SHUT, Ordering::SeqCst);
            let mut drained = Vec::new();
            if immediate {
                s.begin(None);
                while s.items.load(Ordering::Relaxed) > 0 {
                    drained.push(self.pop());
                }
                if s.joinable.load(Ordering::Relaxed) != 0 {
                    // Python 3.13: an immediate shutdown settles the removed items' tasks.
                    let left = s
                        .unfinished
                        .load(Ordering::Relaxed)
                        .saturating_sub(drained.len() as u64);
                    s.unfinished.store(left, Ordering::Relaxed);
                }
                s.commit();
            }
            s.bump_all(&s.not_empty, &s.getters);
            s.bump_all(&s.not_full, &s.putters);
            s.bump_all(&s.all_done, &s.joiners);
            drained
        };
        drained
            .iter()
            .filter_map(|r| codec::decode::<T>(r, Vec::new()).ok())
            .collect()
    }

    pub(super) fn task_done(&self) -> Result<(), crate::queue::TaskDoneError> {
        let s = self.state();
        let _held = s.locked();
        let unfinished = s.unfinished.load(Ordering::Relaxed);
        if unfinished == 0 {
            return Err(crate::queue::TaskDoneError);
        }
        let slot = s.takers.mine();
        s.begin(slot);
        s.unfinished.store(unfinished - 1, Ordering::Relaxed);
        if let Some(i) = slot {
            s.takers.set_count(i, s.takers.count(i).saturating_sub(1));
        }
        s.commit();
        if unfinished == 1 {
            s.bump_all(&s.all_done, &s.joiners);
        }
        Ok(())
    }

    pub(super) fn join(&self, deadline: Deadline) -> Option<Result<(), TasksLost>> {
        let s = self.state();
        loop {
            let held = s.locked();
            if s.unfinished.load(Ordering::Relaxed) == 0 {
                let lost = s.lost.load(Ordering::Relaxed);
                return Some(if lost == 0 {
                    Ok(())
                } else {
                    Err(TasksLost { count: lost })
                });
            }
            if deadline.has_passed() {
                return None;
            }
            let slice = Deadline::after(SLICE);
            let until = match (deadline.instant(), slice.instant()) {
                (Some(d), Some(sl)) if d < sl => deadline,
                _ => slice,
            };
            if !sleep(held, &s.all_done, &s.joiners, until) {
                // A slice passed: did a consumer die holding tasks?
                let _held = s.locked();
                s.reclaim_takers(None);
            }
        }
    }
}
