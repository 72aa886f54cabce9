//! Shell-integration marks: the OSC 133 sequences (as terminals' shell integration uses them)
//! that tell where a prompt starts (`A`), where the typed command starts (`B`), where its
//! output starts (`C`) and that it ended with a status (`D;N`).
//!
//! One scheme serves both producers: the prompt hooks the daemon installs in bash, zsh and
//! POSIX shells, and the line `session run` types (whose marks also carry `run=ID`). Every mark
//! carries the session's nonce (`agentssh=NONCE`); a mark without it is plain output, so a
//! command that prints OSC 133 text itself (`cat` of a recorded log, a nested terminal's
//! integration) cannot move the session's state. The echo of a command line holds the marks
//! as text (`\033]133;…`), never as the ESC byte, so an echo is never a mark. The scanner keeps
//! its state across chunks, so a mark split over two SSH packets is found whole.

/// The bytes every mark starts with.
pub const MARK_PREFIX: &[u8] = b"\x1b]133;";
/// Longest payload a mark may have; a longer OSC string is not one of ours.
const MARK_MAX: usize = 128;

/// What a mark says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    /// A: the shell starts printing its prompt (the previous command, if any, is over).
    PromptStart,
    /// B: the prompt is printed; what follows is the command being typed.
    CommandStart,
    /// C: the command was accepted and runs; its output follows.
    OutputStart,
    /// D: the command finished with this status.
    Finished(i32),
}

/// One mark, with where it arrived in the clean log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// What it says.
    pub kind: MarkKind,
    /// The `session run` it belongs to, if one typed it.
    pub run: Option<String>,
    /// Committed clean offset when the mark arrived.
    pub clean_end: u64,
    /// The unterminated line at that moment.
    pub pending: String,
}

impl Mark {
    /// Parses a payload (what follows `ESC ] 133 ;`), e.g. `D;3;agentssh=N`: None unless it
    /// carries the session's `nonce`.
    pub fn parse(payload: &str, nonce: &str, clean_end: u64, pending: &str) -> Option<Mark> {
        let mut parts = payload.split(';');
        let letter = parts.next()?;
        let mut status = None;
        let mut run = None;
        let mut ours = false;
        for p in parts {
            match p.split_once('=') {
                Some(("agentssh", n)) => ours = n == nonce,
                Some(("run", r)) => run = Some(r.to_string()),
                Some(_) => {}
                None => status = p.trim().parse::<i32>().ok(),
            }
        }
        if !ours {
            return None;
        }
        let kind = match letter {
            "A" => MarkKind::PromptStart,
            "B" => MarkKind::CommandStart,
            "C" => MarkKind::OutputStart,
            "D" => MarkKind::Finished(status?),
            _ => return None,
        };
        Some(Mark {
            kind,
            run,
            clean_end,
            pending: pending.to_string(),
        })
    }
}

/// The bytes of a mark, as a shell would print it.
pub fn mark_bytes(payload: &str) -> Vec<u8> {
    let mut out = MARK_PREFIX.to_vec();
    out.extend_from_slice(payload.as_bytes());
    out.push(0x07);
    out
}

/// Finds marks in a byte stream, across chunk boundaries.
#[derive(Debug, Default)]
pub struct MarkScanner {
    partial: Vec<u8>,
    active: bool,
}

impl MarkScanner {
    /// Returns, for each mark that ends in `chunk`, the index just past it and its payload.
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
                && self.partial.len() > MARK_PREFIX.len()
                && self.partial.starts_with(MARK_PREFIX)
            {
                let payload =
                    String::from_utf8_lossy(&self.partial[MARK_PREFIX.len()..]).into_owned();
                found.push((i, payload));
                self.active = false;
                continue;
            }
            self.partial.push(b);
            let n = self.partial.len();
            let ok = if n <= MARK_PREFIX.len() {
                MARK_PREFIX[n - 1] == b
            } else {
                n < MARK_PREFIX.len() + MARK_MAX && b != 0x1b
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanner_finds_marks_split_across_chunks() {
        let stream =
            b"out\x1b]133;D;3;agentssh=n\x07prompt \x1b[0m\x1b]133;C;agentssh=n;run=r1\x07";
        for split in 0..stream.len() {
            let mut s = MarkScanner::default();
            let mut found = s.scan(&stream[..split]);
            for (end, p) in s.scan(&stream[split..]) {
                found.push((end + split, p));
            }
            let payloads: Vec<_> = found.iter().map(|(_, p)| p.as_str()).collect();
            assert_eq!(
                payloads,
                ["D;3;agentssh=n", "C;agentssh=n;run=r1"],
                "split {split}"
            );
            assert_eq!(
                found[0].0,
                3 + MARK_PREFIX.len() + "D;3;agentssh=n".len() + 1
            );
        }
    }

    #[test]
    fn echoed_mark_text_is_not_a_mark() {
        let mut s = MarkScanner::default();
        assert!(s
            .scan(b"printf '\\033]133;D;%s;agentssh=%s\\007' \"$?\"")
            .is_empty());
    }

    #[test]
    fn only_marks_with_the_sessions_nonce_count() {
        let m = Mark::parse("D;42;agentssh=n1", "n1", 10, "").unwrap();
        assert_eq!(m.kind, MarkKind::Finished(42));
        let c = Mark::parse("C;agentssh=n1;run=r", "n1", 0, "").unwrap();
        assert_eq!(
            (c.kind, c.run.as_deref()),
            (MarkKind::OutputStart, Some("r"))
        );
        // A program printing its own OSC 133 (no nonce, or another one) is plain output.
        assert!(Mark::parse("D;0", "n1", 0, "").is_none());
        assert!(Mark::parse("A;agentssh=other", "n1", 0, "").is_none());
        // D needs a status; unknown letters are not marks.
        assert!(Mark::parse("D;agentssh=n1", "n1", 0, "").is_none());
        assert!(Mark::parse("X;agentssh=n1", "n1", 0, "").is_none());
    }
}
