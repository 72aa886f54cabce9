//! [`Remote`]: one open backend (SFTP or exec) behind one set of methods, plus what both
//! share: the cached home directory, absolute paths, batched tree steps and the
//! temp-then-rename commit of a file.

use super::exec_fs::ExecFs;
use super::io::{limited, Entry, Kind, Progress, Sink, Source, Stop, Temps};
use super::paths;
use super::sftp_fs::{self, SftpFs};
use crate::error::{Error, ErrorCode, Result};
use crate::ssh::exec::ChannelSource;
use crate::wire::file::Method;

enum Backend<'h> {
    Sftp(SftpFs),
    Exec(ExecFs<'h>),
}

/// An open backend on one connection.
pub(crate) struct Remote<'h> {
    backend: Backend<'h>,
    home: std::sync::Mutex<Option<String>>,
}

macro_rules! both {
    ($self:ident, $b:ident => $e:expr) => {
        match &$self.backend {
            Backend::Sftp($b) => $e,
            Backend::Exec($b) => $e,
        }
    };
}

impl<'h> Remote<'h> {
    /// Opens the backend `method` asks for; `auto` tries SFTP and falls back to exec when
    /// the server has no SFTP subsystem.
    pub async fn open(
        source: &'h dyn ChannelSource,
        method: Method,
        stop: Stop,
    ) -> Result<Remote<'h>> {
        let backend = match method {
            Method::Exec => Backend::Exec(ExecFs::new(source, stop)),
            Method::Sftp => match SftpFs::open(source, stop).await? {
                Some(s) => Backend::Sftp(s),
                None => {
                    return Err(Error::new(
                        ErrorCode::RemoteIo,
                        "the server has no SFTP subsystem; use --method exec (or auto)",
                    ))
                }
            },
            Method::Auto => match SftpFs::open(source, stop.clone()).await? {
                Some(s) => Backend::Sftp(s),
                None => Backend::Exec(ExecFs::new(source, stop)),
            },
        };
        Ok(Remote {
            backend,
            home: std::sync::Mutex::new(None),
        })
    }

    /// `sftp` or `exec`: the method that runs.
    pub fn method(&self) -> &'static str {
        match self.backend {
            Backend::Sftp(_) => "sftp",
            Backend::Exec(_) => "exec",
        }
    }

    /// How many files to move at once.
    pub fn parallelism(&self) -> usize {
        match self.backend {
            Backend::Sftp(_) => 32,
            Backend::Exec(_) => 4,
        }
    }

    /// Closes the backend.
    pub fn close(&self) {
        if let Backend::Sftp(s) = &self.backend {
            s.close();
        }
    }

    /// The remote home directory (fetched once).
    pub async fn home(&self) -> Result<String> {
        if let Some(h) = self.home.lock().ok().and_then(|h| h.clone()) {
            return Ok(h);
        }
        let h = match &self.backend {
            Backend::Sftp(s) => s.realpath(".").await?,
            Backend::Exec(e) => e.home().await?,
        };
        if let Ok(mut slot) = self.home.lock() {
            *slot = Some(h.clone());
        }
        Ok(h)
    }

    /// `raw` made absolute (see [`paths::absolute`]).
    pub async fn abs(&self, raw: &str) -> Result<String> {
        if raw.is_empty() {
            return Err(Error::usage("--remote must not be empty"));
        }
        if paths::needs_home(raw) {
            paths::absolute(raw, &self.home().await?)
        } else {
            paths::absolute(raw, "/")
        }
    }

    /// Canonical path (symlinks followed).
    pub async fn realpath(&self, p: &str) -> Result<String> {
        both!(self, b => b.realpath(p).await)
    }

    /// Metadata following symlinks.
    pub async fn stat(&self, p: &str) -> Result<Entry> {
        both!(self, b => b.stat(p, true).await)
    }

    /// Metadata of the path itself.
    pub async fn lstat(&self, p: &str) -> Result<Entry> {
        both!(self, b => b.stat(p, false).await)
    }

    /// Directory entries.
    pub async fn list(&self, dir: &str) -> Result<Vec<Entry>> {
        both!(self, b => b.list(dir).await)
    }

    /// Every entry under `root` (relative names, parents first).
    pub async fn walk(&self, root: &str) -> Result<Vec<Entry>> {
        both!(self, b => b.walk(root).await)
    }

    /// Streams a file into `sink`; `size`, when known, saves a round trip.
    pub async fn read_file(
        &self,
        p: &str,
        size: Option<u64>,
        sink: &mut Sink<'_>,
        progress: &Progress,
    ) -> Result<u64> {
        match &self.backend {
            Backend::Sftp(s) => s.read_file(p, size, sink, progress).await,
            Backend::Exec(e) => e.read_file(p, sink, progress).await,
        }
    }

    /// Appends to a file.
    pub async fn append(&self, p: &str, src: &mut Source<'_>, progress: &Progress) -> Result<u64> {
        both!(self, b => b.append(p, src, progress).await)
    }

    /// Removes a file or symlink.
    pub async fn remove_file(&self, p: &str) -> Result<()> {
        both!(self, b => b.remove_file(p).await)
    }

    /// Removes an empty directory.
    pub async fn remove_dir(&self, p: &str) -> Result<()> {
        both!(self, b => b.remove_dir(p).await)
    }

    /// Removes a tree.
    pub async fn remove_tree(&self, p: &str) -> Result<()> {
        both!(self, b => b.remove_tree(p).await)
    }

    /// Writes `src` to `dest` atomically: a hidden temp file beside it (registered in
    /// `temps` so a failure removes it), mode and mtime set, then renamed over `dest`.
    #[allow(clippy::too_many_arguments)]
    pub async fn put_file(
        &self,
        dest: &str,
        src: &mut Source<'_>,
        mode: u32,
        mtime: Option<u64>,
        fsync: bool,
        progress: &Progress,
        temps: &Temps,
    ) -> Result<u64> {
        let tmp = paths::temp_beside(dest);
        temps.add_remote(&tmp);
        let about_dest = |mut e: Error| {
            e.message = e
                .message
                .replacen(&tmp, &format!("{dest} (its temp file)"), 1);
            e
        };
        let n = both!(self, b => b.write_new(&tmp, src, mode, mtime, fsync, progress).await)
            .map_err(about_dest)?;
        both!(self, b => b.rename(&tmp, dest).await).map_err(about_dest)?;
        temps.done_remote(&tmp);
        Ok(n)
    }

    /// Creates directories, given parents before children.
    pub async fn mkdirs(&self, dirs: &[(String, u32)]) -> Result<()> {
        match &self.backend {
            Backend::Exec(e) => {
                let list: Vec<String> = dirs.iter().map(|(d, _)| d.clone()).collect();
                e.mkdirs(&list).await
            }
            Backend::Sftp(s) => {
                // One depth level at a time, each level in parallel.
                let mut by_depth: Vec<&(String, u32)> = dirs.iter().collect();
                by_depth.sort_by_key(|(d, _)| d.matches('/').count());
                let mut i = 0;
                while i < by_depth.len() {
                    let depth = by_depth[i].0.matches('/').count();
                    let j = by_depth[i..]
                        .iter()
                        .position(|(d, _)| d.matches('/').count() != depth)
                        .map_or(by_depth.len(), |k| i + k);
                    let mut made = Vec::new();
                    for (d, m) in &by_depth[i..j] {
                        made.push(s.mkdir(d, *m));
                    }
                    limited(made, 32, |()| ()).await?;
                    i = j;
                }
                Ok(())
            }
        }
    }

    /// Creates the one directory `p` (default mode, less the server's umask); an existing
    /// path or a missing parent is an error, as with `mkdir`.
    pub async fn mkdir_one(&self, p: &str) -> Result<()> {
        match &self.backend {
            Backend::Exec(e) => e.mkdir_one(p).await,
            Backend::Sftp(s) => s
                .raw
                .mkdir(p, sftp_fs::attrs(Some(0o777), None))
                .await
                .map(|_| ())
                .map_err(|e| sftp_fs::map(e, p)),
        }
    }

    /// Creates directory `p` and its missing ancestors, like `mkdir -p`; `Ok(false)` when
    /// it already was a directory.
    pub async fn mkdir_p(&self, p: &str) -> Result<bool> {
        let s = match &self.backend {
            Backend::Exec(e) => return e.mkdir_p(p).await,
            Backend::Sftp(s) => s,
        };
        // Up from `p` to the first directory that exists, then create the rest downwards.
        let mut missing = Vec::new();
        let mut cur = p.to_string();
        loop {
            match self.stat(&cur).await {
                Ok(e) if e.kind == Kind::Dir => break,
                Ok(_) => {
                    return Err(Error::new(
                        ErrorCode::RemoteIo,
                        format!("{cur} exists and is not a directory"),
                    ))
                }
                Err(e) if e.code == ErrorCode::NotFound && cur != "/" => {
                    let up = paths::parent(&cur).to_string();
                    missing.push(std::mem::replace(&mut cur, up));
                }
                Err(e) => return Err(e),
            }
        }
        for d in missing.iter().rev() {
            // Tolerates a directory another client made meanwhile.
            s.mkdir(d, 0o777).await?;
        }
        Ok(!missing.is_empty())
    }

    /// Sets mode and mtime of many directories or files (never symlinks).
    pub async fn set_attrs_many(&self, items: &[(String, u32, u64)]) -> Result<()> {
        match &self.backend {
            Backend::Exec(e) => e.set_attrs_many(items).await,
            Backend::Sftp(s) => {
                let mut done = Vec::new();
                for (p, m, t) in items {
                    done.push(s.set_attrs(p, Some(*m), Some(*t)));
                }
                limited(done, 32, |()| ()).await
            }
        }
    }

    /// Creates symlinks `(target, link)`.
    pub async fn symlinks(&self, links: &[(String, String)]) -> Result<()> {
        match &self.backend {
            Backend::Exec(e) => e.symlinks(links).await,
            Backend::Sftp(s) => {
                let mut done = Vec::new();
                for (t, l) in links {
                    done.push(s.symlink(t, l));
                }
                limited(done, 32, |()| ()).await
            }
        }
    }

    /// Best-effort removal of leftover temp files.
    pub async fn cleanup(&self, files: &[String]) {
        if files.is_empty() {
            return;
        }
        tracing::info!(
            count = files.len(),
            "removing temp files of a failed transfer"
        );
        let r = match &self.backend {
            Backend::Exec(e) => e.remove_quietly(files).await,
            Backend::Sftp(s) => {
                for f in files {
                    let _ = s.remove_file(f).await;
                }
                Ok(())
            }
        };
        if let Err(e) = r {
            tracing::warn!("temp cleanup failed: {}", e.message);
        }
    }
}
