//! Waiting on many tasks at once, from any executors: [`wait`] (Python's
//! `concurrent.futures.wait`) and [`as_completed`].
//!
//! Both register one [`Waiter`] on every task they watch; a task that completes tells the
//! waiter its index and how it ended, and the waiting thread parks on the waiter's own
//! address until told. Registrations are removed when the call returns or the iterator is
//! dropped, so waiting again and again on long-running tasks leaves nothing behind.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::cell::{Ending, Header};
use super::error::TimeoutError;
use crate::diagnostics::{self, PrimitiveKind};
use crate::primitive::atomic::{AtomicU32, Ordering};
use crate::sync::Lock;
use crate::wait::{self, Deadline};

/// One `wait`/`as_completed` call's mailbox: completed tasks' indices, in completion order.
pub(crate) struct Waiter {
    /// Bumped by 2 on each notification; bit 0: the waiting thread may be parked here.
    seq: AtomicU32,
    ready: Lock<Vec<(usize, Ending)>>,
}

impl Waiter {
    pub(crate) fn new() -> Arc<Waiter> {
        Arc::new(Waiter {
            seq: AtomicU32::new(0),
            ready: Lock::new(Vec::new()),
        })
    }

    /// Called by a task's completer: task `index` ended with `ending`.
    pub(crate) fn notify(&self, index: usize, ending: Ending) {
        self.ready.acquire().push((index, ending));
        if self.seq.fetch_add(2, Ordering::Release) & 1 != 0 {
            // SAFETY: the key is this waiter's own address; no callbacks.
            unsafe {
                wait::unpark_all(wait::key_of(&self.seq), wait::DEFAULT_UNPARK_TOKEN);
            }
        }
    }

    /// Moves the notifications received so far into `out`, waiting for at least one until
    /// `deadline`; `false` if none came in time.
    #[cfg_attr(feature = "diagnostics", track_caller)]
    fn wait_into(&self, out: &mut Vec<(usize, Ending)>, deadline: Deadline) -> bool {
        loop {
            let seq = self.seq.load(Ordering::Acquire);
            {
                let mut ready = self.ready.acquire();
                if !ready.is_empty() {
                    out.append(&mut ready);
                    return true;
                }
            }
            if deadline.has_passed() {
                return false;
            }
            let sleeping = seq | 1;
            if seq & 1 == 0
                && self
                    .seq
                    .compare_exchange(seq, sleeping, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            let validate = || self.seq.load(Ordering::Relaxed) == sleeping;
            diagnostics::wait_intent(PrimitiveKind::Future, wait::key_of(&self.seq), None);
            // SAFETY: the key is this waiter's own address; `validate` only reads an atomic,
            // never panics and never calls the wait layer.
            unsafe {
                wait::park(
                    wait::key_of(&self.seq),
                    validate,
                    || {},
                    |_, _| {},
                    wait::DEFAULT_PARK_TOKEN,
                    deadline.instant(),
                );
            }
        }
    }
}

pub(crate) mod sealed {
    /// Seals [`Waitable`](super::Waitable): only tandem's task types implement it.
    #[allow(unreachable_pub)]
    pub trait Sealed {}
}

/// Anything [`wait`] and [`as_completed`] can watch: a [`Task`](super::Task) of any result
/// type, a reference to one, a box, or a `(key, task)` pair (so you can tell which input a
/// completed task belongs to, like Python's `future_to_url` dictionary). Sealed.
///
/// Tasks of different result types mix through `&dyn Waitable`:
/// ```
/// use pytandem::executor::{wait, ReturnWhen, ThreadPoolExecutor, Waitable};
///
/// let pool = ThreadPoolExecutor::new();
/// let a = pool.submit(|| 1u8)?;
/// let b = pool.submit(|| "two")?;
/// let both: Vec<&dyn Waitable> = vec![&a, &b];
/// let done = wait(both, None, ReturnWhen::AllCompleted);
/// assert_eq!(done.done.len(), 2);
/// # Ok::<(), pytandem::executor::SubmitError>(())
/// ```
pub trait Waitable: sealed::Sealed {
    /// The task's untyped core. Not part of the public API.
    #[doc(hidden)]
    fn header(&self) -> &Header;

