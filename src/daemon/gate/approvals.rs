//! `approvals list|status|approve|deny` and the dashboard's answers, in the daemon.
//!
//! Answering is the human's part: the request is refused from clients of the agent uid
//! (before it gets here, see [`super::check`]) and from processes without a controlling
//! terminal, so an agent that runs commands through pipes cannot approve its own requests
//! even by speaking to the socket directly. The CLI also reads the confirmation from
//! `/dev/tty`, never from stdin.

use std::sync::Arc;

use serde_json::{json, Value};

use super::queue::Answer;
use super::Caller;
use crate::daemon::Daemon;
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::{ActivityEntry, Request};

/// Serves the approval requests.
pub async fn handle(daemon: &Arc<Daemon>, request: Request, caller: &Caller) -> Result<Value> {
    let queue = &daemon.gate.queue;
    match request {
        Request::ApprovalList => Ok(json!({
            "approvals": queue.pending(),
            "recent": queue.all().into_iter().filter(|a| a.state != crate::protocol::ApprovalState::Pending).take(20).collect::<Vec<_>>(),
            "policy": daemon.gate.policy_path(),
            "policy_error": daemon.gate.policy_error(),
        })),
        Request::ApprovalStatus { id } => queue
            .get(&id)
            .map(|a| json!(a))
            .ok_or_else(|| not_found(&id)),
        Request::ApprovalDecide {
            id,
            approve,
            reason,
            add_rule,
        } => {
            if !has_terminal(caller.pid) {
                return Err(Error::new(
                    ErrorCode::PermissionDenied,
                    "approvals are answered by a human at a terminal: this process has no controlling terminal",
                ));
            }
            if queue.get(&id).is_none() {
                return Err(not_found(&id));
            }
            let mut added = None;
            if approve && add_rule {
                let Some(amend) = queue.amendable(&id) else {
                    return Err(Error::usage(format!(
                        "{id} is not a single command decided by a rule of the policy file, so no allow entry can name it; approve it once instead"
                    )));
                };
                super::amend::allow_exact(
                    daemon.gate.policy_path(),
                    amend.index,
                    amend.line,
                    &amend.command,
                )?;
                added = Some(format!("exact:{}", amend.command.trim()));
                daemon.activity.record(ActivityEntry {
                    time_ms: crate::now_ms(),
                    client: caller.who.clone(),
                    target: None,
                    command: format!(
                        "policy: allow `exact:{}` added to rule {} ({id})",
                        amend.command.trim(),
                        amend.index
                    ),
                    duration_ms: 0,
                    outcome: "ok".into(),
                });
            }
            let answer = if approve {
                Answer::Approved
            } else {
                Answer::Denied(reason.filter(|r| !r.trim().is_empty()))
            };
            let info = queue.decide(&id, answer, &caller.who)?;
            let mut v = json!(info);
            if let (Some(o), Some(a)) = (v.as_object_mut(), added) {
                o.insert("allow_added".into(), a.into());
            }
            Ok(v)
        }
        _ => Err(Error::internal("not an approval request")),
    }
}

fn not_found(id: &str) -> Error {
    Error::new(
        ErrorCode::NotFound,
        format!("no approval request {id} (see `agentssh approvals list`)"),
    )
}

/// Whether process `pid` has a controlling terminal (`tty_nr` in `/proc/PID/stat`).
pub fn has_terminal(pid: Option<i32>) -> bool {
    let Some(pid) = pid.filter(|p| *p > 0) else {
        return false;
    };
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return false;
    };
    // Fields after the name: state, ppid, pgrp, session, tty_nr.
    rest.split_whitespace()
        .nth(4)
        .and_then(|t| t.parse::<i64>().ok())
        .is_some_and(|t| t != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_without_a_terminal_is_told_apart() {
        // Spawned with setsid and null stdio: no controlling terminal.
        let mut child = std::process::Command::new("setsid")
            .args(["sleep", "5"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        // setsid may fork; the child we hold is then setsid itself, also without a terminal
        // once it called setsid(). Either way: no terminal.
        let mut ok = false;
        for _ in 0..100 {
            if std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains("sleep"))
            {
                ok = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(ok, "the child did not start");
        assert!(!has_terminal(Some(pid)));
        assert!(!has_terminal(None));
        let _ = child.kill();
        let _ = child.wait();
    }
}
