//! The client side of the daemon socket: connect, autostart, hello, one request.
//!
//! Autostart (as in atuin): a client that finds no daemon takes an exclusive `flock` on
//! `daemon.lock`, checks again, spawns `agentssh daemon run` detached (new session, stdio to
//! the log file) and waits for the socket with a deadline. Concurrent first calls therefore
//! start exactly one daemon. The daemon is started through a double fork, so it is never
//! the child of the client that started it: a long-lived client (the dashboard, an MCP
//! server) neither keeps an exited daemon as its zombie nor takes it down with its own
//! process tree.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

use crate::config::Paths;
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::{self, ClientToDaemon, DaemonToClient, Request, Response};

/// How long a client waits for a freshly spawned daemon's socket.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// How long a client waits for the spawn lock held by another client.
const LOCK_DEADLINE: Duration = Duration::from_secs(15);
/// The most a client keeps of what it sent before the daemon's hello, to send it again.
const MAX_REPLAY: usize = 1 << 20;

/// This process's approval options (`--approval-timeout`, `--no-wait`), sent in every hello.
static APPROVAL: std::sync::OnceLock<protocol::ApprovalOptions> = std::sync::OnceLock::new();

/// Sets how this process's requests wait for approvals; the first call wins (the CLI calls
/// it once, from its global flags, before any request).
pub fn set_approval_options(options: protocol::ApprovalOptions) {
    let _ = APPROVAL.set(options);
}

/// A connection to the daemon. Our hello goes out with the first frame we send (one write),
/// and the daemon's is read with the first frame received (or by
/// [`DaemonClient::handshake`]), so a one-shot command costs one round trip, not two: the
/// request follows the hello without waiting for the answer. A
/// daemon that speaks another protocol answers the hello and closes without reading
/// further, so a request it could misread is never acted on.
pub struct DaemonClient {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    /// The daemon's pid, once its hello has been read.
    daemon_pid: Option<u32>,
    /// Our encoded hello until it is written (ahead of the first frame).
    unsent_hello: Vec<u8>,
    /// For a client that may start the daemon: everything written before the daemon's hello
    /// (our hello and the first frame), to send once more to a fresh daemon if this one goes
    /// away without answering. A SIGKILLed daemon's listening socket outlives its main
    /// thread for a moment, so a client can connect to a daemon that is already dying. A
    /// daemon reads a request only after sending its hello, so one that never answered never
    /// acted on it: sending it again cannot run anything twice. `None`: no replay (a plain
    /// connect, already replayed, answered, or past [`MAX_REPLAY`]).
    replay: Option<Vec<u8>>,
    /// Set once the replay went to a fresh daemon.
    replayed: bool,
    /// `cli`, `tui`, ...: sent in our hello.
    kind: String,
}

/// Our hello, encoded.
fn encode_hello(kind: &str, keep_alive: bool) -> Result<Vec<u8>> {
    protocol::encode(&ClientToDaemon::Hello {
        protocol: protocol::PROTOCOL_VERSION,
        version: protocol::BINARY_VERSION.into(),
        client: kind.into(),
        approval: APPROVAL.get().copied().unwrap_or_default(),
        keep_alive,
    })
}

fn unavailable(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::DaemonUnavailable, msg)
}

fn decode(frame: &[u8]) -> Result<DaemonToClient> {
    protocol::decode(frame).map_err(|e| unavailable(format!("bad frame from the daemon: {e}")))
}

fn lost(e: std::io::Error) -> Error {
    unavailable(format!("lost the daemon connection: {e}"))
}

impl DaemonClient {
    /// Connects to a running daemon; `Ok(None)` when none is listening.
    pub async fn connect_existing(kind: &str) -> Result<Option<DaemonClient>> {
        let paths = Paths::current();
        let stream = match UnixStream::connect(&paths.socket).await {
            Ok(s) => s,
            Err(_) => return Ok(None),
        };
        Self::hello(stream, kind).await.map(Some)
    }

