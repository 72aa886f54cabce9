//! The proxy tier: local forwards (`ssh -L`), SOCKS5 (`ssh -D`) and reverse forwards
//! (`ssh -R`), each a proxy actor ([`actor`]) on a pooled connection it holds through a
//! [`link::Link`] (re-acquired when the connection dies).
//!
//! The [`Registry`] maps ids (`p1`, or the proxy's name, which then is its id) to handles;
//! its mutex guards only the map. Listening addresses must be loopback unless the client
//! passed `allow_public`.

pub mod actor;
pub mod addr;
pub mod link;
pub mod socks;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::pool::Pool;
use super::Daemon;
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::{ProxyForward, Request};
use crate::wire::spec::ConnectSpec;
use actor::{Mode, Reverse, Stats};
use addr::HostPort;
use link::Link;

/// How long `proxy ping` waits for the server's keepalive answer.
const PING_DEADLINE: Duration = Duration::from_secs(5);

/// What kind of proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Local forward.
    Local,
    /// SOCKS5 server.
    Socks5,
    /// Reverse (remote) forward.
    Reverse,
}

/// A row of `proxy list` and `daemon status`.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyInfo {
    /// `p1`, ... or the name.
    pub id: String,
    /// The name, if given.
    pub name: Option<String>,
    /// local, socks5 or reverse.
    pub kind: Kind,
    /// Local side: the bound address (local, socks5) or the target (reverse).
    pub local: String,
    /// Remote side: the target (local), null (socks5) or the server's bound address (reverse).
    pub remote: Option<String>,
    /// `user@host:port` of the SSH server.
    pub target: String,
    /// The pooled connection in use.
    pub connection_id: Option<String>,
    /// Clients connected now.
    pub active_clients: u64,
    /// Clients served so far.
    pub total_clients: u64,
    /// Bytes received from clients.
    pub bytes_in: u64,
    /// Bytes sent to clients.
    pub bytes_out: u64,
    /// ms since the epoch.
    pub created_at: u64,
}

/// One proxy: its description, counters, connection and actor.
pub struct Proxy {
    id: String,
    name: Option<String>,
    kind: Kind,
    local: String,
    remote: Option<String>,
    created_at: u64,
    stats: Arc<Stats>,
    link: Arc<Link>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Proxy {
    /// The proxy's row.
    pub fn info(&self) -> ProxyInfo {
        ProxyInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            kind: self.kind,
            local: self.local.clone(),
            remote: self.remote.clone(),
            target: self.link.target(),
            connection_id: self.link.connection_id(),
            active_clients: self.stats.active.load(Ordering::Relaxed),
            total_clients: self.stats.total.load(Ordering::Relaxed),
            bytes_in: self.stats.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.stats.bytes_out.load(Ordering::Relaxed),
            created_at: self.created_at,
        }
    }

    fn running(&self) -> bool {
        self.task
            .lock()
            .map(|t| t.as_ref().is_some_and(|h| !h.is_finished()))
            .unwrap_or(false)
    }

    /// Stops the actor and waits until its listener is closed and its clients are gone.
    pub async fn close(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
        self.link.release();
    }

    /// Listener up, and the SSH connection answers a keepalive (reconnecting if it died).
    pub async fn ping(&self) -> Result<Value> {
        if !self.running() {
            return Err(Error::internal(format!(
                "proxy {} is no longer running",
                self.id
            )));
        }
        let lease = self.link.get().await?;
        let started = Instant::now();
        let answered = tokio::time::timeout(PING_DEADLINE, lease.conn.handle().send_ping()).await;
        let latency = started.elapsed();
        match answered {
            Ok(Ok(())) if !lease.conn.handle().is_closed() => Ok(json!({
                "proxy_id": self.id,
                "alive": true,
                "listening": true,
                "connection_id": lease.conn.id,
                "latency_ms": latency.as_secs_f64() * 1000.0,
            })),
            Ok(_) => {
                self.link.discard(&lease);
                Err(Error::new(
                    ErrorCode::ConnectFailed,
                    format!(
                        "the SSH connection of proxy {} is gone; the next client reconnects",
                        self.id
                    ),
                ))
            }
            Err(_) => Err(Error::new(
                ErrorCode::Timeout,
                format!(
                    "the SSH connection of proxy {} did not answer a keepalive within {} s",
                    self.id,
                    PING_DEADLINE.as_secs()
                ),
            )),
        }
    }
}

