//! `agentssh shell`: an interactive remote shell in this terminal, like `ssh host`.
//!
//! Raw mode is restored on every exit path: normal return, error, panic (via the panic
//! cleanup hook) and SIGTERM/SIGHUP (handled in the loop). Window size changes are forwarded.

use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;

use russh::ChannelMsg;
use rustix::termios::{self, OptionalActions, Termios};
use tokio::signal::unix::{signal, SignalKind};

use super::args::ShellArgs;
use super::Reply;
use crate::error::{Error, ErrorCode, Result};

/// Puts stdin in raw mode and restores it on drop (and on panic).
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> Result<Self> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd())
            .map_err(|e| Error::local_io("tcgetattr", &e.into()))?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(stdin.as_fd(), OptionalActions::Now, &raw)
            .map_err(|e| Error::local_io("tcsetattr", &e.into()))?;
        let restore = saved.clone();
        crate::panic_cleanup::set_panic_cleanup(Some(Box::new(move || {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), OptionalActions::Now, &restore);
        })));
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), OptionalActions::Now, &self.saved);
        crate::panic_cleanup::set_panic_cleanup(None);
    }
}

/// The terminal size of stdout (else stdin), as (cols, rows).
pub fn terminal_size() -> (u32, u32) {
    let ws = termios::tcgetwinsize(std::io::stdout().as_fd())
        .or_else(|_| termios::tcgetwinsize(std::io::stdin().as_fd()));
    match ws {
        Ok(w) if w.ws_col > 0 && w.ws_row > 0 => (u32::from(w.ws_col), u32::from(w.ws_row)),
        _ => (80, 24),
    }
}

fn channel_err(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::ConnectFailed, format!("SSH channel failed: {e}"))
}

/// Runs the interactive shell and returns the remote exit status.
pub async fn run(args: ShellArgs) -> Result<Reply> {
    if super::output::json_mode() {
        return Err(Error::usage(
            "shell is interactive and cannot run under --json; use connect and session commands instead",
        ));
    }
    let mut spec = super::target::resolve(&args.conn)?;
    super::connect::authorize(&spec, None).await?;
    let conn = super::connect::connect_with_retry(&mut spec, 0).await?;
    let channel = conn
        .handle
        .channel_open_session()
        .await
        .map_err(channel_err)?;
    let term = std::env::var("TERM").unwrap_or_else(|_| "xterm-256color".into());
    let (cols, rows) = terminal_size();
    channel
        .request_pty(false, &term, cols, rows, 0, 0, &[])
        .await
        .map_err(channel_err)?;
    channel.request_shell(false).await.map_err(channel_err)?;

    let raw = if std::io::stdin().is_terminal() {
        Some(RawMode::enter()?)
    } else {
        None
    };
    let mut input = super::exec::spawn_stdin_reader(4096, 32);
    let mut winch =
        signal(SignalKind::window_change()).map_err(|e| Error::local_io("SIGWINCH", &e))?;
    let mut term_sig =
        signal(SignalKind::terminate()).map_err(|e| Error::local_io("SIGTERM", &e))?;
    let mut hup_sig = signal(SignalKind::hangup()).map_err(|e| Error::local_io("SIGHUP", &e))?;
    let (mut reader, writer) = channel.split();
    let mut exit_status: Option<u32> = None;
    let mut stdin_open = true;
    let mut stdout = std::io::stdout();
    let result: Result<()> = loop {
        tokio::select! {
            msg = reader.wait() => match msg {
                Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                    let _ = stdout.write_all(&data);
                    let _ = stdout.flush();
                }
                Some(ChannelMsg::ExitStatus { exit_status: s }) => exit_status = Some(s),
                Some(ChannelMsg::ExitSignal { .. }) => exit_status = exit_status.or(Some(255)),
                Some(ChannelMsg::Close) | None => break Ok(()),
                Some(_) => {}
            },
            chunk = input.recv(), if stdin_open => match chunk {
                Some(b) => {
                    if let Err(e) = writer.data_bytes(b).await {
                        break Err(channel_err(e));
                    }
                }
                None => {
                    stdin_open = false;
                    let _ = writer.eof().await;
                }
            },
            _ = winch.recv() => {
                let (c, r) = terminal_size();
                let _ = writer.window_change(c, r, 0, 0).await;
            }
            _ = term_sig.recv() => break Err(Error::new(ErrorCode::Internal, "terminated by SIGTERM")),
            _ = hup_sig.recv() => break Err(Error::new(ErrorCode::Internal, "terminal hung up (SIGHUP)")),
        }
    };
    drop(raw);
    let _ = conn
        .handle
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    result?;
    let code = exit_status
        .map(|s| i32::try_from(s).unwrap_or(255))
        .unwrap_or(255);
    Ok(Reply {
        data: serde_json::json!({"exit_status": exit_status}),
        text: None,
        exit_code: code,
        error: None,
        streamed: false,
    })
}
