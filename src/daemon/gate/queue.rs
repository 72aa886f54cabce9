//! The approval queue: requests waiting for a human, and what became of them.
//!
//! Plain data behind one mutex that is never held across an await or any I/O; waiting
//! clients hold a oneshot receiver, and every change bumps a watch counter the dashboard feed
//! listens to. Bounded: at most [`MAX_PENDING`] requests wait at once and the last
//! [`MAX_DECIDED`] decisions are kept for `approvals status` and the dashboard.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use crate::error::{Error, ErrorCode, Result};
use crate::wire::approval::{ApprovalInfo, ApprovalState};

/// Most requests waiting at once; more are refused at once.
pub const MAX_PENDING: usize = 64;
/// Decided requests kept for `approvals status` and the dashboard.
pub const MAX_DECIDED: usize = 200;
/// How long an approval given while nobody waited (`--no-wait`) lets the same action run.
pub const GRANT_LIFETIME: Duration = Duration::from_secs(600);

/// A human's answer, as the waiting request gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Go ahead.
    Approved,
    /// Refused, with the reason typed (if any).
    Denied(Option<String>),
}

/// Where the dashboard's `a` key would add an allow entry for a request's exact command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amend {
    /// The rule that asked (1-based).
    pub index: usize,
    /// The line it starts on (to notice a file edited since).
    pub line: usize,
    /// The exact command line.
    pub command: String,
}

struct Entry {
    info: ApprovalInfo,
    amend: Option<Amend>,
    /// Identifies the action (target and what), to match a later identical request.
    key: String,
    asked: Instant,
    decided: Option<Instant>,
    waiter: Option<oneshot::Sender<Answer>>,
}

impl Entry {
    fn snapshot(&self) -> ApprovalInfo {
        let mut info = self.info.clone();
        let end = self.decided.unwrap_or_else(Instant::now);
        info.waiting_ms =
            u64::try_from(end.duration_since(self.asked).as_millis()).unwrap_or(u64::MAX);
        info
    }
}

#[derive(Default)]
struct Inner {
    next: u64,
    entries: VecDeque<Entry>,
}

/// The queue (one per daemon).
pub struct Queue {
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            inner: Mutex::new(Inner::default()),
            changed: watch::channel(0).0,
        }
    }
}

/// A newly queued request: its id and, when the client waits, where the answer arrives.
pub struct Queued {
    /// The approval id.
    pub id: String,
    /// The answer (None for `--no-wait`).
    pub answer: Option<oneshot::Receiver<Answer>>,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every mutation below leaves the state whole, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Bumped on every change (for the dashboard feed).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Queues `info`; `wait` says whether the client waits for the answer. A `--no-wait`
    /// request identical to one already pending without a waiter gets that one's id.
    pub fn ask(
        &self,
        mut info: ApprovalInfo,
        key: String,
        wait: bool,
        amend: Option<Amend>,
    ) -> Result<Queued> {
        let mut inner = self.lock();
        if !wait {
            if let Some(e) = inner.entries.iter().find(|e| {
                e.key == key && e.info.state == ApprovalState::Pending && e.waiter.is_none()
            }) {
                return Ok(Queued {
                    id: e.info.id.clone(),
                    answer: None,
                });
            }
        }
        let pending = inner
            .entries
            .iter()
            .filter(|e| e.info.state == ApprovalState::Pending)
            .count();
        if pending >= MAX_PENDING {
            return Err(Error::new(
                ErrorCode::ApprovalDenied,
                format!("{MAX_PENDING} requests already wait for approval; nothing ran. Ask the human to answer them first"),
            ));
        }
        inner.next += 1;
        let id = format!("a{}", inner.next);
        info.id = id.clone();
        info.state = ApprovalState::Pending;
        info.waited_on = wait;
        let (tx, rx) = oneshot::channel();
        inner.entries.push_back(Entry {
            info,
            amend,
            key,
            asked: Instant::now(),
            decided: None,
            waiter: wait.then_some(tx),
        });
        prune(&mut inner);
        drop(inner);
        self.bump();
        Ok(Queued {
            id,
            answer: wait.then_some(rx),
        })
    }

