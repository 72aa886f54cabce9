//! Drawing the dashboard. Functions here only draw [`App`]; they change nothing.

use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, Wrap};
use ratatui::Frame;
use tui_term::widget::PseudoTerminal;

use super::app::{App, Focus, Mode, Pending};

const HUMAN: Color = Color::LightRed;
const AGENT: Color = Color::LightGreen;
const REPLAY: Color = Color::Magenta;

fn pane(title: String, focused: bool) -> Block<'static> {
    let style = if focused {
        Style::default().fg(Color::Cyan)
    } else {
        Style::default().fg(Color::DarkGray)
    };
    Block::default()
        .borders(Borders::ALL)
        .border_style(style)
        .title(title)
}

/// Human-readable byte count.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "K", "M", "G"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

/// Human-readable duration from ms.
pub fn human_age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// Draws the whole dashboard.
pub fn draw(f: &mut Frame, app: &App) {
    if app.zoomed() {
        super::panes::draw_zoomed(f, app);
        return;
    }
    let full = f.area();
    // Notices (a request for a human, a long wait for input) take the top lines.
    let notices = u16::try_from(app.notices().len()).unwrap_or(0);
    let notices = if full.height >= 12 { notices } else { 0 };
    // The approval banner and a broken policy's warning follow them.
    let top = super::approvals::top_lines(app).min(full.height.saturating_sub(notices));
    let area = Rect {
        y: full.y + notices + top,
        height: full.height - notices - top,
        ..full
    };
    super::approvals::draw_top(
        f,
        app,
        Rect {
            y: full.y + notices,
            height: top,
            ..full
        },
    );
    super::panes::draw_notices(
        f,
        app,
        Rect {
            height: notices,
            ..full
        },
    );
    let mut activity_h = if area.height >= 30 { 10 } else { 6 };
    let approving = !app.approvals.pending.is_empty();
    if approving {
        // Pending approvals take the activity pane's place: borders, header, one row each.
        let want = u16::try_from(app.approvals.pending.len() + 3).unwrap_or(u16::MAX);
        activity_h = want.clamp(activity_h, (area.height / 3).max(activity_h));
    }
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Min(8),
            Constraint::Length(activity_h),
            Constraint::Length(1),
        ])
        .split(area);
    let left_w = (area.width * 2 / 5).clamp(30, 90);
    let cols = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Length(left_w), Constraint::Min(20)])
        .split(rows[0]);
    let left = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Min(4),
            Constraint::Length(5),
            Constraint::Length(5),
        ])
        .split(cols[0]);
    draw_sessions(f, app, left[0]);
    draw_connections(f, app, left[1]);
    draw_proxies(f, app, left[2]);
    if app.selected_session().is_some() && cols[1].height >= 14 {
        let history_h = if cols[1].height >= 30 { 8 } else { 5 };
        let right = Layout::default()
            .direction(Direction::Vertical)
            .constraints([Constraint::Min(8), Constraint::Length(history_h)])
            .split(cols[1]);
        draw_screen(f, app, right[0]);
        super::panes::draw_history(f, app, right[1]);
    } else {
        draw_screen(f, app, cols[1]);
    }
    if approving {
        super::approvals::draw_pane(f, app, rows[1]);
    } else {
        draw_activity(f, app, rows[1]);
    }
    draw_footer(f, app, rows[2]);
    match &app.mode {
        Mode::Help => draw_help(f, area),
        Mode::Confirm(p) => draw_confirm(f, area, p),
        Mode::NewSession(name) => draw_prompt(f, area, name),
        Mode::DenyReason(id, reason) => super::approvals::draw_reason(f, area, id, reason),
        _ => {}
    }
}

