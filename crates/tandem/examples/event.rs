// Port of seed 004's "Event": 8 non-blank lines of Python.
fn main() {
    let event = tandem::sync::Event::new();
    tandem::thread::scope(|s| {
        s.spawn(|| {
            println!("Waiting for event...");
            assert!(event.wait()); // Python: event.wait() (true: the event was set)
            println!("Event has been set");
        });
        println!("Setting event");
        event.set();
    });
}
