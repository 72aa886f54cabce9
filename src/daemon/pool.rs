//! The connection pool: one actor owns every pooled SSH connection.
//!
//! Keyed by [`ConnectSpec::pool_key`] (user, host, port, route, auth identity). A lease
//! counts one channel in use; a connection serves up to `limit` channels at once (OpenSSH's
//! default MaxSessions is 10) and a server that refuses a channel earlier lowers that
//! connection's limit, so further work opens a second connection. Concurrent first requests
//! for one key share a single connect. Idle connections close after the idle timeout; dead
//! ones (keepalive failed, server gone) are dropped and replaced on the next acquire.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use russh::client::Msg;
use russh::Channel;

use super::spare::Spare;
use crate::error::{Error, ErrorCode, Result};
use crate::ssh::client::{Connection, SshHandle};
use crate::ssh::exec::ChannelSource;
use crate::wire::spec::ConnectSpec;

/// Channels one connection serves at once before the pool opens another.
pub const DEFAULT_CHANNELS_PER_CONNECTION: usize = 10;

/// A pooled connection, shared by its leases.
pub struct PooledConn {
    /// `c1`, `c2`, ...
    pub id: String,
    /// `user@host:port`.
    pub target: String,
    /// When it was opened.
    pub created: Instant,
    /// Channels ever opened on it.
    pub channels_opened: AtomicU64,
    conn: Connection,
    /// A session channel opened ahead of need.
    pub(super) spare: Spare,
}

impl PooledConn {
    /// The russh handle.
    pub fn handle(&self) -> &SshHandle {
        &self.conn.handle
    }

    /// A session channel: the spare opened in advance if the server still holds it open,
    /// else a new one. Either way a spare for the next caller is then opened in the
    /// background (see [`super::spare`]).
    pub async fn open_session(self: &Arc<Self>) -> std::result::Result<Channel<Msg>, russh::Error> {
        let channel = match self.spare.take_open() {
            Some(channel) => channel,
            None => self.handle().channel_open_session().await?,
        };
        Spare::refill(self);
        Ok(channel)
    }

    /// Whether a spare session channel is open and waiting for the next caller.
    pub fn spare_ready(&self) -> bool {
        self.spare.is_ready()
    }

    /// Where this connection's remote-forward channels go (reverse proxies register here).
    pub fn forwards(&self) -> &crate::ssh::forward::ForwardRegistry {
        &self.conn.forwards
    }
}

/// File operations (SFTP, or the exec backend's commands) take their channels here, so they
/// start on the spare like `exec` does.
impl ChannelSource for Arc<PooledConn> {
    fn session_channel(&self) -> BoxFuture<'_, std::result::Result<Channel<Msg>, russh::Error>> {
        Box::pin(PooledConn::open_session(self))
    }
}

/// One channel's worth of a pooled connection; returns itself to the pool on drop.
pub struct Lease {
    /// The connection.
    pub conn: Arc<PooledConn>,
    pool: mpsc::UnboundedSender<Command>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = self.pool.send(Command::Release {
            id: self.conn.id.clone(),
        });
    }
}

/// A row of `daemon status` / the dashboard's pool pane.
#[derive(Debug, Clone, Serialize)]
pub struct ConnInfo {
    /// Connection id.
    pub id: String,
    /// `user@host:port`.
    pub target: String,
    /// Channels in use now.
    pub channels_in_use: usize,
    /// Channels opened so far.
    pub channels_opened: u64,
    /// Age in ms.
    pub age_ms: u64,
    /// Time since last use, ms.
    pub idle_ms: u64,
    /// False once the transport is gone.
    pub healthy: bool,
    /// A session channel is open ahead of need for the next request (see `daemon::spare`).
    pub spare_channel: bool,
}

enum Command {
    Acquire {
        spec: Box<ConnectSpec>,
        retry: u32,
        reply: oneshot::Sender<Result<Lease>>,
    },
    Connected {
        key: String,
        target: String,
        result: Result<Connection>,
    },
    Release {
        id: String,
    },
    Full {
        id: String,
    },
    Dead {
        id: String,
    },
    Snapshot {
        reply: oneshot::Sender<Vec<ConnInfo>>,
    },
    CloseAll {
        reply: oneshot::Sender<()>,
    },
}

struct Entry {
    conn: Arc<PooledConn>,
    key: String,
    in_use: usize,
    limit: usize,
    last_used: Instant,
}

type Waiter = (Box<ConnectSpec>, u32, oneshot::Sender<Result<Lease>>);

/// A cheap handle to the pool actor.
#[derive(Clone)]
pub struct Pool {
    tx: mpsc::UnboundedSender<Command>,
}

impl Pool {
    /// Starts the actor; idle connections close after `idle`.
    pub fn start(idle: Duration) -> Pool {
        let (tx, rx) = mpsc::unbounded_channel();
        let actor = Actor {
            entries: Vec::new(),
            pending: HashMap::new(),
            next_id: 1,
            idle,
            tx: tx.clone(),
        };
        tokio::spawn(actor.run(rx));
        Pool { tx }
    }

    fn gone() -> Error {
        Error::new(ErrorCode::DaemonUnavailable, "the daemon is shutting down")
    }

