//! `agentssh file ...`: upload, download, ls, read, write, edit, delete, mkdir.
//!
//! Through the daemon (the default) the CLI sends absolute local paths and the daemon,
//! running as the same user, reads and writes them itself; only `read` output and
//! `write --stdin` input cross the socket. `--direct` runs the same code
//! ([`crate::sftp::run`]) in this process. Text mode shows a progress bar for transfers on
//! a terminal; `--json` never does.

mod args;
mod render;

use std::io::{IsTerminal, Read};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

pub use args::{
    DeleteArgs, DownloadArgs, EditArgs, FileCommand, FileConn, LsArgs, MethodArg, MkdirArgs,
    ReadArgs, UploadArgs, WriteArgs,
};
use render::{render, Bar, ContentOut};

use super::{output, Reply};
use crate::client::{into_result, recv_from, DaemonClient};
use crate::error::{Error, Result};
use crate::protocol::{ClientToDaemon, DaemonToClient, Request};
use crate::sftp::{self, Ctx, Input, Progress};
use crate::wire::file::{FileAction, FileRequest, FileTarget, Method};

/// Most content `file read --json` returns (it is held in memory, then base64'd).
pub const MAX_JSON_READ: u64 = 64 * 1024 * 1024;
/// How often the progress bar is refreshed in `--direct` mode.
const TICK: Duration = Duration::from_millis(100);

use crate::fsutil::local_abs;

fn method(m: MethodArg) -> Result<Method> {
    match m {
        MethodArg::Auto => Ok(Method::Auto),
        MethodArg::Sftp => Ok(Method::Sftp),
        MethodArg::Exec => Ok(Method::Exec),
        MethodArg::Scp => Err(Error::usage(
            "--method scp is accepted for compatibility but there is no SCP backend; use --method auto, sftp or exec",
        )),
    }
}

fn build(cmd: FileCommand) -> Result<(FileConn, FileAction)> {
    Ok(match cmd {
        FileCommand::Upload(a) => {
            let local = local_abs(&a.local)?;
            (
                a.fc,
                FileAction::Upload {
                    local,
                    remote: a.remote,
                    recursive: a.recursive,
                    parents: a.parents,
                },
            )
        }
        FileCommand::Download(a) => {
            let local = local_abs(&a.local)?;
            (
                a.fc,
                FileAction::Download {
                    remote: a.remote,
                    local,
                    recursive: a.recursive,
                },
            )
        }
        FileCommand::Ls(a) => (a.fc, FileAction::Ls { remote: a.remote }),
        FileCommand::Read(a) => {
            let max_bytes = output::json_mode().then_some(MAX_JSON_READ);
            (
                a.fc,
                FileAction::Read {
                    remote: a.remote,
                    max_bytes,
                },
            )
        }
        FileCommand::Write(a) => {
            let content = if a.stdin { None } else { a.content };
            (
                a.fc,
                FileAction::Write {
                    remote: a.remote,
                    content,
                    append: a.append,
                    parents: a.parents,
                },
            )
        }
        FileCommand::Edit(a) => (
            a.fc,
            FileAction::Edit {
                remote: a.remote,
                find: a.find,
                replace: a.replace,
                regex: a.regex,
                all: a.all,
            },
        ),
        FileCommand::Delete(a) => (
            a.fc,
            FileAction::Delete {
                remote: a.remote,
                recursive: a.recursive,
            },
        ),
        FileCommand::Mkdir(a) => (
            a.fc,
            FileAction::Mkdir {
                remote: a.remote,
                parents: a.parents,
            },
        ),
    })
}

