//! Approval requests on the wire: how a client wants to wait for a human, and what the
//! approval queue shows (`approvals list`, the dashboard's Approvals pane).

use serde::{Deserialize, Serialize};

/// Default `--approval-timeout`: five minutes.
pub const DEFAULT_APPROVAL_TIMEOUT_MS: u64 = 300_000;

/// How a client's request waits when the policy says `ask` (sent in the hello).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalOptions {
    /// How long to wait for a human before `approval_timeout`, ms.
    pub timeout_ms: u64,
    /// Do not wait: answer `approval_pending` with the approval's id at once.
    pub no_wait: bool,
}

impl Default for ApprovalOptions {
    fn default() -> Self {
        ApprovalOptions {
            timeout_ms: DEFAULT_APPROVAL_TIMEOUT_MS,
            no_wait: false,
        }
    }
}

/// Where an approval request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    /// Waiting for a human.
    Pending,
    /// A human approved it (and, for a `--no-wait` request, the same action may now run
    /// once: repeat the request).
    Approved,
    /// A human denied it.
    Denied,
    /// Nobody answered in time.
    TimedOut,
    /// The waiting client went away before anyone answered.
    Withdrawn,
    /// An approval left for a later identical request was used by it.
    Used,
}

/// One approval request, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalInfo {
    /// `a1`, `a2`, ...
    pub id: String,
    /// `exec`, `session send`, `file write`, `proxy create`, `connect`, ...
    pub action: String,
    /// `user@host:port`, with the profile in front when there is one (`prod: u@h:22`).
    pub target: String,
    /// The profile, when the target came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The session it would act in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The command line it would run or type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The remote path it would read or write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The forward it would open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<String>,
    /// Which client asked, e.g. `cli:1234`, `mcp:99`.
    pub client: String,
    /// The rule that asked, and why.
    pub rule: String,
    /// Why the rule asked, in one sentence.
    pub reason: String,
    /// When it was asked, ms since the epoch.
    pub asked_ms: u64,
    /// How long it has waited (or waited, once decided), ms.
    pub waiting_ms: u64,
    /// Pending, approved, denied, ...
    pub state: ApprovalState,
    /// Who decided (`tui:1234`, `cli:99`), once decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// The reason given with a denial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_reason: Option<String>,
    /// Whether a client is waiting on it (false for `--no-wait` requests).
    pub waited_on: bool,
}
