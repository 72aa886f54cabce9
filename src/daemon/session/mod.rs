//! PTY sessions: the one home of session code. This module holds the types and the handle;
//! `actor` owns one session's state, `registry` maps ids and names to handles, `requests`
//! serves the protocol's session requests, `send` and `run` the two that type into a shell,
//! and `running` hides a run's machinery.
//!
//! One PTY session is owned by one actor task.
//!
//! The actor owns the PTY channel, the session's output model (raw ring, clean log, vt100
//! screen; see [`crate::screen`]), the agent's read cursor, the controller (agent or human)
//! and the subscribers (dashboard, attach). It drains the channel continuously into its own
//! bounded buffers, so a slow reader never stalls the connection or another session.
//! Everything that waits (wait-idle, expect, follow, run) waits outside the actor on the
//! [`Tick`] watch channel and asks again, so the actor never blocks on a client.

use std::sync::Arc;

use bytes::Bytes;
use russh::Sig;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};

mod actor;
pub mod ask;
pub mod attention;
pub mod integration;
pub mod marks;
pub mod registry;
pub mod requests;
pub mod run;
mod running;
pub mod send;
pub mod wait;

use super::pool::Pool;
use crate::error::{Error, ErrorCode, Result};
use crate::screen::{LogRead, ScreenSnapshot};
use crate::wire::spec::ConnectSpec;
use actor::{open_pty, spawn_actor};
use attention::{HistoryEntry, State};
use marks::Mark;

pub use registry::Registry;

/// Longest input one `send` may carry.
pub const MAX_INPUT: usize = 1024 * 1024;
/// Longest any wait may last, whatever the client asked.
pub const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Session lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Shell up.
    Running,
    /// Connection lost and not coming back (no `--reconnect`).
    Disconnected,
    /// Connection lost; reconnecting.
    Reconnecting,
    /// Shell exited or session closed.
    Closed,
}

/// Who may type into the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Controller {
    /// The agent (CLI) drives it.
    Agent,
    /// A human took over (dashboard or attach) at `since_ms`.
    Human {
        /// When control was taken, ms since epoch.
        since_ms: u64,
        /// Which client holds it, e.g. `tui:1234`.
        holder: String,
    },
}

/// What changes a waiter may care about; bumped by the actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Raw bytes received so far.
    pub raw_total: u64,
    /// Status now.
    pub status: Status,
    /// Run marks seen so far (for `session run`).
    pub markers: u64,
    /// What the session is doing.
    pub state: State,
    /// Shell integration is being installed (agent input waits for it).
    pub installing: bool,
}

/// An event for a subscriber.
#[derive(Debug, Clone)]
pub enum Event {
    /// Raw PTY bytes, in order.
    Output(Bytes),
    /// The subscriber fell behind: here is the whole screen again; continue from it.
    Keyframe(Vec<u8>),
    /// The PTY size changed.
    Resized {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Status or controller changed.
    Changed,
    /// Something a recording notes beside the output; watchers ignore it.
    Note(Note),
}

/// What a session's recording marks beside its output (see [`crate::daemon::record`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Input was written: who wrote it and how many bytes, never the bytes themselves.
    Input {
        /// Agent or human.
        who: Writer,
        /// Bytes written.
        bytes: usize,
    },
    /// A human took control (`Some(holder)`) or control went back to agents (`None`).
    Control(Option<String>),
    /// A `session run` started; its command's length in bytes.
    RunStarted(usize),
    /// A `session run` ended, with its exit status when its end marker arrived.
    RunEnded(Option<i32>),
}

/// The longest client kind a session keeps: hellos carry any string, the listing stays small.
pub const CLIENT_KIND_MAX: usize = 32;

/// Static facts about a session, fixed at creation.
#[derive(Debug, Clone)]
pub struct SessionMeta {
    /// `s1`, ...
    pub id: String,
    /// Optional human name.
    pub name: Option<String>,
    /// How to reach the server (for reconnect and `session exec`).
    pub spec: ConnectSpec,
    /// Reconnect after a drop.
    pub reconnect: bool,
    /// Install shell integration (prompt and command marks) in the shell.
    pub shell_integration: bool,
    /// The nonce every mark of this session carries (see [`marks`]).
    pub nonce: String,
    /// Recorded to disk (not with `connect --no-record`).
    pub record: bool,
    /// The kind of client that opened it (`cli`, `mcp`, `tui`, ...: the `client` of its
    /// hello, at most [`CLIENT_KIND_MAX`] characters).
    pub client: String,
    /// Created, ms since epoch.
    pub created_at: u64,
    /// The registry's change counter, bumped with every tick (the dashboard feed waits on it).
    pub changes: watch::Sender<u64>,
}

