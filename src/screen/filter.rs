//! [`EscapeFilter`]: the safety pre-filter in front of the `vt100` parser.
//!
//! `vte` (inside `vt100`) buffers OSC strings without limit and runs some CSI operations once
//! per unit of their numeric parameter, so hostile output could make the daemon grow or spin.
//! The filter is streaming and passes bytes through unchanged except:
//!
//! - OSC/DCS/SOS/PM/APC strings longer than the cap (default [`DEFAULT_STRING_CAP`]) are
//!   dropped entirely: swallowed up to their terminator, never buffered past the cap.
//! - OSC 52 (clipboard) is always dropped. Titles (OSC 0/1/2) pass; the screen model records
//!   them and the dashboard renders cells only.
//! - Numeric CSI parameters are clamped to [`MAX_CSI_PARAM`], and the count of the repeat-heavy
//!   operations (`@ L M P S T X`) to a configurable limit (the screen sets its larger side,
//!   which is lossless). Leading zeros are dropped; CSI sequences longer than 256 bytes are
//!   dropped whole.
//!
//! The state machine mirrors `vte`'s (7-bit introducers only; C0 controls inside a sequence are
//! passed through at once, which `vte` executes the same way). A lone `ESC` is held back until
//! the next byte shows what it starts, and CSI sequences and strings are passed on whole once
//! complete, so whatever is dropped never leaves the parser half-way through a sequence. For
//! the same reason a kept string ended by `ESC` is passed on ended by BEL (OSC) or CAN (DCS,
//! SOS, PM, APC) and the `\` of its `ESC \` is swallowed: the same effect on the screen model.

/// Default cap on OSC/DCS/SOS/PM/APC strings: 64 KiB.
pub const DEFAULT_STRING_CAP: usize = 64 * 1024;

/// Largest numeric CSI parameter passed on; larger values are clamped to it.
pub const MAX_CSI_PARAM: u32 = 9999;

/// CSI sequences longer than this (after clamping) are dropped whole.
const MAX_CSI_LEN: usize = 256;

/// Which kind of string is being buffered (they end differently, as in `vte`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StrKind {
    Osc,
    Dcs,
    SosPmApc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    /// An `ESC` was seen and not yet passed on.
    Esc,
    EscInter,
    Csi,
    /// An over-long CSI sequence being swallowed up to its final byte.
    CsiDrop,
    Str(StrKind),
}

/// Streaming OSC/DCS cap, OSC 52 drop and CSI clamp. See the module docs.
#[derive(Debug, Clone)]
pub struct EscapeFilter {
    state: State,
    cap: usize,
    count_limit: u32,
    /// A dropped string ended with `ESC`: swallow the `\` of its ST as well.
    skip_st: bool,
    /// The string being buffered (with its `ESC x` introducer) and whether it is over the cap.
    strbuf: Vec<u8>,
    dropping: bool,
    /// The CSI sequence being buffered and the digit run in progress.
    csi: Vec<u8>,
    digits: Option<u32>,
}

impl Default for EscapeFilter {
    fn default() -> Self {
        Self::new(DEFAULT_STRING_CAP)
    }
}

/// Whether `b` ends a string of `kind`.
fn ends(kind: StrKind, b: u8) -> bool {
    match kind {
        StrKind::Osc => matches!(b, 0x07 | 0x18 | 0x1a | 0x1b),
        StrKind::Dcs => matches!(b, 0x18 | 0x1a | 0x1b | 0x9c),
        StrKind::SosPmApc => matches!(b, 0x18 | 0x1a | 0x1b),
    }
}

/// C0 bytes `vte` ignores inside an OSC string (terminators excluded).
fn osc_ignored(b: u8) -> bool {
    matches!(b, 0x00..=0x06 | 0x08..=0x17 | 0x19 | 0x1c..=0x1f)
}

