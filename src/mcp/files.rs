//! The file tools beyond read, write and ls: `file_edit`, `file_upload`, `file_download`,
//! `file_delete`. Arguments are the CLI's `file` flags in snake_case and each tool sends the
//! [`FileRequest`] the CLI sends for them. Local paths (upload, download) are on the machine
//! the MCP server runs on, made absolute against its working directory as the CLI does.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::calls::{ask, file_target, text_of, Answer};
use super::tools::Target;
use super::Policy;
use crate::error::Result;
use crate::fsutil::local_abs;
use crate::protocol::Request;
use crate::wire::file::{FileAction, FileRequest, Method};

/// `file_edit`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FileEditArgs {
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub target: Target,
    /// Use this session's connection instead of a profile.
    pub session_id: Option<String>,
    /// Remote file to change.
    pub remote: String,
    /// Text to find (a regex when `regex` is true).
    pub find: String,
    /// Replacement (with `regex`, $1 and ${name} expand groups).
    pub replace: String,
    /// Treat `find` as a regular expression.
    #[serde(default)]
    pub regex: bool,
    /// Replace every match, not only the first.
    #[serde(default)]
    pub all: bool,
}

/// `file_upload`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FileUploadArgs {
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub target: Target,
    /// Use this session's connection instead of a profile.
    pub session_id: Option<String>,
    /// Local file (or directory, with `recursive`) on the machine running this MCP server.
    pub local: String,
    /// Destination on the server (an existing directory, or a path ending in '/', receives
    /// it under its own name; otherwise the path names the copy).
    pub remote: String,
    /// Upload a directory and everything under it.
    #[serde(default)]
    pub recursive: bool,
    /// Create the missing parent directories of the destination first.
    #[serde(default)]
    pub parents: bool,
}

/// `file_download`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FileDownloadArgs {
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub target: Target,
    /// Use this session's connection instead of a profile.
    pub session_id: Option<String>,
    /// Remote file (or directory, with `recursive`) to fetch.
    pub remote: String,
    /// Destination on the machine running this MCP server (an existing directory, or a path
    /// ending in '/', receives it under its own name).
    pub local: String,
    /// Download a directory and everything under it.
    #[serde(default)]
    pub recursive: bool,
}

/// `file_delete`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FileDeleteArgs {
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub target: Target,
    /// Use this session's connection instead of a profile.
    pub session_id: Option<String>,
    /// Remote file, symlink or directory to delete (never /, ~ or the home directory).
    pub remote: String,
    /// Delete a directory and everything under it.
    #[serde(default)]
    pub recursive: bool,
}

fn num(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or(0)
}

/// Sends one file action over the chosen connection (method auto, like the CLI default).
async fn file(
    policy: &Policy,
    target: &Target,
    session: Option<String>,
    action: FileAction,
) -> Result<Value> {
    ask(Request::File(Box::new(FileRequest {
        target: file_target(policy, target, session)?,
        method: Method::Auto,
        action,
    })))
    .await
}

/// `file_edit`: fails with `not_found` when nothing matched, like the CLI.
pub async fn file_edit(policy: &Policy, a: FileEditArgs) -> Result<Answer> {
    let action = FileAction::Edit {
        remote: a.remote,
        find: a.find,
        replace: a.replace,
        regex: a.regex,
        all: a.all,
    };
    let v = file(policy, &a.target, a.session_id, action).await?;
    let n = num(&v, "replacements");
    let text = format!(
        "{n} replacement{} in {}",
        if n == 1 { "" } else { "s" },
        text_of(&v, "path")
    );
    Ok((v, text))
}

/// `file_upload`.
pub async fn file_upload(policy: &Policy, a: FileUploadArgs) -> Result<Answer> {
    let action = FileAction::Upload {
        local: local_abs(&a.local)?,
        remote: a.remote,
        recursive: a.recursive,
        parents: a.parents,
    };
    let v = file(policy, &a.target, a.session_id, action).await?;
    let text = format!(
        "uploaded {} files ({} bytes) to {}",
        num(&v, "files"),
        num(&v, "bytes"),
        text_of(&v, "remote")
    );
    Ok((v, text))
}

/// `file_download`.
pub async fn file_download(policy: &Policy, a: FileDownloadArgs) -> Result<Answer> {
    let action = FileAction::Download {
        remote: a.remote,
        local: local_abs(&a.local)?,
        recursive: a.recursive,
    };
    let v = file(policy, &a.target, a.session_id, action).await?;
    let text = format!(
        "downloaded {} files ({} bytes) to {}",
        num(&v, "files"),
        num(&v, "bytes"),
        text_of(&v, "local")
    );
    Ok((v, text))
}

/// `file_delete`.
pub async fn file_delete(policy: &Policy, a: FileDeleteArgs) -> Result<Answer> {
    let action = FileAction::Delete {
        remote: a.remote,
        recursive: a.recursive,
    };
    let v = file(policy, &a.target, a.session_id, action).await?;
    let text = format!("deleted {} ({})", text_of(&v, "path"), text_of(&v, "type"));
    Ok((v, text))
}