    /// A lease on a live connection for `spec`, connecting (with `retry` retries) if needed.
    pub async fn acquire(&self, spec: &ConnectSpec, retry: u32) -> Result<Lease> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Acquire {
                spec: Box::new(spec.clone()),
                retry,
                reply,
            })
            .map_err(|_| Self::gone())?;
        rx.await.map_err(|_| Self::gone())?
    }

    /// The server refused a channel on this connection: use it for no more at once.
    pub fn mark_full(&self, lease: &Lease) {
        let _ = self.tx.send(Command::Full {
            id: lease.conn.id.clone(),
        });
    }

    /// The connection failed: drop it from the pool.
    pub fn mark_dead(&self, lease: &Lease) {
        let _ = self.tx.send(Command::Dead {
            id: lease.conn.id.clone(),
        });
    }

    /// The pool's connections.
    pub async fn snapshot(&self) -> Vec<ConnInfo> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Snapshot { reply }).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Disconnects everything (shutdown).
    pub async fn close_all(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::CloseAll { reply }).is_ok() {
            let _ = rx.await;
        }
    }
}

struct Actor {
    entries: Vec<Entry>,
    pending: HashMap<String, Vec<Waiter>>,
    next_id: u64,
    idle: Duration,
    tx: mpsc::UnboundedSender<Command>,
}

impl Actor {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1).min(self.idle));
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd),
                    None => break,
                },
                _ = tick.tick() => self.expire(),
            }
        }
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Acquire { spec, retry, reply } => self.acquire(spec, retry, reply),
            Command::Connected {
                key,
                target,
                result,
            } => self.connected(key, target, result),
            Command::Release { id } => {
                if let Some(e) = self.entries.iter_mut().find(|e| e.conn.id == id) {
                    e.in_use = e.in_use.saturating_sub(1);
                    e.last_used = Instant::now();
                }
            }
            Command::Full { id } => {
                if let Some(e) = self.entries.iter_mut().find(|e| e.conn.id == id) {
                    e.limit = e.in_use.saturating_sub(1).max(1);
                }
            }
            Command::Dead { id } => self.remove_where(|e| e.conn.id == id),
            Command::Snapshot { reply } => {
                let now = Instant::now();
                let rows = self
                    .entries
                    .iter()
                    .map(|e| ConnInfo {
                        id: e.conn.id.clone(),
                        target: e.conn.target.clone(),
                        channels_in_use: e.in_use,
                        channels_opened: e.conn.channels_opened.load(Ordering::Relaxed),
                        age_ms: ms(now - e.conn.created),
                        idle_ms: if e.in_use > 0 {
                            0
                        } else {
                            ms(now - e.last_used)
                        },
                        healthy: !e.conn.handle().is_closed(),
                        spare_channel: e.conn.spare_ready(),
                    })
                    .collect();
                let _ = reply.send(rows);
            }
            Command::CloseAll { reply } => {
                self.remove_where(|_| true);
                let _ = reply.send(());
            }
        }
    }

    fn acquire(
        &mut self,
        spec: Box<ConnectSpec>,
        retry: u32,
        reply: oneshot::Sender<Result<Lease>>,
    ) {
        let key = spec.pool_key();
        self.remove_where(|e| e.key == key && e.conn.handle().is_closed());
        if let Some(e) = self
            .entries
            .iter_mut()
            .find(|e| e.key == key && e.in_use < e.limit)
        {
            e.in_use += 1;
            e.conn.channels_opened.fetch_add(1, Ordering::Relaxed);
            let lease = Lease {
                conn: e.conn.clone(),
                pool: self.tx.clone(),
            };
            let _ = reply.send(Ok(lease));
            return;
        }
        if let Some(waiters) = self.pending.get_mut(&key) {
            waiters.push((spec, retry, reply));
            return;
        }
        let target = spec.display_target();
        let tx = self.tx.clone();
        let connect_spec = (*spec).clone();
        self.pending.insert(key.clone(), vec![(spec, retry, reply)]);
        tokio::spawn(async move {
            let result = crate::ssh::client::connect_retrying(&connect_spec, retry).await;
            let _ = tx.send(Command::Connected {
                key,
                target,
                result,
            });
        });
    }

    fn connected(&mut self, key: String, target: String, result: Result<Connection>) {
        let waiters = self.pending.remove(&key).unwrap_or_default();
        match result {
            Ok(conn) => {
                let id = format!("c{}", self.next_id);
                self.next_id += 1;
                tracing::info!(%id, %target, "pooled connection opened");
                let conn = Arc::new(PooledConn {
                    id,
                    target,
                    created: Instant::now(),
                    channels_opened: AtomicU64::new(0),
                    conn,
                    spare: Spare::default(),
                });
                self.entries.push(Entry {
                    conn,
                    key,
                    in_use: 0,
                    limit: DEFAULT_CHANNELS_PER_CONNECTION,
                    last_used: Instant::now(),
                });
                for (spec, retry, reply) in waiters {
                    self.acquire(spec, retry, reply);
                }
            }
            Err(e) => {
                for (_, _, reply) in waiters {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }

    fn expire(&mut self) {
        let idle = self.idle;
        self.remove_where(|e| {
            e.conn.handle().is_closed() || (e.in_use == 0 && e.last_used.elapsed() >= idle)
        });
    }

    fn remove_where(&mut self, mut pred: impl FnMut(&Entry) -> bool) {
        let (gone, kept): (Vec<Entry>, Vec<Entry>) = std::mem::take(&mut self.entries)
            .into_iter()
            .partition(|e| pred(e));
        self.entries = kept;
        for e in gone {
            tracing::info!(id = %e.conn.id, target = %e.conn.target, "pooled connection closed");
            let conn = e.conn;
            tokio::spawn(async move {
                let _ = conn
                    .handle()
                    .disconnect(russh::Disconnect::ByApplication, "", "en")
                    .await;
            });
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
