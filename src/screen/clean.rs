//! [`Cleaner`]: streaming conversion of raw PTY bytes into clean text.
//!
//! The cleaner removes escape sequences (CSI, OSC, DCS/SOS/PM/APC strings, two-byte `ESC x`
//! sequences), Private Use Area code points (Nerd Font glyphs) and control characters other
//! than `\n`, `\r` and `\t`; invalid UTF-8 becomes U+FFFD, one per invalid sequence, exactly
//! like [`String::from_utf8_lossy`]. All state survives chunk boundaries, so an escape sequence
//! or a UTF-8 character may be split anywhere between two calls to [`Cleaner::push`].
//!
//! Lines are rendered the way a terminal would show them: the unterminated current line lives
//! in a pending buffer with a cursor column. A bare `\r` returns to column 0 and the following
//! text overwrites (`"abcdef\rXY"` shows `XYcdef`); backspace moves one character left;
//! `ESC[K` (0/1/2), `ESC[nD`, `ESC[nC`, `ESC[nG` and `ESC[nP` edit the pending line. A `\n`
//! commits the pending line to the output, after which it never changes. A pending line longer
//! than [`MAX_PENDING_LINE`] bytes is committed without a newline, so memory stays bounded
//! (see [`super::line`]). OSC and other strings are skipped without being buffered.

use super::line::{utf8_width, PendingLine, MAX_PENDING_LINE};

/// Where the byte-level state machine is (mirrors `vte`, which feeds the screen model).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    Esc,
    EscInter,
    Csi,
    Osc,
    Dcs,
    SosPmApc,
}

/// Streaming, stateful cleaner from raw PTY bytes to clean text. See the module docs.
#[derive(Debug, Clone)]
pub struct Cleaner {
    state: State,
    /// Bytes of an incomplete UTF-8 character (a valid prefix) and its expected length.
    utf8: [u8; 4],
    utf8_len: usize,
    utf8_need: usize,
    /// CSI being parsed: no private marker or intermediate seen, parameter index, first value.
    csi_plain: bool,
    csi_idx: u32,
    csi_first: u32,
    /// The current unterminated line with its cursor.
    line: PendingLine,
    /// Reused buffer for decoded non-ASCII text.
    scratch: String,
}

impl Default for Cleaner {
    fn default() -> Self {
        Self::new()
    }
}

/// Characters dropped from clean text: C1 controls and the Private Use Areas.
fn is_dropped(c: char) -> bool {
    matches!(c, '\u{80}'..='\u{9f}' | '\u{e000}'..='\u{f8ff}' | '\u{f0000}'..='\u{10ffff}')
}

/// Appends the characters of `s` that survive [`is_dropped`].
fn push_filtered(dst: &mut String, s: &str) {
    if s.is_ascii() {
        dst.push_str(s);
    } else {
        dst.extend(s.chars().filter(|c| !is_dropped(*c)));
    }
}

/// Whether `b` may follow the valid prefix `prefix` of a UTF-8 sequence.
fn continues(prefix: &[u8], b: u8) -> bool {
    match (prefix.len(), prefix.first()) {
        (1, Some(0xe0)) => (0xa0..=0xbf).contains(&b),
        (1, Some(0xed)) => (0x80..=0x9f).contains(&b),
        (1, Some(0xf0)) => (0x90..=0xbf).contains(&b),
        (1, Some(0xf4)) => (0x80..=0x8f).contains(&b),
        _ => (0x80..=0xbf).contains(&b),
    }
}

impl Cleaner {
    /// A cleaner at the start of a stream.
    pub fn new() -> Self {
        Self {
            state: State::Ground,
            utf8: [0; 4],
            utf8_len: 0,
            utf8_need: 0,
            csi_plain: true,
            csi_idx: 0,
            csi_first: 0,
            line: PendingLine::default(),
            scratch: String::new(),
        }
    }

