//! One client connection: peer check, hello, one request and its answer (or, for a client
//! that keeps its connection, one request after another).
//!
//! Every client runs in its own task with deadlines on the hello and the request, so a client
//! that hangs, sends garbage or an oversized frame loses only its own connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use super::Daemon;
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::{
    self, ActivityEntry, ClientToDaemon, DaemonToClient, OutputStream, Request, Response,
};
use crate::ssh::exec::{ExecOutput, ExecRequest};

/// How long a client may take to say hello and send its request.
const HELLO_DEADLINE: Duration = Duration::from_secs(10);
/// How long a client may take to read its final answer (a client that stopped reading
/// with its socket buffer full would otherwise hold its task, and its activity entry back
/// from the disk, for ever).
const ANSWER_DEADLINE: Duration = Duration::from_secs(10);
/// Attempts to find a connection that will open a channel.
const CHANNEL_ATTEMPTS: usize = 3;

type Reader = BufReader<OwnedReadHalf>;

/// Writes one frame to a client.
pub async fn send_frame(w: &mut OwnedWriteHalf, frame: &DaemonToClient) -> Result<()> {
    send(w, frame).await
}

/// Reads one frame from a client.
pub async fn recv_frame(r: &mut Reader) -> std::io::Result<ClientToDaemon> {
    recv(r).await
}

/// Resolves when the client hangs up (reads and discards anything it sends meanwhile).
pub async fn client_gone(r: &mut Reader) {
    while recv(r).await.is_ok() {}
}

async fn send(w: &mut OwnedWriteHalf, frame: &DaemonToClient) -> Result<()> {
    let bytes = protocol::encode(frame)?;
    w.write_all(&bytes).await.map_err(|e| {
        Error::new(
            ErrorCode::DaemonUnavailable,
            format!("client went away: {e}"),
        )
    })
}

async fn recv(r: &mut Reader) -> std::io::Result<ClientToDaemon> {
    match protocol::read_frame(r).await? {
        Some(f) => protocol::decode(&f),
        None => Err(std::io::ErrorKind::UnexpectedEof.into()),
    }
}

/// Serves one client: its request, then, for a client that asked for `keep_alive` in its
/// hello, each further one-shot request on the same connection (see
/// [`Request::keeps_connection`]) until it hangs up or stays silent for
/// [`crate::protocol::KEEP_ALIVE_IDLE`].
pub async fn serve(stream: UnixStream, daemon: Arc<Daemon>) {
    let me = rustix::process::getuid().as_raw();
    let peer = match stream.peer_cred() {
        Ok(c) if c.uid() == me || Some(c.uid()) == daemon.agent_uid => c,
        Ok(c) => {
            tracing::warn!(uid = c.uid(), "refused a client of another user");
            return;
        }
        Err(e) => {
            tracing::warn!("cannot read peer credentials: {e}");
            return;
        }
    };
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let hello = tokio::time::timeout(HELLO_DEADLINE, recv(&mut r)).await;
    let (client, their_protocol, approval, keep_alive) = match hello {
        Ok(Ok(ClientToDaemon::Hello {
            client,
            protocol,
            approval,
            keep_alive,
            ..
        })) => (client, protocol, approval, keep_alive),
        Ok(Ok(_)) | Ok(Err(_)) | Err(_) => {
            tracing::debug!("client without a valid hello dropped");
            return;
        }
    };
    let ours = DaemonToClient::Hello {
        protocol: protocol::PROTOCOL_VERSION,
        version: protocol::BINARY_VERSION.into(),
        pid: std::process::id(),
    };
    if send(&mut w, &ours).await.is_err() {
        return;
    }
    // Clients send their request right behind the hello; one in another protocol could be
    // misread, so it is not read at all. Our hello tells the client why.
    if their_protocol != protocol::PROTOCOL_VERSION {
        tracing::info!(their_protocol, "refused a client speaking another protocol");
        return;
    }
    let agent = peer.uid() != me;
    let who = if agent {
        format!(
            "{client}:{}(agent uid {})",
            peer.pid().unwrap_or(0),
            peer.uid()
        )
    } else {
        format!("{client}:{}", peer.pid().unwrap_or(0))
    };
    let caller = super::gate::Caller {
        who,
        pid: peer.pid(),
        agent,
        approval,
    };
    let mut deadline = HELLO_DEADLINE;
    loop {
        let request = match tokio::time::timeout(deadline, recv(&mut r)).await {
            Ok(Ok(ClientToDaemon::Request(req))) => req,
            _ => return,
        };
        let again = keep_alive && request.keeps_connection();
        answer(request, &daemon, &caller, &mut r, &mut w).await;
        if !again {
            let _ = w.shutdown().await;
            return;
        }
        deadline = crate::protocol::KEEP_ALIVE_IDLE;
    }
}

