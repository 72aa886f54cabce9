//! The MCP server's daemon connection, kept from one tool call to the next.
//!
//! A one-shot client connects for each request; a long-lived MCP server would pay that
//! (a unix-socket connect, a task start in the daemon, the hello exchange) on every tool
//! call, some tens of microseconds each. So its connections ask the daemon to stay open
//! after a one-shot request (`keep_alive` in the hello), and the last one answered waits
//! here for the next call.
//!
//! A connection is taken out for one call and given back only after a complete answer to
//! a request that keeps it ([`crate::protocol::Request::keeps_connection`]): a call that is
//! cancelled, fails on the wire, or ran a stream drops its connection, and the daemon ends
//! that task. Concurrent calls each take their own (fresh ones when this slot is empty);
//! one is kept. A kept connection is used only while younger than [`REUSE_FOR`] since its
//! last answer (the daemon waits [`KEEP_ALIVE_IDLE`] for the next request) and still open
//! (a restarted daemon closed it); otherwise the call connects as before, autostarting the
//! daemon if none runs.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::CLIENT_KIND;
use crate::client::DaemonClient;
use crate::error::Result;
use crate::protocol::KEEP_ALIVE_IDLE;

/// How long after its last answer a kept connection is used again: half the daemon's
/// wait, so it never closes one we are writing to.
const REUSE_FOR: Duration = Duration::from_secs(KEEP_ALIVE_IDLE.as_secs() / 2);

/// The kept connection and when its last answer came.
static KEPT: Mutex<Option<(DaemonClient, Instant)>> = Mutex::new(None);

/// A connection for `request`: the kept one when it is fresh and open, else a new one
/// that asks to be kept.
pub async fn connection() -> Result<DaemonClient> {
    let kept = KEPT.lock().ok().and_then(|mut slot| slot.take());
    if let Some((client, answered)) = kept {
        if answered.elapsed() < REUSE_FOR && client.still_open() {
            return Ok(client);
        }
    }
    DaemonClient::connect_or_start(CLIENT_KIND)
        .await?
        .keep_alive()
}

/// Gives back the connection of a completely answered `request`, for the next call.
pub fn give_back(client: DaemonClient, request_kept_it: bool) {
    if !request_kept_it {
        return;
    }
    if let Ok(mut slot) = KEPT.lock() {
        if slot.is_none() {
            *slot = Some((client, Instant::now()));
        }
    }
}
