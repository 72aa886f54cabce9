//! One recording's disk writer: a thread of its own that turns queued items into asciicast
//! lines, keeps the per-session cap, and flushes whenever its queue runs dry (and at least
//! every [`FLUSH_EVERY`]), writing whole lines only so a killed daemon leaves a file whose
//! every complete line is valid.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::cast::{CastEvent, Kind, Utf8Stream};

/// Longest time written events wait in memory before they reach the file.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Bytes gathered before a write, when the queue does not run dry first.
const WRITE_CHUNK: usize = 64 * 1024;

/// What the session side hands the writer.
pub enum Item {
    /// PTY output at `t` seconds.
    Output(f64, Bytes),
    /// A resize.
    Resize(f64, u16, u16),
    /// A marker label.
    Mark(f64, String),
    /// Flush everything so far, then answer.
    Sync(tokio::sync::oneshot::Sender<()>),
    /// The session is over: close the recording.
    Finish,
}

/// How a finished recording ended.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Output bytes left out after the cap was reached.
    pub skipped: u64,
    /// SHA-256 of the bytes written, hex.
    pub sha256: String,
}

/// The writer's state.
pub struct DiskWriter {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
    written: u64,
    cap: u64,
    capped: bool,
    skipped: u64,
    last_time: f64,
    utf8: Utf8Stream,
    /// Bytes queued on the session side and not yet taken (shared with the pump).
    queued: Arc<AtomicUsize>,
    failed: bool,
    /// Hash of everything written so far.
    hasher: Sha256,
    /// Test-only slowness per write, to exercise the drop path.
    delay: Duration,
}

impl DiskWriter {
    /// A writer for `file` (its header already in `header`), keeping under `cap` bytes.
    pub fn new(
        file: File,
        path: PathBuf,
        header: Vec<u8>,
        cap: u64,
        queued: Arc<AtomicUsize>,
    ) -> Self {
        let delay = std::env::var("AGENTSSH_TEST_RECORD_WRITE_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis)
            .unwrap_or_default();
        DiskWriter {
            file,
            path,
            written: header.len() as u64,
            buf: header,
            cap,
            capped: false,
            skipped: 0,
            last_time: 0.0,
            utf8: Utf8Stream::default(),
            queued,
            failed: false,
            hasher: Sha256::new(),
            delay,
        }
    }

    /// Runs until the session side hangs up, then writes the closing markers.
    pub fn run(mut self, rx: Receiver<Item>) -> Finished {
        let mut last_flush = Instant::now();
        loop {
            let item = match rx.try_recv() {
                Ok(item) => item,
                Err(TryRecvError::Empty) => {
                    // The queue ran dry: put what we have on disk, then wait.
                    self.flush();
                    last_flush = Instant::now();
                    match rx.recv_timeout(FLUSH_EVERY) {
                        Ok(item) => item,
                        Err(RecvTimeoutError::Timeout) => continue,
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                Err(TryRecvError::Disconnected) => break,
            };
            if matches!(item, Item::Finish) {
                break;
            }
            self.take(item);
            if self.buf.len() >= WRITE_CHUNK || last_flush.elapsed() >= FLUSH_EVERY {
                self.flush();
                last_flush = Instant::now();
            }
        }
        let rest = self.utf8.finish();
        if !rest.is_empty() {
            self.event(self.last_time, Kind::Output(rest));
        }
        if self.skipped > 0 {
            let label = format!(
                "{} bytes of output not recorded: the recording reached its cap of {} bytes",
                self.skipped, self.cap
            );
            self.push_line(self.last_time, Kind::Marker(label));
        }
        self.flush();
        Finished {
            path: self.path,
            bytes: self.written,
            skipped: self.skipped,
            sha256: crate::hex(&self.hasher.finalize()),
        }
    }

    fn take(&mut self, item: Item) {
        match item {
            Item::Output(t, b) => {
                self.queued.fetch_sub(b.len(), Ordering::Relaxed);
                if self.capped {
                    self.skipped += b.len() as u64;
                    return;
                }
                let text = self.utf8.push(&b);
                if !text.is_empty() && !self.event(t, Kind::Output(text)) {
                    self.skipped += b.len() as u64;
                }
            }
            Item::Resize(t, c, r) => {
                self.event(t, Kind::Resize(c, r));
            }
            Item::Mark(t, label) => {
                self.event(t, Kind::Marker(label));
            }
            Item::Sync(reply) => {
                self.flush();
                let _ = reply.send(());
            }
            Item::Finish => {}
        }
    }

    /// Appends an event unless it would pass the cap; the first one that would is replaced by
    /// a marker saying so, and nothing but the closing marker follows. False when left out.
    fn event(&mut self, time: f64, kind: Kind) -> bool {
        if self.capped {
            return false;
        }
        let line = CastEvent { time, kind }.to_line();
        // Room for the cap marker and the closing summary stays under the cap's slack.
        if self.written + line.len() as u64 > self.cap {
            self.capped = true;
            let label = format!(
                "recording cap of {} bytes reached; later output is summarised when the session ends",
                self.cap
            );
            self.push_line(time, Kind::Marker(label));
            return false;
        }
        self.last_time = self.last_time.max(time);
        self.written += line.len() as u64;
        self.buf.extend_from_slice(&line);
        true
    }

    fn push_line(&mut self, time: f64, kind: Kind) {
        let line = CastEvent { time, kind }.to_line();
        self.written += line.len() as u64;
        self.buf.extend_from_slice(&line);
    }

    fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        if self.failed {
            self.buf.clear();
            return;
        }
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        if let Err(e) = self.file.write_all(&self.buf) {
            // A full or broken disk ends this recording, never the session.
            tracing::warn!(path = %self.path.display(), "recording stopped: {e}");
            self.failed = true;
        } else {
            self.hasher.update(&self.buf);
        }
        self.buf.clear();
    }
}
