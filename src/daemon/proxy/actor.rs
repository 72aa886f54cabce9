//! The proxy actors: one task per proxy owns its listener (or, for a reverse forward, its
//! queue of server-opened channels) and one task per client copies bytes both ways.
//!
//! Clients per proxy are bounded by a semaphore (a full proxy stops accepting until one
//! leaves); each copy uses fixed 64 KiB buffers. Half-close is passed on: a client that
//! shuts down its sending side makes us send SSH EOF, and SSH EOF from the server shuts
//! down our sending side to the client (russh's `ChannelStream` maps `shutdown` to EOF and
//! reads EOF as end of stream; dropping it closes the channel). Stopping a proxy drops its
//! listener at once (the port is free when `close` returns) and aborts its clients.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

use super::link::{Link, OpenError};
use super::socks::{self, Reply};
use crate::ssh::forward::ForwardedChannel;

/// Clients one proxy serves at once.
pub const MAX_CLIENTS: usize = 1024;
/// Server-opened channels waiting to be connected, per reverse proxy.
pub const REVERSE_QUEUE: usize = 64;
/// Deadline for a client's SOCKS greeting and request.
pub const SOCKS_DEADLINE: Duration = Duration::from_secs(10);
/// Deadline for connecting to a reverse proxy's local target.
const LOCAL_CONNECT_DEADLINE: Duration = Duration::from_secs(10);
/// Copy buffer per direction.
const BUF: usize = 64 * 1024;
/// How often a reverse proxy checks that its connection (and so its forward) is alive.
const REVERSE_CHECK: Duration = Duration::from_millis(500);

/// Live counters of one proxy.
#[derive(Debug, Default)]
pub struct Stats {
    /// Clients connected now.
    pub active: AtomicU64,
    /// Clients served so far.
    pub total: AtomicU64,
    /// Bytes received from clients (into the tunnel).
    pub bytes_in: AtomicU64,
    /// Bytes sent to clients (out of the tunnel).
    pub bytes_out: AtomicU64,
}

/// Counts one active client while alive.
struct ActiveGuard(Arc<Stats>);

