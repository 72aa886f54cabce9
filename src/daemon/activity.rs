//! The activity log: every request a client made (time, client, target, command with
//! secrets left out, duration, outcome), kept in a bounded ring and broadcast to followers
//! (`agentssh log --follow`, the dashboard). A follower that falls behind loses entries and
//! is told how many, it never slows the daemon.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::broadcast;

use crate::protocol::ActivityEntry;

/// Entries kept in memory.
pub const CAPACITY: usize = 1000;
/// Entries a follower may lag behind before it loses some.
const FOLLOW_QUEUE: usize = 256;

/// The log. The mutex guards only the ring (no I/O happens under it).
pub struct Activity {
    ring: Mutex<VecDeque<ActivityEntry>>,
    live: broadcast::Sender<ActivityEntry>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            ring: Mutex::new(VecDeque::with_capacity(CAPACITY)),
            live: broadcast::channel(FOLLOW_QUEUE).0,
        }
    }
}

impl Activity {
    /// Appends an entry and tells followers.
    pub fn record(&self, entry: ActivityEntry) {
        if let Ok(mut ring) = self.ring.lock() {
            if ring.len() == CAPACITY {
                ring.pop_front();
            }
            ring.push_back(entry.clone());
        }
        let _ = self.live.send(entry);
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
