//! The file request the protocol carries: [`FileRequest`] (which connection, which transport,
//! what to do). Part of the client–daemon contract (see [`crate::protocol`]): plain data, no
//! SFTP code, so changing the SFTP implementation cannot change the wire format. `sftp` runs
//! these requests.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::spec::ConnectSpec;

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
        /// Create missing parent directories of the destination.
        #[serde(default)]
        parents: bool,
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
        /// The new content; `None`: it arrives as `sftp::Input` (stdin frames).
        content: Option<String>,
        /// Append instead of replacing.
        append: bool,
        /// Create missing parent directories first.
        #[serde(default)]
        parents: bool,
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
    /// Create a directory.
    Mkdir {
        /// Remote path.
        remote: String,
        /// Missing parents too, and an existing directory is fine (`mkdir -p`).
        parents: bool,
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
            FileAction::Mkdir { .. } => "mkdir",
        }
    }

    /// Whether the action takes `sftp::Input` (`write` without `content`).
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
            | FileAction::Delete { remote, .. }
            | FileAction::Mkdir { remote, .. } => remote,
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
                parents,
            } => format!(
                "file upload{}{} {} -> {remote}",
                if *recursive { " --recursive" } else { "" },
                if *parents { " --parents" } else { "" },
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
            FileAction::Write {
                remote,
                append,
                parents,
                ..
            } => format!(
                "file write{}{} {remote}",
                if *append { " --append" } else { "" },
                if *parents { " --parents" } else { "" }
            ),
            FileAction::Mkdir { remote, parents } => format!(
                "file mkdir{} {remote}",
                if *parents { " --parents" } else { "" }
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
