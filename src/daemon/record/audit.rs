//! The activity log on disk: `$XDG_STATE_HOME/agentssh/activity.jsonl` (0600), one JSON
//! entry per line, each carrying `seq`, `prev_hash` and `hash` = SHA-256 of the entry's JSON
//! (sorted keys, without `hash`) — a chain that continues across daemon restarts and
//! rotations (`activity.jsonl.1` is the newest rotated file, up to [`KEEP_ROTATED`]).
//!
//! Entries are written by a thread of its own in arrival order; the daemon hands them over
//! through a bounded queue and never waits on the disk (an overflow is counted and logged as
//! an entry of its own). [`verify`] walks the files oldest first and reports the first broken
//! link, and any recording whose final hash no longer matches.

use std::fs::File;
use std::io::{BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::protocol::ActivityEntry;

/// The live file's name.
pub const FILE: &str = "activity.jsonl";
/// Size at which the live file is rotated, unless `AGENTSSH_ACTIVITY_ROTATE_BYTES` says.
pub const ROTATE_BYTES: u64 = 8 * 1024 * 1024;
/// Rotated files kept (`activity.jsonl.1` … `.5`).
pub const KEEP_ROTATED: u32 = 5;
/// The `prev_hash` of the very first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A recording's final state, logged when its session closes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordingHash {
    /// The file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
}

/// What the daemon hands the log writer.
#[derive(Debug, Clone)]
pub struct Item {
    /// The entry.
    pub entry: ActivityEntry,
    /// For "recording closed" entries.
    pub recording: Option<RecordingHash>,
}

/// The chain's writer state.
pub struct Chain {
    dir: PathBuf,
    rotate_at: u64,
    file: Option<File>,
    size: u64,
    seq: u64,
    last_hash: String,
}

/// The hash of an entry's JSON object (`hash` left out), chained on `prev_hash` inside it.
fn entry_hash(obj: &serde_json::Map<String, Value>) -> String {
    let mut o = obj.clone();
    o.remove("hash");
    // serde_json's map is sorted by key: the same bytes whoever serialises it.
    let text = serde_json::to_string(&Value::Object(o)).unwrap_or_default();
    crate::hex(&Sha256::digest(text.as_bytes()))
}

