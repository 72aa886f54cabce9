//! The recordings directory: file names (`<created_ms>-<id>[-<name>].cast`), listing,
//! lookup by session id or name (newest first), the total cap with oldest-first deletion,
//! and the repair of a last line cut short by a killed daemon.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One recording file.
#[derive(Debug, Clone, Serialize)]
pub struct RecordingInfo {
    /// Session id it recorded (ids restart with the daemon; the newest wins a lookup).
    pub session_id: String,
    /// Session name, if it had one.
    pub name: Option<String>,
    /// Session start, ms since the epoch.
    pub created_at: u64,
    /// File size.
    pub bytes: u64,
    /// The file.
    pub path: PathBuf,
    /// Still being written.
    pub live: bool,
}

/// The file name of a recording.
pub fn file_name(created_ms: u64, id: &str, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("{created_ms}-{id}-{n}.cast"),
        None => format!("{created_ms}-{id}.cast"),
    }
}

/// Parses a recording's file name into (created_ms, id, name).
fn parse_name(file: &str) -> Option<(u64, String, Option<String>)> {
    let stem = file.strip_suffix(".cast")?;
    let (ms, rest) = stem.split_once('-')?;
    let ms = ms.parse().ok()?;
    Some(match rest.split_once('-') {
        Some((id, name)) => (ms, id.to_string(), Some(name.to_string())),
        None => (ms, rest.to_string(), None),
    })
}

/// Every recording in `dir`, oldest first; `live` says which paths are being written.
pub fn list(dir: &Path, live: &[PathBuf]) -> Vec<RecordingInfo> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<RecordingInfo> = entries
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().into_string().ok()?;
            let (created_at, session_id, name) = parse_name(&file)?;
            let meta = e.metadata().ok().filter(|m| m.is_file())?;
            let path = e.path();
            Some(RecordingInfo {
                live: live.contains(&path),
                session_id,
                name,
                created_at,
                bytes: meta.len(),
                path,
            })
        })
        .collect();
    out.sort_by(|a, b| (a.created_at, &a.path).cmp(&(b.created_at, &b.path)));
    out
}

/// The newest recording of the session with this id or name.
pub fn find(dir: &Path, key: &str, live: &[PathBuf]) -> Option<RecordingInfo> {
    list(dir, live)
        .into_iter()
        .rev()
        .find(|r| r.session_id == key || r.name.as_deref() == Some(key))
}

/// Deletes the oldest finished recordings until the total is at most `cap`; returns what
/// was deleted. Live recordings are never deleted.
pub fn enforce_total(dir: &Path, cap: u64, live: &[PathBuf]) -> Vec<PathBuf> {
    let all = list(dir, live);
    let mut total: u64 = all.iter().map(|r| r.bytes).sum();
    let mut deleted = Vec::new();
    for r in all {
        if total <= cap {
            break;
        }
        if r.live {
            continue;
        }
        if std::fs::remove_file(&r.path).is_ok() {
            total = total.saturating_sub(r.bytes);
            deleted.push(r.path);
        }
    }
    deleted
}

/// Cuts a last line that a killed writer left without its newline, so every line of every
/// finished recording is whole. Returns the files repaired.
pub fn repair(dir: &Path) -> Vec<PathBuf> {
    let mut fixed = Vec::new();
    for r in list(dir, &[]) {
        if r.bytes == 0 {
            continue;
        }
        if let Ok(true) = cut_partial_line(&r.path, r.bytes) {
            fixed.push(r.path);
        }
    }
    fixed
}

fn cut_partial_line(path: &Path, len: u64) -> std::io::Result<bool> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    // Look back at most 1 MiB for the last newline; a longer partial line is cut whole.
    let window = len.min(1024 * 1024);
    f.seek(SeekFrom::Start(len - window))?;
    let mut tail = Vec::with_capacity(window as usize);
    f.by_ref().take(window).read_to_end(&mut tail)?;
    if tail.last() == Some(&b'\n') {
        return Ok(false);
    }
    let keep = match tail.iter().rposition(|&b| b == b'\n') {
        Some(i) => len - window + i as u64 + 1,
        None => 0,
    };
    f.set_len(keep)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_lookup_prefers_the_newest() {
        assert_eq!(
            parse_name(&file_name(5, "s1", Some("build-2"))),
            Some((5, "s1".into(), Some("build-2".into())))
        );
        assert_eq!(
            parse_name(&file_name(7, "s2", None)),
            Some((7, "s2".into(), None))
        );
        assert_eq!(parse_name("notes.txt"), None);
        let dir = tempfile::tempdir().unwrap();
        for (ms, id, name) in [(1, "s1", Some("a")), (2, "s1", None), (3, "s2", Some("b"))] {
            std::fs::write(dir.path().join(file_name(ms, id, name)), b"x\n").unwrap();
        }
        assert_eq!(find(dir.path(), "s1", &[]).unwrap().created_at, 2);
        assert_eq!(find(dir.path(), "a", &[]).unwrap().created_at, 1);
        assert_eq!(find(dir.path(), "b", &[]).unwrap().session_id, "s2");
        assert!(find(dir.path(), "zz", &[]).is_none());
    }

    #[test]
    fn total_cap_deletes_oldest_finished_first() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (1..=4)
            .map(|ms| {
                let p = dir.path().join(file_name(ms, &format!("s{ms}"), None));
                std::fs::write(&p, vec![b'x'; 100]).unwrap();
                p
            })
            .collect();
        // The oldest is live: it stays, the next oldest go.
        let deleted = enforce_total(dir.path(), 250, &paths[..1]);
        assert_eq!(deleted, vec![paths[1].clone(), paths[2].clone()]);
        assert!(paths[0].exists() && paths[3].exists());
    }

    #[test]
    fn repair_cuts_a_partial_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(file_name(1, "s1", None));
        std::fs::write(&p, b"{\"h\":1}\n[1,\"o\",\"a\"]\n[2,\"o\",\"b").unwrap();
        let q = dir.path().join(file_name(2, "s2", None));
        std::fs::write(&q, b"{\"h\":1}\n").unwrap();
        assert_eq!(repair(dir.path()), vec![p.clone()]);
        assert_eq!(std::fs::read(&p).unwrap(), b"{\"h\":1}\n[1,\"o\",\"a\"]\n");
        assert_eq!(std::fs::read(&q).unwrap(), b"{\"h\":1}\n");
    }
}
