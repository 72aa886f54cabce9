//! The dashboard's state machine: pure, no I/O. Keys and daemon events go in, [`Effect`]s
//! come out for the runtime to carry out; `view` only draws this state.

use std::collections::{HashSet, VecDeque};

use base64::Engine;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::Value;

use super::keymap;
use super::replay::{KeyResult, Player};
use super::rows::row_from;
pub use super::rows::{HumanRequest, SessionRow};
use crate::protocol::{ActivityEntry, WatchEvent};
use crate::screen::Screen;

/// Activity entries kept for the log pane.
pub const ACTIVITY_KEPT: usize = 500;
/// Scrollback kept by the dashboard's copy of a screen.
const VIEW_SCROLLBACK: usize = 2000;

/// Which pane has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// Sessions list.
    Sessions,
    /// Pool connections.
    Connections,
    /// Proxies.
    Proxies,
    /// Activity log.
    Activity,
    /// Pending approval requests (in the Tab cycle only while any are pending).
    Approvals,
}

/// A destructive action waiting for `y`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// Close this session.
    CloseSession(String),
    /// Send Ctrl-C (INT) to this session.
    Interrupt(String),
    /// Close this proxy.
    CloseProxy(String),
}

/// Input mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Navigating.
    Normal,
    /// Keystrokes go to the watched session (the human holds control).
    Control,
    /// The help overlay.
    Help,
    /// Waiting for y/n.
    Confirm(Pending),
    /// Typing an activity filter.
    Filter,
    /// Typing a profile name for a new session.
    NewSession(String),
    /// Replaying a recording in the screen pane (its keys go to the player).
    Replay,
    /// Typing the reason for denying this approval request: (id, reason so far).
    DenyReason(String, String),
}

/// What the runtime must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Watch this session (None: stop watching).
    Watch(Option<String>),
    /// Send keystrokes to the watched session.
    Input(Vec<u8>),
    /// Take (true) or hand back (false) control of the watched session.
    Control(bool),
    /// Close a session.
    CloseSession(String),
    /// Send INT to a session.
    Interrupt(String),
    /// Close a proxy.
    CloseProxy(String),
    /// Open a session from a profile.
    Connect(String),
    /// Ring the terminal bell once (a new request for a human).
    Bell,
    /// End this session's open request for a human (`Request::Dismiss`).
    Dismiss(String),
    /// Fetch this session's recent command history (`Request::History`).
    History(String),
    /// Resize this session's PTY (fit on take-over, the agent's size on hand-back).
    Resize {
        /// Session id.
        session: String,
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Load this session's recording (`path` for a closed one) and replay it.
    Replay {
        /// Session id.
        session: String,
        /// The recording file, when known (closed sessions).
        path: Option<String>,
    },
    /// Answer an approval request (`Request::ApprovalDecide`).
    Decide {
        /// The approval id.
        id: String,
        /// Approve (true) or deny.
        approve: bool,
        /// Why it was denied.
        reason: Option<String>,
        /// Also allow this exact command from now on.
        add_rule: bool,
    },
    /// Leave the dashboard.
    Quit,
}

