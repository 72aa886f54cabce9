//! Running one command on an exec channel: streamed output, stdin, exit status, timeout.
//!
//! Shared by direct `exec` and the daemon's pooled exec, so both behave the same. A timeout
//! stops the remote command for real: OpenSSH delivers `signal` requests to the command's
//! process group for normal users, and for root logins (where it refuses them) we `kill` the
//! group from a second channel ([`super::exec_stop`]): TERM, a short grace, then KILL. The
//! outcome says whether the server confirmed the end (`remote_stopped`); nothing more is
//! claimed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use russh::client::Msg;
use russh::{Channel, ChannelMsg, Sig};
use tokio::sync::mpsc;

use super::client::SshHandle;
use super::exec_outcome::sig_name;
pub use super::exec_outcome::{outcome_json, timeout_error, Capture, ExecOutcome, MAX_CAPTURE};
use super::exec_stop::{kill_remote, MarkerStripper, PidMarker};
use crate::error::{Error, ErrorCode, Result};

/// How long a timed-out command gets between TERM and KILL.
const TERM_GRACE: Duration = Duration::from_millis(500);
/// How long we wait for the server to close the channel after KILL before giving up and
/// reporting the command as not confirmed stopped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// A command to run.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// The command line, run by the remote user's shell.
    pub command: String,
    /// Stop the command after this long.
    pub timeout: Option<Duration>,
    /// Allocate a PTY (`--tty`): size in columns and rows.
    pub tty: Option<(u32, u32)>,
    /// Learn the command's pid so a stop can `kill` it from a second channel: needed where
    /// the server ignores `signal` requests (root logins, see [`super::exec_stop`]).
    pub kill_by_pid: bool,
}

/// Output as it arrives.
#[derive(Debug, Clone)]
pub enum ExecOutput {
    /// Bytes on stdout.
    Stdout(Bytes),
    /// Bytes on stderr.
    Stderr(Bytes),
}

fn remote(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::ConnectFailed, format!("SSH channel failed: {e}"))
}

/// Where session channels come from: a bare connection opens a new one on each call; the
/// daemon's pooled connection hands over the one it opened ahead of need
/// (`daemon::spare`), so exec, SFTP and the exec file backend all start without a round trip.
pub trait ChannelSource: Sync {
    /// A session channel with no request on it yet. A failure means nothing ran, so the
    /// caller may retry on another connection.
    fn session_channel(&self) -> BoxFuture<'_, std::result::Result<Channel<Msg>, russh::Error>>;
}

/// Our error for a channel that could not be opened (or used right after opening).
pub fn channel_error(e: russh::Error) -> Error {
    Error::new(
        ErrorCode::ConnectFailed,
        format!("cannot open an SSH channel: {e}"),
    )
}

impl ChannelSource for SshHandle {
    fn session_channel(&self) -> BoxFuture<'_, std::result::Result<Channel<Msg>, russh::Error>> {
        Box::pin(self.channel_open_session())
    }
}

/// Runs `req` on a new channel of `handle` (see [`run_on_channel`]); a stop by pid uses
/// further channels of `handle`.
pub async fn run_exec(
    handle: &SshHandle,
    req: &ExecRequest,
    stdin: Option<mpsc::Receiver<Bytes>>,
    out: mpsc::Sender<ExecOutput>,
) -> Result<ExecOutcome> {
    let channel = handle.session_channel().await.map_err(channel_error)?;
    run_on_channel(
        channel,
        req,
        stdin,
        out,
        std::future::pending(),
        Some(handle),
    )
    .await
}

/// Where a stop is: not begun, TERM sent, KILL sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Running,
    /// TERM sent; KILL at this instant.
    Term(tokio::time::Instant),
    /// KILL sent; give up (unconfirmed) at this instant.
    Kill(tokio::time::Instant),
}

