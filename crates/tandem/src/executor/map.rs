//! `Map`: Python's `executor.map(fn, items, timeout=, buffersize=)`, ordered; every item
//! submitted at the call (or, with a `buffersize`, that many and one more per result).

use std::collections::VecDeque;
use std::fmt;
use std::num::NonZeroUsize;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::{SubmitError, TaskError, TaskPanic};
use super::pool::ThreadPoolExecutor;
use super::task::Task;
use crate::wait::Deadline;

/// How [`ThreadPoolExecutor::map_with`] submits its items: Python's `buffersize`, and a
/// `chunksize` (which Python's thread pool ignores). `MapOptions::new()` is what
/// [`ThreadPoolExecutor::map`] uses: one task per item, every item submitted at the call.
///
/// ```
/// use pytandem::executor::{MapOptions, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::new();
/// // Python 3.14: ex.map(f, itertools.count(), buffersize=8): an endless input, read
/// // only as far ahead as 8 tasks.
/// let first: Vec<u64> = pool
///     .map_with(|x: u64| x + 1, 0.., MapOptions::new().buffersize(8))?
///     .take(3)
///     .map(Result::unwrap)
///     .collect();
/// assert_eq!(first, [1, 2, 3]);
/// # Ok::<(), pytandem::executor::SubmitError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapOptions {
    chunksize: usize,
    buffersize: Option<NonZeroUsize>,
}

impl MapOptions {
    /// One task per item, every item submitted at the call (Python's defaults).
    pub const fn new() -> Self {
        MapOptions {
            chunksize: 1,
            buffersize: None,
        }
    }

    /// Submits `n` tasks at the call, then one more each time a task's results are taken
    /// (Python 3.14's `buffersize`), so an endless input does not exhaust memory.
    ///
    /// # Panics
    /// If `n` is 0 (Python: `ValueError: buffersize must be None or > 0`): no task could
    /// ever be submitted.
    #[track_caller]
    pub const fn buffersize(mut self, n: usize) -> Self {
        match NonZeroUsize::new(n) {
            Some(n) => self.buffersize = Some(n),
            None => panic!(
                "MapOptions::buffersize(0): the look-ahead must be at least one task; pass 1 \
                 or more, or leave it unset to submit everything at once"
            ),
        }
        self
    }

    /// Sends items to the workers `n` at a time (one task per chunk), which amortizes the
    /// per-task cost for tiny functions. Python's thread pool ignores `chunksize`; results
    /// still come one per item, in order, and a panic fails only its own item. Zero counts
    /// as one. With a [`buffersize`](Self::buffersize), a chunk counts as one task.
    pub const fn chunksize(mut self, n: usize) -> Self {
        self.chunksize = if n == 0 { 1 } else { n };
        self
    }
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions::new()
    }
}

/// A task of a `Map`, in input order.
enum InFlight<T> {
    /// One item.
    One(Task<T>),
    /// `chunksize` items, each caught separately: a panic fails only its own item.
    Chunk(Task<Vec<Result<T, TaskPanic>>>, usize),
    /// Items the pool refused after the call (it was shut down or broken meanwhile, while a
    /// `buffersize` look-ahead still had items to submit).
    Refused(usize, TaskError),
}

impl<T> InFlight<T> {
    fn wait(&self, deadline: Deadline) -> bool {
        match self {
            InFlight::One(t) => t.wait_deadline(deadline),
            InFlight::Chunk(t, _) => t.wait_deadline(deadline),
            InFlight::Refused(..) => true,
        }
    }

    fn cancel(&self) {
        match self {
            InFlight::One(t) => {
                t.cancel();
            }
            InFlight::Chunk(t, _) => {
                t.cancel();
            }
            InFlight::Refused(..) => {}
        }
    }
}

/// What a submission the pool refused after the call becomes for the items it carried.
fn refused(e: SubmitError) -> TaskError {
    match e {
        SubmitError::BrokenPool(b) => TaskError::BrokenPool(b),
        // Refused, not cancelled: no task existed to cancel.
        _ => TaskError::ShutDown,
    }
}

/// The iterator [`ThreadPoolExecutor::map`] returns: each item's result, in input order,
/// as `Result<T, TaskError>` (a panicking item yields `Err(TaskError::Panicked(..))` and the
/// others go on).
///
/// Every task was submitted when `map` was called (with a
/// [`buffersize`](MapOptions::buffersize), that many, and one more each time a task's
/// results are taken), so a `shutdown(wait = true)` after the call runs them and their
/// results can still be read here. Dropping the iterator cancels the tasks not yet started,
/// as Python does when its `map` generator is closed.
///
/// After a [`timeout`](Map::timeout) has passed, the next wait that would block yields
/// `Err(TaskError::Timeout)`, cancels the remaining tasks and ends the iteration.
#[must_use = "dropping a Map cancels its tasks not yet started"]
pub struct Map<'a, I, F, T>
where
    I: Iterator,
{
    pool: &'a ThreadPoolExecutor,
    f: Arc<F>,
    /// `None` once exhausted (or once the pool refused a submission).
    items: Option<I>,
    options: MapOptions,
    created: Instant,
    deadline: Deadline,
    in_flight: VecDeque<InFlight<T>>,
    /// The chunk being yielded from.
    chunk: Option<std::vec::IntoIter<Result<T, TaskPanic>>>,
    /// An error to yield for this many more items (a failed chunk, a refused submission).
    repeat: Option<(TaskError, usize)>,
    finished: bool,
}

