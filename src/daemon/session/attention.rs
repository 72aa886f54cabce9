//! What a session is doing, derived from its shell-integration marks in the same pass that
//! feeds the clean log: `prompt` (the shell waits for a command), `busy` (a command runs),
//! `input` (a program waits for an answer), `closed`; the last command's exit status; and the
//! history of commands that ran at the prompt, with who typed each.
//!
//! Marks decide where they exist. Where they do not (no shell integration, or a program such
//! as a REPL running inside a command), a quiet cursor line decides: a line ending like a
//! question or a password prompt means `input`, a line ending like a shell prompt means
//! `prompt`. Quiet is measured by the actor, which calls [`Attention::on_quiet`].

use std::collections::VecDeque;
use std::time::Instant;

use serde::Serialize;

use super::marks::{Mark, MarkKind};
use super::Writer;
use crate::screen::CleanLog;

/// Commands kept in a session's history.
pub const HISTORY_CAP: usize = 1000;
/// Longest command text kept per history entry, bytes.
const COMMAND_CAP: usize = 4096;

/// What the session is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The shell waits for a command.
    Prompt,
    /// A command runs.
    Busy,
    /// A program waits for an answer (a question or password prompt, output quiet).
    Input,
    /// The session is over.
    Closed,
}

/// One command that ran at the prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// The command as typed (as the terminal showed it).
    pub command: String,
    /// `agent` or `human`: who pressed Enter.
    pub by: &'static str,
    /// Clean-log offset where its output starts.
    pub start_offset: u64,
    /// Clean-log offset where its output ends.
    pub end_offset: u64,
    /// When it started, ms since epoch.
    pub started_at: u64,
    /// How long it ran.
    pub duration_ms: u64,
    /// Its exit status (None when the shell did not report one).
    pub exit_status: Option<i32>,
}

/// A command between its start and its end.
#[derive(Debug)]
struct Running {
    command: String,
    by: Writer,
    start_offset: u64,
    started_at: u64,
    started: Instant,
}

/// A session's attention state. See the module docs.
#[derive(Debug)]
pub struct Attention {
    /// Whether the shell's marks have been seen (integration installed and working).
    pub integration: bool,
    state: State,
    since: u64,
    last_exit: Option<i32>,
    /// Where the command being typed starts: committed offset and byte index in the pending
    /// line, from the last B mark.
    input_at: Option<(u64, usize)>,
    running: Option<Running>,
    history: VecDeque<HistoryEntry>,
    /// Who last pressed Enter.
    last_typist: Writer,
}

impl Default for Attention {
    fn default() -> Self {
        Self {
            integration: false,
            state: State::Busy,
            since: crate::now_ms(),
            last_exit: None,
            input_at: None,
            running: None,
            history: VecDeque::new(),
            last_typist: Writer::Agent,
        }
    }
}

impl Attention {
    /// The state now.
    pub fn state(&self) -> State {
        self.state
    }
    /// Since when (ms since epoch).
    pub fn since(&self) -> u64 {
        self.since
    }
    /// The last command's exit status.
    pub fn last_exit(&self) -> Option<i32> {
        self.last_exit
    }
    /// The last `limit` commands, oldest first.
    pub fn history(&self, limit: usize) -> Vec<HistoryEntry> {
        let skip = self.history.len().saturating_sub(limit);
        self.history.iter().skip(skip).cloned().collect()
    }

    /// Moves to `state`; true if it changed.
    pub fn set(&mut self, state: State) -> bool {
        if self.state == state {
            return false;
        }
        self.state = state;
        self.since = crate::now_ms();
        true
    }

    /// Input was written: Enter pressed at the prompt starts a command (the shell's C mark,
    /// where there is one, follows).
    pub fn on_write(&mut self, who: Writer, data: &[u8]) -> bool {
        if !data.iter().any(|&b| b == b'\r' || b == b'\n') {
            return false;
        }
        self.last_typist = who;
        self.state == State::Prompt && self.set(State::Busy)
    }

    /// Output arrived: a program that was waiting for input got going again.
    pub fn on_output(&mut self) -> bool {
        self.state == State::Input && self.set(State::Busy)
    }

    /// Output has been quiet; `line` is the cursor's (unterminated) line.
    pub fn on_quiet(&mut self, line: &str) -> bool {
        match self.state {
            State::Busy if looks_like_question(line) => self.set(State::Input),
            State::Busy if !self.integration && looks_like_shell_prompt(line) => {
                self.set(State::Prompt)
            }
            _ => false,
        }
    }

