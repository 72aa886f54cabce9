//! Golden tests of the [`Cleaner`]: literal inputs and expected clean text, each also fed one
//! byte at a time and split at every position, which must not change the result.

use rstest::rstest;

use super::{strip_ansi, Cleaner};

/// Cleans `input` fed in the given pieces; returns (committed, pending).
fn clean_pieces<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> (String, String) {
    let mut c = Cleaner::new();
    let mut out = String::new();
    for piece in pieces {
        c.push(piece, &mut out);
    }
    (out, c.pending().to_owned())
}

#[rstest]
#[case::bad_utf8(b"ok \xff\xfe end\n", "ok \u{fffd}\u{fffd} end\n")]
#[case::truncated_utf8(b"\xe2\x82\xac \xe2\x82\n", "\u{20ac} \u{fffd}\n")]
#[case::truncated_utf8_before_escape(b"a\xf0\x9f\x1b[0mb\n", "a\u{fffd}b\n")]
#[case::surrogate_like_lossy(b"\xed\xa0\x80x\n", "\u{fffd}\u{fffd}\u{fffd}x\n")]
#[case::lone_c1_byte(b"a\x9bb\n", "a\u{fffd}b\n")]
#[case::nerd_font("\u{e0b0} main \u{f115} dir\n".as_bytes(), " main  dir\n")]
#[case::plane_15_16_pua("a\u{f0000}b\u{10fffd}c\n".as_bytes(), "abc\n")]
#[case::c1_control_chars("x\u{85}y\u{9b}z\n".as_bytes(), "xyz\n")]
#[case::colour(b"\x1b[1;31mred\x1b[0m plain\n", "red plain\n")]
#[case::truecolour(b"\x1b[38;2;255;128;0mo\x1b[48;5;17mk\x1b[m\n", "ok\n")]
#[case::progress_bar(b"10%\r50%\r100%\ndone\n", "100%\ndone\n")]
#[case::overwrite_not_clear(b"abcdef\rXY\n", "XYcdef\n")]
#[case::crlf(b"one\r\ntwo\r\n", "one\ntwo\n")]
#[case::osc_title_bel(b"\x1b]0;title\x07after\n", "after\n")]
#[case::osc_title_st(b"\x1b]2;title\x1b\\after\n", "after\n")]
#[case::osc8_hyperlink(
    b"see \x1b]8;id=1;https://example.com/\x1b\\the link\x1b]8;;\x1b\\ here\n",
    "see the link here\n"
)]
#[case::bracketed_paste(b"\x1b[?2004h$ ls\r\n\x1b[?2004l", "$ ls\n")]
#[case::alt_screen_toggle(b"\x1b[?1049h\x1b[H\x1b[2Jx\n\x1b[?1049l", "")]
#[case::alt_screen_dropped(
    b"before\n\x1b[?1049h\x1b[H\x1b[2Jframe\r\n\x1b[7mmore\x1b[?1049lafter\n",
    "before\nafter\n"
)]
#[case::alt_screen_keeps_pending_line(b"$ \x1b[?1047hjunk\r\n\x08\x1b[K\x1b[?1047lls\n", "$ ls\n")]
#[case::alt_screen_47(b"\x1b[?47hjunk\n\x1b[?47lok\n", "ok\n")]
#[case::alt_screen_among_params(b"\x1b[?1;1049hjunk\n\x1b[?1049;1lok\n", "ok\n")]
#[case::not_alt_screen(b"\x1b[?10490hx\x1b[>1049hy\x1b[1049hz\x1b[?1049$hw\n", "xyzw\n")]
#[case::alt_screen_utf8_and_strings(
    b"\x1b[?1049h\xe2\x82\xacj\xe2\x1b]0;t\x07\x1bP1$r\x1b\\u\xf0\x9f\x1b[?1049lok\n",
    "ok\n"
)]
#[case::full_reset_leaves_alt_screen(b"\x1b[?1049hjunk\x1bcok\n", "ok\n")]
#[case::backspace(b"ab\x08c\n", "ac\n")]
#[case::backspace_at_column_zero(b"\x08\x08a\n", "a\n")]
#[case::backspace_space_backspace(b"abc\x08 \x08\x08 \x08\n", "a  \n")]
#[case::erase_to_eol(b"50%\r\x1b[Kdone\n", "done\n")]
#[case::erase_to_eol_zero(b"abcdef\x08\x08\x08\x1b[0K!\n", "abc!\n")]
#[case::erase_line_then_cr(b"progress 10%\x1b[2K\rdone\n", "done\n")]
#[case::erase_to_start(b"abcdef\x08\x08\x1b[1KX\n", "    Xf\n")]
#[case::readline_insert(b"$ helo\x08\x08llo\n", "$ hello\n")]
#[case::readline_delete(b"$ hello\x08\x08\x1b[K\n", "$ hel\n")]
#[case::cursor_left(b"hello\x1b[3Dy\n", "heylo\n")]
#[case::cursor_right(b"ab\x1b[3Cc\n", "ab   c\n")]
#[case::cursor_column(b"abcdef\x1b[3GX\n", "abXdef\n")]
#[case::delete_chars(b"abcdef\x1b[4D\x1b[2P\n", "abef\n")]
#[case::private_csi_ignored(b"ab\x1b[?25l\x1b[>4;2mc\n", "abc\n")]
#[case::two_byte_escapes(b"\x1b(B\x1b=\x1b7x\x1b8\x1bMy\x1b>\n", "xy\n")]
#[case::dcs_string(b"\x1bP1$r0m\x1b\\ok\n", "ok\n")]
#[case::apc_string(b"\x1b_Gf=100;AAAA\x1b\\img\n", "img\n")]
#[case::sos_pm(b"\x1bXsos\x1b\\\x1b^pm\x1b\\t\n", "t\n")]
#[case::can_aborts_csi(b"\x1b[12\x18ok\n", "ok\n")]
#[case::newline_inside_csi(b"a\x1b[1\n2mb\n", "a\nb\n")]
#[case::controls_removed(b"a\x07b\x00c\x7fd\te\x0b\x0cf\n", "abcd\tef\n")]
#[case::utf8_text("héllo wörld €\n".as_bytes(), "héllo wörld €\n")]
#[case::utf8_overwrite("ümlaut\rU\n".as_bytes(), "Umlaut\n")]
#[case::prompt_only(b"out\n$ ", "out\n")]
fn golden(#[case] input: &[u8], #[case] expected: &str) {
    let (out, pending) = clean_pieces([input]);
    assert_eq!(out, expected, "committed text");
    // Byte by byte gives the same committed text and pending line.
    let (bytewise, bytewise_pending) = clean_pieces(input.chunks(1));
    assert_eq!(bytewise, out, "byte-by-byte committed text");
    assert_eq!(bytewise_pending, pending, "byte-by-byte pending");
    // So does every split into two pieces.
    for cut in 1..input.len() {
        let (a, b) = input.split_at(cut);
        assert_eq!(
            clean_pieces([a, b]),
            (out.clone(), pending.clone()),
            "split at {cut}"
        );
    }
}

