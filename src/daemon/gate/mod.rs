//! The approval gate (issue 16): every request that acts on a server passes here first.
//!
//! [`classify`] says what a request would do and where; the policy ([`super::policy`])
//! decides `allow`, `ask` or `deny` for each action; `ask` puts the request in the
//! [`queue`] and holds it until a human answers (the dashboard or `agentssh approvals`),
//! the client's `--approval-timeout` passes, or the client hangs up. Nothing of the request
//! runs before it passes: the request handler is only called afterwards.
//!
//! Text typed into a session is checked as the shell will see it: the gate keeps, per
//! session, what was typed on the current line since the last Enter, so `rm -r` then
//! `f /x\n` is checked as `rm -rf /x`. That record is updated only when a send succeeded.

pub mod amend;
pub mod approvals;
pub mod classify;
pub mod queue;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::unix::OwnedReadHalf;

use super::policy::{self, Action, Decision, Verdict};
use super::Daemon;
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::{ActivityEntry, ApprovalInfo, ApprovalOptions, ApprovalState, Request};
pub use classify::{classify, typed_lines, Scope, SessionWork};
use queue::{Answer, Queue};

/// The most text kept for a session's current line; a longer line is refused.
const MAX_LINE: usize = 256 * 1024;
/// The longest `--approval-timeout` honoured.
const MAX_APPROVAL_WAIT: Duration = Duration::from_secs(24 * 3600);

/// Who sent a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `cli:1234`, `tui:99`, `mcp:7`.
    pub who: String,
    /// The peer's process id, when known.
    pub pid: Option<i32>,
    /// A client of the configured agent uid (`daemon run --agent-uid`).
    pub agent: bool,
    /// How it waits for approvals.
    pub approval: ApprovalOptions,
}

/// The gate's state: the policy, the queue, and each session's current line.
pub struct Gate {
    loader: policy::Loader,
    /// Requests waiting for a human, and recent decisions.
    pub queue: Queue,
    lines: Mutex<HashMap<String, String>>,
}

/// A request that passed; [`Gate::commit`] it once the request succeeded.
#[derive(Debug, Default)]
pub struct Passed {
    /// A session whose current line the request changes, and the line afterwards.
    line: Option<(String, String)>,
}

impl Gate {
    /// A gate following the policy file at `path`.
    pub fn new(path: std::path::PathBuf) -> Gate {
        Gate {
            loader: policy::Loader::new(path),
            queue: Queue::default(),
            lines: Mutex::new(HashMap::new()),
        }
    }

    /// The policy file this gate follows.
    pub fn policy_path(&self) -> &std::path::Path {
        self.loader.path()
    }

    /// Why the policy file on disk is not in force, if it is broken.
    pub fn policy_error(&self) -> Option<String> {
        self.loader.current().error.map(|e| e.to_string())
    }

    fn line_of(&self, session: &str) -> String {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        lines.get(session).cloned().unwrap_or_default()
    }

    /// Records what a request that passed did to a session's line.
    pub fn commit(&self, passed: Passed) {
        if let Some((session, line)) = passed.line {
            let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
            if line.is_empty() {
                lines.remove(&session);
            } else {
                lines.insert(session, line);
            }
        }
    }

    /// Forgets a session's line (a human took it over, or it closed): from now on the gate
    /// checks agent input from an empty line.
    pub fn forget(&self, session: &str) {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        lines.remove(session);
    }
}

/// What a request would do, resolved to a target and the actions the policy decides on.
struct Plan {
    target: policy::Target,
    display: String,
    what: String,
    session: Option<String>,
    actions: Vec<Action>,
    /// What the approval shows as the command / path / forward.
    shown: Shown,
    line: Option<(String, String)>,
}

#[derive(Default)]
struct Shown {
    command: Option<String>,
    path: Option<String>,
    forward: Option<String>,
}

fn shown_for(action: &Action) -> Shown {
    match action {
        Action::Command(c) | Action::Typed(c) => Shown {
            command: Some(c.clone()),
            ..Shown::default()
        },
        Action::FileRead(p) | Action::FileWrite(p) => Shown {
            path: Some(p.clone()),
            ..Shown::default()
        },
        Action::Forward(f) => Shown {
            forward: Some(f.clone()),
            ..Shown::default()
        },
        Action::Connect => Shown::default(),
    }
}