    /// A mark arrived (already checked to be ours); `run_command` is the command of the
    /// `session run` it belongs to. Returns whether the state changed.
    pub fn on_mark(&mut self, mark: &Mark, log: &CleanLog, run_command: Option<&str>) -> bool {
        match mark.kind {
            MarkKind::PromptStart => {
                self.integration = true;
                if self.running.is_some() {
                    // A prompt without a D: the shell did not say how the command ended.
                    self.finish(mark.clean_end, None);
                }
                self.input_at = None;
                self.set(State::Prompt)
            }
            MarkKind::CommandStart => {
                self.input_at = Some((mark.clean_end, mark.pending.len()));
                false
            }
            MarkKind::OutputStart => {
                if self.running.is_none() {
                    let command = match run_command {
                        Some(c) => c.to_string(),
                        None => self.typed_text(log, mark.clean_end),
                    };
                    let by = if run_command.is_some() {
                        Writer::Agent
                    } else {
                        self.last_typist
                    };
                    self.start(command, by, mark.clean_end);
                }
                self.set(State::Busy)
            }
            MarkKind::Finished(status) => {
                if self.running.is_none() {
                    // Shells without a C mark (dash, ash): the line typed after the prompt is
                    // the command; an empty line is no command.
                    if let Some((offset, in_line)) = self.input_at {
                        let text = self.typed_text(log, mark.clean_end);
                        let first = text.lines().next().unwrap_or_default().trim().to_string();
                        if !first.is_empty() {
                            let line_end = text.find('\n').map_or(text.len(), |i| i + 1);
                            let start = offset + (in_line + line_end) as u64;
                            self.start(first, self.last_typist, start);
                        }
                    }
                }
                if self.running.is_some() {
                    self.finish(mark.clean_end, Some(status));
                    self.last_exit = Some(status);
                }
                self.input_at = None;
                false
            }
        }
    }

    fn start(&mut self, command: String, by: Writer, start_offset: u64) {
        let mut command = command.trim_end_matches(['\n', '\r', ' ']).to_string();
        if command.len() > COMMAND_CAP {
            let mut cut = COMMAND_CAP;
            while !command.is_char_boundary(cut) {
                cut -= 1;
            }
            command.truncate(cut);
        }
        self.running = Some(Running {
            command,
            by,
            start_offset,
            started_at: crate::now_ms(),
            started: Instant::now(),
        });
    }

