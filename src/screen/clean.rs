//! [`Cleaner`]: streaming conversion of raw PTY bytes into clean text.
//!
//! The cleaner removes escape sequences (CSI, OSC, DCS/SOS/PM/APC strings, two-byte `ESC x`
//! sequences), Private Use Area code points (Nerd Font glyphs) and control characters other
//! than `\n`, `\r` and `\t`; invalid UTF-8 becomes U+FFFD, one per invalid sequence, exactly
//! like [`String::from_utf8_lossy`]. All state survives chunk boundaries, so an escape sequence
//! or a UTF-8 character may be split anywhere between two calls to [`Cleaner::push`].
//!
//! Lines are rendered the way a terminal would show them: the unterminated current line lives
//! in a pending buffer with a cursor. A bare `\r` returns to the start of the row and the
//! following text overwrites (`"abcdef\rXY"` shows `XYcdef`); backspace moves one character
//! left; `ESC[K` (0/1/2), `ESC[nA`/`B`/`C`/`D`/`G`, `ESC[nP`, `ESC[n@` and `ESC[nX` edit the
//! pending line. The cleaner knows the terminal width ([`Cleaner::set_width`], 80 until set),
//! so a line longer than the terminal is a run of soft-wrapped rows, and readline's redraws of
//! a long command line (`" \r"` wrap tricks, cursor-up, `\n` between rows) collapse to the text
//! typed; see [`super::line`] for the exact model. A `\n` that ends the line commits it to the
//! output, after which it never changes. A pending line longer than [`MAX_PENDING_LINE`] bytes
//! is committed without a newline, so memory stays bounded. OSC and other strings are skipped
//! without being buffered.
//!
//! Everything printed while the alternate screen is active (`ESC[?1049h`, `ESC[?1047h` or
//! `ESC[?47h` until the matching `l`, or a full reset `ESC c`) is dropped: full-screen programs
//! (`top`, `vi`, `less`) redraw there, and their frames are not session text. The pending line
//! is left as it was and continues once the program leaves the alternate screen.

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
    /// CSI being parsed: starts with `?`, has some other marker or intermediate, has had a
    /// parameter byte, the current parameter's value, and whether a parameter named an
    /// alternate-screen mode.
    csi_private: bool,
    csi_bad: bool,
    csi_any: bool,
    csi_cur: u32,
    csi_alt: bool,
    /// The alternate screen is active: printed text is dropped.
    alt: bool,
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

