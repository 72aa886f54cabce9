//! The session actor: owns the PTY channel and the output model, answers [`Cmd`]s, feeds
//! subscribers, and reconnects after a drop when asked to.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use russh::client::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Sig};
use tokio::sync::{mpsc, watch};

use super::attention::{Attention, State};
use super::marks::{Mark, MarkKind, MarkScanner};
use super::running::ActiveRun;
use super::{
    Cmd, Controller, Event, Note, ReadResult, ReadSpec, SessionHandle, SessionInfo, SessionMeta,
    Status, Tick, Writer,
};
use super::{NeedsHuman, Resolution};
use crate::daemon::pool::{Lease, Pool};
use crate::error::{Error, ErrorCode, Result};
use crate::screen::{CleanLog, RawRing, Screen};
use crate::wire::spec::ConnectSpec;

/// Queue of one subscriber (dashboard or attach), in events.
const SUBSCRIBER_QUEUE: usize = 256;
/// Scrollback lines kept by each session's screen.
const SCROLLBACK: usize = 1000;
/// Failed reconnect attempts before the session gives up (about an hour at the maximum backoff).
const MAX_RECONNECT_ATTEMPTS: u32 = 120;
/// Longest pause between reconnect attempts.
const MAX_RECONNECT_BACKOFF: Duration = Duration::from_secs(30);
/// Quiet time after which the cursor line is judged (a question means `input`).
const QUIET_FOR_STATE: Duration = Duration::from_millis(400);
/// Run marks kept for `session run` lookups.
const RUN_MARKS_KEPT: usize = 64;
/// Times the hooks are installed again in shells started inside the session.
const MAX_REINSTALLS: u32 = 16;

struct Subscriber {
    tx: mpsc::Sender<Event>,
    behind: bool,
}

/// A live PTY on a leased connection.
pub(super) struct Pty {
    lease: Lease,
    reader: ChannelReadHalf,
    writer: ChannelWriteHalf<Msg>,
}

