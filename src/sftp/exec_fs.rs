//! The exec backend, for servers without an SFTP subsystem: POSIX `sh` scripts on exec
//! channels (binary-safe, no PTY). `cat` moves file bytes, GNU `find -printf` with NUL
//! separators lists entries (names with spaces or newlines survive), `mv -f` replaces.
//!
//! A write goes to a hidden temp file in one command, which reports the byte count it
//! received; only when that matches what we sent does a second command rename it into
//! place. A client that dies mid-transfer therefore never leaves a truncated target.

use super::exec_sh::{parse_entries, sh_error, FMT};
use super::io::{Entry, Progress, Sink, Source, Stop};
use super::paths::{self, sh_quote};
use crate::error::{Error, ErrorCode, Result};
use crate::ssh::exec::ChannelSource;

/// The exec backend over one connection.
pub(crate) struct ExecFs<'h> {
    /// Where each command's channel comes from.
    pub(super) source: &'h dyn ChannelSource,
    pub(super) stop: Stop,
}

impl<'h> ExecFs<'h> {
    /// The backend on `source`'s connection.
    pub fn new(source: &'h dyn ChannelSource, stop: Stop) -> Self {
        ExecFs { source, stop }
    }

    /// The login directory, as `pwd -P` prints it there.
    pub async fn home(&self) -> Result<String> {
        let out = self.run("pwd -P", "home directory").await?;
        Ok(String::from_utf8_lossy(&out)
            .trim_end_matches('\n')
            .to_string())
    }

    /// The canonical form of `path` (symlinks followed).
    pub async fn realpath(&self, path: &str) -> Result<String> {
        let out = self
            .run(&format!("readlink -f -- {}", sh_quote(path)), path)
            .await?;
        Ok(String::from_utf8_lossy(&out)
            .trim_end_matches('\n')
            .to_string())
    }

    /// Metadata, following a symlink (`follow`) or not.
    pub async fn stat(&self, path: &str, follow: bool) -> Result<Entry> {
        let flag = if follow { "-H " } else { "" };
        let script = format!("find {flag}{} -maxdepth 0 -printf '{FMT}'", sh_quote(path));
        let out = self.run(&script, path).await?;
        let mut e = parse_entries(&out)?
            .pop()
            .ok_or_else(|| Error::new(ErrorCode::NotFound, format!("{path}: not found")))?;
        e.name = paths::file_name(path).to_string();
        Ok(e)
    }

    /// The entries of directory `dir`.
    pub async fn list(&self, dir: &str) -> Result<Vec<Entry>> {
        let script = format!(
            "find -H {} -mindepth 1 -maxdepth 1 -printf '{FMT}'",
            sh_quote(dir)
        );
        parse_entries(&self.run(&script, dir).await?)
    }

    /// Every entry under `root`, relative to it, parents before children.
    pub async fn walk(&self, root: &str) -> Result<Vec<Entry>> {
        let script = format!("find -H {} -mindepth 1 -printf '{FMT}'", sh_quote(root));
        parse_entries(&self.run(&script, root).await?)
    }

    /// Streams the file at `path` into `sink`.
    pub async fn read_file(
        &self,
        path: &str,
        sink: &mut Sink<'_>,
        progress: &Progress,
    ) -> Result<u64> {
        let out = self
            .sh(
                &format!("cat -- {}", sh_quote(path)),
                None,
                Some((sink, progress)),
            )
            .await?;
        if out.status != Some(0) {
            return Err(sh_error(path, &out));
        }
        Ok(out.sunk)
    }

    /// Creates `path` (must not exist) from `source`, sets `mode`/`mtime`, and checks the
    /// server received every byte.
    pub async fn write_new(
        &self,
        path: &str,
        source: &mut Source<'_>,
        mode: u32,
        mtime: Option<u64>,
        fsync: bool,
        progress: &Progress,
    ) -> Result<u64> {
        let q = sh_quote(path);
        let mut script = format!(
            "umask 077; set -C; cat > {q} || exit 1; chmod {:o} {q} || exit 1; ",
            mode & 0o7777
        );
        if let Some(t) = mtime {
            script.push_str(&format!("touch -m -d @{t} {q} || exit 1; "));
        }
        if fsync {
            script.push_str(&format!("sync {q} 2>/dev/null; "));
        }
        script.push_str(&format!("wc -c < {q}"));
        let out = self.sh(&script, Some((source, progress)), None).await?;
        if out.status != Some(0) {
            return Err(sh_error(path, &out));
        }
        let got: u64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(u64::MAX);
        if got != out.fed {
            return Err(Error::new(
                ErrorCode::RemoteIo,
                format!("{path}: the server stored {got} of {} bytes", out.fed),
            ));
        }
        Ok(out.fed)
    }

