//! `agentssh attach -s ID [--read-only]`: one session full-screen in this terminal.
//!
//! The screen is drawn from our own vt100 model (a keyframe, then live output), so remote
//! escape sequences never reach this terminal raw. A read-write attach takes control like
//! the dashboard does (agents get `session_taken_over`) and releases it when it ends, however
//! it ends. Ctrl-] detaches.

use base64::Engine;
use crossterm::event::{Event as TermEvent, EventStream};
use futures::StreamExt;
use ratatui::layout::{Constraint, Direction, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::Paragraph;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use super::{keymap, open_watch, send_on, TerminalGuard};
use crate::error::{Error, Result};
use crate::protocol::{ClientToDaemon, WatchEvent};
use crate::screen::Screen;

/// How an attach ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The user pressed Ctrl-].
    Detached,
    /// The session or the daemon went away.
    SessionEnded,
    /// A signal asked us to stop.
    Signalled,
}

/// A read-write attach sizes the session to this terminal (less the status bar), as tmux
/// does for its active client; read-only viewers never change what the agent sees.
async fn fit_session(session: &str) {
    let Ok((cols, rows)) = crossterm::terminal::size() else {
        return;
    };
    let req = crate::protocol::Request::Resize {
        session: session.to_string(),
        cols: cols.clamp(2, 500),
        rows: rows.saturating_sub(1).clamp(2, 300),
    };
    if let Ok(c) = crate::client::DaemonClient::connect_or_start("attach").await {
        let _ = c.request(req).await;
    }
}

/// Attaches to `session` until Ctrl-], the session's end, or a signal.
pub async fn run_attach(session: &str, read_only: bool) -> Result<Ended> {
    let (wtx, mut wrx) = mpsc::channel::<(u64, Option<WatchEvent>)>(512);
    // Open the stream before touching the terminal, so a bad id prints a normal error.
    let mut writer = open_watch(session, !read_only, "attach", 0, wtx).await?;
    let mut guard = TerminalGuard::enter()?;
    if !read_only {
        fit_session(session).await;
    }
    let mut screen: Option<Screen> = None;
    let mut status = String::new();
    let mut keys = EventStream::new();
    let mut term_sig =
        signal(SignalKind::terminate()).map_err(|e| Error::local_io("SIGTERM", &e))?;
    let mut hup_sig = signal(SignalKind::hangup()).map_err(|e| Error::local_io("SIGHUP", &e))?;
    let mut int_sig = signal(SignalKind::interrupt()).map_err(|e| Error::local_io("SIGINT", &e))?;
    let mode = if read_only {
        "read-only: your keys go nowhere"
    } else {
        "you control this session; agents are locked out"
    };
    let debug_panic = std::env::var("AGENTSSH_DEBUG_PANIC").is_ok_and(|v| v == "attach");
    let decode = |d: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(d)
            .unwrap_or_default()
    };
    loop {
        guard
            .term
            .draw(|f| {
                let rows = Layout::default()
                    .direction(Direction::Vertical)
                    .constraints([Constraint::Length(1), Constraint::Min(1)])
                    .split(f.area());
                let bar = format!(" agentssh attach {session} · {mode} · Ctrl-] detach {status}");
                let color = if read_only {
                    Color::Cyan
                } else {
                    Color::LightRed
                };
                f.render_widget(
                    Paragraph::new(bar).style(
                        Style::default()
                            .fg(Color::Black)
                            .bg(color)
                            .add_modifier(Modifier::BOLD),
                    ),
                    rows[0],
                );
                match &screen {
                    Some(s) => super::view::draw_anchored(f.buffer_mut(), rows[1], s.screen()),
                    None => f.render_widget(
                        Paragraph::new("waiting for the session's screen…"),
                        rows[1],
                    ),
                }
            })
            .map_err(|e| Error::local_io("drawing", &e))?;
        if debug_panic {
            panic!("AGENTSSH_DEBUG_PANIC=attach: forced panic inside attach");
        }
        tokio::select! {
            ev = keys.next() => match ev {
                Some(Ok(TermEvent::Key(k))) if k.kind != crossterm::event::KeyEventKind::Release => {
                    if keymap::is_escape_key(&k) {
                        return Ok(Ended::Detached);
                    }
                    if !read_only {
                        if let Some(bytes) = keymap::key_to_bytes(&k) {
                            let data = base64::engine::general_purpose::STANDARD.encode(bytes);
                            send_on(&mut writer, &ClientToDaemon::Input { data }).await?;
                        }
                    }
                }
                Some(Ok(TermEvent::Resize(..))) if !read_only => fit_session(session).await,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Ok(Ended::Signalled),
            },
            w = wrx.recv() => match w {
                Some((_, Some(WatchEvent::Keyframe { data, cols, rows }))) => {
                    let mut s = Screen::new(rows, cols, 0);
                    s.feed(&decode(&data));
                    screen = Some(s);
                }
                Some((_, Some(WatchEvent::Output { data }))) => {
                    if let Some(s) = &mut screen { s.feed(&decode(&data)); }
                }
                Some((_, Some(WatchEvent::Resized { cols, rows }))) => {
                    if let Some(s) = &mut screen { s.resize(rows, cols); }
                }
                Some((_, Some(WatchEvent::Info(v)))) => {
                    status = format!("· {} · controller {}", v["status"].as_str().unwrap_or_default(), v["controller"].as_str().unwrap_or_default());
                }
                Some((_, None)) | None => return Ok(Ended::SessionEnded),
            },
            _ = term_sig.recv() => return Ok(Ended::Signalled),
            _ = hup_sig.recv() => return Ok(Ended::Signalled),
            _ = int_sig.recv() => return Ok(Ended::Signalled),
        }
    }
}
