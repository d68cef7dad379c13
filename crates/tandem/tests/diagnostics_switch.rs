//! The recording switch, in a process of its own (switching is global): off at start-up,
//! on with `enable`, and every switch starts a generation, so holds from before it can never
//! make a false report.
#![cfg(feature = "diagnostics")]

use std::time::Duration;

use pytandem::diagnostics;
use pytandem::sync::Lock;

fn holds_named(name: &str) -> usize {
    diagnostics::snapshot()
        .threads
        .iter()
        .flat_map(|t| t.holding.iter())
        .filter(|h| h.lock.name.as_deref() == Some(name))
        .count()
}

#[test]
fn recording_follows_the_switch_and_generations_forget_stale_holds() {
    // Off at start-up: nothing is recorded or counted.
    assert!(!diagnostics::is_enabled());
    let lock = Lock::named(0u32, "switch.lock");
    {
        let _g = lock.acquire();
        assert_eq!(holds_named("switch.lock"), 0);
        assert!(diagnostics::snapshot().threads.is_empty());
    }
    assert_eq!(lock.stats().acquisitions, 0);

    // On: holds and counts appear.
    diagnostics::enable();
    assert!(diagnostics::is_enabled());
    let held = lock.acquire();
    assert_eq!(holds_named("switch.lock"), 1);
    assert_eq!(lock.stats().acquisitions, 1);

    // Off again while the lock is held: the detector sees nothing.
    diagnostics::disable();
    assert!(!diagnostics::is_enabled());
    assert_eq!(holds_named("switch.lock"), 0);
    assert!(diagnostics::check_deadlock().is_empty());

    // On again: the hold taken in the previous generation is forgotten, not resurrected,
    // and releasing it now is harmless.
    diagnostics::enable();
    assert_eq!(holds_named("switch.lock"), 0);
    drop(held);
    assert_eq!(holds_named("switch.lock"), 0);
    {
        let _g = lock.acquire();
        assert_eq!(holds_named("switch.lock"), 1);
    }
    assert_eq!(holds_named("switch.lock"), 0);

    // A lock taken while recording was off, released while it is on, leaves nothing behind.
    diagnostics::disable();
    let other = Lock::named((), "switch.other");
    let g = other.acquire();
    diagnostics::enable();
    drop(g);
    assert_eq!(holds_named("switch.other"), 0);
    assert!(other.acquire_timeout(Duration::ZERO).is_some());
    assert!(diagnostics::snapshot().threads.is_empty());
}