    /// The current unterminated line (e.g. a shell prompt), as a terminal would show it.
    pub fn pending(&self) -> &str {
        self.line.as_str()
    }

    /// Cleans `input`, appending every line it completes (with its `\n`) to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut String) {
        let mut i = 0;
        while i < input.len() {
            i = match self.state {
                State::Ground => self.ground(input, i, out),
                State::Osc | State::Dcs | State::SosPmApc => self.skip_string(input, i),
                _ => {
                    self.escape_byte(input[i], out);
                    i + 1
                }
            };
        }
    }

    /// Ends the stream: an incomplete UTF-8 character becomes U+FFFD and the pending line is
    /// committed to `out` without a newline. The cleaner is then ready for a new stream.
    pub fn finish(&mut self, out: &mut String) {
        self.flush_utf8(out);
        self.line.commit(out, false);
        self.state = State::Ground;
    }

    /// Handles bytes in the ground state from `i`; returns where to continue.
    fn ground(&mut self, input: &[u8], i: usize, out: &mut String) -> usize {
        let b = input[i];
        if b < 0x20 || b == 0x7f {
            self.flush_utf8(out);
            if b == 0x1b {
                self.state = State::Esc;
            } else {
                self.control(b, out);
            }
            return i + 1;
        }
        let end = input[i..]
            .iter()
            .position(|&b| b < 0x20 || b == 0x7f)
            .map_or(input.len(), |p| i + p);
        let run = &input[i..end];
        if self.utf8_len == 0 {
            if let Ok(s) = std::str::from_utf8(run) {
                if s.is_ascii() {
                    // Fast path: a whole fresh line goes straight to the output.
                    if self.line.is_fresh() {
                        let rest = &input[end..];
                        let nl = if rest.first() == Some(&b'\n') {
                            1
                        } else if rest.starts_with(b"\r\n") {
                            2
                        } else {
                            0
                        };
                        if nl > 0 {
                            out.push_str(s);
                            out.push('\n');
                            return end + nl;
                        }
                    }
                    self.line.write_str(s, out);
                    return end;
                }
            }
        }
        self.decode_run(run, out);
        end
    }

    /// Decodes a run of non-control bytes (maybe invalid or split UTF-8) into the line.
    fn decode_run(&mut self, run: &[u8], out: &mut String) {
        let mut text = std::mem::take(&mut self.scratch);
        text.clear();
        let mut rest = run;
        while self.utf8_len > 0 {
            let Some((&b, tail)) = rest.split_first() else {
                break;
            };
            if continues(&self.utf8[..self.utf8_len], b) {
                self.utf8[self.utf8_len] = b;
                self.utf8_len += 1;
                rest = tail;
                if self.utf8_len == self.utf8_need {
                    let s = std::str::from_utf8(&self.utf8[..self.utf8_len]).unwrap_or("\u{fffd}");
                    push_filtered(&mut text, s);
                    self.utf8_len = 0;
                }
            } else {
                text.push('\u{fffd}');
                self.utf8_len = 0;
            }
        }
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    push_filtered(&mut text, s);
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    push_filtered(&mut text, std::str::from_utf8(valid).unwrap_or_default());
                    if let Some(n) = e.error_len() {
                        text.push('\u{fffd}');
                        rest = &after[n..];
                    } else {
                        // An incomplete character at the end of the run (at most 3 bytes).
                        let n = after.len().min(3);
                        self.utf8[..n].copy_from_slice(&after[..n]);
                        self.utf8_len = n;
                        self.utf8_need = after.first().map_or(1, |&b| utf8_width(b));
                        break;
                    }
                }
            }
        }
        self.line.write_str(&text, out);
        self.scratch = text;
    }

    /// An incomplete UTF-8 character interrupted by a control byte becomes U+FFFD.
    fn flush_utf8(&mut self, out: &mut String) {
        if self.utf8_len > 0 {
            self.utf8_len = 0;
            self.line.write_str("\u{fffd}", out);
        }
    }

    /// Executes a C0 control byte (other than ESC).
    fn control(&mut self, b: u8, out: &mut String) {
        match b {
            b'\n' => self.line.commit(out, true),
            b'\r' => self.line.seek(0),
            b'\t' => self.line.write_str("\t", out),
            0x08 => self.line.seek(self.line.col().saturating_sub(1)),
            _ => {}
        }
    }

    /// One byte in the escape, escape-intermediate or CSI state.
    fn escape_byte(&mut self, b: u8, out: &mut String) {
        match (self.state, b) {
            (_, 0x18 | 0x1a) => self.state = State::Ground,
            (_, 0x1b) => self.state = State::Esc,
            (_, 0x00..=0x1f) => self.control(b, out),
            (State::Esc, b'[') => {
                self.csi_plain = true;
                self.csi_idx = 0;
                self.csi_first = 0;
                self.state = State::Csi;
            }
            (State::Esc, b']') => self.state = State::Osc,
            (State::Esc, b'P') => self.state = State::Dcs,
            (State::Esc, b'X' | b'^' | b'_') => self.state = State::SosPmApc,
            (State::Esc | State::EscInter, 0x20..=0x2f) => self.state = State::EscInter,
            (State::Esc | State::EscInter, 0x30..=0x7e) => self.state = State::Ground,
            (State::Csi, b'0'..=b'9') if self.csi_idx == 0 => {
                let d = u32::from(b - b'0');
                self.csi_first = self.csi_first.saturating_mul(10).saturating_add(d);
            }
            (State::Csi, b';' | b':') => self.csi_idx = self.csi_idx.saturating_add(1),
            (State::Csi, 0x20..=0x2f | 0x3c..=0x3f) => self.csi_plain = false,
            (State::Csi, 0x40..=0x7e) => {
                self.state = State::Ground;
                if self.csi_plain {
                    self.csi_dispatch(b);
                }
            }
            // DEL and bytes >= 0x80 are ignored inside sequences (as vte does).
            _ => {}
        }
    }

    /// Applies a complete plain CSI sequence that edits the pending line.
    fn csi_dispatch(&mut self, final_byte: u8) {
        let first = usize::try_from(self.csi_first).unwrap_or(MAX_PENDING_LINE);
        let count = first.max(1);
        match final_byte {
            b'K' => match first {
                0 => self.line.erase_right(),
                1 => self.line.erase_left(),
                2 => self.line.erase_line(),
                _ => {}
            },
            b'D' => self.line.seek(self.line.col().saturating_sub(count)),
            b'C' => self.line.seek(self.line.col().saturating_add(count)),
            b'G' => self.line.seek(count - 1),
            b'P' => self.line.delete_chars(count),
            _ => {}
        }
    }

    /// Skips the body of an OSC/DCS/SOS/PM/APC string from `i` without buffering it.
    fn skip_string(&mut self, input: &[u8], i: usize) -> usize {
        let state = self.state;
        let ends = |b: &u8| match state {
            State::Osc => matches!(b, 0x07 | 0x18 | 0x1a | 0x1b),
            State::Dcs => matches!(b, 0x18 | 0x1a | 0x1b | 0x9c),
            _ => matches!(b, 0x18 | 0x1a | 0x1b),
        };
        match input[i..].iter().position(ends) {
            None => input.len(),
            Some(p) => {
                self.state = if input[i + p] == 0x1b {
                    State::Esc
                } else {
                    State::Ground
                };
                i + p + 1
            }
        }
    }
}

/// One-shot cleaning of a complete byte string (for `--strip-ansi` style uses): like feeding a
/// fresh [`Cleaner`] and calling [`Cleaner::finish`], so a final line without `\n` is kept.
pub fn strip_ansi(bytes: &[u8]) -> String {
    let mut cleaner = Cleaner::new();
    let mut out = String::with_capacity(bytes.len());
    cleaner.push(bytes, &mut out);
    cleaner.finish(&mut out);
    out
}
