//! Session recordings: every PTY session as an asciicast v2 file under
//! `$XDG_STATE_HOME/agentssh/recordings/` (directory 0700, files 0600).
//!
//! A recording subscribes to its session like a watcher does, so the session actor never
//! waits on it: a pump task takes the subscription's events and hands them to a writer
//! thread ([`writer`]) through a queue bounded in bytes; when the disk is too slow and the
//! queue is full, output is dropped and a marker says how many bytes. Keystrokes are never
//! recorded, only markers saying who typed how many bytes. Per-session and total caps keep
//! the directory bounded ([`store`]).

pub mod audit;
mod pump;
pub mod store;
pub mod writer;

use std::collections::HashMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::session::{SessionHandle, Status};
use crate::cast::Header;
use crate::error::{Error, ErrorCode, Result};
use pump::Pump;
use writer::{DiskWriter, Finished, Item};

/// Default per-session cap, bytes.
pub const DEFAULT_SESSION_CAP: u64 = 256 * 1024 * 1024;
/// Default cap of the whole directory, bytes.
pub const DEFAULT_TOTAL_CAP: u64 = 2 * 1024 * 1024 * 1024;
/// Items queued for one writer (markers included) before they are dropped.
const QUEUE_ITEMS: usize = 4096;
/// Longest a sync (export of a live session) waits for its writer.
const SYNC_WAIT: Duration = Duration::from_secs(5);

/// Recording settings, from the environment of the daemon.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Record at all (`AGENTSSH_RECORD=0` turns it off).
    pub enabled: bool,
    /// Per-session cap (`AGENTSSH_RECORD_SESSION_CAP`).
    pub session_cap: u64,
    /// Directory cap (`AGENTSSH_RECORD_TOTAL_CAP`).
    pub total_cap: u64,
}

/// Parses `1048576`, `512K`, `256M`, `2G` (binary units).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'g' | 'G') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

impl Settings {
    /// From `AGENTSSH_RECORD`, `AGENTSSH_RECORD_SESSION_CAP`, `AGENTSSH_RECORD_TOTAL_CAP`;
    /// an unreadable value keeps the default (and is logged).
    pub fn from_env() -> Settings {
        let size = |var: &str, default: u64| match std::env::var(var) {
            Ok(v) => parse_size(&v).unwrap_or_else(|| {
                tracing::warn!("{var}={v:?} is not a size; using {default}");
                default
            }),
            Err(_) => default,
        };
        let enabled = !matches!(
            std::env::var("AGENTSSH_RECORD")
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
                .as_str(),
            "0" | "off" | "false" | "no"
        );
        Settings {
            enabled,
            session_cap: size("AGENTSSH_RECORD_SESSION_CAP", DEFAULT_SESSION_CAP),
            total_cap: size("AGENTSSH_RECORD_TOTAL_CAP", DEFAULT_TOTAL_CAP),
        }
    }
}

/// One recording being written.
struct Active {
    path: PathBuf,
    tx: SyncSender<Item>,
}

/// The daemon's recordings.
pub struct Recordings {
    /// Settings.
    pub settings: Settings,
    dir: Option<PathBuf>,
    active: Mutex<HashMap<String, Active>>,
    running: tokio::sync::watch::Sender<usize>,
    /// Where each finished recording's hash is logged.
    activity: Option<Arc<super::activity::Activity>>,
}

impl Recordings {
    /// Recordings under the state dir; repairs files a killed daemon left cut short.
    pub fn new(settings: Settings, activity: Option<Arc<super::activity::Activity>>) -> Recordings {
        let dir = crate::config::state_dir()
            .ok()
            .map(|d| d.join("recordings"));
        if let Some(d) = &dir {
            for p in store::repair(d) {
                tracing::info!(path = %p.display(), "repaired a recording cut short");
            }
        }
        Recordings {
            settings,
            dir,
            active: Mutex::default(),
            running: tokio::sync::watch::channel(0).0,
            activity,
        }
    }

