//! The dashboard's Approvals pane (issue 16): the daemon's pending approval requests as the
//! status feed reports them, one bell per new request, the keys that answer them (`y`
//! approve, `a` approve and allow from now on, `n` deny with a reason) and their drawing.
//! State changes here are pure like the rest of [`App`]; the runtime sends the decision.

use std::collections::HashSet;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table};
use ratatui::Frame;
use serde_json::Value;

use super::app::{App, Effect, Focus, Mode};
use super::view::human_age;
use crate::wire::approval::{ApprovalInfo, ApprovalState};

/// Longest deny reason the prompt accepts (the daemon shows it to the agent).
pub const REASON_MAX: usize = 200;

/// The pending approval requests, as of the last status.
#[derive(Debug, Default)]
pub struct Approvals {
    /// Pending requests, oldest first.
    pub pending: Vec<ApprovalInfo>,
    /// When the status carrying `pending` arrived (ms since the epoch), so waits keep counting.
    pub at_ms: u64,
    /// The selected request (index into `pending`); the oldest unless the human moved.
    pub selected: usize,
    /// The policy file's error, while the previous policy is in force.
    pub policy_error: Option<String>,
    /// Ids already announced with a bell (pruned to the pending ones).
    pub belled: HashSet<String>,
}

impl Approvals {
    /// Takes the `approvals` and `policy_error` of a status; returns how many are new.
    pub fn update(&mut self, status: &Value, now_ms: u64) -> usize {
        let selected_id = self.selected().map(|a| a.id.clone());
        self.pending = status["approvals"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| serde_json::from_value::<ApprovalInfo>(v.clone()).ok())
            .filter(|a| a.state == ApprovalState::Pending)
            .collect();
        self.at_ms = now_ms;
        self.policy_error = status["policy_error"].as_str().map(String::from);
        // Keep the same request selected while it is pending; else the oldest.
        self.selected = selected_id
            .and_then(|id| self.pending.iter().position(|a| a.id == id))
            .unwrap_or(0);
        let ids: HashSet<String> = self.pending.iter().map(|a| a.id.clone()).collect();
        self.belled.retain(|id| ids.contains(id));
        ids.into_iter()
            .filter(|id| self.belled.insert(id.clone()))
            .count()
    }

    /// The request `y`/`a`/`n` answer.
    pub fn selected(&self) -> Option<&ApprovalInfo> {
        self.pending.get(self.selected)
    }

    /// How long `a` has waited at `now_ms`.
    pub fn waited_ms(&self, a: &ApprovalInfo, now_ms: u64) -> u64 {
        a.waiting_ms + now_ms.saturating_sub(self.at_ms)
    }

    /// The banner line shown while any request is pending.
    pub fn banner(&self) -> Option<String> {
        let n = self.pending.len();
        let id = &self.selected()?.id;
        let what = if n == 1 {
            "1 approval waiting".to_string()
        } else {
            format!("{n} approvals waiting")
        };
        Some(format!(
            "{what} — y approve, a approve+allow, n deny ({id}; Tab to the pane, ↑↓ to choose)"
        ))
    }
}

/// What a request would do, in one short phrase.
pub fn what(a: &ApprovalInfo) -> String {
    let detail = a
        .command
        .as_deref()
        .or(a.path.as_deref())
        .or(a.forward.as_deref());
    match detail {
        Some(d) => format!("{}: {}", a.action, d.replace('\n', "⏎")),
        None => a.action.clone(),
    }
}

impl App {
    /// A status's approvals: a bell for each new request.
    pub(super) fn on_approvals(&mut self, status: &Value) -> Vec<Effect> {
        let new = self.approvals.update(status, self.now_ms);
        if self.approvals.pending.is_empty() && self.focus == Focus::Approvals {
            self.focus = Focus::Sessions;
        }
        vec![Effect::Bell; new]
    }

    /// The approval keys of the normal mode; None when the key is not one of them.
    pub(super) fn approval_key(&mut self, key: &KeyEvent) -> Option<Vec<Effect>> {
        let a = self.approvals.selected()?;
        let id = a.id.clone();
        match key.code {
            KeyCode::Char('y') => Some(self.decide(id, true, None, false)),
            KeyCode::Char('a') => Some(self.decide(id, true, None, true)),
            KeyCode::Char('n') => {
                self.mode = Mode::DenyReason(id, String::new());
                Some(Vec::new())
            }
            KeyCode::Down | KeyCode::Char('j') if self.focus == Focus::Approvals => {
                let last = self.approvals.pending.len().saturating_sub(1);
                self.approvals.selected = (self.approvals.selected + 1).min(last);
                Some(Vec::new())
            }
            KeyCode::Up | KeyCode::Char('k') if self.focus == Focus::Approvals => {
                self.approvals.selected = self.approvals.selected.saturating_sub(1);
                Some(Vec::new())
            }
            _ => None,
        }
    }

