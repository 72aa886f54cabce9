//! A proxy's hold on its SSH connection: one pool [`Lease`], replaced when the connection
//! dies, so a proxy outlives a dropped connection (the next client gets a fresh one).
//!
//! Only the lease's slot sits behind a (non-async) mutex; re-acquiring is serialised by an
//! async mutex so concurrent clients that find the connection dead share one reconnect.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::Msg;
use russh::Channel;

use crate::daemon::pool::{Lease, Pool};
use crate::error::{Error, ErrorCode, Result};
use crate::wire::spec::ConnectSpec;

/// How long the server may take to open a channel (it connects to the target first).
pub const OPEN_DEADLINE: Duration = Duration::from_secs(20);
/// Attempts at opening a channel, each on a fresh connection after a transport failure.
const OPEN_ATTEMPTS: usize = 3;

/// Why a forwarded channel could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// No connection could be had (connect, auth, host key...).
    #[error("{0}")]
    Connect(Error),
    /// The server refused the channel (it could not reach the target, or policy).
    #[error("the server refused the channel: {0:?}")]
    Refused(russh::ChannelOpenFailure),
    /// The server did not answer within [`OPEN_DEADLINE`].
    #[error("the server did not open the channel within {} s", OPEN_DEADLINE.as_secs())]
    Timeout,
    /// The connection kept failing.
    #[error("the SSH connection failed: {0}")]
    Transport(String),
}

/// A proxy's connection slot.
pub struct Link {
    pool: Pool,
    spec: ConnectSpec,
    retry: u32,
    current: Mutex<Option<Arc<Lease>>>,
    refresh: tokio::sync::Mutex<()>,
}

impl Link {
    /// A slot that acquires from `pool` for `spec` on first use.
    pub fn new(pool: Pool, spec: ConnectSpec, retry: u32) -> Link {
        Link {
            pool,
            spec,
            retry,
            current: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// `user@host:port` of the target.
    pub fn target(&self) -> String {
        self.spec.display_target()
    }

    /// The current lease if its connection is still open.
    pub fn live(&self) -> Option<Arc<Lease>> {
        let slot = self.current.lock().ok()?;
        slot.as_ref()
            .filter(|l| !l.conn.handle().is_closed())
            .cloned()
    }

    /// The id of the connection in use (even if it just died), if any.
    pub fn connection_id(&self) -> Option<String> {
        let slot = self.current.lock().ok()?;
        slot.as_ref().map(|l| l.conn.id.clone())
    }

    /// A lease on a live connection, acquiring a new one if the current one died.
    pub async fn get(&self) -> Result<Arc<Lease>> {
        if let Some(l) = self.live() {
            return Ok(l);
        }
        let _one_at_a_time = self.refresh.lock().await;
        if let Some(l) = self.live() {
            return Ok(l);
        }
        let lease = Arc::new(self.pool.acquire(&self.spec, self.retry).await?);
        tracing::debug!(conn = %lease.conn.id, target = %self.target(), "proxy holds a connection");
        if let Ok(mut slot) = self.current.lock() {
            *slot = Some(lease.clone());
        }
        Ok(lease)
    }

    /// The connection behind `lease` failed: tell the pool and stop using it.
    pub fn discard(&self, lease: &Arc<Lease>) {
        self.pool.mark_dead(lease);
        if let Ok(mut slot) = self.current.lock() {
            if slot.as_ref().is_some_and(|l| Arc::ptr_eq(l, lease)) {
                *slot = None;
            }
        }
    }

    /// Drops the lease (proxy closed).
    pub fn release(&self) {
        if let Ok(mut slot) = self.current.lock() {
            *slot = None;
        }
    }

    /// Opens a `direct-tcpip` channel to `host:port` on behalf of `peer`, replacing a dead
    /// connection (up to three tries). Returns the lease too: keep it while the channel lives.
    pub async fn open_direct(
        &self,
        host: &str,
        port: u16,
        peer: std::net::SocketAddr,
    ) -> std::result::Result<(Arc<Lease>, Channel<Msg>), OpenError> {
        let mut last = String::new();
        for _ in 0..OPEN_ATTEMPTS {
            let lease = self.get().await.map_err(OpenError::Connect)?;
            let open = lease.conn.handle().channel_open_direct_tcpip(
                host,
                u32::from(port),
                peer.ip().to_string(),
                u32::from(peer.port()),
            );
            match tokio::time::timeout(OPEN_DEADLINE, open).await {
                Ok(Ok(ch)) => return Ok((lease, ch)),
                Ok(Err(russh::Error::ChannelOpenFailure(reason))) => {
                    return Err(OpenError::Refused(reason))
                }
                Ok(Err(e)) => {
                    tracing::info!(conn = %lease.conn.id, "proxy connection failed ({e}); reconnecting");
                    self.discard(&lease);
                    last = e.to_string();
                }
                Err(_) => return Err(OpenError::Timeout),
            }
        }
        Err(OpenError::Transport(last))
    }
}

impl From<OpenError> for Error {
    fn from(e: OpenError) -> Error {
        match e {
            OpenError::Connect(e) => e,
            OpenError::Timeout => Error::new(ErrorCode::Timeout, e.to_string()),
            other => Error::new(ErrorCode::ConnectFailed, other.to_string()),
        }
    }
}
