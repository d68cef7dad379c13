//! The public methods the queue types share, written once.
//!
//! Each queue type is a handle (`Arc`) around a [`Core`](super::core::Core) over its own
//! buffer policy; these two macros give every type the same documented methods, so the four
//! types cannot drift apart. They generate plain forwarding methods and no control flow.
//!
//! - `common_api!`: all four types (put, batch put, the get family, len, shutdown,
//!   iteration, `Clone`, `Debug`).
//! - `bounded_api!`: `Queue`, `LifoQueue`, `PriorityQueue` (bounded puts, tasks, maxsize).

macro_rules! common_api {
    ($Q:ident, [$($bound:tt)*]) => {
        impl<T $($bound)*> $Q<T> {
            /// Names the queue in diagnostics reports (thread dumps show threads waiting on
            /// it by this name; its wait statistics are counted); this call's line becomes
            /// its creation site. Does nothing without the `diagnostics` feature.
            #[cfg_attr(feature = "diagnostics", track_caller)]
            pub fn set_name(&self, name: impl Into<String>) {
                self.core.set_name(name.into());
            }

            /// The queue's diagnostics name, if it was given one; always `None` without the
            /// `diagnostics` feature.
            pub fn name(&self) -> Option<String> {
                self.core.name()
            }

            /// Statistics of the waits on this queue (puts, gets and joins that had to
            /// wait, time-outs, total and longest wait), counted while diagnostics recording
            /// is on.
            #[cfg(feature = "diagnostics")]
            pub fn stats(&self) -> crate::diagnostics::Stats {
                self.core.stats()
            }

            /// Puts `item`, waiting while the queue is full. Python: `q.put(item)`.
            ///
            /// # Errors
            /// [`PutError`](crate::queue::PutError), holding `item`, if the queue is (or is
            /// shut down while waiting) shut down.
            #[inline]
            pub fn put(&self, item: T) -> Result<(), crate::queue::PutError<T>> {
                match self.core.put(item, crate::queue::core::Wait::FOREVER) {
                    Ok(()) => Ok(()),
                    Err(
                        crate::queue::core::PutFail::ShutDown(item)
                        | crate::queue::core::PutFail::Full(item)
                        | crate::queue::core::PutFail::Timeout(item),
                    ) => Err(crate::queue::PutError(item)),
                }
            }

            /// Puts every item of `items`, in order, waiting whenever the queue is full, and
            /// wakes waiting consumers as the items go in (the lock-based queues take their
            /// lock once per batch that fits).
            ///
            /// `items` is collected first (outside the queue's lock, so the iterator may do
            /// anything, even use this queue), so it must be finite.
            ///
            /// # Errors
            /// If the queue is shut down before every item is in, [`PutError`] holds the items
            /// that were not put, in order (the others were put and may already be consumed).
            ///
            /// [`PutError`]: crate::queue::PutError
            pub fn put_many<I: IntoIterator<Item = T>>(
                &self,
                items: I,
            ) -> Result<(), crate::queue::PutError<Vec<T>>> {
                let items: std::collections::VecDeque<T> = items.into_iter().collect();
                self.core
                    .put_many(items)
                    .map_err(|rest| crate::queue::PutError(Vec::from(rest)))
            }

            /// Takes the next item, waiting while the queue is empty. Python: `q.get()`.
            ///
            /// # Errors
            /// [`ShutDown`](crate::queue::ShutDown) once the queue is shut down and drained
            /// (a graceful shutdown lets this drain what is queued first).
            #[inline]
            pub fn get(&self) -> Result<T, crate::queue::ShutDown> {
                self.core
                    .get(crate::queue::core::Wait::FOREVER)
                    .map_err(|_| crate::queue::ShutDown)
            }

            /// Takes the next item if one is available, without waiting. Items promised to
            /// getters that were already waiting (see the type's Fairness) are not available.
            /// Python: `q.get_nowait()` / `q.get(block=False)`.
            ///
            /// # Errors
            /// [`TryGetError::Empty`](crate::queue::TryGetError::Empty) if nothing is queued,
            /// [`TryGetError::ShutDown`](crate::queue::TryGetError::ShutDown) if shut down and
            /// drained.
            #[inline]
            #[doc(alias = "get_nowait")]
            pub fn try_get(&self) -> Result<T, crate::queue::TryGetError> {
                self.core
                    .get(crate::queue::core::Wait::No)
                    .map_err(crate::queue::core::GetFail::into_try)
            }

            /// Takes the next item, waiting at most `timeout`. A zero timeout tries once; a
            /// timeout too large to represent waits forever. Python: `q.get(timeout=t)`.
            ///
            /// # Errors
            /// [`GetTimeoutError::Timeout`](crate::queue::GetTimeoutError::Timeout) if the
            /// queue stayed empty, [`GetTimeoutError::ShutDown`](crate::queue::GetTimeoutError::ShutDown)
            /// if it is shut down and drained.
            #[inline]
            pub fn get_timeout(
                &self,
                timeout: std::time::Duration,
            ) -> Result<T, crate::queue::GetTimeoutError> {
                self.get_deadline(crate::wait::Deadline::after(timeout))
            }

            /// Takes the next item, waiting until `deadline` at the latest.
            ///
            /// # Errors
            /// As [`get_timeout`](Self::get_timeout).
            #[inline]
            pub fn get_until(
                &self,
                deadline: std::time::Instant,
            ) -> Result<T, crate::queue::GetTimeoutError> {
                self.get_deadline(crate::wait::Deadline::at(deadline))
            }

            #[inline]
            fn get_deadline(
                &self,
                deadline: crate::wait::Deadline,
            ) -> Result<T, crate::queue::GetTimeoutError> {
                self.core
                    .get(crate::queue::core::Wait::Until(deadline))
                    .map_err(crate::queue::core::GetFail::into_timeout)
            }

            /// Takes up to `n` items at once (in `get` order), waiting while the queue is
            /// empty: it returns as soon as at least one item is there, with every queued item
            /// up to `n`, and never waits for more. `n == 0` returns an empty `Vec` at once.
            ///
            /// # Errors
            /// [`ShutDown`](crate::queue::ShutDown) once the queue is shut down and drained.
            pub fn get_many(&self, n: usize) -> Result<Vec<T>, crate::queue::ShutDown> {
                self.core
                    .get_many(n, crate::queue::core::Wait::FOREVER)
                    .map_err(|_| crate::queue::ShutDown)
            }

            /// Takes up to `n` queued items without waiting (at least one, or an error).
            ///
            /// # Errors
            /// As [`try_get`](Self::try_get).
            pub fn try_get_many(&self, n: usize) -> Result<Vec<T>, crate::queue::TryGetError> {
                self.core
                    .get_many(n, crate::queue::core::Wait::No)
                    .map_err(crate::queue::core::GetFail::into_try)
            }

            /// Takes up to `n` items, waiting at most `timeout` for the first one.
            ///
            /// # Errors
            /// As [`get_timeout`](Self::get_timeout).
            pub fn get_many_timeout(
                &self,
                n: usize,
                timeout: std::time::Duration,
            ) -> Result<Vec<T>, crate::queue::GetTimeoutError> {
                let deadline = crate::wait::Deadline::after(timeout);
                self.core
                    .get_many(n, crate::queue::core::Wait::Until(deadline))
                    .map_err(crate::queue::core::GetFail::into_timeout)
            }

            /// Items queued right now (a snapshot that other threads may change at once).
            /// Python: `q.qsize()`.
            #[inline]
            #[doc(alias = "qsize")]
            pub fn len(&self) -> usize {
                self.core.len()
            }

            /// Whether the queue is empty right now (a snapshot). Python: `q.empty()`.
            #[inline]
            #[doc(alias = "empty")]
            pub fn is_empty(&self) -> bool {
                self.core.len() == 0
            }

            /// Gives back the memory the queue holds beyond its queued items.
            ///
            /// A `LifoQueue` or `PriorityQueue` keeps the capacity of its largest burst
            /// (giving memory back on every get would cost throughput), so after a burst a
            /// long-lived one may hold far more memory than its items need; this call
            /// releases it, taking the queue's lock for as long as moving the queued items
            /// takes. `Queue` and `SimpleQueue` free their blocks as they drain, so for them
            /// it does nothing. Nothing else changes: the items, their order, the waiters
            /// and the task count stay as they were. Python's queues have no counterpart
            /// (their lists and deques shrink by themselves).
            ///
            /// ```
            #[doc = concat!("let q = pytandem::queue::", stringify!($Q), "::new();")]
            /// q.put_many(0..100_000u32).unwrap();
            /// let _ = q.get_many(99_999).unwrap();
            /// q.shrink_to_fit(); // one item left: the burst's memory goes back
            /// assert_eq!(q.len(), 1);
            /// ```
            pub fn shrink_to_fit(&self) {
                self.core.shrink_to_fit();
            }

            /// Shuts the queue down (Python 3.13's `q.shutdown(immediate)`); returns the items
            /// removed.
            ///
            /// From now on every put fails with `ShutDown`, handing its item back — including
            /// puts already waiting for room, which wake up.
            /// - `immediate == false` (graceful): queued items stay; getters take them, and
            ///   once the queue is drained every get — waiting or not — fails with
            ///   `ShutDown`. Returns an empty `Vec`.
            /// - `immediate == true`: the queued items are removed and returned to the caller
            ///   (in the order `get` would have returned them), their unfinished tasks are
            ///   settled (so `join()` returns once the items already taken are marked done),
            ///   and every waiting getter, putter and joiner wakes.
            ///
            /// Calling it again is allowed: a graceful shutdown may be followed by an
            /// immediate one (which returns what is still queued).
            pub fn shutdown(&self, immediate: bool) -> Vec<T> {
                self.core.shutdown(immediate)
            }

            /// Whether [`shutdown`](Self::shutdown) has been called. Python: `q.is_shutdown`.
            #[inline]
            pub fn is_shutdown(&self) -> bool {
                self.core.is_shutdown()
            }

            /// A blocking iterator: each item in turn, until the queue is shut down and
            /// drained. The same as `for item in &queue`.
            #[inline]
            pub fn iter(&self) -> crate::queue::Iter<'_, Self> {
                crate::queue::Iter { queue: self }
            }

            /// A non-blocking iterator over what is queued now: it stops at the first
            /// `try_get` that finds the queue empty.
            #[inline]
            pub fn try_iter(&self) -> crate::queue::TryIter<'_, Self> {
                crate::queue::TryIter { queue: self }
            }

            /// Threads blocked (parked) in a get right now: a snapshot, for tests and
            /// monitoring. A waiter counted here is served before any later arrival.
            #[inline]
            pub fn waiting_getters(&self) -> usize {
                self.core.waiting_getters()
            }
        }

        impl<T> Clone for $Q<T> {
            /// Another handle to the same queue (an `Arc` clone: cheap).
            fn clone(&self) -> Self {
                $Q { core: std::sync::Arc::clone(&self.core) }
            }
        }

        impl<T $($bound)*> std::fmt::Debug for $Q<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($Q))
                    .field("len", &self.core.len())
                    .field("maxsize", &self.core.maxsize())
                    .field("is_shutdown", &self.core.is_shutdown())
                    .finish()
            }
        }

        impl<T $($bound)*> crate::queue::iter::sealed::Source for $Q<T> {
            type Item = T;

            #[inline]
            fn source_get(&self) -> Result<T, crate::queue::ShutDown> {
                self.get()
            }

            #[inline]
            fn source_try_get(&self) -> Result<T, crate::queue::TryGetError> {
                self.try_get()
            }
        }

        impl<'a, T $($bound)*> IntoIterator for &'a $Q<T> {
            type Item = T;
            type IntoIter = crate::queue::Iter<'a, $Q<T>>;

            /// Iterates until the queue is shut down and drained (see [`Iter`](crate::queue::Iter)).
            #[inline]
            fn into_iter(self) -> Self::IntoIter {
                self.iter()
            }
        }

        impl<T $($bound)*> IntoIterator for $Q<T> {
            type Item = T;
            type IntoIter = crate::queue::IntoIter<$Q<T>>;

            /// Iterates until the queue is shut down and drained, owning this handle.
            #[inline]
            fn into_iter(self) -> Self::IntoIter {
                crate::queue::IntoIter { queue: self }
            }
        }
    };
}