fn draw_sessions(f: &mut Frame, app: &App, area: Rect) {
    let block = pane(
        format!(" Sessions ({}) ", app.sessions.len()),
        app.focus == Focus::Sessions,
    );
    if app.sessions.is_empty() {
        let text =
            "No sessions yet.\n\nStart one:\n  agentssh connect -p PROFILE\nor press n here.";
        f.render_widget(
            Paragraph::new(text).block(block).wrap(Wrap { trim: false }),
            area,
        );
        return;
    }
    // Narrow panes show the essentials; wide ones add traffic, target and last command.
    let wide = area.width >= 60;
    let rows = app.sessions.iter().enumerate().map(|(i, s)| {
        let who = if s.archived() {
            Span::raw("-")
        } else if s.controller == "human" {
            Span::styled(
                "HUMAN",
                Style::default().fg(HUMAN).add_modifier(Modifier::BOLD),
            )
        } else {
            // An agent in control: named by its client when it is not the CLI (`mcp`).
            let kind = s
                .client
                .as_deref()
                .filter(|c| *c != "cli")
                .unwrap_or("agent");
            Span::styled(kind.to_string(), Style::default().fg(AGENT))
        };
        let label = match &s.name {
            Some(n) => format!("{} {n}", s.id),
            None => s.id.clone(),
        };
        let idle = human_age(app.now_ms.saturating_sub(s.updated_at));
        let mut style = Style::default();
        if s.archived() {
            // A closed session kept for its recording.
            style = style.fg(Color::DarkGray).add_modifier(Modifier::DIM);
        }
        if i == app.selected {
            style = style.add_modifier(Modifier::REVERSED);
        }
        let mut cells = vec![Cell::from(label), super::panes::state_cell(s)];
        if wide {
            cells.push(Cell::from(s.status.clone()));
        }
        cells.extend([Cell::from(who), Cell::from(idle)]);
        if wide {
            cells.push(Cell::from(human_bytes(s.output_bytes)));
            cells.push(Cell::from(format!(
                "{}  {}",
                s.target,
                s.last_input.as_deref().unwrap_or("")
            )));
        }
        Row::new(cells).style(style)
    });
    let mut widths = vec![Constraint::Length(10), Constraint::Length(11)];
    let mut titles = vec!["id", "state"];
    if wide {
        widths.push(Constraint::Length(12));
        titles.push("status");
    }
    widths.extend([Constraint::Length(5), Constraint::Length(4)]);
    titles.extend(["ctl", "idle"]);
    if wide {
        widths.extend([Constraint::Length(7), Constraint::Min(10)]);
        titles.extend(["bytes", "target / last command"]);
    }
    let header = Row::new(titles).style(Style::default().add_modifier(Modifier::BOLD));
    f.render_widget(Table::new(rows, widths).header(header).block(block), area);
}

fn draw_connections(f: &mut Frame, app: &App, area: Rect) {
    let block = pane(
        format!(" Connections ({}) ", app.connections.len()),
        app.focus == Focus::Connections,
    );
    let rows = app.connections.iter().map(|c| {
        let healthy = c["healthy"].as_bool().unwrap_or(false);
        Row::new(vec![
            Cell::from(c["id"].as_str().unwrap_or_default().to_string()),
            Cell::from(c["target"].as_str().unwrap_or_default().to_string()),
            Cell::from(format!("{}ch", c["channels_in_use"])),
            Cell::from(human_age(c["age_ms"].as_u64().unwrap_or(0))),
            Cell::from(if healthy { "ok" } else { "dead" })
                .style(Style::default().fg(if healthy { AGENT } else { HUMAN })),
        ])
    });
    let widths = [
        Constraint::Length(4),
        Constraint::Min(10),
        Constraint::Length(4),
        Constraint::Length(4),
        Constraint::Length(4),
    ];
    f.render_widget(Table::new(rows, widths).block(block), area);
}

fn draw_proxies(f: &mut Frame, app: &App, area: Rect) {
    let block = pane(
        format!(" Proxies ({}) ", app.proxies.len()),
        app.focus == Focus::Proxies,
    );
    let rows = app.proxies.iter().enumerate().map(|(i, p)| {
        let s = |k: &str| p[k].as_str().unwrap_or_default().to_string();
        let traffic =
            human_bytes(p["bytes_in"].as_u64().unwrap_or(0) + p["bytes_out"].as_u64().unwrap_or(0));
        let mut style = Style::default();
        if i == app.proxy_selected && app.focus == Focus::Proxies {
            style = style.add_modifier(Modifier::REVERSED);
        }
        Row::new(vec![
            Cell::from(s("id")),
            Cell::from(s("kind")),
            Cell::from(format!("{} → {}", s("local"), s("remote"))),
            Cell::from(format!(
                "{}c {traffic}",
                p["active_clients"].as_u64().unwrap_or(0)
            )),
        ])
        .style(style)
    });
    let widths = [
        Constraint::Length(4),
        Constraint::Length(7),
        Constraint::Min(10),
        Constraint::Length(10),
    ];
    f.render_widget(Table::new(rows, widths).block(block), area);
}