    fn finish(&mut self, end_offset: u64, exit_status: Option<i32>) {
        let Some(r) = self.running.take() else { return };
        if self.history.len() == HISTORY_CAP {
            self.history.pop_front();
        }
        self.history.push_back(HistoryEntry {
            command: r.command,
            by: match r.by {
                Writer::Agent => "agent",
                Writer::Human => "human",
            },
            start_offset: r.start_offset,
            end_offset: end_offset.max(r.start_offset),
            started_at: r.started_at,
            duration_ms: u64::try_from(r.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            exit_status,
        });
    }

    /// The clean text from the last B mark up to `end` (committed) plus the pending line.
    fn typed_text(&self, log: &CleanLog, end: u64) -> String {
        let Some((offset, in_line)) = self.input_at else {
            return String::new();
        };
        let committed = log.read(offset, COMMAND_CAP * 2);
        let len = usize::try_from(end.saturating_sub(committed.offset))
            .unwrap_or(usize::MAX)
            .min(committed.text.len());
        let mut text = committed.text.get(..len).unwrap_or_default().to_string();
        if end >= log.end_offset() {
            text.push_str(log.pending());
        }
        // The B mark sat `in_line` bytes into the line the prompt was on.
        text.get(in_line..).unwrap_or_default().to_string()
    }
}

/// Whether a quiet cursor line asks the user something: a password or passphrase prompt, a
/// yes/no question, or a line ending in `?`, `:` or `]`, or a REPL's `>`.
pub fn looks_like_question(line: &str) -> bool {
    let t = line.trim_end();
    if t.is_empty() {
        return false;
    }
    let lower = t.to_ascii_lowercase();
    if ["password", "passphrase", "[y/n]", "(yes/no", "[yes/no"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return true;
    }
    t.ends_with(['?', ':', ']', '>'])
}

/// Whether a quiet cursor line is surely a POSIX shell's prompt, strictly enough to type the
/// hooks after it: it ends with `$ `, `# ` or `% ` (a space after the sign, no digit before
/// it, so `45% ` of a progress bar is not one).
pub fn looks_like_posix_prompt(line: &str) -> bool {
    let Some(body) = line
        .strip_suffix("$ ")
        .or_else(|| line.strip_suffix("# "))
        .or_else(|| line.strip_suffix("% "))
    else {
        return false;
    };
    !body.ends_with(|c: char| c.is_ascii_digit())
}

/// Whether a quiet cursor line looks like a shell prompt (`$`, `#` or `%` at its end).
pub fn looks_like_shell_prompt(line: &str) -> bool {
    line.trim_end().ends_with(['$', '#', '%'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(kind: MarkKind, log: &CleanLog) -> Mark {
        Mark {
            kind,
            run: None,
            clean_end: log.end_offset(),
            pending: log.pending().to_string(),
        }
    }

    /// Feeds `bytes` and, for each `Some(kind)`, a mark at that point.
    fn drive(a: &mut Attention, log: &mut CleanLog, steps: &[(&[u8], Option<MarkKind>)]) {
        for (bytes, kind) in steps {
            log.push_raw(bytes);
            if let Some(k) = kind {
                let m = mark(*k, log);
                a.on_mark(&m, log, None);
            }
        }
    }

    #[test]
    fn bash_marks_give_state_history_and_status() {
        let (mut a, mut log) = (Attention::default(), CleanLog::new());
        drive(
            &mut a,
            &mut log,
            &[
                (b"", Some(MarkKind::PromptStart)),
                (b"$ ", Some(MarkKind::CommandStart)),
            ],
        );
        assert_eq!(a.state(), State::Prompt);
        assert!(a.integration);
        a.on_write(Writer::Human, b"(exit 3)\r");
        drive(
            &mut a,
            &mut log,
            &[
                (b"(exit 3)\r\n", Some(MarkKind::OutputStart)),
                (b"", Some(MarkKind::Finished(3))),
                (b"", Some(MarkKind::PromptStart)),
                (b"$ ", Some(MarkKind::CommandStart)),
            ],
        );
        assert_eq!(a.last_exit(), Some(3));
        let h = a.history(10);
        assert_eq!(h.len(), 1);
        assert_eq!((h[0].command.as_str(), h[0].by), ("(exit 3)", "human"));
        assert_eq!(h[0].exit_status, Some(3));
        // An empty Enter: bash prints no C, and its stale D is no command.
        a.on_write(Writer::Agent, b"\r");
        drive(
            &mut a,
            &mut log,
            &[
                (b"\r\n", Some(MarkKind::Finished(3))),
                (b"", Some(MarkKind::PromptStart)),
            ],
        );
        assert_eq!(a.history(10).len(), 1);
        assert_eq!(a.state(), State::Prompt);
    }

    #[test]
    fn dash_without_c_marks_takes_the_typed_line() {
        let (mut a, mut log) = (Attention::default(), CleanLog::new());
        drive(
            &mut a,
            &mut log,
            &[
                (b"", Some(MarkKind::PromptStart)),
                (b"$ ", Some(MarkKind::CommandStart)),
            ],
        );
        assert!(a.on_write(Writer::Agent, b"echo hi\n"));
        assert_eq!(a.state(), State::Busy);
        drive(
            &mut a,
            &mut log,
            &[
                (b"echo hi\r\nhi\r\n", Some(MarkKind::Finished(0))),
                (b"", Some(MarkKind::PromptStart)),
            ],
        );
        let h = a.history(10);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!((h[0].command.as_str(), h[0].by), ("echo hi", "agent"));
        assert_eq!(h[0].end_offset - h[0].start_offset, 3, "the output 'hi\\n'");
    }

    #[test]
    fn questions_and_prompts_are_told_apart() {
        for q in [
            "Proceed? [y/N] ",
            "Password: ",
            "[sudo] password for bob: ",
            ">>> ",
            "Are you sure (yes/no)? ",
        ] {
            assert!(looks_like_question(q), "{q}");
        }
        for p in ["bob@host:~$ ", "root@host:/# ", "compiling foo", ""] {
            assert!(!looks_like_question(p), "{p}");
        }
        assert!(looks_like_shell_prompt("bob@host:~$ "));
        for p in ["$ ", "root@h:~# ", "host% ", "bob@host:~$ "] {
            assert!(looks_like_posix_prompt(p), "{p}");
        }
        for p in ["45% ", "total $", "Proceed? ", ">>> ", "# comment"] {
            assert!(!looks_like_posix_prompt(p), "{p}");
        }
        assert!(!looks_like_shell_prompt(">>> "));
        let mut a = Attention::default();
        assert!(a.on_quiet("Proceed? [y/N] "));
        assert_eq!(a.state(), State::Input);
        assert!(a.on_output());
        assert_eq!(a.state(), State::Busy);
    }
}
