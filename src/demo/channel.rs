//! One task per session channel of the demo server: it collects the PTY request, then runs
//! what the client asked for (an exec command, a shell, or the SFTP subsystem) and relays
//! bytes, window changes, signals and the exit status until the channel or the child ends.
//!
//! The task owns the russh `Channel` and reads it continuously, so a busy channel never
//! stalls the connection; output goes through russh's window-limited writers, so memory per
//! channel is bounded by one copy buffer.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use russh::server::Msg;
use russh::{Channel, ChannelMsg};
use tokio::io::{AsyncWriteExt, BufWriter};

use super::pty::{self, Spawn};
use super::server::Shared;

/// How long the output of a finished child may keep flowing (a background grandchild can
/// hold the pipe or PTY open forever; OpenSSH waits, the demo does not).
const DRAIN_DEADLINE: Duration = Duration::from_millis(500);

/// What the client asked to run on the channel.
enum Start {
    Exec(String),
    Shell,
}

/// Serves one session channel until it closes.
pub async fn serve(mut channel: Channel<Msg>, handle: russh::server::Handle, shared: Arc<Shared>) {
    let mut pty: Option<(String, u32, u32)> = None;
    let start = loop {
        match channel.wait().await {
            Some(ChannelMsg::RequestPty {
                term,
                col_width,
                row_height,
                ..
            }) => pty = Some((term, col_width, row_height)),
            Some(ChannelMsg::WindowChange {
                col_width,
                row_height,
                ..
            }) => {
                if let Some(p) = pty.as_mut() {
                    (p.1, p.2) = (col_width, row_height);
                }
            }
            Some(ChannelMsg::Exec { command, .. }) => {
                break Start::Exec(String::from_utf8_lossy(&command).into_owned())
            }
            Some(ChannelMsg::RequestShell { .. }) => break Start::Shell,
            Some(ChannelMsg::RequestSubsystem { name, .. }) => {
                if name == "sftp" {
                    let handler = super::sftp::DemoSftp::new(shared.home.clone());
                    russh_sftp::server::run(channel.into_stream(), handler).await;
                }
                return;
            }
            Some(ChannelMsg::Close) | None => return,
            Some(_) => {}
        }
    };
    let command = match &start {
        Start::Exec(c) => Some(c.as_str()),
        Start::Shell => None,
    };
    let spec = Spawn {
        shell: &shared.shell,
        command,
        home: &shared.home,
        env: &shared.env,
    };
    let id = channel.id();
    let result = match pty {
        Some((term, cols, rows)) => run_pty(channel, &spec, &term, cols, rows, &shared).await,
        None => run_piped(channel, &spec, &shared).await,
    };
    if let Some((status, tx)) = result {
        report_exit(status, &tx, &handle, id).await;
    }
}

type WriteHalf = russh::ChannelWriteHalf<Msg>;

/// Sends the exit status (or signal), EOF and close, as sshd does.
async fn report_exit(
    status: ExitStatus,
    tx: &WriteHalf,
    handle: &russh::server::Handle,
    id: russh::ChannelId,
) {
    if let Some(code) = status.code() {
        let _ = tx.exit_status(u32::try_from(code).unwrap_or(1)).await;
    } else if let Some(sig) = status.signal() {
        let _ = handle
            .exit_signal_request(
                id,
                pty::sig_of(sig),
                status.core_dumped(),
                String::new(),
                String::new(),
            )
            .await;
    }
    let _ = tx.eof().await;
    let _ = tx.close().await;
}

