//! firedrill's pure core: what every other crate of firedrill shares and nothing in it does I/O.

pub mod clock;
