//! The SFTP backend, on russh-sftp's raw session so that we control the pipelining.
//!
//! russh-sftp's `File` keeps at most 16 requests of 32 KiB (writes) in flight; we issue
//! reads and writes at explicit offsets ourselves, with chunks as large as the server allows
//! (`limits@openssh.com`: 255 KiB on OpenSSH) and up to [`WINDOW_BYTES`] in flight per
//! session, shared by every file being transferred (a semaphore), so memory stays bounded
//! however many files move in parallel. Replacements use `posix-rename@openssh.com`.

use std::sync::Arc;

use futures::stream::{FuturesOrdered, StreamExt};
use russh::ChannelMsg;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::client::rawsession::Limits;
use russh_sftp::client::{Config, RawSftpSession};
use russh_sftp::protocol::{FileAttributes, Packet, StatusCode};
use tokio::sync::Semaphore;

use super::io::{limited, Entry, Kind, Stop};
use super::paths;
use crate::error::{Error, ErrorCode, Result};
use crate::ssh::exec::{channel_error, ChannelSource};

/// Largest read/write chunk we ask for (OpenSSH's own maximum: 256 KiB - 1 KiB).
const MAX_CHUNK: u64 = 255 * 1024;
/// Chunk size when the server does not state its limits (the protocol's safe minimum).
const SAFE_CHUNK: u64 = 32 * 1024;
/// Bytes in flight per session (all files together).
const WINDOW_BYTES: u64 = 16 * 1024 * 1024;
/// Seconds a single SFTP request may take.
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// An open SFTP session.
pub(crate) struct SftpFs {
    pub(super) raw: Arc<RawSftpSession>,
    pub(super) chunk: u64,
    posix_rename: bool,
    pub(super) fsync: bool,
    /// OpenSSH swaps the two paths of SSH_FXP_SYMLINK relative to the draft.
    openssh_symlink: bool,
    pub(super) window: Arc<Semaphore>,
    pub(super) stop: Stop,
}

/// Maps an SFTP error about `what` to our codes.
pub(super) fn map(e: SftpError, what: &str) -> Error {
    match &e {
        SftpError::Status(s) => match s.status_code {
            StatusCode::NoSuchFile => Error::new(
                ErrorCode::NotFound,
                format!("{what}: no such file or directory"),
            ),
            StatusCode::PermissionDenied => Error::new(
                ErrorCode::PermissionDenied,
                format!("{what}: permission denied"),
            ),
            code => {
                let said = if s.error_message.is_empty() || s.error_message == code.to_string() {
                    format!("the server reported {code}")
                } else {
                    s.error_message.clone()
                };
                let hint = if code == StatusCode::Failure {
                    " (the disk may be full, or the path invalid)"
                } else {
                    ""
                };
                Error::new(ErrorCode::RemoteIo, format!("{what}: {said}{hint}"))
            }
        },
        SftpError::Timeout => Error::new(
            ErrorCode::RemoteIo,
            format!("{what}: the SFTP server did not answer within {REQUEST_TIMEOUT_SECS} s"),
        ),
        _ => Error::new(ErrorCode::RemoteIo, format!("{what}: SFTP failed: {e}")),
    }
}

pub(super) fn is_eof(e: &SftpError) -> bool {
    matches!(e, SftpError::Status(s) if s.status_code == StatusCode::Eof)
}

fn entry(name: String, a: &FileAttributes, link: Option<String>) -> Entry {
    let mode = a.permissions.unwrap_or(0);
    Entry {
        name,
        kind: Kind::from_mode(mode),
        size: a.size.unwrap_or(0),
        mode: mode & 0o7777,
        mtime: u64::from(a.mtime.unwrap_or(0)),
        link,
    }
}

pub(super) fn attrs(mode: Option<u32>, mtime: Option<u64>) -> FileAttributes {
    let t = mtime.map(|t| u32::try_from(t).unwrap_or(u32::MAX));
    FileAttributes {
        permissions: mode.map(|m| m & 0o7777),
        atime: t,
        mtime: t,
        ..FileAttributes::empty()
    }
}

