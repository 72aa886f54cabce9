//! Stopping a timed-out command where the SSH `signal` request cannot: root logins.
//!
//! OpenSSH runs a root login's session in the monitor, without a privilege-separated child,
//! and refuses `signal` there ("session signalling requires privilege separation"), so TERM
//! and KILL never reach the command. What always works is `kill` from a second exec channel
//! on the same connection, given the process group: sshd starts every command's shell with
//! `setsid()`, so the shell's pid is its process group id and the group holds everything the
//! command started (unless it made its own group, which `signal` would miss as well).
//!
//! The shell reports its pid through a [`PidMarker`]: one line prepended to the command, a
//! separate `sh -c` that prints `$PPID` (the login shell, which stays the parent) with a
//! per-run nonce on stderr (stdout under `--tty`, where the PTY carries both). The user's
//! command runs on the next line in the login shell exactly as before; the prefix is written
//! in quoting that sh, bash, zsh, csh and fish all read the same way (the one visible change:
//! the command's line numbers, in `$LINENO` and syntax errors, are one higher). The client removes the
//! marker from the stream before anyone sees it ([`MarkerStripper`]), holding back only
//! bytes that could be the start of a marker, so streaming, binary output and stdin are
//! unaffected. Only logins that need it are wrapped ([`stops_by_pid`]).

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use bytes::Bytes;
use russh::ChannelMsg;

use super::exec::ChannelSource;

/// How long the `kill` on a second channel may take (open, run, exit) before we stop
/// waiting for it; the command's own channel then tells whether it ended.
const KILL_EXEC_DEADLINE: Duration = Duration::from_secs(3);
/// Text before the nonce in a marker; the whole marker is `agentssh-pid-<nonce>:<pid>.`.
const MARKER_HEAD: &str = "agentssh-pid-";
/// Most digits a pid can have in a marker (Linux's limit is 2^22; leave room).
const MAX_PID_DIGITS: usize = 10;

/// Whether commands of this login need the pid marker to be stoppable: root's sessions on
/// OpenSSH refuse `signal` (see the module docs); other users' sessions honour it.
pub fn stops_by_pid(username: &str) -> bool {
    username == "root"
}

/// The per-run marker that makes the remote shell report its pid.
#[derive(Debug, Clone)]
pub struct PidMarker {
    /// `agentssh-pid-<nonce>:`: what precedes the pid in the stream.
    head: String,
}

impl PidMarker {
    /// A marker with a fresh random nonce, so no output can contain it by accident.
    pub fn new() -> Self {
        let a = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(a);
        PidMarker {
            head: format!("{MARKER_HEAD}{:016x}{:08x}:", a, h.finish() as u32),
        }
    }

    /// The command line to send: the reporting line, then `command` unchanged on the next
    /// line, still run by the login shell. No `'`, `\` or `!` inside the quotes, so every
    /// common login shell passes the `sh -c` argument through verbatim.
    pub fn wrap(&self, command: &str) -> String {
        format!(
            "sh -c 'printf \"{}%s.\" \"$PPID\" >&2'\n{command}",
            self.head
        )
    }

    /// A stripper that removes this marker from the stream it is printed on.
    pub fn stripper(&self) -> MarkerStripper {
        MarkerStripper {
            head: self.head.clone().into_bytes(),
            held: Vec::new(),
            pid: None,
        }
    }
}

impl Default for PidMarker {
    fn default() -> Self {
        Self::new()
    }
}

/// Removes the first marker from a byte stream and remembers the pid it carried.
#[derive(Debug)]
pub struct MarkerStripper {
    head: Vec<u8>,
    /// Bytes that may be the start of a marker, not yet passed on.
    held: Vec<u8>,
    pid: Option<u32>,
}

/// What a marker candidate at the start of a buffer turned out to be.
enum Candidate {
    /// A whole marker of this many bytes, with the pid.
    Marker(usize, u32),
    /// Could still become a marker: wait for more bytes.
    Incomplete,
    /// Not a marker.
    No,
}

impl MarkerStripper {
    /// The pid, once the marker has been seen.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Takes the next chunk of the stream and returns what may be passed on now.
    pub fn push(&mut self, chunk: &[u8]) -> Bytes {
        if self.pid.is_some() {
            return Bytes::copy_from_slice(chunk);
        }
        let mut data = std::mem::take(&mut self.held);
        data.extend_from_slice(chunk);
        let mut out = Vec::with_capacity(data.len());
        let mut i = 0;
        while i < data.len() {
            if self.pid.is_some() {
                out.extend_from_slice(&data[i..]);
                break;
            }
            match self.candidate(&data[i..]) {
                Candidate::Marker(len, pid) => {
                    self.pid = Some(pid);
                    i += len;
                }
                Candidate::Incomplete => {
                    self.held = data[i..].to_vec();
                    break;
                }
                Candidate::No => {
                    out.push(data[i]);
                    i += 1;
                }
            }
        }
        Bytes::from(out)
    }

