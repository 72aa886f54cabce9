//! [`PendingLine`]: the cleaner's model of the current, unterminated terminal line.
//!
//! Text is written at a cursor column and overwrites what is there, as on a terminal; the
//! cursor can move (`\r`, backspace, `ESC[nD`/`C`/`G`) and the line can be edited in place
//! (`ESC[K` variants, `ESC[nP`). Columns count characters, not display width. Committing moves
//! the line to the output; a line longer than [`MAX_PENDING_LINE`] bytes is committed without
//! a newline so memory stays bounded.

/// Longest pending (unterminated) line kept before it is committed without a newline.
pub const MAX_PENDING_LINE: usize = 16 * 1024;

/// Cursor moves further right than this are clamped (no giant space padding).
const MAX_COL: usize = MAX_PENDING_LINE;

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
}

impl PendingLine {
    /// The line's text.
    pub(super) fn as_str(&self) -> &str {
        &self.line
    }

    /// Whether the line is empty with the cursor at column 0 (a fresh line).
    pub(super) fn is_fresh(&self) -> bool {
        self.line.is_empty() && self.col == 0
    }

    /// The cursor column.
    pub(super) fn col(&self) -> usize {
        self.col
    }

    /// Writes already-cleaned text at the cursor, overwriting like a terminal.
    ///
    /// Whenever the line would grow past [`MAX_PENDING_LINE`] bytes it is committed to `out`
    /// without a newline, at a point that depends only on the text, never on how it was split
    /// into calls.
    pub(super) fn write_str(&mut self, s: &str, out: &mut String) {
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
                    self.commit(out, false);
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
                self.commit(out, false);
            }
        }
    }

    /// Moves the cursor to column `col` (clamped to [`MAX_COL`]).
    pub(super) fn seek(&mut self, col: usize) {
        let col = col.min(MAX_COL);
        if col >= self.nchars {
            self.cur = self.line.len();
        } else {
            // Walk from the cursor, or from the start of the line when that is closer.
            let (here, here_byte) = if self.col <= self.nchars {
                (self.col, self.cur)
            } else {
                (self.nchars, self.line.len())
            };
            let (mut c, mut b) = if col < here && col <= here - col {
                (0, 0)
            } else {
                (here, here_byte)
            };
            while c > col {
                b -= 1;
                while !self.line.is_char_boundary(b) {
                    b -= 1;
                }
                c -= 1;
            }
            self.cur = self.advance(b, col - c);
        }
        self.col = col;
    }

    /// Byte offset `k` characters after byte offset `b` (or the end of the line).
    fn advance(&self, b: usize, k: usize) -> usize {
        self.line[b..]
            .char_indices()
            .nth(k)
            .map_or(self.line.len(), |(i, _)| b + i)
    }

    /// `ESC[K` / `ESC[0K`: erase from the cursor to the end of the line.
    pub(super) fn erase_right(&mut self) {
        if self.col < self.nchars {
            self.line.truncate(self.cur);
            self.nchars = self.col;
        }
    }

    /// `ESC[1K`: erase from the start of the line through the cursor (cells become blanks).
    pub(super) fn erase_left(&mut self) {
        let k = self.col.saturating_add(1).min(self.nchars);
        let end = self.advance(0, k);
        self.line.replace_range(..end, &" ".repeat(k));
        self.cur = if self.col < self.nchars {
            self.col
        } else {
            self.line.len()
        };
    }

    /// `ESC[2K`: erase the whole line; the cursor column stays.
    pub(super) fn erase_line(&mut self) {
        self.line.clear();
        self.nchars = 0;
        self.cur = 0;
    }

    /// `ESC[nP`: delete `n` characters at the cursor, shifting the rest left.
    pub(super) fn delete_chars(&mut self, n: usize) {
        if self.col < self.nchars {
            let k = n.min(self.nchars - self.col);
            let end = self.advance(self.cur, k);
            self.line.replace_range(self.cur..end, "");
            self.nchars -= k;
        }
    }

    /// Moves the line to `out` (with `\n` if `newline`) and starts a fresh one at column 0.
    pub(super) fn commit(&mut self, out: &mut String, newline: bool) {
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