fn plan(daemon: &Daemon, request: &Request) -> Result<Option<Plan>> {
    let (spec, what, session, work) = match classify(request) {
        Scope::Free | Scope::HumanOnly => return Ok(None),
        Scope::Spec { spec, what, action } => (spec.clone(), what, None, SessionWork::Act(action)),
        Scope::Session {
            session,
            what,
            work,
        } => {
            let h = daemon.sessions.get(session)?;
            (h.meta.spec.clone(), what, Some(h.meta.id.clone()), work)
        }
    };
    let target = policy::Target {
        profile: spec.profile.clone(),
        host: spec.host.clone(),
    };
    let display = spec.display_with_profile();
    let mut line = None;
    let (actions, shown) = match work {
        SessionWork::Act(a) => {
            let shown = shown_for(&a);
            (vec![a], shown)
        }
        SessionWork::Line(cmd) => {
            let id = session.clone().unwrap_or_default();
            let before = daemon.gate.line_of(&id);
            let mut actions = vec![Action::Typed(cmd.to_string())];
            if !before.is_empty() {
                // Typed after what is already on the line: the shell runs both together.
                actions.push(Action::Typed(format!("{before}{cmd}")));
            }
            line = Some((id, String::new()));
            (
                actions,
                Shown {
                    command: Some(format!("{before}{cmd}")),
                    ..Shown::default()
                },
            )
        }
        SessionWork::Type {
            chunks,
            hidden_from,
        } => {
            let id = session.clone().unwrap_or_default();
            let before = daemon.gate.line_of(&id);
            let (whole, rest) = typed_lines(&before, &chunks);
            let (alone, _) = typed_lines("", &chunks);
            if rest.len() > MAX_LINE {
                return Err(Error::usage(format!(
                    "more than {MAX_LINE} bytes typed without Enter; send the line in parts that end with a newline"
                )));
            }
            let mut actions: Vec<Action> = Vec::new();
            for l in whole.iter().chain(alone.iter()) {
                if !l.trim().is_empty() && !actions.contains(&Action::Typed(l.clone())) {
                    actions.push(Action::Typed(l.clone()));
                }
            }
            // Keys without Enter still reach the program reading them (a full-screen app
            // acts on single keys), so the unfinished line is checked too.
            if !rest.trim().is_empty() {
                actions.push(Action::Typed(rest.clone()));
            }
            let mut text = format!("{before}{}", chunks.first().copied().unwrap_or(""));
            for r in chunks.iter().skip(hidden_from) {
                text.push_str(&format!(
                    " [then answers a prompt with {} hidden bytes]",
                    r.len()
                ));
            }
            line = Some((id, rest));
            (
                actions,
                Shown {
                    command: Some(text.escape_debug().to_string()),
                    ..Shown::default()
                },
            )
        }
    };
    Ok(Some(Plan {
        target,
        display,
        what,
        session,
        actions,
        shown,
        line,
    }))
}

/// Fills in the connect specs a client left to the daemon (`AGENTSSH_SOCKET` clients name
/// a profile only) from this daemon's own profiles and settings, and refuses inline targets
/// from clients of the agent uid: those could point the supervisor's keys anywhere.
pub fn prepare_specs(request: &mut Request, caller: &Caller) -> Result<()> {
    use crate::wire::file::FileTarget;
    let spec = match request {
        Request::Exec { spec, .. }
        | Request::Connect { spec, .. }
        | Request::ProxyCreate { spec, .. }
        | Request::Authorize { spec, .. } => Some(spec),
        Request::File(f) => match &mut f.target {
            FileTarget::Spec { spec, .. } => Some(spec),
            FileTarget::Session { .. } => None,
        },
        _ => None,
    };
    let Some(spec) = spec else { return Ok(()) };
    if spec.resolve_in_daemon {
        **spec = crate::target::resolve_deferred(spec)?;
    } else if caller.agent {
        return Err(Error::new(
            ErrorCode::PermissionDenied,
            "clients of the agent uid name a profile (-p); inline targets are refused",
        ));
    }
    Ok(())
}

