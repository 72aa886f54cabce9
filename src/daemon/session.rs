//! One PTY session, owned by one actor task.
//!
//! The actor owns the PTY channel, the session's output model (raw ring, clean log, vt100
//! screen; see [`crate::screen`]), the agent's read cursor, the controller (agent or human)
//! and the subscribers (dashboard, attach). It drains the channel continuously into its own
//! bounded buffers, so a slow reader never stalls the connection or another session.
//! Everything that waits (wait-idle, expect, follow, run) waits outside the actor on the
//! [`Tick`] watch channel and asks again, so the actor never blocks on a client.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use russh::client::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Sig};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};

use super::pool::{Lease, Pool};
use super::sessions::{Marker, MarkerScanner};
use crate::error::{Error, ErrorCode, Result};
use crate::screen::{CleanLog, LogRead, RawRing, Screen, ScreenSnapshot};
use crate::ssh::spec::ConnectSpec;

/// Queue of one subscriber (dashboard or attach), in events.
const SUBSCRIBER_QUEUE: usize = 256;
/// Scrollback lines kept by each session's screen.
const SCROLLBACK: usize = 1000;
/// Failed reconnect attempts before the session gives up (about an hour at the maximum backoff).
const MAX_RECONNECT_ATTEMPTS: u32 = 120;
/// Longest pause between reconnect attempts.
const MAX_RECONNECT_BACKOFF: Duration = Duration::from_secs(30);

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
    /// Markers seen so far (for `session run`).
    pub markers: u64,
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
}

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
    MarkerAt {
        nonce: String,
        end: bool,
        reply: oneshot::Sender<Option<Marker>>,
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

    /// Writes input; an agent is refused while a human holds control.
    pub async fn write(&self, data: Bytes, who: Writer, note: Option<String>) -> Result<()> {
        self.ask(|reply| Cmd::Write {
            data,
            who,
            note,
            reply,
        })
        .await?
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
    /// The end marker with this nonce, if seen.
    pub(crate) async fn marker(&self, nonce: String) -> Result<Option<Marker>> {
        self.ask(|reply| Cmd::MarkerAt {
            nonce,
            end: true,
            reply,
        })
        .await
    }
    /// The begin marker with this nonce, if seen.
    pub(crate) async fn begin_marker(&self, nonce: &str) -> Result<Option<Marker>> {
        let nonce = nonce.to_string();
        self.ask(|reply| Cmd::MarkerAt {
            nonce,
            end: false,
            reply,
        })
        .await
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

struct Subscriber {
    tx: mpsc::Sender<Event>,
    behind: bool,
}

/// A live PTY on a leased connection.
struct Pty {
    lease: Lease,
    reader: ChannelReadHalf,
    writer: ChannelWriteHalf<Msg>,
}

async fn open_pty(
    pool: &Pool,
    spec: &ConnectSpec,
    retry: u32,
    cols: u16,
    rows: u16,
) -> Result<Pty> {
    let lease = pool.acquire(spec, retry).await?;
    let channel = lease
        .conn
        .handle()
        .channel_open_session()
        .await
        .map_err(|e| {
            Error::new(
                ErrorCode::ConnectFailed,
                format!("cannot open a PTY channel: {e}"),
            )
        })?;
    let (reader, writer) = channel.split();
    let fail =
        |e: russh::Error| Error::new(ErrorCode::ConnectFailed, format!("PTY setup failed: {e}"));
    writer
        .request_pty(
            false,
            "xterm-256color",
            u32::from(cols),
            u32::from(rows),
            0,
            0,
            &[],
        )
        .await
        .map_err(fail)?;
    writer.request_shell(false).await.map_err(fail)?;
    Ok(Pty {
        lease,
        reader,
        writer,
    })
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

fn spawn_actor(pool: Pool, meta: SessionMeta, pty: Pty, cols: u16, rows: u16) -> SessionHandle {
    let (tx, rx) = mpsc::channel(64);
    let (tick_tx, tick) = watch::channel(Tick {
        raw_total: 0,
        status: Status::Running,
        markers: 0,
    });
    let meta = Arc::new(meta);
    let actor = Actor {
        meta: meta.clone(),
        pool,
        pty: Some(pty),
        raw: RawRing::new(crate::screen::DEFAULT_RAW_CAP),
        log: CleanLog::with_width(cols),
        screen: Screen::new(rows, cols, SCROLLBACK),
        scanner: MarkerScanner::default(),
        markers: Vec::new(),
        cursor: 0,
        cols,
        rows,
        status: Status::Running,
        controller: Controller::Agent,
        holders: Vec::new(),
        subscribers: Vec::new(),
        reconnects: 0,
        reconnect_attempts: 0,
        last_input: None,
        updated_at: crate::now_ms(),
        tick: tick_tx,
    };
    tokio::spawn(actor.run(rx));
    SessionHandle { meta, tx, tick }
}

struct Actor {
    meta: Arc<SessionMeta>,
    pool: Pool,
    pty: Option<Pty>,
    raw: RawRing,
    log: CleanLog,
    screen: Screen,
    scanner: MarkerScanner,
    markers: Vec<Marker>,
    cursor: u64,
    cols: u16,
    rows: u16,
    status: Status,
    controller: Controller,
    /// Tokens of the humans holding control (`client:pid#watch`), oldest first.
    holders: Vec<String>,
    subscribers: Vec<Subscriber>,
    reconnects: u32,
    /// Failed attempts since the drop (reset on success).
    reconnect_attempts: u32,
    last_input: Option<String>,
    updated_at: u64,
    tick: watch::Sender<Tick>,
}

/// The result of a background reconnect attempt.
type Reconnected = Result<Pty>;

impl Actor {
    async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        let (re_tx, mut re_rx) = mpsc::channel::<Reconnected>(1);
        loop {
            tokio::select! {
                msg = read_pty(&mut self.pty) => self.on_channel(msg, &re_tx),
                cmd = rx.recv() => match cmd {
                    Some(Cmd::Close { reply }) => {
                        self.close().await;
                        let _ = reply.send(());
                        break;
                    }
                    Some(cmd) => self.handle(cmd).await,
                    None => {
                        self.close().await;
                        break;
                    }
                },
                Some(result) = re_rx.recv() => self.on_reconnected(result, &re_tx),
            }
        }
    }

    fn bump(&self) {
        let markers = self.markers.len() as u64;
        let tick = Tick {
            raw_total: self.raw.total_written(),
            status: self.status,
            markers,
        };
        self.tick.send_replace(tick);
        self.meta.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn set_status(&mut self, status: Status) {
        if self.status != status {
            tracing::info!(session = %self.meta.id, ?status, "session status");
            self.status = status;
            self.notify(Event::Changed);
            self.bump();
        }
    }

    fn notify(&mut self, event: Event) {
        self.subscribers.retain(|s| !s.tx.is_closed());
        for s in &mut self.subscribers {
            if s.tx.try_send(event.clone()).is_err() {
                s.behind = true;
            }
        }
    }

    /// Feeds PTY bytes (or our own `[agentssh]` notices) into every model and subscriber.
    fn on_output(&mut self, data: &[u8]) {
        self.raw.push(data);
        let mut start = 0;
        for (end, payload) in self.scanner.scan(data) {
            self.log.push_raw(&data[start..end]);
            start = end;
            if let Some(m) = Marker::parse(&payload, self.log.end_offset(), self.log.pending()) {
                self.markers.push(m);
                if self.markers.len() > 64 {
                    self.markers.remove(0);
                }
            }
        }
        self.log.push_raw(&data[start..]);
        self.screen.feed(data);
        self.updated_at = crate::now_ms();
        let chunk = Bytes::copy_from_slice(data);
        self.subscribers.retain(|s| !s.tx.is_closed());
        for s in &mut self.subscribers {
            if s.behind {
                // Resync a viewer that fell behind with a fresh keyframe, never wait for it.
                if s.tx
                    .try_send(Event::Keyframe(self.screen.keyframe()))
                    .is_ok()
                {
                    s.behind = false;
                }
            } else if s.tx.try_send(Event::Output(chunk.clone())).is_err() {
                s.behind = true;
            }
        }
        self.bump();
    }

    fn on_channel(&mut self, msg: Option<ChannelMsg>, re_tx: &mpsc::Sender<Reconnected>) {
        match msg {
            Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                self.on_output(&data)
            }
            Some(ChannelMsg::Close) => {
                // The shell ended: the connection is fine, the session is over.
                self.pty = None;
                self.set_status(Status::Closed);
            }
            Some(_) => {}
            None => {
                // The channel vanished without a close: the connection dropped.
                self.pty = None;
                if self.meta.reconnect {
                    self.set_status(Status::Reconnecting);
                    self.spawn_reconnect(re_tx.clone(), 0);
                } else {
                    self.on_output(b"\r\n[agentssh] connection lost; session disconnected\r\n");
                    self.set_status(Status::Disconnected);
                }
            }
        }
    }

    fn spawn_reconnect(&self, tx: mpsc::Sender<Reconnected>, attempt: u32) {
        let pool = self.pool.clone();
        let spec = self.meta.spec.clone();
        let (cols, rows) = (self.cols, self.rows);
        tracing::info!(session = %self.meta.id, attempt, "reconnecting");
        tokio::spawn(async move {
            if attempt > 0 {
                let delay = crate::ssh::client::backoff(attempt - 1).min(MAX_RECONNECT_BACKOFF);
                tokio::time::sleep(delay).await;
            }
            let _ = tx.send(open_pty(&pool, &spec, 0, cols, rows).await).await;
        });
    }

    fn on_reconnected(&mut self, result: Reconnected, re_tx: &mpsc::Sender<Reconnected>) {
        if self.status != Status::Reconnecting {
            return;
        }
        match result {
            Ok(pty) => {
                self.pty = Some(pty);
                self.reconnects += 1;
                self.reconnect_attempts = 0;
                self.on_output(
                    b"\r\n[agentssh] reconnected after the connection dropped; the previous shell state (directory, variables, running programs) was lost\r\n",
                );
                self.set_status(Status::Running);
            }
            Err(e) => {
                tracing::info!(session = %self.meta.id, "reconnect failed: {}", e.message);
                self.reconnect_attempts += 1;
                if self.reconnect_attempts >= MAX_RECONNECT_ATTEMPTS {
                    self.on_output(b"\r\n[agentssh] could not reconnect; session disconnected\r\n");
                    self.set_status(Status::Disconnected);
                    return;
                }
                self.spawn_reconnect(re_tx.clone(), self.reconnect_attempts);
            }
        }
    }

    async fn close(&mut self) {
        if let Some(pty) = self.pty.take() {
            let _ = pty.writer.close().await;
        }
        self.set_status(Status::Closed);
    }

    fn info(&self) -> SessionInfo {
        let (controller, since) = match &self.controller {
            Controller::Agent => ("agent", None),
            Controller::Human { since_ms, .. } => ("human", Some(*since_ms)),
        };
        SessionInfo {
            id: self.meta.id.clone(),
            name: self.meta.name.clone(),
            connection_id: self
                .pty
                .as_ref()
                .map(|p| p.lease.conn.id.clone())
                .unwrap_or_default(),
            shared_with: Vec::new(),
            host: self.meta.spec.host.clone(),
            port: self.meta.spec.port,
            username: self.meta.spec.username.clone(),
            status: self.status,
            controller,
            controlled_since: since,
            output_bytes: self.log.end_offset(),
            cursor: self.cursor,
            cols: self.cols,
            rows: self.rows,
            reconnects: self.reconnects,
            last_input: self.last_input.clone(),
            created_at: self.meta.created_at,
            updated_at: self.updated_at,
        }
    }

    fn writer(&self) -> Result<&ChannelWriteHalf<Msg>> {
        match (&self.pty, self.status) {
            (Some(p), Status::Running) => Ok(&p.writer),
            (_, Status::Reconnecting) => Err(Error::new(
                ErrorCode::SessionClosed,
                format!("session {} is reconnecting; retry shortly", self.meta.id),
            )),
            (_, status) => Err(Error::new(
                ErrorCode::SessionClosed,
                format!(
                    "session {} is {}",
                    self.meta.id,
                    serde_json::to_value(status)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default()
                ),
            )),
        }
    }

    fn read(&mut self, spec: ReadSpec) -> ReadResult {
        if spec.raw {
            let from = spec.offset.unwrap_or(0);
            let (start, mut bytes) = self.raw.since(from);
            bytes.truncate(spec.limit);
            let next = start + bytes.len() as u64;
            let (output, output_b64) = match String::from_utf8(bytes) {
                Ok(s) => (s, None),
                Err(e) => {
                    use base64::Engine;
                    let b = e.into_bytes();
                    (
                        String::from_utf8_lossy(&b).into_owned(),
                        Some(base64::engine::general_purpose::STANDARD.encode(&b)),
                    )
                }
            };
            return ReadResult {
                offset: start,
                next_offset: next,
                dropped_bytes: start.saturating_sub(from),
                output,
                output_b64,
                pending: None,
            };
        }
        let from = spec.offset.unwrap_or(self.cursor);
        let r = self.log.read(from, spec.limit);
        if spec.offset.is_none() {
            self.cursor = r.next_offset;
        }
        ReadResult {
            offset: r.offset,
            next_offset: r.next_offset,
            dropped_bytes: r.dropped_bytes,
            output: r.text,
            output_b64: None,
            pending: r.pending,
        }
    }

    async fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Write {
                data,
                who,
                note,
                reply,
            } => {
                let result = self.write(data, who, note).await;
                let _ = reply.send(result);
            }
            Cmd::Read { spec, reply } => {
                let _ = reply.send(self.read(spec));
            }
            Cmd::CleanRange { from, reply } => {
                let r = self.log.read(from, usize::MAX);
                let _ = reply.send((r, self.log.pending().len() as u64));
            }
            Cmd::MarkerAt { nonce, end, reply } => {
                let found = self
                    .markers
                    .iter()
                    .rev()
                    .find(|m| m.nonce == nonce && m.exit_status.is_some() == end);
                let _ = reply.send(found.cloned());
            }
            Cmd::Screen { reply } => {
                let _ = reply.send(self.screen.snapshot());
            }
            Cmd::Resize { cols, rows, reply } => {
                let result = match self.writer() {
                    Ok(w) => w
                        .window_change(u32::from(cols), u32::from(rows), 0, 0)
                        .await
                        .map_err(|e| {
                            Error::new(ErrorCode::SessionClosed, format!("resize failed: {e}"))
                        }),
                    Err(e) => Err(e),
                };
                if result.is_ok() {
                    self.screen.resize(rows, cols);
                    let (r, c) = self.screen.size();
                    self.log.set_width(c);
                    (self.rows, self.cols) = (r, c);
                    self.notify(Event::Resized { cols: c, rows: r });
                }
                let _ = reply.send(result);
            }
            Cmd::Signal { sig, reply } => {
                let _ = reply.send(self.signal(sig).await);
            }
            Cmd::Info { reply } => {
                let _ = reply.send(self.info());
            }
            Cmd::Subscribe { reply } => {
                let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
                self.subscribers.push(Subscriber { tx, behind: false });
                let _ = reply.send((self.screen.keyframe(), rx, self.cols, self.rows));
            }
            Cmd::Control {
                holder,
                take,
                reply,
            } => {
                self.holders.retain(|h| *h != holder);
                if take {
                    self.holders.push(holder);
                }
                self.controller = match (self.holders.first(), &self.controller) {
                    (None, _) => Controller::Agent,
                    // Keep the original "since" while any human still holds it.
                    (Some(_), Controller::Human { since_ms, .. }) => Controller::Human {
                        since_ms: *since_ms,
                        holder: display_holder(&self.holders),
                    },
                    (Some(_), Controller::Agent) => Controller::Human {
                        since_ms: crate::now_ms(),
                        holder: display_holder(&self.holders),
                    },
                };
                self.notify(Event::Changed);
                self.bump();
                let _ = reply.send(Ok(self.controller.clone()));
            }
            Cmd::ConnectionHandle { reply } => {
                let _ = reply.send(self.pty.as_ref().map(|p| p.lease.conn.clone()));
            }
            Cmd::Close { reply } => {
                self.close().await;
                let _ = reply.send(());
            }
        }
    }

    async fn write(&mut self, data: Bytes, who: Writer, note: Option<String>) -> Result<()> {
        if let (Writer::Agent, Controller::Human { since_ms, holder }) = (who, &self.controller) {
            return Err(Error::new(
                ErrorCode::SessionTakenOver,
                format!(
                    "session {} is controlled by a human ({holder}) since {} ms ago; reads still work, retry after they hand it back",
                    self.meta.id,
                    crate::now_ms().saturating_sub(*since_ms)
                ),
            ));
        }
        let writer = self.writer()?;
        writer.data_bytes(data).await.map_err(|e| {
            Error::new(
                ErrorCode::SessionClosed,
                format!("cannot write to session {}: {e}", self.meta.id),
            )
        })?;
        if let Some(n) = note {
            self.last_input = Some(n);
        }
        self.updated_at = crate::now_ms();
        Ok(())
    }

    async fn signal(&mut self, sig: Sig) -> Result<()> {
        let byte: Option<&[u8]> = match sig {
            Sig::INT => Some(b"\x03"),
            Sig::QUIT => Some(b"\x1c"),
            Sig::Custom(ref s) if s == "TSTP" => Some(b"\x1a"),
            _ => None,
        };
        let writer = self.writer()?;
        match byte {
            // Through the PTY's line discipline: reaches the foreground job, as Ctrl-C would.
            Some(b) => writer
                .data_bytes(Bytes::from_static(b))
                .await
                .map_err(|e| Error::new(ErrorCode::SessionClosed, format!("signal failed: {e}"))),
            None => {
                let _ = writer.signal(sig).await;
                self.close().await;
                Ok(())
            }
        }
    }
}

/// "tui:1234" or "attach:55 and 1 more", from holder tokens.
fn display_holder(holders: &[String]) -> String {
    let first = holders
        .first()
        .map(|h| h.split('#').next().unwrap_or(h))
        .unwrap_or_default();
    match holders.len() {
        0 | 1 => first.to_string(),
        n => format!("{first} and {} more", n - 1),
    }
}

async fn read_pty(pty: &mut Option<Pty>) -> Option<ChannelMsg> {
    match pty {
        Some(p) => p.reader.wait().await,
        None => std::future::pending().await,
    }
}