/// All proxies of the daemon.
#[derive(Default)]
pub struct Registry {
    map: Mutex<BTreeMap<String, Arc<Proxy>>>,
    next: AtomicU64,
}

impl Registry {
    /// Finds a proxy by id (a name is an id).
    pub fn get(&self, key: &str) -> Result<Arc<Proxy>> {
        let m = self
            .map
            .lock()
            .map_err(|_| Error::internal("proxy registry poisoned"))?;
        m.get(key).cloned().ok_or_else(|| {
            Error::new(
                ErrorCode::ProxyNotFound,
                format!("proxy '{key}' not found; run 'agentssh proxy list' to see open proxies"),
            )
        })
    }

    /// Every proxy, by id.
    pub fn all(&self) -> Vec<Arc<Proxy>> {
        self.map
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every proxy's row.
    pub fn infos(&self) -> Vec<ProxyInfo> {
        self.all().iter().map(|p| p.info()).collect()
    }

    fn remove(&self, id: &str) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(id);
        }
    }

    /// Closes every proxy (daemon shutdown, `proxy close --all`); returns their ids.
    pub async fn close_all(&self) -> Vec<String> {
        let mut closed = Vec::new();
        for p in self.all() {
            p.close().await;
            self.remove(&p.id);
            closed.push(p.id.clone());
        }
        closed
    }

    fn check_name(&self, name: &Option<String>) -> Result<()> {
        let Some(n) = name else { return Ok(()) };
        let valid = !n.is_empty()
            && n.len() <= 64
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !valid {
            return Err(Error::usage(format!(
                "invalid proxy name '{n}': use letters, digits, '-', '_' or '.'"
            )));
        }
        if n.len() > 1 && n.starts_with('p') && n[1..].chars().all(|c| c.is_ascii_digit()) {
            return Err(Error::usage(format!(
                "proxy name '{n}' looks like a proxy id; pick another"
            )));
        }
        if self.get(n).is_ok() {
            return Err(Error::usage(format!("a proxy named '{n}' already exists")));
        }
        Ok(())
    }

    /// Starts a proxy; returns its row.
    pub async fn create(
        &self,
        pool: &Pool,
        spec: ConnectSpec,
        retry: u32,
        forward: ProxyForward,
        name: Option<String>,
        allow_public: bool,
    ) -> Result<ProxyInfo> {
        self.check_name(&name)?;
        let link = Arc::new(Link::new(pool.clone(), spec, retry));
        let stats = Arc::new(Stats::default());
        let (stop, stop_rx) = watch::channel(false);
        let (kind, local, remote, task) = match forward {
            ProxyForward::Local { bind, remote } => {
                let bind = addr::parse(&bind, "127.0.0.1", "--local address")?;
                let target = addr::parse(&remote, "localhost", "--remote address")?;
                if target.port == 0 {
                    return Err(Error::usage("--remote needs a real port, not 0"));
                }
                addr::check_public(&bind, allow_public, "--local")?;
                let listener = addr::bind(&bind, allow_public).await?;
                let local = bound(&listener, &bind);
                link.get().await?;
                let mode = Mode::Local {
                    host: target.host.clone(),
                    port: target.port,
                };
                let task = tokio::spawn(actor::run_listener(
                    listener,
                    mode,
                    link.clone(),
                    stats.clone(),
                    stop_rx,
                ));
                (Kind::Local, local, Some(target.to_string()), task)
            }
            ProxyForward::Socks5 { bind } => {
                let bind = addr::parse(&bind, "127.0.0.1", "--socks5 address")?;
                addr::check_public(&bind, allow_public, "--socks5")?;
                let listener = addr::bind(&bind, allow_public).await?;
                let local = bound(&listener, &bind);
                link.get().await?;
                let task = tokio::spawn(actor::run_listener(
                    listener,
                    Mode::Socks5,
                    link.clone(),
                    stats.clone(),
                    stop_rx,
                ));
                (Kind::Socks5, local, None, task)
            }
            ProxyForward::Reverse { remote_bind, to } => {
                let bind = addr::parse(&remote_bind, "localhost", "--reverse address")?;
                addr::check_public(&bind, allow_public, "--reverse")?;
                let to = addr::parse(&to, "127.0.0.1", "--to address")?;
                if to.port == 0 {
                    return Err(Error::usage("--to needs a real port, not 0"));
                }
                let (tx, rx) = mpsc::channel(actor::REVERSE_QUEUE);
                let mut rev = Reverse {
                    bind_host: bind.host.clone(),
                    port: u32::from(bind.port),
                    to: to.to_string(),
                };
                rev.port = actor::establish(&link, &rev, &tx).await?;
                let remote = crate::wire::spec::host_port(
                    &rev.bind_host,
                    u16::try_from(rev.port).unwrap_or(0),
                );
                let task = tokio::spawn(actor::run_reverse(
                    rev,
                    tx,
                    rx,
                    link.clone(),
                    stats.clone(),
                    stop_rx,
                ));
                (Kind::Reverse, to.to_string(), Some(remote), task)
            }
        };
        let id = match &name {
            Some(n) => n.clone(),
            None => format!("p{}", self.next.fetch_add(1, Ordering::Relaxed) + 1),
        };
        let proxy = Arc::new(Proxy {
            id: id.clone(),
            name,
            kind,
            local,
            remote,
            created_at: crate::now_ms(),
            stats,
            link,
            stop,
            task: Mutex::new(Some(task)),
        });
        let clash = {
            let mut m = self
                .map
                .lock()
                .map_err(|_| Error::internal("proxy registry poisoned"))?;
            if m.contains_key(&id) {
                true
            } else {
                m.insert(id.clone(), proxy.clone());
                false
            }
        };
        if clash {
            proxy.close().await;
            return Err(Error::usage(format!("a proxy named '{id}' already exists")));
        }
        tracing::info!(%id, kind = ?proxy.kind, local = %proxy.local, remote = ?proxy.remote, "proxy started");
        Ok(proxy.info())
    }
}