fn ssh_string(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

impl SftpFs {
    /// Opens the `sftp` subsystem on a channel from `source`; `Ok(None)` when the server has
    /// none.
    pub async fn open(source: &dyn ChannelSource, stop: Stop) -> Result<Option<SftpFs>> {
        let mut attempt = 0;
        let channel = loop {
            attempt += 1;
            let mut channel = source.session_channel().await.map_err(channel_error)?;
            channel
                .request_subsystem(true, "sftp")
                .await
                .map_err(channel_error)?;
            let answer = loop {
                match channel.wait().await {
                    Some(ChannelMsg::Success) => break Some(true),
                    Some(ChannelMsg::Failure) => break Some(false),
                    Some(ChannelMsg::Close) | None => break None,
                    Some(_) => {}
                }
            };
            match answer {
                Some(true) => break channel,
                // Closed without an answer: a pooled spare channel the server closed just as
                // it was taken (see `daemon::spare`), or a server that closes rather than
                // refuses. One more try, on a fresh channel, tells the two apart.
                None if attempt == 1 => {
                    tracing::debug!(
                        "channel closed before the sftp request was answered; retrying"
                    );
                    let _ = channel.close().await;
                }
                _ => {
                    tracing::info!("the server has no sftp subsystem");
                    let _ = channel.close().await;
                    return Ok(None);
                }
            }
        };
        let cfg = Config {
            max_packet_len: 256 * 1024 + 1024,
            request_timeout_secs: REQUEST_TIMEOUT_SECS,
            ..Config::default()
        };
        let mut raw = RawSftpSession::new_with_config(channel.into_stream(), cfg);
        let version = raw.init().await.map_err(|e| map(e, "SFTP init"))?;
        let has = |name: &str, v: &str| version.extensions.get(name).is_some_and(|x| x == v);
        let openssh = version
            .extensions
            .keys()
            .any(|k| k.ends_with("@openssh.com"));
        let mut chunk = SAFE_CHUNK;
        if has(russh_sftp::extensions::LIMITS, "1") {
            let l = raw.limits().await.map_err(|e| map(e, "SFTP limits"))?;
            let read = if l.max_read_len > 0 {
                l.max_read_len
            } else {
                MAX_CHUNK
            };
            let write = if l.max_write_len > 0 {
                l.max_write_len
            } else {
                MAX_CHUNK
            };
            chunk = read.min(write).clamp(4096, MAX_CHUNK);
            raw.set_limits(Limits::from(l));
        }
        let permits = usize::try_from((WINDOW_BYTES / chunk).clamp(16, 512)).unwrap_or(64);
        tracing::debug!(chunk, permits, openssh, "sftp session open");
        Ok(Some(SftpFs {
            raw: Arc::new(raw),
            chunk,
            posix_rename: has("posix-rename@openssh.com", "1"),
            fsync: has(russh_sftp::extensions::FSYNC, "1"),
            openssh_symlink: openssh,
            window: Arc::new(Semaphore::new(permits)),
            stop,
        }))
    }

    /// Ends the session.
    pub fn close(&self) {
        let _ = self.raw.close_session();
    }

    /// The canonical form of `path` (symlinks followed).
    pub async fn realpath(&self, path: &str) -> Result<String> {
        let name = self.raw.realpath(path).await.map_err(|e| map(e, path))?;
        name.files
            .into_iter()
            .next()
            .map(|f| f.filename)
            .ok_or_else(|| Error::new(ErrorCode::RemoteIo, format!("{path}: empty realpath")))
    }

    /// Metadata, following symlinks (`stat`) or not (`lstat`).
    pub async fn stat(&self, path: &str, follow: bool) -> Result<Entry> {
        let a = if follow {
            self.raw.stat(path).await
        } else {
            self.raw.lstat(path).await
        }
        .map_err(|e| map(e, path))?;
        let mut e = entry(paths::file_name(path).to_string(), &a.attrs, None);
        if e.kind == Kind::Symlink {
            e.link = Some(self.readlink(path).await?);
        }
        Ok(e)
    }

    async fn readlink(&self, path: &str) -> Result<String> {
        let n = self.raw.readlink(path).await.map_err(|e| map(e, path))?;
        Ok(n.files
            .into_iter()
            .next()
            .map(|f| f.filename)
            .unwrap_or_default())
    }

    /// The entries of directory `dir` (not `.` and `..`), symlink targets included.
    pub async fn list(&self, dir: &str) -> Result<Vec<Entry>> {
        let h = self.raw.opendir(dir).await.map_err(|e| map(e, dir))?.handle;
        let mut out = Vec::new();
        let listed = async {
            loop {
                match self.raw.readdir(h.as_str()).await {
                    Ok(name) => {
                        for f in name.files {
                            if f.filename != "." && f.filename != ".." {
                                out.push(entry(f.filename, &f.attrs, None));
                            }
                        }
                    }
                    Err(e) if is_eof(&e) => return Ok(()),
                    Err(e) => return Err(map(e, dir)),
                }
            }
        }
        .await;
        let _ = self.raw.close(h).await;
        listed?;
        let mut links = FuturesOrdered::new();
        for (i, e) in out.iter().enumerate() {
            if e.kind == Kind::Symlink {
                let p = paths::join(dir, &e.name);
                links.push_back(async move { (i, self.readlink(&p).await) });
            }
        }
        while let Some((i, target)) = links.next().await {
            out[i].link = Some(target?);
        }
        Ok(out)
    }

    /// Every entry under `root`, with paths relative to it, parents before children.
    pub async fn walk(&self, root: &str) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        let mut level = vec![String::new()];
        while !level.is_empty() {
            let mut listings = Vec::new();
            for rel in std::mem::take(&mut level) {
                listings.push(self.list_rel(root, rel));
            }
            let mut found = Vec::new();
            limited(listings, 8, |x| found.push(x)).await?;
            for (rel, entries) in found {
                for mut e in entries {
                    e.name = paths::join(&rel, &e.name);
                    if e.kind == Kind::Dir {
                        level.push(e.name.clone());
                    }
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    async fn list_rel(&self, root: &str, rel: String) -> Result<(String, Vec<Entry>)> {
        let entries = self.list(&paths::join(root, &rel)).await?;
        Ok((rel, entries))
    }

    /// Renames `from` over `to` (replacing it atomically where the server can).
    pub async fn rename(&self, from: &str, to: &str) -> Result<()> {
        if self.posix_rename {
            let mut data = Vec::with_capacity(from.len() + to.len() + 8);
            ssh_string(&mut data, from);
            ssh_string(&mut data, to);
            return match self.raw.extended("posix-rename@openssh.com", data).await {
                Ok(Packet::Status(s)) if s.status_code == StatusCode::Ok => Ok(()),
                Ok(Packet::Status(s)) => Err(map(SftpError::Status(s), to)),
                Ok(_) => Err(Error::new(
                    ErrorCode::RemoteIo,
                    format!("{to}: odd rename reply"),
                )),
                Err(e) => Err(map(e, to)),
            };
        }
        if self.raw.rename(from, to).await.is_ok() {
            return Ok(());
        }
        // Plain SFTP rename refuses to replace: remove the target first (not atomic).
        let _ = self.raw.remove(to).await;
        self.raw
            .rename(from, to)
            .await
            .map(|_| ())
            .map_err(|e| map(e, to))
    }

    /// Creates directory `path`; an existing directory is fine.
    pub async fn mkdir(&self, path: &str, mode: u32) -> Result<()> {
        match self.raw.mkdir(path, attrs(Some(mode & 0o777), None)).await {
            Ok(_) => Ok(()),
            Err(e) => match self.raw.lstat(path).await {
                Ok(a) if Kind::from_mode(a.attrs.permissions.unwrap_or(0)) == Kind::Dir => Ok(()),
                _ => Err(map(e, path)),
            },
        }
    }

    /// Sets mode and/or mtime (follows symlinks: never call it on one).
    pub async fn set_attrs(&self, path: &str, mode: Option<u32>, mtime: Option<u64>) -> Result<()> {
        self.raw
            .setstat(path, attrs(mode, mtime))
            .await
            .map(|_| ())
            .map_err(|e| map(e, path))
    }

    /// Creates symlink `link` pointing to `target`, replacing an existing non-directory.
    pub async fn symlink(&self, target: &str, link: &str) -> Result<()> {
        if let Ok(a) = self.raw.lstat(link).await {
            if Kind::from_mode(a.attrs.permissions.unwrap_or(0)) != Kind::Dir {
                let _ = self.raw.remove(link).await;
            }
        }
        let r = if self.openssh_symlink {
            self.raw.symlink(target, link).await
        } else {
            self.raw.symlink(link, target).await
        };
        r.map(|_| ()).map_err(|e| map(e, link))
    }

    /// Removes a file or symlink.
    pub async fn remove_file(&self, path: &str) -> Result<()> {
        self.raw
            .remove(path)
            .await
            .map(|_| ())
            .map_err(|e| map(e, path))
    }

    /// Removes an empty directory.
    pub async fn remove_dir(&self, path: &str) -> Result<()> {
        self.raw
            .rmdir(path)
            .await
            .map(|_| ())
            .map_err(|e| map(e, path))
    }

    /// Removes `root` and everything under it (symlinks are removed, never followed).
    pub async fn remove_tree(&self, root: &str) -> Result<()> {
        let entries = self.walk(root).await?;
        let mut dirs = Vec::new();
        let mut files = Vec::new();
        for e in entries {
            let p = paths::join(root, &e.name);
            if e.kind == Kind::Dir {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
        let mut removals = Vec::new();
        for p in &files {
            removals.push(self.remove_file(p));
        }
        limited(removals, 32, |()| ()).await?;
        // Deepest first: a child path is longer than its parent's.
        dirs.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
        for d in dirs {
            self.remove_dir(&d).await?;
        }
        self.remove_dir(root).await
    }
}
