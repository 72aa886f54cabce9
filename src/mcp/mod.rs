//! `agentssh mcp`: a Model Context Protocol server on stdio (rmcp), a thin face over the
//! daemon.
//!
//! Every tool turns its arguments into the same [`crate::protocol::Request`] the CLI sends
//! and talks to the daemon only through [`crate::client::DaemonClient`] (autostarting it, as
//! the client kind `mcp`). A tool's structured result is the CLI's `data` object; a failure
//! is a tool error (`isError`) whose structured content is `{code, error}` with the stable
//! code of README's error table. stdout carries only MCP frames; logs go to `mcp.log` in the
//! state directory. Like the dashboard, this face must not import the CLI (`tests/layering.rs`).

mod calls;
mod files;
mod link;
mod proxies;
mod server;
mod tools;

use std::collections::BTreeSet;

use clap::Args;

use crate::error::{Error, Result};

/// The client kind this face sends in its hello (sessions opened here show it).
pub const CLIENT_KIND: &str = "mcp";

/// The most text one tool result carries per output field (exec stdout and stderr, a file's
/// content, a session read): 256 KiB. More is cut, and the result says how much was left out
/// and, where the output can be read again, the offset to continue from.
pub const OUTPUT_LIMIT: usize = 256 * 1024;

/// Tool groups `--tools` selects from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    /// `exec`, `profile_list`.
    Exec,
    /// `session_*`.
    Sessions,
    /// `file_*`.
    Files,
    /// `proxy_*`.
    Proxies,
}

impl Group {
    fn parse(word: &str) -> Result<Group> {
        match word.trim() {
            "exec" => Ok(Group::Exec),
            "sessions" => Ok(Group::Sessions),
            "files" => Ok(Group::Files),
            "proxies" => Ok(Group::Proxies),
            other => Err(Error::usage(format!(
                "unknown tool group '{other}' in --tools; use exec, sessions, files, proxies"
            ))),
        }
    }
}

// `agentssh mcp` flags (a plain comment: with deferred subcommands a doc comment here would
// replace the help line of the `mcp` command).
#[derive(Debug, Clone, Args, Default)]
pub struct McpArgs {
    /// Allow only these saved profiles as targets (repeatable); without it, any profile.
    #[arg(short = 'p', long = "profile", value_name = "P")]
    pub profiles: Vec<String>,
    /// Let tools take inline host, port and username instead of a profile.
    #[arg(long)]
    pub allow_inline_targets: bool,
    /// Offer only these tool groups: exec, sessions, files, proxies (comma-separated).
    #[arg(long, value_name = "GROUPS")]
    pub tools: Option<String>,
}

/// What the server allows, from [`McpArgs`].
#[derive(Debug, Clone)]
pub struct Policy {
    /// Allowed profiles; empty: any.
    pub profiles: BTreeSet<String>,
    /// Inline host/port/username allowed.
    pub allow_inline: bool,
    /// Offered tool groups.
    pub groups: BTreeSet<Group>,
}

impl Policy {
    /// Checks the flags.
    pub fn from_args(args: &McpArgs) -> Result<Policy> {
        let groups = match &args.tools {
            None => [Group::Exec, Group::Sessions, Group::Files, Group::Proxies]
                .into_iter()
                .collect(),
            Some(list) => list
                .split(',')
                .filter(|w| !w.trim().is_empty())
                .map(Group::parse)
                .collect::<Result<BTreeSet<_>>>()?,
        };
        if groups.is_empty() {
            return Err(Error::usage("--tools names no group"));
        }
        Ok(Policy {
            profiles: args.profiles.iter().cloned().collect(),
            allow_inline: args.allow_inline_targets,
            groups,
        })
    }
}

/// Opens `mcp.log` in the state directory as the tracing sink; stdout stays MCP-only.
fn init_logging() {
    let Ok(dir) = crate::config::state_dir() else {
        return;
    };
    if crate::fsutil::ensure_dir(&dir, 0o700).is_err() {
        return;
    }
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("mcp.log"))
    else {
        return;
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("AGENTSSH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rmcp=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
}

/// Serves MCP on stdin/stdout until the client closes stdin.
pub async fn serve(args: McpArgs) -> Result<()> {
    let policy = Policy::from_args(&args)?;
    init_logging();
    tracing::info!(?policy, "mcp server starting");
    server::run(policy).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_groups_parse_and_unknown_ones_are_refused() {
        let p = Policy::from_args(&McpArgs {
            tools: Some("exec, files".into()),
            ..McpArgs::default()
        })
        .unwrap();
        assert_eq!(p.groups, [Group::Exec, Group::Files].into_iter().collect());
        let e = Policy::from_args(&McpArgs {
            tools: Some("exec,shells".into()),
            ..McpArgs::default()
        })
        .unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::Usage);
        assert_eq!(
            Policy::from_args(&McpArgs::default()).unwrap().groups.len(),
            4
        );
    }
}
