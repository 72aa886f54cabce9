//! Watching: the live screen stream for the dashboard and `attach`, human takeover, and the
//! dashboard's overview feed.
//!
//! A watcher gets a keyframe, then the live byte stream, from a bounded subscription: the
//! session resyncs a watcher that falls behind with a new keyframe and never waits for it.
//! A watcher holding control releases it whenever its connection ends, however it ends.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::io::BufReader;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use super::server::{recv_frame, send_frame};
use super::session::{Event, Writer};
use super::Daemon;
use crate::error::Result;
use crate::protocol::{ClientToDaemon, DaemonToClient, WatchEvent};

/// Overview updates are coalesced over this window, so a flooding session costs the
/// dashboard at most a few snapshots per second.
const OVERVIEW_DEBOUNCE: Duration = Duration::from_millis(100);
/// Numbers each watch, for control tokens.
static NEXT_WATCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
/// Past activity entries sent when the dashboard connects.
const ACTIVITY_BACKLOG: usize = 200;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Serves a `watch` request until the client leaves or the session ends.
pub async fn watch(
    daemon: &Arc<Daemon>,
    session: &str,
    take_control: bool,
    holder: &str,
    r: &mut BufReader<OwnedReadHalf>,
    w: &mut OwnedWriteHalf,
) -> Result<Value> {
    let h = daemon.sessions.get(session)?;
    // One token per watch, so one watcher leaving never releases another's control.
    let holder = format!(
        "{holder}#{}",
        NEXT_WATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let holder = holder.as_str();
    let (keyframe, mut events, cols, rows) = h.subscribe().await?;
    let mut held = false;
    if take_control {
        h.control(holder, true).await?;
        held = true;
    }
    let result = async {
        send_frame(w, &DaemonToClient::Watch(WatchEvent::Keyframe { data: b64(&keyframe), cols, rows })).await?;
        let info = daemon.sessions.info(&h.meta.id).await?;
        send_frame(w, &DaemonToClient::Watch(WatchEvent::Info(serde_json::to_value(info).unwrap_or_default()))).await?;
        loop {
            tokio::select! {
                ev = events.recv() => {
                    let out = match ev {
                        None => break,
                        Some(Event::Output(b)) => WatchEvent::Output { data: b64(&b) },
                        Some(Event::Keyframe(k)) => {
                            let (c, r) = h.info().await.map(|i| (i.cols, i.rows)).unwrap_or((cols, rows));
                            WatchEvent::Keyframe { data: b64(&k), cols: c, rows: r }
                        }
                        Some(Event::Resized { cols, rows }) => WatchEvent::Resized { cols, rows },
                        // Recording marks are not for watchers.
                        Some(Event::Note(_)) => continue,
                        Some(Event::Changed) => {
                            let info = daemon.sessions.info(&h.meta.id).await?;
                            WatchEvent::Info(serde_json::to_value(info).unwrap_or_default())
                        }
                    };
                    send_frame(w, &DaemonToClient::Watch(out)).await?;
                }
                frame = recv_frame(r) => match frame {
                    Ok(ClientToDaemon::Input { data }) if held => {
                        let bytes = base64::engine::general_purpose::STANDARD.decode(data).unwrap_or_default();
                        if let Err(e) = h.write(Bytes::from(bytes), Writer::Human, None).await {
                            tracing::debug!("watcher input refused: {}", e.message);
                        }
                    }
                    Ok(ClientToDaemon::Control { take }) => {
                        h.control(holder, take).await?;
                        held = take;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                },
                _ = daemon.stopping() => break,
            }
        }
        Ok::<(), crate::error::Error>(())
    }
    .await;
    if held {
        // Whatever ended the watch (client exit, crash, kill), control goes back to agents.
        let _ = h.control(holder, false).await;
    }
    result?;
    Ok(json!({"session_id": h.meta.id, "watched": true}))
}

/// Serves the dashboard feed until the client leaves.
pub async fn events(
    daemon: &Arc<Daemon>,
    r: &mut BufReader<OwnedReadHalf>,
    w: &mut OwnedWriteHalf,
) -> Result<Value> {
    let mut changes = daemon.sessions.changes();
    let mut approvals = daemon.gate.queue.changes();
    let mut activity = daemon.activity.follow();
    send_frame(w, &DaemonToClient::Data(daemon.status().await)).await?;
    for e in daemon.activity.recent(ACTIVITY_BACKLOG) {
        send_frame(w, &DaemonToClient::Activity(e)).await?;
    }
    let gone = super::server::client_gone(r);
    tokio::pin!(gone);
    loop {
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() { break; }
                tokio::time::sleep(OVERVIEW_DEBOUNCE).await;
                changes.borrow_and_update();
                send_frame(w, &DaemonToClient::Data(daemon.status().await)).await?;
            }
            changed = approvals.changed() => {
                if changed.is_err() { break; }
                approvals.borrow_and_update();
                send_frame(w, &DaemonToClient::Data(daemon.status().await)).await?;
            }
            entry = activity.recv() => match entry {
                Ok(e) => {
                    send_frame(w, &DaemonToClient::Activity(e)).await?;
                    send_frame(w, &DaemonToClient::Data(daemon.status().await)).await?;
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break,
            },
            _ = &mut gone => break,
            _ = daemon.stopping() => break,
        }
    }
    Ok(json!({"events": "ended"}))
}