/// The strictest decision over `actions` (the first one of that strictness).
fn strictest(policy: &policy::Policy, target: &policy::Target, actions: &[Action]) -> Decision {
    let mut worst: Option<Decision> = None;
    for a in actions {
        let d = policy::decide(policy, target, a);
        let stricter = match &worst {
            None => true,
            Some(w) => w.decision.stricter(d.decision) != w.decision,
        };
        if stricter {
            worst = Some(d);
        }
    }
    worst.unwrap_or(Decision {
        decision: Verdict::Allow,
        rule: None,
        reason: "nothing to decide".into(),
    })
}

/// Passes `request` through the gate: `Ok` once it may run, an `approval_*` error (or
/// `permission_denied` for an agent-uid client doing a human's part) otherwise.
pub async fn check(
    daemon: &Arc<Daemon>,
    request: &Request,
    caller: &Caller,
    r: &mut BufReader<OwnedReadHalf>,
) -> Result<Passed> {
    if caller.agent && matches!(classify(request), Scope::HumanOnly) {
        return Err(Error::new(
            ErrorCode::PermissionDenied,
            "clients of the agent uid cannot take control of a session, answer approvals or delete recordings; that is the supervisor's part",
        ));
    }
    // An unknown session is the handler's error to report (session_not_found), not ours.
    let plan = match plan(daemon, request) {
        Ok(Some(p)) => p,
        Ok(None) => return Ok(Passed::default()),
        Err(e) if e.code == ErrorCode::SessionNotFound => return Ok(Passed::default()),
        Err(e) => return Err(e),
    };
    let current = daemon.gate.loader.current();
    let decision = strictest(&current.policy, &plan.target, &plan.actions);
    let passed = Passed {
        line: plan.line.clone(),
    };
    match decision.decision {
        Verdict::Allow => Ok(passed),
        Verdict::Deny => {
            let rule = decision.rule.clone().unwrap_or_default();
            record(
                daemon,
                "policy",
                &plan,
                &format!("denied by {rule}: {}", decision.reason),
                "approval_denied",
                0,
            );
            Err(Error::new(
                ErrorCode::ApprovalDenied,
                format!("the approval policy denies this ({rule}: {}); nothing ran", decision.reason),
            )
            .with_data(serde_json::json!({"rule": decision.rule, "reason": decision.reason, "decided_by": "policy"})))
        }
        Verdict::Ask => {
            // Where `a` would add an allow entry: in the policy version that just asked.
            let amend = amendable(&current.policy, &plan);
            ask(daemon, plan, decision, amend, caller, r)
                .await
                .map(|()| passed)
        }
    }
}

fn info_for(plan: &Plan, decision: &Decision, caller: &Caller) -> ApprovalInfo {
    ApprovalInfo {
        id: String::new(),
        action: plan.what.clone(),
        target: plan.display.clone(),
        profile: plan.target.profile.clone(),
        session: plan.session.clone(),
        command: plan.shown.command.clone(),
        path: plan.shown.path.clone(),
        forward: plan.shown.forward.clone(),
        client: caller.who.clone(),
        rule: decision.rule.clone().unwrap_or_default(),
        reason: decision.reason.clone(),
        asked_ms: crate::now_ms(),
        waiting_ms: 0,
        state: ApprovalState::Pending,
        decided_by: None,
        deny_reason: None,
        waited_on: false,
    }
}

/// Where `a` could allow this request's exact command: a single command decided by a rule
/// of the policy file.
fn amendable(policy: &policy::Policy, plan: &Plan) -> Option<queue::Amend> {
    let [Action::Command(cmd) | Action::Typed(cmd)] = plan.actions.as_slice() else {
        return None;
    };
    let rule = policy::decide::find_rule(policy, &plan.target)?;
    (rule.index > 0).then(|| queue::Amend {
        index: rule.index,
        line: rule.line,
        command: cmd.clone(),
    })
}

/// The identity of an action, for matching a later identical request to an approval given
/// while nobody waited.
fn key_of(plan: &Plan) -> String {
    format!("{}\u{0}{}\u{0}{:?}", plan.display, plan.what, plan.actions)
}

