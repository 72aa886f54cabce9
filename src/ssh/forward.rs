//! Routing of server-opened `forwarded-tcpip` channels (remote port forwards, `ssh -R`).
//!
//! Each connection's [`super::client::ClientHandler`] shares a [`ForwardRegistry`] with the
//! [`super::client::Connection`] it produced. A reverse proxy registers a bounded sender
//! under the (bind address, port) it asked the server to listen on; when the server opens a
//! channel for a connection to that port, the handler hands the channel and its accept/reject
//! handle to that sender without waiting. An unknown port, or a full queue, rejects the
//! channel (dropping the open handle rejects it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use russh::client::{ChannelOpenHandle, Msg};
use russh::Channel;
use tokio::sync::mpsc;

/// A channel the server opened for a connection to one of our remote forwards. Call
/// `reply.accept()` before using `channel`, or drop `reply` (or `reject`) to refuse it.
pub struct ForwardedChannel {
    /// The channel (usable once accepted).
    pub channel: Channel<Msg>,
    /// Accepts or rejects the channel open.
    pub reply: ChannelOpenHandle,
    /// Who connected to the remote port, as `host:port`.
    pub originator: String,
}

type Key = (String, u32);

/// Remote forwards of one connection and where their channels go. Cheap to clone.
#[derive(Clone, Default)]
pub struct ForwardRegistry {
    routes: Arc<Mutex<HashMap<Key, mpsc::Sender<ForwardedChannel>>>>,
}

impl ForwardRegistry {
    /// Routes channels for `address:port` to `tx` (replacing an earlier route). Port 0
    /// matches any port nobody registered (a forward whose port the server chose).
    pub fn register(&self, address: &str, port: u32, tx: mpsc::Sender<ForwardedChannel>) {
        if let Ok(mut m) = self.routes.lock() {
            m.insert((address.to_string(), port), tx);
        }
    }

    /// Removes the route for `address:port`.
    pub fn unregister(&self, address: &str, port: u32) {
        if let Ok(mut m) = self.routes.lock() {
            m.remove(&(address.to_string(), port));
        }
    }

    /// Hands a server-opened channel to its route without waiting; without a route, or
    /// when that route's queue is full, the channel is rejected.
    pub fn route(&self, address: &str, port: u32, fwd: ForwardedChannel) {
        let tx = self.routes.lock().ok().and_then(|m| {
            m.get(&(address.to_string(), port))
                .or_else(|| m.iter().find(|(k, _)| k.1 == port).map(|(_, v)| v))
                .or_else(|| m.iter().find(|(k, _)| k.1 == 0).map(|(_, v)| v))
                .cloned()
        });
        match tx {
            Some(tx) => {
                if tx.try_send(fwd).is_err() {
                    tracing::warn!(%address, port, "remote forward busy or closed; refused a connection");
                }
            }
            None => {
                tracing::warn!(%address, port, "server opened a channel for an unknown remote forward; refused");
            }
        }
    }
}