fn draw_screen(f: &mut Frame, app: &App, area: Rect) {
    if let Some((id, player)) = &app.replay {
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(Style::default().fg(REPLAY).add_modifier(Modifier::BOLD))
            .title(format!(" {id} · REPLAY · {} ", player.status()));
        let inner = block.inner(area);
        f.render_widget(block, area);
        draw_anchored(f.buffer_mut(), inner, player.screen());
        return;
    }
    let session = app.selected_session();
    let (title, color) = match session {
        None => (" Screen ".to_string(), Color::DarkGray),
        Some(s) if app.holding && app.mode == Mode::Control => (
            format!(
                " {} · YOU ARE TYPING (human control) · Ctrl-] dashboard ",
                s.id
            ),
            HUMAN,
        ),
        Some(s) if app.holding => (
            format!(" {} · you hold control · t type · r hand back ", s.id),
            HUMAN,
        ),
        Some(s) if s.archived() => (
            format!(" {} · closed · p replay its recording ", s.id),
            Color::DarkGray,
        ),
        Some(s) if s.controller == "human" => {
            (format!(" {} · another human holds control ", s.id), HUMAN)
        }
        Some(s) => (
            format!(" {} · {} · agent in control · t take over ", s.id, s.status),
            AGENT,
        ),
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(color).add_modifier(if app.holding {
            Modifier::BOLD
        } else {
            Modifier::empty()
        }))
        .title(title);
    match &app.screen {
        Some(screen) => {
            let inner = block.inner(area);
            f.render_widget(block, area);
            draw_anchored(f.buffer_mut(), inner, screen.screen());
            if app.scroll > 0 {
                let note = Paragraph::new(format!(" history −{} ", app.scroll))
                    .alignment(Alignment::Right);
                let r = Rect {
                    x: area.x + 1,
                    y: area.y + area.height.saturating_sub(1),
                    width: area.width.saturating_sub(2),
                    height: 1,
                };
                f.render_widget(note, r);
            }
        }
        None => {
            let text = match (session, app.sessions.is_empty()) {
                (Some(s), _) if s.archived() => {
                    "This session is closed. Press p to replay its recording."
                }
                (Some(_), _) => "connecting to the session stream…",
                (None, true) => "No sessions yet. Start one with:\n\n  agentssh connect -p PROFILE --name NAME\n\nor press n to open one from a profile here.",
                (None, false) => "Select a session to watch it live.",
            };
            f.render_widget(Paragraph::new(text).block(block), area);
        }
    }
}

/// Draws a session screen into `area`. When the session has more rows than fit, the window
/// follows the cursor row, so the latest output and the prompt stay visible.
pub fn draw_anchored(buf: &mut Buffer, area: Rect, screen: &vt100::Screen) {
    use ratatui::widgets::Widget;
    let (rows, cols) = screen.size();
    if area.width == 0 || area.height == 0 || rows == 0 || cols == 0 {
        return;
    }
    let full = Rect::new(0, 0, cols, rows);
    let mut scratch = Buffer::empty(full);
    PseudoTerminal::new(screen).render(full, &mut scratch);
    let (cursor_row, _) = screen.cursor_position();
    let top = if rows > area.height {
        (cursor_row + 1)
            .saturating_sub(area.height)
            .min(rows - area.height)
    } else {
        0
    };
    for y in 0..area.height.min(rows - top) {
        for x in 0..area.width.min(cols) {
            buf[(area.x + x, area.y + y)] = scratch[(x, top + y)].clone();
        }
    }
}