/// The dashboard state.
pub struct App {
    /// Sessions, as the daemon last reported them.
    pub sessions: Vec<SessionRow>,
    /// Pool connections (JSON rows from `daemon status`).
    pub connections: Vec<Value>,
    /// Proxies (JSON rows from `daemon status`).
    pub proxies: Vec<Value>,
    /// Recent activity, oldest first.
    pub activity: VecDeque<ActivityEntry>,
    /// Activity filter (substring, case-insensitive).
    pub filter: String,
    /// Selected session index.
    pub selected: usize,
    /// Selected proxy index.
    pub proxy_selected: usize,
    /// Focused pane.
    pub focus: Focus,
    /// Input mode.
    pub mode: Mode,
    /// The session being watched, and our copy of its screen.
    pub watched: Option<String>,
    /// Local screen model fed by the watch stream.
    pub screen: Option<Screen>,
    /// Whether this dashboard holds control of the watched session.
    pub holding: bool,
    /// Rows scrolled back in the live screen.
    pub scroll: usize,
    /// A one-line message for the footer.
    pub message: Option<String>,
    /// A standing hint for the footer, shown when there is no message (`agentssh demo`).
    pub banner: Option<String>,
    /// The daemon pid, for the title.
    pub daemon_pid: Option<u64>,
    /// "Now" for relative times, ms since epoch (set by the runtime, so tests are stable).
    pub now_ms: u64,
    /// The terminal's size (cols, rows), set by the runtime; (0, 0) when unknown.
    pub term_size: (u16, u16),
    /// Sessions ordered by attention (needs human, input, busy, prompt) instead of by id.
    pub attention_first: bool,
    /// `session/request` keys already announced with a bell (pruned to the open ones).
    pub belled: HashSet<String>,
    /// The watched session's recent commands, oldest first.
    pub history: Vec<super::attention::HistoryRow>,
    /// What the history was last fetched for: (session, state, state_since, exit status).
    pub history_key: Option<(String, String, u64, Option<i64>)>,
    /// The size the session had before this dashboard took it over: (session, cols, rows).
    pub agent_size: Option<(String, u16, u16)>,
    /// The recording being replayed in the screen pane, and whose it is.
    pub replay: Option<(String, Player)>,
    /// Pending approval requests and the policy's error.
    pub approvals: super::approvals::Approvals,
}

impl Default for App {
    fn default() -> Self {
        App {
            sessions: Vec::new(),
            connections: Vec::new(),
            proxies: Vec::new(),
            activity: VecDeque::new(),
            filter: String::new(),
            selected: 0,
            proxy_selected: 0,
            focus: Focus::Sessions,
            mode: Mode::Normal,
            watched: None,
            screen: None,
            holding: false,
            scroll: 0,
            message: None,
            banner: None,
            daemon_pid: None,
            now_ms: 0,
            term_size: (0, 0),
            attention_first: false,
            belled: HashSet::new(),
            history: Vec::new(),
            history_key: None,
            agent_size: None,
            replay: None,
            approvals: Default::default(),
        }
    }
}

/// A closed session's row from a `closed_sessions` entry (a recording on disk).
fn archived_row(v: &Value) -> SessionRow {
    SessionRow {
        id: v["session_id"].as_str().unwrap_or_default().to_string(),
        name: v["name"].as_str().map(String::from),
        target: String::new(),
        status: "recorded".into(),
        controller: String::new(),
        output_bytes: v["bytes"].as_u64().unwrap_or(0),
        updated_at: v["created_at"].as_u64().unwrap_or(0),
        last_input: None,
        created_at: v["created_at"].as_u64().unwrap_or(0),
        recording: v["path"].as_str().map(String::from),
        // Shown in the state column: closed, with a recording to replay (`p`).
        state: "recorded".into(),
        ..SessionRow::default()
    }
}

impl App {
    /// The selected session, if any.
    pub fn selected_session(&self) -> Option<&SessionRow> {
        self.sessions.get(self.selected)
    }

    /// Activity entries passing the filter, oldest first.
    pub fn filtered_activity(&self) -> Vec<&ActivityEntry> {
        let f = self.filter.to_lowercase();
        self.activity
            .iter()
            .filter(|e| {
                f.is_empty()
                    || e.command.to_lowercase().contains(&f)
                    || e.target
                        .as_deref()
                        .unwrap_or_default()
                        .to_lowercase()
                        .contains(&f)
                    || e.outcome.to_lowercase().contains(&f)
                    || e.client.to_lowercase().contains(&f)
            })
            .collect()
    }

    pub(super) fn watch_selected(&mut self) -> Vec<Effect> {
        // A closed session has nothing live to watch.
        let want = self
            .selected_session()
            .filter(|s| !s.archived())
            .map(|s| s.id.clone());
        if want == self.watched {
            return self.refresh_history();
        }
        let mut fx = Vec::new();
        if self.holding {
            self.holding = false;
            self.mode = Mode::Normal;
            // The old stream's end releases control; give the agent its size back first.
            fx.extend(self.restore_size());
        }
        self.watched = want.clone();
        self.screen = None;
        self.scroll = 0;
        self.history.clear();
        self.history_key = None;
        fx.push(Effect::Watch(want));
        fx.extend(self.refresh_history());
        fx
    }