#[test]
fn pending_line_is_readable() {
    let (out, pending) = clean_pieces([&b"build ok\r\n\x1b[1;32m~/src\x1b[0m \xee\x82\xb0 $ "[..]]);
    assert_eq!(out, "build ok\n");
    assert_eq!(pending, "~/src  $ ");
    let (out, pending) = clean_pieces([&b"$ gti\x08\x08it"[..]]);
    assert_eq!(out, "");
    assert_eq!(pending, "$ git");
}

#[test]
fn committed_text_never_changes() {
    let mut c = Cleaner::new();
    let mut out = String::new();
    c.push(b"first line\nsecond", &mut out);
    let before = out.clone();
    c.push(b"\r\x1b[2K\x08\x08\x1b[1K\x1b[10Preplaced", &mut out);
    assert_eq!(out, before);
    assert_eq!(c.pending(), "replaced");
}

#[test]
fn strip_ansi_keeps_the_last_line() {
    assert_eq!(strip_ansi(b"\x1b[1mbold\x1b[0m\r\nlast"), "bold\nlast");
    assert_eq!(strip_ansi(b"cut \xe2\x82"), "cut \u{fffd}");
    assert_eq!(strip_ansi(b""), "");
}

#[test]
fn invalid_utf8_matches_from_utf8_lossy() {
    let samples: [&[u8]; 8] = [
        b"\xc0\xaf",
        b"\xe0\x80\x80",
        b"\xf4\x90\x80\x80",
        b"\xf0\x9f\x98",
        b"\xf0\x9f\x98\x80\x80",
        b"a\xc3",
        b"\xe2\x28\xa1",
        b"\xfc\xa1\xa1\xa1\xa1\xa1",
    ];
    for s in samples {
        let want = String::from_utf8_lossy(s);
        assert_eq!(strip_ansi(s), want, "{s:?}");
        let mut c = Cleaner::new();
        let mut out = String::new();
        for b in s.chunks(1) {
            c.push(b, &mut out);
        }
        c.finish(&mut out);
        assert_eq!(out, want, "bytewise {s:?}");
    }
}
