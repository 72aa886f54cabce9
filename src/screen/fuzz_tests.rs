//! Deterministic pseudo-random fuzzing (xorshift) of the cleaner, the filter, the clean log
//! and the screen: no panics, bounded memory, and results independent of how the input was
//! split into chunks.

use super::{
    strip_ansi, CleanLog, Cleaner, EscapeFilter, Screen, DEFAULT_STRING_CAP, MAX_PENDING_LINE,
};

/// xorshift64* generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }

    /// Terminal-ish bytes: mostly text, with plenty of escapes, controls and broken UTF-8.
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        const PIECES: &[&[u8]] = &[
            b"\x1b",
            b"[",
            b"]",
            b"P",
            b"_",
            b"\\",
            b"\x07",
            b"\x18",
            b"\r",
            b"\n",
            b"\x08",
            b"\t",
            b";",
            b"?",
            b"0",
            b"1",
            b"52",
            b"9999999",
            b"2004h",
            b"1049h",
            b"1049l",
            b"?47h",
            b"?1047l",
            b"A",
            b"B",
            b"X",
            b"c",
            b"K",
            b"D",
            b"C",
            b"G",
            b"P",
            b"m",
            b"H",
            b"L",
            b"@",
            b"r",
            b"\xe2\x82",
            b"\xac",
            b"\xf0\x9f\x98\x80",
            b"\xee\x82\xb0",
            b"\xff",
            b"\x9c",
            b"hello",
            b" ",
            b"\x00",
        ];
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            match self.below(4) {
                0 => out.push(u8::try_from(self.below(256)).unwrap_or(0)),
                _ => out.extend_from_slice(PIECES[self.below(PIECES.len())]),
            }
        }
        out
    }

    /// Splits `data` into random chunks (including empty ones).
    fn chunks<'a>(&mut self, data: &'a [u8]) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let n = self.below(rest.len().min(40) + 1);
            let (a, b) = rest.split_at(n);
            out.push(a);
            rest = b;
        }
        out
    }
}

#[test]
fn cleaner_is_chunking_independent_and_bounded() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..300 {
        let len = rng.below(3000);
        let data = rng.bytes(len);
        let mut whole = Cleaner::new();
        let mut expected = String::new();
        whole.push(&data, &mut expected);
        let mut split = Cleaner::new();
        let mut got = String::new();
        for chunk in rng.chunks(&data) {
            split.push(chunk, &mut got);
            assert!(split.pending().len() <= MAX_PENDING_LINE);
        }
        assert_eq!(got, expected);
        assert_eq!(split.pending(), whole.pending());
        assert!(!got
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t')));
    }
}