    /// A new `daemon status` snapshot.
    pub fn on_overview(&mut self, v: &Value) -> Vec<Effect> {
        self.daemon_pid = v["pid"].as_u64();
        self.sessions = v["session_list"]
            .as_array()
            .map(|a| a.iter().enumerate().map(|(i, r)| row_from(r, i)).collect())
            .unwrap_or_default();
        // Closed sessions stay listed (after the live ones) while their recordings exist;
        // one that is still in the registry (its shell exited) is listed once.
        for v in v["closed_sessions"].as_array().into_iter().flatten() {
            let mut row = archived_row(v);
            // After every live session, in whatever order the dashboard sorts.
            row.seq = self.sessions.len();
            if !self
                .sessions
                .iter()
                .any(|s| s.id == row.id && s.created_at == row.created_at)
            {
                self.sessions.push(row);
            }
        }
        let mut fx = self.ring_for_new_requests(true);
        fx.extend(self.on_approvals(v));
        self.sort_sessions();
        self.connections = v["connection_list"].as_array().cloned().unwrap_or_default();
        self.proxies = v["proxy_list"].as_array().cloned().unwrap_or_default();
        // Keep the same session selected when rows come and go.
        if let Some(id) = &self.watched {
            // Among live rows: a watched session that closed is not followed into its
            // recording's row (which may or may not be listed yet).
            if let Some(i) = self
                .sessions
                .iter()
                .position(|s| &s.id == id && !s.archived())
            {
                self.selected = i;
            }
        }
        self.selected = self.selected.min(self.sessions.len().saturating_sub(1));
        self.proxy_selected = self
            .proxy_selected
            .min(self.proxies.len().saturating_sub(1));
        fx.extend(self.watch_selected());
        fx
    }

    /// A new activity entry.
    pub fn on_activity(&mut self, e: ActivityEntry) {
        if self.activity.len() == ACTIVITY_KEPT {
            self.activity.pop_front();
        }
        self.activity.push_back(e);
    }