/// Answers one request: the gate, the work, its activity entry, the response frame.
async fn answer(
    mut request: Request,
    daemon: &Arc<Daemon>,
    caller: &super::gate::Caller,
    r: &mut Reader,
    w: &mut OwnedWriteHalf,
) {
    let prepared = super::gate::prepare_specs(&mut request, caller);
    let (command, target) = request.describe();
    let started = Instant::now();
    let time_ms = crate::now_ms();
    // A watcher that does not take control (the dashboard's live pane, `attach --read-only`)
    // only looks; logging it would read as an agent request lasting as long as it watched.
    let log_it = !matches!(
        request,
        Request::Watch {
            take_control: false,
            ..
        } | Request::Events
            | Request::Log { .. }
            | Request::Status
            | Request::SessionList
            | Request::ProxyList
            | Request::ProxyPing { .. }
            | Request::Ping { .. }
            | Request::SessionStatus { .. }
            | Request::History { .. }
            | Request::ApprovalList
            | Request::ApprovalStatus { .. }
    );
    let gated = match prepared {
        Ok(()) => super::gate::check(daemon, &request, caller, r).await,
        Err(e) => Err(e),
    };
    let response = match gated {
        Ok(passed) => {
            if let Request::Watch {
                session,
                take_control: true,
            } = &request
            {
                // A human at the keyboard: the gate no longer knows what is on the line.
                if let Ok(h) = daemon.sessions.get(session) {
                    daemon.gate.forget(&h.meta.id);
                }
            }
            let response = handle(request, daemon, caller, r, w).await;
            if matches!(response, Response::Ok(_)) {
                daemon.gate.commit(passed);
            }
            response
        }
        Err(e) => error_response(e),
    };
    if log_it {
        daemon.activity.record(ActivityEntry {
            time_ms,
            client: caller.who.clone(),
            target,
            command,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            outcome: match &response {
                Response::Ok(_) => "ok".into(),
                Response::Err { error, .. } => error.code.as_str().into(),
            },
        });
    }
    let answer = DaemonToClient::Response(response);
    let _ = tokio::time::timeout(ANSWER_DEADLINE, send(w, &answer)).await;
}

async fn handle(
    request: Request,
    daemon: &Arc<Daemon>,
    caller: &super::gate::Caller,
    r: &mut Reader,
    w: &mut OwnedWriteHalf,
) -> Response {
    let who = caller.who.as_str();
    let result = match request {
        Request::Watch {
            session,
            take_control,
        } => super::watching::watch(daemon, &session, take_control, who, r, w).await,
        Request::Events => super::watching::events(daemon, r, w).await,
        Request::Status => Ok(daemon.status().await),
        Request::Shutdown => {
            daemon.begin_shutdown();
            Ok(serde_json::json!({"stopping": true, "pid": std::process::id()}))
        }
        Request::Log { follow, limit } => return log(daemon, follow, limit, r, w).await,
        Request::File(f) => return super::files::handle(daemon, *f, r, w).await,
        Request::Read {
            session,
            raw,
            limit,
            follow: true,
            timeout_ms,
            ..
        } => super::session::requests::follow(daemon, &session, raw, limit, timeout_ms, r, w).await,
        Request::Exec {
            spec,
            command,
            timeout_ms,
            tty,
            stdin,
            retry,
        } => {
            let req = ExecRequest {
                command,
                timeout: (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms)),
                tty: tty.then_some((120, 40)),
                kill_by_pid: crate::ssh::exec_stop::stops_by_pid(&spec.username),
            };
            return exec(daemon, &spec, &req, stdin, retry, timeout_ms, r, w).await;
        }
        req @ (Request::ProxyCreate { .. }
        | Request::ProxyList
        | Request::ProxyPing { .. }
        | Request::ProxyClose { .. }) => super::proxy::handle(daemon, req).await,
        // The gate already let it through (see `serve`).
        Request::Authorize { .. } => Ok(serde_json::json!({"authorized": true})),
        req @ (Request::ApprovalList
        | Request::ApprovalStatus { .. }
        | Request::ApprovalDecide { .. }) => {
            super::gate::approvals::handle(daemon, req, caller).await
        }
        req @ (Request::RecordingList
        | Request::RecordingDelete { .. }
        | Request::RecordingLocate { .. }) => super::record::handle(daemon, req).await,
        other => super::session::requests::handle(daemon, other, who).await,
    };
    match result {
        Ok(v) => Response::Ok(v),
        Err(error) => error_response(error),
    }
}

/// The response for a failed request; partial results attached to the error
/// ([`Error::with_data`]) become the envelope's `data`.
pub fn error_response(mut error: Error) -> Response {
    let data = error.take_data();
    Response::Err { error, data }
}