    /// The recordings directory.
    pub fn dir(&self) -> Result<PathBuf> {
        self.dir
            .clone()
            .ok_or_else(|| Error::new(ErrorCode::LocalIo, "no state directory (HOME is unset)"))
    }

    fn live_paths(&self) -> Vec<PathBuf> {
        self.active
            .lock()
            .map(|m| m.values().map(|a| a.path.clone()).collect())
            .unwrap_or_default()
    }

    /// Starts recording session `h` (when enabled). A failure to create the file is logged
    /// and leaves the session unrecorded; it never fails the session.
    pub async fn start(self: &Arc<Self>, h: &SessionHandle) {
        if !self.settings.enabled {
            return;
        }
        if let Err(e) = self.try_start(h).await {
            tracing::warn!(session = %h.meta.id, "not recording: {}", e.message);
        }
    }

    async fn try_start(self: &Arc<Self>, h: &SessionHandle) -> Result<()> {
        let dir = self.dir()?;
        crate::fsutil::ensure_dir(&dir, 0o700).map_err(|e| Error::local_io(dir.display(), &e))?;
        store::enforce_total(&dir, self.settings.total_cap, &self.live_paths());
        let meta = &h.meta;
        let path = dir.join(store::file_name(
            meta.created_at,
            &meta.id,
            meta.name.as_deref(),
        ));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::local_io(path.display(), &e))?;
        let (keyframe, events, cols, rows) = h.subscribe().await?;
        let header = Header {
            version: 2,
            width: cols,
            height: rows,
            timestamp: meta.created_at / 1000,
            title: Some(format!(
                "{} {}",
                meta.name.as_deref().unwrap_or(&meta.id),
                meta.spec.display_target()
            )),
            idle_time_limit: None,
        };
        let mut head = serde_json::to_vec(&header).map_err(|e| Error::internal(e.to_string()))?;
        head.push(b'\n');
        let queued = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = sync_channel(QUEUE_ITEMS);
        let disk = DiskWriter::new(
            file,
            path.clone(),
            head,
            self.settings.session_cap,
            queued.clone(),
        );
        let this = self.clone();
        let id = meta.id.clone();
        self.running.send_modify(|n| *n += 1);
        let spawned = std::thread::Builder::new()
            .name(format!("record-{id}"))
            .stack_size(256 * 1024)
            .spawn(move || {
                let done = disk.run(rx);
                this.finished(&id, done);
            });
        if let Err(e) = spawned {
            self.running.send_modify(|n| *n = n.saturating_sub(1));
            return Err(Error::internal(format!(
                "cannot start a recording thread: {e}"
            )));
        }
        if let Ok(mut m) = self.active.lock() {
            m.insert(
                meta.id.clone(),
                Active {
                    path,
                    tx: tx.clone(),
                },
            );
        }
        let pump = Pump {
            tx,
            queued,
            start: Instant::now(),
            dropped: 0,
            status: Status::Running,
        };
        tokio::spawn(pump.run(h.clone(), keyframe, events));
        Ok(())
    }

    fn finished(&self, id: &str, done: Finished) {
        tracing::info!(session = %id, path = %done.path.display(), bytes = done.bytes, skipped = done.skipped, "recording finished");
        if let Ok(mut m) = self.active.lock() {
            if m.get(id).is_some_and(|a| a.path == done.path) {
                m.remove(id);
            }
        }
        if let Some(a) = &self.activity {
            let entry = crate::protocol::ActivityEntry {
                time_ms: crate::now_ms(),
                client: "daemon".into(),
                target: Some(id.to_string()),
                command: format!(
                    "recording closed ({} bytes, sha256 {})",
                    done.bytes, done.sha256
                ),
                duration_ms: 0,
                outcome: "ok".into(),
            };
            let hash = audit::RecordingHash {
                path: done.path.clone(),
                bytes: done.bytes,
                sha256: done.sha256.clone(),
            };
            a.record_with(entry, Some(hash));
        }
        if let Some(d) = &self.dir {
            store::enforce_total(d, self.settings.total_cap, &self.live_paths());
        }
        self.running.send_modify(|n| *n = n.saturating_sub(1));
    }

    /// The recording of a session (id or name; the newest one), flushed first when it is
    /// still being written.
    pub async fn locate(&self, key: &str) -> Result<store::RecordingInfo> {
        let dir = self.dir()?;
        let live = self.live_paths();
        let found = store::find(&dir, key, &live).ok_or_else(|| {
            Error::new(
                ErrorCode::SessionNotFound,
                format!("no recording of session '{key}'; run 'agentssh recordings list'"),
            )
        })?;
        if found.live {
            let tx = self.active.lock().ok().and_then(|m| {
                m.values()
                    .find(|a| a.path == found.path)
                    .map(|a| a.tx.clone())
            });
            if let Some(tx) = tx {
                let (reply, done) = tokio::sync::oneshot::channel();
                // The queue may be full for a moment: wait for room off the runtime.
                let queued = tokio::task::spawn_blocking(move || tx.send(Item::Sync(reply)));
                let _ = tokio::time::timeout(SYNC_WAIT, async {
                    if let Ok(Ok(())) = queued.await {
                        let _ = done.await;
                    }
                })
                .await;
            }
        }
        Ok(store::find(&dir, key, &self.live_paths()).unwrap_or(found))
    }

    /// Every recording, oldest first.
    pub fn list(&self) -> Result<Vec<store::RecordingInfo>> {
        Ok(store::list(&self.dir()?, &self.live_paths()))
    }

    /// Deletes the recordings of a session (id or name), or all finished ones; a live
    /// recording is refused.
    pub fn delete(&self, key: Option<&str>) -> Result<Vec<PathBuf>> {
        let all = self.list()?;
        let targets: Vec<_> = match key {
            Some(k) => all
                .into_iter()
                .filter(|r| r.session_id == k || r.name.as_deref() == Some(k))
                .collect(),
            None => all.into_iter().filter(|r| !r.live).collect(),
        };
        if let Some(k) = key {
            if targets.is_empty() {
                return Err(Error::new(
                    ErrorCode::SessionNotFound,
                    format!("no recording of session '{k}'"),
                ));
            }
            if targets.iter().any(|r| r.live) {
                return Err(Error::usage(format!(
                    "session '{k}' is still being recorded; close it first"
                )));
            }
        }
        let mut deleted = Vec::new();
        for r in targets {
            std::fs::remove_file(&r.path).map_err(|e| Error::local_io(r.path.display(), &e))?;
            deleted.push(r.path);
        }
        Ok(deleted)
    }

    /// Waits (at most `limit`) until every writer has finished, for a clean shutdown.
    pub async fn wait_finished(&self, limit: Duration) {
        let mut rx = self.running.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|n| *n == 0)).await;
    }
}