#[test]
fn narrow_widths_and_resizes_are_chunking_independent() {
    let mut rng = Rng(0x0bad_cafe);
    for i in 0..400 {
        let widths = [0u16, 1, 2, 3, 7, 10, 40, 80];
        let (w1, w2) = (widths[i % widths.len()], widths[rng.below(widths.len())]);
        let len = rng.below(3000);
        let data = rng.bytes(len);
        let resize_at = rng.below(len + 1);
        let (before, after) = data.split_at(resize_at);
        let mut whole = Cleaner::new();
        whole.set_width(w1);
        let mut expected = String::new();
        whole.push(before, &mut expected);
        whole.set_width(w2);
        whole.push(after, &mut expected);
        let mut split = Cleaner::new();
        split.set_width(w1);
        let mut got = String::new();
        for (part, width) in [(before, w1), (after, w2)] {
            split.set_width(width);
            for chunk in rng.chunks(part) {
                split.push(chunk, &mut got);
                assert!(split.pending().len() <= MAX_PENDING_LINE);
            }
        }
        assert_eq!(got, expected, "iteration {i}");
        assert_eq!(split.pending(), whole.pending());
        whole.finish(&mut expected);
        split.finish(&mut got);
        assert_eq!(got, expected);
        assert!(!got
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t')));
    }
}

#[test]
fn long_lines_and_cursor_jumps_stay_bounded() {
    let mut rng = Rng(7);
    for width in [0, 3, 80, u16::MAX] {
        let mut c = Cleaner::new();
        c.set_width(width);
        let mut out = String::new();
        for _ in 0..2000 {
            let mut data = b"\x1b[9999C\x1b[9999@\x1b[99B".to_vec();
            data.extend(rng.bytes(200).iter().filter(|&&b| b != b'\n'));
            c.push(&data, &mut out);
            assert!(c.pending().len() <= MAX_PENDING_LINE);
            out.clear();
        }
    }
}

#[test]
fn unterminated_osc_flood_does_not_grow_the_cleaner() {
    let mut log = CleanLog::new();
    log.push_raw(b"before\n\x1b]0;");
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..1024 {
        log.push_raw(&chunk);
    }
    log.push_raw(b"\x07after\n");
    assert_eq!(log.read(0, usize::MAX).text, "before\nafter\n");
}

#[test]
fn invalid_utf8_is_lossy_like_std() {
    let mut rng = Rng(42);
    for _ in 0..2000 {
        let len = rng.below(12);
        let data: Vec<u8> = (0..len)
            .map(|_| match rng.below(3) {
                0 => b'a',
                _ => u8::try_from(0x80 + rng.below(128)).unwrap_or(0x80),
            })
            .collect();
        let want: String = String::from_utf8_lossy(&data)
            .chars()
            .filter(|c| !matches!(c, '\u{80}'..='\u{9f}' | '\u{e000}'..='\u{f8ff}' | '\u{f0000}'..))
            .collect();
        assert_eq!(strip_ansi(&data), want, "{data:x?}");
    }
}

#[test]
fn filter_is_chunking_independent_and_bounded() {
    let mut rng = Rng(0xdead_beef);
    for _ in 0..300 {
        let len = rng.below(3000);
        let data = rng.bytes(len);
        let mut whole = EscapeFilter::new(64);
        let mut expected = Vec::new();
        whole.filter(&data, &mut expected);
        let mut split = EscapeFilter::new(64);
        let mut got = Vec::new();
        for chunk in rng.chunks(&data) {
            split.filter(chunk, &mut got);
            assert!(split.buffered_len() <= 64 + 300);
        }
        assert_eq!(got, expected);
        // No OSC 52 reaches the parser (C0 bytes inside an OSC are removed by the filter).
        assert!(!got
            .windows(5)
            .any(|w| w.starts_with(b"\x1b]52") && matches!(w[4], b';' | 0x07 | 0x18 | 0x1a)));
    }
}

#[test]
fn clean_log_reads_are_consistent() {
    let mut rng = Rng(99);
    let mut log = CleanLog::with_cap(4096);
    let mut cursor = 0u64;
    let mut seen = 0u64;
    for _ in 0..3000 {
        let len = rng.below(300);
        let data = rng.bytes(len);
        log.push_raw(&data);
        let r = log.read(cursor, rng.below(500));
        assert!(r.offset >= cursor);
        assert_eq!(r.dropped_bytes, r.offset - cursor);
        assert_eq!(r.next_offset, r.offset + r.text.len() as u64);
        assert!(r.next_offset <= log.end_offset());
        assert!(log.end_offset() - log.dropped_bytes() <= 4096);
        seen += r.dropped_bytes + r.text.len() as u64;
        cursor = r.next_offset;
    }
    assert_eq!(seen, cursor);
}

#[test]
fn screen_survives_random_input_and_resizes() {
    let mut rng = Rng(0x1234_5678);
    let mut s = Screen::new(24, 80, 100);
    for i in 0..400 {
        let len = rng.below(2000);
        let data = rng.bytes(len);
        for chunk in rng.chunks(&data) {
            s.feed(chunk);
        }
        assert!(s.filter().buffered_len() <= DEFAULT_STRING_CAP + 300);
        if i % 17 == 0 {
            let (max_rows, max_cols) = if rng.below(2) == 0 {
                (6, 6)
            } else {
                (400, 600)
            };
            let rows = u16::try_from(rng.below(max_rows)).unwrap_or(1);
            let cols = u16::try_from(rng.below(max_cols)).unwrap_or(1);
            s.resize(rows, cols);
        }
        if i % 5 == 0 {
            s.set_scrollback(rng.below(200));
        }
        let snap = s.snapshot();
        assert_eq!(snap.rows.len(), usize::from(snap.rows_count));
        let kf = s.keyframe();
        let (rows, cols) = s.size();
        let mut fresh = Screen::new(rows, cols, 0);
        fresh.feed(&kf);
        if s.scrollback() == 0 {
            assert_eq!(fresh.snapshot().rows, snap.rows, "iteration {i}");
        }
    }
}
