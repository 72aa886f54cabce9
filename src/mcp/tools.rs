//! The tool catalogue: each tool's argument struct (its JSON schema is generated from it with
//! schemars), its group and a description written for a model choosing between tools.
//! Argument names are the CLI's long flags in snake_case.

use std::sync::Arc;

use rmcp::handler::server::common::schema_for_type;
use rmcp::model::{JsonObject, Tool};
use schemars::JsonSchema;
use serde::Deserialize;

use super::files::{FileDeleteArgs, FileDownloadArgs, FileEditArgs, FileUploadArgs};
use super::proxies::{ProxyCloseArgs, ProxyCreateArgs};
use super::Group;

/// Where to connect: a saved profile, or (only with `--allow-inline-targets`) inline values.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct Target {
    /// Saved profile name (see profile_list). May be omitted when the server allows exactly
    /// one profile.
    pub profile: Option<String>,
    /// Host name or address (only if the server runs with --allow-inline-targets).
    pub host: Option<String>,
    /// SSH port (inline targets only).
    pub port: Option<u16>,
    /// Remote user (inline targets only).
    pub username: Option<String>,
}

/// `exec`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExecArgs {
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub target: Target,
    /// One command line, run by the remote user's shell (pipes, &&, quotes work).
    pub command: String,
    /// Stop the command after this many ms (0 = no limit). Default 30000.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

/// No arguments.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// `session_open`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SessionOpenArgs {
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub target: Target,
    /// Optional session name, usable wherever a session_id is.
    pub name: Option<String>,
    /// Reconnect (new shell) after the connection drops.
    #[serde(default)]
    pub reconnect: bool,
}

/// `session_run`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRunArgs {
    /// Session id or name (from session_open or session_list).
    pub session_id: String,
    /// One command line, typed into the session's shell.
    pub command: String,
    /// Give up waiting after this many ms. Default 30000.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

/// `session_send`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionSendArgs {
    /// Session id or name.
    pub session_id: String,
    /// Text to type; include "\n" to press Enter. Control keys as characters (e.g. "\u0003"
    /// for Ctrl-C).
    pub input: String,
    /// Up to three regexes to watch for, each answered once, in order, with the matching
    /// entry of `respond` (e.g. a password prompt). A single string is one regex.
    #[serde(default, deserialize_with = "one_or_many")]
    pub expect: Vec<String>,
    /// Answers to `expect`, one each. A single string is one answer.
    #[serde(default, deserialize_with = "one_or_many")]
    pub respond: Vec<String>,
    /// Return once no output arrived for this many ms (0 = return at once). Default 300.
    pub wait_idle: Option<u64>,
    /// Overall deadline, ms. Default 30000.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

/// A list of strings, or one string as a list of one: models often send the one they have.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d) {
        Ok(OneOrMany::One(s)) => vec![s],
        Ok(OneOrMany::Many(v)) => v,
        Err(_) => {
            return Err(serde::de::Error::custom(
                "expected a string or a list of strings",
            ))
        }
    })
}

/// `session_read`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionReadArgs {
    /// Session id or name.
    pub session_id: String,
    /// Absolute byte offset to read from (does not move the agent cursor); omitted: what is
    /// new since the last read.
    pub offset: Option<u64>,
    /// Most bytes returned (at most 262144). Default 65536.
    #[serde(default = "default_read_limit")]
    pub limit: usize,
}

/// A tool that names only a session.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionArgs {
    /// Session id or name.
    pub session_id: String,
}

/// `session_wait`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionWaitArgs {
    /// Session id or name.
    pub session_id: String,
    /// What to wait for: "prompt", "input", "exit", "quiet" or "text:REGEX".
    #[serde(rename = "for")]
    pub until: String,
    /// Quiet time for "quiet", ms. Default 500.
    #[serde(default = "default_quiet")]
    pub quiet_ms: u64,
    /// Give up after this many ms. Default 30000.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

/// `file_read`, `file_ls`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FilePathArgs {
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub target: Target,
    /// Use this session's connection instead of a profile.
    pub session_id: Option<String>,
    /// Remote path.
    pub remote: String,
}

/// `file_write`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FileWriteArgs {
    #[serde(flatten)]
    #[allow(missing_docs)]
    pub target: Target,
    /// Use this session's connection instead of a profile.
    pub session_id: Option<String>,
    /// Remote path.
    pub remote: String,
    /// The new content (text).
    pub content: String,
    /// Append instead of replacing (a replace is atomic).
    #[serde(default)]
    pub append: bool,
    /// Create missing parent directories first.
    #[serde(default)]
    pub parents: bool,
}

fn default_timeout() -> u64 {
    30_000
}

fn default_read_limit() -> usize {
    65_536
}

fn default_quiet() -> u64 {
    500
}

/// One entry of the catalogue.
pub struct Spec {
    /// Tool name.
    pub name: &'static str,
    /// Group `--tools` selects by.
    pub group: Group,
    /// For the model.
    pub description: &'static str,
    /// Input schema.
    pub schema: fn() -> Arc<JsonObject>,
}

