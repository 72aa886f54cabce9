//! The contract between the CLI, the dashboard and the daemon.
//!
//! Transport: a Unix socket carrying NDJSON frames, each at most [`MAX_FRAME`] bytes. The
//! first frame each way is a hello carrying [`PROTOCOL_VERSION`] and the binary version; a
//! client that meets another version reports `version_mismatch` and never guesses. After the
//! hello the client sends one [`Request`]; the daemon answers with zero or more stream frames
//! (exec output, log entries) and exactly one final [`DaemonToClient::Response`] (streams
//! such as `log --follow` end when the client hangs up). During an exec the client may send
//! stdin frames. One request per connection keeps every exchange independent: a hung or
//! hostile client holds only its own task.
//! Enums are named by direction, as in zellij.
//!
//! The connect spec and file request it carries live in [`crate::wire`]; like this module they
//! import no implementation module (`tests/layering.rs` checks), so the SSH or SFTP code cannot
//! change the wire format behind the contract's back.

use serde::{Deserialize, Serialize};

use crate::error::Error;
pub use crate::wire::approval::{ApprovalInfo, ApprovalOptions, ApprovalState};
use crate::wire::file::FileRequest;
use crate::wire::spec::ConnectSpec;

/// Default and ceiling of `session run`'s returned output, bytes (the clean log holds 1 MiB).
pub const RUN_OUTPUT_LIMIT: usize = 1024 * 1024;

fn run_output_limit() -> usize {
    RUN_OUTPUT_LIMIT
}

fn default_true() -> bool {
    true
}

/// Bumped on any incompatible change to these types.
pub const PROTOCOL_VERSION: u32 = 1;
/// The largest frame either side accepts; a larger one closes that connection only.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;
/// How long the daemon waits for the next request on a kept-alive connection (`keep_alive`
/// in the hello) before it closes it.
pub const KEEP_ALIVE_IDLE: std::time::Duration = std::time::Duration::from_secs(60);
/// This binary's version.
pub const BINARY_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Frames the client sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientToDaemon {
    /// First frame: who is calling.
    Hello {
        /// [`PROTOCOL_VERSION`] of the client.
        protocol: u32,
        /// Binary version of the client.
        version: String,
        /// `cli`, `tui` or `attach`, for the activity log.
        client: String,
        /// How this client's request waits when the approval policy says `ask`.
        #[serde(default)]
        approval: ApprovalOptions,
        /// Keep the connection for further requests after a one-shot one (a long-lived
        /// client such as `agentssh mcp`): the daemon then waits up to [`KEEP_ALIVE_IDLE`]
        /// for the next.
        /// After a stream, a stdin-fed exec or a file transfer it closes as before.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        keep_alive: bool,
    },
    /// A request: the one of this connection, or the next one on a kept-alive connection.
    Request(Request),
    /// Bytes for the running exec's stdin (base64).
    Stdin {
        /// Base64 bytes.
        data: String,
    },
    /// End of stdin.
    StdinEof,
    /// Keystrokes for a watched session (base64); used only while this client holds control.
    Input {
        /// Base64 bytes.
        data: String,
    },
    /// Take (true) or hand back (false) control of the watched session.
    Control {
        /// Take or release.
        take: bool,
    },
}

/// Frames the daemon sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DaemonToClient {
    /// First frame: the daemon's versions.
    Hello {
        /// [`PROTOCOL_VERSION`] of the daemon.
        protocol: u32,
        /// Binary version of the daemon.
        version: String,
        /// Daemon process id.
        pid: u32,
    },
    /// Output of a running exec (base64).
    Output {
        /// Which stream.
        stream: OutputStream,
        /// Base64 bytes.
        data: String,
    },
    /// One activity-log entry of a `log --follow` stream.
    Activity(ActivityEntry),
    /// One item of a data stream (`session read --follow`): the `data` of an NDJSON line.
    Data(serde_json::Value),
    /// An event of a watched session (dashboard, attach).
    Watch(WatchEvent),
    /// Progress of a file transfer: bytes done out of bytes expected.
    Progress {
        /// Bytes done.
        done: u64,
        /// Bytes expected (0 when unknown).
        total: u64,
    },
    /// The final answer.
    Response(Response),
}

