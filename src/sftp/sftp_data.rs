//! The SFTP data path: pipelined reads and writes at explicit offsets.
//!
//! Every request is sent the moment it is created (polled once), so the server sees them in
//! order; a file's `fsetstat` and `close` therefore follow its last write in the same round
//! trip, and a small file costs three round trips (open; write+setstat+close; rename). The
//! bytes in flight are bounded by the session's window semaphore, shared by all files.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use bytes::Bytes;
use futures::stream::{FuturesOrdered, FuturesUnordered, StreamExt};
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags};
use tokio::sync::OwnedSemaphorePermit;

use super::io::{interrupted, Progress, Sink, Source};
use super::sftp_fs::{attrs, is_eof, map, SftpFs};
use crate::error::Result;

/// A write on the wire: resolves to the bytes it carried.
type Ack = Pin<Box<dyn Future<Output = std::result::Result<u64, SftpError>> + Send>>;

impl SftpFs {
    async fn permit(&self, wait: bool) -> Option<OwnedSemaphorePermit> {
        if wait {
            self.window.clone().acquire_owned().await.ok()
        } else {
            self.window.clone().try_acquire_owned().ok()
        }
    }

    /// Streams the file at `path` into `sink`; returns the byte count. `size` (when the
    /// caller already knows it) saves an `fstat` round trip.
    pub async fn read_file(
        &self,
        path: &str,
        size: Option<u64>,
        sink: &mut Sink<'_>,
        progress: &Progress,
    ) -> Result<u64> {
        let h = self
            .raw
            .open(path, OpenFlags::READ, FileAttributes::empty())
            .await
            .map_err(|e| map(e, path))?
            .handle;
        let r = self.read_handle(&h, path, size, sink, progress).await;
        let _ = self.raw.close(h).await;
        r
    }

    async fn read_handle(
        &self,
        h: &str,
        path: &str,
        size: Option<u64>,
        sink: &mut Sink<'_>,
        progress: &Progress,
    ) -> Result<u64> {
        let size = match size {
            Some(s) => s,
            None => {
                let a = self.raw.fstat(h).await.map_err(|e| map(e, path))?;
                a.attrs.size.unwrap_or(0)
            }
        };
        let mut next = 0u64;
        let mut done = 0u64;
        let mut eof = false;
        let mut inflight = FuturesOrdered::new();
        loop {
            self.stop.check()?;
            while next < size && !eof {
                let Some(permit) = self.permit(inflight.is_empty()).await else {
                    break;
                };
                let len = self.chunk.min(size - next);
                let (raw, h, off) = (self.raw.clone(), h.to_string(), next);
                inflight.push_back(async move {
                    let r = raw.read(h, off, len as u32).await;
                    drop(permit);
                    (off, len, r)
                });
                next += len;
            }
            let Some((off, want, r)) = inflight.next().await else {
                break;
            };
            if eof {
                continue;
            }
            let mut data = match r {
                Ok(d) => d.data,
                Err(e) if is_eof(&e) => Vec::new(),
                Err(e) => return Err(map(e, path)),
            };
            // A short reply: fetch the gap before moving on (the file may also have shrunk).
            while (data.len() as u64) < want {
                let got = data.len() as u64;
                match self.raw.read(h, off + got, (want - got) as u32).await {
                    Ok(d) if !d.data.is_empty() => data.extend_from_slice(&d.data),
                    Ok(_) => break,
                    Err(e) if is_eof(&e) => break,
                    Err(e) => return Err(map(e, path)),
                }
            }
            if (data.len() as u64) < want {
                eof = true;
            }
            done += data.len() as u64;
            progress.advance(data.len() as u64);
            if !data.is_empty() {
                sink.put(Bytes::from(data)).await?;
            }
        }
        if eof {
            return Ok(done);
        }
        // The file may have grown since its size was taken: read on to the real end.
        loop {
            self.stop.check()?;
            match self.raw.read(h, done, self.chunk as u32).await {
                Ok(d) if !d.data.is_empty() => {
                    done += d.data.len() as u64;
                    progress.advance(d.data.len() as u64);
                    sink.put(Bytes::from(d.data)).await?;
                }
                Ok(_) => break,
                Err(e) if is_eof(&e) => break,
                Err(e) => return Err(map(e, path)),
            }
        }
        Ok(done)
    }