impl<'a, I, F, T> Map<'a, I, F, T>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    /// Submits the first tasks: all of them, or `buffersize` of them. A refusal fails the
    /// whole call (the tasks already submitted are cancelled: no one could read them).
    pub(crate) fn new(
        pool: &'a ThreadPoolExecutor,
        f: F,
        items: I,
        options: MapOptions,
    ) -> Result<Self, SubmitError> {
        let mut map = Map {
            pool,
            f: Arc::new(f),
            items: Some(items),
            options,
            created: Instant::now(),
            deadline: Deadline::NEVER,
            in_flight: VecDeque::new(),
            chunk: None,
            repeat: None,
            finished: false,
        };
        let mut budget = options.buffersize.map_or(usize::MAX, NonZeroUsize::get);
        while budget > 0 {
            match map.submit_next() {
                Ok(true) => budget -= 1,
                Ok(false) => break,
                // `map`'s drop cancels what was submitted.
                Err((_, e)) => return Err(e),
            }
        }
        Ok(map)
    }

    /// Gives up waiting `timeout` after the call to `map` (as Python counts it). A timeout
    /// too large to represent is no limit.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.deadline = match self.created.checked_add(timeout) {
            Some(at) => Deadline::at(at),
            None => Deadline::NEVER,
        };
        self
    }

    /// Submits the next task: `Ok(false)` when there is nothing more to submit; the pool's
    /// refusal as `Err`, with the number of items it carried (no more are read after it).
    fn submit_next(&mut self) -> Result<bool, (usize, SubmitError)> {
        let Some(items) = self.items.as_mut() else {
            return Ok(false);
        };
        let f = Arc::clone(&self.f);
        let (submitted, n) = if self.options.chunksize == 1 {
            let Some(item) = items.next() else {
                self.items = None;
                return Ok(false);
            };
            (self.pool.submit(move || f(item)).map(InFlight::One), 1)
        } else {
            let chunk: Vec<I::Item> = items.by_ref().take(self.options.chunksize).collect();
            if chunk.is_empty() {
                self.items = None;
                return Ok(false);
            }
            let n = chunk.len();
            let task = self.pool.submit(move || {
                chunk
                    .into_iter()
                    .map(|item| {
                        panic::catch_unwind(AssertUnwindSafe(|| f(item))).map_err(TaskPanic::new)
                    })
                    .collect::<Vec<_>>()
            });
            (task.map(|t| InFlight::Chunk(t, n)), n)
        };
        match submitted {
            Ok(in_flight) => {
                self.in_flight.push_back(in_flight);
                Ok(true)
            }
            Err(e) => {
                self.items = None;
                Err((n, e))
            }
        }
    }

    /// With a `buffersize`, one more task as one is taken (Python 3.14 submits it before
    /// waiting for the one taken). A refusal now is reported in order, item by item.
    fn submit_one_more(&mut self) {
        if self.options.buffersize.is_none() {
            return;
        }
        if let Err((n, e)) = self.submit_next() {
            // After the results before it; no item is read after it.
            self.in_flight.push_back(InFlight::Refused(n, refused(e)));
        }
    }

    fn cancel_all(&mut self) {
        for task in self.in_flight.drain(..) {
            task.cancel();
        }
        self.items = None;
    }
}

impl<I, F, T> Iterator for Map<'_, I, F, T>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    type Item = Result<T, TaskError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        // The common case, kept small so it inlines: the next item of the current chunk.
        if let Some(chunk) = &mut self.chunk {
            if let Some(result) = chunk.next() {
                return Some(result.map_err(TaskError::Panicked));
            }
        }
        self.next_slow()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let ready =
            self.chunk.as_ref().map_or(0, |c| c.len()) + self.repeat.as_ref().map_or(0, |r| r.1);
        (ready, None)
    }
}

impl<I, F, T> Map<'_, I, F, T>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    /// Everything but the next item of the current chunk.
    #[cold]
    fn next_slow(&mut self) -> Option<Result<T, TaskError>> {
        if let Some(result) = self.take_ready() {
            return Some(result);
        }
        if self.finished {
            return None;
        }
        loop {
            let Some(front) = self.in_flight.pop_front() else {
                self.finished = true;
                return None;
            };
            self.submit_one_more();
            if !front.wait(self.deadline) {
                front.cancel();
                self.cancel_all();
                self.finished = true;
                return Some(Err(TaskError::Timeout));
            }
            let result = match front {
                InFlight::One(task) => Some(task.result()),
                InFlight::Chunk(task, n) => {
                    match task.result() {
                        Ok(results) => self.chunk = Some(results.into_iter()),
                        Err(e) => self.repeat = Some((e, n)),
                    }
                    self.take_ready()
                }
                InFlight::Refused(n, e) => {
                    self.repeat = Some((e, n));
                    self.take_ready()
                }
            };
            if result.is_some() {
                return result;
            }
        }
    }
}

impl<I, F, T> Map<'_, I, F, T>
where
    I: Iterator,
{
    /// The next result already at hand (from a chunk, or a repeated error).
    #[inline]
    fn take_ready(&mut self) -> Option<Result<T, TaskError>> {
        if let Some(chunk) = &mut self.chunk {
            match chunk.next() {
                Some(r) => return Some(r.map_err(TaskError::Panicked)),
                None => self.chunk = None,
            }
        }
        if let Some((e, n)) = &mut self.repeat {
            if *n > 0 {
                *n -= 1;
                return Some(Err(e.clone()));
            }
            self.repeat = None;
        }
        None
    }
}

impl<I: Iterator, F, T> Drop for Map<'_, I, F, T> {
    fn drop(&mut self) {
        for task in self.in_flight.drain(..) {
            task.cancel();
        }
    }
}

impl<I: Iterator, F, T> fmt::Debug for Map<'_, I, F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("in_flight", &self.in_flight.len())
            .field("options", &self.options)
            .field("finished", &self.finished)
            .finish()
    }
}
