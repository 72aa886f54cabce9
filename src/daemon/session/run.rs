//! `session run`: the markers the shell prints around a command, the line that makes it
//! print them, and the request that types that line and collects the command's output and
//! exit status.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::{ReadSpec, SessionHandle, Status, Writer, MAX_WAIT};
use crate::error::{Error, ErrorCode, Result};

/// A marker `session run` makes the shell print (an OSC sequence, invisible in clean output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The run's nonce.
    pub nonce: String,
    /// Exit status for an end marker; None for a begin marker.
    pub exit_status: Option<i32>,
    /// Committed clean offset when the marker arrived.
    pub clean_end: u64,
    /// The unterminated line at that moment.
    pub pending: String,
}

impl Marker {
    /// Parses a payload `NONCE;b` or `NONCE;e;STATUS`.
    pub fn parse(payload: &str, clean_end: u64, pending: &str) -> Option<Marker> {
        let mut parts = payload.split(';');
        let nonce = parts.next()?.to_string();
        let exit_status = match parts.next()? {
            "b" => None,
            "e" => Some(parts.next()?.trim().parse().ok()?),
            _ => return None,
        };
        Some(Marker {
            nonce,
            exit_status,
            clean_end,
            pending: pending.to_string(),
        })
    }
}

/// The OSC prefix of run markers.
pub const MARKER_PREFIX: &[u8] = b"\x1b]777;agentssh;";
const MARKER_MAX: usize = 96;

/// Finds run markers in a byte stream, across chunk boundaries.
#[derive(Debug, Default)]
pub struct MarkerScanner {
    partial: Vec<u8>,
    active: bool,
}

impl MarkerScanner {
    /// Returns, for each marker that ends in `chunk`, the index just past it and its payload.
    pub fn scan(&mut self, chunk: &[u8]) -> Vec<(usize, String)> {
        let mut found = Vec::new();
        let mut i = 0;
        while i < chunk.len() {
            if !self.active {
                match chunk[i..].iter().position(|&b| b == 0x1b) {
                    Some(p) => {
                        i += p;
                        self.active = true;
                        self.partial.clear();
                    }
                    None => break,
                }
            }
            let b = chunk[i];
            i += 1;
            if b == 0x07
                && self.partial.len() > MARKER_PREFIX.len()
                && self.partial.starts_with(MARKER_PREFIX)
            {
                let payload =
                    String::from_utf8_lossy(&self.partial[MARKER_PREFIX.len()..]).into_owned();
                found.push((i, payload));
                self.active = false;
                continue;
            }
            self.partial.push(b);
            let n = self.partial.len();
            let ok = if n <= MARKER_PREFIX.len() {
                MARKER_PREFIX[n - 1] == b
            } else {
                n < MARKER_MAX && b != 0x1b
            };
            if !ok {
                self.active = b == 0x1b;
                self.partial.clear();
                if self.active {
                    self.partial.push(b);
                }
            }
        }
        found
    }
}

/// Quotes `s` for a POSIX shell as one single-quoted word.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The line `session run` types into the shell: the command in a variable, a begin marker,
/// the command through `eval`, and an end marker with its exit status.
///
/// - `$?`: the shell's status before the line is saved first and restored with `(exit N)`
///   just before the command runs, so the command sees the real previous status; the last
///   thing on the line is `(exit N)` with the command's status, so the shell's `$?` after the
///   run is the command's.
/// - The command runs through `eval` in the shell itself, so `cd` and variables persist. A
///   POSIX shell treats `eval` as a special built-in: when it fails (a syntax error such as an
///   unbalanced quote, `. missing-file`, `${x?}`, `shift 5`), an interactive dash abandons the
///   rest of the input line, end marker included, and the caller would wait for its timeout.
///   `command eval` strips the special-built-in property, so the error is reported and the
///   line goes on to the end marker with the failure's status. zsh's `command` only runs
///   external programs, so there it is `builtin eval`.
/// - History: bash has put this line in its history when it runs it (unless HISTCONTROL or
///   HISTIGNORE kept it out); `history -s` replaces the last entry, so it is swapped for the
///   command as given, and only when the last entry really is this line.
/// - The command is typed once: a shell that reads lines in the kernel's canonical mode (dash)
///   gets at most 4095 bytes per line. Nobody sees the line itself: the daemon hides its echo
///   (see `session::running`).
fn run_line(nonce: &str, command: &str) -> String {
    format!(
        "__agentssh_s=$?; __agentssh_c={cmd}; printf '\\033]777;agentssh;{nonce};b\\007'; \
[ -n \"${{BASH_VERSION-}}\" ] && case $(HISTTIMEFORMAT= builtin history 1 2>/dev/null) in *\"agentssh;{nonce};b\"*) builtin history -s -- \"$__agentssh_c\";; esac; \
__agentssh_e=command; [ -n \"${{ZSH_VERSION-}}\" ] && __agentssh_e=builtin; \
(exit $__agentssh_s); $__agentssh_e eval \"$__agentssh_c\"; __agentssh_s=$?; \
printf '\\033]777;agentssh;{nonce};e;%d\\007' \"$__agentssh_s\"; \
eval \"unset __agentssh_s __agentssh_c __agentssh_e; (exit $__agentssh_s)\"\n",
        cmd = shell_quote(command)
    )
}

/// The last `limit` bytes of `text`, starting at a line start where one is in reach: after
/// the first newline past the cut, or (when `head_cut`, the text's start was already lost)
/// after its first newline. A single line longer than `limit` is cut at a character boundary.
pub fn tail_at_line(text: &str, limit: usize, head_cut: bool) -> &str {
    let mut start = text.len().saturating_sub(limit);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    if start > 0 || head_cut {
        // Move to the next line start, unless the cut already sits on one.
        let at_line_start = start > 0 && text.as_bytes()[start - 1] == b'\n';
        if !at_line_start {
            if let Some(nl) = text[start..].find('\n') {
                start += nl + 1;
            }
        }
    }
    &text[start..]
}

