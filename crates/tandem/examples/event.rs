// Port of seed 004's "Event": 8 non-blank lines of Python.
fn main() {
    let event = pytandem::sync::Event::new();
    pytandem::thread::scope(|s| {
        s.spawn(|| {
            println!("Waiting for event...");
            assert!(event.wait()); // Python: event.wait() (true: the event was set)
            println!("Event has been set");
        });
        println!("Setting event");
        event.set();
    });
}