    /// Ends the stream: returns the bytes held back (a marker that never completed).
    pub fn finish(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.held))
    }

    fn candidate(&self, s: &[u8]) -> Candidate {
        let n = s.len().min(self.head.len());
        if s[..n] != self.head[..n] {
            return Candidate::No;
        }
        if n < self.head.len() {
            return Candidate::Incomplete;
        }
        let rest = &s[n..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > MAX_PID_DIGITS {
            return Candidate::No;
        }
        match rest.get(digits) {
            None => Candidate::Incomplete,
            Some(b'.') if digits > 0 => {
                let text = std::str::from_utf8(&rest[..digits]).unwrap_or_default();
                match text.parse::<u32>() {
                    // Pid 0 and 1 are never a login shell; `kill -TERM -1` would be fatal.
                    Ok(pid) if pid > 1 => Candidate::Marker(n + digits + 1, pid),
                    _ => Candidate::No,
                }
            }
            Some(_) => Candidate::No,
        }
    }
}

/// The remote command that signals process group `pid` (or the process alone where the
/// server did not make it a group leader). `sig` is a name like `TERM`. dash's `kill` takes
/// neither `--` nor `-s SIG -PGID`, hence `-SIG -PGID`.
fn kill_command(pid: u32, sig: &str) -> String {
    format!("sh -c 'kill -{sig} -{pid} 2>/dev/null || kill -{sig} {pid} 2>/dev/null'")
}

/// Sends `sig` to the command whose shell has `pid`, from a new channel of `source`.
/// Returns whether the `kill` ran and reported success; the caller still waits for the
/// command's own channel to confirm that it ended.
pub async fn kill_remote(source: &dyn ChannelSource, pid: u32, sig: &str) -> bool {
    let run = async {
        let Ok(mut channel) = source.session_channel().await else {
            return false;
        };
        if channel.exec(true, kill_command(pid, sig)).await.is_err() {
            return false;
        }
        let mut ok = false;
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::ExitStatus { exit_status } => ok = exit_status == 0,
                ChannelMsg::Close | ChannelMsg::Failure => break,
                _ => {}
            }
        }
        let _ = channel.close().await;
        ok
    };
    let ok = tokio::time::timeout(KILL_EXEC_DEADLINE, run)
        .await
        .unwrap_or(false);
    tracing::debug!(pid, sig, ok, "kill on a second channel");
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker() -> (PidMarker, String) {
        let m = PidMarker::new();
        let text = format!("{}4242.", m.head);
        (m, text)
    }

    #[test]
    fn nonces_differ_and_wrap_keeps_the_command_on_its_own_line() {
        let (a, b) = (PidMarker::new(), PidMarker::new());
        assert_ne!(a.head, b.head);
        let w = a.wrap("echo 'hi'; exit 3");
        let (first, rest) = w.split_once('\n').unwrap();
        assert_eq!(rest, "echo 'hi'; exit 3");
        assert!(
            first.starts_with("sh -c '") && first.ends_with('\''),
            "{first}"
        );
        let inner = &first["sh -c '".len()..first.len() - 1];
        assert!(!inner.contains(['\'', '\\', '!']), "{inner}");
    }

    #[test]
    fn marker_is_removed_in_any_split_and_the_rest_passes_unchanged() {
        let (m, text) = marker();
        let stream = format!("bashrc noise\n{text}err line\n\u{0}\u{ff}binary");
        let bytes = stream.as_bytes();
        let want = "bashrc noise\nerr line\n\u{0}\u{ff}binary";
        for cut in 0..bytes.len() {
            let mut s = m.stripper();
            let mut got = s.push(&bytes[..cut]).to_vec();
            got.extend_from_slice(&s.push(&bytes[cut..]));
            got.extend_from_slice(&s.finish());
            assert_eq!(got, want.as_bytes(), "cut at {cut}");
            assert_eq!(s.pid(), Some(4242));
        }
        // Byte by byte.
        let mut s = m.stripper();
        let mut got = Vec::new();
        for b in bytes {
            got.extend_from_slice(&s.push(&[*b]));
        }
        got.extend_from_slice(&s.finish());
        assert_eq!(got, want.as_bytes());
    }

    #[test]
    fn only_the_first_marker_goes_and_lookalikes_stay() {
        let (m, text) = marker();
        let other = PidMarker::new().stripper();
        let foreign = format!("{}77.", String::from_utf8(other.head).unwrap());
        let input = format!("{foreign}{MARKER_HEAD}x {text}{text}");
        let mut s = m.stripper();
        let mut got = s.push(input.as_bytes()).to_vec();
        got.extend_from_slice(&s.finish());
        assert_eq!(
            String::from_utf8(got).unwrap(),
            format!("{foreign}{MARKER_HEAD}x {text}")
        );
        assert_eq!(s.pid(), Some(4242));
    }

    #[test]
    fn an_unfinished_marker_is_given_back_at_the_end() {
        let (m, text) = marker();
        let part = &text[..text.len() - 1];
        let mut s = m.stripper();
        assert!(s.push(part.as_bytes()).is_empty());
        assert_eq!(s.finish(), part.as_bytes());
        assert_eq!(s.pid(), None);
        // A bad pid is not a marker.
        for bad in ["1.", "0.", ".", "12345678901."] {
            let mut s = m.stripper();
            let input = format!("{}{bad}", m.head);
            let mut got = s.push(input.as_bytes()).to_vec();
            got.extend_from_slice(&s.finish());
            assert_eq!(got, input.as_bytes());
            assert_eq!(s.pid(), None);
        }
    }

    #[test]
    fn kill_command_targets_the_group_then_the_process() {
        assert_eq!(
            kill_command(123, "TERM"),
            "sh -c 'kill -TERM -123 2>/dev/null || kill -TERM 123 2>/dev/null'"
        );
        assert!(stops_by_pid("root"));
        assert!(!stops_by_pid("deploy"));
    }
}