impl EscapeFilter {
    /// A filter dropping strings longer than `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Self {
            state: State::Ground,
            cap,
            count_limit: MAX_CSI_PARAM,
            skip_st: false,
            strbuf: Vec::new(),
            dropping: false,
            csi: Vec::new(),
            digits: None,
        }
    }

    /// Clamps the count of `CSI n @ L M P S T X` to `limit` (at least 1, at most
    /// [`MAX_CSI_PARAM`]). With `limit` >= the screen's larger side this changes nothing
    /// visible, but bounds the parser's work per sequence.
    pub fn set_count_limit(&mut self, limit: u16) {
        self.count_limit = u32::from(limit).clamp(1, MAX_CSI_PARAM);
    }

    /// Bytes currently held back (a string up to the cap, or a short CSI sequence).
    pub fn buffered_len(&self) -> usize {
        self.strbuf.len() + self.csi.len()
    }

    /// Capacity of the buffers holding bytes back (memory actually kept), for tests.
    #[cfg(test)]
    pub(super) fn held_capacity(&self) -> usize {
        self.strbuf.capacity() + self.csi.capacity()
    }

    /// Whether the filter is between escape sequences (nothing held back).
    pub fn in_ground(&self) -> bool {
        self.state == State::Ground
    }

    /// Filters `input`, appending what passes to `out`.
    pub fn filter(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Ground => match input[i..].iter().position(|&b| b == 0x1b) {
                    None => {
                        out.extend_from_slice(&input[i..]);
                        i = input.len();
                    }
                    Some(p) => {
                        out.extend_from_slice(&input[i..i + p]);
                        self.state = State::Esc;
                        i += p + 1;
                    }
                },
                State::Str(kind) => i = self.string(kind, input, i, out),
                _ => {
                    self.byte(input[i], out);
                    i += 1;
                }
            }
        }
    }

    /// One byte in the escape, escape-intermediate or CSI states.
    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        match self.state {
            State::Esc => self.esc_byte(b, out),
            State::EscInter => match b {
                0x18 | 0x1a | 0x30..=0x7e => {
                    out.push(b);
                    self.state = State::Ground;
                }
                0x1b => {
                    // Abort the half-done sequence in the parser (vte would too), so that
                    // what the held ESC starts may be dropped safely.
                    out.push(0x18);
                    self.state = State::Esc;
                }
                _ => out.push(b),
            },
            State::Csi | State::CsiDrop => self.csi_byte(b, out),
            State::Ground | State::Str(_) => out.push(b),
        }
    }

    fn esc_byte(&mut self, b: u8, out: &mut Vec<u8>) {
        let skip_st = std::mem::take(&mut self.skip_st);
        match b {
            0x18 | 0x1a => {
                out.push(b);
                self.state = State::Ground;
            }
            0x1b => {}
            // vte executes C0 controls without leaving the escape state; the held ESC stays.
            0x00..=0x1f => out.push(b),
            b'\\' if skip_st => self.state = State::Ground,
            b'[' => {
                self.csi.clear();
                self.csi.extend_from_slice(b"\x1b[");
                self.digits = None;
                self.state = State::Csi;
            }
            b']' => self.start_string(StrKind::Osc, b),
            b'P' => self.start_string(StrKind::Dcs, b),
            b'X' | b'^' | b'_' => self.start_string(StrKind::SosPmApc, b),
            0x20..=0x2f => {
                out.extend_from_slice(&[0x1b, b]);
                self.state = State::EscInter;
            }
            0x30..=0x7e => {
                out.extend_from_slice(&[0x1b, b]);
                self.state = State::Ground;
            }
            // DEL and bytes >= 0x80 are ignored by vte in the escape state.
            _ => {}
        }
    }

    fn csi_byte(&mut self, b: u8, out: &mut Vec<u8>) {
        let dropping = self.state == State::CsiDrop;
        match b {
            0x18 | 0x1a => {
                self.csi.clear();
                out.push(b);
                self.state = State::Ground;
            }
            0x1b => {
                self.csi.clear();
                self.state = State::Esc;
            }
            0x00..=0x1f => out.push(b),
            0x40..=0x7e if dropping => self.state = State::Ground,
            _ if dropping => {}
            b'0'..=b'9' => {
                let d = u32::from(b - b'0');
                let v = self
                    .digits
                    .unwrap_or(0)
                    .saturating_mul(10)
                    .saturating_add(d);
                self.digits = Some(v.min(10 * MAX_CSI_PARAM));
            }
            0x20..=0x3f => {
                self.flush_digits();
                self.csi.push(b);
                self.check_csi_len();
            }
            0x40..=0x7e => {
                self.flush_digits();
                if self.state == State::Csi {
                    if b"@LMPSTX".contains(&b) {
                        self.clamp_count();
                    }
                    out.extend_from_slice(&self.csi);
                    out.push(b);
                }
                self.csi.clear();
                self.state = State::Ground;
            }
            // DEL and bytes >= 0x80 are ignored by vte inside CSI.
            _ => {}
        }
    }

    /// Writes the pending digit run, clamped, into the CSI buffer.
    fn flush_digits(&mut self) {
        if let Some(v) = self.digits.take() {
            self.csi
                .extend_from_slice(v.min(MAX_CSI_PARAM).to_string().as_bytes());
            self.check_csi_len();
        }
    }

    fn check_csi_len(&mut self) {
        if self.csi.len() > MAX_CSI_LEN {
            self.csi.clear();
            self.state = State::CsiDrop;
        }
    }

    /// Clamps a leading count parameter (`ESC [ digits ...`) to the count limit.
    fn clamp_count(&mut self) {
        let body = self.csi.get(2..).unwrap_or_default();
        let n = body.iter().take_while(|b| b.is_ascii_digit()).count();
        let value = body[..n]
            .iter()
            .fold(0u32, |v, b| v * 10 + u32::from(b - b'0'));
        if n > 0 && value > self.count_limit {
            let rest = self.csi.split_off(2 + n);
            self.csi.truncate(2);
            self.csi
                .extend_from_slice(self.count_limit.to_string().as_bytes());
            self.csi.extend_from_slice(&rest);
        }
    }

    fn start_string(&mut self, kind: StrKind, intro: u8) {
        self.strbuf.clear();
        self.strbuf.extend_from_slice(&[0x1b, intro]);
        self.dropping = false;
        self.state = State::Str(kind);
    }

    /// Handles string bytes from `i`; returns where to continue.
    fn string(&mut self, kind: StrKind, input: &[u8], i: usize, out: &mut Vec<u8>) -> usize {
        let rest = &input[i..];
        let end = rest.iter().position(|&b| ends(kind, b));
        let body = &rest[..end.unwrap_or(rest.len())];
        if !self.dropping {
            // OSC bytes vte ignores are not kept, so the cap (and the OSC 52 check) sees
            // exactly what vte would.
            let ignored = if kind == StrKind::Osc {
                body.iter().filter(|&&b| osc_ignored(b)).count()
            } else {
                0
            };
            if self.strbuf.len() + body.len() - ignored > self.cap {
                self.dropping = true;
                self.release_strbuf();
            } else if ignored > 0 {
                self.strbuf
                    .extend(body.iter().copied().filter(|&b| !osc_ignored(b)));
            } else {
                self.strbuf.extend_from_slice(body);
            }
        }
        match end {
            None => input.len(),
            Some(p) => {
                self.end_string(kind, rest[p], out);
                i + p + 1
            }
        }
    }

    fn end_string(&mut self, kind: StrKind, term: u8, out: &mut Vec<u8>) {
        let clipboard = kind == StrKind::Osc && {
            let body = self.strbuf.get(2..).unwrap_or_default();
            body == b"52" || body.starts_with(b"52;")
        };
        let keep = !self.dropping && !clipboard;
        if keep {
            out.extend_from_slice(&self.strbuf);
        }
        match term {
            0x1b => {
                // Terminate the string now (BEL for OSC, CAN for the rest) so the parser is
                // back in its ground state whatever the held ESC turns out to start, and
                // swallow the `\` of the ST.
                if keep {
                    out.push(if kind == StrKind::Osc { 0x07 } else { 0x18 });
                }
                self.state = State::Esc;
                self.skip_st = true;
            }
            0x18 | 0x1a => {
                out.push(term);
                self.state = State::Ground;
            }
            _ => {
                if keep {
                    out.push(term);
                }
                self.state = State::Ground;
            }
        }
        self.dropping = false;
        self.release_strbuf();
    }

    fn release_strbuf(&mut self) {
        self.strbuf.clear();
        if self.strbuf.capacity() > 4096 {
            self.strbuf.shrink_to(4096);
        }
    }
}