macro_rules! bounded_api {
    ($Q:ident, [$($bound:tt)*]) => {
        impl<T $($bound)*> $Q<T> {
            /// Puts `item` if there is room, without waiting. Python: `q.put_nowait(item)`.
            ///
            /// # Errors
            /// [`TryPutError::Full`](crate::queue::TryPutError::Full) or
            /// [`TryPutError::ShutDown`](crate::queue::TryPutError::ShutDown), holding `item`.
            #[inline]
            #[doc(alias = "put_nowait")]
            pub fn try_put(&self, item: T) -> Result<(), crate::queue::TryPutError<T>> {
                use crate::queue::core::PutFail;
                match self.core.put(item, crate::queue::core::Wait::No) {
                    Ok(()) => Ok(()),
                    Err(PutFail::Full(item) | PutFail::Timeout(item)) => {
                        Err(crate::queue::TryPutError::Full(item))
                    }
                    Err(PutFail::ShutDown(item)) => Err(crate::queue::TryPutError::ShutDown(item)),
                }
            }

            /// Puts `item`, waiting at most `timeout` for room. A zero timeout tries once; a
            /// timeout too large to represent waits forever. Python: `q.put(item, timeout=t)`.
            ///
            /// # Errors
            /// [`PutTimeoutError::Timeout`](crate::queue::PutTimeoutError::Timeout) if the queue
            /// stayed full, [`PutTimeoutError::ShutDown`](crate::queue::PutTimeoutError::ShutDown)
            /// if it is shut down; both hold `item`.
            #[inline]
            pub fn put_timeout(
                &self,
                item: T,
                timeout: std::time::Duration,
            ) -> Result<(), crate::queue::PutTimeoutError<T>> {
                self.put_deadline(item, crate::wait::Deadline::after(timeout))
            }

            /// Puts `item`, waiting for room until `deadline` at the latest.
            ///
            /// # Errors
            /// As [`put_timeout`](Self::put_timeout).
            #[inline]
            pub fn put_until(
                &self,
                item: T,
                deadline: std::time::Instant,
            ) -> Result<(), crate::queue::PutTimeoutError<T>> {
                self.put_deadline(item, crate::wait::Deadline::at(deadline))
            }

            #[inline]
            fn put_deadline(
                &self,
                item: T,
                deadline: crate::wait::Deadline,
            ) -> Result<(), crate::queue::PutTimeoutError<T>> {
                use crate::queue::core::PutFail;
                match self.core.put(item, crate::queue::core::Wait::Until(deadline)) {
                    Ok(()) => Ok(()),
                    Err(PutFail::Full(item) | PutFail::Timeout(item)) => {
                        Err(crate::queue::PutTimeoutError::Timeout(item))
                    }
                    Err(PutFail::ShutDown(item)) => {
                        Err(crate::queue::PutTimeoutError::ShutDown(item))
                    }
                }
            }

            /// The bound; `None` if the queue is unbounded. Python: `q.maxsize` (where 0 means
            /// unbounded).
            #[inline]
            pub fn maxsize(&self) -> Option<usize> {
                self.core.maxsize()
            }

            /// Whether a put would find no room right now (a snapshot; never for an unbounded
            /// queue): `maxsize` items are queued, or the free slots are promised to waiting
            /// putters. Python: `q.full()`.
            #[inline]
            #[doc(alias = "full")]
            pub fn is_full(&self) -> bool {
                self.core.is_full()
            }

            /// Marks one item taken from the queue as processed. Python: `q.task_done()`.
            ///
            /// Every successful put adds one unfinished task; `task_done` removes one; `join`
            /// waits for the count to reach zero.
            ///
            /// # Errors
            /// [`TaskDoneError`](crate::queue::TaskDoneError) if there is no unfinished task
            /// (more calls than items put; Python's `ValueError`). The count is unchanged.
            pub fn task_done(&self) -> Result<(), crate::queue::TaskDoneError> {
                self.core.task_done()
            }

            /// Waits until every item put has been marked done with
            /// [`task_done`](Self::task_done) (or settled by an immediate shutdown).
            /// Python: `q.join()`.
            pub fn join(&self) {
                self.core.join(crate::wait::Deadline::NEVER);
            }

            /// Like [`join`](Self::join), waiting at most `timeout`; `true` if every task is
            /// done. A zero timeout checks once.
            pub fn join_timeout(&self, timeout: std::time::Duration) -> bool {
                self.core.join(crate::wait::Deadline::after(timeout))
            }

            /// Like [`join`](Self::join), waiting until `deadline` at the latest; `true` if
            /// every task is done.
            pub fn join_until(&self, deadline: std::time::Instant) -> bool {
                self.core.join(crate::wait::Deadline::at(deadline))
            }

            /// Items put and not yet marked done (a snapshot). Python: `q.unfinished_tasks`.
            #[inline]
            pub fn unfinished_tasks(&self) -> usize {
                self.core.unfinished_tasks()
            }

            /// Threads blocked (parked) in a put, waiting for room, right now: a snapshot, for
            /// tests and monitoring. A waiter counted here is served before any later arrival.
            #[inline]
            pub fn waiting_putters(&self) -> usize {
                self.core.waiting_putters()
            }
        }
    };
}

pub(crate) use {bounded_api, common_api};
