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

/// A non-zero number unique to the calling thread among every thread this process ran:
/// taken from a global counter on the thread's first call and kept in a thread-local, so a
/// new thread never gets a dead thread's number (the address of a thread-local can be
/// reused, which made `RLock` take a new thread for a dead owner: rust-lang/rust#123458).
/// As cheap as the address was on `RLock`'s re-entry fast path: one thread-local read.
/// The thread-local has no destructor, so this works during thread-local destruction too.
/// (On a 32-bit target the counter would wrap after 2^32 threads.)
#[inline]
pub(crate) fn current_thread_token() -> usize {
    use std::cell::Cell;
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
    #[cfg(not(tandem_loom))]
    thread_local!(static TOKEN: Cell<usize> = const { Cell::new(0) });
    #[cfg(tandem_loom)]
    loom::thread_local!(static TOKEN: Cell<usize> = Cell::new(0));
    TOKEN.with(|t| match t.get() {
        0 => {
            let token = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            t.set(token);
            token
        }
        token => token,
    })
}