/// Session metadata as the CLI shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    /// Id.
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// Pooled connection id.
    pub connection_id: String,
    /// The kind of client that opened the session (`cli`, `mcp`, `tui`, ...). New in this
    /// protocol version; readers take a missing field (an older daemon) as unknown.
    pub client: String,
    /// Other sessions on the same connection (filled by the registry).
    pub shared_with: Vec<String>,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User.
    pub username: String,
    /// Status.
    pub status: Status,
    /// `agent` or `human`.
    pub controller: &'static str,
    /// When a human took control, ms since epoch.
    pub controlled_since: Option<u64>,
    /// Clean bytes committed so far.
    pub output_bytes: u64,
    /// The agent's read cursor.
    pub cursor: u64,
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
    /// Reconnects so far.
    pub reconnects: u32,
    /// The last line an agent sent, for the dashboard.
    pub last_input: Option<String>,
    /// Created, ms since epoch.
    pub created_at: u64,
    /// Last output or input, ms since epoch.
    pub updated_at: u64,
    /// What the session is doing: prompt, busy, input or closed.
    pub state: State,
    /// Since when, ms since epoch.
    pub state_since: u64,
    /// Exit status of the last command that finished at the prompt (null until one did).
    pub last_exit_status: Option<i32>,
    /// Whether the shell's prompt and command marks are installed and seen.
    pub shell_integration: bool,
    /// The agent's open request for a human, if any.
    pub needs_human: Option<NeedsHuman>,
}

/// An agent's request for a human (`session ask`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NeedsHuman {
    /// Request id (`h1`, ...), unique within the session.
    pub request: String,
    /// What the agent needs.
    pub message: String,
    /// Since when, ms since epoch.
    pub since: u64,
}

/// How a request for a human ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolution {
    /// The request id.
    pub request: String,
    /// `human` (took control and handed it back) or `dismissed`.
    pub resolved_by: &'static str,
    /// How long the human held control (0 when dismissed).
    pub held_ms: u64,
}

/// Who is writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// An agent through the CLI: refused while a human holds control.
    Agent,
    /// The human holding control (dashboard or read-write attach).
    Human,
}

/// A read request.
#[derive(Debug, Clone, Copy)]
pub struct ReadSpec {
    /// Absolute offset; None = the agent cursor (which then advances).
    pub offset: Option<u64>,
    /// Most bytes to return.
    pub limit: usize,
    /// Raw bytes instead of clean text.
    pub raw: bool,
}

/// What a read returns.
#[derive(Debug, Clone, Serialize)]
pub struct ReadResult {
    /// Where this chunk starts.
    pub offset: u64,
    /// Where the next read starts.
    pub next_offset: u64,
    /// Bytes lost to trimming between the requested offset and `offset`.
    pub dropped_bytes: u64,
    /// The text (lossy UTF-8 for raw).
    pub output: String,
    /// Raw reads: the bytes, base64, when not valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_b64: Option<String>,
    /// The unterminated last line (e.g. the prompt), not yet counted in offsets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
}

pub(crate) enum Cmd {
    Write {
        data: Bytes,
        who: Writer,
        note: Option<String>,
        reply: oneshot::Sender<Result<()>>,
    },
    Read {
        spec: ReadSpec,
        reply: oneshot::Sender<ReadResult>,
    },
    CleanRange {
        from: u64,
        reply: oneshot::Sender<(LogRead, u64)>,
    },
    RunMark {
        run: String,
        end: bool,
        reply: oneshot::Sender<Option<Mark>>,
    },
    /// Types the shell-integration hooks, hidden until the first prompt they mark.
    Install {
        line: Bytes,
        reply: oneshot::Sender<Result<()>>,
    },
    History {
        limit: usize,
        reply: oneshot::Sender<Vec<HistoryEntry>>,
    },
    Ask {
        message: String,
        reply: oneshot::Sender<String>,
    },
    /// Installing shell integration failed: go on with heuristics.
    IntegrationFailed,
    /// The id of the run or job the session is busy with, if any.
    ActiveRun {
        reply: oneshot::Sender<Option<String>>,
    },
    /// With `dismiss`, dismisses the open request; with `request`, says how it ended.
    AskState {
        dismiss: bool,
        request: Option<String>,
        reply: oneshot::Sender<Option<Resolution>>,
    },
    Screen {
        reply: oneshot::Sender<ScreenSnapshot>,
    },
    Resize {
        cols: u16,
        rows: u16,
        reply: oneshot::Sender<Result<()>>,
    },
    Signal {
        sig: Sig,
        reply: oneshot::Sender<Result<()>>,
    },
    Info {
        reply: oneshot::Sender<SessionInfo>,
    },
    Subscribe {
        reply: oneshot::Sender<(Vec<u8>, mpsc::Receiver<Event>, u16, u16)>,
    },
    Control {
        holder: String,
        take: bool,
        reply: oneshot::Sender<Result<Controller>>,
    },
    /// Types a `session run` wrapper line and marks the session busy until its end marker.
    BeginRun {
        run: String,
        command: String,
        line: Bytes,
        reply: oneshot::Sender<Result<()>>,
    },
    /// The run `nonce` is over (timed out, failed or its caller left): the session is free.
    EndRun {
        run: String,
    },
    ConnectionHandle {
        reply: oneshot::Sender<Option<Arc<super::pool::PooledConn>>>,
    },
    Close {
        reply: oneshot::Sender<()>,
    },
}

