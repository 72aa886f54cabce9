//! Golden tests of soft-wrapped lines and the alternate screen, on real bytes captured from
//! bash 5.2 (readline, `TERM=xterm-256color`, `PS1='$ '`, empty inputrc) on a PTY of the stated
//! width, keys typed one at a time. Each input is also cleaned byte by byte and split at every
//! position, which must not change the result.
//!
//! The typed commands are `echo ` plus the alphabet repeated ([`letters`]).

use super::{CleanLog, Cleaner};

/// The first `n` letters of the alphabet repeated.
fn letters(n: usize) -> String {
    ('a'..='z').cycle().take(n).collect()
}

/// Cleans the pieces with a cleaner for a terminal `width` columns wide; returns (committed,
/// pending).
fn clean_at<'a>(width: u16, pieces: impl IntoIterator<Item = &'a [u8]>) -> (String, String) {
    let mut c = Cleaner::new();
    c.set_width(width);
    let mut out = String::new();
    for piece in pieces {
        c.push(piece, &mut out);
    }
    (out, c.pending().to_owned())
}

/// Asserts what `input` cleans to at `width`: whole, byte by byte and split at every position.
#[track_caller]
fn check(width: u16, input: &[u8], committed: &str, pending: &str) {
    let want = (committed.to_owned(), pending.to_owned());
    assert_eq!(clean_at(width, [input]), want, "whole input");
    assert_eq!(clean_at(width, input.chunks(1)), want, "byte by byte");
    for cut in 1..input.len() {
        let (a, b) = input.split_at(cut);
        assert_eq!(clean_at(width, [a, b]), want, "split at {cut}");
    }
}

// Captured with `printf '...' | less`, `vi`, and typed `echo` lines (see the module docs).

const LONG_40: &[u8] =
    b"\x1b[?2004h$ echo abcdefghijklmnopqrstuvwxyzabcdefg \rhijklmnopqrstuvwxyzabcdefghijklmnopq\
    rstu \rvwxyzabcdefghijklmnopq\r\n\x1b[?2004l\rabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqr\
    stuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopq\r\n\x1b[?2004h$ ";

const LONG_120: &[u8] =
    b"\x1b[?2004h$ echo abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrst\
    uvwxyzabcdefghijklmnopqrstuvwxyzabcdefghi \rjklmnopqrstuvwxyzabcdefghijklmno\r\n\x1b[?2004\
    l\rabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghi\
    jklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmno\r\n\x1b[?2004h$ ";

const EXACT_40: &[u8] =
    b"\x1b[?2004h$ echo abcdefghijklmnopqrstuvwxyzabcdefg \r\x1b[A$ echo abcdefghijklmnopqrstuvw\
    xyzabcdef\x1b[Kg\r\n\x1b[?2004l\rabcdefghijklmnopqrstuvwxyzabcdefg\r\n\x1b[?2004h$ ";

const BS_40: &[u8] =
    b"\x1b[?2004h$ echo abcdefghijklmnopqrstuvwxyzabcdefg \rhijklmn\x08 \x08\x08 \x08\x08 \x08\
    \x08 \x08\x08 \x08\x08 \x08\x08 \x08\x1b[A$ echo abcdefghijklmnopqrstuvwxyzabcdefg \r\x1b[\
    K\x1b[A$ echo abcdefghijklmnopqrstuvwxyzabcdef\x1b[K\r\n\r\x1b[K\x1b[A$ echo abcdefghijklm\
    nopqrstuvwxyzabcdefX \r\x1b[A$ echo abcdefghijklmnopqrstuvwxyzabcdef\x1b[KX\r\n\x1b[?2004l\
    \rabcdefghijklmnopqrstuvwxyzabcdefX\r\n\x1b[?2004h$ ";

const LEFT_40: &[u8] =
    b"\x1b[?2004h$ echo abcdefghijklmnopqrstuvwxyzabcdefg \rhijklmn\x08\x08\x08\x08\x08\x08\r\
    \x1b[A$ echo abcdefghijklmnopqrstuvwxyzabcdefXg\x1b[1@h\r\r\n\x1b[?2004l\rabcdefghijklmnop\
    qrstuvwxyzabcdefXghijklmn\r\n\x1b[?2004h$ ";

