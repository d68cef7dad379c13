//! `Queue`, `JoinableQueue` and `SimpleQueue` across processes (Python's
//! `multiprocessing.Queue`, `JoinableQueue`, `SimpleQueue`): a ring of length-prefixed
//! records in shared memory, with no feeder thread.
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

use super::codec;
use super::robust::{Holders, RobustLock, Taken, SLICE};
use super::shared::{Shared, SharedState};
use super::shm::Kind;
use crate::wait::{futex, Deadline};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// The ring's size unless [`QueueBuilder::capacity_bytes`] says otherwise: 16 MiB. Pages
/// are allocated only as the ring first reaches them.
pub const DEFAULT_CAPACITY_BYTES: usize = 16 << 20;
/// Bytes of a record's length prefix.
const PREFIX: u64 = 4;

const OPEN: u32 = 0;
const SHUT: u32 = 1;

#[repr(C)]
pub(crate) struct QueueState {
    lock: RobustLock,
    head: AtomicU64,
    tail: AtomicU64,
    items: AtomicU64,
    /// Ring bytes.
    capacity: AtomicU64,
    /// The item bound (0: none).
    maxsize: AtomicU64,
    not_empty: AtomicU32,
    not_full: AtomicU32,
    all_done: AtomicU32,
    getters: AtomicU32,
    putters: AtomicU32,
    joiners: AtomicU32,
    shutdown: AtomicU32,
    joinable: AtomicU32,
    unfinished: AtomicU64,
    /// Tasks abandoned by consumers that died (JoinableQueue).
    lost: AtomicU64,
    /// The undo journal (see the module docs): 0 when nothing is in flight.
    journal: AtomicU32,
    journal_slot: AtomicU32,
    journal_count: AtomicU32,
    journal_head: AtomicU64,
    journal_tail: AtomicU64,
    journal_items: AtomicU64,
    journal_unfinished: AtomicU64,
    /// The item type's tag, checked when another process maps the queue.
    item_tag: AtomicU64,
    /// Per process: items got and not yet `task_done` (JoinableQueue).
    takers: Holders,
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

    fn is_shut(&self) -> bool {
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
struct Engine<T> {
    shared: Shared<QueueState, u8>,
    _items: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Engine<T> {
    fn clone(&self) -> Self {
        Engine {
            shared: self.shared.clone(),
            _items: PhantomData,
        }
    }
}

/// Why a put failed; the item comes back in every case ([`PutError::into_inner`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum PutError<T> {
    /// The queue is full (`try_put`).
    Full(T),
    /// The queue stayed full until the timeout (`put_timeout`).
    Timeout(T),
    /// The queue is shut down (Python 3.13's `ShutDown`).
    ShutDown(T),
    /// The item could not be encoded, or carries a process handle (a `Connection`, a `Lock`,
    /// …): handles cannot live in shared memory; send those over a `Connection`.
    Encode {
        /// The item.
        item: T,
        /// Why.
        message: String,
    },
    /// The encoded item is larger than the ring can ever hold.
    TooLarge {
        /// The item.
        item: T,
        /// Its encoded size in bytes.
        bytes: usize,
        /// The most one item may take: the ring's capacity less a 4-byte prefix.
        limit: usize,
    },
}

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(t) | PutError::Timeout(t) | PutError::ShutDown(t) => t,
            PutError::Encode { item, .. } | PutError::TooLarge { item, .. } => item,
        }
    }

    /// Whether the queue was full (no wait, or until the timeout).
    pub fn is_full(&self) -> bool {
        matches!(self, PutError::Full(_) | PutError::Timeout(_))
    }

    /// Whether the queue was shut down.
    pub fn is_shutdown(&self) -> bool {
        matches!(self, PutError::ShutDown(_))
    }

    fn map<U>(self, f: impl FnOnce(T) -> U) -> PutError<U> {
        match self {
            PutError::Full(t) => PutError::Full(f(t)),
            PutError::Timeout(t) => PutError::Timeout(f(t)),
            PutError::ShutDown(t) => PutError::ShutDown(f(t)),
            PutError::Encode { item, message } => PutError::Encode {
                item: f(item),
                message,
            },
            PutError::TooLarge { item, bytes, limit } => PutError::TooLarge {
                item: f(item),
                bytes,
                limit,
            },
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("the queue is full; the item is handed back"),
            PutError::Timeout(_) => {
                f.write_str("the queue stayed full until the timeout; the item is handed back")
            }
            PutError::ShutDown(_) => f.write_str(
                "the queue is shut down and takes no more items; the item is handed back",
            ),
            PutError::Encode { message, .. } => {
                write!(
                    f,
                    "the item could not be encoded ({message}); it is handed back"
                )
            }
            PutError::TooLarge { bytes, limit, .. } => write!(
                f,
                "the item encodes to {bytes} bytes, more than the queue's ring can hold ({limit}): \
                 build the queue with a larger capacity_bytes, or send large data over a \
                 Connection; the item is handed back"
            ),
        }
    }
}

