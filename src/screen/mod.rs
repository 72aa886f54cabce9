//! Session output model: everything the daemon keeps about what a PTY printed.
//!
//! Every byte a session's PTY produces goes through three independent views:
//!
//! - [`RawRing`]: the last N bytes exactly as received (for `--raw` reads and attach replay),
//!   addressed by absolute byte offsets.
//! - [`CleanLog`]: the same output as clean text (escape sequences, Nerd Font / Private Use
//!   Area glyphs and control characters removed; `\r` redraws and readline's redraws of lines
//!   longer than the terminal width collapsed to their final state; full-screen programs'
//!   alternate-screen output dropped), addressed by absolute offsets and bounded, produced by
//!   the streaming [`Cleaner`], which needs the terminal width ([`CleanLog::set_width`]).
//! - [`Screen`]: a `vt100` terminal model (visible screen plus bounded scrollback) for
//!   `session screen`, resizes and the dashboard. It is fed through an [`EscapeFilter`] that
//!   caps OSC/DCS strings, drops OSC 52 clipboard requests and clamps numeric CSI parameters,
//!   because the parser itself buffers unterminated OSC strings without limit.
//!
//! This module depends on nothing else in the crate, and it is the only place that creates
//! `vt100` parsers.

mod clean;
mod filter;
mod line;
mod log;
mod ring;
mod term;

#[cfg(test)]
mod clean_tests;
#[cfg(test)]
mod filter_tests;
#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod term_tests;
#[cfg(test)]
mod wrap_tests;

pub use clean::{strip_ansi, Cleaner};
pub use filter::{EscapeFilter, DEFAULT_STRING_CAP, MAX_CSI_PARAM};
pub use line::MAX_PENDING_LINE;
pub use log::{CleanLog, LogRead, DEFAULT_LOG_CAP};
pub use ring::{RawRing, DEFAULT_RAW_CAP};
pub use term::{
    Screen, ScreenCallbacks, ScreenParser, ScreenSnapshot, DEFAULT_SCROLLBACK, MAX_COLS, MAX_ROWS,
    MIN_SIZE,
};
