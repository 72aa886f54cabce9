//! What `file` commands print: `read` content (raw bytes in text mode, content or
//! content_b64 in JSON), the transfer progress bar, and the text rendering of answers.

use std::io::Write;

use base64::Engine;
use serde_json::Value;

use super::MAX_JSON_READ;
use crate::wire::file::FileAction;

/// Where `read` content goes: straight to stdout in text mode, a bounded buffer in JSON.
pub(super) struct ContentOut {
    json: bool,
    buf: Vec<u8>,
    dropped: u64,
}

impl ContentOut {
    /// Empty, for text (`json: false`) or JSON output.
    pub(super) fn new(json: bool) -> Self {
        ContentOut {
            json,
            buf: Vec::new(),
            dropped: 0,
        }
    }

    pub(super) fn push(&mut self, b: &[u8]) {
        if !self.json {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(b);
            return;
        }
        let room = (MAX_JSON_READ as usize).saturating_sub(self.buf.len());
        let take = room.min(b.len());
        self.buf.extend_from_slice(&b[..take]);
        self.dropped += (b.len() - take) as u64;
    }

    pub(super) fn finish(self, data: &mut Value) {
        if !self.json {
            let _ = std::io::stdout().flush();
            return;
        }
        if let Some(obj) = data.as_object_mut() {
            match String::from_utf8(self.buf) {
                Ok(s) => {
                    obj.insert("content".into(), s.into());
                }
                Err(e) => {
                    let b64 = base64::engine::general_purpose::STANDARD.encode(e.as_bytes());
                    obj.insert("binary".into(), true.into());
                    obj.insert("content_b64".into(), b64.into());
                }
            }
            if self.dropped > 0 {
                obj.insert("content_truncated_bytes".into(), self.dropped.into());
            }
        }
    }
}

/// A progress bar on stderr (text mode, terminal, transfers only).
pub(super) struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    pub(super) fn new(enabled: bool) -> Bar {
        if !enabled {
            return Bar(None);
        }
        let pb = indicatif::ProgressBar::with_draw_target(
            Some(0),
            indicatif::ProgressDrawTarget::stderr_with_hz(10),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40.cyan/blue} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            pb.set_style(style.progress_chars("=> "));
        }
        Bar(Some(pb))
    }

    pub(super) fn update(&self, done: u64, total: u64) {
        if let Some(pb) = &self.0 {
            pb.set_length(total.max(done));
            pb.set_position(done);
        }
    }

    pub(super) fn finish(&self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}

fn num(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or(0)
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_default()
}

pub(super) fn render(action: &FileAction, v: &Value) -> String {
    let via = format!("via {} in {} ms", s(v, "method"), num(v, "duration_ms"));
    match action {
        FileAction::Upload { .. } | FileAction::Download { .. } => {
            let verb = if matches!(action, FileAction::Upload { .. }) {
                "uploaded"
            } else {
                "downloaded"
            };
            let to = if matches!(action, FileAction::Upload { .. }) {
                s(v, "remote")
            } else {
                s(v, "local")
            };
            let mut extra = String::new();
            if s(v, "type") == "dir" {
                extra = format!(", {} dirs, {} symlinks", num(v, "dirs"), num(v, "symlinks"));
            }
            format!(
                "{verb} {} files ({} bytes{extra}) to {to} {via}",
                num(v, "files"),
                num(v, "bytes")
            )
        }
        FileAction::Ls { .. } => {
            let rows: Vec<String> = v["entries"]
                .as_array()
                .map(|a| a.iter().map(ls_line).collect())
                .unwrap_or_default();
            rows.join("\n")
        }
        FileAction::Read { .. } => String::new(),
        FileAction::Write { append, .. } => format!(
            "{} {} bytes to {} {via}",
            if *append { "appended" } else { "wrote" },
            num(v, "bytes"),
            s(v, "path")
        ),
        FileAction::Edit { .. } => {
            let n = num(v, "replacements");
            format!(
                "{n} replacement{} in {} {via}",
                if n == 1 { "" } else { "s" },
                s(v, "path")
            )
        }
        FileAction::Delete { .. } => format!("deleted {} ({}) {via}", s(v, "path"), s(v, "type")),
        FileAction::Mkdir { .. } => {
            let done = if v["created"].as_bool() == Some(true) {
                "created"
            } else {
                "already there:"
            };
            format!("{done} {} {via}", s(v, "path"))
        }
    }
}

fn ls_line(e: &Value) -> String {
    let kind = match s(e, "type") {
        "dir" => 'd',
        "symlink" => 'l',
        "file" => '-',
        _ => '?',
    };
    let mut line = format!(
        "{kind} {} {:>12} {} {}",
        s(e, "mode"),
        num(e, "size"),
        utc(num(e, "mtime")),
        s(e, "name").escape_debug()
    );
    if let Some(t) = e["link_target"].as_str() {
        line.push_str(&format!(" -> {}", t.escape_debug()));
    }
    line
}

/// `YYYY-MM-DD HH:MM` (UTC) from seconds since the epoch.
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00");
    }
}
