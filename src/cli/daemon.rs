//! `agentssh daemon ...` and `agentssh log`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::args::{DaemonCommand, LogArgs};
use super::Reply;
use crate::client::{into_result, DaemonClient};
use crate::config::Paths;
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::{ActivityEntry, DaemonToClient, Request};

/// How long `daemon shutdown` waits for the process to exit.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// A uid from a number or a user name (looked up in /etc/passwd); never our own.
fn uid_of(user: &str) -> Result<u32> {
    let uid = match user.parse::<u32>() {
        Ok(n) => n,
        Err(_) => std::fs::read_to_string("/etc/passwd")
            .ok()
            .and_then(|p| {
                p.lines().find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.first() == Some(&user)).then(|| f.get(2)?.parse().ok())?
                })
            })
            .ok_or_else(|| Error::usage(format!("--agent-uid: no user {user:?}")))?,
    };
    if uid == rustix::process::getuid().as_raw() {
        return Err(Error::usage(
            "--agent-uid must be another user than the one running the daemon",
        ));
    }
    Ok(uid)
}

/// Runs one daemon subcommand.
pub fn run(cmd: DaemonCommand) -> Result<Reply> {
    match cmd {
        DaemonCommand::Run {
            pool_idle_secs,
            agent_uid,
            agent_socket,
        } => {
            let agent_uid = agent_uid.map(|u| uid_of(&u)).transpose()?;
            crate::daemon::run(crate::daemon::RunOptions {
                pool_idle: Duration::from_secs(pool_idle_secs.max(1)),
                agent_socket: agent_uid
                    .map(|_| agent_socket.unwrap_or_else(crate::config::default_agent_socket)),
                agent_uid,
            })?;
            Ok(Reply::ok(json!({"stopped": true}), ""))
        }
        DaemonCommand::Status => super::runtime()?.block_on(status()),
        DaemonCommand::Shutdown => super::runtime()?.block_on(shutdown()),
        DaemonCommand::Install { dry_run } => {
            let v = crate::daemon::install::install(dry_run)?;
            let text = if dry_run {
                v["unit"].as_str().unwrap_or_default().to_string()
            } else {
                format!(
                    "wrote {}\nenable it with: {}",
                    v["unit_path"].as_str().unwrap_or_default(),
                    v["enable_with"].as_str().unwrap_or_default()
                )
            };
            Ok(Reply::ok(v, text))
        }
        DaemonCommand::Uninstall { dry_run } => {
            let v = crate::daemon::install::uninstall(dry_run)?;
            let text = match (v["existed"].as_bool(), dry_run) {
                (Some(false), _) => "no unit installed".to_string(),
                (_, true) => format!(
                    "would remove {}",
                    v["unit_path"].as_str().unwrap_or_default()
                ),
                _ => format!(
                    "removed {}\nif it was enabled, also run: {}",
                    v["unit_path"].as_str().unwrap_or_default(),
                    v["disable_with"].as_str().unwrap_or_default()
                ),
            };
            Ok(Reply::ok(v, text))
        }
    }
}

async fn status() -> Result<Reply> {
    let Some(client) = DaemonClient::connect_existing("cli").await? else {
        let paths = Paths::current();
        return Ok(Reply::ok(
            json!({"running": false, "socket": paths.socket}),
            "daemon not running (it starts on demand)",
        ));
    };
    let v = into_result(client.request(Request::Status).await?).map_err(|(e, _)| e)?;
    let text = format!(
        "daemon running: pid {}, version {}, up {} s\nsocket {}\n{} connection(s), {} session(s), {} prox(ies)",
        v["pid"],
        v["version"].as_str().unwrap_or_default(),
        v["uptime_ms"].as_u64().unwrap_or(0) / 1000,
        v["socket"].as_str().unwrap_or_default(),
        v["connections"],
        v["sessions"],
        v["proxies"]
    );
    Ok(Reply::ok(v, text))
}

/// Whether `pid` is a live process; a zombie has exited and counts as gone.
fn alive(pid: u32) -> bool {
    crate::client::process_alive(pid)
}

async fn shutdown() -> Result<Reply> {
    let paths = Paths::current();
    let connected = match DaemonClient::connect_existing("cli").await {
        Ok(Some(mut c)) => c.handshake().await.map(|pid| (c, pid)),
        Ok(None) => {
            return Ok(Reply::ok(
                json!({"was_running": false}),
                "daemon was not running",
            ))
        }
        Err(e) => Err(e),
    };
    let (client, pid) = match connected {
        Ok(c) => c,
        // A daemon of another version cannot be asked in its own protocol: signal it.
        Err(e) if e.code == ErrorCode::VersionMismatch => return terminate_by_peer(&paths).await,
        Err(e) => return Err(e),
    };
    into_result(client.request(Request::Shutdown).await?).map_err(|(e, _)| e)?;
    wait_gone(pid, &paths).await?;
    Ok(Reply::ok(
        json!({"was_running": true, "pid": pid, "stopped": true}),
        format!("daemon (pid {pid}) stopped"),
    ))
}

