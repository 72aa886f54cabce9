//! [`CleanLog`]: the bounded log of clean session text, addressed by absolute byte offsets.
//!
//! Raw PTY bytes go in through [`CleanLog::push_raw`], which runs a [`Cleaner`]. Committed text
//! (complete lines) is appended and never changes afterwards; offsets count every byte ever
//! committed, so an agent keeps a cursor (`next_offset`) and reads only what is new. The log
//! keeps the last [`DEFAULT_LOG_CAP`] bytes, trimming whole characters from the front, and a
//! read that asks for trimmed text says how much it missed. The unterminated current line (a
//! shell prompt, say) is not committed yet; it is reported separately as `pending`.

use std::collections::VecDeque;

use serde::Serialize;

use super::clean::Cleaner;

/// Default capacity of a [`CleanLog`]: 1 MiB of committed text.
pub const DEFAULT_LOG_CAP: usize = 1024 * 1024;

/// Raw input is cleaned in pieces of this size so the scratch buffer stays small.
const PUSH_PIECE: usize = 64 * 1024;

/// The answer to [`CleanLog::read`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogRead {
    /// Absolute offset of the first byte of `text`.
    pub offset: u64,
    /// Offset to pass as `from` next time: `offset + text.len()`. It counts committed bytes
    /// only; `pending` text is never counted, because it may still be rewritten.
    pub next_offset: u64,
    /// Committed clean text from `offset`.
    pub text: String,
    /// Bytes lost between the requested `from` and `offset` because they were trimmed (0 when
    /// nothing was missed).
    pub dropped_bytes: u64,
    /// The current unterminated line, present only when this read reached the committed end
    /// and the line is not empty.
    pub pending: Option<String>,
}

/// Bounded clean-text log with absolute offsets. See the module docs.
#[derive(Debug, Clone)]
pub struct CleanLog {
    buf: VecDeque<u8>,
    /// Absolute offset of `buf[0]`.
    start: u64,
    cap: usize,
    cleaner: Cleaner,
    scratch: String,
}

impl Default for CleanLog {
    fn default() -> Self {
        Self::new()
    }
}

impl CleanLog {
    /// A log keeping the last [`DEFAULT_LOG_CAP`] bytes of committed text.
    pub fn new() -> Self {
        Self::with_cap(DEFAULT_LOG_CAP)
    }

    /// A log keeping the last [`DEFAULT_LOG_CAP`] bytes of committed text, for a terminal
    /// `cols` columns wide (see [`CleanLog::set_width`]).
    pub fn with_width(cols: u16) -> Self {
        let mut log = Self::new();
        log.set_width(cols);
        log
    }

    /// A log keeping the last `cap` bytes of committed text (at least 4, one character).
    pub fn with_cap(cap: usize) -> Self {
        Self {
            buf: VecDeque::new(),
            start: 0,
            cap: cap.max(4),
            cleaner: Cleaner::new(),
            scratch: String::new(),
        }
    }

    /// Sets the terminal width in columns (80 until set; 0 = unknown, lines never wrap), so
    /// that soft-wrapped lines are cleaned like the terminal shows them. Call it whenever the
    /// PTY is resized.
    pub fn set_width(&mut self, cols: u16) {
        self.cleaner.set_width(cols);
    }

    /// Cleans raw PTY bytes and appends the lines they complete.
    pub fn push_raw(&mut self, bytes: &[u8]) {
        for piece in bytes.chunks(PUSH_PIECE) {
            self.scratch.clear();
            self.cleaner.push(piece, &mut self.scratch);
            self.append_scratch();
        }
    }

    /// Ends the stream (e.g. the session closed): the pending line is committed as is.
    pub fn finish(&mut self) {
        self.scratch.clear();
        self.cleaner.finish(&mut self.scratch);
        self.append_scratch();
    }

    fn append_scratch(&mut self) {
        let text = self.scratch.as_bytes();
        if text.is_empty() {
            return;
        }
        self.buf.extend(text);
        let excess = self.buf.len().saturating_sub(self.cap);
        if excess > 0 {
            // Trim whole characters: also drop the continuation bytes after the cut.
            let mut cut = excess;
            while self.buf.get(cut).is_some_and(|b| (0x80..0xc0).contains(b)) {
                cut += 1;
            }
            self.buf.drain(..cut);
            self.start += cut as u64;
        }
        if self.scratch.capacity() > 2 * PUSH_PIECE {
            self.scratch.shrink_to(PUSH_PIECE);
        }
    }

    /// Absolute offset just past the last committed byte.
    pub fn end_offset(&self) -> u64 {
        self.start + self.buf.len() as u64
    }

    /// Absolute offset of the first byte still kept (= bytes trimmed so far).
    pub fn dropped_bytes(&self) -> u64 {
        self.start
    }

    /// The current unterminated line.
    pub fn pending(&self) -> &str {
        self.cleaner.pending()
    }

    /// Reads committed text from absolute offset `from`, at most `limit` bytes.
    ///
    /// - `from` before the first kept byte: the read starts there and `dropped_bytes` says how
    ///   many bytes were missed. `from` past the end reads nothing at the end.
    /// - `from` inside a multi-byte character starts at the next character.
    /// - `limit` is cut back to a character boundary; if that leaves nothing but text exists,
    ///   one whole character is returned anyway so a reader always makes progress. A `limit`
    ///   of 0 reads nothing.
    /// - `pending` is filled only when the read reached the committed end.
    pub fn read(&self, from: u64, limit: usize) -> LogRead {
        let end = self.end_offset();
        let dropped_bytes = self.start.saturating_sub(from);
        let mut lo = usize::try_from(from.clamp(self.start, end) - self.start).unwrap_or(0);
        while self.is_continuation(lo) {
            lo += 1;
        }
        let avail = self.buf.len() - lo;
        let mut hi = lo + avail.min(limit);
        while hi > lo && self.is_continuation(hi) {
            hi -= 1;
        }
        if hi == lo && limit > 0 && avail > 0 {
            hi = lo + 1;
            while self.is_continuation(hi) {
                hi += 1;
            }
        }
        let text = self.text(lo, hi);
        let offset = self.start + lo as u64;
        let next_offset = self.start + hi as u64;
        let pending =
            (next_offset == end && !self.pending().is_empty()).then(|| self.pending().to_owned());
        LogRead {
            offset,
            next_offset,
            text,
            dropped_bytes,
            pending,
        }
    }

