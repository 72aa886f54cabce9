//! Tests of [`Screen`]: snapshots, titles, size clamping, scrollback and keyframes.

use super::{Screen, DEFAULT_STRING_CAP, MAX_COLS, MAX_ROWS, MIN_SIZE};

/// Asserts that `b` shows exactly what `a` shows.
fn assert_same(a: &Screen, b: &Screen) {
    assert_eq!(a.snapshot(), b.snapshot());
    assert_eq!(
        a.screen().contents_formatted(),
        b.screen().contents_formatted()
    );
    assert_eq!(a.screen().state_formatted(), b.screen().state_formatted());
}

/// A fresh screen of `a`'s size fed with `a`'s keyframe.
fn replay(a: &Screen) -> Screen {
    let (rows, cols) = a.size();
    let mut b = Screen::new(rows, cols, 100);
    b.feed(&a.keyframe());
    b
}

/// Output of a shell session with colours, a prompt and some wide characters.
const COLOURFUL: &[u8] = b"\x1b[1;31mred\x1b[0m \x1b[4;32munderlined green\x1b[0m\r\n\
    \x1b[38;2;10;20;30m\x1b[48;5;200mtruecolour on 256\x1b[0m\r\n\
    \xe4\xbd\xa0\xe5\xa5\xbd wide \xf0\x9f\x98\x80\r\n\
    \x1b[7minverse\x1b[27m \x1b[3mitalic\x1b[23m\r\n\
    \x1b]0;my title\x07\x1b[?2004h\x1b[1m$ \x1b[33m";

/// A full-screen program: alternate screen, hidden cursor, scroll region, cursor moves.
const FULL_SCREEN: &[u8] = b"\x1b[?1049h\x1b[?1h\x1b=\x1b[?25l\x1b[H\x1b[2J\
    \x1b[44m\x1b[2K top bar \x1b[0m\x1b[3;5Hbody \x1b[1;35mtext\x1b[0m\
    \x1b[24;1H\x1b[7m-- status --\x1b[0m\x1b[10;20H\x1b[32m";

#[test]
fn snapshot_shows_text_cursor_and_title() {
    let mut s = Screen::new(5, 20, 100);
    s.feed(b"hello   \r\nworld\x1b]2;the title\x07");
    let snap = s.snapshot();
    assert_eq!(snap.rows, ["hello", "world", "", "", ""]);
    assert_eq!(snap.cursor, (1, 5));
    assert!(snap.cursor_visible);
    assert!(!snap.alternate_screen);
    assert_eq!(snap.title, "the title");
    assert_eq!((snap.rows_count, snap.cols), (5, 20));
    s.feed(b"\x1b]0;a\x01b\xee\x82\xb0c\x07\x1b[?25l");
    let snap = s.snapshot();
    assert_eq!(snap.title, "abc");
    assert!(!snap.cursor_visible);
}

#[test]
fn sizes_are_clamped() {
    let mut s = Screen::new(0, 0, usize::MAX);
    assert_eq!(s.size(), (MIN_SIZE, MIN_SIZE));
    // Wrapping and wide characters on the smallest screen must not panic inside vt100.
    s.feed("xyz\r\n\x1b[999;999H!\u{4f60}\u{597d}\u{4f60}abc\r\n".as_bytes());
    s.resize(u16::MAX, u16::MAX);
    assert_eq!(s.size(), (MAX_ROWS, MAX_COLS));
    s.resize(0, 0);
    assert_eq!(s.size(), (MIN_SIZE, MIN_SIZE));
    s.feed("\u{4f60}\u{597d}wrap wrap wrap\r\n".as_bytes());
    s.resize(24, 80);
    s.feed(b"\x1b[65535L\x1b[65535@\x1b[65535T\x1b[99999999X");
    assert_eq!(s.size(), (24, 80));
}

#[test]
fn scrollback_is_bounded_and_scrollable() {
    let mut s = Screen::new(5, 20, 50);
    for i in 0..200 {
        s.feed(format!("line {i}\r\n").as_bytes());
    }
    assert_eq!(s.scrollback(), 0);
    s.set_scrollback(usize::MAX);
    assert_eq!(s.scrollback(), 50);
    let snap = s.snapshot();
    assert_eq!(snap.rows[0], "line 146");
    s.set_scrollback(0);
    assert_eq!(s.snapshot().rows[0], "line 196");
}

#[test]
fn keyframe_reproduces_a_colourful_screen() {
    let mut a = Screen::new(24, 80, 100);
    a.feed(COLOURFUL);
    let b = replay(&a);
    assert_same(&a, &b);
    assert_eq!(b.title(), "my title");
    assert!(b.screen().bracketed_paste());
}

#[test]
fn keyframe_reproduces_a_full_screen_program_and_what_lies_beneath() {
    let mut a = Screen::new(24, 80, 100);
    a.feed(COLOURFUL);
    a.feed(FULL_SCREEN);
    assert!(a.snapshot().alternate_screen);
    let mut b = replay(&a);
    assert_same(&a, &b);
    assert!(b.screen().application_cursor());
    assert!(b.screen().application_keypad());
    // Live bytes after the keyframe keep both in step, including leaving the program.
    let more: &[u8] = b"more\x1b[5;1H\x1b[Kx\x1b[?1049l\x1b[?25h\x1b[0mback\r\n";
    a.feed(more);
    b.feed(more);
    assert!(!a.snapshot().alternate_screen);
    assert_same(&a, &b);
}

#[test]
fn keyframe_uses_the_live_view_when_scrolled_back() {
    let mut a = Screen::new(4, 20, 100);
    for i in 0..30 {
        a.feed(format!("row {i}\r\n").as_bytes());
    }
    let live = replay(&a);
    a.set_scrollback(10);
    let b = replay(&a);
    assert_eq!(b.snapshot(), live.snapshot());
    assert_ne!(a.snapshot().rows, b.snapshot().rows);
}

#[test]
fn keyframe_of_a_cursor_in_the_last_column() {
    let mut a = Screen::new(3, 10, 0);
    a.feed(b"0123456789");
    let b = replay(&a);
    assert_same(&a, &b);
}

#[test]
fn unterminated_osc_flood_is_bounded() {
    let mut s = Screen::new(24, 80, 10);
    s.feed(b"before\x1b]2;");
    let chunk = vec![b'A'; 64 * 1024];
    for _ in 0..256 {
        s.feed(&chunk);
        assert!(s.filter().buffered_len() <= DEFAULT_STRING_CAP);
    }
    s.feed(b"\x07after");
    assert_eq!(s.snapshot().rows[0], "beforeafter");
    assert_eq!(s.title(), "");
    assert!(s.at_sequence_boundary());
}

#[test]
fn shrinking_keeps_the_cursor_line_and_pushes_the_top_into_history() {
    let mut s = Screen::new(10, 20, 100);
    for i in 1..=9 {
        s.feed(format!("line{i}\r\n").as_bytes());
    }
    s.feed(b"$ typing");
    s.resize(5, 20);
    let snap = s.snapshot();
    assert_eq!(
        snap.rows.last().map(String::as_str),
        Some("$ typing"),
        "{:?}",
        snap.rows
    );
    assert_eq!(snap.rows[0], "line6");
    assert_eq!(snap.cursor, (4, 8));
}