    /// Connects, starting the daemon first if none runs.
    pub async fn connect_or_start(kind: &str) -> Result<DaemonClient> {
        if let Some(c) = Self::connect_existing(kind).await? {
            return Ok(c.replayable());
        }
        if let Some(sock) = crate::config::agent_socket_override() {
            // A supervisor's daemon: ours to use, not to start.
            return Err(unavailable(format!(
                "no daemon listens on {} (AGENTSSH_SOCKET); the supervisor starts it with `agentssh daemon run --agent-uid UID`",
                sock.display()
            )));
        }
        let paths = Paths::current();
        crate::config::ensure_runtime_dir(&paths.dir)?;
        let lock = lock_spawn(&paths.spawn_lock).await?;
        // Another client may have started it while we waited for the lock.
        if let Some(c) = Self::connect_existing(kind).await? {
            return Ok(c.replayable());
        }
        let daemon_pid = spawn_daemon()?;
        let started = Instant::now();
        loop {
            if let Ok(stream) = UnixStream::connect(&paths.socket).await {
                drop(lock);
                return Self::hello(stream, kind).await.map(Self::replayable);
            }
            if !process_alive(daemon_pid) {
                return Err(unavailable(format!(
                    "the daemon (pid {daemon_pid}) exited at start-up; see {}",
                    log_path_hint()
                )));
            }
            if started.elapsed() > START_DEADLINE {
                return Err(unavailable(format!(
                    "the daemon did not open {} within {} s; see {}",
                    paths.socket.display(),
                    START_DEADLINE.as_secs(),
                    log_path_hint()
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn hello(stream: UnixStream, kind: &str) -> Result<DaemonClient> {
        let (r, w) = stream.into_split();
        let unsent_hello = encode_hello(kind, false)?;
        Ok(DaemonClient {
            reader: BufReader::new(r),
            writer: w,
            daemon_pid: None,
            unsent_hello,
            replay: None,
            replayed: false,
            kind: kind.into(),
        })
    }

    /// Asks the daemon to keep this connection for further requests after a one-shot one
    /// ([`Request::keeps_connection`]); see [`DaemonClient::ask`]. Before the first frame
    /// only: a connection whose hello went out is returned as it is.
    pub fn keep_alive(mut self) -> Result<Self> {
        if !self.unsent_hello.is_empty() {
            self.unsent_hello = encode_hello(&self.kind, true)?;
        }
        Ok(self)
    }

    /// Sends a request and waits for its final response, ignoring stream frames, keeping
    /// the connection: on a kept-alive connection ([`DaemonClient::keep_alive`]) the next
    /// request may follow when [`Request::keeps_connection`] says so.
    pub async fn ask(&mut self, req: Request) -> Result<Response> {
        self.send(&ClientToDaemon::Request(req)).await?;
        loop {
            if let DaemonToClient::Response(r) = self.recv().await? {
                return Ok(r);
            }
        }
    }

    /// Whether the daemon still holds this connection open with nothing unread on it: a
    /// kept-alive connection the daemon closed meanwhile (its idle deadline, a restart)
    /// reads as closed here.
    pub fn still_open(&self) -> bool {
        if !self.reader.buffer().is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(
            self.reader.get_ref().try_read(&mut probe),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
        )
    }

    /// Keeps what goes out before the daemon's hello, for [`DaemonClient::replay_to_fresh`].
    fn replayable(mut self) -> Self {
        self.replay = Some(Vec::new());
        self
    }

    /// The daemon went away before its hello: connect again (starting a daemon if none
    /// runs) and send what the first one never answered. Once per client.
    async fn replay_to_fresh(&mut self) -> Result<()> {
        let Some(sent) = self.replay.take() else {
            return Ok(());
        };
        tracing::debug!("the daemon went away before its hello; sending the request again");
        let fresh = Self::connect_or_start(&self.kind).await?;
        self.reader = fresh.reader;
        self.writer = fresh.writer;
        self.replayed = true;
        self.writer.write_all(&sent).await.map_err(lost)
    }

    /// Reads the daemon's hello if it has not been read yet and returns the daemon's pid;
    /// fails with `version_mismatch` for a daemon that speaks another protocol.
    pub async fn handshake(&mut self) -> Result<u32> {
        if let Some(pid) = self.daemon_pid {
            return Ok(pid);
        }
        let frame = loop {
            let answer = match self.write_after_hello(&[]).await {
                Ok(()) => protocol::read_frame(&mut self.reader).await,
                Err(e) => Err(e),
            };
            match answer {
                Ok(Some(frame)) => break frame,
                Ok(None) | Err(_) if self.replay.is_some() => self.replay_to_fresh().await?,
                Ok(None) => return Err(unavailable("the daemon closed the connection")),
                Err(e) => return Err(lost(e)),
            }
        };
        self.replay = None;
        match decode(&frame)? {
            DaemonToClient::Hello {
                protocol: p,
                version,
                pid,
            } => {
                if p != protocol::PROTOCOL_VERSION {
                    return Err(Error::new(
                        ErrorCode::VersionMismatch,
                        format!(
                            "the running daemon (pid {pid}) is agentssh {version} speaking protocol {p}; this client is {} speaking protocol {}. Run 'agentssh daemon shutdown' and retry",
                            protocol::BINARY_VERSION,
                            protocol::PROTOCOL_VERSION
                        ),
                    ));
                }
                self.daemon_pid = Some(pid);
                Ok(pid)
            }
            _ => Err(unavailable("the daemon answered without a hello")),
        }
    }

    /// Sends one frame.
    pub async fn send(&mut self, frame: &ClientToDaemon) -> Result<()> {
        let frame = protocol::encode(frame)?;
        match self.write_after_hello(&frame).await {
            Ok(()) => Ok(()),
            // A daemon of another protocol answers our hello and hangs up: say so, rather
            // than that the connection broke.
            Err(_) if self.daemon_pid.is_none() => match self.handshake().await {
                Err(e) => Err(e),
                // The frame went out again, to a fresh daemon.
                Ok(_) if self.replayed => Ok(()),
                Ok(_) => Err(unavailable("the daemon closed the connection")),
            },
            Err(e) => Err(lost(e)),
        }
    }

    /// Writes our hello if it has not gone out yet, then `frame` (possibly empty), in one
    /// write: the daemon gets hello and request in one segment.
    async fn write_after_hello(&mut self, frame: &[u8]) -> std::io::Result<()> {
        let mut bytes = std::mem::take(&mut self.unsent_hello);
        bytes.extend_from_slice(frame);
        if bytes.is_empty() {
            return Ok(());
        }
        if let Some(sent) = &mut self.replay {
            if sent.len() + bytes.len() <= MAX_REPLAY {
                sent.extend_from_slice(&bytes);
            } else {
                self.replay = None;
            }
        }
        self.writer.write_all(&bytes).await
    }

    /// Receives one frame (after the daemon's hello).
    pub async fn recv(&mut self) -> Result<DaemonToClient> {
        self.handshake().await?;
        self.read_frame().await
    }

    async fn read_frame(&mut self) -> Result<DaemonToClient> {
        recv_from(&mut self.reader).await
    }

    /// Sends a request and waits for its final response, ignoring stream frames.
    pub async fn request(mut self, req: Request) -> Result<Response> {
        self.ask(req).await
    }

    /// The reader and writer apart (past the daemon's hello), for a concurrent stdin pump.
    pub async fn split(mut self) -> Result<(BufReader<OwnedReadHalf>, OwnedWriteHalf)> {
        self.handshake().await?;
        Ok((self.reader, self.writer))
    }
}

/// Reads a frame from a split reader.
pub async fn recv_from(reader: &mut BufReader<OwnedReadHalf>) -> Result<DaemonToClient> {
    match protocol::read_frame(reader).await {
        Ok(Some(f)) => decode(&f),
        Ok(None) => Err(unavailable("the daemon closed the connection")),
        Err(e) => Err(lost(e)),
    }
}

/// Unwraps a response into a result (with partial data on failure).
pub fn into_result(
    r: Response,
) -> std::result::Result<serde_json::Value, (Error, Option<serde_json::Value>)> {
    match r {
        Response::Ok(v) => Ok(v),
        Response::Err { error, data } => Err((error, data)),
    }
}

/// The error of a failed response with its partial results attached (they become the
/// envelope's `data`: an approval's id, a timeout's output).
pub fn error_with_data((error, data): (Error, Option<serde_json::Value>)) -> Error {
    match data {
        Some(d) => error.with_data(d),
        None => error,
    }
}

fn log_path_hint() -> String {
    crate::config::state_dir()
        .map(|d| d.join("daemon.log").display().to_string())
        .unwrap_or_else(|_| "the daemon log".into())
}

async fn lock_spawn(path: &Path) -> Result<std::fs::File> {
    let file =
        crate::fsutil::open_lock_file(path).map_err(|e| Error::local_io(path.display(), &e))?;
    let started = Instant::now();
    loop {
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(file),
            Err(_) if started.elapsed() < LOCK_DEADLINE => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            Err(e) => {
                return Err(unavailable(format!(
                    "cannot take {} ({e}): another client is stuck starting the daemon",
                    path.display()
                )))
            }
        }
    }
}

/// Whether `pid` is a live process; a zombie has exited and counts as gone.
pub fn process_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None).is_err() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start())
            .is_none_or(|r| !r.starts_with('Z')),
        Err(_) => true,
    }
}

/// Starts `agentssh daemon run` as a grandchild: our child (in a new session) forks the
/// daemon, writes its pid to a pipe and exits at once, and we reap it. The daemon is then
/// re-parented to init (or the nearest subreaper). Returns the daemon's pid.
fn spawn_daemon() -> Result<u32> {
    let exe =
        std::env::current_exe().map_err(|e| Error::local_io("cannot find our own binary", &e))?;
    let state = crate::config::state_dir()?;
    crate::fsutil::ensure_dir(&state, 0o700).map_err(|e| Error::local_io(state.display(), &e))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state.join("daemon.log"))
        .map_err(|e| Error::local_io(state.join("daemon.log").display(), &e))?;
    let log2 = log
        .try_clone()
        .map_err(|e| Error::local_io("daemon.log", &e))?;
    let (pid_rx, pid_tx) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| unavailable(format!("cannot start the daemon: pipe: {e}")))?;
    let pid_fd = std::os::fd::AsRawFd::as_raw_fd(&pid_tx);
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["daemon", "run"])
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2);
    // SAFETY: runs in the forked child before exec, and calls only async-signal-safe
    // functions (setsid, fork, write, _exit) on no memory but a local array: setsid detaches
    // from our terminal and process group; the fork's parent reports the daemon's pid and
    // leaves at once, the fork's child goes on to exec the daemon (the pipe is CLOEXEC).
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::setsid().map_err(std::io::Error::from)?;
            match libc::fork() {
                -1 => Err(std::io::Error::last_os_error()),
                0 => Ok(()),
                pid => {
                    let bytes = pid.to_ne_bytes();
                    libc::write(pid_fd, bytes.as_ptr().cast(), bytes.len());
                    libc::_exit(0)
                }
            }
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| unavailable(format!("cannot start the daemon: {e}")))?;
    // Our write end closes here, the middle process's when it exits, the daemon's at exec:
    // the read below ends either way.
    drop(cmd);
    drop(pid_tx);
    let _ = child.wait();
    let mut bytes = [0u8; 4];
    let mut pipe = std::fs::File::from(pid_rx);
    std::io::Read::read_exact(&mut pipe, &mut bytes)
        .map_err(|e| unavailable(format!("cannot start the daemon: no pid from it ({e})")))?;
    u32::try_from(i32::from_ne_bytes(bytes))
        .map_err(|_| unavailable("cannot start the daemon: a bad pid from it"))
}