/// A cheap handle to a session actor.
#[derive(Clone)]
pub struct SessionHandle {
    /// Static facts.
    pub meta: Arc<SessionMeta>,
    tx: mpsc::Sender<Cmd>,
    tick: watch::Receiver<Tick>,
}

fn closed_err(id: &str) -> Error {
    Error::new(ErrorCode::SessionClosed, format!("session {id} is closed"))
}

impl SessionHandle {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| closed_err(&self.meta.id))?;
        rx.await.map_err(|_| closed_err(&self.meta.id))
    }

    /// Writes input; an agent is refused while a human holds control. Input that meets the
    /// installation of shell integration waits for it (a few seconds at most) instead of
    /// failing.
    pub async fn write(&self, data: Bytes, who: Writer, note: Option<String>) -> Result<()> {
        let first = self
            .ask(|reply| Cmd::Write {
                data: data.clone(),
                who,
                note: note.clone(),
                reply,
            })
            .await?;
        if !self.waited_for_install(&first).await {
            return first;
        }
        self.ask(|reply| Cmd::Write {
            data,
            who,
            note,
            reply,
        })
        .await?
    }

    /// When `result` is a refusal because shell integration is being installed, waits until
    /// that is over and returns true (the caller tries once more).
    async fn waited_for_install(&self, result: &Result<()>) -> bool {
        let busy = matches!(result, Err(e) if e.code == ErrorCode::SessionBusy);
        if !busy || !self.tick.borrow().installing {
            return false;
        }
        let deadline = tokio::time::Instant::now() + integration::INSTALL_TIMEOUT * 2;
        let _ = self.wait_tick(deadline, |t| !t.installing).await;
        true
    }

    /// Waits, on the tick channel, until `done` holds for the session's tick: `Ok` with that
    /// tick, or `Err` with the last one when `by` passes or the actor has ended.
    pub(crate) async fn wait_tick(
        &self,
        by: tokio::time::Instant,
        done: impl Fn(&Tick) -> bool,
    ) -> std::result::Result<Tick, Tick> {
        let mut ticks = self.tick.clone();
        loop {
            let tick = *ticks.borrow_and_update();
            if done(&tick) {
                return Ok(tick);
            }
            match tokio::time::timeout_at(by, ticks.changed()).await {
                Ok(Ok(())) => {}
                _ => return Err(tick),
            }
        }
    }
    /// Reads output.
    pub async fn read(&self, spec: ReadSpec) -> Result<ReadResult> {
        self.ask(|reply| Cmd::Read { spec, reply }).await
    }
    /// Clean text from `from` to the committed end (no cursor change), and the pending line
    /// length in bytes.
    pub(crate) async fn clean_range(&self, from: u64) -> Result<(LogRead, u64)> {
        self.ask(|reply| Cmd::CleanRange { from, reply }).await
    }
    /// The end (`end`) or begin mark of the run `run`, if seen.
    pub(crate) async fn run_mark(&self, run: &str, end: bool) -> Result<Option<Mark>> {
        let run = run.to_string();
        self.ask(|reply| Cmd::RunMark { run, end, reply }).await
    }
    /// Types the shell-integration hooks `line` (hidden from every reader).
    pub(crate) async fn install(&self, line: Bytes) -> Result<()> {
        self.ask(|reply| Cmd::Install { line, reply }).await?
    }
    /// Says that shell integration could not be installed (the state then comes from
    /// heuristics).
    pub(crate) async fn integration_failed(&self) {
        let _ = self.tx.send(Cmd::IntegrationFailed).await;
    }
    /// The id of the `session run` or job in flight, if any.
    pub(crate) async fn active_run(&self) -> Result<Option<String>> {
        self.ask(|reply| Cmd::ActiveRun { reply }).await
    }
    /// Marks the session as needing a human; returns the request id.
    pub async fn ask_human(&self, message: String) -> Result<String> {
        self.ask(|reply| Cmd::Ask { message, reply }).await
    }
    /// Dismisses the open request for a human, if any; returns how it ended.
    pub async fn dismiss(&self) -> Result<Option<Resolution>> {
        self.ask(|reply| Cmd::AskState {
            dismiss: true,
            request: None,
            reply,
        })
        .await
    }
    /// How request `request` ended, or None while it is open.
    pub async fn resolution(&self, request: &str) -> Result<Option<Resolution>> {
        let request = Some(request.to_string());
        self.ask(|reply| Cmd::AskState {
            dismiss: false,
            request,
            reply,
        })
        .await
    }
    /// The last `limit` commands that ran at the prompt, oldest first.
    pub async fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>> {
        self.ask(|reply| Cmd::History { limit, reply }).await
    }
    /// Types the wrapper `line` of a `session run` of `command`; refused (`session_busy`)
    /// while another run is in flight, and while a human holds control.
    pub(crate) async fn begin_run(&self, run: &str, command: &str, line: Bytes) -> Result<()> {
        let ask = |reply| Cmd::BeginRun {
            run: run.to_string(),
            command: command.to_string(),
            line: line.clone(),
            reply,
        };
        let first = self.ask(ask).await?;
        if !self.waited_for_install(&first).await {
            return first;
        }
        self.ask(ask).await?
    }
    /// Ends the run `nonce` (idempotent). It does not wait, so a drop guard can call it: the
    /// command is queued from a task of its own.
    pub(crate) fn end_run(&self, run: &str) {
        let tx = self.tx.clone();
        let run = run.to_string();
        tokio::spawn(async move {
            let _ = tx.send(Cmd::EndRun { run }).await;
        });
    }
    /// Ends the run `nonce` before any later command to this session is handled.
    pub(crate) async fn end_run_now(&self, run: &str) {
        let run = run.to_string();
        let _ = self.tx.send(Cmd::EndRun { run }).await;
    }
    /// The rendered screen.
    pub async fn screen(&self) -> Result<ScreenSnapshot> {
        self.ask(|reply| Cmd::Screen { reply }).await
    }
    /// Resizes the PTY and the screen model.
    pub async fn resize(&self, cols: u16, rows: u16) -> Result<()> {
        self.ask(|reply| Cmd::Resize { cols, rows, reply }).await?
    }
    /// Sends a signal (INT/QUIT/TSTP as control characters, TERM/KILL close the channel).
    pub async fn signal(&self, sig: Sig) -> Result<()> {
        self.ask(|reply| Cmd::Signal { sig, reply }).await?
    }
    /// Metadata.
    pub async fn info(&self) -> Result<SessionInfo> {
        self.ask(|reply| Cmd::Info { reply }).await
    }
    /// A keyframe plus the live event stream, and the current size.
    pub async fn subscribe(&self) -> Result<(Vec<u8>, mpsc::Receiver<Event>, u16, u16)> {
        self.ask(|reply| Cmd::Subscribe { reply }).await
    }
    /// Takes (`take`) or releases control for `holder`, a token unique to one watcher.
    /// Agents get control back only when the last human holder has released it.
    pub async fn control(&self, holder: &str, take: bool) -> Result<Controller> {
        let holder = holder.to_string();
        self.ask(|reply| Cmd::Control {
            holder,
            take,
            reply,
        })
        .await?
    }
    /// The session's current pooled connection.
    pub async fn connection(&self) -> Result<Arc<super::pool::PooledConn>> {
        self.ask(|reply| Cmd::ConnectionHandle { reply })
            .await?
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::SessionClosed,
                    format!("session {} has no live connection", self.meta.id),
                )
            })
    }
    /// Closes the session.
    pub async fn close(&self) {
        let _ = self.ask(|reply| Cmd::Close { reply }).await;
    }
    /// A receiver of change ticks.
    pub fn ticks(&self) -> watch::Receiver<Tick> {
        self.tick.clone()
    }
    /// Whether the actor has ended.
    pub fn is_gone(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Opens the PTY and starts the actor.
pub async fn start(
    pool: Pool,
    meta: SessionMeta,
    retry: u32,
    cols: u16,
    rows: u16,
) -> Result<SessionHandle> {
    let pty = open_pty(&pool, &meta.spec, retry, cols, rows).await?;
    Ok(spawn_actor(pool, meta, pty, cols, rows))
}