/// Runs `req` on an open channel. `stdin` yields input chunks (its end sends EOF); `None`
/// sends EOF at once. Output goes to `out` in arrival order; a slow consumer slows the channel
/// (SSH flow control), never grows memory. When `cancel` resolves (the client went away) the
/// command is stopped as on a timeout.
///
/// A stop sends TERM, then KILL after [`TERM_GRACE`]: as `signal` requests, and, when
/// `req.kill_by_pid` and `killer` can open channels on the same connection, also as `kill`
/// of the command's process group from a second channel ([`super::exec_stop`]).
/// `remote_stopped` tells whether the server then closed the channel: sshd does that only
/// once the command has exited and nothing holds its output open any more. An exit status
/// alone is not enough (a child that left the process group may still be running).
pub async fn run_on_channel(
    channel: Channel<Msg>,
    req: &ExecRequest,
    stdin: Option<mpsc::Receiver<Bytes>>,
    out: mpsc::Sender<ExecOutput>,
    cancel: impl std::future::Future<Output = ()>,
    killer: Option<&dyn ChannelSource>,
) -> Result<ExecOutcome> {
    let started = Instant::now();
    let (mut reader, writer) = channel.split();
    let writer = Arc::new(writer);
    let marker = req
        .kill_by_pid
        .then_some(killer)
        .flatten()
        .map(|_| PidMarker::new());
    let command = match &marker {
        Some(m) => m.wrap(&req.command),
        None => req.command.clone(),
    };
    // The marker comes on stderr, or on stdout where a PTY merges the two.
    let mut strip = marker.as_ref().map(PidMarker::stripper);
    if let Some((cols, rows)) = req.tty {
        writer
            .request_pty(false, "xterm-256color", cols, rows, 0, 0, &[])
            .await
            .map_err(remote)?;
    }
    writer
        .exec(true, command.as_bytes())
        .await
        .map_err(remote)?;

    // Without stdin the EOF goes out at once, queued right behind the exec request so the
    // server gets both in one segment; a pump task feeds stdin otherwise.
    let stdin_pump = match stdin {
        None => {
            let _ = writer.eof().await;
            None
        }
        Some(mut rx) => {
            let writer = writer.clone();
            Some(tokio::spawn(async move {
                while let Some(chunk) = rx.recv().await {
                    if writer.data_bytes(chunk).await.is_err() {
                        return;
                    }
                }
                let _ = writer.eof().await;
            }))
        }
    };
    let stop_stdin_pump = || {
        if let Some(pump) = &stdin_pump {
            pump.abort();
        }
    };

    let mut outcome = ExecOutcome::default();
    let deadline = req.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut stop = Stop::Running;
    // Whether the server said anything on the channel after our exec request (its reply,
    // output, an exit status): a channel that closes before that never ran the command.
    let mut answered = false;
    let pid = |strip: &Option<MarkerStripper>| strip.as_ref().and_then(MarkerStripper::pid);
    tokio::pin!(cancel);
    loop {
        let wake = match stop {
            Stop::Running => deadline,
            Stop::Term(at) | Stop::Kill(at) => Some(at),
        };
        let msg = tokio::select! {
            m = reader.wait() => m,
            _ = &mut cancel, if stop == Stop::Running => {
                outcome.timed_out = true;
                send_stop(&writer, killer, pid(&strip), Sig::TERM).await;
                stop = Stop::Term(tokio::time::Instant::now() + TERM_GRACE);
                continue;
            }
            _ = sleep_until(wake) => {
                match stop {
                    Stop::Running => {
                        outcome.timed_out = true;
                        send_stop(&writer, killer, pid(&strip), Sig::TERM).await;
                        stop = Stop::Term(tokio::time::Instant::now() + TERM_GRACE);
                    }
                    Stop::Term(_) => {
                        send_stop(&writer, killer, pid(&strip), Sig::KILL).await;
                        stop = Stop::Kill(tokio::time::Instant::now() + CLOSE_GRACE);
                    }
                    Stop::Kill(_) => {
                        outcome.remote_stopped = Some(false);
                        break;
                    }
                }
                continue;
            }
        };
        answered |= matches!(
            msg,
            Some(
                ChannelMsg::Success
                    | ChannelMsg::Data { .. }
                    | ChannelMsg::ExtendedData { .. }
                    | ChannelMsg::ExitStatus { .. }
                    | ChannelMsg::ExitSignal { .. }
                    | ChannelMsg::Eof
            )
        );
        if stop != Stop::Running {
            // So far unconfirmed; the server's close (the loop's last message) confirms the
            // end. A lost connection does not: sshd leaves a non-PTY command running.
            outcome.remote_stopped = Some(matches!(msg, Some(ChannelMsg::Close)));
        }
        match msg {
            Some(ChannelMsg::Data { data }) => {
                let data = match (&mut strip, req.tty) {
                    (Some(s), Some(_)) => s.push(&data),
                    _ => data,
                };
                send_output(&out, ExecOutput::Stdout(data)).await;
            }
            Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                let data = match (&mut strip, req.tty) {
                    (Some(s), None) => s.push(&data),
                    _ => data,
                };
                send_output(&out, ExecOutput::Stderr(data)).await;
            }
            Some(ChannelMsg::ExitStatus { exit_status }) => outcome.exit_status = Some(exit_status),
            Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                outcome.exit_signal = Some(sig_name(&signal_name))
            }
            Some(ChannelMsg::Failure) => {
                stop_stdin_pump();
                return Err(Error::new(
                    ErrorCode::RemoteIo,
                    "the server refused to run the command (exec request denied)",
                ));
            }
            Some(ChannelMsg::Close) | None if !answered && !outcome.timed_out => {
                stop_stdin_pump();
                return Err(Error::new(
                    ErrorCode::ConnectFailed,
                    "the server closed the channel before running the command (nothing ran)",
                ));
            }
            Some(ChannelMsg::Close) | None => break,
            Some(_) => {}
        }
    }
    stop_stdin_pump();
    // Bytes held back as a possible marker that never completed are output after all.
    if let Some(s) = &mut strip {
        let rest = s.finish();
        let chunk = match req.tty {
            Some(_) => ExecOutput::Stdout(rest),
            None => ExecOutput::Stderr(rest),
        };
        send_output(&out, chunk).await;
    }
    let _ = writer.close().await;
    outcome.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(outcome)
}

/// Passes on a non-empty chunk (a consumer that went away is not our failure).
async fn send_output(out: &mpsc::Sender<ExecOutput>, chunk: ExecOutput) {
    let empty = match &chunk {
        ExecOutput::Stdout(b) | ExecOutput::Stderr(b) => b.is_empty(),
    };
    if !empty {
        let _ = out.send(chunk).await;
    }
}

/// One step of a stop: the `signal` request (honoured by OpenSSH for non-root logins), and
/// the `kill` of the process group from a second channel when its pid is known.
async fn send_stop(
    writer: &russh::ChannelWriteHalf<Msg>,
    killer: Option<&dyn ChannelSource>,
    pid: Option<u32>,
    sig: Sig,
) {
    let name = sig_name(&sig);
    let _ = writer.signal(sig).await;
    if let (Some(source), Some(pid)) = (killer, pid) {
        kill_remote(source, pid, &name).await;
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
