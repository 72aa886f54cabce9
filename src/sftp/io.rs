//! Plumbing shared by both backends: directory entries, progress counters, where bytes come
//! from ([`Source`]) and go to ([`Sink`]), and the registry of temp files to remove when an
//! operation fails or is cancelled ([`Temps`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

use crate::error::{Error, ErrorCode, Result};

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else (device, fifo, socket).
    Other,
}

impl Kind {
    /// The JSON spelling: `file`, `dir`, `symlink`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Symlink => "symlink",
            Kind::Other => "other",
        }
    }

    /// From the `S_IFMT` bits of a Unix mode.
    pub fn from_mode(mode: u32) -> Kind {
        match mode & 0o170_000 {
            0o100_000 => Kind::File,
            0o040_000 => Kind::Dir,
            0o120_000 => Kind::Symlink,
            _ => Kind::Other,
        }
    }
}

/// One remote (or local) directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// File name, or a path relative to the walked root (`a/b`).
    pub name: String,
    /// Type.
    pub kind: Kind,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: u64,
    /// Symlink target, for symlinks.
    pub link: Option<String>,
}

impl Entry {
    /// The JSON form used by `file ls`.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind.as_str(),
            "size": self.size,
            "mode": mode_string(self.mode),
            "mtime": self.mtime,
            "link_target": self.link,
        })
    }
}

