//! Best-effort output for every command.
//!
//! `println!` panics when standard output is gone (`firedrill recover | head -1`, a closed
//! terminal after SIGHUP): a panic half-way through `recover` leaves faults in place. What a
//! command prints is progress for a person; what it does must not depend on anyone reading it.
//! These macros write and ignore the error; `clippy.toml` forbids the std printing macros.

/// Writes a line to standard output, ignoring a closed or broken stream.
macro_rules! outln {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock());
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Writes to standard output without a newline, ignoring a closed or broken stream.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = write!(stdout, $($arg)*);
        let _ = stdout.flush();
    }};
}

/// Writes a line to standard error, ignoring a closed or broken stream.
macro_rules! errln {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock());
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}
