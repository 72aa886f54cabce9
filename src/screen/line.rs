//! [`PendingLine`]: the cleaner's model of the current, unterminated logical line.
//!
//! Text is written at a cursor and overwrites what is there, as on a terminal; the cursor can
//! move (`\r`, backspace, `ESC[nA`/`B`/`C`/`D`/`G`) and the line can be edited in place (`ESC[K`
//! variants, `ESC[nP`, `ESC[n@`, `ESC[nX`). The cursor is a character index into the logical
//! line: columns count characters, not display width.
//!
//! With a known terminal width `w` ([`PendingLine::set_width`]; 0 means unknown) the logical
//! line is a run of soft-wrapped rows: index `i` is row `i / w`, column `i % w`, and cursor
//! controls act on the current row as on an auto-wrapping `xenl` terminal:
//!
//! - writing the last column of a row leaves the cursor *pending wrap*: a `\r` (or backspace,
//!   or a cursor move) then acts on that same row, while the next printable character goes to
//!   the start of the next row. This is what readline's `" \r"` wrap trick relies on;
//! - `\r` goes to the start of the current row; backspace and `ESC[nD` stop at it, `ESC[nC`
//!   stops at the row's last column and `ESC[nG` counts from the row start;
//! - `ESC[nA`/`ESC[nB` move between the rows of the line (never above its first row, never
//!   below the last row it has reached);
//! - `ESC[K`, `ESC[nP`, `ESC[n@` and `ESC[nX` only touch the current row; cells they free in
//!   the middle of the line become blanks so later rows keep their place;
//! - `\n` on a row above the line's last row moves to the next row instead of ending the line
//!   (readline moves down that way while redrawing). When the rows below hold nothing but
//!   blanks, the feed may also be the end of the line (readline ends an exact-width line from
//!   its first row); the line is then *left behind*: it is committed, with a `\n`, by the next
//!   thing that is not a cursor move or an erase (text, a `\n`, a mode change, an OSC string),
//!   or resumed if the cursor moves back up into it.
//!
//! Trailing blanks that run to the end of a row are erased cells (or the space readline writes
//! to force a wrap), not text: they are left out of [`PendingLine::as_str`] and of committed
//! text. With width 0 the line is a single row of unbounded width and `\n` always ends it.
//!
//! Committing moves the line to the output; a line longer than [`MAX_PENDING_LINE`] bytes is
//! committed without a newline so memory stays bounded.

/// Longest pending (unterminated) line kept before it is committed without a newline.
pub const MAX_PENDING_LINE: usize = 16 * 1024;

/// Cursor moves further right than this are clamped (no giant space padding).
const MAX_COL: usize = MAX_PENDING_LINE;

/// Blanks for erased cells, used in slices so erasing never allocates.
const SPACES: &str = "                                                                ";

/// Expected length of a UTF-8 sequence from its lead byte.
pub(super) fn utf8_width(lead: u8) -> usize {
    match lead {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    }
}

/// The current line with a cursor. Invariant: `cur` is the byte offset of character `col`
/// when `col <= nchars`, else `line.len()` (the gap is padded with spaces on the next write).
#[derive(Debug, Clone, Default)]
pub(super) struct PendingLine {
    line: String,
    nchars: usize,
    col: usize,
    cur: usize,
    /// Terminal width in characters; 0 when unknown (no soft wraps).
    width: usize,
    /// Pending wrap: the last column of a row was just written. `col` is already the start of
    /// the next row, but the terminal cursor is still on `col - 1`.
    wrap: bool,
    /// The last row the line has reached (by writing, or by a line feed between its rows).
    last_row: usize,
    /// A line feed moved the cursor below everything but blanks; see the module docs.
    left_behind: bool,
}

impl PendingLine {
    /// Sets the terminal width (0 = unknown). The line's text is kept; its rows are recounted.
    pub(super) fn set_width(&mut self, width: usize) {
        if width == self.width {
            return;
        }
        self.settle();
        self.width = width;
        self.last_row = match width {
            0 => 0,
            w => self.nchars.saturating_sub(1).max(self.col) / w,
        };
    }