/// `0644`-style octal permission bits.
pub fn mode_string(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// Bytes done out of bytes expected, shared with whoever draws a progress bar.
#[derive(Debug, Default)]
pub struct Progress {
    done: AtomicU64,
    total: AtomicU64,
}

impl Progress {
    /// Adds `n` bytes to the expected total.
    pub fn add_total(&self, n: u64) {
        self.total.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `n` more bytes as done.
    pub fn advance(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }

    /// `(done, total)`.
    pub fn get(&self) -> (u64, u64) {
        (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }
}

/// A chunk of `file write --stdin` input, or its end. A stream that stops without
/// [`Input::Eof`] was interrupted, and the write is abandoned.
#[derive(Debug)]
pub enum Input {
    /// More bytes.
    Data(Bytes),
    /// The end of the input.
    Eof,
}

/// Where the bytes of a write or upload come from.
pub(crate) enum Source<'a> {
    /// Bytes in memory.
    Bytes(Bytes),
    /// A local file.
    Local(tokio::fs::File, PathBuf),
    /// A stream of [`Input`] (stdin of the CLI), with a leftover of the last chunk.
    Input(&'a mut mpsc::Receiver<Input>, Bytes),
}

impl Source<'_> {
    /// The next chunk of at most `max` bytes (full chunks until the end); `None` at the end.
    pub async fn next(&mut self, max: usize) -> Result<Option<Bytes>> {
        match self {
            Source::Bytes(b) => {
                if b.is_empty() {
                    return Ok(None);
                }
                let n = max.min(b.len());
                Ok(Some(b.split_to(n)))
            }
            Source::Local(f, path) => {
                let mut buf = vec![0u8; max];
                let mut filled = 0;
                while filled < max {
                    let n = f
                        .read(&mut buf[filled..])
                        .await
                        .map_err(|e| Error::local_io(path.display(), &e))?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                buf.truncate(filled);
                Ok((filled > 0).then(|| Bytes::from(buf)))
            }
            Source::Input(rx, left) => {
                while left.is_empty() {
                    match rx.recv().await {
                        Some(Input::Data(b)) => *left = b,
                        Some(Input::Eof) => return Ok(None),
                        None => {
                            return Err(Error::new(
                                ErrorCode::RemoteIo,
                                "the input stopped before its end (client interrupted); the target was left unchanged",
                            ))
                        }
                    }
                }
                let n = max.min(left.len());
                Ok(Some(left.split_to(n)))
            }
        }
    }
}

/// Where the bytes of a read or download go.
pub(crate) enum Sink<'a> {
    /// A local file (a download's temp file).
    Local(tokio::fs::File, PathBuf),
    /// The reader of `file read` (the CLI, or the daemon relaying to it).
    Channel(&'a mpsc::Sender<Bytes>),
    /// Memory, at most `max` bytes (`file edit`).
    Buffer {
        /// The bytes so far.
        buf: Vec<u8>,
        /// The limit.
        max: usize,
    },
}

impl Sink<'_> {
    /// Takes one chunk.
    pub async fn put(&mut self, b: Bytes) -> Result<()> {
        match self {
            Sink::Local(f, path) => f
                .write_all(&b)
                .await
                .map_err(|e| Error::local_io(path.display(), &e)),
            Sink::Channel(tx) => tx.send(b).await.map_err(|_| {
                Error::new(ErrorCode::RemoteIo, "the reader went away; read abandoned")
            }),
            Sink::Buffer { buf, max } => {
                if buf.len() + b.len() > *max {
                    return Err(Error::usage(format!(
                        "the file is larger than {max} bytes, the limit for this operation; use file download"
                    )));
                }
                buf.extend_from_slice(&b);
                Ok(())
            }
        }
    }
}

/// Runs the futures of `futs` with at most `n` at once, handing each result to `each`;
/// stops at the first error. (A plain loop rather than stream combinators, whose closures
/// trip the compiler's `Send` inference for the daemon's spawned tasks.)
pub(crate) async fn limited<T, F>(
    futs: impl IntoIterator<Item = F>,
    n: usize,
    mut each: impl FnMut(T),
) -> Result<()>
where
    F: std::future::Future<Output = Result<T>>,
{
    let mut futs = futs.into_iter();
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < n.max(1) {
            match futs.next() {
                Some(f) => running.push(f),
                None => break,
            }
        }
        match running.next().await {
            Some(r) => each(r?),
            None => return Ok(()),
        }
    }
}

/// The stop flag of one operation (the client went away, or SIGINT/SIGTERM): data loops
/// check it and wind down through their normal error path, so temp files get removed and
/// exec channels get closed.
#[derive(Debug, Clone)]
pub(crate) struct Stop(watch::Receiver<bool>);

impl Stop {
    /// A flag driven by `rx`.
    pub fn new(rx: watch::Receiver<bool>) -> Stop {
        Stop(rx)
    }

    /// A flag that is never set.
    pub fn never() -> Stop {
        Stop(watch::channel(false).1)
    }

    /// Errs with [`interrupted`] once stopped.
    pub fn check(&self) -> Result<()> {
        if *self.0.borrow() {
            return Err(interrupted());
        }
        Ok(())
    }

    /// Resolves once stopped (never, if the flag's owner is gone without stopping).
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The error of an interrupted operation.
pub(crate) fn interrupted() -> Error {
    Error::new(
        ErrorCode::RemoteIo,
        "interrupted before it finished: files not yet complete were left untouched and their temp files removed",
    )
}

/// Temp files created by an operation and not yet renamed into place; whatever is left here
/// when the operation fails or is cancelled is removed.
#[derive(Debug, Default)]
pub(crate) struct Temps {
    remote: Mutex<Vec<String>>,
    local: Mutex<Vec<PathBuf>>,
}

impl Temps {
    /// Registers a remote temp file (before creating it).
    pub fn add_remote(&self, p: &str) {
        if let Ok(mut v) = self.remote.lock() {
            v.push(p.to_string());
        }
    }

    /// The remote temp file was renamed into place (or removed).
    pub fn done_remote(&self, p: &str) {
        if let Ok(mut v) = self.remote.lock() {
            v.retain(|x| x != p);
        }
    }

    /// Registers a local temp file.
    pub fn add_local(&self, p: &Path) {
        if let Ok(mut v) = self.local.lock() {
            v.push(p.to_path_buf());
        }
    }

    /// The local temp file was renamed into place.
    pub fn done_local(&self, p: &Path) {
        if let Ok(mut v) = self.local.lock() {
            v.retain(|x| x != p);
        }
    }

    /// Takes what is left: (remote, local).
    pub fn take(&self) -> (Vec<String>, Vec<PathBuf>) {
        let r = self
            .remote
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        let l = self
            .local
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        (r, l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn input_source_splits_chunks_and_detects_interruption() {
        let (tx, mut rx) = mpsc::channel(4);
        tx.send(Input::Data(Bytes::from_static(b"hello")))
            .await
            .unwrap();
        tx.send(Input::Eof).await.unwrap();
        let mut s = Source::Input(&mut rx, Bytes::new());
        assert_eq!(
            s.next(3).await.unwrap().unwrap(),
            Bytes::from_static(b"hel")
        );
        assert_eq!(s.next(3).await.unwrap().unwrap(), Bytes::from_static(b"lo"));
        assert!(s.next(3).await.unwrap().is_none());

        let (tx, mut rx) = mpsc::channel(4);
        tx.send(Input::Data(Bytes::from_static(b"x")))
            .await
            .unwrap();
        drop(tx);
        let mut s = Source::Input(&mut rx, Bytes::new());
        assert!(s.next(3).await.unwrap().is_some());
        assert!(s.next(3).await.is_err());
    }

    #[tokio::test]
    async fn buffer_sink_is_bounded() {
        let mut s = Sink::Buffer {
            buf: Vec::new(),
            max: 4,
        };
        s.put(Bytes::from_static(b"abc")).await.unwrap();
        assert!(s.put(Bytes::from_static(b"de")).await.is_err());
    }

    #[test]
    fn kinds_from_modes() {
        assert_eq!(Kind::from_mode(0o100644), Kind::File);
        assert_eq!(Kind::from_mode(0o040755), Kind::Dir);
        assert_eq!(Kind::from_mode(0o120777), Kind::Symlink);
        assert_eq!(Kind::from_mode(0o020666), Kind::Other);
        assert_eq!(mode_string(0o100640), "0640");
    }
}