impl Chain {
    /// Opens the chain in `dir`, continuing from the last whole line of the newest file
    /// (a line a killed daemon left unfinished is cut first).
    pub fn open(dir: &Path) -> std::io::Result<Chain> {
        crate::fsutil::ensure_dir(dir, 0o700)?;
        let rotate_at = std::env::var("AGENTSSH_ACTIVITY_ROTATE_BYTES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(ROTATE_BYTES);
        let live = dir.join(FILE);
        cut_partial_line(&live)?;
        let (mut seq, mut last_hash) = (0, GENESIS.to_string());
        for p in [live.clone(), rotated(dir, 1)] {
            if let Some(v) = last_line(&p) {
                seq = v["seq"].as_u64().unwrap_or(0);
                last_hash = v["hash"].as_str().unwrap_or(GENESIS).to_string();
                break;
            }
        }
        let file = open_append(&live)?;
        let size = file.metadata()?.len();
        Ok(Chain {
            dir: dir.to_path_buf(),
            rotate_at,
            file: Some(file),
            size,
            seq,
            last_hash,
        })
    }

    /// Appends one entry (rotating first when the file is full).
    pub fn append(&mut self, item: &Item) -> std::io::Result<()> {
        if self.size >= self.rotate_at {
            self.rotate()?;
        }
        let mut v = serde_json::to_value(&item.entry).unwrap_or_default();
        let Some(obj) = v.as_object_mut() else {
            return Ok(());
        };
        self.seq += 1;
        obj.insert("seq".into(), self.seq.into());
        if let Some(r) = &item.recording {
            obj.insert(
                "recording".into(),
                serde_json::to_value(r).unwrap_or_default(),
            );
        }
        obj.insert("prev_hash".into(), self.last_hash.clone().into());
        let hash = entry_hash(obj);
        obj.insert("hash".into(), hash.clone().into());
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        let Some(file) = self.file.as_mut() else {
            return Err(std::io::Error::other("the activity log is not open"));
        };
        file.write_all(&line)?;
        self.size += line.len() as u64;
        self.last_hash = hash;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        let _ = std::fs::remove_file(rotated(&self.dir, KEEP_ROTATED));
        for n in (1..KEEP_ROTATED).rev() {
            let _ = std::fs::rename(rotated(&self.dir, n), rotated(&self.dir, n + 1));
        }
        std::fs::rename(self.dir.join(FILE), rotated(&self.dir, 1))?;
        self.file = Some(open_append(&self.dir.join(FILE))?);
        self.size = 0;
        Ok(())
    }
}

fn rotated(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{FILE}.{n}"))
}

fn open_append(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// The last whole line of `path`, parsed.
fn last_line(path: &Path) -> Option<Value> {
    let f = File::open(path).ok()?;
    let mut last = None;
    for line in std::io::BufReader::new(f).lines() {
        let line = line.ok()?;
        if !line.trim().is_empty() {
            last = Some(line);
        }
    }
    serde_json::from_str(&last?).ok()
}

fn cut_partial_line(path: &Path) -> std::io::Result<()> {
    let Ok(bytes) = std::fs::read(path) else {
        return Ok(());
    };
    if bytes.is_empty() || bytes.last() == Some(&b'\n') {
        return Ok(());
    }
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .set_len(keep as u64)
}

/// The newest `limit` entries of the live file, oldest first (the daemon's memory after a
/// restart).
pub fn recent(dir: &Path, limit: usize) -> Vec<ActivityEntry> {
    let Ok(f) = File::open(dir.join(FILE)) else {
        return Vec::new();
    };
    let mut out = std::collections::VecDeque::with_capacity(limit);
    for line in std::io::BufReader::new(f).lines().map_while(|l| l.ok()) {
        if let Ok(e) = serde_json::from_str::<ActivityEntry>(&line) {
            if out.len() == limit {
                out.pop_front();
            }
            out.push_back(e);
        }
    }
    out.into()
}

/// Where the chain breaks.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Broken {
    /// The file holding the bad entry (a log file, or a recording).
    pub file: PathBuf,
    /// 1-based line in the log file of the entry that no longer checks out.
    pub line: usize,
    /// The entry's `seq`, when readable.
    pub seq: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

/// The result of `log verify`.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Every link and every recording hash checked out.
    pub ok: bool,
    /// Entries checked.
    pub entries: u64,
    /// Recordings whose hash was checked (deleted ones are skipped).
    pub recordings_checked: u64,
    /// The first broken link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_at: Option<Broken>,
}

/// Checks the chain in `dir` across rotated files (oldest first), then the recordings.
pub fn verify(dir: &Path) -> std::io::Result<Verdict> {
    let mut files: Vec<PathBuf> = (1..=KEEP_ROTATED)
        .rev()
        .map(|n| rotated(dir, n))
        .filter(|p| p.exists())
        .collect();
    let live = dir.join(FILE);
    if live.exists() {
        files.push(live);
    }
    let mut verdict = Verdict {
        ok: true,
        entries: 0,
        recordings_checked: 0,
        broken_at: None,
    };
    let mut prev: Option<(String, u64)> = None;
    let mut recordings = Vec::new();
    for file in &files {
        let text = std::fs::read(file)?;
        // A last line without its newline is being written right now: not checked yet.
        let whole = match text.iter().rposition(|&b| b == b'\n') {
            Some(i) => &text[..=i],
            None => &text[..0],
        };
        for (i, line) in whole.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let broken = |seq, reason: &str| Broken {
                file: file.clone(),
                line: i + 1,
                seq,
                reason: reason.to_string(),
            };
            let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(line) else {
                verdict.broken_at = Some(broken(None, "not a JSON entry"));
                break;
            };
            let seq = obj.get("seq").and_then(Value::as_u64);
            let stated = obj.get("hash").and_then(Value::as_str).unwrap_or_default();
            let prev_hash = obj
                .get("prev_hash")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let problem = if entry_hash(&obj) != stated {
                Some("the entry does not match its hash (edited)")
            } else {
                match &prev {
                    Some((h, _)) if h != prev_hash => {
                        Some("prev_hash does not match the previous entry (an entry was removed or reordered)")
                    }
                    Some((_, s)) if seq != Some(s + 1) => Some("seq does not follow the previous entry"),
                    _ => None,
                }
            };
            if let Some(reason) = problem {
                verdict.broken_at = Some(broken(seq, reason));
                break;
            }
            if let Some(r) = obj
                .get("recording")
                .and_then(|r| serde_json::from_value::<RecordingHash>(r.clone()).ok())
            {
                recordings.push((r, broken(seq, "")));
            }
            verdict.entries += 1;
            prev = Some((stated.to_string(), seq.unwrap_or(0)));
        }
        if verdict.broken_at.is_some() {
            break;
        }
    }
    if verdict.broken_at.is_none() {
        for (r, at) in recordings {
            let Ok(bytes) = std::fs::read(&r.path) else {
                continue; // deleted (total cap, `recordings delete`): nothing to check
            };
            verdict.recordings_checked += 1;
            if crate::hex(&Sha256::digest(&bytes)) != r.sha256 {
                verdict.broken_at = Some(Broken {
                    file: r.path.clone(),
                    reason: format!(
                        "the recording no longer matches the SHA-256 logged at {} line {}",
                        at.file.display(),
                        at.line
                    ),
                    ..at
                });
                break;
            }
        }
    }
    verdict.ok = verdict.broken_at.is_none();
    Ok(verdict)
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
