//! The human faces: the dashboard (`agentssh` / `agentssh tui`) and `agentssh attach`.
//!
//! Only this module touches ratatui and crossterm. The terminal is restored on every exit
//! path: normal return, error, panic (via the CLI's panic cleanup hook) and
//! SIGTERM/SIGHUP/SIGINT (handled in the event loop). Remote bytes never reach the host
//! terminal: sessions are drawn as cells from our own vt100 model.

pub mod app;
pub mod approvals;
pub mod attach;
pub mod attention;
pub mod keymap;
mod panes;
pub mod replay;
mod rows;
pub mod view;

use std::io::Stdout;

use base64::Engine;
use crossterm::event::{Event as TermEvent, EventStream};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use futures::StreamExt;
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use tokio::net::unix::OwnedWriteHalf;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::client::{recv_from, DaemonClient};
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::{self, ActivityEntry, ClientToDaemon, DaemonToClient, Request, WatchEvent};
use app::{App, Effect};

/// The terminal type we draw on.
pub type Term = Terminal<CrosstermBackend<Stdout>>;

fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// Raw mode + alternate screen for as long as it lives.
pub struct TerminalGuard {
    /// The ratatui terminal.
    pub term: Term,
}

impl TerminalGuard {
    /// Enters raw mode and the alternate screen, and arms the panic cleanup.
    pub fn enter() -> Result<Self> {
        let io = |e: std::io::Error| Error::local_io("cannot set up the terminal", &e);
        enable_raw_mode().map_err(io)?;
        crate::panic_cleanup::set_panic_cleanup(Some(Box::new(restore_terminal)));
        if let Err(e) = execute!(std::io::stdout(), EnterAlternateScreen) {
            restore_terminal();
            return Err(io(e));
        }
        let term = Terminal::new(CrosstermBackend::new(std::io::stdout())).map_err(io)?;
        Ok(TerminalGuard { term })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
        crate::panic_cleanup::set_panic_cleanup(None);
    }
}

/// Messages from the daemon streams to the event loop.
enum Msg {
    Overview(serde_json::Value),
    Activity(ActivityEntry),
    Note(String),
    FeedEnded(String),
    History(String, serde_json::Value),
    /// A recording loaded for replay (session id, recording).
    Replay(String, Box<crate::cast::Cast>),
}

