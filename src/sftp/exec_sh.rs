//! Running the exec backend's shell scripts: one `sh -c` per script on a fresh exec
//! channel (binary-safe, no PTY, `LC_ALL=C`), stdin fed from a [`Source`], stdout captured
//! or streamed into a [`Sink`], stderr kept for the error message; plus the parser of the
//! NUL-separated `find -printf` listings.

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::exec_fs::ExecFs;
use super::io::{interrupted, Entry, Kind, Progress, Sink, Source};
use super::paths::sh_quote;
use crate::error::{Error, ErrorCode, Result};
use crate::ssh::exec::{channel_error, run_on_channel, ExecOutput, ExecRequest};

/// `find -printf` format: type, mode, size, mtime, link target, relative path; NUL-separated.
pub(super) const FMT: &str = r"%y\0%m\0%s\0%T@\0%l\0%P\0";
/// Stdout kept when capturing (listings); more is an error.
const MAX_CAPTURE: usize = 256 * 1024 * 1024;
/// Stderr kept for error messages.
const MAX_STDERR: usize = 64 * 1024;
/// Stdin chunk size.
const CHUNK: usize = 256 * 1024;
/// Longest script we send in one exec (`sh -c` takes it as one argument; Linux caps one
/// argument at 128 KiB).
const MAX_SCRIPT: usize = 64 * 1024;

/// What a script produced.
pub(super) struct ShOut {
    pub(super) status: Option<u32>,
    pub(super) stdout: Vec<u8>,
    pub(super) stderr: String,
    pub(super) fed: u64,
    pub(super) sunk: u64,
}

/// The error for a script that failed, coded from its stderr.
pub(super) fn sh_error(what: &str, out: &ShOut) -> Error {
    let msg = out.stderr.trim();
    let last = msg.lines().last().unwrap_or_default();
    let code = if msg.contains("No such file or directory") {
        ErrorCode::NotFound
    } else if msg.contains("Permission denied") || msg.contains("Operation not permitted") {
        ErrorCode::PermissionDenied
    } else {
        ErrorCode::RemoteIo
    };
    let detail = match (out.status, last.is_empty()) {
        (Some(127), _) => {
            format!("a command the exec fallback needs is missing on the server ({last})")
        }
        (_, false) => last.to_string(),
        (Some(s), true) => format!("exit status {s}"),
        (None, true) => "the command was killed".to_string(),
    };
    Error::new(code, format!("{what}: {detail}"))
}

/// Parses `find -printf FMT` output.
pub(super) fn parse_entries(out: &[u8]) -> Result<Vec<Entry>> {
    let fields: Vec<&[u8]> = out.split(|&b| b == 0).collect();
    let mut entries = Vec::new();
    for rec in fields.chunks(6) {
        if rec.len() < 6 {
            break;
        }
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let kind = match rec[0] {
            b"f" => Kind::File,
            b"d" => Kind::Dir,
            b"l" => Kind::Symlink,
            _ => Kind::Other,
        };
        let bad = || Error::new(ErrorCode::RemoteIo, "cannot parse the server's find output");
        let mode = u32::from_str_radix(&text(rec[1]), 8).map_err(|_| bad())?;
        let size = text(rec[2]).parse::<u64>().map_err(|_| bad())?;
        let mtime_text = text(rec[3]);
        let mtime = mtime_text
            .split('.')
            .next()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(bad)?;
        entries.push(Entry {
            name: text(rec[5]),
            kind,
            size,
            mode: mode & 0o7777,
            mtime: u64::try_from(mtime).unwrap_or(0),
            link: (kind == Kind::Symlink).then(|| text(rec[4])),
        });
    }
    Ok(entries)
}

