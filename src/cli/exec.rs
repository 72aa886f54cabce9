//! `agentssh exec`: one command, its output and its exit status.
//!
//! Text mode streams stdout/stderr as they arrive; JSON mode collects them (bounded) into one
//! envelope, base64-encoding a stream that is not UTF-8. Local stdin is forwarded when it is
//! not a terminal.

use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::args::ExecArgs;
use super::Reply;
use crate::error::{Error, ErrorCode, Result};
use crate::ssh::exec::{run_exec, ExecOutcome, ExecOutput, ExecRequest};

/// Most bytes of each stream kept for the JSON reply; the rest is counted, not kept.
pub const MAX_CAPTURE: usize = 64 * 1024 * 1024;

/// Collected output of one stream, bounded by [`MAX_CAPTURE`].
#[derive(Default)]
pub struct Capture {
    bytes: Vec<u8>,
    dropped: u64,
}

impl Capture {
    /// Appends a chunk, dropping what exceeds the cap.
    pub fn push(&mut self, chunk: &[u8]) {
        let room = MAX_CAPTURE.saturating_sub(self.bytes.len());
        let take = room.min(chunk.len());
        self.bytes.extend_from_slice(&chunk[..take]);
        self.dropped += (chunk.len() - take) as u64;
    }

    /// Adds `name` (lossy text), `name_b64` when not UTF-8, and `name_truncated_bytes`.
    pub fn write_into(&self, obj: &mut serde_json::Map<String, Value>, name: &str) {
        match std::str::from_utf8(&self.bytes) {
            Ok(s) => {
                obj.insert(name.into(), s.into());
            }
            Err(_) => {
                obj.insert(name.into(), String::from_utf8_lossy(&self.bytes).into());
                obj.insert(
                    format!("{name}_b64"),
                    base64::engine::general_purpose::STANDARD.encode(&self.bytes).into(),
                );
            }
        }
        if self.dropped > 0 {
            obj.insert(format!("{name}_truncated_bytes"), self.dropped.into());
        }
    }
}

/// The remote command line from the words after `--` (joined with spaces, as ssh does).
pub fn command_line(words: &[String]) -> Result<String> {
    let line = words.join(" ");
    if line.trim().is_empty() {
        return Err(Error::usage("missing command: agentssh exec [OPTIONS] -- COMMAND [ARGS...]"));
    }
    Ok(line)
}

/// Forwards local stdin in chunks when it is not a terminal.
pub fn stdin_forwarder() -> Option<mpsc::Receiver<Bytes>> {
    if std::io::stdin().is_terminal() {
        return None;
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 64 * 1024];
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
    Some(rx)
}

/// The JSON data of a finished exec.
pub fn outcome_json(outcome: &ExecOutcome, out: &Capture, err: &Capture) -> Value {
    let mut obj = serde_json::Map::new();
    obj.insert("exit_status".into(), json!(outcome.exit_status));
    if let Some(sig) = &outcome.exit_signal {
        obj.insert("exit_signal".into(), json!(sig));
    }
    out.write_into(&mut obj, "stdout");
    err.write_into(&mut obj, "stderr");
    obj.insert("duration_ms".into(), json!(outcome.duration_ms));
    Value::Object(obj)
}

/// The error for a timed-out command.
pub fn timeout_error(ms: u64) -> Error {
    Error::new(ErrorCode::Timeout, format!("command timed out after {ms} ms and was stopped"))
}

/// Runs `exec` directly from this process.
pub async fn run(args: ExecArgs) -> Result<Reply> {
    let command = command_line(&args.command)?;
    let mut spec = super::target::resolve(&args.conn)?;
    let conn = super::connect::connect_with_retry(&mut spec, args.retry).await?;
    let req = ExecRequest {
        command,
        timeout: (args.timeout > 0).then(|| Duration::from_millis(args.timeout)),
        tty: args.tty.then_some((120, 40)),
    };
    let json = super::output::json_mode();
    let (mut out, mut err) = (Capture::default(), Capture::default());
    let outcome = run_exec(&conn.handle, &req, stdin_forwarder(), |chunk| match chunk {
        ExecOutput::Stdout(b) if json => out.push(&b),
        ExecOutput::Stderr(b) if json => err.push(&b),
        ExecOutput::Stdout(b) => {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(&b);
            let _ = o.flush();
        }
        ExecOutput::Stderr(b) => {
            let _ = std::io::stderr().lock().write_all(&b);
        }
    })
    .await?;
    let _ = conn
        .handle
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    finish(outcome, args.timeout, &out, &err)
}

/// Turns an outcome into the reply (or the timeout error with partial output).
pub fn finish(outcome: ExecOutcome, timeout_ms: u64, out: &Capture, err: &Capture) -> Result<Reply> {
    let data = outcome_json(&outcome, out, err);
    if outcome.timed_out {
        return Ok(Reply::failure(timeout_error(timeout_ms), Some(data)));
    }
    Ok(Reply {
        data,
        text: None,
        exit_code: outcome.exit_code(),
        error: None,
    })
}