/// What a watcher of a session receives.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WatchEvent {
    /// Bytes that redraw the whole screen; start (or restart) the local model from them.
    Keyframe {
        /// Base64 bytes.
        data: String,
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Live PTY bytes, in order.
    Output {
        /// Base64 bytes.
        data: String,
    },
    /// The PTY size changed.
    Resized {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Fresh session metadata (status or controller changed).
    Info(serde_json::Value),
}

/// stdout or stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// What a client can ask.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Daemon, pool and registry status.
    Status,
    /// Close everything and exit.
    Shutdown,
    /// Run a command on a pooled connection.
    Exec {
        /// Where and how to connect.
        spec: Box<ConnectSpec>,
        /// The remote command line.
        command: String,
        /// Timeout in ms (0 = none).
        timeout_ms: u64,
        /// Allocate a PTY.
        tty: bool,
        /// Whether the client will send stdin frames (else EOF at once).
        stdin: bool,
        /// Connection retries.
        retry: u32,
    },
    /// Open a PTY session.
    Connect {
        /// Where and how to connect.
        spec: Box<ConnectSpec>,
        /// Connection retries.
        retry: u32,
        /// Optional name (usable wherever an id is).
        name: Option<String>,
        /// PTY columns.
        cols: u16,
        /// PTY rows.
        rows: u16,
        /// How long to collect initial output, ms.
        wait_ms: u64,
        /// Most initial output bytes returned.
        limit: usize,
        /// Reconnect after a drop.
        reconnect: bool,
        /// Install shell integration (prompt and command marks) in the shell.
        #[serde(default = "default_true")]
        shell_integration: bool,
        /// Do not record this session (`connect --no-record`).
        #[serde(default)]
        no_record: bool,
    },
    /// Another PTY on the connection of session `from`.
    Spawn {
        /// Existing session id or name.
        from: String,
        /// Optional name.
        name: Option<String>,
        /// PTY columns.
        cols: u16,
        /// PTY rows.
        rows: u16,
        /// How long to collect initial output, ms.
        wait_ms: u64,
        /// Most initial output bytes returned.
        limit: usize,
    },
    /// Type into a session and collect what follows.
    Send(Box<SendRequest>),
    /// Read a session's output.
    Read {
        /// Session id or name.
        session: String,
        /// Absolute offset (does not move the cursor); None = the agent cursor.
        offset: Option<u64>,
        /// Raw bytes instead of clean text.
        raw: bool,
        /// Most bytes returned.
        limit: usize,
        /// Stream until exit, disconnect or timeout.
        follow: bool,
        /// Follow deadline, ms.
        timeout_ms: u64,
    },
    /// The rendered screen.
    Screen {
        /// Session id or name.
        session: String,
    },
    /// A fresh exec channel on the session's connection, or (`detach`) type into the PTY.
    SessionExec {
        /// Session id or name.
        session: String,
        /// Command line.
        command: String,
        /// Timeout, ms (0 = none).
        timeout_ms: u64,
        /// Type it into the PTY and return at once.
        detach: bool,
    },
    /// Run a command inside the PTY shell and return its own output and status.
    Run {
        /// Session id or name.
        session: String,
        /// Command line.
        command: String,
        /// Timeout, ms.
        timeout_ms: u64,
        /// Most output bytes to return (the last ones, from a line start).
        #[serde(default = "run_output_limit")]
        limit: usize,
        /// Start the command as a job and return its id at once.
        #[serde(default)]
        detach: bool,
    },
    /// A detached job's state and output.
    Job {
        /// Session id or name.
        session: String,
        /// The job id `session run --detach` returned.
        job: String,
        /// Wait until it is done.
        wait: bool,
        /// Give up waiting after this many ms.
        timeout_ms: u64,
        /// Most output bytes returned (the last ones, from a line start).
        limit: usize,
    },
    /// Resize the PTY.
    Resize {
        /// Session id or name.
        session: String,
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Send a signal.
    Signal {
        /// Session id or name.
        session: String,
        /// INT, QUIT, TSTP, TERM or KILL.
        signal: String,
    },
    /// Is the session alive?
    Ping {
        /// Session id or name.
        session: String,
    },
    /// Wait in the daemon until a session reaches a state or shows a text.
    Wait {
        /// Session id or name.
        session: String,
        /// `prompt`, `input`, `exit`, `quiet` or `text:REGEX`.
        until: String,
        /// Quiet time for `quiet`, ms.
        quiet_ms: u64,
        /// Give up after this many ms.
        timeout_ms: u64,
        /// Most output bytes returned.
        limit: usize,
    },
    /// Mark a session as needing a human (shown at once in the dashboard).
    Ask {
        /// Session id or name.
        session: String,
        /// What the agent needs.
        message: String,
        /// Wait until a human took over and handed back, or dismissed the request.
        wait: bool,
        /// Give up waiting after this many ms.
        timeout_ms: u64,
    },
    /// Dismiss a session's request for a human (the dashboard's dismiss key).
    Dismiss {
        /// Session id or name.
        session: String,
    },
    /// The commands that ran at a session's prompt.
    History {
        /// Session id or name.
        session: String,
        /// The last this many.
        limit: usize,
    },
    /// Session metadata.
    SessionStatus {
        /// Session id or name.
        session: String,
    },
    /// All sessions.
    SessionList,
    /// Close one session or all.
    Close {
        /// Session id or name (None with `all`).
        session: Option<String>,
        /// Close every session.
        all: bool,
    },
    /// Watch a session: a keyframe, then live output, until the client leaves. With
    /// `take_control` the watcher becomes the human controller (released when it leaves).
    Watch {
        /// Session id or name.
        session: String,
        /// Take control at once (read-write attach).
        take_control: bool,
    },
    /// The dashboard feed: the daemon status whenever something changes, plus activity.
    Events,
    /// Start a proxy (local forward, SOCKS5 or reverse forward) on a pooled connection.
    ProxyCreate {
        /// Where and how to connect.
        spec: Box<ConnectSpec>,
        /// Connection retries.
        retry: u32,
        /// What to forward.
        forward: ProxyForward,
        /// Optional name (used as the proxy's id).
        name: Option<String>,
        /// Allow binding a non-loopback address.
        allow_public: bool,
    },
    /// All proxies.
    ProxyList,
    /// Is the proxy's listener up and its SSH connection healthy?
    ProxyPing {
        /// Proxy id or name.
        proxy: String,
    },
    /// Close one proxy or all.
    ProxyClose {
        /// Proxy id or name (None with `all`).
        proxy: Option<String>,
        /// Close every proxy.
        all: bool,
    },
    /// The activity log; with `follow`, new entries stream until the client leaves.
    Log {
        /// Stream new entries.
        follow: bool,
        /// How many past entries to send first.
        limit: usize,
    },
    /// A file operation (`file upload|download|ls|read|write|edit|delete`). The daemon reads
    /// and writes local paths itself; `read` content comes back as stdout `Output` frames,
    /// `write --stdin` input goes as `Stdin` frames; `Progress` frames report transfers.
    File(Box<FileRequest>),
    /// Every session recording on disk.
    RecordingList,
    /// Delete the recordings of one session (id or name), or all finished ones.
    RecordingDelete {
        /// Session id or name (None with `all`).
        session: Option<String>,
        /// Every finished recording.
        all: bool,
    },
    /// Where a session's recording is (id or name, newest first), flushed when live.
    RecordingLocate {
        /// Session id or name.
        session: String,
    },
    /// Asks the gate whether this client may act on a server it reaches itself (`exec
    /// --direct`, `shell`): answers `{authorized: true}` once allowed or approved, else an
    /// `approval_*` error. The client connects only after that answer.
    Authorize {
        /// Where it will connect.
        spec: Box<ConnectSpec>,
        /// The command `exec --direct` will run; None: an interactive shell (`shell`).
        command: Option<String>,
    },
    /// The approval queue: pending requests first, then recent decisions.
    ApprovalList,
    /// One approval request's state (`approvals status ID`).
    ApprovalStatus {
        /// The approval id (`a1`, ...).
        id: String,
    },
    /// A human's answer to an approval request. Refused from clients without a controlling
    /// terminal and from the agent uid (`daemon run --agent-uid`).
    ApprovalDecide {
        /// The approval id.
        id: String,
        /// Approve (true) or deny (false).
        approve: bool,
        /// Why it was denied (shown to the agent).
        reason: Option<String>,
        /// Also add an allow entry for this exact command to the rule that asked.
        #[serde(default)]
        add_rule: bool,
    },
}

impl Request {
    /// Whether a kept-alive connection (`keep_alive` in the hello) takes another request
    /// after this one: only after a request whose client sends nothing but the request
    /// itself, so nothing of it can be left unread between two requests. Streams (watch,
    /// events, follow), stdin-fed exec, file transfers and shutdown end the connection.
    pub fn keeps_connection(&self) -> bool {
        !matches!(
            self,
            Request::Watch { .. }
                | Request::Events
                | Request::Log { follow: true, .. }
                | Request::Read { follow: true, .. }
                | Request::Exec { stdin: true, .. }
                | Request::File(_)
                | Request::Shutdown
        )
    }

    /// A short description for the activity log, with secrets left out.
    pub fn describe(&self) -> (String, Option<String>) {
        match self {
            Request::Status => ("daemon status".into(), None),
            Request::Shutdown => ("daemon shutdown".into(), None),
            Request::Exec { spec, command, .. } => (
                format!("exec {}", truncate(command, 200)),
                Some(spec.display_target()),
            ),
            Request::Log { follow, .. } => (
                format!("log{}", if *follow { " --follow" } else { "" }),
                None,
            ),
            Request::Connect { spec, name, .. } => (
                format!(
                    "connect{}",
                    name.as_ref()
                        .map(|n| format!(" --name {n}"))
                        .unwrap_or_default()
                ),
                Some(spec.display_target()),
            ),
            Request::Spawn { from, .. } => ("session spawn".into(), Some(from.clone())),
            Request::Send(s) => (
                format!("session send {}", truncate(&s.input, 200).escape_debug()),
                Some(s.session.clone()),
            ),
            Request::Read {
                session, follow, ..
            } => (
                format!("session read{}", if *follow { " --follow" } else { "" }),
                Some(session.clone()),
            ),
            Request::Screen { session } => ("session screen".into(), Some(session.clone())),
            Request::SessionExec {
                session,
                command,
                detach,
                ..
            } => (
                format!(
                    "session exec{} {}",
                    if *detach { " --detach" } else { "" },
                    truncate(command, 200)
                ),
                Some(session.clone()),
            ),
            Request::Run {
                session, command, ..
            } => (
                format!("session run {}", truncate(command, 200)),
                Some(session.clone()),
            ),
            Request::Resize {
                session,
                cols,
                rows,
            } => (
                format!("session resize {cols}x{rows}"),
                Some(session.clone()),
            ),
            Request::Signal { session, signal } => {
                (format!("session signal {signal}"), Some(session.clone()))
            }
            Request::Ping { session } => ("session ping".into(), Some(session.clone())),
            Request::SessionStatus { session } => ("session status".into(), Some(session.clone())),
            Request::Wait { session, until, .. } => (
                format!("session wait --for {}", truncate(until, 200)),
                Some(session.clone()),
            ),
            Request::Ask {
                session, message, ..
            } => (
                format!("session ask {}", truncate(message, 200).escape_debug()),
                Some(session.clone()),
            ),
            Request::Dismiss { session } => ("session dismiss".into(), Some(session.clone())),
            Request::Job { session, job, .. } => {
                (format!("session job --job {job}"), Some(session.clone()))
            }
            Request::History { session, .. } => ("session history".into(), Some(session.clone())),
            Request::SessionList => ("session list".into(), None),
            Request::Watch {
                session,
                take_control,
            } => (
                if *take_control {
                    "attach (takes control)".into()
                } else {
                    "watch".into()
                },
                Some(session.clone()),
            ),
            Request::Events => ("dashboard events".into(), None),
            Request::ProxyCreate {
                spec,
                forward,
                name,
                ..
            } => (
                format!(
                    "proxy create {}{}",
                    forward.describe(),
                    name.as_ref()
                        .map(|n| format!(" --name {n}"))
                        .unwrap_or_default()
                ),
                Some(spec.display_target()),
            ),
            Request::ProxyList => ("proxy list".into(), None),
            Request::ProxyPing { proxy } => ("proxy ping".into(), Some(proxy.clone())),
            Request::ProxyClose { proxy, all } => (
                if *all {
                    "proxy close --all".into()
                } else {
                    "proxy close".into()
                },
                proxy.clone(),
            ),
            Request::Close { session, all } => (
                if *all {
                    "session close --all".into()
                } else {
                    "session close".into()
                },
                session.clone(),
            ),
            Request::File(f) => f.describe(),
            Request::RecordingList => ("recordings list".into(), None),
            Request::RecordingDelete { session, all } => (
                if *all {
                    "recordings delete --all".into()
                } else {
                    "recordings delete".into()
                },
                session.clone(),
            ),
            Request::RecordingLocate { session } => {
                ("session export".into(), Some(session.clone()))
            }
            Request::ApprovalList => ("approvals list".into(), None),
            Request::Authorize { spec, command } => (
                match command {
                    Some(c) => format!("exec --direct {}", truncate(c, 200)),
                    None => "shell".into(),
                },
                Some(spec.display_target()),
            ),
            Request::ApprovalStatus { id } => (format!("approvals status {id}"), None),
            Request::ApprovalDecide {
                id,
                approve,
                add_rule,
                ..
            } => (
                format!(
                    "approvals {} {id}{}",
                    if *approve { "approve" } else { "deny" },
                    if *add_rule {
                        " (and allow it from now on)"
                    } else {
                        ""
                    }
                ),
                None,
            ),
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// What a proxy forwards (`proxy create`). Addresses are `HOST:PORT`, `[V6]:PORT` or `PORT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProxyForward {
    /// `ssh -L`: listen on `bind` here, connect to `remote` from the server.
    Local {
        /// Local listen address.
        bind: String,
        /// Target as seen from the server.
        remote: String,
    },
    /// `ssh -D`: a SOCKS5 server on `bind`; targets are reached from the server.
    Socks5 {
        /// Local listen address.
        bind: String,
    },
    /// `ssh -R`: the server listens on `remote_bind`; connections reach `to` from here.
    Reverse {
        /// Listen address on the server.
        remote_bind: String,
        /// Local target.
        to: String,
    },
}

impl ProxyForward {
    /// The forward that exactly one consistent set of addresses asks for: `local` with
    /// `remote`, `socks5` alone, or `reverse` with `to`; None for any other mix (each face
    /// words that error in its own terms: flags or tool arguments).
    pub fn from_parts(
        local: Option<&str>,
        remote: Option<&str>,
        socks5: Option<&str>,
        reverse: Option<&str>,
        to: Option<&str>,
    ) -> Option<ProxyForward> {
        match (local, remote, socks5, reverse, to) {
            (Some(bind), Some(remote), None, None, None) => Some(ProxyForward::Local {
                bind: bind.into(),
                remote: remote.into(),
            }),
            (None, None, Some(bind), None, None) => {
                Some(ProxyForward::Socks5 { bind: bind.into() })
            }
            (None, None, None, Some(remote_bind), Some(to)) => Some(ProxyForward::Reverse {
                remote_bind: remote_bind.into(),
                to: to.into(),
            }),
            _ => None,
        }
    }

    /// The flags that asked for this forward, for the activity log.
    pub fn describe(&self) -> String {
        match self {
            ProxyForward::Local { bind, remote } => format!("--local {bind} --remote {remote}"),
            ProxyForward::Socks5 { bind } => format!("--socks5 {bind}"),
            ProxyForward::Reverse { remote_bind, to } => {
                format!("--reverse {remote_bind} --to {to}")
            }
        }
    }
}

/// How `session send` waits before answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitMode {
    /// Until no output arrived for this many ms.
    Idle(u64),
    /// Until the shell exits.
    Exit,
    /// Return at once.
    None,
}

/// `session send`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendRequest {
    /// Session id or name.
    pub session: String,
    /// The text to type.
    pub input: String,
    /// Turn LF into CRLF.
    pub crlf: bool,
    /// How to wait.
    pub wait: WaitMode,
    /// Overall deadline, ms.
    pub timeout_ms: u64,
    /// Up to three (regex, response) pairs, each answered once, in order.
    pub expect: Vec<(String, String)>,
    /// Raw bytes in the answer instead of clean text.
    pub raw: bool,
    /// Most bytes returned.
    pub limit: usize,
}

/// The final answer to a request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Success with a JSON payload (the `data` of the CLI envelope).
    Ok(serde_json::Value),
    /// Failure with a code; `data` carries partial results.
    Err {
        /// The error.
        error: Error,
        /// Partial results, if any.
        data: Option<serde_json::Value>,
    },
}