/// Width assumed until [`Cleaner::set_width`] is called.
const DEFAULT_WIDTH: u16 = 80;

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
    /// A cleaner at the start of a stream, for an 80-column terminal.
    pub fn new() -> Self {
        let mut line = PendingLine::default();
        line.set_width(usize::from(DEFAULT_WIDTH));
        Self {
            state: State::Ground,
            utf8: [0; 4],
            utf8_len: 0,
            utf8_need: 0,
            csi_plain: true,
            csi_idx: 0,
            csi_first: 0,
            csi_private: false,
            csi_bad: false,
            csi_any: false,
            csi_cur: 0,
            csi_alt: false,
            alt: false,
            line,
            scratch: String::new(),
        }
    }

    /// Sets the terminal width in columns, which decides where long lines wrap (0 = unknown:
    /// lines never wrap). Takes effect immediately, also for the pending line.
    pub fn set_width(&mut self, cols: u16) {
        self.line.set_width(usize::from(cols));
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
        self.line.finish(out);
        self.state = State::Ground;
        self.alt = false;
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
        if self.alt {
            return end;
        }
        let run = &input[i..end];
        if self.utf8_len == 0 {
            if let Ok(s) = std::str::from_utf8(run) {
                if s.is_ascii() {
                    // Fast path: a whole fresh line goes straight to the output (unless it ends
                    // in blanks, which the pending line may trim at a row end).
                    if self.line.is_fresh() && !s.ends_with(' ') {
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
            if !self.alt {
                self.line.write_str("\u{fffd}", out);
            }
        }
    }

    /// Executes a C0 control byte (other than ESC).
    fn control(&mut self, b: u8, out: &mut String) {
        if self.alt {
            return;
        }
        match b {
            b'\n' => self.line.line_feed(out),
            b'\r' => self.line.carriage_return(),
            b'\t' => self.line.write_str("\t", out),
            0x08 => self.line.backspace(),
            _ => {}
        }
    }

    /// Something that is neither text, a cursor move nor an erase arrived: a line left behind
    /// by a line feed is complete (see [`super::line`]).
    fn resolve(&mut self, out: &mut String) {
        if !self.alt {
            self.line.resolve(out);
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
                self.csi_private = false;
                self.csi_bad = false;
                self.csi_any = false;
                self.csi_cur = 0;
                self.csi_alt = false;
                self.state = State::Csi;
            }
            (State::Esc, b']' | b'P' | b'X' | b'^' | b'_') => {
                self.resolve(out);
                self.state = match b {
                    b']' => State::Osc,
                    b'P' => State::Dcs,
                    _ => State::SosPmApc,
                };
            }
            (State::Esc | State::EscInter, 0x20..=0x2f) => self.state = State::EscInter,
            (State::Esc | State::EscInter, 0x30..=0x7e) => {
                self.resolve(out);
                if (self.state, b) == (State::Esc, b'c') {
                    // RIS, a full reset, also leaves the alternate screen.
                    self.alt = false;
                }
                self.state = State::Ground;
            }
            (State::Csi, b'0'..=b'9') => {
                let d = u32::from(b - b'0');
                self.csi_cur = self.csi_cur.saturating_mul(10).saturating_add(d);
                if self.csi_idx == 0 {
                    self.csi_first = self.csi_cur;
                }
                self.csi_any = true;
            }
            (State::Csi, b';' | b':') => {
                self.end_csi_param();
                self.csi_idx = self.csi_idx.saturating_add(1);
                self.csi_any = true;
            }
            (State::Csi, b'?') if !self.csi_any => {
                self.csi_private = true;
                self.csi_plain = false;
                self.csi_any = true;
            }
            (State::Csi, 0x20..=0x2f | 0x3c..=0x3f) => {
                self.csi_plain = false;
                self.csi_bad = true;
                self.csi_any = true;
            }
            (State::Csi, 0x40..=0x7e) => {
                self.state = State::Ground;
                self.end_csi_param();
                if self.csi_plain {
                    self.csi_dispatch(b, out);
                } else {
                    self.resolve(out);
                    if self.csi_private && !self.csi_bad && self.csi_alt {
                        match b {
                            b'h' => self.alt = true,
                            b'l' => self.alt = false,
                            _ => {}
                        }
                    }
                }
            }
            // DEL and bytes >= 0x80 are ignored inside sequences (as vte does).
            _ => {}
        }
    }

    /// A CSI parameter ended: notes whether it names an alternate-screen mode.
    fn end_csi_param(&mut self) {
        if matches!(self.csi_cur, 47 | 1047 | 1049) {
            self.csi_alt = true;
        }
        self.csi_cur = 0;
    }

    /// Applies a complete plain CSI sequence: cursor moves and erases edit the pending line,
    /// SGR changes nothing, anything else completes a line left behind by a line feed.
    fn csi_dispatch(&mut self, final_byte: u8, out: &mut String) {
        if self.alt {
            return;
        }
        let first = usize::try_from(self.csi_first).unwrap_or(MAX_PENDING_LINE);
        let count = first.max(1);
        match final_byte {
            b'K' => match first {
                0 => self.line.erase_right(),
                1 => self.line.erase_left(),
                2 => self.line.erase_line(),
                _ => {}
            },
            b'A' => self.line.cursor_up(count),
            b'B' => self.line.cursor_down(count),
            b'C' => self.line.cursor_right(count),
            b'D' => self.line.cursor_left(count),
            b'G' => self.line.cursor_column(count),
            b'P' => self.line.delete_chars(count),
            b'@' => self.line.insert_chars(count),
            b'X' => self.line.erase_chars(count),
            b'm' => {}
            _ => self.line.resolve(out),
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
