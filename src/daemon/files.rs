//! `file ...` requests: the daemon runs the operation on a pooled connection (or a
//! session's) and reads or writes the local paths itself, as the same user on the same
//! machine. Over the socket go only `read` content (stdout `Output` frames), `write --stdin`
//! input (`Stdin` frames, ended by `StdinEof`) and `Progress` frames, a few per second.
//!
//! A client that hangs up mid-way cancels the operation: it winds down, its temp files are
//! removed and no target is replaced with a partial file.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use serde_json::Value;
use tokio::io::BufReader;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

use super::server::send_frame;
use super::Daemon;
use crate::error::Result;
use crate::protocol::{self, ClientToDaemon, DaemonToClient, OutputStream, Response};
use crate::sftp::{self, Ctx, Input, Progress};
use crate::wire::file::{FileRequest, FileTarget};

/// How often progress frames go out (when something changed).
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

type Reader = BufReader<OwnedReadHalf>;

/// Serves one file request.
pub async fn handle(
    daemon: &Arc<Daemon>,
    req: FileRequest,
    r: &mut Reader,
    w: &mut OwnedWriteHalf,
) -> Response {
    match run(daemon, req, r, w).await {
        Ok(v) => Response::Ok(v),
        Err(error) => Response::Err { error, data: None },
    }
}

async fn run(
    daemon: &Arc<Daemon>,
    req: FileRequest,
    r: &mut Reader,
    w: &mut OwnedWriteHalf,
) -> Result<Value> {
    // The lease (or the session's connection) is held for the whole operation.
    let (_lease, conn) = match &req.target {
        FileTarget::Spec { spec, retry } => {
            let lease = daemon.pool.acquire(spec, *retry).await?;
            let conn = lease.conn.clone();
            (Some(lease), conn)
        }
        FileTarget::Session { session } => {
            let h = daemon.sessions.get(session)?;
            (None, h.connection().await?)
        }
    };
    let progress = Arc::new(Progress::default());
    let (content_tx, mut content_rx) = mpsc::channel::<Bytes>(8);
    let (input_tx, input_rx) = mpsc::channel::<Input>(8);
    let wants_input = req.action.wants_input();
    let ctx = Ctx {
        progress: progress.clone(),
        content: req.action.streams_content().then_some(content_tx),
        input: wants_input.then_some(input_rx),
    };
    let (gone_tx, gone_rx) = oneshot::channel::<()>();
    let op = sftp::run(&conn, req.method, &req.action, ctx, async {
        if gone_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    });
    tokio::pin!(op);
    let pump = pump(r, wants_input.then_some(input_tx));
    tokio::pin!(pump);
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    let mut last = (0, 0);
    let mut client_ok = true;
    let mut content_open = true;
    let mut pump_done = false;
    let mut gone = Some(gone_tx);
    let result = loop {
        tokio::select! {
            res = &mut op => break res,
            chunk = content_rx.recv(), if content_open => match chunk {
                Some(b) if client_ok => {
                    if send_frame(w, &output(&b)).await.is_err() {
                        client_ok = false;
                        if let Some(g) = gone.take() { let _ = g.send(()); }
                    }
                }
                Some(_) => {}
                None => content_open = false,
            },
            _ = tick.tick() => {
                let now = progress.get();
                if client_ok && now != last {
                    last = now;
                    let frame = DaemonToClient::Progress { done: now.0, total: now.1 };
                    if send_frame(w, &frame).await.is_err() {
                        client_ok = false;
                        if let Some(g) = gone.take() { let _ = g.send(()); }
                    }
                }
            }
            () = &mut pump, if !pump_done => {
                // The client hung up: stop the operation.
                pump_done = true;
                client_ok = false;
                if let Some(g) = gone.take() { let _ = g.send(()); }
            }
        }
    };
    // Content still queued when the operation ended goes out before the answer.
    while let Some(b) = content_rx.recv().await {
        if !client_ok || send_frame(w, &output(&b)).await.is_err() {
            client_ok = false;
        }
    }
    let now = progress.get();
    if client_ok && now != last && now.1 > 0 {
        let _ = send_frame(
            w,
            &DaemonToClient::Progress {
                done: now.0,
                total: now.1,
            },
        )
        .await;
    }
    result
}

fn output(b: &[u8]) -> DaemonToClient {
    DaemonToClient::Output {
        stream: OutputStream::Stdout,
        data: base64::engine::general_purpose::STANDARD.encode(b),
    }
}

/// Reads client frames until it hangs up, forwarding `Stdin`/`StdinEof` as [`Input`]. An
/// input that ends without `StdinEof` (the client died) is seen as interrupted.
async fn pump(r: &mut Reader, tx: Option<mpsc::Sender<Input>>) {
    let mut tx = tx;
    loop {
        let frame = match protocol::read_frame(r).await {
            Ok(Some(f)) => protocol::decode::<ClientToDaemon>(&f),
            _ => return,
        };
        match frame {
            Ok(ClientToDaemon::Stdin { data }) => {
                match base64::engine::general_purpose::STANDARD.decode(data) {
                    Ok(bytes) => {
                        if let Some(t) = &tx {
                            if t.send(Input::Data(Bytes::from(bytes))).await.is_err() {
                                tx = None;
                            }
                        }
                    }
                    Err(_) => {
                        tracing::warn!("bad stdin frame; abandoning the write");
                        tx = None;
                    }
                }
            }
            Ok(ClientToDaemon::StdinEof) => {
                if let Some(t) = tx.take() {
                    let _ = t.send(Input::Eof).await;
                }
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}