    fn decide(
        &mut self,
        id: String,
        approve: bool,
        reason: Option<String>,
        add_rule: bool,
    ) -> Vec<Effect> {
        self.message = Some(format!(
            "{} {id}…",
            if approve { "approving" } else { "denying" }
        ));
        vec![Effect::Decide {
            id,
            approve,
            reason,
            add_rule,
        }]
    }

    /// A key while typing a deny reason: Enter denies, Esc cancels.
    pub(super) fn on_reason_key(
        &mut self,
        id: String,
        mut reason: String,
        key: KeyEvent,
    ) -> Vec<Effect> {
        match key.code {
            KeyCode::Esc => {
                self.mode = Mode::Normal;
                self.message = Some("deny cancelled".into());
            }
            KeyCode::Enter => {
                self.mode = Mode::Normal;
                let reason = reason.trim().to_string();
                let reason = (!reason.is_empty()).then_some(reason);
                return self.decide(id, false, reason, false);
            }
            KeyCode::Backspace => {
                reason.pop();
                self.mode = Mode::DenyReason(id, reason);
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                if reason.chars().count() < REASON_MAX {
                    reason.push(c);
                }
                self.mode = Mode::DenyReason(id, reason);
            }
            _ => {}
        }
        Vec::new()
    }
}

/// How many top lines the approval banner and policy warning take.
pub fn top_lines(app: &App) -> u16 {
    u16::from(!app.approvals.pending.is_empty()) + u16::from(app.approvals.policy_error.is_some())
}

/// Draws the banner (pending approvals) and the policy warning, one line each.
pub fn draw_top(f: &mut Frame, app: &App, area: Rect) {
    let mut lines = Vec::new();
    if let Some(b) = app.approvals.banner() {
        lines.push(Line::from(Span::styled(
            format!(" {b}"),
            Style::default()
                .fg(Color::Black)
                .bg(Color::LightYellow)
                .add_modifier(Modifier::BOLD),
        )));
    }
    if let Some(e) = &app.approvals.policy_error {
        lines.push(Line::from(Span::styled(
            format!(" policy.toml is broken, the previous policy is in force: {e}"),
            Style::default().fg(Color::White).bg(Color::Red),
        )));
    }
    for (i, line) in lines.into_iter().enumerate() {
        let Ok(dy) = u16::try_from(i) else { break };
        if dy >= area.height {
            break;
        }
        let r = Rect {
            y: area.y + dy,
            height: 1,
            ..area
        };
        f.render_widget(Paragraph::new(line), r);
    }
}

/// Draws the Approvals pane: one row per pending request, the selected one reversed.
pub fn draw_pane(f: &mut Frame, app: &App, area: Rect) {
    let ap = &app.approvals;
    let focused = app.focus == Focus::Approvals;
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(
            Style::default()
                .fg(if focused { Color::Cyan } else { Color::Yellow })
                .add_modifier(Modifier::BOLD),
        )
        .title(format!(" Approvals ({}) ", ap.pending.len()));
    let rows = ap.pending.iter().enumerate().map(|(i, a)| {
        let mut style = Style::default();
        if i == ap.selected {
            style = style.add_modifier(Modifier::REVERSED);
        }
        // The profile is shorter than `profile: user@host:port` and names the same place.
        let host = a.profile.as_deref().unwrap_or(&a.target);
        let place = match &a.session {
            Some(s) => format!("{host} {s}"),
            None => host.to_string(),
        };
        Row::new(vec![
            Cell::from(a.id.clone()),
            Cell::from(human_age(ap.waited_ms(a, app.now_ms))),
            Cell::from(what(a)),
            Cell::from(place),
            Cell::from(a.client.clone()),
            Cell::from(format!("{}: {}", a.rule, a.reason)),
        ])
        .style(style)
    });
    let widths = [
        Constraint::Length(4),
        Constraint::Length(4),
        Constraint::Fill(3),
        Constraint::Fill(1),
        Constraint::Length(10),
        Constraint::Fill(3),
    ];
    let header = Row::new(["id", "wait", "what", "where", "client", "rule / why"])
        .style(Style::default().add_modifier(Modifier::BOLD));
    f.render_widget(Table::new(rows, widths).header(header).block(block), area);
}

/// Draws the one-line deny reason prompt.
pub fn draw_reason(f: &mut Frame, area: Rect, id: &str, reason: &str) {
    let w = 70.min(area.width);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + area.height.saturating_sub(3) / 2,
        width: w,
        height: 3.min(area.height),
    };
    f.render_widget(Clear, r);
    let p = Paragraph::new(format!("reason: {reason}▏")).block(
        Block::default()
            .borders(Borders::ALL)
            .title(format!(" Deny {id} (Enter deny, Esc cancel) ")),
    );
    f.render_widget(p, r);
}