    /// An event of the watched session.
    pub fn on_watch(&mut self, ev: WatchEvent) -> Vec<Effect> {
        let decode = |d: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(d)
                .unwrap_or_default()
        };
        match ev {
            WatchEvent::Keyframe { data, cols, rows } => {
                let mut s = Screen::new(rows, cols, VIEW_SCROLLBACK);
                s.feed(&decode(&data));
                self.screen = Some(s);
            }
            WatchEvent::Output { data } => {
                if let Some(s) = &mut self.screen {
                    s.feed(&decode(&data));
                }
            }
            WatchEvent::Resized { cols, rows } => {
                if let Some(s) = &mut self.screen {
                    s.resize(rows, cols);
                }
            }
            WatchEvent::Info(v) => {
                let mut row = row_from(&v, 0);
                if let Some(r) = self.sessions.iter_mut().find(|r| r.id == row.id) {
                    row.seq = r.seq;
                    *r = row;
                }
                let mut fx = self.ring_for_new_requests(false);
                self.sort_sessions();
                fx.extend(self.refresh_history());
                return fx;
            }
        }
        Vec::new()
    }

    /// The watch stream ended (session closed or daemon gone).
    pub fn on_watch_ended(&mut self) {
        self.agent_size = None;
        if self.holding {
            self.holding = false;
            self.mode = Mode::Normal;
            self.message = Some("session ended; control released".into());
        }
    }

    fn move_selection(&mut self, down: bool) -> Vec<Effect> {
        let step = |i: usize, len: usize| {
            if down {
                (i + 1).min(len.saturating_sub(1))
            } else {
                i.saturating_sub(1)
            }
        };
        match self.focus {
            Focus::Sessions => {
                self.selected = step(self.selected, self.sessions.len());
                self.watch_selected()
            }
            Focus::Proxies => {
                self.proxy_selected = step(self.proxy_selected, self.proxies.len());
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// A key press.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.kind == crossterm::event::KeyEventKind::Release {
            return Vec::new();
        }
        match self.mode.clone() {
            Mode::Control => {
                if keymap::is_escape_key(&key) {
                    self.mode = Mode::Normal;
                    self.message = Some(
                        "back to the dashboard; you still hold control (r hands it back)".into(),
                    );
                    return Vec::new();
                }
                keymap::key_to_bytes(&key)
                    .map(|b| vec![Effect::Input(b)])
                    .unwrap_or_default()
            }
            Mode::Help => {
                self.mode = Mode::Normal;
                Vec::new()
            }
            Mode::Confirm(p) => {
                self.mode = Mode::Normal;
                if matches!(key.code, KeyCode::Char('y') | KeyCode::Char('Y')) {
                    return vec![match p {
                        Pending::CloseSession(id) => Effect::CloseSession(id),
                        Pending::Interrupt(id) => Effect::Interrupt(id),
                        Pending::CloseProxy(id) => Effect::CloseProxy(id),
                    }];
                }
                self.message = Some("cancelled".into());
                Vec::new()
            }
            Mode::Filter => {
                match key.code {
                    KeyCode::Enter | KeyCode::Esc => self.mode = Mode::Normal,
                    KeyCode::Backspace => {
                        self.filter.pop();
                    }
                    KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                        self.filter.push(c)
                    }
                    _ => {}
                }
                Vec::new()
            }
            Mode::NewSession(mut name) => {
                match key.code {
                    KeyCode::Esc => self.mode = Mode::Normal,
                    KeyCode::Enter => {
                        self.mode = Mode::Normal;
                        if !name.trim().is_empty() {
                            self.message =
                                Some(format!("connecting with profile '{}'…", name.trim()));
                            return vec![Effect::Connect(name.trim().to_string())];
                        }
                    }
                    KeyCode::Backspace => {
                        name.pop();
                        self.mode = Mode::NewSession(name);
                    }
                    KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                        name.push(c);
                        self.mode = Mode::NewSession(name);
                    }
                    _ => {}
                }
                Vec::new()
            }
            Mode::Replay => {
                let quit = match &mut self.replay {
                    Some((_, p)) => p.on_key(&key) == KeyResult::Quit,
                    None => true,
                };
                if quit {
                    self.replay = None;
                    self.mode = Mode::Normal;
                    self.message = Some("replay closed".into());
                }
                Vec::new()
            }
            Mode::DenyReason(id, reason) => self.on_reason_key(id, reason, key),
            Mode::Normal => self.on_normal_key(key),
        }
    }

    /// A recording loaded for replay: it plays from its start in the screen pane.
    pub fn start_replay(&mut self, session: String, player: Player) {
        self.replay = Some((session, player));
        self.mode = Mode::Replay;
        self.message = None;
    }

    /// Moves the replay clock on by `wall` of real time.
    pub fn tick_replay(&mut self, wall: std::time::Duration) {
        if let Some((_, p)) = &mut self.replay {
            p.tick(wall);
        }
    }

    fn on_normal_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        self.message = None;
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        // While approvals are pending, y/a/n answer the selected one (n is "new session"
        // again once none is pending).
        if !ctrl {
            if let Some(fx) = self.approval_key(&key) {
                return fx;
            }
        }
        match key.code {
            KeyCode::Char('q') => self.quit(),
            KeyCode::Char('c') if ctrl => self.quit(),
            KeyCode::Char('o') => self.toggle_order(),
            KeyCode::Char('g') => self.jump_to_request(),
            KeyCode::Char('d') => self.dismiss_selected(),
            KeyCode::Char('?') => {
                self.mode = Mode::Help;
                Vec::new()
            }
            KeyCode::Tab | KeyCode::BackTab => {
                let mut order = vec![
                    Focus::Sessions,
                    Focus::Connections,
                    Focus::Proxies,
                    Focus::Activity,
                ];
                if !self.approvals.pending.is_empty() {
                    order.push(Focus::Approvals);
                }
                let i = order.iter().position(|f| *f == self.focus).unwrap_or(0);
                let n = if key.code == KeyCode::Tab {
                    i + 1
                } else {
                    i + order.len() - 1
                };
                self.focus = order[n % order.len()];
                Vec::new()
            }
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(true),
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(false),
            KeyCode::PageUp => {
                self.scroll = self.scroll.saturating_add(10);
                Vec::new()
            }
            KeyCode::PageDown => {
                self.scroll = self.scroll.saturating_sub(10);
                Vec::new()
            }
            KeyCode::Char('/') => {
                self.mode = Mode::Filter;
                Vec::new()
            }
            KeyCode::Char('n') => {
                self.mode = Mode::NewSession(String::new());
                Vec::new()
            }
            KeyCode::Char('t') | KeyCode::Enter if self.focus == Focus::Sessions => {
                if self.watched.is_none() {
                    self.message = Some("no session selected".into());
                    return Vec::new();
                }
                self.mode = Mode::Control;
                self.scroll = 0;
                if self.holding {
                    self.fit_zoomed()
                } else {
                    self.holding = true;
                    let mut fx = vec![Effect::Control(true)];
                    fx.extend(self.fit_zoomed());
                    fx
                }
            }
            KeyCode::Char('r') if self.holding => {
                self.holding = false;
                self.message = Some("control handed back to the agent".into());
                // The agent gets its own size back before it gets control back.
                let mut fx = self.restore_size();
                fx.push(Effect::Control(false));
                fx
            }
            KeyCode::Char('p') if self.focus == Focus::Sessions => {
                let Some(s) = self.selected_session() else {
                    return Vec::new();
                };
                let effect = Effect::Replay {
                    session: s.id.clone(),
                    path: s.recording.clone(),
                };
                self.message = Some(format!("loading the recording of {}…", s.id));
                vec![effect]
            }
            KeyCode::Char('x') if self.focus == Focus::Sessions => {
                if let Some(s) = self.selected_session().filter(|s| !s.archived()) {
                    self.mode = Mode::Confirm(Pending::CloseSession(s.id.clone()));
                }
                Vec::new()
            }
            KeyCode::Char('i') if self.focus == Focus::Sessions => {
                if let Some(s) = self.selected_session().filter(|s| !s.archived()) {
                    self.mode = Mode::Confirm(Pending::Interrupt(s.id.clone()));
                }
                Vec::new()
            }
            KeyCode::Char('x') if self.focus == Focus::Proxies => {
                if let Some(id) = self
                    .proxies
                    .get(self.proxy_selected)
                    .and_then(|p| p["id"].as_str())
                {
                    self.mode = Mode::Confirm(Pending::CloseProxy(id.to_string()));
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// The keys of the focused pane, for the footer.
    pub fn footer_keys(&self) -> &'static str {
        match (&self.mode, self.focus) {
            (Mode::Control, _) => "YOU ARE TYPING INTO THE SESSION · Ctrl-] back to dashboard",
            (Mode::Filter, _) => "type to filter activity · Enter/Esc done",
            (Mode::NewSession(_), _) => "profile name · Enter connect · Esc cancel",
            (Mode::Confirm(_), _) => "y confirm · any other key cancels",
            (Mode::Help, _) => "any key closes help",
            (Mode::Replay, _) => "REPLAY · space pause · ←/→ seek · +/- speed · q back to live",
            (Mode::DenyReason(..), _) => "type the reason (optional) · Enter deny · Esc cancel",
            (_, Focus::Sessions) if !self.approvals.pending.is_empty() => {
                "y approve · a approve+allow · n deny (the oldest; Tab to Approvals to choose) · t take over · ? help · q quit · ↑↓ select"
            }
            (_, Focus::Approvals) => "y approve · a approve+allow · n deny · ↑↓ select · Tab pane · ? help · q quit",
            (_, Focus::Sessions) if self.holding => {
                "t type · r hand back · d dismiss · g next ask · o order · x close · i Ctrl-C · ? help · q quit · ↑↓ select"
            }
            (_, Focus::Sessions) => "t take over · p replay · d dismiss · g next ask · o order · x close · i Ctrl-C · n new · ? help · q quit · ↑↓ select · PgUp/PgDn scroll · Tab pane",
            (_, Focus::Proxies) => "x close proxy · ↑↓ select · Tab pane · ? help · q quit",
            (_, Focus::Activity) => "/ filter · Tab pane · ? help · q quit",
            (_, Focus::Connections) => "Tab pane · ? help · q quit",
        }
    }
}