async fn ask(
    daemon: &Arc<Daemon>,
    plan: Plan,
    decision: Decision,
    amend: Option<queue::Amend>,
    caller: &Caller,
    r: &mut BufReader<OwnedReadHalf>,
) -> Result<()> {
    let key = key_of(&plan);
    if let Some(id) = daemon.gate.queue.take_grant(&key) {
        record(
            daemon,
            "policy",
            &plan,
            &format!("approval {id} used"),
            "ok",
            0,
        );
        return Ok(());
    }
    let wait = !caller.approval.no_wait;
    let queued = daemon
        .gate
        .queue
        .ask(info_for(&plan, &decision, caller), key, wait, amend)?;
    let id = queued.id;
    let Some(answer) = queued.answer else {
        return Err(Error::new(
            ErrorCode::ApprovalPending,
            format!(
                "this waits for a human's approval ({id}: {}); poll `agentssh approvals status {id}` and repeat the same command once it is approved",
                decision.reason
            ),
        )
        .with_data(serde_json::json!({"approval": id, "rule": decision.rule, "reason": decision.reason})));
    };
    tracing::info!(approval = %id, client = %caller.who, "waiting for approval");
    let rule = decision.rule.clone().unwrap_or_default();
    let started = Instant::now();
    let limit = Duration::from_millis(caller.approval.timeout_ms).min(MAX_APPROVAL_WAIT);
    let waited = |s: Instant| u64::try_from(s.elapsed().as_millis()).unwrap_or(u64::MAX);
    tokio::select! {
        a = answer => match a {
            Ok(Answer::Approved) => {
                let by = daemon.gate.queue.get(&id).and_then(|i| i.decided_by).unwrap_or_default();
                record(daemon, &by, &plan, &format!("approval {id} approved (asked by {rule})"), "approved", waited(started));
                Ok(())
            }
            Ok(Answer::Denied(reason)) => {
                let by = daemon.gate.queue.get(&id).and_then(|i| i.decided_by).unwrap_or_default();
                let why = reason.clone().unwrap_or_else(|| "no reason given".into());
                record(daemon, &by, &plan, &format!("approval {id} denied (asked by {rule}): {why}"), "approval_denied", waited(started));
                Err(Error::new(
                    ErrorCode::ApprovalDenied,
                    format!("a human denied this ({id}): {why}; nothing ran"),
                )
                .with_data(serde_json::json!({"approval": id, "reason": reason, "decided_by": by})))
            }
            Err(_) => Err(Error::internal("the approval queue dropped a waiting request")),
        },
        () = tokio::time::sleep(limit) => {
            daemon.gate.queue.expire(&id, ApprovalState::TimedOut);
            record(daemon, "policy", &plan, &format!("approval {id} timed out (asked by {rule})"), "approval_timeout", waited(started));
            Err(Error::new(
                ErrorCode::ApprovalTimeout,
                format!("nobody answered approval request {id} within {} ms; nothing ran", caller.approval.timeout_ms),
            )
            .with_data(serde_json::json!({"approval": id})))
        }
        () = hung_up(r) => {
            daemon.gate.queue.expire(&id, ApprovalState::Withdrawn);
            record(daemon, "policy", &plan, &format!("approval {id} withdrawn: the client went away"), "withdrawn", waited(started));
            Err(Error::new(ErrorCode::ApprovalTimeout, "the client went away while waiting for approval"))
        }
        () = daemon.stopping() => {
            daemon.gate.queue.expire(&id, ApprovalState::Withdrawn);
            Err(Error::new(ErrorCode::DaemonUnavailable, "the daemon is stopping; nothing ran"))
        }
    }
}

/// Resolves when the client hangs up. Frames it sends meanwhile (exec stdin) stay buffered
/// for the request; once one arrives, a hang-up can no longer be told apart, so this waits
/// for ever (the approval's own deadline still applies).
async fn hung_up(r: &mut BufReader<OwnedReadHalf>) {
    match r.fill_buf().await {
        Ok([]) | Err(_) => {}
        Ok(_) => std::future::pending().await,
    }
}

/// One activity-log entry for a gate decision.
fn record(daemon: &Daemon, by: &str, plan: &Plan, what: &str, outcome: &str, waited_ms: u64) {
    let subject = plan
        .shown
        .command
        .as_deref()
        .or(plan.shown.path.as_deref())
        .or(plan.shown.forward.as_deref())
        .unwrap_or("");
    let subject: String = subject.chars().take(200).collect();
    daemon.activity.record(ActivityEntry {
        time_ms: crate::now_ms(),
        client: by.to_string(),
        target: Some(plan.session.clone().unwrap_or_else(|| plan.display.clone())),
        command: format!("{what}: {} {subject}", plan.what),
        duration_ms: waited_ms,
        outcome: outcome.into(),
    });
}
