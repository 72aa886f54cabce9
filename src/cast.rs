//! The asciicast v2 format of session recordings: the header, one event per line
//! (`[time, "o"|"r"|"m", data]`), an incremental UTF-8 decoder for output split across
//! chunks, and a tolerant reader (a last line cut short by a killed writer is skipped).
//!
//! Both the daemon (which writes recordings) and the faces (export, replay) use it; like
//! `screen` it depends on nothing above it.

use std::io::BufRead;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The first line of a recording.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Header {
    /// Always 2.
    pub version: u32,
    /// Columns at the start.
    pub width: u16,
    /// Rows at the start.
    pub height: u16,
    /// Start, seconds since the Unix epoch.
    pub timestamp: u64,
    /// Session name (or id) and target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Idle time limit a player should apply, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_time_limit: Option<f64>,
}

/// The kind of an event line.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Terminal output (text, lossy UTF-8).
    Output(String),
    /// A resize to (cols, rows).
    Resize(u16, u16),
    /// A marker (label).
    Marker(String),
}

/// One event line.
#[derive(Debug, Clone, PartialEq)]
pub struct CastEvent {
    /// Seconds since the start.
    pub time: f64,
    /// What happened.
    pub kind: Kind,
}

impl CastEvent {
    /// The JSON line for this event, with its newline.
    pub fn to_line(&self) -> Vec<u8> {
        // Microsecond resolution is what asciinema writes; rounding keeps lines short.
        let t = (self.time * 1e6).round() / 1e6;
        let v = match &self.kind {
            Kind::Output(s) => serde_json::json!([t, "o", s]),
            Kind::Resize(c, r) => serde_json::json!([t, "r", format!("{c}x{r}")]),
            Kind::Marker(s) => serde_json::json!([t, "m", s]),
        };
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        line
    }

    /// Parses one event line; `None` for a line that is not a known event.
    pub fn parse(line: &str) -> Option<CastEvent> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let a = v.as_array()?;
        let time = a.first()?.as_f64()?;
        let data = a.get(2)?.as_str()?;
        let kind = match a.get(1)?.as_str()? {
            "o" => Kind::Output(data.to_string()),
            "r" => {
                let (c, r) = data.split_once('x')?;
                Kind::Resize(c.trim().parse().ok()?, r.trim().parse().ok()?)
            }
            "m" => Kind::Marker(data.to_string()),
            _ => return None,
        };
        Some(CastEvent { time, kind })
    }
}

/// A whole recording read into memory.
#[derive(Debug, Clone)]
pub struct Cast {
    /// The header.
    pub header: Header,
    /// Events in file order.
    pub events: Vec<CastEvent>,
}

/// Why a recording cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CastError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The first line is not an asciicast v2 header.
    #[error("{0} is not an asciicast v2 recording")]
    NotCast(String),
}

impl Cast {
    /// Reads a recording. Lines that are not events (a last line cut short by a killed
    /// daemon, `i` events of other recorders) are skipped.
    pub fn read(path: &Path) -> Result<Cast, CastError> {
        let io = |source| CastError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut lines = std::io::BufReader::new(file).lines();
        let first = lines
            .next()
            .transpose()
            .map_err(io)?
            .ok_or_else(|| CastError::NotCast(path.display().to_string()))?;
        let header: Header = serde_json::from_str(&first)
            .ok()
            .filter(|h: &Header| h.version == 2)
            .ok_or_else(|| CastError::NotCast(path.display().to_string()))?;
        let mut events = Vec::new();
        for line in lines {
            let Ok(line) = line else { break };
            if let Some(e) = CastEvent::parse(&line) {
                events.push(e);
            }
        }
        Ok(Cast { header, events })
    }