impl ExecFs<'_> {
    /// Runs `script` under `sh` with `LC_ALL=C`; `stdin` is fed from a source, stdout goes
    /// to `sink` (or is captured). Errors only for transport failures: check `status`.
    pub(super) async fn sh(
        &self,
        script: &str,
        stdin: Option<(&mut Source<'_>, &Progress)>,
        sink: Option<(&mut Sink<'_>, &Progress)>,
    ) -> Result<ShOut> {
        let command = format!(
            "sh -c {}",
            sh_quote(&format!("LC_ALL=C; export LC_ALL; {script}"))
        );
        tracing::debug!(%command, "exec fallback");
        let req = ExecRequest {
            command,
            timeout: None,
            tty: None,
            kill_by_pid: false,
        };
        self.stop.check()?;
        let channel = self.source.session_channel().await.map_err(channel_error)?;
        let (in_tx, in_rx) = mpsc::channel::<Bytes>(4);
        let (out_tx, mut out_rx) = mpsc::channel::<ExecOutput>(16);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let has_stdin = stdin.is_some();
        let stop = self.stop.clone();
        let run = run_on_channel(
            channel,
            &req,
            has_stdin.then_some(in_rx),
            out_tx,
            async move {
                tokio::select! {
                    _ = stop_rx => {}
                    () = stop.wait() => {}
                }
            },
            None,
        );
        let stop2 = self.stop.clone();
        let feed = async move {
            let mut fed = 0u64;
            if let Some((src, progress)) = stdin {
                loop {
                    let next = tokio::select! {
                        c = src.next(CHUNK) => c?,
                        () = stop2.wait() => return Err(interrupted()),
                    };
                    let Some(chunk) = next else { break };
                    let n = chunk.len() as u64;
                    if in_tx.send(chunk).await.is_err() {
                        break;
                    }
                    fed += n;
                    progress.advance(n);
                }
            }
            drop(in_tx);
            Ok::<u64, Error>(fed)
        };
        let drain = async move {
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            let mut sink = sink;
            let mut failed: Option<Error> = None;
            let mut sunk = 0u64;
            let mut stop = Some(stop_tx);
            while let Some(chunk) = out_rx.recv().await {
                match chunk {
                    ExecOutput::Stdout(b) if failed.is_none() => {
                        let r = match sink.as_mut() {
                            Some((s, p)) => {
                                p.advance(b.len() as u64);
                                sunk += b.len() as u64;
                                s.put(b).await
                            }
                            None if stdout.len() + b.len() > MAX_CAPTURE => Err(Error::new(
                                ErrorCode::RemoteIo,
                                "the server's answer is too large",
                            )),
                            None => {
                                stdout.extend_from_slice(&b);
                                Ok(())
                            }
                        };
                        if let Err(e) = r {
                            failed = Some(e);
                            if let Some(s) = stop.take() {
                                let _ = s.send(());
                            }
                        }
                    }
                    ExecOutput::Stdout(_) => {}
                    ExecOutput::Stderr(b) => {
                        let room = MAX_STDERR.saturating_sub(stderr.len());
                        stderr.extend_from_slice(&b[..room.min(b.len())]);
                    }
                }
            }
            (stdout, stderr, failed, sunk)
        };
        let (outcome, fed, (stdout, stderr, failed, sunk)) = tokio::join!(run, feed, drain);
        let outcome = outcome?;
        self.stop.check()?;
        if let Some(e) = failed {
            return Err(e);
        }
        let fed = fed?;
        Ok(ShOut {
            status: outcome.exit_status,
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            fed,
            sunk,
        })
    }

    /// Runs `script`, capturing stdout; a non-zero status is an error about `what`.
    pub(super) async fn run(&self, script: &str, what: &str) -> Result<Vec<u8>> {
        let out = self.sh(script, None, None).await?;
        if out.status != Some(0) {
            return Err(sh_error(what, &out));
        }
        Ok(out.stdout)
    }

    /// Runs a list of commands, batched into scripts below [`MAX_SCRIPT`] bytes, stopping at
    /// the first failure.
    pub(super) async fn run_batch(&self, commands: &[String], what: &str) -> Result<()> {
        let mut script = String::new();
        for c in commands {
            if !script.is_empty() && script.len() + c.len() > MAX_SCRIPT {
                self.run(&script, what).await?;
                script.clear();
            }
            script.push_str(c);
            script.push_str(" || exit 1; ");
        }
        if !script.is_empty() {
            self.run(&script, what).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_output_with_odd_names_parses() {
        let out = b"f\x00644\x0012\x001700000000.5\x00\x00a b\nc\x00l\x00777\x003\x001700000001.0\x00x y\x00ln\x00d\x00755\x004096\x001700000002.0000000000\x00\x00dir\x00";
        let e = parse_entries(out).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].name, "a b\nc");
        assert_eq!(
            (e[0].kind, e[0].mode, e[0].size, e[0].mtime),
            (Kind::File, 0o644, 12, 1_700_000_000)
        );
        assert_eq!(e[1].link.as_deref(), Some("x y"));
        assert_eq!(e[2].kind, Kind::Dir);
        assert!(parse_entries(b"").unwrap().is_empty());
    }
}