/// Every tool, in the order they are listed.
pub const CATALOGUE: &[Spec] = &[
    Spec { name: "exec", group: Group::Exec, schema: schema_for_type::<ExecArgs>,
        description: "Run one command on a server and get its stdout, stderr and exit_status. Best for one-off commands; each call is a fresh shell (no cd or variables carry over). For interactive programs or state across commands use session_open + session_run." },
    Spec { name: "profile_list", group: Group::Exec, schema: schema_for_type::<NoArgs>,
        description: "List the saved connection profiles this server may use (names for the `profile` argument), secrets redacted." },
    Spec { name: "session_open", group: Group::Sessions, schema: schema_for_type::<SessionOpenArgs>,
        description: "Open a long-lived interactive shell (PTY) on a server, kept by the agentssh daemon; returns its metadata with `id` (the session_id for the other session tools) and the first output. Humans can watch and take over in the agentssh dashboard." },
    Spec { name: "session_run", group: Group::Sessions, schema: schema_for_type::<SessionRunArgs>,
        description: "Run one command in a session's shell and wait for it: returns just that command's output and exit_status. State (cwd, env) carries over between runs. Prefer this over session_send for ordinary commands." },
    Spec { name: "session_send", group: Group::Sessions, schema: schema_for_type::<SessionSendArgs>,
        description: "Type raw input into a session (interactive programs, prompts, Ctrl-C) and return the output that follows, waiting until output is idle (wait_idle). expect/respond answer up to three prompts automatically." },
    Spec { name: "session_read", group: Group::Sessions, schema: schema_for_type::<SessionReadArgs>,
        description: "Read a session's output as clean text: what is new since the last read, or from `offset`. The result gives the offset to continue from." },
    Spec { name: "session_screen", group: Group::Sessions, schema: schema_for_type::<SessionArgs>,
        description: "The session's current screen as text rows (for full-screen programs such as top, vim, less)." },
    Spec { name: "session_wait", group: Group::Sessions, schema: schema_for_type::<SessionWaitArgs>,
        description: "Wait until a session shows a prompt, wants input, exits, goes quiet, or prints text matching a regex (`for`: prompt|input|exit|quiet|text:REGEX); returns the output meanwhile." },
    Spec { name: "session_list", group: Group::Sessions, schema: schema_for_type::<NoArgs>,
        description: "List all sessions the daemon holds (any client's), with id, name, target, status and controller." },
    Spec { name: "session_close", group: Group::Sessions, schema: schema_for_type::<SessionArgs>,
        description: "Close a session (ends its shell and frees the PTY)." },
    Spec { name: "file_read", group: Group::Files, schema: schema_for_type::<FilePathArgs>,
        description: "Read a remote file's content as text (binary comes as base64). Larger than 256 KiB is cut; use exec with head/tail/sed for parts of big files." },
    Spec { name: "file_write", group: Group::Files, schema: schema_for_type::<FileWriteArgs>,
        description: "Write text to a remote file, replacing it atomically (or appending). Prefer this over echo/heredocs through exec: no quoting problems." },
    Spec { name: "file_ls", group: Group::Files, schema: schema_for_type::<FilePathArgs>,
        description: "List a remote directory (or describe one file): names, types, sizes, modes, times." },
    Spec { name: "file_edit", group: Group::Files, schema: schema_for_type::<FileEditArgs>,
        description: "Find and replace text in a remote file, atomically (literal text, or a regex with `regex`; first match, or every one with `all`). Fails with code not_found when nothing matched. Best for small changes to config files; no shell quoting." },
    Spec { name: "file_upload", group: Group::Files, schema: schema_for_type::<FileUploadArgs>,
        description: "Copy a file (or a directory tree with `recursive`) from the machine running this MCP server to the remote server; modes and mtimes are kept." },
    Spec { name: "file_download", group: Group::Files, schema: schema_for_type::<FileDownloadArgs>,
        description: "Copy a remote file (or a directory tree with `recursive`) to the machine running this MCP server; modes and mtimes are kept." },
    Spec { name: "file_delete", group: Group::Files, schema: schema_for_type::<FileDeleteArgs>,
        description: "Delete a remote file or symlink, or a directory tree with `recursive` (refuses /, ~ and the home directory)." },
    Spec { name: "proxy_create", group: Group::Proxies, schema: schema_for_type::<ProxyCreateArgs>,
        description: "Open a tunnel kept by the agentssh daemon: a local forward (`local` + `remote`, like ssh -L), a SOCKS5 proxy (`socks5`, like ssh -D) or a reverse forward (`reverse` + `to`, like ssh -R). Port 0 picks a free port; the answer has the real address and `proxy_id`. Close it with proxy_close when done." },
    Spec { name: "proxy_list", group: Group::Proxies, schema: schema_for_type::<NoArgs>,
        description: "List the tunnels the daemon keeps (any client's): id, kind, addresses, target, active connections and byte counters." },
    Spec { name: "proxy_close", group: Group::Proxies, schema: schema_for_type::<ProxyCloseArgs>,
        description: "Close a tunnel by `proxy_id` (its port is free at once), or every tunnel with `all`." },
];

/// The tools `groups` selects, as MCP tool definitions.
pub fn listed(groups: &std::collections::BTreeSet<Group>) -> Vec<Tool> {
    CATALOGUE
        .iter()
        .filter(|s| groups.contains(&s.group))
        .map(|s| Tool::new(s.name, s.description, (s.schema)()))
        .collect()
}

/// The group of a tool, if it exists.
pub fn group_of(name: &str) -> Option<Group> {
    CATALOGUE.iter().find(|s| s.name == name).map(|s| s.group)
}