/// One line of the activity log: what a client asked, and how it went.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ActivityEntry {
    /// Start time, ms since the epoch.
    pub time_ms: u64,
    /// Client kind and pid, e.g. `cli:1234`.
    pub client: String,
    /// `user@host:port` or a session id.
    pub target: Option<String>,
    /// The request, secrets redacted.
    pub command: String,
    /// How long it took.
    pub duration_ms: u64,
    /// `ok` or an error code.
    pub outcome: String,
}

/// Encodes one frame (JSON plus newline).
pub fn encode<T: Serialize>(frame: &T) -> Result<Vec<u8>, Error> {
    let mut v = serde_json::to_vec(frame)
        .map_err(|e| Error::internal(format!("cannot encode frame: {e}")))?;
    v.push(b'\n');
    if v.len() > MAX_FRAME {
        return Err(Error::internal(format!(
            "frame of {} bytes exceeds the {MAX_FRAME}-byte limit",
            v.len()
        )));
    }
    Ok(v)
}

/// Reads one newline-terminated frame of at most [`MAX_FRAME`] bytes. `Ok(None)` at a clean
/// end of stream; an error for an oversized or truncated frame (without buffering it all).
pub async fn read_frame<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<Option<Vec<u8>>> {
    use tokio::io::AsyncBufReadExt;
    let mut frame = Vec::new();
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            if frame.is_empty() {
                return Ok(None);
            }
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "truncated frame",
            ));
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if frame.len() + chunk.len() > MAX_FRAME {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "frame exceeds the size limit",
            ));
        }
        frame.extend_from_slice(chunk);
        let used = done.unwrap_or(buf.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(Some(frame));
        }
    }
}