/// Reads our stdin on a thread into [`Input`] chunks, ending with [`Input::Eof`]; a read
/// error ends the stream without it (the write is then abandoned).
fn stdin_input() -> mpsc::Receiver<Input> {
    let (tx, rx) = mpsc::channel::<Input>(8);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => {
                    let _ = tx.blocking_send(Input::Eof);
                    return;
                }
                Ok(n) => {
                    if tx
                        .blocking_send(Input::Data(Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    });
    rx
}

/// Runs `file ...`.
pub async fn run(cmd: FileCommand) -> Result<Reply> {
    let (fc, action) = build(cmd)?;
    let method = method(fc.method)?;
    if fc.direct && fc.session.is_some() {
        return Err(Error::usage(
            "--session-id uses the daemon's session connection; drop --direct",
        ));
    }
    let json = output::json_mode();
    let transfer = matches!(
        action,
        FileAction::Upload { .. } | FileAction::Download { .. }
    );
    let bar = Bar::new(transfer && !json && std::io::stderr().is_terminal());
    let mut content = ContentOut::new(json);
    let result = if fc.direct {
        direct(&fc, method, &action, &bar, &mut content).await
    } else {
        via_daemon(&fc, method, &action, &bar, &mut content).await
    };
    bar.finish();
    let mut data = result?;
    if action.streams_content() {
        content.finish(&mut data);
        if !json {
            return Ok(Reply {
                data,
                text: None,
                exit_code: 0,
                error: None,
                streamed: false,
            });
        }
    }
    let text = render(&action, &data);
    Ok(Reply::ok(data, text))
}

async fn interrupt() {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    match term {
        Ok(mut t) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = t.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn direct(
    fc: &FileConn,
    method: Method,
    action: &FileAction,
    bar: &Bar,
    content: &mut ContentOut,
) -> Result<Value> {
    let mut spec = super::target::resolve(&fc.conn)?;
    let conn = super::connect::connect_with_retry(&mut spec, fc.retry).await?;
    let progress = Arc::new(Progress::default());
    let (content_tx, mut content_rx) = mpsc::channel::<Bytes>(8);
    let ctx = Ctx {
        progress: progress.clone(),
        content: action.streams_content().then_some(content_tx),
        input: action.wants_input().then(stdin_input),
    };
    let op = sftp::run(&conn.handle, method, action, ctx, interrupt());
    tokio::pin!(op);
    let mut tick = tokio::time::interval(TICK);
    let mut open = true;
    let result = loop {
        tokio::select! {
            r = &mut op => break r,
            chunk = content_rx.recv(), if open => match chunk {
                Some(b) => content.push(&b),
                None => open = false,
            },
            _ = tick.tick() => {
                let (d, t) = progress.get();
                bar.update(d, t);
            }
        }
    };
    while let Some(b) = content_rx.recv().await {
        content.push(&b);
    }
    let _ = conn
        .handle
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    result
}

async fn via_daemon(
    fc: &FileConn,
    method: Method,
    action: &FileAction,
    bar: &Bar,
    content: &mut ContentOut,
) -> Result<Value> {
    let mut target = match &fc.session {
        Some(s) => FileTarget::Session { session: s.clone() },
        None => FileTarget::Spec {
            spec: Box::new(super::target::resolve(&fc.conn)?),
            retry: fc.retry,
        },
    };
    let mut prompted = action.wants_input();
    loop {
        let mut client = DaemonClient::connect_or_start("cli").await?;
        let req = Request::File(Box::new(FileRequest {
            target: target.clone(),
            method,
            action: action.clone(),
        }));
        client.send(&ClientToDaemon::Request(req)).await?;
        let (mut reader, writer) = client.split().await?;
        // The pump owns the write half and keeps it open until we abort it: the daemon takes
        // a closed socket for a client that went away (and cancels the operation).
        let input = action.wants_input().then(stdin_input);
        let pump = tokio::spawn(pump_input(input, writer));
        let response = loop {
            match recv_from(&mut reader).await {
                Ok(DaemonToClient::Progress { done, total }) => bar.update(done, total),
                Ok(DaemonToClient::Output { data, .. }) => {
                    let b = base64::engine::general_purpose::STANDARD
                        .decode(data)
                        .unwrap_or_default();
                    content.push(&b);
                }
                Ok(DaemonToClient::Response(r)) => break Ok(r),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
        };
        pump.abort();
        match into_result(response?) {
            Ok(v) => return Ok(v),
            Err((error, data)) => {
                if let FileTarget::Spec { spec, .. } = &mut target {
                    if !prompted
                        && super::connect::offer_password_prompt(spec, error.code, &error.message)?
                    {
                        prompted = true;
                        continue;
                    }
                }
                return Err(crate::client::error_with_data((error, data)));
            }
        }
    }
}

async fn pump_input(
    input: Option<mpsc::Receiver<Input>>,
    mut writer: tokio::net::unix::OwnedWriteHalf,
) {
    use tokio::io::AsyncWriteExt;
    if let Some(mut rx) = input {
        while let Some(chunk) = rx.recv().await {
            let frame = match chunk {
                Input::Data(b) => ClientToDaemon::Stdin {
                    data: base64::engine::general_purpose::STANDARD.encode(&b),
                },
                Input::Eof => ClientToDaemon::StdinEof,
            };
            let Ok(bytes) = crate::protocol::encode(&frame) else {
                return;
            };
            if writer.write_all(&bytes).await.is_err() {
                return;
            }
        }
    }
    std::future::pending::<()>().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn local_paths_are_absolute_and_normalised() {
        assert_eq!(local_abs("/a/b/../c").unwrap(), PathBuf::from("/a/c"));
        assert_eq!(local_abs("/a/./b/").unwrap().to_string_lossy(), "/a/b/");
        assert_eq!(local_abs("/..").unwrap(), PathBuf::from("/"));
        assert!(local_abs("x").unwrap().is_absolute());
        assert!(local_abs("").is_err());
    }

    #[test]
    fn scp_is_refused_with_a_usage_error() {
        assert_eq!(
            method(MethodArg::Scp).unwrap_err().code,
            crate::error::ErrorCode::Usage
        );
        assert_eq!(method(MethodArg::Exec).unwrap(), Method::Exec);
    }
}