pub(super) async fn open_pty(
    pool: &Pool,
    spec: &ConnectSpec,
    retry: u32,
    cols: u16,
    rows: u16,
) -> Result<Pty> {
    let lease = pool.acquire(spec, retry).await?;
    let channel = lease.conn.open_session().await.map_err(|e| {
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

pub(super) fn spawn_actor(
    pool: Pool,
    meta: SessionMeta,
    pty: Pty,
    cols: u16,
    rows: u16,
) -> SessionHandle {
    let (tx, rx) = mpsc::channel(64);
    let (tick_tx, tick) = watch::channel(Tick {
        raw_total: 0,
        status: Status::Running,
        markers: 0,
        state: State::Busy,
        installing: false,
    });
    let meta = Arc::new(meta);
    let actor = Actor {
        meta: meta.clone(),
        pool,
        pty: Some(pty),
        raw: RawRing::new(crate::screen::DEFAULT_RAW_CAP),
        log: CleanLog::with_width(cols),
        screen: Screen::new(rows, cols, SCROLLBACK),
        scanner: MarkScanner::default(),
        markers: Vec::new(),
        attention: Attention::default(),
        needs_human: None,
        resolutions: std::collections::VecDeque::new(),
        asks: 0,
        reinstalls: 0,
        quiet_at: None,
        self_tx: tx.downgrade(),
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
        run: None,
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
    scanner: MarkScanner,
    /// Marks of `session run`s (they carry a run id), newest last.
    markers: Vec<Mark>,
    /// Prompt/busy/input, the last exit status and the command history.
    attention: Attention,
    /// The agent's open request for a human.
    needs_human: Option<NeedsHuman>,
    /// How recent requests for a human ended, newest last.
    resolutions: std::collections::VecDeque<Resolution>,
    /// Requests for a human so far (for their ids).
    asks: u64,
    /// Installs of the hooks into shells started inside the session, so far.
    reinstalls: u32,
    /// When the output will have been quiet long enough to judge the cursor line.
    quiet_at: Option<tokio::time::Instant>,
    /// This actor's own command queue (weak, so it never keeps the actor alive), for the task
    /// that re-installs shell integration after a reconnect.
    self_tx: mpsc::WeakSender<Cmd>,
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
    /// The `session run` in flight, if any: the session is busy for agents until it ends.
    run: Option<ActiveRun>,
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
                () = quiet(self.quiet_at) => self.on_quiet(),
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

    /// What the session is doing, `closed` once it no longer runs.
    fn state(&self) -> State {
        match self.status {
            Status::Running | Status::Reconnecting => self.attention.state(),
            Status::Disconnected | Status::Closed => State::Closed,
        }
    }

    fn bump(&self) {
        let markers = self.markers.len() as u64;
        let tick = Tick {
            raw_total: self.raw.total_written(),
            status: self.status,
            markers,
            state: self.state(),
            installing: self.run.as_ref().is_some_and(|r| r.is_setup()),
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

    /// Takes PTY bytes (or our own `[agentssh]` notices): while a run's wrapper is being
    /// echoed they are held back and replaced (see [`super::running`]), else fed as they are.
    fn on_output(&mut self, chunk: Bytes) {
        match self.run.as_mut() {
            Some(run) if run.concealing() => {
                let parts = run.pass(chunk);
                if run.is_setup() && !run.concealing() {
                    // The hooks are in (their first marked prompt came) or they failed (too
                    // much output without it): either way the setup is over.
                    if !run.found {
                        self.attention.integration = false;
                    }
                    self.run = None;
                    self.bump();
                }
                for part in parts {
                    self.feed(part);
                }
            }
            _ => self.feed(chunk),
        }
    }

    /// Feeds bytes into every model and subscriber.
    fn feed(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        let data: &[u8] = &chunk;
        self.raw.push(data);
        let mut start = 0;
        for (end, payload) in self.scanner.scan(data) {
            self.log.push_raw(&data[start..end]);
            start = end;
            let Some(m) = Mark::parse(
                &payload,
                &self.meta.nonce,
                self.log.end_offset(),
                self.log.pending(),
            ) else {
                continue;
            };
            let active = self
                .run
                .as_ref()
                .filter(|r| m.run.is_some() && m.run.as_deref() == Some(r.id.as_str()));
            let run_command = active.map(|r| r.command.clone());
            self.attention
                .on_mark(&m, &self.log, run_command.as_deref());
            if m.kind == MarkKind::PromptStart
                && self
                    .run
                    .as_ref()
                    .is_some_and(|r| !r.is_setup() && !r.concealing())
            {
                // Back at the prompt without the run's end mark (interrupted, or the shell
                // abandoned the line): the session is free again.
                self.run = None;
                self.notify(Event::Note(Note::RunEnded(None)));
            }
            if let Some(run) = &m.run {
                if matches!(m.kind, MarkKind::Finished(_))
                    && self.run.as_ref().is_some_and(|r| &r.id == run)
                {
                    // The run's end mark: the session is free again.
                    let setup = self.run.take().is_some_and(|r| r.is_setup());
                    if let (false, MarkKind::Finished(status)) = (setup, &m.kind) {
                        self.notify(Event::Note(Note::RunEnded(Some(*status))));
                    }
                }
                self.markers.push(m);
                if self.markers.len() > RUN_MARKS_KEPT {
                    self.markers.remove(0);
                }
            }
        }
        self.log.push_raw(&data[start..]);
        self.screen.feed(data);
        self.attention.on_output();
        self.attention.on_committed(self.log.end_offset());
        self.quiet_at = Some(tokio::time::Instant::now() + QUIET_FOR_STATE);
        self.updated_at = crate::now_ms();
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
                self.on_output(data)
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
                    self.on_output(Bytes::from_static(
                        b"\r\n[agentssh] connection lost; session disconnected\r\n",
                    ));
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

    /// Output has been quiet: judge the cursor line; and when a shell prompt shows without
    /// marks where marks were flowing (`exec bash`, `su -`, `sudo -i` started a new shell),
    /// install the hooks in that shell too.
    fn on_quiet(&mut self) {
        self.quiet_at = None;
        if self.attention.on_quiet(self.log.pending()) {
            self.bump();
        }
        let unmarked_prompt = self.meta.shell_integration
            && self.attention.integration
            && self.run.is_none()
            && self.attention.state() == State::Busy
            && super::attention::looks_like_posix_prompt(self.log.pending());
        if unmarked_prompt && self.reinstalls < MAX_REINSTALLS {
            self.reinstalls += 1;
            tracing::info!(session = %self.meta.id, "unmarked shell prompt: installing the hooks again");
            self.spawn_install(false);
        }
    }

    /// Installs shell integration in the new shell after a reconnect, from a task of its own
    /// (it waits for the shell's first prompt, and the actor never waits).
    fn reinstall_integration(&self) {
        self.spawn_install(true);
    }

    /// Runs [`super::integration::install`] on a task of its own; `check_login_shell` asks the
    /// account's login shell first (not possible for a shell started by `su`).
    fn spawn_install(&self, check_login_shell: bool) {
        let Some(tx) = self.self_tx.upgrade() else {
            return;
        };
        if !self.meta.shell_integration {
            return;
        }
        let handle = SessionHandle {
            meta: self.meta.clone(),
            tx,
            tick: self.tick.subscribe(),
        };
        tokio::spawn(async move {
            if !super::integration::install(&handle, check_login_shell).await {
                handle.integration_failed().await;
            }
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
                // A new shell: no marks until the hooks are installed again.
                self.attention = Attention::default();
                self.run = None;
                self.reinstall_integration();
                self.on_output(Bytes::from_static(
                    b"\r\n[agentssh] reconnected after the connection dropped; the previous shell state (directory, variables, running programs) was lost\r\n",
                ));
                self.set_status(Status::Running);
            }
            Err(e) => {
                tracing::info!(session = %self.meta.id, "reconnect failed: {}", e.message);
                self.reconnect_attempts += 1;
                if self.reconnect_attempts >= MAX_RECONNECT_ATTEMPTS {
                    self.on_output(Bytes::from_static(
                        b"\r\n[agentssh] could not reconnect; session disconnected\r\n",
                    ));
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
            client: self.meta.client.clone(),
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
            state: self.state(),
            state_since: self.attention.since(),
            last_exit_status: self.attention.last_exit(),
            shell_integration: self.attention.integration,
            needs_human: self.needs_human.clone(),
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
            Cmd::RunMark { run, end, reply } => {
                let found = self.markers.iter().rev().find(|m| {
                    m.run.as_deref() == Some(run.as_str())
                        && match m.kind {
                            MarkKind::Finished(_) => end,
                            MarkKind::OutputStart => !end,
                            _ => false,
                        }
                });
                let _ = reply.send(found.cloned());
            }
            Cmd::Install { line, reply } => {
                let result = match &self.run {
                    Some(run) => Err(busy_err(&self.meta.id, run)),
                    None => self.write(line, Writer::Agent, None).await,
                };
                if result.is_ok() {
                    self.run = Some(ActiveRun::setup(&self.meta.nonce));
                    // Waiters (the installer, agent input) learn of it from the tick.
                    self.bump();
                }
                let _ = reply.send(result);
            }
            Cmd::Ask { message, reply } => {
                // A new request replaces an open one, which counts as dismissed.
                self.resolve("dismissed", 0);
                self.asks += 1;
                let request = format!("h{}", self.asks);
                self.needs_human = Some(NeedsHuman {
                    request: request.clone(),
                    message: message.chars().take(super::ask::MESSAGE_CAP).collect(),
                    since: crate::now_ms(),
                });
                self.notify(Event::Changed);
                self.bump();
                let _ = reply.send(request);
            }
            Cmd::AskState {
                dismiss,
                request,
                reply,
            } => {
                let answer = if dismiss {
                    self.resolve("dismissed", 0)
                } else {
                    self.resolutions
                        .iter()
                        .rev()
                        .find(|r| Some(&r.request) == request.as_ref())
                        .cloned()
                };
                let _ = reply.send(answer);
            }
            Cmd::IntegrationFailed => {
                self.attention.integration = false;
                self.bump();
            }
            Cmd::ActiveRun { reply } => {
                let _ = reply.send(
                    self.run
                        .as_ref()
                        .filter(|r| !r.is_setup())
                        .map(|r| r.id.clone()),
                );
            }
            Cmd::History { limit, reply } => {
                let _ = reply.send(self.attention.history(limit));
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
                let was_human = matches!(self.controller, Controller::Human { .. });
                if let (None, Controller::Human { since_ms, .. }) =
                    (self.holders.first(), &self.controller)
                {
                    // The last human handed back: that answers the agent's request.
                    let held = crate::now_ms().saturating_sub(*since_ms);
                    self.resolve("human", held);
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
                match (&self.controller, was_human) {
                    (Controller::Human { holder, .. }, false) => {
                        let note = Note::Control(Some(holder.clone()));
                        self.notify(Event::Note(note));
                    }
                    (Controller::Agent, true) => self.notify(Event::Note(Note::Control(None))),
                    _ => {}
                }
                self.notify(Event::Changed);
                self.bump();
                let _ = reply.send(Ok(self.controller.clone()));
            }
            Cmd::BeginRun {
                run: id,
                command,
                line,
                reply,
            } => {
                let result = match &self.run {
                    Some(run) => Err(busy_err(&self.meta.id, run)),
                    None => self.write(line, Writer::Agent, None).await,
                };
                if result.is_ok() {
                    let run = ActiveRun::new(&self.meta.nonce, id, command);
                    if !run.is_setup() {
                        self.notify(Event::Note(Note::RunStarted(run.command.len())));
                    }
                    self.last_input = Some(run.command.chars().take(200).collect());
                    self.run = Some(run);
                }
                let _ = reply.send(result);
            }
            Cmd::EndRun { run: id } => {
                if let Some(mut run) = self.run.take_if(|r| r.id == id) {
                    for part in run.release() {
                        self.feed(part);
                    }
                    if !run.is_setup() {
                        self.notify(Event::Note(Note::RunEnded(None)));
                    }
                }
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
        if let (Writer::Agent, Some(run)) = (who, &self.run) {
            return Err(busy_err(&self.meta.id, run));
        }
        let writer = self.writer()?;
        let bytes = data.len();
        writer.data_bytes(data.clone()).await.map_err(|e| {
            Error::new(
                ErrorCode::SessionClosed,
                format!("cannot write to session {}: {e}", self.meta.id),
            )
        })?;
        self.notify(Event::Note(Note::Input { who, bytes }));
        if let Some(n) = note {
            self.last_input = Some(n);
        }
        if self.attention.on_write(who, &data) {
            self.bump();
        }
        self.updated_at = crate::now_ms();
        Ok(())
    }

    /// Ends the open request for a human, if any, as `by`; returns how it ended.
    fn resolve(&mut self, by: &'static str, held_ms: u64) -> Option<Resolution> {
        let open = self.needs_human.take()?;
        let r = Resolution {
            request: open.request,
            resolved_by: by,
            held_ms,
        };
        if self.resolutions.len() == 16 {
            self.resolutions.pop_front();
        }
        self.resolutions.push_back(r.clone());
        self.notify(Event::Changed);
        self.bump();
        Some(r)
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
            Some(b) => {
                writer
                    .data_bytes(Bytes::from_static(b))
                    .await
                    .map_err(|e| {
                        Error::new(ErrorCode::SessionClosed, format!("signal failed: {e}"))
                    })?;
                // Without prompt marks nothing else would tell that an interrupted run or job
                // is over: the interrupt frees the session (with marks, the next prompt does).
                if !self.attention.integration && self.run.as_ref().is_some_and(|r| !r.concealing())
                {
                    self.run = None;
                }
                Ok(())
            }
            None => {
                let _ = writer.signal(sig).await;
                self.close().await;
                Ok(())
            }
        }
    }
}

/// The error an agent's write gets while a `session run` is in flight.
fn busy_err(id: &str, run: &ActiveRun) -> Error {
    if run.is_setup() {
        return Error::new(
            ErrorCode::SessionBusy,
            format!("session {id} is busy installing shell integration; retry in a moment"),
        );
    }
    let command: String = run.command.chars().take(80).collect();
    // Jobs (`session run --detach`) have ids starting with `j`.
    let what = if run.id.starts_with('j') {
        format!("job {} ('{command}')", run.id)
    } else {
        format!("`session run` of '{command}'")
    };
    Error::new(
        ErrorCode::SessionBusy,
        format!(
            "session {id} is busy: {what} started {} ms ago; wait for it to finish (or stop it with `session signal -s {id} --signal INT`)",
            run.started.elapsed().as_millis()
        ),
    )
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

/// Resolves at `at`, never when there is nothing to wait for.
async fn quiet(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn read_pty(pty: &mut Option<Pty>) -> Option<ChannelMsg> {
    match pty {
        Some(p) => p.reader.wait().await,
        None => std::future::pending().await,
    }
}