/// Ends a run when its caller returns or goes away (timeout, error, client gone), so the
/// session never stays busy and held output is let through.
struct RunGuard<'a> {
    handle: &'a SessionHandle,
    nonce: &'a str,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        self.handle.end_run(self.nonce);
    }
}

/// `session run`: runs `command` in the PTY shell between two markers and returns only its
/// output (the last `limit` bytes of it) and exit status.
pub async fn run(
    handle: &SessionHandle,
    command: &str,
    timeout: Duration,
    limit: usize,
) -> Result<serde_json::Value> {
    let limit = limit.min(crate::protocol::RUN_OUTPUT_LIMIT);
    let nonce = crate::hex(&rand::random::<[u8; 8]>());
    let line = run_line(&nonce, command);
    let started = std::time::Instant::now();
    handle.begin_run(&nonce, command, Bytes::from(line)).await?;
    let guard = RunGuard {
        handle,
        nonce: &nonce,
    };
    let mut ticks = handle.ticks();
    let deadline = Instant::now() + timeout.min(MAX_WAIT);
    let end = loop {
        if let Some(m) = handle.marker(nonce.clone()).await? {
            break Some(m);
        }
        if ticks.borrow().status != Status::Running {
            break None;
        }
        match tokio::time::timeout_at(deadline, ticks.changed()).await {
            Ok(Ok(())) => {}
            _ => break None,
        }
    };
    let Some(end) = end else {
        // Free the session first (a busy session refuses agent keys), then interrupt what is
        // still running so the shell is usable again.
        handle.end_run_now(&nonce).await;
        let _ = handle
            .write(Bytes::from_static(b"\x03"), Writer::Agent, None)
            .await;
        let status = handle.ticks().borrow().status;
        return Err(if status == Status::Running {
            Error::new(
                ErrorCode::Timeout,
                format!(
                    "command did not finish within {} ms; sent Ctrl-C",
                    timeout.as_millis()
                ),
            )
        } else {
            Error::new(
                ErrorCode::SessionClosed,
                format!(
                    "session {} ended before the command finished",
                    handle.meta.id
                ),
            )
        });
    };
    drop(guard);
    let begin = handle.begin_marker(&nonce).await?;
    let from = begin.as_ref().map(|b| b.clean_end).unwrap_or(end.clean_end);
    let (log, _) = handle.clean_range(from).await?;
    let len = usize::try_from(end.clean_end.saturating_sub(log.offset))
        .unwrap_or(usize::MAX)
        .min(log.text.len());
    let mut full = log.text.get(..len).unwrap_or_default().to_string();
    full.push_str(&end.pending);
    if let Some(b) = &begin {
        if let Some(rest) = full.strip_prefix(b.pending.as_str()) {
            full = rest.to_string();
        }
    }
    let head_lost = log.offset.saturating_sub(from);
    let output = tail_at_line(&full, limit, head_lost > 0);
    let dropped = head_lost + (full.len() - output.len()) as u64;
    // The agent has now seen this output: move its cursor past it.
    let _ = handle
        .read(ReadSpec {
            offset: None,
            limit: usize::MAX,
            raw: false,
        })
        .await;
    Ok(serde_json::json!({
        "session_id": handle.meta.id,
        "exit_status": end.exit_status,
        "output": output,
        "truncated": dropped > 0,
        "dropped_bytes": dropped,
        "duration_ms": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn scanner_finds_markers_split_across_chunks() {
        let stream = b"out\x1b]777;agentssh;abc;e;3\x07prompt \x1b[0m\x1b]777;agentssh;abc;b\x07";
        for split in 0..stream.len() {
            let mut s = MarkerScanner::default();
            let mut found = Vec::new();
            for (end, p) in s.scan(&stream[..split]) {
                found.push((end, p));
            }
            for (end, p) in s.scan(&stream[split..]) {
                found.push((end + split, p));
            }
            let payloads: Vec<_> = found.iter().map(|(_, p)| p.as_str()).collect();
            assert_eq!(payloads, ["abc;e;3", "abc;b"], "split at {split}");
            assert_eq!(found[0].0, 3 + MARKER_PREFIX.len() + "abc;e;3".len() + 1);
        }
    }

    #[test]
    fn echoed_command_text_is_not_a_marker() {
        let mut s = MarkerScanner::default();
        assert!(s
            .scan(b"printf '\\033]777;agentssh;abc;e;%d\\007' \"$?\"")
            .is_empty());
    }

    #[test]
    fn markers_parse() {
        let m = Marker::parse("n1;e;42", 10, "").unwrap();
        assert_eq!(m.exit_status, Some(42));
        assert_eq!(Marker::parse("n1;b", 0, "").unwrap().exit_status, None);
        assert!(Marker::parse("n1;x", 0, "").is_none());
    }

    #[test]
    fn tail_cuts_at_a_line_start() {
        assert_eq!(tail_at_line("a\nbb\nccc\n", 100, false), "a\nbb\nccc\n");
        assert_eq!(tail_at_line("a\nbb\nccc\n", 6, false), "ccc\n");
        assert_eq!(tail_at_line("a\nbb\nccc\n", 7, false), "bb\nccc\n");
        // The head was already lost: drop the partial first line.
        assert_eq!(tail_at_line("b\nccc\n", 100, true), "ccc\n");
        // One line longer than the limit: cut at a character boundary.
        assert_eq!(tail_at_line("xxééé", 4, false), "éé");
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