    /// Whether buffer index `i` holds a UTF-8 continuation byte (false past the end).
    fn is_continuation(&self, i: usize) -> bool {
        self.buf.get(i).is_some_and(|b| (0x80..0xc0).contains(b))
    }

    /// The text between buffer indexes `lo..hi` (both character boundaries).
    fn text(&self, lo: usize, hi: usize) -> String {
        let (a, b) = self.buf.as_slices();
        let mut bytes = Vec::with_capacity(hi - lo);
        if lo < a.len() {
            bytes.extend_from_slice(&a[lo..hi.min(a.len())]);
        }
        if hi > a.len() {
            bytes.extend_from_slice(&b[lo.saturating_sub(a.len())..hi - a.len()]);
        }
        String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_read_returns_only_newer_text() {
        let mut log = CleanLog::default();
        log.push_raw(b"\x1b[32mone\x1b[0m\r\ntwo\r\n$ ");
        let r1 = log.read(0, usize::MAX);
        assert_eq!(r1.text, "one\ntwo\n");
        assert_eq!(r1.offset, 0);
        assert_eq!(r1.next_offset, 8);
        assert_eq!(r1.dropped_bytes, 0);
        assert_eq!(r1.pending.as_deref(), Some("$ "));
        log.push_raw(b"ls\r\nfile\r\n$ ");
        let r2 = log.read(r1.next_offset, usize::MAX);
        assert_eq!(r2.text, "$ ls\nfile\n");
        assert_eq!(r2.offset, 8);
        assert_eq!(r2.next_offset, log.end_offset());
        assert_eq!(r2.pending.as_deref(), Some("$ "));
        let r3 = log.read(r2.next_offset, usize::MAX);
        assert_eq!(r3.text, "");
        assert_eq!(r3.next_offset, r2.next_offset);
        assert_eq!(r3.pending.as_deref(), Some("$ "));
    }

    #[test]
    fn pending_only_when_read_reaches_the_end() {
        let mut log = CleanLog::default();
        log.push_raw(b"abcdef\n> ");
        let r = log.read(0, 3);
        assert_eq!((r.text.as_str(), r.next_offset), ("abc", 3));
        assert_eq!(r.pending, None);
        let r = log.read(3, 100);
        assert_eq!(r.text, "def\n");
        assert_eq!(r.pending.as_deref(), Some("> "));
        log.push_raw(b"\n");
        assert_eq!(log.read(7, 100).pending, None);
    }

    #[test]
    fn dropped_region_is_reported_after_more_than_the_cap() {
        let mut log = CleanLog::default();
        let line = format!("{}\n", "x".repeat(99));
        for _ in 0..15_000 {
            log.push_raw(line.as_bytes());
        }
        let total = 15_000 * 100;
        assert_eq!(log.end_offset(), total);
        assert_eq!(log.dropped_bytes(), total - DEFAULT_LOG_CAP as u64);
        let r = log.read(1000, 50);
        assert_eq!(r.offset, log.dropped_bytes());
        assert_eq!(r.dropped_bytes, log.dropped_bytes() - 1000);
        assert_eq!(r.text.len(), 50);
        let r = log.read(log.dropped_bytes(), 10);
        assert_eq!(r.dropped_bytes, 0);
        let r = log.read(total + 500, 10);
        assert_eq!(
            (r.offset, r.next_offset, r.text.as_str()),
            (total, total, "")
        );
    }

    #[test]
    fn limit_respects_char_boundaries() {
        let mut log = CleanLog::default();
        log.push_raw("aé€😀\n".as_bytes());
        // a=1 byte, é=2, €=3, 😀=4, \n=1
        let cases: [(u64, usize, &str); 8] = [
            (0, 1, "a"),
            (0, 2, "a"),
            (0, 3, "aé"),
            (0, 5, "aé"),
            (0, 6, "aé€"),
            (1, 1, "é"),
            (2, 100, "€😀\n"),
            (3, 2, "€"),
        ];
        for (from, limit, want) in cases {
            let r = log.read(from, limit);
            assert_eq!(r.text, want, "from {from} limit {limit}");
            assert_eq!(r.next_offset, r.offset + r.text.len() as u64);
        }
        assert_eq!(log.read(0, 0).text, "");
    }

    #[test]
    fn trimming_keeps_whole_characters() {
        let mut log = CleanLog::with_cap(10);
        log.push_raw("€€€€€€\n".as_bytes());
        let r = log.read(0, usize::MAX);
        assert!(r.text.len() <= 10);
        assert_eq!(r.text, "€€€\n");
        assert_eq!(r.dropped_bytes, log.dropped_bytes());
        assert_eq!(log.dropped_bytes() + r.text.len() as u64, log.end_offset());
    }

    #[test]
    fn finish_commits_the_pending_line() {
        let mut log = CleanLog::default();
        log.push_raw(b"no newline");
        assert_eq!(log.end_offset(), 0);
        log.finish();
        assert_eq!(log.read(0, 100).text, "no newline");
        assert_eq!(log.pending(), "");
    }
}
