//! One monotonic deadline per blocking call.

use std::time::{Duration, Instant};

/// When a blocking call gives up: an instant on the monotonic clock, or never.
///
/// Built once from the caller's timeout; every re-wait after a spurious wake-up uses the same
/// instant, so a call never waits longer than asked in total. A timeout too large to represent
/// (`Duration::MAX`, or anything that overflows `Instant`) means "forever", never a panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Deadline(Option<Instant>);

impl Deadline {
    /// Never gives up.
    pub(crate) const NEVER: Deadline = Deadline(None);

    /// `timeout` from now; an overflowing timeout is [`Deadline::NEVER`].
    #[inline]
    pub(crate) fn after(timeout: Duration) -> Deadline {
        Deadline(Instant::now().checked_add(timeout))
    }

    /// At `instant`.
    #[inline]
    pub(crate) fn at(instant: Instant) -> Deadline {
        Deadline(Some(instant))
    }

    /// From an optional timeout: `None` waits forever.
    #[inline]
    pub(crate) fn from_timeout(timeout: Option<Duration>) -> Deadline {
        match timeout {
            Some(t) => Deadline::after(t),
            None => Deadline::NEVER,
        }
    }

    /// The instant to hand the parking backend.
    #[inline]
    pub(crate) fn instant(self) -> Option<Instant> {
        self.0
    }

    /// Whether the deadline has passed.
    #[inline]
    pub(crate) fn has_passed(self) -> bool {
        match self.0 {
            Some(at) => Instant::now() >= at,
            None => false,
        }
    }

    /// Time left, `None` for never; zero once passed.
    #[inline]
    #[allow(dead_code)]
    pub(crate) fn remaining(self) -> Option<Duration> {
        self.0
            .map(|at| at.saturating_duration_since(Instant::now()))
    }
}

#[cfg(all(target_os = "linux", not(tandem_loom)))]
impl Deadline {
    /// The time left as a relative `timespec` for a system call, `None` for never.
    pub(crate) fn remaining_timespec(self) -> Option<rustix::time::Timespec> {
        self.remaining().map(|left| rustix::time::Timespec {
            tv_sec: left.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: left.subsec_nanos().into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflowing_timeout_is_forever() {
        assert_eq!(Deadline::after(Duration::MAX), Deadline::NEVER);
        assert!(!Deadline::after(Duration::MAX).has_passed());
        assert_eq!(Deadline::NEVER.remaining(), None);
    }

    #[test]
    fn zero_timeout_has_passed_at_once() {
        let d = Deadline::after(Duration::ZERO);
        assert!(d.has_passed());
        assert_eq!(d.remaining(), Some(Duration::ZERO));
    }

    #[test]
    fn finite_timeout_is_in_the_future() {
        let d = Deadline::after(Duration::from_secs(3600));
        assert!(!d.has_passed());
        assert!(d.remaining().unwrap() > Duration::from_secs(3500));
        assert_eq!(Deadline::from_timeout(None), Deadline::NEVER);
        let at = Instant::now();
        assert_eq!(Deadline::at(at).instant(), Some(at));
    }
}