    /// Appends `source` to `path` (created if missing).
    pub async fn append(
        &self,
        path: &str,
        source: &mut Source<'_>,
        progress: &Progress,
    ) -> Result<u64> {
        let out = self
            .sh(
                &format!("cat >> {}", sh_quote(path)),
                Some((source, progress)),
                None,
            )
            .await?;
        if out.status != Some(0) {
            return Err(sh_error(path, &out));
        }
        Ok(out.fed)
    }

    /// Renames `from` over `to`.
    pub async fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.run(&format!("mv -f -- {} {}", sh_quote(from), sh_quote(to)), to)
            .await
            .map(|_| ())
    }

    /// Creates each directory, given parents first (existing ones are fine; a missing
    /// parent is an error, as over SFTP).
    pub async fn mkdirs(&self, dirs: &[String]) -> Result<()> {
        let cmds: Vec<String> = dirs
            .iter()
            .map(|d| {
                let q = sh_quote(d);
                format!("{{ [ -d {q} ] || mkdir -- {q}; }}")
            })
            .collect();
        self.run_batch(&cmds, "mkdir").await
    }

    /// Creates the one directory `path` (`mkdir`: an existing path is an error).
    pub async fn mkdir_one(&self, path: &str) -> Result<()> {
        self.run(&format!("mkdir -- {}", sh_quote(path)), path)
            .await
            .map(|_| ())
    }

    /// `mkdir -p path`; `Ok(false)` when it already was a directory.
    pub async fn mkdir_p(&self, path: &str) -> Result<bool> {
        let q = sh_quote(path);
        let out = self
            .run(
                &format!("if [ -d {q} ]; then echo old; else mkdir -p -- {q} && echo new; fi"),
                path,
            )
            .await?;
        Ok(out.starts_with(b"new"))
    }

    /// Sets mode and mtime of many paths (never symlinks).
    pub async fn set_attrs_many(&self, items: &[(String, u32, u64)]) -> Result<()> {
        let cmds: Vec<String> = items
            .iter()
            .map(|(p, mode, t)| {
                let q = sh_quote(p);
                format!("chmod {:o} {q} && touch -m -d @{t} {q}", mode & 0o7777)
            })
            .collect();
        self.run_batch(&cmds, "set attributes").await
    }

    /// Creates many symlinks `(target, link)`, replacing existing non-directories.
    pub async fn symlinks(&self, links: &[(String, String)]) -> Result<()> {
        let cmds: Vec<String> = links
            .iter()
            .map(|(t, l)| format!("ln -sfn -- {} {}", sh_quote(t), sh_quote(l)))
            .collect();
        self.run_batch(&cmds, "symlink").await
    }

    /// Removes files (or symlinks) quietly: for temp-file cleanup, which runs even after the
    /// operation was stopped.
    pub async fn remove_quietly(&self, files: &[String]) -> Result<()> {
        let this = ExecFs::new(self.source, Stop::never());
        let cmds: Vec<String> = files
            .iter()
            .map(|f| format!("rm -f -- {}", sh_quote(f)))
            .collect();
        this.run_batch(&cmds, "cleanup").await
    }

    /// Removes a file or symlink.
    pub async fn remove_file(&self, path: &str) -> Result<()> {
        self.run(&format!("rm -- {}", sh_quote(path)), path)
            .await
            .map(|_| ())
    }

    /// Removes an empty directory.
    pub async fn remove_dir(&self, path: &str) -> Result<()> {
        self.run(&format!("rmdir -- {}", sh_quote(path)), path)
            .await
            .map(|_| ())
    }

    /// Removes `path` and everything under it (`rm -rf`, which never follows symlinks).
    pub async fn remove_tree(&self, path: &str) -> Result<()> {
        self.run(&format!("rm -rf -- {}", sh_quote(path)), path)
            .await
            .map(|_| ())
    }
}