const HOME_INSERT_40: &[u8] =
    b"\x1b[?2004h$ echo abcdefghijklmnopqrstuvwxyzabcdefg \rhijklmnopqrstuvwxyzabcdefghijklmnopq\
    rstu \r\x1b[A\x1b[A$ Xecho abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk\
    lmnopqrstu\ru\x1b[A\x1b[A X\r\n\r\n\r\r\n\x1b[?2004l\rbash: Xecho: command not found\r\n\
    \x1b[?2004h$ ";

const KILL_40: &[u8] =
    b"\x1b[?2004h$ echo abcdefghijklmnopqrstuvwxyzabcdefg \rhijklmnopqrstuvwxyzabcdefghijklmnopq\
    rstu \r\x1b[A\x1b[A$ echo \x1b[K\r\n\r\x1b[K\r\n\r\x1b[K\x1b[A\x1b[A$ echo \r\n\x1b[?2004l\
    \r\r\n\x1b[?2004h$ ";

const CTRL_U_40: &[u8] =
    b"\x1b[?2004h$ echo abcdefghijklmnopqrstuvwxyzabcdefg \rhij\x1b[A\x08\x1b[K\r\n\r\x1b[K\x1b[\
    A$ echo hi\r\n\x1b[?2004l\rhi\r\n\x1b[?2004h$ ";

const PASTE_40: &[u8] =
    b"\x1b[?2004h$ echo abcdefghijklmnopqrstuvwxyzabcdefgh\rhijklmnopqrstuvwxyzabcdefghijklmnopq\
    rstuv\rvwxyzabcdefghijklmnopq\r\n\x1b[?2004l\rabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqr\
    stuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopq\r\n\x1b[?2004h$ ";

