//! `tandem`: a narrated tour of the seeds' scenarios, and benchmarks against tandem's peers.
//!
//! ```text
//! tandem tour [--list] [NAME...]                  run the scenarios (all by default)
//! tandem bench [--quick] [--json | --markdown] [PREFIX...]
//!                                                 run the benchmarks (all by default)
//! ```

// Unsafe code only where a peer's C API needs it (the pthread benchmark), each block with
// its SAFETY comment.
#![deny(unsafe_code)]

mod bench;
mod out;
mod tour;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Python's concurrency toolkit, rebuilt in Rust: see it work, and see how fast it is.
#[derive(Parser)]
#[command(name = "tandem", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the seeds' scenarios, narrated and self-checking (exits non-zero if a check fails).
    Tour(tour::TourArgs),
    /// Benchmark tandem against std, parking_lot, crossbeam, flume, rayon and CPython.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    // A child process started by tandem runs its function here and exits (Python's
    // `if __name__ == "__main__":`); so does a benchmark's floor child.
    #[cfg(target_os = "linux")]
    {
        pytandem::process::init();
        bench::process::floor_child();
    }
    let cli = Cli::parse();
    let ok = match cli.command {
        Command::Tour(args) => tour::run(&args),
        Command::Bench(args) => bench::run(&args),
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