impl<T: fmt::Debug> std::error::Error for PutError<T> {}

/// Why a get returned no item.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GetError {
    /// The queue was empty (`try_get`).
    Empty,
    /// The queue stayed empty until the timeout.
    Timeout,
    /// The queue is shut down and drained (Python 3.13's `ShutDown`).
    ShutDown,
    /// The item could not be decoded as this queue's type (it was taken off the queue):
    /// both ends must use the same item type.
    Decode(String),
}

impl GetError {
    /// Whether the queue is shut down and drained.
    pub fn is_shutdown(&self) -> bool {
        matches!(self, GetError::ShutDown)
    }

    /// Whether the queue was empty (no wait, or until the timeout).
    pub fn is_empty(&self) -> bool {
        matches!(self, GetError::Empty | GetError::Timeout)
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Empty => f.write_str("the queue is empty"),
            GetError::Timeout => f.write_str("the queue stayed empty until the timeout"),
            GetError::ShutDown => {
                f.write_str("the queue is shut down and drained: no item will come")
            }
            GetError::Decode(e) => write!(
                f,
                "an item could not be decoded ({e}); it was taken off the queue: both ends must \
                 use the same item type"
            ),
        }
    }
}

impl std::error::Error for GetError {}

/// A [`JoinableQueue::join`] whose tasks were abandoned by consumer processes that died: the
/// join returned because none is left to wait for, but these were never marked done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TasksLost {
    /// How many tasks dead consumers took and never finished, since the queue was made.
    pub count: u64,
}

impl fmt::Display for TasksLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} task(s) were taken by consumer processes that died before task_done(): join \
             returned without them",
            self.count
        )
    }
}

impl std::error::Error for TasksLost {}

/// Settings for a process queue.
#[derive(Clone, Debug)]
pub struct QueueBuilder {
    maxsize: usize,
    capacity: usize,
}

impl Default for QueueBuilder {
    fn default() -> Self {
        QueueBuilder {
            maxsize: 0,
            capacity: DEFAULT_CAPACITY_BYTES,
        }
    }
}

impl QueueBuilder {
    /// The most items it holds (Python's `maxsize`; 0: no item bound).
    pub fn maxsize(mut self, maxsize: usize) -> Self {
        self.maxsize = maxsize;
        self
    }

    /// The ring's size in bytes (default [`DEFAULT_CAPACITY_BYTES`]): an item's encoding
    /// plus 4 bytes must fit, and puts wait while the ring is full even without `maxsize`.
    pub fn capacity_bytes(mut self, bytes: usize) -> Self {
        self.capacity = bytes;
        self
    }

    fn engine<T>(&self, joinable: bool) -> io::Result<Engine<T>> {
        if self.capacity <= PREFIX as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a queue's capacity_bytes must exceed {PREFIX} (each item takes a 4-byte \
                     prefix plus its encoding); got {}",
                    self.capacity
                ),
            ));
        }
        let (maxsize, capacity) = (self.maxsize as u64, self.capacity as u64);
        let shared = Shared::create_zeroed(
            |s: &QueueState| {
                s.capacity.store(capacity, Ordering::Relaxed);
                s.maxsize.store(maxsize, Ordering::Relaxed);
                s.joinable.store(u32::from(joinable), Ordering::Relaxed);
                s.item_tag
                    .store(super::shm::type_tag::<T>(), Ordering::Relaxed);
            },
            self.capacity,
        )?;
        Ok(Engine {
            shared,
            _items: PhantomData,
        })
    }

    /// Builds a [`Queue`].
    pub fn build<T>(&self) -> io::Result<Queue<T>> {
        Ok(Queue {
            engine: self.engine(false)?,
        })
    }

    /// Builds a [`JoinableQueue`].
    pub fn build_joinable<T>(&self) -> io::Result<JoinableQueue<T>> {
        Ok(JoinableQueue {
            engine: self.engine(true)?,
        })
    }
}

impl<T: Serialize + DeserializeOwned> Engine<T> {
    fn state(&self) -> &QueueState {
        self.shared.state()
    }

