//! The per-user daemon: owns the connection pool (and, later, sessions and proxies), serves
//! clients over an owner-only Unix socket, and shuts down cleanly.
//!
//! Start-up is race-free: the daemon holds an exclusive `flock` on its pid file for its whole
//! life, so a second `daemon run` exits at once instead of stealing the socket; a socket
//! file left by a dead daemon is replaced.

pub mod activity;
pub mod files;
pub mod gate;
pub mod install;
pub mod policy;
pub mod pool;
pub mod proxy;
pub mod record;
pub mod server;
pub mod session;
pub mod spare;
pub mod watching;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UnixListener;
use tokio::sync::{watch, Semaphore};

use crate::config::{ensure_runtime_dir, Paths};
use crate::error::{Error, ErrorCode, Result};

/// Clients served at once; more wait in the accept queue.
const MAX_CLIENTS: usize = 512;
/// Closed sessions (with recordings) listed in the status, newest first.
const CLOSED_LISTED: usize = 20;
/// Daemon log size at which it is rotated to `daemon.log.1` at start-up.
const LOG_ROTATE_BYTES: u64 = 10 * 1024 * 1024;

/// Shared daemon state handed to every client task.
pub struct Daemon {
    /// The connection pool.
    pub pool: pool::Pool,
    /// The activity log (kept on disk as a hash chain).
    pub activity: Arc<activity::Activity>,
    /// PTY sessions.
    pub sessions: session::Registry,
    /// Session recordings on disk.
    pub recordings: Arc<record::Recordings>,
    /// Proxies (port forwards, SOCKS5, reverse forwards).
    pub proxies: proxy::Registry,
    /// The approval gate: policy, approval queue, each session's current line.
    pub gate: gate::Gate,
    /// A second uid whose clients may use the daemon but not answer approvals
    /// (`daemon run --agent-uid`).
    pub agent_uid: Option<u32>,
    started: Instant,
    paths: Paths,
    stop: watch::Sender<bool>,
}

impl Daemon {
    /// Asks the accept loop to stop.
    pub fn begin_shutdown(&self) {
        let _ = self.stop.send(true);
    }

    /// Resolves once shutdown has begun.
    pub async fn stopping(&self) {
        let mut rx = self.stop.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// `daemon status` data.
    pub async fn status(&self) -> serde_json::Value {
        let conns = self.pool.snapshot().await;
        let sessions = self.sessions.infos().await;
        let proxies = self.proxies.infos();
        // Closed sessions whose recordings still exist (newest first), for the dashboard.
        let closed: Vec<_> = self
            .recordings
            .list()
            .map(|l| {
                l.into_iter()
                    .rev()
                    .filter(|r| !r.live)
                    .take(CLOSED_LISTED)
                    .collect()
            })
            .unwrap_or_default();
        serde_json::json!({
            "running": true,
            "pid": std::process::id(),
            "version": crate::protocol::BINARY_VERSION,
            "protocol": crate::protocol::PROTOCOL_VERSION,
            "socket": self.paths.socket,
            "uptime_ms": u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "connections": conns.len(),
            "connection_list": conns,
            "sessions": sessions.len(),
            "proxies": proxies.len(),
            "session_list": sessions,
            "proxy_list": proxies,
            "closed_sessions": closed,
            "approvals": self.gate.queue.pending(),
            "policy_error": self.gate.policy_error(),
        })
    }
}

/// Options of `daemon run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Idle pooled connections close after this long.
    pub pool_idle: Duration,
    /// Also serve clients of this uid, as agents (`--agent-uid`).
    pub agent_uid: Option<u32>,
    /// Where agent-uid clients connect (`--agent-socket`).
    pub agent_socket: Option<std::path::PathBuf>,
}

fn init_logging() -> Option<()> {
    let dir = crate::config::state_dir().ok()?;
    crate::fsutil::ensure_dir(&dir, 0o700).ok()?;
    let path = dir.join("daemon.log");
    if std::fs::metadata(&path)
        .map(|m| m.len() > LOG_ROTATE_BYTES)
        .unwrap_or(false)
    {
        let _ = std::fs::rename(&path, dir.join("daemon.log.1"));
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .ok()?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("AGENTSSH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,russh=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
    Some(())
}

/// Takes the daemon's lifetime lock on the pid file and writes our pid into it.
fn lock_pid_file(path: &Path) -> Result<std::fs::File> {
    use std::io::Write;
    let mut f =
        crate::fsutil::open_lock_file(path).map_err(|e| Error::local_io(path.display(), &e))?;
    if rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        return Err(Error::new(
            ErrorCode::AddressInUse,
            "another agentssh daemon is already running for this user",
        ));
    }
    f.set_len(0)
        .map_err(|e| Error::local_io(path.display(), &e))?;
    writeln!(f, "{}", std::process::id()).map_err(|e| Error::local_io(path.display(), &e))?;
    Ok(f)
}

fn bind(paths: &Paths) -> Result<UnixListener> {
    // We hold the pid lock, so any socket file here belongs to a dead daemon.
    match std::fs::remove_file(&paths.socket) {
        Ok(()) => tracing::info!("removed stale socket {}", paths.socket.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::local_io(paths.socket.display(), &e)),
    }
    let listener = UnixListener::bind(&paths.socket)
        .map_err(|e| Error::local_io(paths.socket.display(), &e))?;
    std::fs::set_permissions(&paths.socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::local_io(paths.socket.display(), &e))?;
    Ok(listener)
}

/// How much free memory at the top of a heap glibc keeps instead of returning it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const HEAP_TRIM_THRESHOLD: libc::c_int = 8 << 20;

/// Lets glibc keep up to [`HEAP_TRIM_THRESHOLD`] of freed heap memory for reuse. By default
/// it hands memory back as soon as 128 KiB are free at the top of a heap; russh allocates and
/// frees a packet-sized buffer per message, so a busy forward or session made the kernel
/// fault in and zero fresh pages for every packet (about a tenth of the daemon's CPU time
/// in a 1 GiB forward). The cost is at most that much retained memory per heap.
fn keep_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator tunables; it is called before any other thread
    // of the daemon exists.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, HEAP_TRIM_THRESHOLD);
    }
}