    /// The line's text, without trailing blanks that run to the end of a row.
    pub(super) fn as_str(&self) -> &str {
        &self.line[..self.kept_len()]
    }

    /// Whether the line is empty with the cursor at column 0 (a fresh line).
    pub(super) fn is_fresh(&self) -> bool {
        self.line.is_empty() && self.col == 0 && self.last_row == 0 && !self.left_behind
    }

    /// Writes already-cleaned text at the cursor, overwriting like a terminal.
    ///
    /// Whenever the line would grow past [`MAX_PENDING_LINE`] bytes it is committed to `out`
    /// without a newline, at a point that depends only on the text, never on how it was split
    /// into calls.
    pub(super) fn write_str(&mut self, s: &str, out: &mut String) {
        if s.is_empty() {
            return;
        }
        self.resolve(out);
        // A pending wrap happens now: `col` already is the start of the next row.
        self.wrap = false;
        let mut rest = s;
        while !rest.is_empty() {
            if self.col > self.nchars {
                let pad = self.col - self.nchars;
                self.line.extend(std::iter::repeat_n(' ', pad));
                self.nchars = self.col;
                self.cur = self.line.len();
            }
            if self.cur == self.line.len() {
                let room = MAX_PENDING_LINE.saturating_sub(self.line.len());
                let mut k = rest.len().min(room);
                while !rest.is_char_boundary(k) {
                    k -= 1;
                }
                let (now, later) = rest.split_at(k);
                let n = if now.is_ascii() {
                    now.len()
                } else {
                    now.chars().count()
                };
                self.line.push_str(now);
                self.nchars += n;
                self.col += n;
                self.cur = self.line.len();
                rest = later;
                if !rest.is_empty() {
                    self.spill(out, false);
                }
                continue;
            }
            let tail = &self.line.as_bytes()[self.cur..];
            // Overwrite a whole ASCII-over-ASCII stretch at once, else one character.
            let n = rest
                .bytes()
                .zip(tail)
                .take_while(|(a, b)| a.is_ascii() && b.is_ascii())
                .count();
            let (old_len, new_len) = if n > 0 {
                (n, n)
            } else {
                let new_len = rest.chars().next().map_or(1, char::len_utf8);
                (utf8_width(tail[0]), new_len)
            };
            self.line
                .replace_range(self.cur..self.cur + old_len, &rest[..new_len]);
            self.cur += new_len;
            self.col += n.max(1);
            rest = &rest[new_len..];
            if self.line.len() > MAX_PENDING_LINE {
                self.spill(out, false);
            }
        }
        if self.width > 0 && self.col > 0 {
            self.last_row = self.last_row.max((self.col - 1) / self.width);
            self.wrap = self.col.is_multiple_of(self.width);
        }
    }

    /// Commits a line that was left behind by a line feed (see the module docs); the cursor
    /// keeps its column on the fresh line.
    pub(super) fn resolve(&mut self, out: &mut String) {
        if self.left_behind {
            let column = self.col - self.row_start(self.col);
            self.commit(out, true);
            self.seek(column);
        }
    }

    /// `\r`: to the start of the current row.
    pub(super) fn carriage_return(&mut self) {
        let p = self.settle();
        self.seek(self.row_start(p));
    }

    /// Backspace: one column left, stopping at the start of the row.
    pub(super) fn backspace(&mut self) {
        self.cursor_left(1);
    }

    /// `ESC[nD`: `n` columns left, stopping at the start of the row.
    pub(super) fn cursor_left(&mut self, n: usize) {
        let p = self.settle();
        self.seek(p.saturating_sub(n).max(self.row_start(p)));
    }

    /// `ESC[nC`: `n` columns right, stopping at the last column of the row.
    pub(super) fn cursor_right(&mut self, n: usize) {
        let p = self.settle();
        self.seek(p.saturating_add(n).min(self.row_end(p) - 1));
    }

    /// `ESC[nG`: to column `n` (1-based) of the current row.
    pub(super) fn cursor_column(&mut self, n: usize) {
        let p = self.settle();
        let last = self.width.saturating_sub(1);
        let column = if self.width == 0 {
            n - 1
        } else {
            last.min(n - 1)
        };
        self.seek(self.row_start(p).saturating_add(column));
    }