/// Serves `recordings list|delete` and the lookup behind `session export` and `replay -s`.
pub async fn handle(
    daemon: &Arc<super::Daemon>,
    req: crate::protocol::Request,
) -> Result<serde_json::Value> {
    use crate::protocol::Request;
    let rec = &daemon.recordings;
    match req {
        Request::RecordingList => {
            let list = rec.list()?;
            let total: u64 = list.iter().map(|r| r.bytes).sum();
            Ok(serde_json::json!({
                "recordings": list,
                "total_bytes": total,
                "dir": rec.dir()?,
                "enabled": rec.settings.enabled,
                "session_cap": rec.settings.session_cap,
                "total_cap": rec.settings.total_cap,
            }))
        }
        Request::RecordingDelete { session, all } => {
            if session.is_some() == all {
                return Err(Error::usage("pass -s ID or --all"));
            }
            let deleted = rec.delete(session.as_deref())?;
            Ok(serde_json::json!({ "deleted": deleted }))
        }
        Request::RecordingLocate { session } => {
            Ok(serde_json::to_value(rec.locate(&session).await?).unwrap_or_default())
        }
        other => Err(Error::internal(format!(
            "not a recordings request: {:?}",
            other.describe().0
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("512K"), Some(512 << 10));
        assert_eq!(parse_size(" 256m"), Some(256 << 20));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size(""), None);
    }
}
