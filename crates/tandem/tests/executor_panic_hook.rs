//! A panicking task goes through the process's panic hook (so, with the default hook, its
//! message reaches stderr at once, unlike Python, which prints nothing until `result()`
//! re-raises): the documented choice, checked with a recording hook. Its own test binary,
//! since the hook is process-wide.

use std::sync::Mutex;

use pytandem::executor::ThreadPoolExecutor;

static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[test]
fn a_panicking_task_reaches_the_panic_hook_once_and_keeps_its_message() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        SEEN.lock().unwrap().push(message);
    }));
    let pool = ThreadPoolExecutor::with_max_workers(1);
    let task = pool.submit(|| -> u32 { panic!("task 17 failed") }).unwrap();
    let err = task.result().unwrap_err();
    let _ = std::panic::take_hook();
    assert_eq!(err.panic_message(), Some("task 17 failed"));
    let seen = SEEN.lock().unwrap();
    assert_eq!(
        seen.iter().filter(|m| m.contains("task 17 failed")).count(),
        1,
        "the hook saw: {seen:?}"
    );
}