/// The address a listener really bound (port 0 replaced), shown with the host as asked.
fn bound(listener: &tokio::net::TcpListener, asked: &HostPort) -> String {
    match listener.local_addr() {
        Ok(a) => a.to_string(),
        Err(_) => asked.to_string(),
    }
}

/// Serves the proxy requests.
pub async fn handle(daemon: &Arc<Daemon>, req: Request) -> Result<Value> {
    let reg = &daemon.proxies;
    match req {
        Request::ProxyCreate {
            spec,
            retry,
            forward,
            name,
            allow_public,
        } => {
            let info = reg
                .create(&daemon.pool, *spec, retry, forward, name, allow_public)
                .await?;
            let mut v = serde_json::to_value(&info).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("proxy_id".into(), Value::String(info.id.clone()));
            }
            Ok(v)
        }
        Request::ProxyList => Ok(json!({ "proxies": reg.infos() })),
        Request::ProxyPing { proxy } => reg.get(&proxy)?.ping().await,
        Request::ProxyClose { proxy, all } => {
            let closed = match (proxy, all) {
                (_, true) => reg.close_all().await,
                (Some(key), false) => {
                    let p = reg.get(&key)?;
                    p.close().await;
                    reg.remove(&p.id);
                    vec![p.id.clone()]
                }
                (None, false) => return Err(Error::usage("pass --proxy-id ID or --all")),
            };
            Ok(json!({ "closed": closed }))
        }
        other => Err(Error::internal(format!(
            "not a proxy request: {}",
            other.describe().0
        ))),
    }
}