async fn log(
    daemon: &Arc<Daemon>,
    follow: bool,
    limit: usize,
    r: &mut Reader,
    w: &mut OwnedWriteHalf,
) -> Response {
    let mut live = daemon.activity.follow();
    let past = daemon.activity.recent(limit);
    if !follow {
        return Response::Ok(serde_json::json!({ "entries": past }));
    }
    for e in past {
        if send(w, &DaemonToClient::Activity(e)).await.is_err() {
            return Response::Ok(serde_json::Value::Null);
        }
    }
    loop {
        tokio::select! {
            entry = live.recv() => match entry {
                Ok(e) => if send(w, &DaemonToClient::Activity(e)).await.is_err() { break },
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!("log follower lagged by {n} entries");
                }
                Err(_) => break,
            },
            // The client hangs up to stop following.
            _ = recv(r) => break,
            _ = daemon.stopping() => break,
        }
    }
    Response::Ok(serde_json::json!({"followed": true}))
}

/// Forwards stdin frames into the exec's stdin channel; resolves when the client is gone.
async fn pump_stdin(r: &mut Reader, tx: Option<mpsc::Sender<Bytes>>) {
    let mut tx = tx;
    loop {
        match recv(r).await {
            Ok(ClientToDaemon::Stdin { data }) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .unwrap_or_default();
                if let Some(t) = &tx {
                    if t.send(Bytes::from(bytes)).await.is_err() {
                        tx = None;
                    }
                }
            }
            Ok(ClientToDaemon::StdinEof) => tx = None,
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn exec(
    daemon: &Arc<Daemon>,
    spec: &crate::wire::spec::ConnectSpec,
    req: &ExecRequest,
    with_stdin: bool,
    retry: u32,
    timeout_ms: u64,
    r: &mut Reader,
    w: &mut OwnedWriteHalf,
) -> Response {
    let mut last_err = None;
    let mut opened = None;
    for _ in 0..CHANNEL_ATTEMPTS {
        let lease = match daemon.pool.acquire(spec, retry).await {
            Ok(l) => l,
            Err(error) => return Response::Err { error, data: None },
        };
        match lease.conn.open_session().await {
            Ok(ch) => {
                opened = Some((lease, ch));
                break;
            }
            Err(russh::Error::ChannelOpenFailure(reason)) => {
                tracing::info!(conn = %lease.conn.id, ?reason, "server refused a channel; using another connection");
                daemon.pool.mark_full(&lease);
                last_err = Some(format!("server refused a channel: {reason:?}"));
            }
            Err(e) => {
                tracing::info!(conn = %lease.conn.id, "pooled connection failed ({e}); replacing it");
                daemon.pool.mark_dead(&lease);
                last_err = Some(e.to_string());
            }
        }
    }
    let Some((lease, channel)) = opened else {
        let msg = format!(
            "cannot open an SSH channel: {}",
            last_err.unwrap_or_default()
        );
        return Response::Err {
            error: Error::new(ErrorCode::ConnectFailed, msg),
            data: None,
        };
    };

    let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(16);
    let stdin_tx = with_stdin.then_some(stdin_tx);
    let stdin_rx = with_stdin.then_some(stdin_rx);
    let (out_tx, mut out_rx) = mpsc::channel::<ExecOutput>(32);
    let (gone_tx, gone_rx) = tokio::sync::oneshot::channel::<()>();
    let killer: &dyn crate::ssh::exec::ChannelSource = &lease.conn;
    let run = crate::ssh::exec::run_on_channel(
        channel,
        req,
        stdin_rx,
        out_tx,
        async {
            let _ = gone_rx.await;
        },
        Some(killer),
    );
    let relay = async {
        let mut client_ok = true;
        let mut stdin_done = false;
        let mut gone = Some(gone_tx);
        let stdin_pump = pump_stdin(r, stdin_tx);
        tokio::pin!(stdin_pump);
        loop {
            tokio::select! {
                chunk = out_rx.recv() => {
                    let Some(chunk) = chunk else { break };
                    if !client_ok { continue; }
                    let (stream, bytes) = match chunk {
                        ExecOutput::Stdout(b) => (OutputStream::Stdout, b),
                        ExecOutput::Stderr(b) => (OutputStream::Stderr, b),
                    };
                    let frame = DaemonToClient::Output { stream, data: base64::engine::general_purpose::STANDARD.encode(&bytes) };
                    if send(w, &frame).await.is_err() {
                        client_ok = false;
                        if let Some(g) = gone.take() { let _ = g.send(()); }
                    }
                }
                _ = &mut stdin_pump, if !stdin_done => {
                    // The client hung up: stop the remote command as on a timeout.
                    stdin_done = true;
                    client_ok = false;
                    if let Some(g) = gone.take() { let _ = g.send(()); }
                }
            }
        }
    };
    let (outcome, ()) = tokio::join!(run, relay);
    match outcome {
        Ok(o) if o.timed_out => Response::Err {
            error: crate::ssh::exec::timeout_error(timeout_ms, &o),
            data: Some(serde_json::to_value(&o).unwrap_or_default()),
        },
        Ok(o) => Response::Ok(serde_json::to_value(&o).unwrap_or_default()),
        Err(error) => error_response(error),
    }
}