async fn wait_gone(pid: u32, paths: &Paths) -> Result<()> {
    let started = Instant::now();
    while alive(pid) || paths.socket.exists() {
        if started.elapsed() > SHUTDOWN_DEADLINE {
            return Err(Error::new(
                ErrorCode::Timeout,
                format!(
                    "daemon pid {pid} did not exit within {} s",
                    SHUTDOWN_DEADLINE.as_secs()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Stops whatever listens on our socket with SIGTERM. The pid comes from the kernel
/// (SO_PEERCRED), not from anything the peer says, and must be a process of ours.
async fn terminate_by_peer(paths: &Paths) -> Result<Reply> {
    let stream = tokio::net::UnixStream::connect(&paths.socket)
        .await
        .map_err(|e| Error::local_io(paths.socket.display(), &e))?;
    let cred = stream
        .peer_cred()
        .map_err(|e| Error::local_io("reading the daemon's credentials", &e))?;
    drop(stream);
    let me = rustix::process::getuid().as_raw();
    let pid = match (
        cred.uid() == me,
        cred.pid().and_then(|p| u32::try_from(p).ok()),
    ) {
        (true, Some(pid)) if pid > 1 => pid,
        _ => {
            return Err(Error::new(
                ErrorCode::PermissionDenied,
                format!(
                    "the process behind {} is not ours; refusing to signal it",
                    paths.socket.display()
                ),
            ))
        }
    };
    let target = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(0));
    nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGTERM).map_err(|e| {
        Error::new(
            ErrorCode::PermissionDenied,
            format!("cannot signal daemon pid {pid}: {e}"),
        )
    })?;
    wait_gone(pid, paths).await?;
    Ok(Reply::ok(
        json!({"was_running": true, "pid": pid, "stopped": true, "other_version": true}),
        format!("daemon of another version (pid {pid}) stopped with SIGTERM"),
    ))
}

/// `YYYY-MM-DD HH:MM:SS.mmm` in local time (`TZ`, else /etc/localtime, through libc's
/// `localtime_r`: no date crate for one line of text); the raw ms if the C library fails.
fn local_time(ms: u64) -> String {
    let Ok(secs) = libc::time_t::try_from(ms / 1000) else {
        return ms.to_string();
    };
    // SAFETY: `tm` is plain old data for which all-zero bytes are a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r reads `secs` and writes only into `tm`, both ours for the call.
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return ms.to_string();
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        i64::from(tm.tm_year) + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        ms % 1000
    )
}

fn entry_text(e: &ActivityEntry) -> String {
    format!(
        "{}  {:<10} {:<28} {:<8} {:>6} ms  {}",
        local_time(e.time_ms),
        e.client,
        e.target.as_deref().unwrap_or("-"),
        e.outcome,
        e.duration_ms,
        e.command
    )
}

/// `agentssh log [--follow]`.
pub fn log(args: LogArgs) -> Result<Reply> {
    if let Some(super::args::LogAction::Verify) = args.action {
        return verify_log();
    }
    super::runtime()?.block_on(async move {
        let client = if args.follow {
            Some(DaemonClient::connect_or_start("cli").await?)
        } else {
            DaemonClient::connect_existing("cli").await?
        };
        let Some(mut client) = client else {
            return Ok(Reply::ok(
                json!({"entries": []}),
                "daemon not running: no activity",
            ));
        };
        if !args.follow {
            let v = into_result(
                client
                    .request(Request::Log {
                        follow: false,
                        limit: args.limit,
                    })
                    .await?,
            )
            .map_err(|(e, _)| e)?;
            let entries: Vec<ActivityEntry> =
                serde_json::from_value(v["entries"].clone()).unwrap_or_default();
            let text = entries
                .iter()
                .map(entry_text)
                .collect::<Vec<_>>()
                .join("\n");
            return Ok(Reply::ok(v, text));
        }
        client
            .send(&crate::protocol::ClientToDaemon::Request(Request::Log {
                follow: true,
                limit: args.limit,
            }))
            .await?;
        loop {
            match client.recv().await {
                Ok(DaemonToClient::Activity(e)) => {
                    if super::output::json_mode() {
                        super::output::print_stream_line(&super::output::ok_envelope(
                            serde_json::to_value(&e).unwrap_or(Value::Null),
                        ));
                    } else {
                        println!("{}", entry_text(&e));
                    }
                }
                Ok(DaemonToClient::Response(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        Ok(Reply::streamed(0))
    })
}

/// `log verify`: reads the files directly (no daemon needed); exit 1 when the chain or a
/// recording no longer checks out.
fn verify_log() -> Result<Reply> {
    let dir = crate::config::state_dir()?;
    let verdict = crate::daemon::record::audit::verify(&dir)
        .map_err(|e| Error::local_io(dir.display(), &e))?;
    let text = match &verdict.broken_at {
        None => format!(
            "ok: {} entries, {} recordings checked",
            verdict.entries, verdict.recordings_checked
        ),
        Some(b) => format!(
            "BROKEN at {} line {}: {}",
            b.file.display(),
            b.line,
            b.reason
        ),
    };
    let mut reply = Reply::ok(serde_json::to_value(&verdict).unwrap_or_default(), text);
    if !verdict.ok {
        reply.exit_code = 1;
    }
    Ok(reply)
}
