//! Serving the session requests of the protocol (connect, send, read, run, ...).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use russh::Sig;
use serde_json::{json, Value};
use tokio::io::BufReader;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use super::{ReadSpec, SessionHandle, Status, Writer, MAX_WAIT};
use crate::daemon::Daemon;
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::{DaemonToClient, Request};
use crate::ssh::exec::{outcome_json, Capture, ExecOutput, ExecRequest};

/// Parses a signal name (`INT`, `sigint`, ...).
pub fn parse_signal(name: &str) -> Result<Sig> {
    let upper = name.trim().to_ascii_uppercase();
    Ok(match upper.trim_start_matches("SIG") {
        "INT" => Sig::INT,
        "QUIT" => Sig::QUIT,
        "TSTP" => Sig::Custom("TSTP".into()),
        "TERM" => Sig::TERM,
        "KILL" => Sig::KILL,
        _ => {
            return Err(Error::usage(format!(
                "unsupported signal '{name}': use INT, QUIT, TSTP, TERM or KILL"
            )))
        }
    })
}

/// Answers one session request (all but `read --follow`, which streams). `who` is the
/// requester as the activity log names it (`KIND:PID`); a session it opens records the kind.
pub async fn handle(daemon: &Arc<Daemon>, request: Request, who: &str) -> Result<Value> {
    let reg = &daemon.sessions;
    let client = who.split(':').next().unwrap_or_default();
    match request {
        Request::Connect {
            spec,
            retry,
            name,
            cols,
            rows,
            wait_ms,
            limit,
            reconnect,
            shell_integration,
            no_record,
        } => {
            reg.open(
                &daemon.pool,
                client,
                *spec,
                retry,
                name,
                reconnect,
                shell_integration,
                !no_record,
                cols,
                rows,
                wait_ms,
                limit,
            )
            .await
        }
        Request::Spawn {
            from,
            name,
            cols,
            rows,
            wait_ms,
            limit,
        } => {
            let parent = reg.get(&from)?;
            let spec = parent.meta.spec.clone();
            reg.open(
                &daemon.pool,
                client,
                spec,
                0,
                name,
                parent.meta.reconnect,
                parent.meta.shell_integration,
                parent.meta.record,
                cols,
                rows,
                wait_ms,
                limit,
            )
            .await
        }
        Request::Send(req) => super::send::send(&reg.get(&req.session)?, &req).await,
        Request::Read {
            session,
            offset,
            raw,
            limit,
            ..
        } => {
            let h = reg.get(&session)?;
            let read = h.read(ReadSpec { offset, limit, raw }).await?;
            let mut v = serde_json::to_value(&read).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("session_id".into(), h.meta.id.clone().into());
                o.insert(
                    "status".into(),
                    serde_json::to_value(h.ticks().borrow().status).unwrap_or_default(),
                );
            }
            Ok(v)
        }
        Request::Screen { session } => {
            let h = reg.get(&session)?;
            let snap = h.screen().await?;
            let mut v = serde_json::to_value(snap).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("session_id".into(), h.meta.id.clone().into());
            }
            Ok(v)
        }
        Request::SessionExec {
            session,
            command,
            timeout_ms,
            detach,
        } => {
            let h = reg.get(&session)?;
            if detach {
                let line = format!("{command}\n");
                h.write(
                    Bytes::from(line),
                    Writer::Agent,
                    Some(command.chars().take(200).collect()),
                )
                .await?;
                return Ok(
                    json!({"session_id": h.meta.id, "detached": true, "status": "dispatched"}),
                );
            }
            session_exec(&h, command, timeout_ms).await
        }
        Request::Run {
            session,
            command,
            timeout_ms,
            limit,
            detach,
        } => {
            let h = reg.get(&session)?;
            if detach {
                return super::run::start_job(&h, &command).await;
            }
            super::run::run(&h, &command, Duration::from_millis(timeout_ms), limit).await
        }
        Request::Job {
            session,
            job,
            wait,
            timeout_ms,
            limit,
        } => super::run::job(&reg.get(&session)?, &job, wait, timeout_ms, limit).await,
        Request::Resize {
            session,
            cols,
            rows,
        } => {
            if !(1..=500).contains(&cols) || !(1..=300).contains(&rows) {
                return Err(Error::usage("--cols must be 1-500 and --rows 1-300"));
            }
            let h = reg.get(&session)?;
            h.resize(cols, rows).await?;
            let info = h.info().await?;
            Ok(json!({"session_id": h.meta.id, "cols": info.cols, "rows": info.rows}))
        }
        Request::Signal { session, signal } => {
            let sig = parse_signal(&signal)?;
            let h = reg.get(&session)?;
            h.signal(sig).await?;
            Ok(
                json!({"session_id": h.meta.id, "signal": signal.trim().to_ascii_uppercase().trim_start_matches("SIG")}),
            )
        }
        Request::Ping { session } => {
            let h = reg.get(&session)?;
            let status = h.ticks().borrow().status;
            Ok(
                json!({"session_id": h.meta.id, "alive": status == Status::Running, "status": status}),
            )
        }
        Request::Wait {
            session,
            until,
            quiet_ms,
            timeout_ms,
            limit,
        } => super::wait::wait(&reg.get(&session)?, &until, quiet_ms, timeout_ms, limit).await,
        Request::Ask {
            session,
            message,
            wait,
            timeout_ms,
        } => super::ask::ask(&reg.get(&session)?, message, wait, timeout_ms).await,
        Request::Dismiss { session } => {
            let h = reg.get(&session)?;
            let r = h.dismiss().await?;
            Ok(json!({"session_id": h.meta.id, "dismissed": r.map(|r| r.request)}))
        }
        Request::History { session, limit } => {
            let h = reg.get(&session)?;
            Ok(json!({"session_id": h.meta.id, "commands": h.history(limit).await?}))
        }
        Request::SessionStatus { session } => {
            Ok(serde_json::to_value(reg.info(&session).await?).unwrap_or_default())
        }
        Request::SessionList => Ok(json!({"sessions": reg.infos().await})),
        Request::Close { session, all } => {
            let targets = match (session, all) {
                (_, true) => reg.all(),
                (Some(s), false) => vec![reg.get(&s)?],
                (None, false) => return Err(Error::usage("pass -s ID or --all")),
            };
            let mut closed = Vec::new();
            for h in targets {
                h.close().await;
                reg.remove(&h.meta.id);
                closed.push(h.meta.id.clone());
            }
            Ok(json!({"closed": closed}))
        }
        other => Err(Error::internal(format!(
            "not a session request: {:?}",
            other.describe().0
        ))),
    }
}