    /// `ESC[nA`: `n` rows up within the line (no effect when the width is unknown).
    pub(super) fn cursor_up(&mut self, n: usize) {
        if self.width == 0 {
            return;
        }
        let p = self.settle();
        let row = p / self.width;
        let to = row.saturating_sub(n);
        if to != row {
            self.left_behind = false;
        }
        self.seek(to * self.width + p % self.width);
    }

    /// `ESC[nB`: `n` rows down within the line (no effect when the width is unknown).
    pub(super) fn cursor_down(&mut self, n: usize) {
        if self.width == 0 {
            return;
        }
        let p = self.settle();
        let row = p / self.width;
        let to = row.saturating_add(n).min(self.last_row.max(row));
        self.seek(to * self.width + p % self.width);
    }

    /// `\n`: to the start of the next row of the line, or the end of the line (committed to
    /// `out` with its newline). See the module docs.
    pub(super) fn line_feed(&mut self, out: &mut String) {
        self.resolve(out);
        let p = self.settle();
        if let Some(row) = p.checked_div(self.width) {
            if row < self.last_row {
                let next = (row + 1) * self.width;
                self.seek(next);
                self.left_behind = self.content_chars() <= next;
                return;
            }
        }
        self.commit(out, true);
    }

    /// `ESC[K` / `ESC[0K`: erase from the cursor to the end of the row.
    pub(super) fn erase_right(&mut self) {
        let p = self.settle();
        if p >= self.nchars {
            return;
        }
        let end = self.row_end(p);
        if self.nchars <= end {
            self.line.truncate(self.cur);
            self.nchars = p;
        } else {
            self.fill(self.cur, end - p);
        }
    }

    /// `ESC[1K`: erase from the start of the row through the cursor (cells become blanks).
    pub(super) fn erase_left(&mut self) {
        let p = self.settle();
        let start = self.row_start(p);
        let end = p.saturating_add(1).min(self.nchars);
        if start < end {
            let at = self.byte_of(start);
            self.fill(at, end - start);
            self.cur = if p < self.nchars {
                at + (p - start)
            } else {
                self.line.len()
            };
        }
    }

    /// `ESC[2K`: erase the whole row; the cursor column stays.
    pub(super) fn erase_line(&mut self) {
        let p = self.settle();
        let start = self.row_start(p);
        if start >= self.nchars {
            return;
        }
        let at = self.byte_of(start);
        if self.nchars <= self.row_end(p) {
            self.line.truncate(at);
            self.nchars = start;
            self.cur = at;
        } else {
            self.fill(at, self.width);
            self.cur = at + (p - start);
        }
    }

    /// `ESC[nX`: erase `n` characters from the cursor (they become blanks, nothing moves).
    pub(super) fn erase_chars(&mut self, n: usize) {
        let p = self.settle();
        if p < self.nchars {
            let k = n.min(self.row_end(p) - p).min(self.nchars - p);
            self.fill(self.cur, k);
        }
    }

    /// `ESC[nP`: delete `n` characters at the cursor, shifting the rest of the row left.
    pub(super) fn delete_chars(&mut self, n: usize) {
        let p = self.settle();
        if p >= self.nchars {
            return;
        }
        let end = self.row_end(p);
        let k = n.min(end - p).min(self.nchars - p);
        let cut = self.advance(self.cur, k);
        self.line.replace_range(self.cur..cut, "");
        self.nchars -= k;
        if self.nchars > end - k {
            // Later rows keep their place: blanks come in at the end of this row.
            let at = self.advance(self.cur, end - k - p);
            self.insert_blanks(at, k);
        }
    }