/// Opens a watch stream; returns the writer (for input/control) and spawns the reader.
pub async fn open_watch(
    session: &str,
    take_control: bool,
    kind: &str,
    generation: u64,
    tx: mpsc::Sender<(u64, Option<WatchEvent>)>,
) -> Result<OwnedWriteHalf> {
    let mut client = DaemonClient::connect_or_start(kind).await?;
    client
        .send(&ClientToDaemon::Request(Request::Watch {
            session: session.to_string(),
            take_control,
        }))
        .await?;
    let (mut reader, writer) = client.split().await?;
    // The first frame says whether the watch started; a refusal is the caller's error.
    match recv_from(&mut reader).await? {
        DaemonToClient::Watch(ev) => {
            let _ = tx.send((generation, Some(ev))).await;
        }
        DaemonToClient::Response(crate::protocol::Response::Err { error, .. }) => {
            return Err(error)
        }
        _ => {
            return Err(Error::new(
                ErrorCode::DaemonUnavailable,
                "unexpected answer to a watch request",
            ))
        }
    }
    tokio::spawn(async move {
        loop {
            match recv_from(&mut reader).await {
                Ok(DaemonToClient::Watch(ev)) => {
                    if tx.send((generation, Some(ev))).await.is_err() {
                        return;
                    }
                }
                Ok(DaemonToClient::Response(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = tx.send((generation, None)).await;
    });
    Ok(writer)
}

/// Sends one frame on a watch writer.
pub async fn send_on(writer: &mut OwnedWriteHalf, frame: &ClientToDaemon) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let bytes = protocol::encode(frame)?;
    writer.write_all(&bytes).await.map_err(|e| {
        Error::new(
            ErrorCode::DaemonUnavailable,
            format!("lost the session stream: {e}"),
        )
    })
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn feed(tx: mpsc::Sender<Msg>) {
    let mut client = match DaemonClient::connect_or_start("tui").await {
        Ok(c) => c,
        Err(e) => {
            let _ = tx.send(Msg::FeedEnded(e.message)).await;
            return;
        }
    };
    if let Err(e) = client.send(&ClientToDaemon::Request(Request::Events)).await {
        let _ = tx.send(Msg::FeedEnded(e.message)).await;
        return;
    }
    loop {
        let msg = match client.recv().await {
            Ok(DaemonToClient::Data(v)) => Msg::Overview(v),
            Ok(DaemonToClient::Activity(e)) => Msg::Activity(e),
            Ok(DaemonToClient::Response(_)) => Msg::FeedEnded("the daemon stopped".into()),
            Ok(_) => continue,
            Err(e) => Msg::FeedEnded(e.message),
        };
        let end = matches!(msg, Msg::FeedEnded(_));
        if tx.send(msg).await.is_err() || end {
            return;
        }
    }
}

fn one_shot(req: Request, done: String, tx: mpsc::Sender<Msg>) {
    tokio::spawn(async move {
        let note = match DaemonClient::connect_or_start("tui").await {
            Ok(c) => match c.request(req).await.map(crate::client::into_result) {
                Ok(Ok(_)) => done,
                Ok(Err((e, _))) | Err(e) => format!("failed: {}", e.message),
            },
            Err(e) => format!("failed: {}", e.message),
        };
        let _ = tx.send(Msg::Note(note)).await;
    });
}

/// Fetches a session's recent history for the history pane; failures leave it as it was.
fn fetch_history(session: String, tx: mpsc::Sender<Msg>) {
    tokio::spawn(async move {
        let req = Request::History {
            session: session.clone(),
            limit: attention::HISTORY_FETCHED,
        };
        if let Ok(c) = DaemonClient::connect_or_start("tui").await {
            if let Ok(Ok(v)) = c.request(req).await.map(crate::client::into_result) {
                let _ = tx.send(Msg::History(session, v)).await;
            }
        }
    });
}

/// Resizes a session's PTY, waiting for the answer so a hand-back's resize lands before
/// the agent gets control back.
async fn resize(session: &str, cols: u16, rows: u16) -> Option<String> {
    let req = Request::Resize {
        session: session.to_string(),
        cols,
        rows,
    };
    let c = match DaemonClient::connect_or_start("tui").await {
        Ok(c) => c,
        Err(e) => return Some(e.message),
    };
    match c.request(req).await.map(crate::client::into_result) {
        Ok(Ok(_)) => None,
        Ok(Err((e, _))) | Err(e) => Some(format!("resize failed: {}", e.message)),
    }
}

/// One BEL to the real terminal (ratatui never writes one).
fn bell() {
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = out.write_all(b"\x07");
    let _ = out.flush();
}

/// Pauses longer than this are shortened in the dashboard's replay.
const DASHBOARD_IDLE_LIMIT: f64 = 2.0;

/// Loads a recording off the event loop (asking the daemon where a live one is).
fn load_replay(session: String, path: Option<String>, tx: mpsc::Sender<Msg>) {
    tokio::spawn(async move {
        let path = match path {
            Some(p) => Ok(std::path::PathBuf::from(p)),
            None => locate_recording(&session).await,
        };
        let loaded = match path {
            Ok(p) => tokio::task::spawn_blocking(move || crate::cast::Cast::read(&p))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string())),
            Err(e) => Err(e),
        };
        let msg = match loaded {
            Ok(cast) => Msg::Replay(session, Box::new(cast)),
            Err(e) => Msg::Note(format!("cannot replay {session}: {e}")),
        };
        let _ = tx.send(msg).await;
    });
}

async fn locate_recording(session: &str) -> std::result::Result<std::path::PathBuf, String> {
    let c = DaemonClient::connect_or_start("tui")
        .await
        .map_err(|e| e.message)?;
    let req = Request::RecordingLocate {
        session: session.to_string(),
    };
    let v = crate::client::into_result(c.request(req).await.map_err(|e| e.message)?)
        .map_err(|(e, _)| e.message)?;
    v["path"]
        .as_str()
        .map(std::path::PathBuf::from)
        .ok_or_else(|| "the daemon sent no path".to_string())
}

fn connect_request(profile: &str) -> Result<Request> {
    let args = crate::target::ConnectArgs {
        profile: Some(profile.to_string()),
        ready_timeout_ms: 15_000,
        ..Default::default()
    };
    let spec = crate::target::resolve(&args)?;
    Ok(Request::Connect {
        spec: Box::new(spec),
        retry: 0,
        name: None,
        cols: 120,
        rows: 40,
        wait_ms: 0,
        limit: 0,
        reconnect: false,
        shell_integration: true,
        no_record: false,
    })
}

/// Runs the dashboard until the user quits or a signal arrives.
pub async fn run_dashboard() -> Result<()> {
    // Make sure the daemon runs before taking over the terminal, so errors print normally.
    drop(DaemonClient::connect_or_start("tui").await?);
    let mut guard = TerminalGuard::enter()?;
    let (tx, mut rx) = mpsc::channel::<Msg>(256);
    tokio::spawn(feed(tx.clone()));
    let (wtx, mut wrx) = mpsc::channel::<(u64, Option<WatchEvent>)>(512);
    let mut watch_writer: Option<OwnedWriteHalf> = None;
    let mut generation = 0u64;
    let mut keys = EventStream::new();
    let mut term_sig =
        signal(SignalKind::terminate()).map_err(|e| Error::local_io("SIGTERM", &e))?;
    let mut hup_sig = signal(SignalKind::hangup()).map_err(|e| Error::local_io("SIGHUP", &e))?;
    let mut int_sig = signal(SignalKind::interrupt()).map_err(|e| Error::local_io("SIGINT", &e))?;
    let mut app = App {
        // Set by `agentssh demo` for the dashboard it opens.
        banner: std::env::var("AGENTSSH_DASHBOARD_BANNER").ok(),
        ..App::default()
    };
    let debug_panic = std::env::var("AGENTSSH_DEBUG_PANIC").is_ok_and(|v| v == "tui");
    let io = |e: std::io::Error| Error::local_io("drawing the dashboard", &e);
    let mut last_tick = std::time::Instant::now();
    loop {
        app.now_ms = crate::now_ms();
        if let Ok(size) = crossterm::terminal::size() {
            app.term_size = size;
        }
        let now = std::time::Instant::now();
        app.tick_replay(now - last_tick);
        last_tick = now;
        // While a replay plays, wake for its next event (and every 250 ms for its clock).
        let replay_wait = app
            .replay
            .as_ref()
            .and_then(|(_, p)| p.until_next())
            .map(|d| d.min(std::time::Duration::from_millis(250)));
        guard.term.draw(|f| view::draw(f, &app)).map_err(io)?;
        if debug_panic {
            panic!("AGENTSSH_DEBUG_PANIC=tui: forced panic inside the dashboard");
        }
        let effects = tokio::select! {
            ev = keys.next() => match ev {
                Some(Ok(TermEvent::Key(k))) => app.on_key(k),
                Some(Ok(TermEvent::Resize(c, r))) => app.on_term_resize(c, r),
                Some(Ok(_)) => Vec::new(),
                Some(Err(_)) | None => app.on_signal_quit(),
            },
            msg = rx.recv() => match msg {
                Some(Msg::Overview(v)) => app.on_overview(&v),
                Some(Msg::Activity(e)) => { app.on_activity(e); Vec::new() }
                Some(Msg::Note(n)) => { app.message = Some(n); Vec::new() }
                Some(Msg::History(id, v)) => { app.on_history(&id, &v); Vec::new() }
                Some(Msg::Replay(id, cast)) => {
                    app.message = None;
                    app.start_replay(id, replay::Player::new(*cast, 1.0, Some(DASHBOARD_IDLE_LIMIT)));
                    Vec::new()
                }
                Some(Msg::FeedEnded(why)) => {
                    app.message = Some(format!("daemon feed ended: {why}"));
                    Vec::new()
                }
                None => Vec::new(),
            },
            w = wrx.recv() => match w {
                Some((g, Some(ev))) if g == generation => app.on_watch(ev),
                Some((g, None)) if g == generation => { app.on_watch_ended(); watch_writer = None; Vec::new() }
                _ => Vec::new(),
            },
            _ = tokio::time::sleep(replay_wait.unwrap_or_default()), if replay_wait.is_some() => Vec::new(),
            // Redraw every second while approvals wait, so their waiting times count up.
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)), if !app.approvals.pending.is_empty() => Vec::new(),
            _ = term_sig.recv() => app.on_signal_quit(),
            _ = hup_sig.recv() => app.on_signal_quit(),
            _ = int_sig.recv() => app.on_signal_quit(),
        };
        for effect in effects {
            match effect {
                Effect::Quit => return Ok(()),
                Effect::Watch(target) => {
                    generation += 1;
                    // Dropping the old writer closes that stream; the daemon releases any
                    // control it held.
                    watch_writer = None;
                    if let Some(id) = target {
                        match open_watch(&id, false, "tui", generation, wtx.clone()).await {
                            Ok(w) => watch_writer = Some(w),
                            Err(e) => {
                                app.message = Some(format!("cannot watch {id}: {}", e.message))
                            }
                        }
                    }
                }
                Effect::Input(bytes) => {
                    if let Some(w) = &mut watch_writer {
                        let _ = send_on(w, &ClientToDaemon::Input { data: b64(&bytes) }).await;
                    }
                }
                Effect::Control(take) => match &mut watch_writer {
                    Some(w) => {
                        if let Err(e) = send_on(w, &ClientToDaemon::Control { take }).await {
                            app.message = Some(e.message);
                        }
                    }
                    None => app.message = Some("no session stream".into()),
                },
                Effect::CloseSession(id) => one_shot(
                    Request::Close {
                        session: Some(id.clone()),
                        all: false,
                    },
                    format!("closed {id}"),
                    tx.clone(),
                ),
                Effect::Interrupt(id) => one_shot(
                    Request::Signal {
                        session: id.clone(),
                        signal: "INT".into(),
                    },
                    format!("sent Ctrl-C to {id}"),
                    tx.clone(),
                ),
                Effect::CloseProxy(id) => one_shot(
                    Request::ProxyClose {
                        proxy: Some(id.clone()),
                        all: false,
                    },
                    format!("closed proxy {id}"),
                    tx.clone(),
                ),
                Effect::Bell => bell(),
                Effect::Decide {
                    id,
                    approve,
                    reason,
                    add_rule,
                } => {
                    let done = match (approve, add_rule) {
                        (true, true) => {
                            format!("approved {id}; its command is allowed from now on")
                        }
                        (true, false) => format!("approved {id}"),
                        (false, _) => format!("denied {id}"),
                    };
                    one_shot(
                        Request::ApprovalDecide {
                            id,
                            approve,
                            reason,
                            add_rule,
                        },
                        done,
                        tx.clone(),
                    )
                }
                Effect::Dismiss(id) => one_shot(
                    Request::Dismiss {
                        session: id.clone(),
                    },
                    format!("dismissed the request for a human on {id}"),
                    tx.clone(),
                ),
                Effect::History(id) => fetch_history(id, tx.clone()),
                Effect::Resize {
                    session,
                    cols,
                    rows,
                } => {
                    if let Some(e) = resize(&session, cols, rows).await {
                        app.message = Some(e);
                    }
                }
                Effect::Replay { session, path } => load_replay(session, path, tx.clone()),
                Effect::Connect(profile) => match connect_request(&profile) {
                    Ok(req) => one_shot(
                        req,
                        format!("opened a session from profile '{profile}'"),
                        tx.clone(),
                    ),
                    Err(e) => app.message = Some(e.message),
                },
            }
        }
    }
}

#[cfg(test)]
mod approvals_tests;
#[cfg(test)]
mod attention_tests;
#[cfg(test)]
mod tests;