fn draw_activity(f: &mut Frame, app: &App, area: Rect) {
    let entries = app.filtered_activity();
    let title = if app.filter.is_empty() {
        format!(" Activity ({}) ", entries.len())
    } else {
        format!(" Activity — filter '{}' ({}) ", app.filter, entries.len())
    };
    let block = pane(
        title,
        app.focus == Focus::Activity || app.mode == Mode::Filter,
    );
    let visible = usize::from(area.height.saturating_sub(2));
    let rows = entries.iter().rev().take(visible).rev().map(|e| {
        let ok = e.outcome == "ok";
        let ago = human_age(app.now_ms.saturating_sub(e.time_ms));
        Row::new(vec![
            Cell::from(ago),
            Cell::from(e.target.clone().unwrap_or_default()),
            Cell::from(e.command.clone()),
            Cell::from(format!("{}ms", e.duration_ms)),
            Cell::from(e.outcome.clone()).style(Style::default().fg(if ok {
                AGENT
            } else {
                HUMAN
            })),
        ])
    });
    let widths = [
        Constraint::Length(4),
        Constraint::Length(24),
        Constraint::Min(10),
        Constraint::Length(7),
        Constraint::Length(16),
    ];
    f.render_widget(Table::new(rows, widths).block(block), area);
}

fn draw_footer(f: &mut Frame, app: &App, area: Rect) {
    // A message comes first so a narrow terminal never cuts it off; the keys follow.
    let mut spans = Vec::new();
    if let Some(m) = app.message.as_ref().or(app.banner.as_ref()) {
        spans.push(Span::styled(
            format!(" {m} │"),
            Style::default().fg(Color::Yellow),
        ));
    }
    let keys_color = if app.mode == Mode::Control {
        HUMAN
    } else {
        Color::Gray
    };
    spans.push(Span::styled(
        format!(" {} ", app.footer_keys()),
        Style::default().fg(keys_color),
    ));
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn draw_help(f: &mut Frame, area: Rect) {
    let text = "\
Sessions pane
  ↑/↓ j/k   select a session (its screen shows live on the right)
  t, Enter  take control: your keys go to the shell; agents get session_taken_over
  Ctrl-]    back to the dashboard (you keep control)
  r         hand control back to the agent (and its screen size)
  g         go to the oldest request for a human   d  dismiss the selected one
  o         order: attention first (needs human, input, busy, prompt) / by id
  i         send Ctrl-C (asks first)       x  close session (asks first)
  n         new session from a profile     PgUp/PgDn  scroll the screen
  p         replay the session's recording from its start (closed sessions, dimmed,
            stay listed while their recordings exist): space pause, ←/→ seek,
            +/- speed, q back
Proxies pane:  x close proxy (asks first)
Activity:      / filter (Enter/Esc to finish)
Approvals (shown while an agent's request waits for you; the selected one, the oldest
unless you Tab to the pane and move with ↑/↓):
  y approve once · a approve and allow this exact command from now on
  n deny: type a reason for the agent (optional), Enter denies, Esc cancels
Anywhere:      Tab next pane · ? this help · q quit (control is released)";
    let r = centered(area, 88, 22);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(text).block(Block::default().borders(Borders::ALL).title(" Help ")),
        r,
    );
}

fn draw_confirm(f: &mut Frame, area: Rect, p: &Pending) {
    let q = match p {
        Pending::CloseSession(id) => format!("Close session {id}? Its shell will end. (y/n)"),
        Pending::Interrupt(id) => format!("Send Ctrl-C (INT) to session {id}? (y/n)"),
        Pending::CloseProxy(id) => format!("Close proxy {id}? (y/n)"),
    };
    let r = centered(area, (q.len() as u16).saturating_add(4), 3);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(q).block(Block::default().borders(Borders::ALL).title(" Confirm ")),
        r,
    );
}

fn draw_prompt(f: &mut Frame, area: Rect, name: &str) {
    let r = centered(area, 50, 3);
    f.render_widget(Clear, r);
    let p = Paragraph::new(format!("profile: {name}▏")).block(
        Block::default()
            .borders(Borders::ALL)
            .title(" New session (Enter connect, Esc cancel) "),
    );
    f.render_widget(p, r);
}