    /// `ESC[n@`: insert `n` blanks at the cursor, shifting the rest of the row right (what is
    /// pushed past the end of the row is lost).
    pub(super) fn insert_chars(&mut self, n: usize) {
        let p = self.settle();
        if p >= self.nchars {
            return;
        }
        let end = self.row_end(p);
        let k = n.min(end - p).min(MAX_COL);
        let row_chars = self.nchars.min(end) - p;
        self.insert_blanks(self.cur, k);
        if self.width > 0 && row_chars + k > end - p {
            // The characters pushed off the row sit at the start of the next row now.
            let from = self.advance(self.cur, end - p);
            let lost = row_chars + k - (end - p);
            let to = self.advance(from, lost);
            self.line.replace_range(from..to, "");
            self.nchars -= lost;
        }
        if self.line.len() > MAX_PENDING_LINE {
            let mut cut = MAX_PENDING_LINE;
            while !self.line.is_char_boundary(cut) {
                cut -= 1;
            }
            self.nchars -= self.line[cut..].chars().count();
            self.line.truncate(cut);
        }
    }

    /// Moves the line to `out` (with `\n` if `newline`), without the trailing blanks
    /// [`Self::as_str`] leaves out, and starts a fresh one at column 0.
    pub(super) fn commit(&mut self, out: &mut String, newline: bool) {
        let keep = self.kept_len();
        self.line.truncate(keep);
        self.spill(out, newline);
    }

    /// Ends the stream: commits the line, with a newline if it was left behind by one.
    pub(super) fn finish(&mut self, out: &mut String) {
        let newline = self.left_behind;
        self.commit(out, newline);
    }

    /// Moves the line to `out` as it is and starts a fresh one at column 0.
    fn spill(&mut self, out: &mut String, newline: bool) {
        out.push_str(&self.line);
        if newline {
            out.push('\n');
        }
        self.line.clear();
        if self.line.capacity() > 4 * MAX_PENDING_LINE {
            self.line.shrink_to(MAX_PENDING_LINE);
        }
        self.nchars = 0;
        self.col = 0;
        self.cur = 0;
        self.wrap = false;
        self.last_row = 0;
        self.left_behind = false;
    }

    /// Moves the cursor to column `col` (clamped to [`MAX_COL`]); a pending wrap is dropped.
    pub(super) fn seek(&mut self, col: usize) {
        let col = col.min(MAX_COL);
        self.cur = self.byte_of(col);
        self.col = col;
        self.wrap = false;
    }

    /// Drops a pending wrap (the cursor goes back onto the last column it wrote) and returns
    /// the cursor index.
    fn settle(&mut self) -> usize {
        if self.wrap {
            self.seek(self.col - 1);
        }
        self.col
    }

    /// Index of the first character of the row holding index `p`.
    fn row_start(&self, p: usize) -> usize {
        match self.width {
            0 => 0,
            w => p - p % w,
        }
    }

    /// Index just past the row holding index `p` (unbounded when the width is unknown).
    fn row_end(&self, p: usize) -> usize {
        match self.width {
            0 => usize::MAX,
            w => self.row_start(p).saturating_add(w),
        }
    }

    /// Number of characters before the line's trailing spaces.
    fn content_chars(&self) -> usize {
        let trimmed = self.line.trim_end_matches(' ').len();
        self.nchars - (self.line.len() - trimmed)
    }

    /// Byte length of the line without trailing blanks that run to the end of a row (all of
    /// it when the width is unknown).
    fn kept_len(&self) -> usize {
        let trimmed = self.line.trim_end_matches(' ').len();
        if self.width == 0 || trimmed == self.line.len() {
            return self.line.len();
        }
        let content = self.nchars - (self.line.len() - trimmed);
        let row_end = content.next_multiple_of(self.width).max(self.width);
        if self.nchars >= row_end {
            trimmed
        } else {
            self.line.len()
        }
    }

    /// Byte offset of character `c` (or the end of the line), walking from the cursor or from
    /// the start of the line, whichever is closer.
    fn byte_of(&self, c: usize) -> usize {
        if c >= self.nchars {
            return self.line.len();
        }
        if self.nchars == self.line.len() {
            return c;
        }
        let here = self.col.min(self.nchars);
        let (mut at, mut b) = if c < here && c <= here - c {
            (0, 0)
        } else {
            (here, self.cur)
        };
        if at <= c {
            return self.advance(b, c - at);
        }
        while at > c {
            b -= 1;
            while !self.line.is_char_boundary(b) {
                b -= 1;
            }
            at -= 1;
        }
        b
    }

