//! `agentssh exec`: one command, its output and its exit status.
//!
//! Text mode streams stdout/stderr as they arrive; JSON mode collects them (bounded) into one
//! envelope, base64-encoding a stream that is not UTF-8. Local stdin is forwarded when it is
//! not a terminal.

use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::args::ExecArgs;
use super::Reply;
use crate::error::{Error, ErrorCode, Result};
use crate::screen::Cleaner;
use crate::ssh::exec::{outcome_json, Capture};
use crate::ssh::exec::{run_exec, timeout_error, ExecOutcome, ExecOutput, ExecRequest};

/// Where exec output goes: straight to our stdout/stderr in text mode (streamed as it
/// comes), into bounded captures in JSON mode; with `--strip-ansi` through the session log's
/// [`Cleaner`] first (one per stream, so sequences split across chunks are still removed).
pub struct OutputSink {
    json: bool,
    /// Captured stdout (JSON mode).
    pub out: Capture,
    /// Captured stderr (JSON mode).
    pub err: Capture,
    /// Cleaners for stdout and stderr (`--strip-ansi`).
    clean: Option<Box<(Cleaner, Cleaner)>>,
}

impl OutputSink {
    /// A sink for the current output mode; `strip_ansi` cleans the output.
    pub fn new(json: bool, strip_ansi: bool) -> Self {
        OutputSink {
            json,
            out: Capture::default(),
            err: Capture::default(),
            clean: strip_ansi.then(|| Box::new((Cleaner::new(), Cleaner::new()))),
        }
    }

    /// Takes one chunk.
    pub fn accept(&mut self, chunk: ExecOutput) {
        let Some(clean) = self.clean.as_mut() else {
            return self.pass(chunk);
        };
        let mut text = String::new();
        let cleaned = match chunk {
            ExecOutput::Stdout(b) => {
                clean.0.push(&b, &mut text);
                ExecOutput::Stdout(Bytes::from(text))
            }
            ExecOutput::Stderr(b) => {
                clean.1.push(&b, &mut text);
                ExecOutput::Stderr(Bytes::from(text))
            }
        };
        self.pass(cleaned);
    }

    /// Ends the output: a cleaner's last line without `\n` is passed on.
    pub fn finish(&mut self) {
        let Some(mut clean) = self.clean.take() else {
            return;
        };
        let (mut out, mut err) = (String::new(), String::new());
        clean.0.finish(&mut out);
        clean.1.finish(&mut err);
        self.pass(ExecOutput::Stdout(Bytes::from(out)));
        self.pass(ExecOutput::Stderr(Bytes::from(err)));
    }

    fn pass(&mut self, chunk: ExecOutput) {
        match chunk {
            ExecOutput::Stdout(b) if self.json => self.out.push(&b),
            ExecOutput::Stderr(b) if self.json => self.err.push(&b),
            ExecOutput::Stdout(b) => {
                let mut o = std::io::stdout().lock();
                let _ = o.write_all(&b);
                let _ = o.flush();
            }
            ExecOutput::Stderr(b) => {
                let _ = std::io::stderr().lock().write_all(&b);
            }
        }
    }
}

/// The remote command line from the words after `--` (joined with spaces, as ssh does).
pub fn command_line(words: &[String]) -> Result<String> {
    let line = words.join(" ");
    if line.trim().is_empty() {
        return Err(Error::usage(
            "missing command: agentssh exec [OPTIONS] -- COMMAND [ARGS...]",
        ));
    }
    Ok(line)
}

/// Forwards local stdin in chunks when it is not a terminal.
pub fn stdin_forwarder() -> Option<mpsc::Receiver<Bytes>> {
    if std::io::stdin().is_terminal() || stdin_is_dev_null() {
        return None;
    }
    Some(spawn_stdin_reader(64 * 1024, 16))
}

/// Whether stdin is `/dev/null` (character device 1:3), whose EOF the remote side gets at
/// once without a reader thread; agents and schedulers often run us that way.
fn stdin_is_dev_null() -> bool {
    match rustix::fs::fstat(rustix::stdio::stdin()) {
        Ok(st) => {
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::CharacterDevice
                && rustix::fs::major(st.st_rdev) == 1
                && rustix::fs::minor(st.st_rdev) == 3
        }
        Err(_) => false,
    }
}

