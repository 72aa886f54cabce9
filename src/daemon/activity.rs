//! The activity log: every request a client made (time, client, target, command with
//! secrets left out, duration, outcome), kept in a bounded ring and broadcast to followers
//! (`agentssh log --follow`, the dashboard). A follower that falls behind loses entries and
//! is told how many, it never slows the daemon. A persistent log also hands every entry to
//! a writer thread that appends it to the hash-chained file on disk
//! ([`super::record::audit`]).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::broadcast;

use super::record::audit::{self, Chain, RecordingHash};
use crate::protocol::ActivityEntry;

/// Entries queued for the disk writer before they are counted as lost.
const DISK_QUEUE: usize = 4096;

/// What the disk writer is handed.
enum ToDisk {
    Entry(audit::Item),
    Flush(std::sync::mpsc::Sender<()>),
}

/// Entries kept in memory.
pub const CAPACITY: usize = 1000;
/// Entries a follower may lag behind before it loses some.
const FOLLOW_QUEUE: usize = 256;

/// The log. The mutex guards only the ring (no I/O happens under it).
pub struct Activity {
    ring: Mutex<VecDeque<ActivityEntry>>,
    live: broadcast::Sender<ActivityEntry>,
    disk: Option<SyncSender<ToDisk>>,
    /// Entries the disk writer could not take (its queue was full).
    lost: std::sync::Arc<AtomicU64>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            ring: Mutex::new(VecDeque::with_capacity(CAPACITY)),
            live: broadcast::channel(FOLLOW_QUEUE).0,
            disk: None,
            lost: Default::default(),
        }
    }
}

impl Activity {
    /// A log kept on disk in `dir` as well, continuing its chain; the newest entries are
    /// loaded back into memory. A log that cannot be opened leaves the daemon with the
    /// in-memory log only (and says so in the daemon log).
    pub fn persistent(dir: &Path) -> Activity {
        let mut a = Activity::default();
        let chain = match Chain::open(dir) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("activity log not kept on disk: {e}");
                return a;
            }
        };
        if let Ok(mut ring) = a.ring.lock() {
            ring.extend(audit::recent(dir, CAPACITY));
        }
        let (tx, rx) = sync_channel(DISK_QUEUE);
        let lost = a.lost.clone();
        let spawned = std::thread::Builder::new()
            .name("activity-log".into())
            .stack_size(256 * 1024)
            .spawn(move || write_loop(chain, rx, &lost));
        match spawned {
            Ok(_) => a.disk = Some(tx),
            Err(e) => tracing::warn!("activity log not kept on disk: {e}"),
        }
        a
    }

    /// Appends an entry and tells followers.
    pub fn record(&self, entry: ActivityEntry) {
        self.record_with(entry, None);
    }

    /// Appends an entry (a closed recording's hash with it) and tells followers.
    pub fn record_with(&self, entry: ActivityEntry, recording: Option<RecordingHash>) {
        if let Ok(mut ring) = self.ring.lock() {
            if ring.len() == CAPACITY {
                ring.pop_front();
            }
            ring.push_back(entry.clone());
        }
        if let Some(tx) = &self.disk {
            let item = audit::Item {
                entry: entry.clone(),
                recording,
            };
            if tx.try_send(ToDisk::Entry(item)).is_err() {
                self.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
        let _ = self.live.send(entry);
    }

    /// Waits (at most `limit`, blocking) until every entry so far is on disk.
    pub fn flush(&self, limit: Duration) {
        if let Some(tx) = &self.disk {
            let (done, wait) = std::sync::mpsc::channel();
            if tx.send(ToDisk::Flush(done)).is_ok() {
                let _ = wait.recv_timeout(limit);
            }
        }
    }

    /// The newest `limit` entries, oldest first.
    pub fn recent(&self, limit: usize) -> Vec<ActivityEntry> {
        match self.ring.lock() {
            Ok(ring) => ring
                .iter()
                .skip(ring.len().saturating_sub(limit))
                .cloned()
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// A receiver of new entries.
    pub fn follow(&self) -> broadcast::Receiver<ActivityEntry> {
        self.live.subscribe()
    }
}

/// The disk writer: appends entries in order; a full queue's losses become an entry.
fn write_loop(mut chain: Chain, rx: Receiver<ToDisk>, lost: &AtomicU64) {
    let mut failed = false;
    for msg in rx {
        match msg {
            ToDisk::Entry(item) => {
                let n = lost.swap(0, Ordering::Relaxed);
                if n > 0 {
                    let note = audit::Item {
                        entry: ActivityEntry {
                            time_ms: crate::now_ms(),
                            client: "daemon".into(),
                            target: None,
                            command: format!(
                                "{n} activity entries lost: the log writer fell behind"
                            ),
                            duration_ms: 0,
                            outcome: "lost".into(),
                        },
                        recording: None,
                    };
                    failed |= chain.append(&note).is_err();
                }
                if let Err(e) = chain.append(&item) {
                    if !failed {
                        tracing::warn!("cannot append to the activity log: {e}");
                    }
                    failed = true;
                }
            }
            ToDisk::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> ActivityEntry {
        ActivityEntry {
            time_ms: n,
            client: "cli:1".into(),
            target: None,
            command: format!("c{n}"),
            duration_ms: 0,
            outcome: "ok".into(),
        }
    }

    #[test]
    fn ring_is_bounded_and_ordered() {
        let a = Activity::default();
        for n in 0..(CAPACITY as u64 + 5) {
            a.record(entry(n));
        }
        let all = a.recent(usize::MAX);
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(all[0].time_ms, 5);
        assert_eq!(
            a.recent(2).iter().map(|e| e.time_ms).collect::<Vec<_>>(),
            vec![CAPACITY as u64 + 3, CAPACITY as u64 + 4]
        );
    }
}
