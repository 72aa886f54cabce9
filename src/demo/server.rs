//! The demo's built-in SSH server: russh's server side on `127.0.0.1:<free port>`, a host key
//! made for the run, and exactly one accepted client key (also made for the run).
//!
//! It serves what the product needs of a server: exec (through the user's own shell,
//! `$SHELL -c`), PTY shells (the user's shell on a local PTY, as the current user), the SFTP
//! subsystem, and local forwards (`direct-tcpip`) to loopback addresses only. It runs on its
//! own thread and runtime, so the caller can stay synchronous; [`DemoServer::stop`] (or
//! dropping it) closes the listener and every connection and kills every process a channel
//! started, by session id.
//!
//! This module is the documented exception to "only daemon and ssh touch russh"
//! (ARCHITECTURE.md): a server is not something the client side could host.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, Msg, Server as _, Session};
use russh::{Channel, ChannelId, ChannelOpenFailure};

use crate::error::{Error, ErrorCode, Result};

/// Most session and forward channels open at once (over all connections).
const MAX_CHANNELS: usize = 64;

/// State the server's tasks share.
pub struct Shared {
    /// The user's shell.
    pub shell: PathBuf,
    /// HOME and working directory of every child; relative SFTP paths start here.
    pub home: PathBuf,
    /// Extra environment of every child.
    pub env: Vec<(String, String)>,
    /// Session ids of the children started (each child is a session leader).
    sessions: Mutex<HashSet<i32>>,
    channels: AtomicUsize,
}

impl Shared {
    /// Remembers a child's session so [`Shared::kill_all`] can end it.
    pub fn track(&self, sid: i32) {
        if let Ok(mut s) = self.sessions.lock() {
            s.insert(sid);
        }
    }

    /// Forgets a session that was killed.
    pub fn untrack(&self, sid: i32) {
        if let Ok(mut s) = self.sessions.lock() {
            s.remove(&sid);
        }
    }

    /// Forgets a session whose processes are all gone (a background job may live on).
    pub fn untrack_if_empty(&self, sid: i32) {
        if super::pty::session_members(sid).is_empty() {
            self.untrack(sid);
        }
    }

    /// Kills every process of every tracked session.
    pub fn kill_all(&self) {
        let sids: Vec<i32> = match self.sessions.lock() {
            Ok(mut s) => s.drain().collect(),
            Err(_) => return,
        };
        for sid in sids {
            super::pty::kill_session(sid);
        }
    }
}

/// What the server needs to start.
pub struct Options {
    /// HOME and working directory of the children (a private directory of the demo).
    pub home: PathBuf,
    /// The shell to run (the user's `$SHELL`).
    pub shell: PathBuf,
    /// Extra environment for the children.
    pub env: Vec<(String, String)>,
    /// The one client key accepted.
    pub client_key: PublicKey,
}

/// A running demo server.
pub struct DemoServer {
    /// The port on 127.0.0.1.
    pub port: u16,
    /// The host key, `ssh-ed25519 AAAA…` (for known_hosts).
    pub host_key: String,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A fresh ed25519 key pair from the OS random source.
pub fn generate_ed25519(comment: &str) -> Result<PrivateKey> {
    use rand::RngCore;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let pair = russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&seed);
    seed.fill(0);
    let mut key = PrivateKey::from(pair);
    key.set_comment(comment);
    Ok(key)
}

/// `ssh-ed25519 AAAA…` without a comment.
pub fn public_line(key: &PublicKey) -> Result<String> {
    let line = key
        .to_openssh()
        .map_err(|e| Error::internal(format!("cannot encode a public key: {e}")))?;
    Ok(line
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" "))
}