    /// Uses an approval given to an earlier `--no-wait` request for the same action (once,
    /// within [`GRANT_LIFETIME`]); returns its id.
    pub fn take_grant(&self, key: &str) -> Option<String> {
        let mut inner = self.lock();
        let e = inner.entries.iter_mut().find(|e| {
            e.key == key
                && e.info.state == ApprovalState::Approved
                && !e.info.waited_on
                && e.decided.is_some_and(|d| d.elapsed() < GRANT_LIFETIME)
        })?;
        e.info.state = ApprovalState::Used;
        let id = e.info.id.clone();
        drop(inner);
        self.bump();
        Some(id)
    }

    /// A human's decision on pending request `id`; returns the request as decided.
    pub fn decide(&self, id: &str, answer: Answer, by: &str) -> Result<ApprovalInfo> {
        let mut inner = self.lock();
        let Some(e) = inner.entries.iter_mut().find(|e| e.info.id == id) else {
            return Err(Error::new(
                ErrorCode::NotFound,
                format!("no approval request {id} (see `agentssh approvals list`)"),
            ));
        };
        if e.info.state != ApprovalState::Pending {
            return Err(Error::usage(format!(
                "approval request {id} is already {}",
                state_word(e.info.state)
            )));
        }
        e.info.state = match answer {
            Answer::Approved => ApprovalState::Approved,
            Answer::Denied(_) => ApprovalState::Denied,
        };
        if let Answer::Denied(reason) = &answer {
            e.info.deny_reason = reason.clone();
        }
        e.info.decided_by = Some(by.to_string());
        e.decided = Some(Instant::now());
        if let Some(w) = e.waiter.take() {
            // A waiter that is gone was withdrawn meanwhile; its entry says so below.
            let _ = w.send(answer);
        }
        let info = e.snapshot();
        drop(inner);
        self.bump();
        Ok(info)
    }

    /// Ends a pending request that nobody answered in time, or whose client left.
    pub fn expire(&self, id: &str, state: ApprovalState) -> Option<ApprovalInfo> {
        let mut inner = self.lock();
        let e = inner
            .entries
            .iter_mut()
            .find(|e| e.info.id == id && e.info.state == ApprovalState::Pending)?;
        e.info.state = state;
        e.decided = Some(Instant::now());
        e.waiter = None;
        let info = e.snapshot();
        drop(inner);
        self.bump();
        Some(info)
    }

    /// Where `a` would add an allow entry for request `id` (None: not a single command).
    pub fn amendable(&self, id: &str) -> Option<Amend> {
        self.lock()
            .entries
            .iter()
            .find(|e| e.info.id == id)
            .and_then(|e| e.amend.clone())
    }

    /// One request, pending or decided.
    pub fn get(&self, id: &str) -> Option<ApprovalInfo> {
        self.lock()
            .entries
            .iter()
            .find(|e| e.info.id == id)
            .map(Entry::snapshot)
    }

    /// Pending requests, oldest first.
    pub fn pending(&self) -> Vec<ApprovalInfo> {
        self.lock()
            .entries
            .iter()
            .filter(|e| e.info.state == ApprovalState::Pending)
            .map(Entry::snapshot)
            .collect()
    }

    /// Everything kept: pending first (oldest first), then decisions (newest first).
    pub fn all(&self) -> Vec<ApprovalInfo> {
        let inner = self.lock();
        let mut out: Vec<ApprovalInfo> = inner
            .entries
            .iter()
            .filter(|e| e.info.state == ApprovalState::Pending)
            .map(Entry::snapshot)
            .collect();
        out.extend(
            inner
                .entries
                .iter()
                .rev()
                .filter(|e| e.info.state != ApprovalState::Pending)
                .map(Entry::snapshot),
        );
        out
    }
}

/// Drops the oldest decided entries beyond [`MAX_DECIDED`].
fn prune(inner: &mut Inner) {
    let mut decided = inner
        .entries
        .iter()
        .filter(|e| e.info.state != ApprovalState::Pending)
        .count();
    while decided > MAX_DECIDED {
        if let Some(i) = inner
            .entries
            .iter()
            .position(|e| e.info.state != ApprovalState::Pending)
        {
            inner.entries.remove(i);
        }
        decided -= 1;
    }
}

/// The state as a word for sentences.
pub fn state_word(s: ApprovalState) -> &'static str {
    match s {
        ApprovalState::Pending => "pending",
        ApprovalState::Approved => "approved",
        ApprovalState::Denied => "denied",
        ApprovalState::TimedOut => "timed out",
        ApprovalState::Withdrawn => "withdrawn (its client went away)",
        ApprovalState::Used => "approved and used",
    }
}