/// Runs the daemon in the foreground until `daemon shutdown` or SIGTERM/SIGINT.
pub fn run(opts: RunOptions) -> Result<()> {
    if init_logging().is_none() {
        eprintln!("agentssh daemon: cannot open the log file; logging disabled");
    }
    let paths = Paths::current();
    ensure_runtime_dir(&paths.dir)?;
    let _pid_lock = lock_pid_file(&paths.pid_file)?;
    keep_freed_heap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the runtime: {e}")))?;
    // The accept loop runs on a worker, not on this thread: a connection task it spawns then
    // starts on the same worker (tokio's LIFO slot) instead of waking another thread first.
    let result = rt.block_on(async {
        tokio::spawn(serve(paths.clone(), opts))
            .await
            .unwrap_or_else(|e| Err(Error::internal(format!("the accept loop failed: {e}"))))
    });
    let _ = std::fs::remove_file(&paths.socket);
    let _ = std::fs::remove_file(&paths.pid_file);
    tracing::info!("daemon stopped");
    rt.shutdown_timeout(Duration::from_secs(2));
    result
}

/// The socket for agent-uid clients: in a directory of ours (0711: reachable by name, not
/// listable), the socket itself 0666; who may speak is decided by the peer credentials.
fn bind_agent(path: &Path) -> Result<UnixListener> {
    use std::os::unix::fs::MetadataExt;
    let dir = path
        .parent()
        .ok_or_else(|| Error::usage("--agent-socket needs a directory"))?;
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::local_io(dir.display(), &e)),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| Error::local_io(dir.display(), &e))?;
    if !meta.is_dir() || meta.uid() != rustix::process::getuid().as_raw() {
        return Err(Error::new(
            ErrorCode::PermissionDenied,
            format!(
                "{} is not a directory of ours; refusing to put the agent socket there",
                dir.display()
            ),
        ));
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))
        .map_err(|e| Error::local_io(dir.display(), &e))?;
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).map_err(|e| Error::local_io(path.display(), &e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .map_err(|e| Error::local_io(path.display(), &e))?;
    Ok(listener)
}

async fn serve(paths: Paths, opts: RunOptions) -> Result<()> {
    let listener = bind(&paths)?;
    let agent_listener = match &opts.agent_socket {
        Some(p) => Some(bind_agent(p)?),
        None => None,
    };
    let (stop, _) = watch::channel(false);
    let activity = Arc::new(match crate::config::state_dir() {
        Ok(dir) => activity::Activity::persistent(&dir),
        Err(_) => activity::Activity::default(),
    });
    let recordings = Arc::new(record::Recordings::new(
        record::Settings::from_env(),
        Some(activity.clone()),
    ));
    let daemon = Arc::new(Daemon {
        pool: pool::Pool::start(opts.pool_idle),
        activity: activity.clone(),
        sessions: session::Registry::with_recordings(recordings.clone()),
        recordings,
        proxies: proxy::Registry::default(),
        gate: gate::Gate::new(
            policy::file::default_path()
                .unwrap_or_else(|_| paths.dir.join("no-config-dir").join("policy.toml")),
        ),
        agent_uid: opts.agent_uid,
        started: Instant::now(),
        paths: paths.clone(),
        stop,
    });
    tracing::info!(pid = std::process::id(), socket = %paths.socket.display(), "daemon listening");
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Error::local_io("SIGTERM handler", &e))?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| Error::local_io("SIGINT handler", &e))?;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let Ok(permit) = slots.clone().acquire_owned().await else { break };
                    let d = daemon.clone();
                    tokio::spawn(async move {
                        server::serve(stream, d).await;
                        drop(permit);
                    });
                }
                Err(e) => tracing::warn!("accept failed: {e}"),
            },
            accepted = async {
                match &agent_listener {
                    Some(l) => l.accept().await,
                    None => std::future::pending().await,
                }
            } => match accepted {
                Ok((stream, _)) => {
                    let Ok(permit) = slots.clone().acquire_owned().await else { break };
                    let d = daemon.clone();
                    tokio::spawn(async move {
                        server::serve(stream, d).await;
                        drop(permit);
                    });
                }
                Err(e) => tracing::warn!("accept on the agent socket failed: {e}"),
            },
            _ = daemon.stopping() => break,
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("daemon shutting down");
    drop(listener);
    drop(agent_listener);
    let _ = std::fs::remove_file(&paths.socket);
    if let Some(p) = &opts.agent_socket {
        let _ = std::fs::remove_file(p);
    }
    for s in daemon.sessions.all() {
        s.close().await;
        daemon.sessions.remove(&s.meta.id);
    }
    daemon.proxies.close_all().await;
    daemon.pool.close_all().await;
    // Recordings end with their sessions; let their writers close the files.
    daemon
        .recordings
        .wait_finished(Duration::from_secs(3))
        .await;
    // Then the activity log, the recordings' hashes included.
    let _ = tokio::task::spawn_blocking(move || activity.flush(Duration::from_secs(2))).await;
    Ok(())
}
