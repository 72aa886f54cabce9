//! A no-echo prompt on the controlling terminal, for passwords. Only used when stdin is a
//! terminal and output is text: agents under `--json` are never prompted.

use std::io::{BufRead, IsTerminal, Write};

use rustix::termios::{self, LocalModes, OptionalActions};

use crate::error::{Error, Result};
use crate::secret::Secret;

/// Whether prompting is allowed: text mode and stdin a terminal.
pub fn can_prompt() -> bool {
    !super::output::json_mode() && std::io::stdin().is_terminal()
}

/// Prints `prompt` on /dev/tty and reads one line with echo off.
pub fn read_secret(prompt: &str) -> Result<Secret> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| Error::local_io("cannot open /dev/tty for the password prompt", &e))?;
    let saved = termios::tcgetattr(&tty).map_err(|e| Error::local_io("tcgetattr", &e.into()))?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    termios::tcsetattr(&tty, OptionalActions::Flush, &quiet)
        .map_err(|e| Error::local_io("tcsetattr", &e.into()))?;
    let mut writer = &tty;
    let _ = writer.write_all(prompt.as_bytes());
    let _ = writer.flush();
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    // Restore echo whatever happened.
    let _ = termios::tcsetattr(&tty, OptionalActions::Flush, &saved);
    read.map_err(|e| Error::local_io("reading the password", &e))?;
    let trimmed = line.trim_end_matches(['\n', '\r']).to_string();
    line.clear();
    Ok(Secret::new(trimmed))
}
