//! `agentssh approvals list|status|approve|deny`: the approval queue for humans without the
//! dashboard.
//!
//! `approve` and `deny` show the request and ask `approve? [y/N]` on the controlling
//! terminal (`/dev/tty`), never on stdin, and act only on `y`: an agent that runs commands
//! through pipes has no terminal to answer on. (The daemon refuses answers from processes
//! without a controlling terminal as well.)

use std::io::{BufRead, Write};

use clap::Subcommand;
use serde_json::Value;

use super::Reply;
use crate::client::{error_with_data, into_result, DaemonClient};
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::Request;

/// `approvals ...`.
#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// Requests waiting for a human (and recent decisions).
    #[command(after_help = "Example:\n  agentssh --json approvals list")]
    List,
    /// One request's state: pending, approved, denied, timed_out, withdrawn or used.
    #[command(after_help = "Example:\n  agentssh --json approvals status a3")]
    Status {
        /// The approval id (`a3`), as `approvals list` or an `approval_pending` error gave it.
        id: String,
    },
    /// Approve a request, after confirming on the terminal.
    #[command(after_help = "Example:\n  agentssh approvals approve a3")]
    Approve {
        /// The approval id.
        id: String,
    },
    /// Deny a request, after confirming on the terminal.
    #[command(after_help = "Example:\n  agentssh approvals deny a3 --reason 'not on prod'")]
    Deny {
        /// The approval id.
        id: String,
        /// Why (the agent gets it in the approval_denied error).
        #[arg(long)]
        reason: Option<String>,
    },
}

async fn ask_daemon(req: Request) -> Result<Value> {
    let client = DaemonClient::connect_or_start("cli").await?;
    into_result(client.request(req).await?).map_err(error_with_data)
}

/// Runs one approvals command.
pub async fn run(cmd: ApprovalsCommand) -> Result<Reply> {
    match cmd {
        ApprovalsCommand::List => {
            let v = ask_daemon(Request::ApprovalList).await?;
            let mut text = String::new();
            if let Some(e) = v["policy_error"].as_str() {
                text.push_str(&format!(
                    "policy file broken (previous policy in force): {e}\n"
                ));
            }
            let pending = v["approvals"].as_array().cloned().unwrap_or_default();
            if pending.is_empty() {
                text.push_str("no request waits for approval");
            }
            for a in &pending {
                text.push_str(&format!("{}\n", one_line(a)));
            }
            Ok(Reply::ok(v, text.trim_end().to_string()))
        }
        ApprovalsCommand::Status { id } => {
            let v = ask_daemon(Request::ApprovalStatus { id }).await?;
            let text = one_line(&v);
            Ok(Reply::ok(v, text))
        }
        ApprovalsCommand::Approve { id } => decide(id, true, None).await,
        ApprovalsCommand::Deny { id, reason } => decide(id, false, reason).await,
    }
}

/// `a3  pending  exec  prod: u@h:22  uname; rm -rf /tmp/x  (rule 1 (line 2): …)  12 s`.
fn one_line(a: &Value) -> String {
    let s = |k: &str| a[k].as_str().unwrap_or("").to_string();
    let what = [s("command"), s("path"), s("forward")]
        .into_iter()
        .find(|x| !x.is_empty())
        .unwrap_or_default();
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}: {}\t{} s{}",
        s("id"),
        s("state"),
        s("action"),
        s("target"),
        what,
        s("rule"),
        s("reason"),
        a["waiting_ms"].as_u64().unwrap_or(0) / 1000,
        a["deny_reason"]
            .as_str()
            .map(|r| format!("\treason: {r}"))
            .unwrap_or_default()
    )
}

async fn decide(id: String, approve: bool, reason: Option<String>) -> Result<Reply> {
    let info = ask_daemon(Request::ApprovalStatus { id: id.clone() }).await?;
    let verb = if approve { "approve" } else { "deny" };
    confirm_on_tty(&format!("{}\n{verb}? [y/N] ", one_line(&info)))?;
    let v = ask_daemon(Request::ApprovalDecide {
        id: id.clone(),
        approve,
        reason,
        add_rule: false,
    })
    .await?;
    let text = format!("{id} {}", if approve { "approved" } else { "denied" });
    Ok(Reply::ok(v, text))
}

/// Asks `question` on `/dev/tty` and succeeds only on `y`/`yes`.
fn confirm_on_tty(question: &str) -> Result<()> {
    let no_tty = |e: std::io::Error| {
        Error::new(
            ErrorCode::PermissionDenied,
            format!("approvals are confirmed on a terminal, and /dev/tty cannot be opened ({e}); answer in the dashboard or from a terminal"),
        )
    };
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(no_tty)?;
    tty.write_all(question.as_bytes()).map_err(no_tty)?;
    tty.flush().map_err(no_tty)?;
    let mut answer = String::new();
    std::io::BufReader::new(&tty)
        .read_line(&mut answer)
        .map_err(no_tty)?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(Error::usage("not confirmed; nothing was changed")),
    }
}