const OUTPUT_40: &[u8] =
    b"\x1b[?2004h$ printf '%0300d\\n' 0\r\n\x1b[?2004l\r0000000000000000000000000000000000000000\
    000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
    000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
    00000000000000000000000000000000000000000000000000000000000000000000000000000000\r\n\x1b[?\
    2004h$ ";

const LESS: &[u8] =
    b"\x1b[?2004h$ printf \"one\\ntwo\\n\" | less\r\n\x1b[?2004l\r\x1b[?1049h\x1b[22;0;0t\x1b[?1\
    h\x1b=\rone\r\ntwo\r\n\x1b[7m(END)\x1b[27m\x1b[K\r\x1b[K\x1b[?1l\x1b>\x1b[?1049l\x1b[23;0;\
    0t\x1b[?2004h$ ";

const VI: &[u8] =
    b"\x1b[?2004h$ vi -u NONE -N /tmp/cap/x.txt\r\n\x1b[?2004l\r\x1b[?1049h\x1b[22;0;0t\x1b[>4;2\
    m\x1b[?1h\x1b=\x1b[?2004h\x1b[?1004h\x1b[1;24r\x1b[?12h\x1b[?12l\x1b[22;2t\x1b[22;1t\x1b[2\
    7m\x1b[23m\x1b[29m\x1b[m\x1b[H\x1b[2J\x1b[?25l\x1b[24;1H\"~/x.txt\" [New]\x1b[2;1H\xbd\x1b\
    [6n\x1b[2;1H  \x1b[3;1H\x1bPzz\x1b\\\x1b[0%m\x1b[6n\x1b[3;1H           \x1b[1;1H\x1b[>c\
    \x1b]10;?\x07\x1b]11;?\x07\x1b[2;1H\x1b[94m~                                       \x1b[3;\
    1H~                                       \x1b[4;1H~                                      \
    \x20\x1b[5;1H~                                       \x1b[6;1H~                           \
    \x20           \x1b[7;1H~                                       \x1b[8;1H~                \
    \x20                      \x1b[9;1H~                                       \x1b[10;1H~    \
    \x20                                  \x1b[11;1H~                                       \
    \x1b[12;1H~                                       \x1b[13;1H~                             \
    \x20         \x1b[14;1H~                                       \x1b[15;1H~                \
    \x20                      \x1b[16;1H~                                       \x1b[17;1H~   \
    \x20                                   \x1b[18;1H~                                       \
    \x1b[19;1H~                                       \x1b[20;1H~                             \
    \x20         \x1b[21;1H~                                       \x1b[22;1H~                \
    \x20                      \x1b[23;1H~                                       \x1b[1;1H\x1b[\
    ?25h\x1b[?4m\x1b[?25l\x1b[m\x1b[24;1H\x1b[1m-- INSERT --\x1b[m\x1b[24;13H\x1b[K\x1b[1;1Hhe\
    llo\x1b[?25h\x1b[24;1H\x1b[K\x1b[1;5H\x1b[?25l\x1b[?25h\x1b[?25l\x1b[24;1H:q!\r\x1b[?2004l\
    \x1b[>4;m\x1b[23;2t\x1b[23;1t\x1b[24;1H\x1b[K\x1b[24;1H\x1b[?1004l\x1b[?2004l\x1b[?1l\x1b>\
    \x1b[?1049l\x1b[23;0;0t\x1b[?25h\x1b[>4;m\x1b[?2004h$ ";

/// `$ echo {l}` and its output, where the command line is `echo {l}`.
fn echoed(l: &str) -> String {
    format!("$ echo {l}\n{l}\n")
}

#[test]
fn long_line_at_width_40() {
    // 100 typed characters: readline writes " \r" after each full row.
    check(40, LONG_40, &echoed(&letters(95)), "$ ");
}

#[test]
fn long_line_at_width_120() {
    check(120, LONG_120, &echoed(&letters(145)), "$ ");
}

#[test]
fn long_line_typed_in_one_write_at_width_40() {
    // Typed faster than readline redraws: it writes the next character, then "\r".
    check(40, PASTE_40, &echoed(&letters(95)), "$ ");
}

#[test]
fn line_of_exactly_the_width() {
    // The line fills the row; readline goes back up, redraws, and ends it from the first row.
    check(40, EXACT_40, &echoed(&letters(33)), "$ ");
}

#[test]
fn backspace_across_the_wrap() {
    // 45 characters typed, 8 backspaces (back across the row boundary), then "X".
    let l = format!("{}X", letters(32));
    check(40, BS_40, &echoed(&l), "$ ");
}

#[test]
fn insert_after_cursor_left_across_the_wrap() {
    // 45 characters typed, 8 cursor-lefts, then "X": readline uses `ESC[1@` on the second row.
    let l = format!("{}X{}", letters(32), &letters(40)[32..]);
    check(40, LEFT_40, &echoed(&l), "$ ");
}

#[test]
fn insert_at_the_start_of_a_three_row_line() {
    let want = format!("$ Xecho {}\nbash: Xecho: command not found\n", letters(73));
    check(40, HOME_INSERT_40, &want, "$ ");
}

#[test]
fn kill_to_the_end_of_a_three_row_line() {
    // The command left is `echo ` (its trailing blank is not kept); `echo` prints an empty line.
    check(40, KILL_40, "$ echo\n\n", "$ ");
}

#[test]
fn kill_a_two_row_line_and_type_another() {
    check(40, CTRL_U_40, "$ echo hi\nhi\n", "$ ");
}

#[test]
fn long_output_line_stays_one_line() {
    let want = format!("$ printf '%0300d\\n' 0\n{}\n", "0".repeat(300));
    check(40, OUTPUT_40, &want, "$ ");
    let plain = format!("{}\r\n", "y".repeat(300));
    check(40, plain.as_bytes(), &format!("{}\n", "y".repeat(300)), "");
}

#[test]
fn pager_output_is_dropped() {
    check(40, LESS, "$ printf \"one\\ntwo\\n\" | less\n", "$ ");
}

#[test]
fn editor_output_is_dropped() {
    check(40, VI, "$ vi -u NONE -N /tmp/cap/x.txt\n", "$ ");
}

#[test]
fn width_zero_means_no_wraps() {
    let line = format!("{}\rY\n", "x".repeat(100));
    check(0, line.as_bytes(), &format!("Y{}\n", "x".repeat(99)), "");
    check(
        40,
        line.as_bytes(),
        &format!("{}Y{}\n", "x".repeat(80), "x".repeat(19)),
        "",
    );
}

#[test]
fn row_model_at_width_10() {
    let cases: [(&[u8], &str); 14] = [
        // Pending wrap: "\r" after the last column returns to the start of that row.
        (b"0123456789\rX\n", "X123456789\n"),
        (b"0123456789A\rX\n", "0123456789X\n"),
        // Backspace and cursor-left stop at the start of the row.
        (b"0123456789AB\r\x08\x08Z\n", "0123456789ZB\n"),
        (b"0123456789AB\x1b[9DZ\n", "0123456789ZB\n"),
        // Cursor-right stops at the last column, `ESC[nG` counts from the row start.
        (b"ab\x1b[50CZ\n", "ab       Z\n"),
        (b"0123456789abc\x1b[2GZ\n", "0123456789aZc\n"),
        // Up and down move between the rows of the line, never above its first row.
        (
            b"0123456789abcdefghij\x1b[AX\x1b[BY\n",
            "012345678XabcdefghiY\n",
        ),
        (b"abc\x1b[5AX\n", "abcX\n"),
        // Erases, deletes and inserts only touch the current row.
        (
            b"0123456789abcdefghij\x1b[A\r\x1b[3C\x1b[K\x1b[B\n",
            "012       abcdefghij\n",
        ),
        (
            b"0123456789abcdefghij\x1b[A\r\x1b[2P\x1b[B\n",
            "23456789  abcdefghij\n",
        ),
        (
            b"0123456789abcdefghij\x1b[A\r\x1b[2@XY\x1b[B\n",
            "XY01234567abcdefghij\n",
        ),
        (
            b"0123456789abcdefghij\x1b[A\x1b[2K\x1b[B\n",
            "          abcdefghij\n",
        ),
        // The blank readline writes to force a wrap is not text; blanks within a row are.
        (b"0123456789 \r\n", "0123456789\n"),
        (b"ab  \n", "ab  \n"),
    ];
    for (input, want) in cases {
        check(10, input, want, "");
    }
}

#[test]
fn row_model_with_multibyte_text_at_width_4() {
    let cases: [(&[u8], &str); 4] = [
        ("äöüß€ДДД\x1b[A\x1b[2P\x1b[B\n".as_bytes(), "äöü €ДДД\n"),
        (
            "äöüß€ДДД\x1b[A\r\x1b[1@Z\x1b[K\x1b[B\n".as_bytes(),
            "Z   €ДДД\n",
        ),
        ("äöüß€ДДД\x1b[2D\x1b[1K\n".as_bytes(), "äöüß  ДД\n"),
        (
            "äöüß€ДДД\x1b[A\x1b[3D\x1b[2X\r\x1b[2B\x08ё\n".as_bytes(),
            "  üßёДДД\n",
        ),
    ];
    for (input, want) in cases {
        check(4, input, want, "");
    }
}

#[test]
fn line_feed_between_rows_then_back_up() {
    // readline moves down with "\r\n" to clear a row, then back up with `ESC[A`: one line.
    check(
        10,
        b"0123456789abc\x1b[A\r\n\r\x1b[K\x1b[Axy\r\nout\r\n",
        "xy23456789\nout\n",
        "",
    );
    // Rows below hold only blanks: the feed ends the line, and what follows is a new line.
    check(
        10,
        b"0123456789 \r\x1b[A\r\nout\r\n",
        "0123456789\nout\n",
        "",
    );
    check(
        10,
        b"0123456789 \r\x1b[A\r\n\x1b]0;t\x07\r\n",
        "0123456789\n\n",
        "",
    );
    // Until then the line is still pending, and the end of the stream commits it.
    let mut c = Cleaner::new();
    c.set_width(10);
    let mut out = String::new();
    c.push(b"0123456789 \r\x1b[A\r\n\x1b[K", &mut out);
    assert_eq!((out.as_str(), c.pending()), ("", "0123456789"));
    c.finish(&mut out);
    assert_eq!(out, "0123456789\n");
}

#[test]
fn clean_log_follows_the_pty_width() {
    let want = echoed(&letters(145));
    let mut log = CleanLog::with_width(120);
    log.push_raw(LONG_120);
    assert_eq!(log.read(0, usize::MAX).text, want);
    // A log that assumes another width shows the redraw the wrong way...
    let mut log = CleanLog::with_width(50);
    log.push_raw(LONG_120);
    assert_ne!(log.read(0, usize::MAX).text, want);
    // ...until it is told about the resize.
    let mut log = CleanLog::with_width(40);
    log.push_raw(LONG_40);
    log.set_width(120);
    log.push_raw(b"\r");
    log.push_raw(LONG_120);
    let text = log.read(0, usize::MAX).text;
    assert_eq!(text, format!("{}{want}", echoed(&letters(95))));
}