    /// Byte offset `k` characters after byte offset `b` (or the end of the line).
    fn advance(&self, b: usize, k: usize) -> usize {
        self.line[b..]
            .char_indices()
            .nth(k)
            .map_or(self.line.len(), |(i, _)| b + i)
    }

    /// Turns the `k` characters from byte offset `at` into blanks (the character count stays).
    fn fill(&mut self, at: usize, k: usize) {
        let end = self.advance(at, k);
        if end - at == k {
            // Single-byte characters: overwrite in place, nothing after them moves.
            let mut pos = at;
            while pos < end {
                let n = (end - pos).min(SPACES.len());
                self.line.replace_range(pos..pos + n, &SPACES[..n]);
                pos += n;
            }
        } else {
            self.line.replace_range(at..end, "");
            self.insert_blank_bytes(at, k);
        }
    }

    /// Inserts `k` blanks at byte offset `at`.
    fn insert_blanks(&mut self, at: usize, k: usize) {
        self.insert_blank_bytes(at, k);
        self.nchars += k;
    }

    /// Inserts `k` spaces at byte offset `at`, moving the rest of the line once.
    fn insert_blank_bytes(&mut self, at: usize, k: usize) {
        if k <= SPACES.len() {
            self.line.insert_str(at, &SPACES[..k]);
        } else {
            let tail = self.line.split_off(at);
            self.line.extend(std::iter::repeat_n(' ', k));
            self.line.push_str(&tail);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_after(ops: impl FnOnce(&mut PendingLine, &mut String)) -> (String, String) {
        let mut l = PendingLine::default();
        let mut out = String::new();
        ops(&mut l, &mut out);
        (out, l.as_str().to_owned())
    }

    #[test]
    fn overwrite_multibyte_with_ascii_and_back() {
        let (_, s) = line_after(|l, o| {
            l.write_str("héllo wörld", o);
            l.seek(1);
            l.write_str("e", o);
            l.seek(7);
            l.write_str("ö", o);
            l.seek(0);
            l.write_str("ДД", o);
        });
        assert_eq!(s, "ДДllo wörld");
    }

    #[test]
    fn seek_past_end_pads_on_write() {
        let (_, s) = line_after(|l, o| {
            l.write_str("ab", o);
            l.seek(5);
            l.write_str("x", o);
        });
        assert_eq!(s, "ab   x");
    }

    #[test]
    fn seek_back_through_multibyte() {
        let (_, s) = line_after(|l, o| {
            l.write_str("aé€😀z", o);
            l.seek(3);
            l.write_str("!", o);
            l.seek(1);
            l.erase_right();
        });
        assert_eq!(s, "a");
    }

    #[test]
    fn erase_left_and_delete() {
        let (_, s) = line_after(|l, o| {
            l.write_str("abcdef", o);
            l.seek(2);
            l.erase_left();
            l.write_str("Z", o);
        });
        assert_eq!(s, "  Zdef");
        let (_, s) = line_after(|l, o| {
            l.write_str("abcdef", o);
            l.seek(1);
            l.delete_chars(2);
            l.write_str("X", o);
        });
        assert_eq!(s, "aXef");
    }

    #[test]
    fn long_line_is_committed_without_newline() {
        let (out, s) = line_after(|l, o| {
            let chunk = "x".repeat(1000);
            for _ in 0..20 {
                l.write_str(&chunk, o);
            }
        });
        assert_eq!(out.len() + s.len(), 20_000);
        assert!(!out.contains('\n'));
        assert_eq!(out.len(), MAX_PENDING_LINE);
        assert_eq!(s.len(), 20_000 - MAX_PENDING_LINE);
    }

    #[test]
    fn huge_cursor_move_is_clamped() {
        let (out, s) = line_after(|l, o| {
            l.seek(usize::MAX);
            l.write_str("x", o);
        });
        assert_eq!(out.len() + s.len(), MAX_COL + 1);
        assert_eq!(s, "x");
    }
}
