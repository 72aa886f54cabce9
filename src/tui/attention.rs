//! The dashboard's attention state (issue 20), pure like the rest of [`App`]: attention-first
//! ordering, requests for a human (bell once per request, jump, dismiss), the input notice,
//! the selected session's command history, and the zoom that fits a taken-over session's PTY
//! to the terminal and gives the agent its size back on hand-back.

use serde_json::Value;

use super::app::{App, Effect, HumanRequest, Mode, SessionRow};

/// A session waiting for input longer than this gets a notice.
pub const INPUT_NOTICE_MS: u64 = 30_000;
/// Commands fetched for the history pane.
pub const HISTORY_LIMIT: usize = 20;
/// Commands asked of the daemon (the pane shows the last [`HISTORY_LIMIT`]).
pub const HISTORY_FETCHED: usize = HISTORY_LIMIT;

/// One command of the selected session's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The command line.
    pub command: String,
    /// `agent` or `human`.
    pub by: String,
    /// How long it ran (None while it runs).
    pub duration_ms: Option<u64>,
    /// Its exit status (None while it runs or when unknown).
    pub exit_status: Option<i64>,
}

/// What a notice line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// An open request for a human.
    NeedsHuman,
    /// A session waiting for input past [`INPUT_NOTICE_MS`].
    Input,
}

/// The state a row shows: `needs human` wins over the session's own state.
pub fn shown_state(row: &SessionRow) -> &str {
    if row.needs_human.is_some() {
        "needs human"
    } else {
        &row.state
    }
}

/// Attention rank (lower first) and the time that orders rows within a rank (oldest first).
fn rank(row: &SessionRow) -> (u8, u64) {
    if let Some(h) = &row.needs_human {
        return (0, h.since);
    }
    let r = match row.state.as_str() {
        "input" => 1,
        "busy" => 2,
        "prompt" => 3,
        _ => 4,
    };
    (r, row.state_since)
}

fn key(session: &str, req: &HumanRequest) -> String {
    format!("{session}/{}", req.request)
}

fn secs(ms: u64) -> String {
    super::view::human_age(ms)
}

impl App {
    /// Orders the rows (attention first, or the daemon's order) keeping the watched
    /// session selected.
    pub fn sort_sessions(&mut self) {
        if self.attention_first {
            self.sessions.sort_by_key(|r| (rank(r), r.seq));
        } else {
            self.sessions.sort_by_key(|r| r.seq);
        }
        if let Some(id) = &self.watched {
            if let Some(i) = self
                .sessions
                .iter()
                .position(|s| !s.archived() && &s.id == id)
            {
                self.selected = i;
            }
        }
    }

    pub(super) fn toggle_order(&mut self) -> Vec<Effect> {
        self.attention_first = !self.attention_first;
        self.sort_sessions();
        self.message = Some(if self.attention_first {
            "attention first: needs human, input, busy, prompt (o: by id)".into()
        } else {
            "sessions by id (o: attention first)".into()
        });
        Vec::new()
    }

    /// One bell per request not announced yet. With `prune` (a full session list), forgets
    /// requests no longer open, so the set stays as small as the open requests.
    pub fn ring_for_new_requests(&mut self, prune: bool) -> Vec<Effect> {
        let open: Vec<String> = self
            .sessions
            .iter()
            .filter_map(|r| r.needs_human.as_ref().map(|h| key(&r.id, h)))
            .collect();
        let mut fx = Vec::new();
        for k in &open {
            if self.belled.insert(k.clone()) {
                fx.push(Effect::Bell);
            }
        }
        if prune {
            self.belled.retain(|k| open.contains(k));
        }
        fx
    }

    /// The session whose request for a human has waited longest.
    pub fn oldest_request(&self) -> Option<(usize, &SessionRow)> {
        self.sessions
            .iter()
            .enumerate()
            .filter(|(_, r)| r.needs_human.is_some())
            .min_by_key(|(_, r)| r.needs_human.as_ref().map(|h| h.since))
    }

    pub(super) fn jump_to_request(&mut self) -> Vec<Effect> {
        match self.oldest_request().map(|(i, _)| i) {
            Some(i) => {
                self.selected = i;
                self.watch_selected()
            }
            None => {
                self.message = Some("no session needs a human".into());
                Vec::new()
            }
        }
    }