/// Reads stdin on its own thread in reads of at most `chunk` bytes, queueing up to `queue`
/// chunks; the receiver ends at EOF or on a read error.
pub fn spawn_stdin_reader(chunk: usize, queue: usize) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel::<Bytes>(queue);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; chunk];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// Runs `exec`: through the daemon's pool, or directly with `--direct`.
pub async fn run(args: ExecArgs) -> Result<Reply> {
    let command = command_line(&args.command)?;
    let mut spec = super::target::resolve(&args.conn)?;
    if !args.direct {
        return run_via_daemon(&args, command, spec).await;
    }
    super::connect::authorize(&spec, Some(&command)).await?;
    let conn = super::connect::connect_with_retry(&mut spec, args.retry).await?;
    let req = ExecRequest {
        command,
        timeout: (args.timeout > 0).then(|| Duration::from_millis(args.timeout)),
        tty: args.tty.then_some((120, 40)),
        // Without a timeout nothing here ever stops the command (unlike the daemon, whose
        // client may go away), so the pid is not needed.
        kill_by_pid: args.timeout > 0 && crate::ssh::exec_stop::stops_by_pid(&spec.username),
    };
    let mut sink = OutputSink::new(super::output::json_mode(), args.strip_ansi);
    let (tx, mut rx) = mpsc::channel(32);
    let drain = async {
        while let Some(chunk) = rx.recv().await {
            sink.accept(chunk);
        }
    };
    let (outcome, ()) = tokio::join!(run_exec(&conn.handle, &req, stdin_forwarder(), tx), drain);
    let outcome = outcome?;
    sink.finish();
    let (out, err) = (sink.out, sink.err);
    let _ = conn
        .handle
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    finish(outcome, args.timeout, &out, &err)
}

/// Turns an outcome into the reply (or the timeout error with partial output).
pub fn finish(
    outcome: ExecOutcome,
    timeout_ms: u64,
    out: &Capture,
    err: &Capture,
) -> Result<Reply> {
    let data = outcome_json(&outcome, out, err);
    if outcome.timed_out {
        return Ok(Reply::failure(
            timeout_error(timeout_ms, &outcome),
            Some(data),
        ));
    }
    Ok(Reply {
        data,
        text: None,
        exit_code: outcome.exit_code(),
        error: None,
        streamed: false,
    })
}

async fn run_via_daemon(
    args: &ExecArgs,
    command: String,
    mut spec: crate::wire::spec::ConnectSpec,
) -> Result<Reply> {
    use crate::client::{into_result, recv_from, DaemonClient};
    use crate::protocol::{ClientToDaemon, DaemonToClient, OutputStream, Request};
    let mut stdin = stdin_forwarder();
    let mut prompted = false;
    loop {
        let mut client = DaemonClient::connect_or_start("cli").await?;
        let request = Request::Exec {
            spec: Box::new(spec.clone()),
            command: command.clone(),
            timeout_ms: args.timeout,
            tty: args.tty,
            stdin: stdin.is_some(),
            retry: args.retry,
        };
        client.send(&ClientToDaemon::Request(request)).await?;
        let (mut reader, writer) = client.split().await?;
        // The pump owns the write half and keeps it open until we drop its handle: the
        // daemon takes a closed socket for a client that went away.
        let pump = tokio::spawn(pump_stdin(stdin.take(), writer));
        let mut sink = OutputSink::new(super::output::json_mode(), args.strip_ansi);
        let response = loop {
            match recv_from(&mut reader).await? {
                DaemonToClient::Output { stream, data } => {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(data)
                        .unwrap_or_default();
                    sink.accept(match stream {
                        OutputStream::Stdout => ExecOutput::Stdout(Bytes::from(bytes)),
                        OutputStream::Stderr => ExecOutput::Stderr(Bytes::from(bytes)),
                    });
                }
                DaemonToClient::Response(r) => break r,
                _ => {}
            }
        };
        pump.abort();
        sink.finish();
        let (out, err) = (sink.out, sink.err);
        return match into_result(response) {
            Ok(v) => {
                let outcome: ExecOutcome = serde_json::from_value(v).map_err(|e| {
                    Error::internal(format!("bad exec result from the daemon: {e}"))
                })?;
                finish(outcome, args.timeout, &out, &err)
            }
            Err((error, Some(data))) if error.code == ErrorCode::Timeout => {
                let outcome: ExecOutcome = serde_json::from_value(data).unwrap_or_default();
                Ok(Reply::failure(
                    error,
                    Some(outcome_json(&outcome, &out, &err)),
                ))
            }
            Err((error, data)) => {
                if !prompted
                    && super::connect::offer_password_prompt(&mut spec, error.code, &error.message)?
                {
                    prompted = true;
                    continue;
                }
                Err(crate::client::error_with_data((error, data)))
            }
        };
    }
}

async fn pump_stdin(
    stdin: Option<mpsc::Receiver<Bytes>>,
    mut writer: tokio::net::unix::OwnedWriteHalf,
) {
    use crate::protocol::ClientToDaemon;
    use tokio::io::AsyncWriteExt;
    if let Some(mut rx) = stdin {
        while let Some(chunk) = rx.recv().await {
            let frame = ClientToDaemon::Stdin {
                data: base64::engine::general_purpose::STANDARD.encode(&chunk),
            };
            let Ok(bytes) = crate::protocol::encode(&frame) else {
                return;
            };
            if writer.write_all(&bytes).await.is_err() {
                return;
            }
        }
        if let Ok(bytes) = crate::protocol::encode(&ClientToDaemon::StdinEof) {
            let _ = writer.write_all(&bytes).await;
        }
    }
    // Hold the socket open until the caller aborts us after the response.
    std::future::pending::<()>().await;
}
