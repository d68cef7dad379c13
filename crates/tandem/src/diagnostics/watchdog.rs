//! The watchdog: a thread that looks for deadlocks at an interval and reports each new one.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::detect::{confirmed, Identity};
use super::record::enable;
use super::report::Deadlock;
use crate::wait::{self, Deadline};

/// The default interval: a deadlock is reported within about a quarter of a second of
/// forming (an interval, plus the confirming second look).
const DEFAULT_INTERVAL: Duration = Duration::from_millis(200);
/// The longest pause between a look and its confirming second look.
const MAX_CONFIRM: Duration = Duration::from_millis(50);

type Callback = Box<dyn FnMut(&Deadlock) + Send>;

/// Configures a [`Watchdog`]: how often it looks, and what it does with a deadlock.
///
/// ```
/// # #[cfg(feature = "diagnostics")] {
/// use std::time::Duration;
/// use pytandem::diagnostics::Watchdog;
///
/// let watchdog = Watchdog::builder()
///     .interval(Duration::from_millis(100))
///     .on_deadlock(|report| eprintln!("{report}"))
///     .spawn()
///     .unwrap();
/// assert_eq!(watchdog.deadlocks_found(), 0);
/// drop(watchdog); // stops it and joins its thread
/// # }
/// ```
pub struct WatchdogBuilder {
    interval: Duration,
    name: String,
    on_deadlock: Option<Callback>,
}

impl fmt::Debug for WatchdogBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchdogBuilder")
            .field("interval", &self.interval)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Default for WatchdogBuilder {
    fn default() -> Self {
        WatchdogBuilder {
            interval: DEFAULT_INTERVAL,
            name: "tandem-watchdog".into(),
            on_deadlock: None,
        }
    }
}

impl WatchdogBuilder {
    /// How often to look (default 200 ms). Each deadlock is reported about one interval
    /// (plus a confirming look of at most 50 ms) after it forms.
    pub fn interval(mut self, every: Duration) -> Self {
        self.interval = every.max(Duration::from_millis(1));
        self
    }

    /// What to do with each new deadlock, on the watchdog's thread (default: print the
    /// report to standard error). A deadlock that persists is reported once.
    pub fn on_deadlock(mut self, callback: impl FnMut(&Deadlock) + Send + 'static) -> Self {
        self.on_deadlock = Some(Box::new(callback));
        self
    }

    /// The watchdog thread's name (default `tandem-watchdog`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Turns recording on ([`enable`](super::enable)) and starts the watchdog's thread.
    pub fn spawn(self) -> std::io::Result<Watchdog> {
        enable();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            found: AtomicUsize::new(0),
        });
        let interval = self.interval;
        let mut callback = self
            .on_deadlock
            .unwrap_or_else(|| Box::new(|report: &Deadlock| eprintln!("{report}")));
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(self.name)
                .spawn(move || shared.run(interval, &mut callback))?
        };
        Ok(Watchdog {
            shared,
            thread: Some(thread),
        })
    }
}

struct Shared {
    stop: AtomicBool,
    found: AtomicUsize,
}

impl Shared {
    fn key(&self) -> usize {
        wait::key_of(self)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Sleeps `d` unless stopped first; `false` once stopped.
    fn nap(&self, d: Duration) -> bool {
        let deadline = Deadline::after(d);
        while !self.stopped() && !deadline.has_passed() {
            // SAFETY: the key is this watchdog's own address; `validate` only loads its
            // flag, and none of the closures panics or calls the wait layer.
            unsafe {
                wait::park_unrecorded(
                    self.key(),
                    || !self.stopped(),
                    || {},
                    |_, _| {},
                    wait::DEFAULT_PARK_TOKEN,
                    deadline.instant(),
                );
            }
        }
        !self.stopped()
    }

    fn run(&self, interval: Duration, callback: &mut Callback) {
        let confirm = (interval / 4).min(MAX_CONFIRM);
        let mut reported: HashSet<Identity> = HashSet::new();
        while self.nap(interval) {
            let found = confirmed(|| self.nap(confirm));
            let mut current = HashSet::new();
            for (id, deadlock) in found {
                if !reported.contains(&id) {
                    self.found.fetch_add(1, Ordering::Relaxed);
                    callback(&deadlock);
                }
                current.insert(id);
            }
            reported = current;
        }
    }
}

/// A thread that looks for deadlocks every interval and reports each new one (Java's
/// deadlock detection, always on). Stops, and joins its thread, when dropped.
///
/// Starting a watchdog turns recording on ([`enable`](super::enable)).
pub struct Watchdog {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watchdog")
            .field("deadlocks_found", &self.deadlocks_found())
            .finish()
    }
}

impl Watchdog {
    /// Configures a watchdog.
    pub fn builder() -> WatchdogBuilder {
        WatchdogBuilder::default()
    }

    /// A watchdog with the defaults: looks every 200 ms, prints each deadlock to standard
    /// error.
    pub fn start() -> std::io::Result<Watchdog> {
        Watchdog::builder().spawn()
    }

    /// How many deadlocks it has reported so far.
    pub fn deadlocks_found(&self) -> usize {
        self.shared.found.load(Ordering::Relaxed)
    }

    /// Stops the watchdog and joins its thread (the same as dropping it).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        // SAFETY: the key is the watchdog's own address; the default token is a plain value.
        unsafe {
            wait::unpark_all(self.shared.key(), wait::DEFAULT_UNPARK_TOKEN);
        }
        if let Some(thread) = self.thread.take() {
            // A panic in the callback has already been reported on the watchdog's thread.
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An interval too large to add to `Instant::now()` means "forever", never an overflow
    /// panic (it used to be `Instant::now() + d`).
    #[test]
    fn huge_interval_does_not_overflow() {
        let shared = Shared {
            stop: AtomicBool::new(true),
            found: AtomicUsize::new(0),
        };
        assert!(!shared.nap(Duration::MAX), "stopped: the nap ends at once");
        let dog = Watchdog::builder().interval(Duration::MAX).spawn().unwrap();
        dog.stop(); // joins the thread, which never looked
    }
}
