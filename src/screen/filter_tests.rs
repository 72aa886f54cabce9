//! Tests of the [`EscapeFilter`]: pass-through, OSC 52 and long-string dropping, CSI
//! clamping, chunk splits and the memory bound under an unterminated OSC flood.

use super::{EscapeFilter, DEFAULT_STRING_CAP};

fn run(input: &[u8]) -> Vec<u8> {
    let mut f = EscapeFilter::default();
    let mut out = Vec::new();
    f.filter(input, &mut out);
    out
}

#[test]
fn ordinary_output_passes_unchanged() {
    let cases: [&[u8]; 6] = [
        b"plain text\r\n",
        b"\x1b[1;31mred\x1b[0m \x1b[?1049h\x1b[?2004l",
        b"\x1b]0;title\x07after",
        b"\x1b(B\x1b=\x1b7\x1b8\x1bM",
        b"\x1bP1$r0m\x18",
        "ünïcödé \u{e0b0}".as_bytes(),
    ];
    for input in cases {
        assert_eq!(run(input), input, "{input:?}");
    }
    // Strings ended by ST come out ended by BEL (OSC) or CAN (the others).
    assert_eq!(
        run(b"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"),
        b"\x1b]8;;http://x\x07link\x1b]8;;\x07"
    );
    assert_eq!(run(b"\x1bP1$r0m\x1b\\x"), b"\x1bP1$r0m\x18x");
}

#[test]
fn dropped_string_after_an_st_cannot_reach_the_parser() {
    // The ESC ending the first string must not be swallowed with the dropped OSC 52,
    // or the parser would read "52;..." as part of the first string.
    assert_eq!(run(b"\x1b]0;t\x1b\x1b]52;c;eA==\x07z"), b"\x1b]0;t\x07z");
    assert_eq!(run(b"\x1b(\x1b]52;c;eA==\x07z"), b"\x1b(\x18z");
}

#[test]
fn osc_52_is_dropped_even_with_ignored_controls() {
    assert_eq!(run(b"a\x1b]52;c;aGVsbG8=\x07b"), b"ab");
    assert_eq!(run(b"a\x1b]52;c;aGVsbG8=\x1b\\b"), b"ab");
    assert_eq!(run(b"a\x1b]5\x012;c;?\x07b"), b"ab");
    assert_eq!(run(b"\x1b]520;x\x07"), b"\x1b]520;x\x07");
}

#[test]
fn long_strings_are_dropped_whole() {
    let mut f = EscapeFilter::new(16);
    let mut out = Vec::new();
    f.filter(b"x\x1b]0;", &mut out);
    for _ in 0..100 {
        f.filter(&[b'A'; 7], &mut out);
        assert!(f.buffered_len() <= 16);
    }
    f.filter(b"\x07y\x1b_short\x1b\\z", &mut out);
    assert_eq!(out, b"xy\x1b_short\x18z");
}

#[test]
fn csi_parameters_are_clamped() {
    assert_eq!(run(b"\x1b[99999999X"), b"\x1b[9999X");
    assert_eq!(run(b"\x1b[0012;99999H"), b"\x1b[12;9999H");
    assert_eq!(run(b"\x1b[38;2;255;0;0m"), b"\x1b[38;2;255;0;0m");
    let mut f = EscapeFilter::default();
    f.set_count_limit(80);
    let mut out = Vec::new();
    f.filter(b"\x1b[5000L\x1b[5000;3H\x1b[?5000h\x1b[12@", &mut out);
    assert_eq!(out, b"\x1b[80L\x1b[5000;3H\x1b[?5000h\x1b[12@");
}

#[test]
fn split_sequences_match_one_shot() {
    let input: &[u8] = b"a\x1b[12;34Hb\x1b]2;t\x1b\\c\x1b]52;c;x\x07d\x1b[999999Ae\x1b(Bf";
    let whole = run(input);
    let mut f = EscapeFilter::default();
    let mut out = Vec::new();
    for b in input {
        f.filter(std::slice::from_ref(b), &mut out);
    }
    assert_eq!(out, whole);
    assert!(f.in_ground());
}

#[test]
fn overlong_csi_is_dropped() {
    let mut input = b"a\x1b[".to_vec();
    input.extend(std::iter::repeat_n(b';', 10_000));
    input.extend_from_slice(b"mb");
    assert_eq!(run(&input), b"ab");
}

#[test]
fn unterminated_osc_flood_stays_bounded() {
    let mut f = EscapeFilter::default();
    let mut out = Vec::new();
    f.filter(b"\x1b]0;", &mut out);
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..(256 * 16) {
        f.filter(&chunk, &mut out);
        assert!(f.buffered_len() <= DEFAULT_STRING_CAP);
        assert!(f.held_capacity() <= 2 * DEFAULT_STRING_CAP);
    }
    assert!(out.is_empty());
    f.filter(b"\x07ok", &mut out);
    assert_eq!(out, b"ok");
}
