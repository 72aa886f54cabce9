//! `agentssh connect` and `agentssh session ...`: thin clients of the daemon's sessions.

use serde_json::{json, Value};

use super::args::{ConnectCmdArgs, SendArgs, SessionCommand};
use super::Reply;
use crate::client::{into_result, DaemonClient};
use crate::error::{Error, Result};
use crate::protocol::{ClientToDaemon, DaemonToClient, Request, SendRequest, WaitMode};

/// Default quiet window of `session send` when no wait flag is given.
pub const DEFAULT_WAIT_IDLE_MS: u64 = 300;

/// Sends one request through the (autostarted) daemon and turns the answer into a reply
/// rendered by `text`.
pub async fn ask(req: Request, text: impl FnOnce(&Value) -> String) -> Result<Reply> {
    let client = DaemonClient::connect_or_start("cli").await?;
    match into_result(client.request(req).await?) {
        Ok(v) => {
            let t = text(&v);
            Ok(Reply::ok(v, t))
        }
        Err((e, data)) => Ok(Reply::failure(e, data)),
    }
}

fn output_text(v: &Value) -> String {
    let mut s = v["output"].as_str().unwrap_or_default().to_string();
    if let Some(p) = v["pending"].as_str() {
        s.push_str(p);
    }
    s
}

fn join(words: &[String], what: &str) -> Result<String> {
    let line = words.join(" ");
    if line.trim().is_empty() {
        return Err(Error::usage(format!(
            "missing command: agentssh session {what} -s ID -- COMMAND"
        )));
    }
    Ok(line)
}

fn info_text(v: &Value) -> String {
    format!(
        "{}{}\t{}@{}:{}\t{}\t{}{}\t{} bytes",
        v["id"].as_str().unwrap_or_default(),
        v["name"]
            .as_str()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default(),
        v["username"].as_str().unwrap_or_default(),
        v["host"].as_str().unwrap_or_default(),
        v["port"],
        v["status"].as_str().unwrap_or_default(),
        v["controller"].as_str().unwrap_or_default(),
        v["client"]
            .as_str()
            .map(|c| format!(" (opened by {c})"))
            .unwrap_or_default(),
        v["output_bytes"]
    )
}

/// `agentssh connect`.
pub async fn connect(a: ConnectCmdArgs) -> Result<Reply> {
    let spec = super::target::resolve(&a.conn)?;
    let req = Request::Connect {
        spec: Box::new(spec),
        retry: a.retry,
        name: a.pty.name,
        cols: a.pty.cols,
        rows: a.pty.rows,
        wait_ms: a.pty.wait_ms,
        limit: a.pty.limit,
        reconnect: a.reconnect,
        shell_integration: !a.no_shell_integration,
        no_record: a.no_record,
    };
    ask(req, |v| {
        format!(
            "session_id: {}\n{}",
            v["id"].as_str().unwrap_or_default(),
            output_text(v)
        )
    })
    .await
}

fn send_request(a: SendArgs) -> Result<Request> {
    if a.expect.len() != a.respond.len() {
        return Err(Error::usage("each --expect needs a matching --respond"));
    }
    if a.expect.len() > 3 {
        return Err(Error::usage("at most three --expect/--respond pairs"));
    }
    let wait = match (a.wait_for_exit, a.wait_idle) {
        (true, _) => WaitMode::Exit,
        (false, Some(0)) => WaitMode::None,
        (false, Some(ms)) => WaitMode::Idle(ms),
        (false, None) => WaitMode::Idle(DEFAULT_WAIT_IDLE_MS),
    };
    Ok(Request::Send(Box::new(SendRequest {
        session: a.session,
        input: a.input,
        crlf: a.crlf,
        wait,
        timeout_ms: a.timeout,
        expect: a.expect.into_iter().zip(a.respond).collect(),
        raw: a.form.raw,
        limit: a.limit,
    })))
}

