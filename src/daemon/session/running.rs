//! The one `session run` in flight in a session: what makes the session busy, and the
//! hiding of the run's machinery.
//!
//! `session run` types a wrapper line into the shell (markers, `$?` hand-over, history fix-up
//! around the command). Nobody should see that line: not the agent's `read`, not the
//! dashboard, not `attach`. So from the moment the wrapper is written until its begin marker
//! comes back, every byte the PTY sends is held here instead of reaching the output model.
//! Those bytes are the shell echoing (and readline redrawing) the wrapper. When the begin
//! marker arrives they are replaced by the command as the agent gave it, as if it had been
//! typed at the prompt, so the clean log, the screen, the raw ring and every watcher show
//! `prompt$ CMD` followed by its output.
//!
//! Holding is bounded: if the marker has not come after [`MAX_HELD`] bytes, or the run ends
//! without it (timeout, Ctrl-C, a shell that is not at its prompt), the held bytes are let
//! through unchanged, so output is delayed, never lost. What the shell prints between the
//! wrapper's echo and its begin marker (the echo is immediate, the marker follows it on the
//! same line) is only the echo and readline's redraws: those are what is dropped.

use std::time::Instant;

use bytes::Bytes;

use super::run::{MarkerScanner, MARKER_PREFIX};

/// Most bytes held back while waiting for a run's begin marker.
pub const MAX_HELD: usize = 64 * 1024;

/// A `session run` between its wrapper being typed and its end marker.
#[derive(Debug)]
pub struct ActiveRun {
    /// The run's nonce, as in its markers.
    pub nonce: String,
    /// The command as the agent gave it (shown in place of the wrapper, named in errors).
    pub command: String,
    /// When the wrapper was typed.
    pub started: Instant,
    /// Bytes held back while the wrapper's echo is being hidden; None once that is over.
    held: Option<Vec<u8>>,
    /// Finds the begin marker in the held stream.
    scanner: MarkerScanner,
}

impl ActiveRun {
    /// A run whose wrapper is about to be typed.
    pub fn new(nonce: String, command: String) -> Self {
        Self {
            nonce,
            command,
            started: Instant::now(),
            held: Some(Vec::new()),
            scanner: MarkerScanner::default(),
        }
    }

    /// Whether output is still being held back.
    pub fn concealing(&self) -> bool {
        self.held.is_some()
    }

    /// Takes one chunk of PTY output and returns what reaches the output model, in order
    /// (nothing while it is all held).
    pub fn pass(&mut self, chunk: Bytes) -> Vec<Bytes> {
        let Some(held) = self.held.as_mut() else {
            return vec![chunk];
        };
        let begin = self
            .scanner
            .scan(&chunk)
            .into_iter()
            .find(|(_, payload)| is_begin(payload, &self.nonce));
        if let Some((end, payload)) = begin {
            // The echo is over: show the command as typed, then the marker (so the run finds
            // it where the command's output starts), then the rest of the chunk.
            self.held = None;
            let mut marker = MARKER_PREFIX.to_vec();
            marker.extend_from_slice(payload.as_bytes());
            marker.push(0x07);
            return vec![
                Bytes::from(self.display()),
                Bytes::from(marker),
                chunk.slice(end..),
            ];
        }
        held.extend_from_slice(&chunk);
        if held.len() > MAX_HELD {
            return self.release();
        }
        Vec::new()
    }

    /// Stops holding and returns what was held, unchanged.
    pub fn release(&mut self) -> Vec<Bytes> {
        match self.held.take() {
            Some(h) if !h.is_empty() => vec![Bytes::from(h)],
            _ => Vec::new(),
        }
    }

    /// The command as a terminal would have echoed it: newlines as CR LF, then Enter.
    fn display(&self) -> Vec<u8> {
        let mut out = self
            .command
            .replace("\r\n", "\n")
            .replace('\n', "\r\n")
            .into_bytes();
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// Whether a marker payload is the begin marker of the run `nonce`.
fn is_begin(payload: &str, nonce: &str) -> bool {
    payload.strip_prefix(nonce) == Some(";b")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(parts: Vec<Bytes>) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn echo_is_replaced_by_the_command_at_any_split() {
        let stream = b"__agentssh_s=$?; printf '\\033]777;agentssh;n1;b\\007' ...\r\n\x1b]777;agentssh;n1;b\x07out\r\n";
        for split in 0..stream.len() {
            let mut run = ActiveRun::new("n1".into(), "ls -l\nwc".into());
            let mut out = fed(run.pass(Bytes::copy_from_slice(&stream[..split])));
            out.extend(fed(run.pass(Bytes::copy_from_slice(&stream[split..]))));
            assert_eq!(
                out,
                b"ls -l\r\nwc\r\n\x1b]777;agentssh;n1;b\x07out\r\n".to_vec(),
                "split at {split}"
            );
            assert!(!run.concealing());
        }
    }

    #[test]
    fn another_runs_marker_does_not_end_the_hiding() {
        let mut run = ActiveRun::new("n1".into(), "x".into());
        assert_eq!(
            fed(run.pass(Bytes::from_static(b"\x1b]777;agentssh;n2;b\x07"))),
            b""
        );
        assert!(run.concealing());
    }

    #[test]
    fn held_bytes_are_released_unchanged_when_too_many() {
        let mut run = ActiveRun::new("n1".into(), "x".into());
        let big = vec![b'a'; MAX_HELD];
        assert_eq!(fed(run.pass(Bytes::from(big.clone()))), b"");
        let out = fed(run.pass(Bytes::from_static(b"bc")));
        assert_eq!(out.len(), MAX_HELD + 2);
        assert!(!run.concealing());
        // Afterwards output passes straight through.
        assert_eq!(fed(run.pass(Bytes::from_static(b"z"))), b"z");
    }

    #[test]
    fn release_returns_what_was_held() {
        let mut run = ActiveRun::new("n1".into(), "x".into());
        let _ = run.pass(Bytes::from_static(b"echo"));
        assert_eq!(run.release().concat(), b"echo");
        assert!(run.release().is_empty());
    }
}
