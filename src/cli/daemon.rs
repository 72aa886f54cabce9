//! `agentssh daemon ...` and `agentssh log`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::args::{DaemonCommand, LogArgs};
use super::Reply;
use crate::client::{into_result, DaemonClient};
use crate::daemon::Paths;
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::{ActivityEntry, DaemonToClient, Request};

/// How long `daemon shutdown` waits for the process to exit.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// Runs one daemon subcommand.
pub fn run(cmd: DaemonCommand) -> Result<Reply> {
    match cmd {
        DaemonCommand::Run { pool_idle_secs } => {
            crate::daemon::run(crate::daemon::RunOptions {
                pool_idle: Duration::from_secs(pool_idle_secs.max(1)),
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

fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

async fn shutdown() -> Result<Reply> {
    let Some(client) = DaemonClient::connect_existing("cli").await? else {
        return Ok(Reply::ok(
            json!({"was_running": false}),
            "daemon was not running",
        ));
    };
    let pid = client.daemon_pid;
    into_result(client.request(Request::Shutdown).await?).map_err(|(e, _)| e)?;
    let paths = Paths::current();
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
    Ok(Reply::ok(
        json!({"was_running": true, "pid": pid, "stopped": true}),
        format!("daemon (pid {pid}) stopped"),
    ))
}

fn entry_text(e: &ActivityEntry) -> String {
    format!(
        "{}  {:<10} {:<28} {:<8} {:>6} ms  {}",
        e.time_ms,
        e.client,
        e.target.as_deref().unwrap_or("-"),
        e.outcome,
        e.duration_ms,
        e.command
    )
}

/// `agentssh log [--follow]`.
pub fn log(args: LogArgs) -> Result<Reply> {
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
        Ok(Reply {
            data: Value::Null,
            text: None,
            exit_code: 0,
            error: None,
            streamed: true,
        })
    })
}