/// Decodes a frame.
pub fn decode<T: for<'de> Deserialize<'de>>(frame: &[u8]) -> std::io::Result<T> {
    serde_json::from_slice(frame)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_oversize_is_refused() {
        let hello = ClientToDaemon::Hello {
            protocol: 1,
            version: "x".into(),
            client: "cli".into(),
            approval: ApprovalOptions::default(),
            keep_alive: false,
        };
        let bytes = encode(&hello).unwrap();
        let mut r = tokio::io::BufReader::new(&bytes[..]);
        let f = read_frame(&mut r).await.unwrap().unwrap();
        assert!(matches!(
            decode::<ClientToDaemon>(&f).unwrap(),
            ClientToDaemon::Hello { protocol: 1, .. }
        ));
        assert!(read_frame(&mut r).await.unwrap().is_none());

        let big = vec![b'a'; MAX_FRAME + 10];
        let mut r = tokio::io::BufReader::new(&big[..]);
        assert!(read_frame(&mut r).await.is_err());
    }

    #[test]
    fn requests_use_tagged_json() {
        let v = serde_json::to_value(Request::Log {
            follow: true,
            limit: 5,
        })
        .unwrap();
        assert_eq!(v["op"], "log");
        assert_eq!(v["follow"], true);
    }

    /// `keep_alive` is left out of an ordinary hello (so an older daemon reads it as
    /// before) and read as false when absent; streams never keep a connection.
    #[test]
    fn keep_alive_is_opt_in_and_streams_end_the_connection() {
        let hello = ClientToDaemon::Hello {
            protocol: 1,
            version: "x".into(),
            client: "cli".into(),
            approval: ApprovalOptions::default(),
            keep_alive: false,
        };
        let v = serde_json::to_value(&hello).unwrap();
        assert!(v.get("keep_alive").is_none(), "{v}");
        let old: ClientToDaemon =
            serde_json::from_str(r#"{"type":"hello","protocol":1,"version":"x","client":"cli"}"#)
                .unwrap();
        assert!(matches!(
            old,
            ClientToDaemon::Hello {
                keep_alive: false,
                ..
            }
        ));

        let parse = |s: &str| serde_json::from_str::<Request>(s).unwrap();
        for kept in [
            r#"{"op":"status"}"#,
            r#"{"op":"session_list"}"#,
            r#"{"op":"log","follow":false,"limit":5}"#,
        ] {
            assert!(parse(kept).keeps_connection(), "{kept}");
        }
        for ends in [
            r#"{"op":"events"}"#,
            r#"{"op":"shutdown"}"#,
            r#"{"op":"log","follow":true,"limit":5}"#,
        ] {
            assert!(!parse(ends).keeps_connection(), "{ends}");
        }
    }
}
