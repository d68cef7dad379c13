//! Standard output that ends the program quietly when its reader goes away.
//!
//! `println!` panics when stdout is a closed pipe (`tandem bench --json | head -1`), where a
//! Unix tool should just stop. Rust ignores `SIGPIPE`, and restoring the default handler
//! needs `unsafe` (forbidden in this crate), so every line goes through [`line`], which exits
//! with status 0 on a broken pipe — what `head` asked for — and panics on any other error.

use std::fmt;
use std::io::{self, Write};

/// Writes one line to stdout; see the module docs.
pub(crate) fn line(args: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    let written = out.write_fmt(args).and_then(|()| out.write_all(b"\n"));
    if let Err(e) = written {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        panic!("failed printing to stdout: {e}");
    }
}

/// `println!` through [`line`].
macro_rules! outln {
    () => {
        $crate::out::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}

pub(crate) use outln;