    /// Whether the task is done (finished, failed or cancelled).
    fn is_done(&self) -> bool {
        self.header().is_done()
    }
}

impl<W: Waitable + ?Sized> sealed::Sealed for &W {}
impl<W: Waitable + ?Sized> Waitable for &W {
    fn header(&self) -> &Header {
        (**self).header()
    }
}

impl<W: Waitable + ?Sized> sealed::Sealed for &mut W {}
impl<W: Waitable + ?Sized> Waitable for &mut W {
    fn header(&self) -> &Header {
        (**self).header()
    }
}

impl<W: Waitable + ?Sized> sealed::Sealed for Box<W> {}
impl<W: Waitable + ?Sized> Waitable for Box<W> {
    fn header(&self) -> &Header {
        (**self).header()
    }
}

impl<K, W: Waitable> sealed::Sealed for (K, W) {}
impl<K, W: Waitable> Waitable for (K, W) {
    fn header(&self) -> &Header {
        self.1.header()
    }
}

/// When [`wait`] returns. Python's `FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ReturnWhen {
    /// As soon as any task is done (finished, failed or cancelled).
    #[doc(alias = "FIRST_COMPLETED")]
    FirstCompleted,
    /// As soon as any task fails (panics, returns `Err`, or its pool broke), or when all
    /// are done. A cancelled task does not count as a failure (as in Python).
    #[doc(alias = "FIRST_EXCEPTION")]
    FirstException,
    /// When every task is done (the default, as in Python).
    #[default]
    #[doc(alias = "ALL_COMPLETED")]
    AllCompleted,
}

/// What [`wait`] returns: the tasks done and those not done, each in input order. Python's
/// `DoneAndNotDoneFutures`.
pub struct DoneAndNotDone<W> {
    /// Finished, failed or cancelled.
    pub done: Vec<W>,
    /// Still pending or running (the wait timed out or returned early).
    pub not_done: Vec<W>,
}

impl<W> fmt::Debug for DoneAndNotDone<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DoneAndNotDone")
            .field("done", &self.done.len())
            .field("not_done", &self.not_done.len())
            .finish()
    }
}

/// Waits until `return_when` holds for `tasks` or `timeout` passes (`None`: no limit), then
/// splits them into done and not done. Python: `concurrent.futures.wait(fs, timeout,
/// return_when)`.
///
/// The tasks may come from different executors and, through `&dyn Waitable`, have different
/// result types. A timeout is not an error here (as in Python): look at `not_done`.
///
/// ```
/// use std::time::Duration;
/// use pytandem::executor::{wait, ReturnWhen, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::new();
/// let tasks: Vec<_> = (0..4).map(|i| pool.submit(move || i * i).unwrap()).collect();
/// let r = wait(tasks, Some(Duration::from_secs(10)), ReturnWhen::AllCompleted);
/// assert!(r.not_done.is_empty());
/// let mut squares: Vec<i32> = r.done.into_iter().map(|t| t.result().unwrap()).collect();
/// squares.sort();
/// assert_eq!(squares, [0, 1, 4, 9]);
/// ```
#[cfg_attr(feature = "diagnostics", track_caller)]
pub fn wait<I, W>(tasks: I, timeout: Option<Duration>, return_when: ReturnWhen) -> DoneAndNotDone<W>
where
    I: IntoIterator<Item = W>,
    W: Waitable,
{
    let deadline = Deadline::from_timeout(timeout);
    let items: Vec<W> = tasks.into_iter().collect();
    let n = items.len();
    let mut done = 0;
    let mut failed = false;
    let mut counted = vec![false; n];
    for (index, item) in items.iter().enumerate() {
        if let Some(ending) = item.header().ending() {
            counted[index] = true;
            done += 1;
            failed |= ending == Ending::Error;
        }
    }
    let satisfied = |done: usize, failed: bool| match return_when {
        ReturnWhen::FirstCompleted => done > 0 || n == 0,
        ReturnWhen::FirstException => failed || done == n,
        ReturnWhen::AllCompleted => done == n,
    };
    if !satisfied(done, failed) && !deadline.has_passed() {
        let waiter = Waiter::new();
        let mut registered = Vec::new();
        for (index, item) in items.iter().enumerate() {
            if counted[index] {
                continue;
            }
            let header = item.header();
            if header.register_waiter(&waiter, index) {
                registered.push(index);
            } else if let Some(ending) = header.ending() {
                // Completed between the scan and the registration.
                done += 1;
                failed |= ending == Ending::Error;
            }
        }
        let mut news = Vec::new();
        while !satisfied(done, failed) {
            news.clear();
            if !waiter.wait_into(&mut news, deadline) {
                break;
            }
            for &(_, ending) in &news {
                done += 1;
                failed |= ending == Ending::Error;
            }
        }
        for index in registered {
            items[index].header().deregister_waiter(&waiter);
        }
    }
    let (done, not_done) = items.into_iter().partition(|t| t.header().is_done());
    DoneAndNotDone { done, not_done }
}

