//! The pump between a session's subscription and its recording's writer: it turns events
//! into queued items (output, resizes, markers) and never waits: when the writer's queue is
//! full (a slow disk), output is dropped and counted, and a marker says how many bytes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Instant;

use super::writer::Item;
use crate::daemon::session::{Event, Note, SessionHandle, Status, Writer};

/// Output bytes queued for one writer before output is dropped.
pub const QUEUE_BYTES: usize = 4 * 1024 * 1024;

/// Moves a session's events to its writer without ever waiting for it.
pub(super) struct Pump {
    pub(super) tx: SyncSender<Item>,
    pub(super) queued: Arc<AtomicUsize>,
    pub(super) start: Instant,
    /// Output bytes dropped since the last item that got through.
    pub(super) dropped: u64,
    pub(super) status: Status,
}

impl Pump {
    pub(super) async fn run(
        mut self,
        h: SessionHandle,
        keyframe: Vec<u8>,
        mut events: tokio::sync::mpsc::Receiver<Event>,
    ) {
        // What the screen showed when recording began (a fresh session: almost nothing).
        self.output(bytes::Bytes::from(keyframe));
        while let Some(ev) = events.recv().await {
            match ev {
                Event::Output(b) => self.output(b),
                Event::Keyframe(k) => {
                    self.mark("the recording fell behind the session; screen redrawn".into());
                    self.output(bytes::Bytes::from(k));
                }
                Event::Resized { cols, rows } => {
                    let t = self.now();
                    self.send(Item::Resize(t, cols, rows), 0);
                }
                Event::Note(m) => self.mark(label(&m)),
                Event::Changed => {
                    let status = h.ticks().borrow().status;
                    if status != self.status {
                        self.status = status;
                        self.mark(status_label(status).into());
                        if status == Status::Closed {
                            break;
                        }
                    }
                }
            }
        }
        let last = (self.dropped > 0).then(|| Item::Mark(self.now(), dropped_label(self.dropped)));
        // The last words wait for room, off the runtime, so neither the count nor the end is
        // lost (the registry's copy of the sender keeps the queue open until then).
        let tx = self.tx.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(item) = last {
                let _ = tx.send(item);
            }
            let _ = tx.send(Item::Finish);
        })
        .await;
    }

    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn output(&mut self, b: bytes::Bytes) {
        if b.is_empty() {
            return;
        }
        let n = b.len();
        if self.queued.load(Ordering::Relaxed) + n > QUEUE_BYTES {
            self.dropped += n as u64;
            return;
        }
        let t = self.now();
        self.send(Item::Output(t, b), n);
    }

    fn mark(&mut self, label: String) {
        let t = self.now();
        self.send(Item::Mark(t, label), 0);
    }

    /// Queues an item (after a marker for what was dropped before it), or counts it dropped.
    fn send(&mut self, item: Item, out_bytes: usize) {
        if self.dropped > 0 {
            let t = self.now();
            match self.tx.try_send(Item::Mark(t, dropped_label(self.dropped))) {
                Ok(()) => self.dropped = 0,
                Err(_) => {
                    self.dropped += out_bytes as u64;
                    return;
                }
            }
        }
        self.queued.fetch_add(out_bytes, Ordering::Relaxed);
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(item) {
            self.queued.fetch_sub(out_bytes, Ordering::Relaxed);
            self.dropped += out_bytes as u64;
        }
    }
}

fn dropped_label(n: u64) -> String {
    format!("{n} bytes of output dropped: the disk was too slow")
}

/// A marker's label: who typed how many bytes, never what.
fn label(m: &Note) -> String {
    match m {
        Note::Input {
            who: Writer::Agent,
            bytes,
        } => format!("agent sent {bytes} bytes"),
        Note::Input {
            who: Writer::Human,
            bytes,
        } => format!("human typed {bytes} bytes"),
        Note::Control(Some(holder)) => format!("control taken by {holder}"),
        Note::Control(None) => "control returned to the agent".into(),
        Note::RunStarted(n) => format!("session run started ({n}-byte command)"),
        Note::RunEnded(Some(s)) => format!("session run ended (exit status {s})"),
        Note::RunEnded(None) => "session run ended (no exit status)".into(),
    }
}

fn status_label(s: Status) -> &'static str {
    match s {
        Status::Running => "reconnected: the previous shell state was lost",
        Status::Reconnecting => "connection lost; reconnecting",
        Status::Disconnected => "connection lost; session disconnected",
        Status::Closed => "session closed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_never_carry_input() {
        let l = label(&Note::Input {
            who: Writer::Human,
            bytes: 7,
        });
        assert_eq!(l, "human typed 7 bytes");
    }
}