/// `agentssh session ...`.
pub async fn run(cmd: SessionCommand) -> Result<Reply> {
    match cmd {
        SessionCommand::Spawn { from, pty } => {
            let req = Request::Spawn {
                from,
                name: pty.name,
                cols: pty.cols,
                rows: pty.rows,
                wait_ms: pty.wait_ms,
                limit: pty.limit,
            };
            ask(req, |v| {
                format!(
                    "session_id: {}\n{}",
                    v["id"].as_str().unwrap_or_default(),
                    output_text(v)
                )
            })
            .await
        }
        SessionCommand::Send(a) => ask(send_request(*a)?, output_text).await,
        SessionCommand::Read {
            session,
            follow: true,
            offset: _,
            form,
            timeout,
            limit,
        } => {
            follow(Request::Read {
                session,
                offset: None,
                raw: form.raw,
                limit,
                follow: true,
                timeout_ms: timeout,
            })
            .await
        }
        SessionCommand::Read {
            session,
            offset,
            form,
            limit,
            ..
        } => {
            let req = Request::Read {
                session,
                offset,
                raw: form.raw,
                limit,
                follow: false,
                timeout_ms: 0,
            };
            ask(req, output_text).await
        }
        SessionCommand::Screen { session } => {
            ask(Request::Screen { session }, |v| {
                v["rows"]
                    .as_array()
                    .map(|rows| {
                        rows.iter()
                            .map(|r| r.as_str().unwrap_or_default())
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .unwrap_or_default()
            })
            .await
        }
        SessionCommand::Exec {
            session,
            timeout,
            detach,
            command,
        } => {
            let command = join(&command, "exec")?;
            let reply = ask(
                Request::SessionExec {
                    session,
                    command,
                    timeout_ms: timeout,
                    detach,
                },
                |v| {
                    if v["detached"].as_bool() == Some(true) {
                        "dispatched".into()
                    } else {
                        v["stdout"]
                            .as_str()
                            .unwrap_or_default()
                            .trim_end_matches('\n')
                            .to_string()
                    }
                },
            )
            .await?;
            Ok(with_exit(reply, "exit_status"))
        }
        SessionCommand::Run {
            session,
            timeout,
            limit,
            detach,
            command,
        } => {
            let command = join(&command, "run")?;
            let req = Request::Run {
                session,
                command,
                timeout_ms: timeout,
                limit,
                detach,
            };
            if detach {
                return ask(req, |v| v["job"].as_str().unwrap_or_default().to_string()).await;
            }
            Ok(with_exit(ask(req, command_output).await?, "exit_status"))
        }
        SessionCommand::Resize {
            session,
            cols,
            rows,
        } => {
            ask(
                Request::Resize {
                    session,
                    cols,
                    rows,
                },
                |v| format!("{}x{}", v["cols"], v["rows"]),
            )
            .await
        }
        SessionCommand::Signal { session, signal } => {
            ask(Request::Signal { session, signal }, |v| {
                format!("sent {}", v["signal"].as_str().unwrap_or_default())
            })
            .await
        }
        SessionCommand::Ping { session } => {
            ask(Request::Ping { session }, |v| {
                v["status"].as_str().unwrap_or_default().to_string()
            })
            .await
        }
        SessionCommand::Wait {
            session,
            until,
            quiet_ms,
            timeout,
            limit,
        } => {
            let req = Request::Wait {
                session,
                until,
                quiet_ms,
                timeout_ms: timeout,
                limit,
            };
            ask(req, |v| {
                format!(
                    "{}{}",
                    v["output"].as_str().unwrap_or_default(),
                    v["state"]
                        .as_str()
                        .map(|s| format!("\n[state: {s}]"))
                        .unwrap_or_default()
                )
            })
            .await
        }
        SessionCommand::Job {
            session,
            job,
            wait,
            timeout,
            limit,
        } => {
            let req = Request::Job {
                session,
                job,
                wait,
                timeout_ms: timeout,
                limit,
            };
            Ok(with_exit(ask(req, command_output).await?, "exit_status"))
        }
        SessionCommand::Ask {
            session,
            message,
            wait,
            timeout,
        } => {
            let req = Request::Ask {
                session,
                message,
                wait,
                timeout_ms: timeout,
            };
            ask(req, |v| match v["resolved_by"].as_str() {
                Some(by) => format!("resolved by {by} after {} ms", v["held_ms"]),
                None => format!(
                    "request {} is open",
                    v["request"].as_str().unwrap_or_default()
                ),
            })
            .await
        }
        SessionCommand::Dismiss { session } => {
            ask(Request::Dismiss { session }, |v| {
                match v["dismissed"].as_str() {
                    Some(r) => format!("dismissed {r}"),
                    None => "no open request".into(),
                }
            })
            .await
        }
        SessionCommand::History { session, limit } => {
            ask(Request::History { session, limit }, |v| {
                v["commands"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|c| {
                                format!(
                                    "{}\t{}\t{} ms\t{}",
                                    c["exit_status"]
                                        .as_i64()
                                        .map_or("-".to_string(), |s| s.to_string()),
                                    c["by"].as_str().unwrap_or_default(),
                                    c["duration_ms"],
                                    c["command"].as_str().unwrap_or_default()
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .unwrap_or_default()
            })
            .await
        }
        SessionCommand::Status { session } => {
            ask(Request::SessionStatus { session }, info_text).await
        }
        SessionCommand::Export(a) => super::record::export(a).await,
        SessionCommand::List => {
            ask(Request::SessionList, |v| {
                let rows: Vec<String> = v["sessions"]
                    .as_array()
                    .map(|a| a.iter().map(info_text).collect())
                    .unwrap_or_default();
                if rows.is_empty() {
                    "no sessions".into()
                } else {
                    rows.join("\n")
                }
            })
            .await
        }
        SessionCommand::Close { session, all } => {
            ask(Request::Close { session, all }, |v| {
                let ids: Vec<&str> = v["closed"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                    .unwrap_or_default();
                format!(
                    "closed {}",
                    if ids.is_empty() {
                        "nothing".into()
                    } else {
                        ids.join(", ")
                    }
                )
            })
            .await
        }
    }
}

/// Makes the process exit with the remote status found at `field` (like ssh).
/// Text mode of a command's result (`session run`, `session job`): its output, without the
/// final newline the printed line adds back.
fn command_output(v: &Value) -> String {
    v["output"]
        .as_str()
        .unwrap_or_default()
        .trim_end_matches('\n')
        .to_string()
}

fn with_exit(mut reply: Reply, field: &str) -> Reply {
    if reply.error.is_none() {
        if let Some(code) = reply.data[field].as_i64() {
            reply.exit_code = i32::try_from(code).unwrap_or(255);
        }
    }
    reply
}

/// `session read --follow`: prints each chunk as it comes (NDJSON under --json).
async fn follow(req: Request) -> Result<Reply> {
    let json = super::output::json_mode();
    let mut client = DaemonClient::connect_or_start("cli").await?;
    client.send(&ClientToDaemon::Request(req)).await?;
    loop {
        match client.recv().await? {
            DaemonToClient::Data(v) => {
                if json {
                    super::output::print_stream_line(&super::output::ok_envelope(v));
                } else {
                    use std::io::Write;
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(v["output"].as_str().unwrap_or_default().as_bytes());
                    let _ = out.flush();
                }
            }
            DaemonToClient::Response(r) => {
                return match into_result(r) {
                    Ok(end) => {
                        if json {
                            super::output::print_stream_line(&super::output::ok_envelope(
                                json!({"end": end}),
                            ));
                        }
                        Ok(Reply::streamed(0))
                    }
                    Err((e, _)) => {
                        if json {
                            super::output::print_stream_line(&super::output::err_envelope(
                                &e, None,
                            ));
                            Ok(Reply::streamed(e.code.exit_code()))
                        } else {
                            Err(e)
                        }
                    }
                };
            }
            _ => {}
        }
    }
}
