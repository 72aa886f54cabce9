//! `agentssh policy check`: what the approval policy would decide for a command, and why.
//!
//! Evaluates locally with the daemon's own code ([`crate::daemon::policy`]), so it needs no
//! daemon and shows exactly what the gate will do once it is wired.

use clap::{Args, Subcommand};
use serde_json::json;

use super::Reply;
use crate::daemon::policy::{self, Action, Target};
use crate::error::{Error, ErrorCode, Result};
use crate::profile::ProfileStore;

/// `policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Show what the policy decides for a command on a profile or host.
    #[command(
        after_help = "Examples:\n  agentssh policy check -p prod -- uname -a\n  agentssh --json policy check -H db1.example.com -- 'ls $(sudo id)'"
    )]
    Check(CheckArgs),
}

/// `policy check` arguments.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["profile", "host"]))]
pub struct CheckArgs {
    /// Profile name (its host is matched against host globs too).
    #[arg(short = 'p', long)]
    pub profile: Option<String>,
    /// Host name or address.
    #[arg(short = 'H', long)]
    pub host: Option<String>,
    /// The command, as the remote shell would get it (several words are joined by spaces).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// Runs one policy command.
pub fn run(cmd: PolicyCommand) -> Result<Reply> {
    match cmd {
        PolicyCommand::Check(a) => check(a),
    }
}

fn check(a: CheckArgs) -> Result<Reply> {
    let target = match (&a.profile, &a.host) {
        (Some(p), _) => Target {
            host: ProfileStore::open_default()?.get(p)?.host,
            profile: Some(p.clone()),
        },
        (None, Some(h)) => Target {
            profile: None,
            host: h.clone(),
        },
        (None, None) => return Err(Error::usage("give -p PROFILE or -H HOST")),
    };
    let path = policy::file::default_path()?;
    let loaded = policy::file::load(&path)
        .map_err(|e| Error::new(ErrorCode::Usage, format!("the policy file is broken: {e}")))?;
    let policy = loaded.unwrap_or_default();
    let command = a.command.join(" ");
    let d = policy::decide(&policy, &target, &Action::Command(command));
    let text = format!(
        "{}\t{}\t{}",
        d.decision.as_str(),
        d.rule.as_deref().unwrap_or("-"),
        d.reason
    );
    Ok(Reply::ok(
        json!({"decision": d.decision, "rule": d.rule, "reason": d.reason}),
        text,
    ))
}