    /// Creates `path` (which must not exist), writes `source` into it, then sets `mode` and
    /// `mtime` exactly; with `fsync`, flushes it to disk. Returns the byte count.
    pub async fn write_new(
        &self,
        path: &str,
        source: &mut Source<'_>,
        mode: u32,
        mtime: Option<u64>,
        fsync: bool,
        progress: &Progress,
    ) -> Result<u64> {
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUDE;
        let h = self
            .raw
            .open(path, flags, attrs(Some(mode & 0o777), None))
            .await
            .map_err(|e| map(e, path))?
            .handle;
        let mut acks = FuturesUnordered::new();
        let sent = self
            .send_writes(&h, path, 0, source, progress, &mut acks)
            .await;
        let n = match sent {
            Ok(n) => n,
            Err(e) => {
                drop(acks);
                let _ = self.raw.close(h).await;
                return Err(e);
            }
        };
        // Behind the last write, in order: setstat, fsync, close.
        let setstat = self.raw.fsetstat(h.as_str(), attrs(Some(mode), mtime));
        let sync = async {
            if fsync && self.fsync {
                self.raw.fsync(h.as_str()).await.map(|_| ())
            } else {
                Ok(())
            }
        };
        let close = self.raw.close(h.as_str());
        let (written, set, synced, closed) =
            futures::join!(drain(acks, progress), setstat, sync, close);
        written.map_err(|e| map(e, path))?;
        set.map_err(|e| map(e, path))?;
        synced.map_err(|e| map(e, path))?;
        closed.map_err(|e| map(e, path))?;
        Ok(n)
    }

    /// Appends `source` to `path` (created if missing).
    pub async fn append(
        &self,
        path: &str,
        source: &mut Source<'_>,
        progress: &Progress,
    ) -> Result<u64> {
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::APPEND;
        let h = self
            .raw
            .open(path, flags, attrs(Some(0o644), None))
            .await
            .map_err(|e| map(e, path))?
            .handle;
        let start = match self.raw.fstat(h.as_str()).await {
            Ok(a) => a.attrs.size.unwrap_or(0),
            Err(e) => {
                let _ = self.raw.close(h).await;
                return Err(map(e, path));
            }
        };
        let mut acks = FuturesUnordered::new();
        let sent = self
            .send_writes(&h, path, start, source, progress, &mut acks)
            .await;
        let (written, closed) = futures::join!(drain(acks, progress), self.raw.close(h.as_str()));
        let n = sent?;
        written.map_err(|e| map(e, path))?;
        closed.map_err(|e| map(e, path))?;
        Ok(n)
    }

    /// Sends `source` as writes from offset `start`, each on the wire as soon as it is made,
    /// with at most the window in flight. Returns the bytes sent; acknowledgements still
    /// pending are left in `acks`.
    async fn send_writes(
        &self,
        h: &str,
        path: &str,
        start: u64,
        source: &mut Source<'_>,
        progress: &Progress,
        acks: &mut FuturesUnordered<Ack>,
    ) -> Result<u64> {
        let mut offset = start;
        loop {
            self.stop.check()?;
            let permit = match self.permit(false).await {
                Some(p) => p,
                None if acks.is_empty() => match self.permit(true).await {
                    Some(p) => p,
                    None => return Err(interrupted()),
                },
                None => {
                    // Window full: wait for an acknowledgement.
                    if let Some(r) = acks.next().await {
                        progress.advance(r.map_err(|e| map(e, path))?);
                    }
                    continue;
                }
            };
            let next = tokio::select! {
                c = source.next(self.chunk as usize) => c?,
                () = self.stop.wait() => return Err(interrupted()),
            };
            let Some(chunk) = next else {
                return Ok(offset - start);
            };
            let (raw, h2, off, len) = (self.raw.clone(), h.to_string(), offset, chunk.len());
            let mut ack: Ack = Box::pin(async move {
                let r = raw.write(h2, off, chunk.to_vec()).await;
                drop(permit);
                r.map(|_| len as u64)
            });
            // Poll once: the request goes on the wire now, in order.
            match futures::poll!(&mut ack) {
                Poll::Ready(r) => progress.advance(r.map_err(|e| map(e, path))?),
                Poll::Pending => acks.push(ack),
            }
            offset += len as u64;
        }
    }
}

/// Waits for every pending write acknowledgement.
async fn drain(
    mut acks: FuturesUnordered<Ack>,
    progress: &Progress,
) -> std::result::Result<(), SftpError> {
    while let Some(r) = acks.next().await {
        progress.advance(r?);
    }
    Ok(())
}