/// Yields `tasks` as they complete: those already done first (in input order), then each as
/// it finishes. Python: `concurrent.futures.as_completed(fs, timeout)`.
///
/// Each item is `Ok(task)`, or, once `timeout` (counted from this call; `None`: no limit)
/// has passed with tasks unfinished, one `Err(TimeoutError)`, after which the iterator ends;
/// [`AsCompleted::into_remaining`] hands back the unfinished tasks. The same task given twice
/// (by reference) is yielded once, as in Python.
///
/// ```
/// use pytandem::executor::{as_completed, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::new();
/// // Python: future_to_url = {executor.submit(load, url): url for url in urls}
/// let urls = ["a.example", "b.example", "c.example"];
/// let tasks = urls.map(|url| (url, pool.submit(move || url.len()).unwrap()));
/// let mut seen = Vec::new();
/// for done in as_completed(tasks, None) {
///     let (url, task) = done?;
///     seen.push((url, task.result().unwrap()));
/// }
/// seen.sort();
/// assert_eq!(seen, [("a.example", 9), ("b.example", 9), ("c.example", 9)]);
/// # Ok::<(), pytandem::executor::TimeoutError>(())
/// ```
pub fn as_completed<I, W>(tasks: I, timeout: Option<Duration>) -> AsCompleted<W>
where
    I: IntoIterator<Item = W>,
    W: Waitable,
{
    let deadline = Deadline::from_timeout(timeout);
    let mut seen = HashSet::new();
    let items: Vec<Option<W>> = tasks
        .into_iter()
        .filter(|t| seen.insert(t.header() as *const Header as usize))
        .map(Some)
        .collect();
    let waiter = Waiter::new();
    let mut ready = VecDeque::new();
    let mut pending = 0;
    for (index, item) in items.iter().enumerate() {
        let header = item.as_ref().expect("just collected").header();
        if header.is_done() || !header.register_waiter(&waiter, index) {
            ready.push_back(index);
        } else {
            pending += 1;
        }
    }
    AsCompleted {
        items,
        waiter,
        ready,
        pending,
        deadline,
        timed_out: false,
        news: Vec::new(),
    }
}

/// The iterator [`as_completed`] returns.
pub struct AsCompleted<W: Waitable> {
    items: Vec<Option<W>>,
    waiter: Arc<Waiter>,
    /// Indices done and not yet yielded.
    ready: VecDeque<usize>,
    /// Registered tasks not yet reported done.
    pending: usize,
    deadline: Deadline,
    timed_out: bool,
    news: Vec<(usize, Ending)>,
}

impl<W: Waitable> AsCompleted<W> {
    /// The tasks not yielded yet (unfinished, or finished and not yet reached), in input
    /// order. Use it after a timeout to keep waiting, or cancel them.
    pub fn into_remaining(mut self) -> Vec<W> {
        self.deregister();
        std::mem::take(&mut self.items)
            .into_iter()
            .flatten()
            .collect()
    }

    fn deregister(&mut self) {
        for item in self.items.iter().flatten() {
            item.header().deregister_waiter(&self.waiter);
        }
    }
}

impl<W: Waitable> Iterator for AsCompleted<W> {
    type Item = Result<W, TimeoutError>;

    #[cfg_attr(feature = "diagnostics", track_caller)]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(index) = self.ready.pop_front() {
                let item = self.items[index].take().expect("each task is yielded once");
                return Some(Ok(item));
            }
            if self.pending == 0 || self.timed_out {
                return None;
            }
            self.news.clear();
            if !self.waiter.wait_into(&mut self.news, self.deadline) {
                self.timed_out = true;
                return Some(Err(TimeoutError));
            }
            for &(index, _) in &self.news {
                self.pending -= 1;
                self.ready.push_back(index);
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.ready.len() + self.pending;
        (self.ready.len(), Some(left + 1))
    }
}

impl<W: Waitable> Drop for AsCompleted<W> {
    fn drop(&mut self) {
        self.deregister();
    }
}

impl<W: Waitable> fmt::Debug for AsCompleted<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("ready", &self.ready.len())
            .field("pending", &self.pending)
            .field("timed_out", &self.timed_out)
            .finish()
    }
}

#[cfg(all(test, tandem_loom))]
mod loom_tests {
    use super::*;

    /// A completion notifies the waiter while it goes to sleep: the notification is never
    /// lost, and arrives exactly once.
    #[test]
    fn notify_races_wait() {
        loom::model(|| {
            let waiter = Waiter::new();
            let w2 = Arc::clone(&waiter);
            let completer = loom::thread::spawn(move || w2.notify(7, Ending::Error));
            let mut out = Vec::new();
            assert!(waiter.wait_into(&mut out, Deadline::NEVER));
            assert_eq!(out, [(7, Ending::Error)]);
            completer.join().unwrap();
        });
    }
}
