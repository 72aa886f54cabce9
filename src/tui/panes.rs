//! Drawing the attention parts of the dashboard (issue 20): the state cell, the notice lines,
//! the command history under the screen, and the zoomed take-over. Draw only.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use ratatui::Frame;

use super::app::{App, SessionRow};
use super::attention::{shown_state, NoticeKind};
use super::view::{draw_anchored, human_age};

/// The style of a session state.
pub fn state_style(state: &str) -> Style {
    match state {
        "needs human" => Style::default()
            .fg(Color::White)
            .bg(Color::Red)
            .add_modifier(Modifier::BOLD),
        "prompt" => Style::default().fg(Color::LightGreen),
        "busy" => Style::default().fg(Color::Yellow),
        "input" => Style::default()
            .fg(Color::LightMagenta)
            .add_modifier(Modifier::BOLD),
        _ => Style::default().fg(Color::DarkGray),
    }
}

/// The state cell of a session row: its state in colour, `needs human` as a badge.
pub fn state_cell(row: &SessionRow) -> Cell<'static> {
    let s = shown_state(row);
    let text = if s.is_empty() { "-" } else { s };
    Cell::from(Span::styled(text.to_string(), state_style(s)))
}

/// Draws the notice lines (one per line of `area`).
pub fn draw_notices(f: &mut Frame, app: &App, area: Rect) {
    for (i, (kind, text)) in app.notices().into_iter().enumerate() {
        let Ok(dy) = u16::try_from(i) else { break };
        if dy >= area.height {
            break;
        }
        let style = match kind {
            NoticeKind::NeedsHuman => Style::default()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
            NoticeKind::Input => Style::default().fg(Color::Black).bg(Color::Yellow),
        };
        let r = Rect {
            y: area.y + dy,
            height: 1,
            ..area
        };
        f.render_widget(Paragraph::new(format!(" {text}")).style(style), r);
    }
}

fn duration(ms: Option<u64>) -> String {
    match ms {
        None => "running".into(),
        Some(ms) if ms < 1000 => format!("{ms}ms"),
        Some(ms) if ms < 60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        Some(ms) => human_age(ms),
    }
}

/// Draws the watched session's command history, newest at the bottom.
pub fn draw_history(f: &mut Frame, app: &App, area: Rect) {
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(Color::DarkGray))
        .title(format!(" History ({}) ", app.history.len()));
    if app.history.is_empty() {
        f.render_widget(Paragraph::new(" no commands yet").block(block), area);
        return;
    }
    let visible = usize::from(area.height.saturating_sub(2));
    let skip = app.history.len().saturating_sub(visible);
    let rows = app.history.iter().skip(skip).map(|h| {
        let (exit, exit_style) = match (h.exit_status, h.duration_ms) {
            (Some(0), _) => ("✓ 0".to_string(), Style::default().fg(Color::LightGreen)),
            (Some(n), _) => (format!("✗ {n}"), Style::default().fg(Color::LightRed)),
            (None, None) => ("…".to_string(), Style::default().fg(Color::Yellow)),
            (None, Some(_)) => ("?".to_string(), Style::default().fg(Color::DarkGray)),
        };
        let who = if h.by == "human" {
            Style::default().fg(Color::LightRed)
        } else {
            Style::default().fg(Color::LightGreen)
        };
        Row::new(vec![
            Cell::from(Span::styled(exit, exit_style)),
            Cell::from(Span::styled(h.by.clone(), who)),
            Cell::from(duration(h.duration_ms)),
            Cell::from(h.command.clone()),
        ])
    });
    let widths = [
        ratatui::layout::Constraint::Length(5),
        ratatui::layout::Constraint::Length(5),
        ratatui::layout::Constraint::Length(7),
        ratatui::layout::Constraint::Min(10),
    ];
    f.render_widget(Table::new(rows, widths).block(block), area);
}

/// Draws the taken-over session over the whole terminal: a one-line bar, then its screen.
pub fn draw_zoomed(f: &mut Frame, app: &App) {
    let area = f.area();
    let id = app.watched.as_deref().unwrap_or_default();
    let size = app
        .screen
        .as_ref()
        .map(|s| {
            let (r, c) = s.screen().size();
            format!(" · {c}x{r}")
        })
        .unwrap_or_default();
    let bar = Line::from(Span::styled(
        format!(" {id} · YOU ARE TYPING (human control){size} · Ctrl-] dashboard · the agent's size returns on hand-back (r)"),
        Style::default()
            .fg(Color::Black)
            .bg(Color::LightRed)
            .add_modifier(Modifier::BOLD),
    ));
    let top = Rect { height: 1, ..area };
    f.render_widget(Paragraph::new(bar), top);
    let rest = Rect {
        y: area.y + 1,
        height: area.height.saturating_sub(1),
        ..area
    };
    match &app.screen {
        Some(s) => draw_anchored(f.buffer_mut(), rest, s.screen()),
        None => f.render_widget(Paragraph::new("waiting for the session's screen…"), rest),
    }
}
