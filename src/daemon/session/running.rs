//! The machinery the daemon types into a shell, and its hiding: a `session run` in flight
//! (which makes the session busy for agents) or the installation of shell integration.
//!
//! `session run` types a wrapper line into the shell (marks, `$?` hand-over, history fix-up
//! around the command); installing shell integration types the prompt hooks. Nobody should
//! see those lines: not the agent's `read`, not the dashboard, not `attach`. So from the
//! moment such a line is written until the mark it leads to comes back, every byte the PTY
//! sends is held here instead of reaching the output model. Those bytes are the shell
//! echoing (and readline redrawing) the line. When the mark arrives they are replaced: for a
//! run by the command as the agent gave it, as if it had been typed at the prompt, so the
//! clean log, the screen, the raw ring and every watcher show `prompt$ CMD` followed by its
//! output; for the hooks by a carriage return and erase-line, so the prompt the shell prints
//! next takes the place of the one the line was typed after.
//!
//! Holding is bounded: if the marker has not come after [`MAX_HELD`] bytes, or the run ends
//! without it (timeout, Ctrl-C, a shell that is not at its prompt), the held bytes are let
//! through unchanged, so output is delayed, never lost. What the shell prints between the
//! wrapper's echo and its begin marker (the echo is immediate, the marker follows it on the
//! same line) is only the echo and readline's redraws: those are what is dropped.

use std::time::Instant;

use bytes::Bytes;

use super::marks::{mark_bytes, Mark, MarkKind, MarkScanner};

/// Most bytes held back while waiting for a run's begin marker.
pub const MAX_HELD: usize = 64 * 1024;

/// Id of the hidden line that installs shell integration.
pub const SETUP_ID: &str = "setup";

/// Typed machinery between its line being written and its end: a `session run` (until its
/// end mark) or the shell-integration hooks (until the first prompt they mark).
#[derive(Debug)]
pub struct ActiveRun {
    /// The run's id as in its marks, or [`SETUP_ID`].
    pub id: String,
    /// The command as the agent gave it (shown in place of the wrapper, named in errors).
    pub command: String,
    /// When the line was typed.
    pub started: Instant,
    /// The session's mark nonce.
    nonce: String,
    /// Bytes held back while the line's echo is being hidden; None once that is over.
    held: Option<Vec<u8>>,
    /// Finds the awaited mark in the held stream.
    scanner: MarkScanner,
    /// Whether the hiding ended at the awaited mark (not by overflow or release).
    pub found: bool,
}

impl ActiveRun {
    /// A run whose wrapper is about to be typed.
    pub fn new(nonce: &str, id: String, command: String) -> Self {
        Self {
            id,
            command,
            started: Instant::now(),
            nonce: nonce.to_string(),
            held: Some(Vec::new()),
            scanner: MarkScanner::default(),
            found: false,
        }
    }

    /// The installation of shell integration, whose line is about to be typed.
    pub fn setup(nonce: &str) -> Self {
        Self::new(
            nonce,
            SETUP_ID.into(),
            "(installing shell integration)".into(),
        )
    }

    /// Whether this is the shell-integration setup rather than a `session run`.
    pub fn is_setup(&self) -> bool {
        self.id == SETUP_ID
    }

    /// Whether output is still being held back.
    pub fn concealing(&self) -> bool {
        self.held.is_some()
    }

    /// Takes one chunk of PTY output and returns what reaches the output model, in order
    /// (nothing while it is all held).
    pub fn pass(&mut self, chunk: Bytes) -> Vec<Bytes> {
        if self.held.is_none() {
            return vec![chunk];
        }
        let awaited = self
            .scanner
            .scan(&chunk)
            .into_iter()
            .find(|(_, payload)| self.awaits(payload));
        if let Some((end, payload)) = awaited {
            // The echo is over: show what stands in for the line, then the mark (so the run
            // finds it where the command's output starts), then the rest of the chunk.
            self.held = None;
            self.found = true;
            return vec![
                Bytes::from(self.display()),
                Bytes::from(mark_bytes(&payload)),
                chunk.slice(end..),
            ];
        }
        let held = self.held.get_or_insert_with(Vec::new);
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

    /// Whether `payload` is the mark that ends the hiding: a run's own C mark, or the first
    /// prompt the installed hooks mark.
    fn awaits(&self, payload: &str) -> bool {
        let Some(m) = Mark::parse(payload, &self.nonce, 0, "") else {
            return false;
        };
        // A run's line may also never run: an interrupt while the shell still read it, and
        // the next prompt comes instead of the run's C mark.
        m.kind == MarkKind::PromptStart
            || (!self.is_setup()
                && m.kind == MarkKind::OutputStart
                && m.run.as_deref() == Some(self.id.as_str()))
    }

    /// What stands in for the hidden line. A run: the command as a terminal would have echoed
    /// it (newlines as CR LF), then Enter. The setup: back to the start of the prompt's line
    /// and erase it, so the marked prompt that follows replaces it.
    fn display(&self) -> Vec<u8> {
        if self.is_setup() {
            return b"\r\x1b[K".to_vec();
        }
        let mut out = self
            .command
            .replace("\r\n", "\n")
            .replace('\n', "\r\n")
            .into_bytes();
        out.extend_from_slice(b"\r\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(parts: Vec<Bytes>) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn echo_is_replaced_by_the_command_at_any_split() {
        let stream = b"__agentssh_s=$?; printf '\\033]133;C;agentssh=N;run=r1\\007' ...\r\n\x1b]133;C;agentssh=N\x07\x1b]133;C;agentssh=N;run=r1\x07out\r\n";
        for split in 0..stream.len() {
            let mut run = ActiveRun::new("N", "r1".into(), "ls -l\nwc".into());
            let mut out = fed(run.pass(Bytes::copy_from_slice(&stream[..split])));
            out.extend(fed(run.pass(Bytes::copy_from_slice(&stream[split..]))));
            assert_eq!(
                out,
                b"ls -l\r\nwc\r\n\x1b]133;C;agentssh=N;run=r1\x07out\r\n".to_vec(),
                "split at {split}"
            );
            assert!(!run.concealing());
        }
    }

    #[test]
    fn another_runs_mark_or_a_foreign_nonce_does_not_end_the_hiding() {
        let mut run = ActiveRun::new("N", "r1".into(), "x".into());
        let other = b"\x1b]133;C;agentssh=N;run=r2\x07\x1b]133;C;agentssh=X;run=r1\x07";
        assert_eq!(fed(run.pass(Bytes::from_static(other))), b"");
        assert!(run.concealing());
    }

    #[test]
    fn setup_is_replaced_by_an_erased_line_at_the_first_marked_prompt() {
        let mut run = ActiveRun::setup("N");
        let hooks = b"__agentssh_n=N; ...\r\n\x1b]133;D;0;agentssh=N\x07";
        assert_eq!(fed(run.pass(Bytes::from_static(hooks))), b"");
        let prompt = b"\x1b]133;A;agentssh=N\x07$ ";
        assert_eq!(
            fed(run.pass(Bytes::from_static(prompt))),
            b"\r\x1b[K\x1b]133;A;agentssh=N\x07$ ".to_vec()
        );
        assert!(!run.concealing());
    }

    #[test]
    fn held_bytes_are_released_unchanged_when_too_many() {
        let mut run = ActiveRun::new("N", "r1".into(), "x".into());
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
        let mut run = ActiveRun::new("N", "r1".into(), "x".into());
        let _ = run.pass(Bytes::from_static(b"echo"));
        assert_eq!(run.release().concat(), b"echo");
        assert!(run.release().is_empty());
    }
}
