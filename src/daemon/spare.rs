//! One session channel opened ahead of need on each pooled connection.
//!
//! Opening a session channel costs a round trip to the server plus two task hand-offs in the
//! daemon (about a quarter of a millisecond on loopback, a network round trip elsewhere), and
//! every `exec`, file operation and PTY paid it before its own request could go out. So a
//! pooled connection keeps one session channel open and unused: a caller takes it, and a
//! replacement is opened in the background for the next one.
//!
//! The server sees an open session channel with no request on it, as between `ssh`'s
//! channel open and its exec request: nothing runs, nothing is logged at OpenSSH's default
//! level. A spare the server has closed meanwhile (a server with an idle-channel timeout,
//! say; OpenSSH 9.2's `ChannelTimeout session=` was seen to leave it alone) is noticed when
//! taken and replaced by a fresh channel; when the server refuses the
//! replacement (its `MaxSessions` reached) the connection simply has no spare until the next
//! caller opens one. A server that closes the spare in the instant between that check and
//! our request makes the request fail with `connect_failed` and "nothing ran" (see
//! [`crate::ssh::exec::run_on_channel`]), never with a command that seems to have run.
//!
//! Callers take it through [`PooledConn::open_session`], which file operations reach via
//! [`crate::ssh::exec::ChannelSource`]; `daemon status` shows per connection whether a spare
//! is waiting (`spare_channel`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use russh::client::Msg;
use russh::{Channel, ChannelMsg};

use super::pool::PooledConn;

/// How long a background open may take before it is given up.
const OPEN_DEADLINE: Duration = Duration::from_secs(10);

/// The spare channel slot of one connection.
#[derive(Default)]
pub struct Spare {
    slot: Mutex<Option<Channel<Msg>>>,
    refilling: AtomicBool,
}

impl Spare {
    /// Takes the spare if there is one and the server has not closed it.
    pub fn take_open(&self) -> Option<Channel<Msg>> {
        let mut channel = self.slot.lock().ok()?.take()?;
        // An unused session channel receives nothing but its end; anything else that is
        // already queued (a window adjustment) is harmless and leaves it usable.
        match channel.wait().now_or_never() {
            None => Some(channel),
            Some(None | Some(ChannelMsg::Close | ChannelMsg::Eof)) => {
                tracing::debug!("the server closed the spare channel; opening a fresh one");
                None
            }
            Some(Some(_)) => Some(channel),
        }
    }

    /// Whether a spare is in the slot (it may still turn out closed when taken).
    pub fn is_ready(&self) -> bool {
        self.slot.lock().map(|s| s.is_some()).unwrap_or(false)
    }

    /// Opens a replacement spare for `conn` in the background, unless one is being opened,
    /// one is there already, or the connection is gone.
    pub fn refill(conn: &Arc<PooledConn>) {
        let spare = &conn.spare;
        let has_one = spare.slot.lock().map(|s| s.is_some()).unwrap_or(true);
        if has_one || conn.handle().is_closed() || spare.refilling.swap(true, Ordering::AcqRel) {
            return;
        }
        // A weak reference: a connection the pool has dropped is not revived by a refill
        // that starts late, and is kept at most until an open in flight ends.
        let weak = Arc::downgrade(conn);
        tokio::spawn(async move {
            let Some(conn) = weak.upgrade() else { return };
            let open = conn.handle().channel_open_session();
            match tokio::time::timeout(OPEN_DEADLINE, open).await {
                Ok(Ok(channel)) => {
                    if let Ok(mut slot) = conn.spare.slot.lock() {
                        *slot = Some(channel);
                    }
                }
                Ok(Err(e)) => tracing::debug!(conn = %conn.id, "no spare channel: {e}"),
                Err(_) => tracing::debug!(conn = %conn.id, "no spare channel: open timed out"),
            }
            conn.spare.refilling.store(false, Ordering::Release);
        });
    }
}