    /// The recording's clean text: its output through [`crate::screen::CleanLog`], as
    /// `session read --offset 0` would have returned it (the unterminated last line included).
    pub fn clean_text(&self) -> String {
        let mut log = crate::screen::CleanLog::with_width(self.header.width);
        let mut out = String::new();
        let mut at = 0u64;
        let mut drain = |log: &mut crate::screen::CleanLog, out: &mut String| {
            let r = log.read(at, usize::MAX);
            at = r.next_offset;
            out.push_str(&r.text);
        };
        for e in &self.events {
            match &e.kind {
                Kind::Output(s) => log.push_raw(s.as_bytes()),
                Kind::Resize(c, _) => log.set_width(*c),
                Kind::Marker(_) => {}
            }
            // Drain as we go, so a long recording never outgrows the log's bounded window.
            drain(&mut log, &mut out);
        }
        drain(&mut log, &mut out);
        out.push_str(log.pending());
        out
    }
}

/// Decodes a byte stream split into chunks as UTF-8, carrying an incomplete trailing
/// sequence into the next chunk; invalid bytes become U+FFFD (as asciinema does).
#[derive(Debug, Default)]
pub struct Utf8Stream {
    carry: Vec<u8>,
}

impl Utf8Stream {
    /// The text of `chunk` (plus what was carried), keeping an incomplete tail for later.
    pub fn push(&mut self, chunk: &[u8]) -> String {
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(chunk);
        let keep = incomplete_tail(&buf);
        self.carry = buf.split_off(buf.len() - keep);
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// What is left (an incomplete sequence at the very end), lossily.
    pub fn finish(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.carry)).into_owned()
    }
}

/// How many bytes at the end of `buf` start a UTF-8 sequence that is not complete yet.
fn incomplete_tail(buf: &[u8]) -> usize {
    for back in 1..=3.min(buf.len()) {
        let b = buf[buf.len() - back];
        if b & 0xC0 == 0x80 {
            continue; // a continuation byte: look further back
        }
        let need = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => return 0,
        };
        return if need > back { back } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_across_chunks_is_joined() {
        let text = "é€😀";
        let bytes = text.as_bytes();
        let mut d = Utf8Stream::default();
        let mut out = String::new();
        for b in bytes {
            out.push_str(&d.push(&[*b]));
        }
        out.push_str(&d.finish());
        assert_eq!(out, text);
        let mut d = Utf8Stream::default();
        assert_eq!(d.push(b"a\xffb"), "a\u{fffd}b");
    }

    #[test]
    fn events_round_trip_and_bad_lines_are_none() {
        for kind in [
            Kind::Output("a\u{1b}[1m\"x\n".into()),
            Kind::Resize(80, 24),
            Kind::Marker("control taken".into()),
        ] {
            let e = CastEvent { time: 1.5, kind };
            let line = e.to_line();
            let s = std::str::from_utf8(&line).unwrap();
            assert!(s.ends_with('\n'));
            assert_eq!(CastEvent::parse(s.trim_end()), Some(e));
        }
        assert_eq!(CastEvent::parse("[1.0, \"o\", \"abc"), None);
        assert_eq!(CastEvent::parse("[1.0, \"i\", \"abc\"]"), None);
    }

    #[test]
    fn reader_skips_a_cut_last_line_and_cleans_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.cast");
        let mut body = br#"{"version":2,"width":80,"height":24,"timestamp":1}"#.to_vec();
        body.extend_from_slice(b"\n[0.1,\"o\",\"\\u001b[1mhello\\r\\n\"]\n[0.2,\"m\",\"x\"]\n");
        body.extend_from_slice(b"[0.3,\"o\",\"wor");
        std::fs::write(&path, body).unwrap();
        let cast = Cast::read(&path).unwrap();
        assert_eq!(cast.events.len(), 2);
        assert_eq!(cast.clean_text(), "hello\n");
        std::fs::write(&path, b"{\"version\":1}\n").unwrap();
        assert!(matches!(Cast::read(&path), Err(CastError::NotCast(_))));
    }
}