pub(super) async fn session_exec(
    h: &SessionHandle,
    command: String,
    timeout_ms: u64,
) -> Result<Value> {
    let conn = h.connection().await?;
    let channel = conn.open_session().await.map_err(|e| {
        Error::new(
            ErrorCode::ConnectFailed,
            format!("cannot open an exec channel: {e}"),
        )
    })?;
    let req = ExecRequest {
        command,
        timeout: (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms)),
        tty: None,
        kill_by_pid: timeout_ms > 0 && crate::ssh::exec_stop::stops_by_pid(&h.meta.spec.username),
    };
    let (tx, mut rx) = mpsc::channel(32);
    let (mut out, mut err) = (Capture::default(), Capture::default());
    let drain = async {
        while let Some(c) = rx.recv().await {
            match c {
                ExecOutput::Stdout(b) => out.push(&b),
                ExecOutput::Stderr(b) => err.push(&b),
            }
        }
    };
    let (outcome, ()) = tokio::join!(
        crate::ssh::exec::run_on_channel(
            channel,
            &req,
            None,
            tx,
            std::future::pending(),
            Some(&conn)
        ),
        drain
    );
    let outcome = outcome?;
    let mut v = outcome_json(&outcome, &out, &err);
    if let Some(o) = v.as_object_mut() {
        o.insert("session_id".into(), h.meta.id.clone().into());
    }
    if outcome.timed_out {
        return Err(crate::ssh::exec::timeout_error(timeout_ms, &outcome).with_data(v));
    }
    Ok(v)
}

/// `session read --follow`: streams reads as data frames until the session stops running,
/// the deadline passes, or the client leaves.
pub async fn follow(
    daemon: &Arc<Daemon>,
    session: &str,
    raw: bool,
    limit: usize,
    timeout_ms: u64,
    r: &mut BufReader<OwnedReadHalf>,
    w: &mut OwnedWriteHalf,
) -> Result<Value> {
    let h = daemon.sessions.get(session)?;
    let mut ticks = h.ticks();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms).min(MAX_WAIT);
    let mut raw_offset = 0u64;
    let mut last_pending: Option<String> = None;
    let gone = crate::daemon::server::client_gone(r);
    tokio::pin!(gone);
    let mut frames = 0u64;
    let end = loop {
        let spec = ReadSpec {
            offset: raw.then_some(raw_offset),
            limit,
            raw,
        };
        let read = match h.read(spec).await {
            Ok(r) => r,
            // Closed by a client while we followed: the stream ends normally.
            Err(_) if h.is_gone() || ticks.borrow().status == Status::Closed => {
                break "session_ended"
            }
            Err(e) => return Err(e),
        };
        raw_offset = read.next_offset;
        let status = ticks.borrow().status;
        if !read.output.is_empty() || read.pending != last_pending {
            last_pending = read.pending.clone();
            let mut v = serde_json::to_value(&read).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("session_id".into(), h.meta.id.clone().into());
                o.insert(
                    "status".into(),
                    serde_json::to_value(status).unwrap_or_default(),
                );
            }
            crate::daemon::server::send_frame(w, &DaemonToClient::Data(v)).await?;
            frames += 1;
        }
        if status != Status::Running && status != Status::Reconnecting {
            break "session_ended";
        }
        tokio::select! {
            changed = ticks.changed() => if changed.is_err() { break "session_ended" },
            _ = tokio::time::sleep_until(deadline) => break "timeout",
            _ = &mut gone => break "client_gone",
        }
    };
    Ok(
        json!({"session_id": h.meta.id, "ended": end, "frames": frames, "status": ticks.borrow().status}),
    )
}
