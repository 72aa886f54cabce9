//! What an exec produced: how it ended ([`ExecOutcome`]), its bounded output ([`Capture`]),
//! the JSON reply built from both, and the timeout error that claims no more than is known.

use base64::Engine;
use russh::Sig;
use serde_json::{json, Value};

use crate::error::{Error, ErrorCode};

/// How a command ended.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ExecOutcome {
    /// Exit status, if the server reported one.
    pub exit_status: Option<u32>,
    /// Signal name (e.g. `TERM`) if the command was killed by one.
    pub exit_signal: Option<String>,
    /// True when our timeout (or the client going away) made us stop it; see `remote_stopped`.
    pub timed_out: bool,
    /// Wall time from channel open to end.
    pub duration_ms: u64,
    /// After a stop: whether the server then closed the channel, which sshd does only once
    /// the command has exited and nothing holds its output open. `false`: it may still run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_stopped: Option<bool>,
}

impl ExecOutcome {
    /// The process exit code `agentssh exec` returns: the remote status, 128+n for a signal
    /// (as shells report it), 124 for our timeout, 255 if the server said nothing.
    pub fn exit_code(&self) -> i32 {
        if self.timed_out {
            return 124;
        }
        if let Some(s) = self.exit_status {
            return i32::try_from(s).unwrap_or(255);
        }
        match self.exit_signal.as_deref().and_then(signal_number) {
            Some(n) => 128 + n,
            None => 255,
        }
    }
}

fn signal_number(name: &str) -> Option<i32> {
    Some(match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "ABRT" => 6,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        _ => return None,
    })
}

pub(super) fn sig_name(sig: &Sig) -> String {
    match sig {
        Sig::ABRT => "ABRT",
        Sig::ALRM => "ALRM",
        Sig::FPE => "FPE",
        Sig::HUP => "HUP",
        Sig::ILL => "ILL",
        Sig::INT => "INT",
        Sig::KILL => "KILL",
        Sig::PIPE => "PIPE",
        Sig::QUIT => "QUIT",
        Sig::SEGV => "SEGV",
        Sig::TERM => "TERM",
        Sig::USR1 => "USR1",
        Sig::Custom(s) => s.as_str(),
    }
    .to_string()
}

/// The error for a command our timeout stopped (or tried to): claims that it stopped only
/// when the server confirmed it.
pub fn timeout_error(timeout_ms: u64, outcome: &ExecOutcome) -> Error {
    let msg = if outcome.remote_stopped == Some(true) {
        format!("command timed out after {timeout_ms} ms and was stopped")
    } else {
        format!(
            "command timed out after {timeout_ms} ms and could not be confirmed stopped: it may \
             still be running on the server; do not retry blindly (check first, e.g. with pgrep)"
        )
    };
    Error::new(ErrorCode::Timeout, msg)
}

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
                    base64::engine::general_purpose::STANDARD
                        .encode(&self.bytes)
                        .into(),
                );
            }
        }
        if self.dropped > 0 {
            obj.insert(format!("{name}_truncated_bytes"), self.dropped.into());
        }
    }
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
    if let Some(stopped) = outcome.remote_stopped {
        obj.insert("remote_stopped".into(), json!(stopped));
    }
    Value::Object(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_ssh_and_shell_conventions() {
        let o = |s: Option<u32>, sig: Option<&str>, t: bool| ExecOutcome {
            exit_status: s,
            exit_signal: sig.map(String::from),
            timed_out: t,
            duration_ms: 0,
            remote_stopped: None,
        };
        assert_eq!(o(Some(42), None, false).exit_code(), 42);
        assert_eq!(o(None, Some("KILL"), false).exit_code(), 137);
        assert_eq!(o(Some(0), None, true).exit_code(), 124);
        assert_eq!(o(None, None, false).exit_code(), 255);
    }
}