impl ActiveGuard {
    fn new(stats: &Arc<Stats>) -> ActiveGuard {
        stats.active.fetch_add(1, Ordering::Relaxed);
        stats.total.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(stats.clone())
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The client side of a copy, counting bytes as they pass.
struct Counted<S> {
    inner: S,
    stats: Arc<Stats>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        self.stats.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.stats.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Copies both ways until both sides are done (or either fails); counts on `client`.
async fn pump<C, T>(client: C, tunnel: T, stats: &Arc<Stats>)
where
    C: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut client = Counted {
        inner: client,
        stats: stats.clone(),
    };
    let mut tunnel = tunnel;
    if let Err(e) =
        tokio::io::copy_bidirectional_with_sizes(&mut client, &mut tunnel, BUF, BUF).await
    {
        tracing::debug!("proxy client ended: {e}");
    }
}

/// What a listening proxy does with each client.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Forward every client to this host and port (as seen from the server).
    Local {
        /// Target host.
        host: String,
        /// Target port.
        port: u16,
    },
    /// Ask each client where to go (SOCKS5).
    Socks5,
}

/// Resolves when `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Runs a local-forward or SOCKS5 proxy until `stop`.
pub async fn run_listener(
    listener: TcpListener,
    mode: Mode,
    link: Arc<Link>,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    let mut clients = JoinSet::new();
    loop {
        while clients.try_join_next().is_some() {}
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stopped(&mut stop) => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!("proxy accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        let _ = tcp.set_nodelay(true);
        let (mode, link, stats) = (mode.clone(), link.clone(), stats.clone());
        clients.spawn(async move {
            let _active = ActiveGuard::new(&stats);
            match mode {
                Mode::Local { host, port } => {
                    local_client(tcp, peer, &host, port, &link, &stats).await
                }
                Mode::Socks5 => socks_client(tcp, peer, &link, &stats).await,
            }
            drop(permit);
        });
    }
    drop(listener);
    clients.shutdown().await;
}

async fn local_client(
    tcp: TcpStream,
    peer: SocketAddr,
    host: &str,
    port: u16,
    link: &Link,
    stats: &Arc<Stats>,
) {
    match link.open_direct(host, port, peer).await {
        Ok((_lease, channel)) => pump(tcp, channel.into_stream(), stats).await,
        Err(e) => tracing::info!(%peer, target = %format!("{host}:{port}"), "forward failed: {e}"),
    }
}

/// The SOCKS reply for a failed channel open.
fn socks_code(e: &OpenError) -> Reply {
    match e {
        OpenError::Refused(russh::ChannelOpenFailure::ConnectFailed) => Reply::ConnectionRefused,
        OpenError::Refused(russh::ChannelOpenFailure::AdministrativelyProhibited) => {
            Reply::NotAllowed
        }
        OpenError::Timeout => Reply::HostUnreachable,
        _ => Reply::GeneralFailure,
    }
}

async fn socks_client(mut tcp: TcpStream, peer: SocketAddr, link: &Link, stats: &Arc<Stats>) {
    let target = match tokio::time::timeout(SOCKS_DEADLINE, socks::accept(&mut tcp)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            tracing::debug!(%peer, "SOCKS handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "SOCKS handshake timed out");
            return;
        }
    };
    match link.open_direct(&target.host, target.port, peer).await {
        Ok((_lease, channel)) => {
            if socks::reply(&mut tcp, Reply::Succeeded).await.is_ok() {
                pump(tcp, channel.into_stream(), stats).await;
            }
        }
        Err(e) => {
            let code = socks_code(&e);
            tracing::info!(%peer, target = %format!("{}:{}", target.host, target.port), "SOCKS connect failed ({code:?}): {e}");
            let _ = tokio::time::timeout(SOCKS_DEADLINE, socks::reply(&mut tcp, code)).await;
        }
    }
}

/// A reverse forward: the server listens on `bind_host:port` for us.
#[derive(Debug, Clone)]
pub struct Reverse {
    /// Bind address on the server, as sent in `tcpip-forward`.
    pub bind_host: String,
    /// The port the server listens on (the real one, never 0).
    pub port: u32,
    /// Local target `host:port`.
    pub to: String,
}

/// Asks the server behind `link` to listen for `rev` and routes its channels to `tx`.
pub async fn establish(
    link: &Link,
    rev: &Reverse,
    tx: &mpsc::Sender<ForwardedChannel>,
) -> crate::error::Result<u32> {
    use crate::error::{Error, ErrorCode};
    let lease = link.get().await?;
    let forwards = lease.conn.forwards();
    // Registered before asking, so a connection that arrives with the answer is not lost.
    forwards.register(&rev.bind_host, rev.port, tx.clone());
    let asked = lease
        .conn
        .handle()
        .tcpip_forward(rev.bind_host.clone(), rev.port);
    match tokio::time::timeout(super::link::OPEN_DEADLINE, asked).await {
        Ok(Ok(port)) => {
            let real = if rev.port == 0 { port } else { rev.port };
            if real != rev.port {
                forwards.unregister(&rev.bind_host, rev.port);
                forwards.register(&rev.bind_host, real, tx.clone());
            }
            Ok(real)
        }
        Ok(Err(russh::Error::RequestDenied)) => {
            forwards.unregister(&rev.bind_host, rev.port);
            Err(Error::new(
                ErrorCode::AddressInUse,
                format!(
                    "the server refused to listen on {}:{}: the port is in use, or the server \
                     forbids it (AllowTcpForwarding, GatewayPorts, PermitListen)",
                    rev.bind_host, rev.port
                ),
            ))
        }
        Ok(Err(e)) => {
            forwards.unregister(&rev.bind_host, rev.port);
            link.discard(&lease);
            Err(Error::new(
                ErrorCode::ConnectFailed,
                format!("remote forward request failed: {e}"),
            ))
        }
        Err(_) => {
            forwards.unregister(&rev.bind_host, rev.port);
            Err(Error::new(
                ErrorCode::Timeout,
                "the server did not answer the remote forward request",
            ))
        }
    }
}

/// Runs a reverse proxy until `stop`: connects each server-opened channel to `rev.to`, and
/// re-establishes the forward on a fresh connection when the old one dies.
pub async fn run_reverse(
    rev: Reverse,
    tx: mpsc::Sender<ForwardedChannel>,
    mut rx: mpsc::Receiver<ForwardedChannel>,
    link: Arc<Link>,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    let mut clients = JoinSet::new();
    let mut check = tokio::time::interval(REVERSE_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut established = true;
    // Failed re-establish attempts so far, and when the next may start (backoff).
    let mut failures: u32 = 0;
    let mut next_try = tokio::time::Instant::now();
    loop {
        while clients.try_join_next().is_some() {}
        tokio::select! {
            _ = stopped(&mut stop) => break,
            fwd = rx.recv() => {
                let Some(fwd) = fwd else { break };
                // A full proxy refuses (dropping the open handle rejects the channel).
                let Ok(permit) = slots.clone().try_acquire_owned() else { continue };
                let (to, stats) = (rev.to.clone(), stats.clone());
                clients.spawn(async move {
                    reverse_client(fwd, &to, &stats).await;
                    drop(permit);
                });
            }
            _ = check.tick() => {
                if established && link.live().is_some() {
                    continue;
                }
                if established {
                    tracing::info!(port = rev.port, "reverse proxy lost its connection; re-establishing");
                    established = false;
                }
                if tokio::time::Instant::now() < next_try {
                    continue;
                }
                let again = tokio::select! {
                    r = establish(&link, &rev, &tx) => r,
                    _ = stopped(&mut stop) => break,
                };
                match again {
                    Ok(_) => {
                        tracing::info!(port = rev.port, "reverse proxy re-established");
                        established = true;
                        failures = 0;
                    }
                    Err(e) => {
                        tracing::info!(port = rev.port, "reverse proxy still down: {}", e.message);
                        next_try = tokio::time::Instant::now()
                            + crate::ssh::client::backoff(failures.min(8));
                        failures = failures.saturating_add(1);
                    }
                }
            }
        }
    }
    clients.shutdown().await;
    if let Some(lease) = link.live() {
        lease.conn.forwards().unregister(&rev.bind_host, rev.port);
        let cancel = lease
            .conn
            .handle()
            .cancel_tcpip_forward(rev.bind_host.clone(), rev.port);
        if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(2), cancel).await {
            tracing::info!(port = rev.port, "cancel-tcpip-forward failed: {e}");
        }
    }
}

async fn reverse_client(fwd: ForwardedChannel, to: &str, stats: &Arc<Stats>) {
    let _active = ActiveGuard::new(stats);
    let connect = tokio::time::timeout(LOCAL_CONNECT_DEADLINE, TcpStream::connect(to)).await;
    match connect {
        Ok(Ok(tcp)) => {
            let _ = tcp.set_nodelay(true);
            fwd.reply.accept().await;
            // The remote connector is the client here: count its side.
            pump(fwd.channel.into_stream(), tcp, stats).await;
        }
        Ok(Err(e)) => {
            tracing::info!(from = %fwd.originator, %to, "reverse forward: cannot reach the local target: {e}");
            fwd.reply
                .reject(russh::ChannelOpenFailure::ConnectFailed)
                .await;
        }
        Err(_) => {
            tracing::info!(from = %fwd.originator, %to, "reverse forward: local target did not answer");
            fwd.reply
                .reject(russh::ChannelOpenFailure::ConnectFailed)
                .await;
        }
    }
}
