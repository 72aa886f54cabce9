//! File operations where the SSH connection is: `upload`, `download`, `ls`, `read`,
//! `write`, `edit`, `delete`.
//!
//! [`run`] takes an authenticated connection (the daemon's pooled one, a session's, or the
//! CLI's own with `--direct`) and a [`FileAction`]. It opens SFTP (pipelined, see
//! [`sftp_fs`]) or, when the server has none or `--method exec` asks, the exec fallback
//! ([`exec_fs`]); the answer says which one ran (`"method"`). Local paths are read and
//! written by whoever calls [`run`], so the daemon touches local files itself and no file
//! bytes cross its socket except `read` output and `write` input.
//!
//! Atomicity: `write`, `edit` and every uploaded or downloaded file go to a hidden temp
//! file beside the target and are renamed over it only when complete. Temp files of a
//! failed or interrupted operation are removed (not when the process running it is
//! SIGKILLed: then a hidden `.NAME.agentssh-XXXXXXXX.tmp` may remain, the target intact).

mod edit;
mod exec_fs;
mod exec_sh;
mod io;
mod local;
mod ops;
mod paths;
mod remote;
mod sftp_data;
mod sftp_fs;
mod transfer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

pub use io::{Input, Progress};
pub use ops::MAX_EDIT;
pub use paths::is_temp_name;

use crate::error::Result;
use crate::ssh::exec::ChannelSource;
use crate::ssh::spec::ConnectSpec;

/// Which transport moves the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// SFTP, falling back to exec when the server has no SFTP subsystem.
    #[default]
    Auto,
    /// SFTP only.
    Sftp,
    /// Shell commands over exec channels only.
    Exec,
}

/// Which connection a file request uses.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum FileTarget {
    /// A pooled connection for this spec.
    Spec {
        /// Where and how to connect.
        spec: Box<ConnectSpec>,
        /// Connection retries.
        retry: u32,
    },
    /// The connection of this session (id or name).
    Session {
        /// Session id or name.
        session: String,
    },
}

/// One file operation. Local paths are absolute.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FileAction {
    /// Local → remote.
    Upload {
        /// Local source.
        local: PathBuf,
        /// Remote destination.
        remote: String,
        /// Directories too.
        recursive: bool,
    },
    /// Remote → local.
    Download {
        /// Remote source.
        remote: String,
        /// Local destination.
        local: PathBuf,
        /// Directories too.
        recursive: bool,
    },
    /// List a directory (or describe one file).
    Ls {
        /// Remote path.
        remote: String,
    },
    /// Stream a file's bytes to the caller.
    Read {
        /// Remote path.
        remote: String,
        /// Refuse files larger than this (JSON mode holds the content in memory).
        max_bytes: Option<u64>,
    },
    /// Replace (atomically) or append to a file.
    Write {
        /// Remote path.
        remote: String,
        /// The new content; `None`: it arrives as [`Input`] (stdin frames).
        content: Option<String>,
        /// Append instead of replacing.
        append: bool,
    },
    /// Find and replace inside a file, atomically.
    Edit {
        /// Remote path.
        remote: String,
        /// Literal text or regex.
        find: String,
        /// Replacement.
        replace: String,
        /// `find` is a regex.
        regex: bool,
        /// Every match, not only the first.
        all: bool,
    },
    /// Delete a file, symlink or (with `recursive`) a tree.
    Delete {
        /// Remote path.
        remote: String,
        /// Directories and their contents too.
        recursive: bool,
    },
}

impl FileAction {
    /// `upload`, `download`, ...
    pub fn name(&self) -> &'static str {
        match self {
            FileAction::Upload { .. } => "upload",
            FileAction::Download { .. } => "download",
            FileAction::Ls { .. } => "ls",
            FileAction::Read { .. } => "read",
            FileAction::Write { .. } => "write",
            FileAction::Edit { .. } => "edit",
            FileAction::Delete { .. } => "delete",
        }
    }

    /// Whether the action takes [`Input`] (`write` without `content`).
    pub fn wants_input(&self) -> bool {
        matches!(self, FileAction::Write { content: None, .. })
    }

    /// Whether the action streams content back (`read`).
    pub fn streams_content(&self) -> bool {
        matches!(self, FileAction::Read { .. })
    }

    /// The remote path it is about.
    pub fn remote(&self) -> &str {
        match self {
            FileAction::Upload { remote, .. }
            | FileAction::Download { remote, .. }
            | FileAction::Ls { remote }
            | FileAction::Read { remote, .. }
            | FileAction::Write { remote, .. }
            | FileAction::Edit { remote, .. }
            | FileAction::Delete { remote, .. } => remote,
        }
    }
}