impl DemoServer {
    /// Starts the server on 127.0.0.1 with a free port and a fresh host key.
    pub fn start(opts: Options) -> Result<DemoServer> {
        let host = generate_ed25519("agentssh-demo-host")?;
        let host_key = public_line(host.public_key())?;
        let config = Arc::new(russh::server::Config {
            keys: vec![host],
            methods: russh::MethodSet::from(&[russh::MethodKind::PublicKey][..]),
            auth_rejection_time: Duration::from_millis(50),
            auth_rejection_time_initial: Some(Duration::from_millis(0)),
            inactivity_timeout: Some(Duration::from_secs(3600)),
            nodelay: true,
            ..Default::default()
        });
        let shared = Arc::new(Shared {
            shell: opts.shell,
            home: opts.home,
            env: opts.env,
            sessions: Mutex::default(),
            channels: AtomicUsize::new(0),
        });
        let mut server = DemoSsh {
            shared: shared.clone(),
            client_key: Arc::new(opts.client_key),
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("agentssh-demo-server")
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("cannot start the demo server runtime: {e}")))?;
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", 0)))
            .map_err(|e| {
                Error::new(
                    ErrorCode::LocalIo,
                    format!("cannot listen on 127.0.0.1: {e}"),
                )
            })?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::new(ErrorCode::LocalIo, format!("demo server address: {e}")))?
            .port();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("agentssh-demo-server".into())
            .spawn(move || {
                rt.block_on(async move {
                    let running = server.run_on_socket(config, &listener);
                    tokio::select! {
                        _ = running => {}
                        _ = shutdown_rx => {}
                    }
                });
                // Cancels every connection and channel task, closing their sockets.
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(|e| Error::internal(format!("cannot start the demo server thread: {e}")))?;
        Ok(DemoServer {
            port,
            host_key,
            shared,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    /// Stops: closes the listener and every connection, kills every child. Idempotent.
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.shared.kill_all();
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[derive(Clone)]
struct DemoSsh {
    shared: Arc<Shared>,
    client_key: Arc<PublicKey>,
}

impl russh::server::Server for DemoSsh {
    type Handler = DemoSsh;
    fn new_client(&mut self, _: Option<std::net::SocketAddr>) -> DemoSsh {
        self.clone()
    }
}

/// Holds one channel slot; frees it when the channel's task ends.
struct Slot(Arc<Shared>);

impl Slot {
    fn take(shared: &Arc<Shared>) -> Option<Slot> {
        let prev = shared.channels.fetch_add(1, Ordering::SeqCst);
        let slot = Slot(shared.clone());
        (prev < MAX_CHANNELS).then_some(slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.channels.fetch_sub(1, Ordering::SeqCst);
    }
}

impl DemoSsh {
    fn is_client_key(&self, key: &PublicKey) -> bool {
        key.key_data() == self.client_key.key_data()
    }
}

impl russh::server::Handler for DemoSsh {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: russh::server::PublicKeyOffer<'_>,
    ) -> std::result::Result<Auth, Self::Error> {
        Ok(if self.is_client_key(offer.public_key) {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> std::result::Result<Auth, Self::Error> {
        Ok(if self.is_client_key(key.public_key) {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        let Some(slot) = Slot::take(&self.shared) else {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        };
        reply.accept().await;
        let (handle, shared) = (session.handle(), self.shared.clone());
        tokio::spawn(async move {
            super::channel::serve(channel, handle, shared).await;
            drop(slot);
        });
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        let loopback = matches!(host_to_connect, "127.0.0.1" | "localhost" | "::1");
        let (Ok(port), true) = (u16::try_from(port_to_connect), loopback) else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        let Some(slot) = Slot::take(&self.shared) else {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        };
        let host = if host_to_connect == "::1" {
            "::1"
        } else {
            "127.0.0.1"
        };
        let target = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect((host, port)),
        )
        .await;
        let Ok(Ok(mut tcp)) = target else {
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
            return Ok(());
        };
        reply.accept().await;
        tokio::spawn(async move {
            let mut stream = channel.into_stream();
            let _ = tokio::io::copy_bidirectional(&mut stream, &mut tcp).await;
            drop(slot);
        });
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _cols: u32,
        _rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        if name == "sftp" {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        _value: &str,
        session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        // Like sshd without AcceptEnv: the children's environment is the demo's own.
        session.channel_failure(channel)
    }
}
