//! [`RawRing`]: the last N bytes of a session's PTY output, exactly as received.
//!
//! Bytes are addressed by absolute offsets (counting every byte ever pushed), so a reader can
//! resume where it stopped and can tell when the part it wanted has already been trimmed.

use std::collections::VecDeque;

/// Default capacity of a [`RawRing`]: 1 MiB.
pub const DEFAULT_RAW_CAP: usize = 1024 * 1024;

/// A bounded ring of raw PTY bytes with absolute offsets.
#[derive(Debug, Clone)]
pub struct RawRing {
    buf: VecDeque<u8>,
    cap: usize,
    total: u64,
}

impl Default for RawRing {
    fn default() -> Self {
        Self::new(DEFAULT_RAW_CAP)
    }
}

impl RawRing {
    /// A ring keeping the last `cap` bytes (at least one).
    pub fn new(cap: usize) -> Self {
        Self {
            buf: VecDeque::new(),
            cap: cap.max(1),
            total: 0,
        }
    }

    /// Appends `bytes`, trimming the oldest bytes beyond the capacity.
    pub fn push(&mut self, bytes: &[u8]) {
        self.total = self.total.saturating_add(bytes.len() as u64);
        if bytes.len() >= self.cap {
            self.buf.clear();
            self.buf.extend(&bytes[bytes.len() - self.cap..]);
            return;
        }
        let excess = (self.buf.len() + bytes.len()).saturating_sub(self.cap);
        if excess > 0 {
            self.buf.drain(..excess);
        }
        self.buf.extend(bytes);
    }

    /// Total number of bytes ever pushed (the absolute offset of the next byte).
    pub fn total_written(&self) -> u64 {
        self.total
    }

    /// Absolute offset of the oldest byte still kept.
    pub fn start_offset(&self) -> u64 {
        self.total - self.buf.len() as u64
    }

    /// Number of bytes currently kept.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the ring holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// All kept bytes, oldest first.
    pub fn contents(&self) -> Vec<u8> {
        let (a, b) = self.buf.as_slices();
        let mut out = Vec::with_capacity(a.len() + b.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b);
        out
    }

    /// Bytes from absolute offset `offset` to the end, with the offset they actually start at.
    ///
    /// If `offset` was already trimmed, the result starts at the oldest kept byte and the
    /// returned offset says so (the caller can compute how much it missed). An offset past the
    /// end yields `(total_written(), [])`.
    pub fn since(&self, offset: u64) -> (u64, Vec<u8>) {
        let start = self.start_offset();
        let from = offset.clamp(start, self.total);
        // `from - start` is at most `buf.len()`, which is a usize.
        let skip = usize::try_from(from - start).unwrap_or(self.buf.len());
        let (a, b) = self.buf.as_slices();
        let mut out = Vec::with_capacity(self.buf.len() - skip);
        if skip < a.len() {
            out.extend_from_slice(&a[skip..]);
            out.extend_from_slice(b);
        } else {
            out.extend_from_slice(&b[skip - a.len()..]);
        }
        (from, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_everything_below_capacity() {
        let mut r = RawRing::new(16);
        r.push(b"hello ");
        r.push(b"world");
        assert_eq!(r.contents(), b"hello world");
        assert_eq!(r.total_written(), 11);
        assert_eq!(r.start_offset(), 0);
        assert_eq!(r.since(6), (6, b"world".to_vec()));
        assert_eq!(r.since(11), (11, Vec::new()));
        assert_eq!(r.since(99), (11, Vec::new()));
    }

    #[test]
    fn trims_oldest_and_reports_start() {
        let mut r = RawRing::new(8);
        for chunk in [&b"0123"[..], b"4567", b"89ab"] {
            r.push(chunk);
        }
        assert_eq!(r.contents(), b"456789ab");
        assert_eq!(r.total_written(), 12);
        assert_eq!(r.since(0), (4, b"456789ab".to_vec()));
        assert_eq!(r.since(10), (10, b"ab".to_vec()));
        r.push(b"this chunk is longer than the ring");
        assert_eq!(r.contents(), b"the ring");
        assert_eq!(r.len(), 8);
        assert_eq!(r.start_offset(), r.total_written() - 8);
    }

    #[test]
    fn since_across_the_wrap_point() {
        let mut r = RawRing::new(10);
        for i in 0..100u8 {
            r.push(&[i, i.wrapping_add(1), i.wrapping_add(2)]);
            if r.total_written() < 10 {
                continue;
            }
            let (start, bytes) = r.since(r.total_written().saturating_sub(5));
            assert_eq!(start, r.total_written() - 5);
            assert_eq!(bytes.len(), 5);
            assert_eq!(r.contents().len(), r.len());
            assert_eq!(&r.contents()[r.len() - 5..], &bytes[..]);
        }
    }

    #[test]
    fn empty_ring() {
        let r = RawRing::default();
        assert!(r.is_empty());
        assert_eq!(r.since(0), (0, Vec::new()));
        assert!(r.contents().is_empty());
    }
}