/// A file request to the daemon.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileRequest {
    /// Which connection.
    pub target: FileTarget,
    /// Which transport.
    pub method: Method,
    /// What to do.
    pub action: FileAction,
}

impl FileRequest {
    /// A one-line description for the activity log (no content, no secrets).
    pub fn describe(&self) -> (String, Option<String>) {
        let what = match &self.action {
            FileAction::Upload {
                local,
                remote,
                recursive,
            } => format!(
                "file upload{} {} -> {remote}",
                if *recursive { " --recursive" } else { "" },
                local.display()
            ),
            FileAction::Download {
                remote,
                local,
                recursive,
            } => format!(
                "file download{} {remote} -> {}",
                if *recursive { " --recursive" } else { "" },
                local.display()
            ),
            FileAction::Write { remote, append, .. } => format!(
                "file write{} {remote}",
                if *append { " --append" } else { "" }
            ),
            FileAction::Delete { remote, recursive } => format!(
                "file delete{} {remote}",
                if *recursive { " --recursive" } else { "" }
            ),
            a => format!("file {} {}", a.name(), a.remote()),
        };
        let target = match &self.target {
            FileTarget::Spec { spec, .. } => spec.display_target(),
            FileTarget::Session { session } => session.clone(),
        };
        (what.chars().take(300).collect(), Some(target))
    }
}

/// The channels of one running operation.
pub struct Ctx {
    /// Bytes done / expected, for progress bars.
    pub progress: Arc<Progress>,
    /// Where `read` sends the file's bytes.
    pub content: Option<mpsc::Sender<Bytes>>,
    /// Where `write` without `content` takes its bytes from.
    pub input: Option<mpsc::Receiver<Input>>,
}

/// Runs `action` on channels from `source` (a bare connection, or a pooled one and its spare
/// channel). When `cancel` resolves (the client went away, SIGINT) the operation winds down,
/// removes its temp files and fails with `remote_io`.
pub async fn run(
    source: &dyn ChannelSource,
    method: Method,
    action: &FileAction,
    mut ctx: Ctx,
    cancel: impl std::future::Future<Output = ()>,
) -> Result<Value> {
    let started = Instant::now();
    let (stop_tx, stop_rx) = watch::channel(false);
    let remote = remote::Remote::open(source, method, io::Stop::new(stop_rx)).await?;
    tracing::info!(action = action.name(), method = remote.method(), path = %action.remote(), "file operation");
    let temps = io::Temps::default();
    let result = {
        let op = ops::perform(&remote, action, &mut ctx, &temps);
        tokio::pin!(op);
        tokio::select! {
            r = &mut op => r,
            () = cancel => {
                let _ = stop_tx.send(true);
                // Let the operation wind down (exec channels closed, handles released).
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), &mut op).await;
                Err(io::interrupted())
            }
        }
    };
    drop(ctx);
    let (remote_temps, local_temps) = temps.take();
    remote.cleanup(&remote_temps).await;
    local::cleanup(&local_temps);
    remote.close();
    match result {
        Ok(mut v) => {
            if let Some(obj) = v.as_object_mut() {
                obj.insert("method".into(), remote.method().into());
                obj.insert(
                    "duration_ms".into(),
                    u64::try_from(started.elapsed().as_millis())
                        .unwrap_or(u64::MAX)
                        .into(),
                );
            }
            Ok(v)
        }
        Err(e) => {
            tracing::info!(action = action.name(), code = %e.code, "file operation failed: {}", e.message);
            Err(e)
        }
    }
}