    pub(super) fn dismiss_selected(&mut self) -> Vec<Effect> {
        match self.selected_session() {
            Some(s) if s.needs_human.is_some() => vec![Effect::Dismiss(s.id.clone())],
            Some(s) => {
                self.message = Some(format!("{} has no open request for a human", s.id));
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    /// The notice lines above the panes: the oldest request for a human, and the session
    /// that has waited longest for input past the threshold.
    pub fn notices(&self) -> Vec<(NoticeKind, String)> {
        let mut out = Vec::new();
        let label = |r: &SessionRow| match &r.name {
            Some(n) => format!("{} ({n})", r.id),
            None => r.id.clone(),
        };
        if let Some((_, r)) = self.oldest_request() {
            let h = r
                .needs_human
                .as_ref()
                .map(|h| (h.message.as_str(), h.since));
            let (msg, since) = h.unwrap_or_default();
            let more = self
                .sessions
                .iter()
                .filter(|r| r.needs_human.is_some())
                .count()
                - 1;
            let more = if more > 0 {
                format!(" (+{more} more)")
            } else {
                String::new()
            };
            out.push((
                NoticeKind::NeedsHuman,
                format!(
                    "⚑ {} needs a human, waiting {}: {msg}{more} · g go · t take over · d dismiss",
                    label(r),
                    secs(self.now_ms.saturating_sub(since)),
                ),
            ));
        }
        let waiting = self
            .sessions
            .iter()
            .filter(|r| {
                r.needs_human.is_none()
                    && r.state == "input"
                    && self.now_ms.saturating_sub(r.state_since) >= INPUT_NOTICE_MS
            })
            .min_by_key(|r| r.state_since);
        if let Some(r) = waiting {
            out.push((
                NoticeKind::Input,
                format!(
                    "⌛ {} has waited for input for {} · t take over",
                    label(r),
                    secs(self.now_ms.saturating_sub(r.state_since)),
                ),
            ));
        }
        out
    }

    /// Asks for the watched session's history when it is new or its state changed (a
    /// command started or ended), never on mere output.
    pub(super) fn refresh_history(&mut self) -> Vec<Effect> {
        let Some(id) = self.watched.clone() else {
            return Vec::new();
        };
        let Some(r) = self.sessions.iter().find(|r| r.id == id) else {
            return Vec::new();
        };
        let k = (
            id.clone(),
            r.state.clone(),
            r.state_since,
            r.last_exit_status,
        );
        if self.history_key.as_ref() == Some(&k) {
            return Vec::new();
        }
        self.history_key = Some(k);
        vec![Effect::History(id)]
    }

    /// A `History` answer for `session` (ignored when the selection moved on).
    pub fn on_history(&mut self, session: &str, v: &Value) {
        if self.watched.as_deref() != Some(session) {
            return;
        }
        let rows: Vec<HistoryRow> = v["commands"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| HistoryRow {
                        command: c["command"].as_str().unwrap_or_default().to_string(),
                        by: c["by"].as_str().unwrap_or_default().to_string(),
                        duration_ms: c["duration_ms"].as_u64(),
                        exit_status: c["exit_status"].as_i64(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let skip = rows.len().saturating_sub(HISTORY_LIMIT);
        self.history = rows.into_iter().skip(skip).collect();
    }

    /// Whether the watched session fills the whole terminal (the human is typing into it).
    pub fn zoomed(&self) -> bool {
        self.holding && self.mode == Mode::Control
    }

    /// The PTY size that fills the terminal below the one-line bar, if the size is known.
    fn fit_size(&self) -> Option<(u16, u16)> {
        let (c, r) = self.term_size;
        (c > 0 && r > 1).then(|| (c.clamp(2, 500), (r - 1).clamp(2, 300)))
    }

    /// On take-over: remember the agent's size and fit the PTY to the terminal.
    pub(super) fn fit_zoomed(&mut self) -> Vec<Effect> {
        let (Some(id), Some((cols, rows))) = (self.watched.clone(), self.fit_size()) else {
            return Vec::new();
        };
        if self.agent_size.is_none() {
            let (rows0, cols0) = match &self.screen {
                Some(s) => s.screen().size(),
                None => {
                    let r = self.sessions.iter().find(|r| r.id == id);
                    r.map(|r| (r.rows, r.cols)).unwrap_or((0, 0))
                }
            };
            if cols0 == 0 || rows0 == 0 {
                return Vec::new();
            }
            self.agent_size = Some((id.clone(), cols0, rows0));
        }
        vec![Effect::Resize {
            session: id,
            cols,
            rows,
        }]
    }

    /// On hand-back (or leaving while holding): the agent's size again.
    pub(super) fn restore_size(&mut self) -> Vec<Effect> {
        self.agent_size
            .take()
            .map(|(session, cols, rows)| Effect::Resize {
                session,
                cols,
                rows,
            })
            .into_iter()
            .collect()
    }

    /// The terminal changed size; a zoomed session follows it.
    pub fn on_term_resize(&mut self, cols: u16, rows: u16) -> Vec<Effect> {
        self.term_size = (cols, rows);
        if self.zoomed() {
            self.fit_zoomed()
        } else {
            Vec::new()
        }
    }

    /// A signal (or the end of the key stream) ends the dashboard: restore sizes too.
    pub fn on_signal_quit(&mut self) -> Vec<Effect> {
        self.quit()
    }

    pub(super) fn quit(&mut self) -> Vec<Effect> {
        let mut fx = self.restore_size();
        fx.push(Effect::Quit);
        fx
    }
}
