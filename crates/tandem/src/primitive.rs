//! The loom facade: every file takes its atomics, spin hints and thread identity from here.
//!
//! Normally these are `std`'s; under `--cfg tandem_loom` they are loom's, so the loom models
//! beside the code explore every interleaving of the same source that ships.

#[cfg(not(tandem_loom))]
pub(crate) use std::sync::atomic;

#[cfg(tandem_loom)]
pub(crate) use loom::sync::atomic;

/// A hint that we are spinning; under loom a yield, so models make progress.
#[inline]
#[allow(dead_code)]
pub(crate) fn spin_loop() {
    #[cfg(not(tandem_loom))]
    std::hint::spin_loop();
    #[cfg(tandem_loom)]
    loom::thread::yield_now();
}

/// Yields the processor to another thread.
#[inline]
#[allow(dead_code)]
pub(crate) fn yield_now() {
    #[cfg(not(tandem_loom))]
    std::thread::yield_now();
    #[cfg(tandem_loom)]
    loom::thread::yield_now();
}

/// A non-zero number unique to the calling thread among live threads: the address of a
/// thread-local. Cheaper than `std::thread::current().id()` (no `Arc` clone), which matters on
/// `RLock`'s re-entry fast path. The same trick as parking_lot's `RawThreadId`.
#[inline]
pub(crate) fn current_thread_token() -> usize {
    #[cfg(not(tandem_loom))]
    {
        thread_local!(static TOKEN: u8 = const { 0 });
        TOKEN.with(|t| t as *const u8 as usize)
    }
    #[cfg(tandem_loom)]
    {
        loom::thread_local!(static TOKEN: u8 = 0);
        TOKEN.with(|t| t as *const u8 as usize)
    }
}