    fn ring(&self) -> *mut u8 {
        self.shared.data_ptr()
    }

    /// Copies `bytes` into the ring at byte counter `at` (wrapping). Under the lock.
    fn write(&self, at: u64, bytes: &[u8]) {
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
    fn read(&self, at: u64, out: &mut [u8]) {
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

    fn encode(&self, item: T) -> Result<(Vec<u8>, T), PutError<T>> {
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
    fn push(&self, bytes: &[u8]) {
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
    fn pop(&self) -> Vec<u8> {
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

    fn put(&self, item: T, deadline: Option<Deadline>) -> Result<(), PutError<T>> {
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
    fn put_many(&self, items: Vec<T>) -> Result<(), PutError<Vec<T>>> {
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
    fn get_records(&self, n: usize, deadline: Option<Deadline>) -> Result<Vec<Vec<u8>>, GetError> {
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

    fn decode(records: Vec<Vec<u8>>) -> Result<Vec<T>, GetError> {
        records
            .iter()
            .map(|r| codec::decode::<T>(r, Vec::new()).map_err(|e| GetError::Decode(e.0)))
            .collect()
    }

    fn get(&self, deadline: Option<Deadline>) -> Result<T, GetError> {
        let records = self.get_records(1, deadline)?;
        Ok(Self::decode(records)?.pop().expect("one record"))
    }

    fn shutdown(&self, immediate: bool) -> Vec<T> {
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

    fn task_done(&self) -> Result<(), crate::queue::TaskDoneError> {
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

    fn join(&self, deadline: Deadline) -> Option<Result<(), TasksLost>> {
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

/// The methods every process queue has.
macro_rules! queue_methods {
    () => {
        /// Puts `item`, waiting while the queue is full (Python's `put(item)`).
        ///
        /// # Errors
        /// [`PutError`], holding the item: shut down, or it cannot be encoded or is too large.
        pub fn put(&self, item: T) -> Result<(), PutError<T>> {
            self.engine.put(item, Some(Deadline::NEVER))
        }

        /// Puts `item` if there is room now (Python's `put_nowait`).
        #[doc(alias = "put_nowait")]
        pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
            self.engine.put(item, None)
        }

        /// Puts `item`, waiting at most `timeout` for room (Python's `put(item, timeout=t)`).
        pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
            self.engine.put(item, Some(Deadline::after(timeout)))
        }

        /// Puts every item in order, as many per lock as fit, waiting whenever the queue is
        /// full; on failure the error holds the items not put.
        pub fn put_many<I: IntoIterator<Item = T>>(
            &self,
            items: I,
        ) -> Result<(), PutError<Vec<T>>> {
            self.engine.put_many(items.into_iter().collect())
        }

        /// Takes the next item, waiting while the queue is empty (Python's `get()`).
        ///
        /// # Errors
        /// [`GetError::ShutDown`] once shut down and drained; [`GetError::Decode`] if the
        /// item is not a `T`.
        pub fn get(&self) -> Result<T, GetError> {
            self.engine.get(Some(Deadline::NEVER))
        }

        /// Takes the next item if there is one (Python's `get_nowait`).
        #[doc(alias = "get_nowait")]
        pub fn try_get(&self) -> Result<T, GetError> {
            self.engine.get(None)
        }

        /// Takes the next item, waiting at most `timeout` (Python's `get(timeout=t)`).
        pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
            self.engine.get(Some(Deadline::after(timeout)))
        }

        /// Takes up to `n` items at once, waiting for the first one (never for more).
        pub fn get_many(&self, n: usize) -> Result<Vec<T>, GetError> {
            if n == 0 {
                return Ok(Vec::new());
            }
            Engine::decode(self.engine.get_records(n, Some(Deadline::NEVER))?)
        }

        /// Takes up to `n` items, waiting at most `timeout` for the first one.
        pub fn get_many_timeout(&self, n: usize, timeout: Duration) -> Result<Vec<T>, GetError> {
            if n == 0 {
                return Ok(Vec::new());
            }
            Engine::decode(self.engine.get_records(n, Some(Deadline::after(timeout)))?)
        }

        /// Items queued now (Python's `qsize()`): a snapshot.
        #[doc(alias = "qsize")]
        pub fn len(&self) -> usize {
            self.engine.state().items.load(Ordering::Relaxed) as usize
        }

        /// Whether no item is queued now (Python's `empty()`).
        #[doc(alias = "empty")]
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// Shuts the queue down (Python 3.13's `shutdown(immediate)`): puts fail from now
        /// on; gets drain what is queued, then fail. With `immediate`, the queued items are
        /// removed at once and handed back (their tasks count as done), and every blocked
        /// caller in every process wakes.
        pub fn shutdown(&self, immediate: bool) -> Vec<T> {
            self.engine.shutdown(immediate)
        }

        /// Whether [`shutdown`](Self::shutdown) was called.
        pub fn is_shutdown(&self) -> bool {
            self.engine.state().is_shut()
        }

        /// The items, each taken with `get`, until the queue is shut down and drained (an
        /// item that fails to decode ends the iteration).
        pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
            std::iter::from_fn(move || self.get().ok())
        }
    };
}

/// Methods of the bounded queue types.
macro_rules! bounded_methods {
    () => {
        /// The item bound (Python's `maxsize`), `None` if there is none.
        pub fn maxsize(&self) -> Option<usize> {
            match self.engine.state().maxsize.load(Ordering::Relaxed) {
                0 => None,
                m => Some(m as usize),
            }
        }

        /// Whether the item bound is reached now (Python's `full()`).
        #[doc(alias = "full")]
        pub fn is_full(&self) -> bool {
            self.maxsize().is_some_and(|m| self.len() >= m)
        }

        /// The ring's size in bytes.
        pub fn capacity_bytes(&self) -> usize {
            self.engine.state().capacity.load(Ordering::Relaxed) as usize
        }
    };
}

/// Python's `multiprocessing.Queue(maxsize)`: a FIFO queue between processes, in shared
/// memory.
///
/// The vocabulary of [`queue::Queue`](crate::queue::Queue) — `put`, `try_put`,
/// `put_timeout`, `put_many`, `get`, `try_get`, `get_timeout`, `get_many`, `len`,
/// `is_empty`, `is_full`, `shutdown(immediate)` handing the items back, iteration until
/// shut down — for serde items. Clone the handle for threads; pass it in a child's
/// arguments or over a [`Connection`](super::Connection) for processes.
///
/// Unlike Python's, there is no feeder thread and no pipe: a put copies the encoded item
/// into a ring in shared memory and returns, so a child that puts and exits never waits for
/// a reader (Python documents a `join()` deadlock there), and an item is either in the
/// queue or handed back — never lost in a buffer. A process killed in `put` or `get` never
/// leaves the queue locked or torn (see the module's notes in the source: journaled
/// changes). Differences: an item must be encoded by serde and carry no process handle;
/// the ring's byte capacity ([`QueueBuilder::capacity_bytes`], 16 MiB by default) also
/// bounds the queue, so even an "unbounded" queue makes a put wait when the ring is full;
/// an item larger than the ring is refused ([`PutError::TooLarge`]), not split; no FIFO
/// hand-off between waiting processes (a waiting process may be overtaken by one that just
/// arrived).
///
/// # Examples
/// ```
/// tandem::process::init();
/// use tandem::process::{Process, Queue};
///
/// fn produce(q: Queue<String>) {
///     for i in 0..3 {
///         q.put(format!("item {i}")).unwrap();
///     }
/// }
///
/// let q = Queue::new()?;
/// Process::spawn(produce, q.clone())?.join()?;
/// q.shutdown(false); // no more puts: the loop below ends once the queue is drained
/// let got: Vec<String> = q.iter().collect();
/// assert_eq!(got, ["item 0", "item 1", "item 2"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Queue<T> {
    engine: Engine<T>,
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// An unbounded queue (bounded only by its ring's bytes).
    pub fn new() -> io::Result<Self> {
        QueueBuilder::default().build()
    }

    /// A queue of at most `maxsize` items (Python's `Queue(maxsize)`; 0: unbounded).
    pub fn bounded(maxsize: usize) -> io::Result<Self> {
        QueueBuilder::default().maxsize(maxsize).build()
    }

    queue_methods!();
    bounded_methods!();
}

impl Queue<()> {
    /// Settings: `maxsize` and the ring's byte capacity; `build::<T>()` or
    /// `build_joinable::<T>()` then.
    pub fn builder() -> QueueBuilder {
        QueueBuilder::default()
    }
}

/// Python's `multiprocessing.JoinableQueue(maxsize)`: a process [`Queue`] that counts
/// unfinished tasks: every put adds one, [`task_done`](JoinableQueue::task_done) removes
/// one, [`join`](JoinableQueue::join) waits for none to be left.
///
/// A consumer process that dies holding tasks it got but never finished does not hang
/// `join`: its tasks are written off (at once if it was a tandem child of this process,
/// otherwise within about 10 ms of a joiner noticing), and `join` then reports them as
/// [`TasksLost`]. Call `task_done` in the process that got the item (that is whose tasks are
/// counted per process).
///
/// # Examples
/// ```
/// tandem::process::init();
/// use tandem::process::{JoinableQueue, Process};
///
/// fn worker(q: JoinableQueue<u32>) {
///     while let Ok(n) = q.get() {
///         let _ = n * 2;
///         q.task_done().unwrap();
///     }
/// }
///
/// let q = JoinableQueue::new()?;
/// let w = Process::spawn(worker, q.clone())?;
/// q.put_many(0..10).map_err(|e| e.to_string())?;
/// q.join()?; // every task done
/// q.shutdown(false);
/// w.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JoinableQueue<T> {
    engine: Engine<T>,
}

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// An unbounded joinable queue.
    pub fn new() -> io::Result<Self> {
        QueueBuilder::default().build_joinable()
    }

    /// A joinable queue of at most `maxsize` items.
    pub fn bounded(maxsize: usize) -> io::Result<Self> {
        QueueBuilder::default().maxsize(maxsize).build_joinable()
    }

    queue_methods!();
    bounded_methods!();

    /// Marks one got item done (Python's `task_done()`).
    ///
    /// # Errors
    /// [`TaskDoneError`](crate::queue::TaskDoneError) if no task is unfinished (Python's
    /// `ValueError`).
    pub fn task_done(&self) -> Result<(), crate::queue::TaskDoneError> {
        self.engine.task_done()
    }

    /// Waits until every item put has been marked done (Python's `join()`).
    ///
    /// # Errors
    /// [`TasksLost`] if some were never done because their consumer process died; the
    /// wait is over all the same.
    pub fn join(&self) -> Result<(), TasksLost> {
        self.engine.join(Deadline::NEVER).expect("no deadline")
    }

    /// [`join`](JoinableQueue::join) for at most `timeout`: `None` if tasks are still
    /// unfinished then.
    pub fn join_timeout(&self, timeout: Duration) -> Option<Result<(), TasksLost>> {
        self.engine.join(Deadline::after(timeout))
    }

    /// Items put and not yet done (Python's `unfinished_tasks`).
    pub fn unfinished_tasks(&self) -> usize {
        self.engine.state().unfinished.load(Ordering::Relaxed) as usize
    }
}

/// Python's `multiprocessing.SimpleQueue`: an unbounded process queue with `put`, `get`,
/// `is_empty` (Python's `empty()`) and the rest of [`Queue`]'s vocabulary. The same engine
/// as [`Queue`] (Python's is a pipe with a lock; tandem's has no pipe at all).
///
/// ```
/// use tandem::process::SimpleQueue;
///
/// let q = SimpleQueue::new()?;
/// q.put(1u8).unwrap();
/// assert_eq!(q.get().unwrap(), 1);
/// assert!(q.is_empty());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct SimpleQueue<T> {
    engine: Engine<T>,
}

impl<T: Serialize + DeserializeOwned> SimpleQueue<T> {
    /// A new, empty queue with the default ring.
    pub fn new() -> io::Result<Self> {
        Ok(SimpleQueue {
            engine: QueueBuilder::default().engine(false)?,
        })
    }

    queue_methods!();
}

macro_rules! queue_handle {
    ($($name:ident),*) => {$(
        impl<T> Clone for $name<T> {
            /// Another handle to the same queue.
            fn clone(&self) -> Self {
                $name { engine: self.engine.clone() }
            }
        }

        /// The handle travels to another process with its shared memory segment.
        impl<T> Serialize for $name<T> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.engine.shared.serialize(s)
            }
        }

        impl<'de, T> serde::Deserialize<'de> for $name<T> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let shared: Shared<QueueState, u8> = Shared::deserialize(d)?;
                if shared.state().item_tag.load(Ordering::Relaxed) != super::shm::type_tag::<T>() {
                    return Err(codec::handle_de_error(
                        "the queue holds items of another type than this end names: both ends \
                         must use the same item type",
                    ));
                }
                Ok($name { engine: Engine { shared, _items: PhantomData } })
            }
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let s = self.engine.shared.state();
                f.debug_struct(stringify!($name))
                    .field("len", &s.items.load(Ordering::Relaxed))
                    .field("shutdown", &s.is_shut())
                    .finish_non_exhaustive()
            }
        }
    )*};
}

queue_handle!(Queue, JoinableQueue, SimpleQueue);