/// Runs the command (or shell) with pipes; stderr goes out as extended data 1.
async fn run_piped(
    channel: Channel<Msg>,
    spec: &Spawn<'_>,
    shared: &Shared,
) -> Option<(ExitStatus, WriteHalf)> {
    let (mut rx, tx) = channel.split();
    let mut child = match pty::spawn_piped(spec) {
        Ok(c) => c,
        Err(e) => {
            let msg = format!(
                "agentssh demo: cannot start {}: {e}\n",
                spec.shell.display()
            );
            let _ = tx.extended_data_bytes(1, msg.into_bytes()).await;
            let _ = tx.exit_status(127).await;
            let _ = tx.eof().await;
            let _ = tx.close().await;
            return None;
        }
    };
    let sid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
    shared.track(sid);
    let mut stdin = child.stdin.take();
    let mut pumps = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        let mut w = tx.make_writer();
        pumps.push(tokio::spawn(async move {
            let _ = tokio::io::copy(&mut out, &mut w).await;
            let _ = w.flush().await;
        }));
    }
    if let Some(mut err) = child.stderr.take() {
        let mut w = tx.make_writer_ext(Some(1));
        pumps.push(tokio::spawn(async move {
            let _ = tokio::io::copy(&mut err, &mut w).await;
            let _ = w.flush().await;
        }));
    }
    let status = loop {
        tokio::select! {
            msg = rx.wait() => match msg {
                Some(ChannelMsg::Data { data }) => {
                    if let Some(s) = stdin.as_mut() {
                        if s.write_all(&data).await.is_err() {
                            stdin = None;
                        }
                    }
                }
                Some(ChannelMsg::Eof) => stdin = None,
                Some(ChannelMsg::Signal { signal }) => signal_group(sid, &signal),
                Some(ChannelMsg::Close) | None => {
                    pty::kill_session(sid);
                    shared.untrack(sid);
                    return None;
                }
                Some(_) => {}
            },
            status = child.wait() => break status.ok()?,
        }
    };
    drop(stdin);
    let all = futures::future::join_all(pumps);
    let _ = tokio::time::timeout(DRAIN_DEADLINE, all).await;
    shared.untrack_if_empty(sid);
    Some((status, tx))
}

/// Runs the command (or shell) on a new local PTY.
async fn run_pty(
    channel: Channel<Msg>,
    spec: &Spawn<'_>,
    term: &str,
    cols: u32,
    rows: u32,
    shared: &Shared,
) -> Option<(ExitStatus, WriteHalf)> {
    let (mut rx, tx) = channel.split();
    let clamp = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
    let started = pty::open(clamp(cols), clamp(rows))
        .and_then(|pair| Ok((pty::spawn_on_pty(spec, &pair.slave, term)?, pair.master)));
    let (mut child, master) = match started {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("agentssh demo: cannot start a PTY shell: {e}\r\n");
            let _ = tx.data_bytes(msg.into_bytes()).await;
            let _ = tx.exit_status(127).await;
            let _ = tx.eof().await;
            let _ = tx.close().await;
            return None;
        }
    };
    let sid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
    shared.track(sid);
    let master = Arc::new(master);
    let mut reader = {
        let master = master.clone();
        let mut w = BufWriter::with_capacity(32 * 1024, tx.make_writer());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n) = master.read(&mut buf).await {
                if n == 0 || w.write_all(&buf[..n]).await.is_err() || w.flush().await.is_err() {
                    break;
                }
            }
        })
    };
    let status = loop {
        tokio::select! {
            msg = rx.wait() => match msg {
                Some(ChannelMsg::Data { data }) => {
                    let _ = master.write_all(&data).await;
                }
                Some(ChannelMsg::WindowChange { col_width, row_height, .. }) => {
                    let _ = master.resize(col_width, row_height);
                }
                Some(ChannelMsg::Signal { signal }) => {
                    let group = master.foreground_group().unwrap_or(sid);
                    signal_group(group, &signal);
                }
                Some(ChannelMsg::Close) | None => {
                    pty::kill_session(sid);
                    shared.untrack(sid);
                    reader.abort();
                    return None;
                }
                Some(_) => {}
            },
            status = child.wait() => break status.ok()?,
        }
    };
    if tokio::time::timeout(DRAIN_DEADLINE, &mut reader)
        .await
        .is_err()
    {
        reader.abort();
    }
    shared.untrack_if_empty(sid);
    Some((status, tx))
}

/// Sends `signal` to process group `pgid` (the client's `signal` request).
fn signal_group(pgid: i32, signal: &russh::Sig) {
    if pgid <= 1 {
        return;
    }
    if let Some(sig) = pty::signal_of(signal) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), sig);
    }
}
