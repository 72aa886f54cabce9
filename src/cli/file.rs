//! `agentssh file ...`: upload, download, ls, read, write, edit, delete.
//!
//! Through the daemon (the default) the CLI sends absolute local paths and the daemon,
//! running as the same user, reads and writes them itself; only `read` output and
//! `write --stdin` input cross the socket. `--direct` runs the same code
//! ([`crate::sftp::run`]) in this process. Text mode shows a progress bar for transfers on
//! a terminal; `--json` never does.

use std::io::{IsTerminal, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;
use tokio::sync::mpsc;

use super::args::ConnectArgs;
use super::{output, Reply};
use crate::client::{into_result, recv_from, DaemonClient};
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::{ClientToDaemon, DaemonToClient, Request};
use crate::sftp::{self, Ctx, FileAction, FileRequest, FileTarget, Input, Method, Progress};

/// Most content `file read --json` returns (it is held in memory, then base64'd).
pub const MAX_JSON_READ: u64 = 64 * 1024 * 1024;
/// How often the progress bar is refreshed in `--direct` mode.
const TICK: Duration = Duration::from_millis(100);

/// `--method` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// SFTP, falling back to exec (cat/find) when the server has no SFTP subsystem.
    Auto,
    /// SFTP only.
    Sftp,
    /// Shell commands over exec channels only.
    Exec,
    /// Accepted for compatibility; there is no SCP backend (use auto or sftp).
    Scp,
}

/// Connection flags shared by every `file` command.
#[derive(Debug, Clone, Args)]
pub struct FileConn {
    #[command(flatten)]
    pub conn: ConnectArgs,
    /// Reuse the connection of this session (id or name; through the daemon).
    #[arg(short = 's', long = "session-id", value_name = "ID")]
    pub session: Option<String>,
    /// Connect from this process instead of through the daemon's connection pool.
    #[arg(long)]
    pub direct: bool,
    /// Retry connection failures this many times.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retry: u32,
    /// Transport: auto (SFTP, else exec), sftp or exec.
    #[arg(long, value_enum, value_name = "METHOD", default_value_t = MethodArg::Auto)]
    pub method: MethodArg,
}

/// `file upload` / `file download`.
#[derive(Debug, Args)]
pub struct TransferArgs {
    #[command(flatten)]
    pub fc: FileConn,
    /// Local path.
    #[arg(long, value_name = "PATH")]
    pub local: String,
    /// Remote path (an existing directory, or one ending in '/', receives the source by name).
    #[arg(long, value_name = "PATH")]
    pub remote: String,
    /// Copy directories and everything under them.
    #[arg(long, short = 'r')]
    pub recursive: bool,
}

/// `file ls` / `file read`.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    #[command(flatten)]
    pub fc: FileConn,
    /// Remote path.
    #[arg(long, value_name = "PATH")]
    pub remote: String,
}

/// `file write`.
#[derive(Debug, Args)]
pub struct WriteArgs {
    #[command(flatten)]
    pub fc: FileConn,
    /// Remote path.
    #[arg(long, value_name = "PATH")]
    pub remote: String,
    /// The new content, taken literally (use $'...' for escapes, or --stdin).
    #[arg(
        long,
        allow_hyphen_values = true,
        conflicts_with = "stdin",
        required_unless_present = "stdin"
    )]
    pub content: Option<String>,
    /// Read the content from standard input (binary-safe, any size).
    #[arg(long)]
    pub stdin: bool,
    /// Append instead of replacing (not atomic).
    #[arg(long)]
    pub append: bool,
}

/// `file edit`.
#[derive(Debug, Args)]
pub struct EditArgs {
    #[command(flatten)]
    pub fc: FileConn,
    /// Remote path.
    #[arg(long, value_name = "PATH")]
    pub remote: String,
    /// Text to find (a regex with --regex).
    #[arg(long, allow_hyphen_values = true)]
    pub find: String,
    /// Replacement (with --regex, $1 and ${name} expand groups).
    #[arg(long, allow_hyphen_values = true)]
    pub replace: String,
    /// Treat --find as a regular expression.
    #[arg(long)]
    pub regex: bool,
    /// Replace every match (default: the first).
    #[arg(long)]
    pub all: bool,
}

/// `file delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub fc: FileConn,
    /// Remote path (never /, ~ or the home directory).
    #[arg(long, value_name = "PATH", allow_hyphen_values = true)]
    pub remote: String,
    /// Delete a directory and everything under it.
    #[arg(long, short = 'r')]
    pub recursive: bool,
}

/// `file ...`.
#[derive(Debug, Subcommand)]
pub enum FileCommand {
    /// Copy a local file (or tree, with --recursive) to the server; modes and mtimes kept.
    #[command(
        after_help = "Examples:\n  agentssh file upload -p prod --local ./app.tar.gz --remote /tmp/\n  agentssh --json file upload -p prod --local ./site --remote /var/www/site --recursive"
    )]
    Upload(TransferArgs),
    /// Copy a remote file (or tree, with --recursive) here; modes and mtimes kept.
    #[command(
        after_help = "Example:\n  agentssh file download -p prod --remote /var/log/app.log --local ./app.log"
    )]
    Download(TransferArgs),
    /// List a directory: name, type, size, mode, mtime, link target.
    #[command(after_help = "Example:\n  agentssh --json file ls -p prod --remote /var/www")]
    Ls(RemoteArgs),
    /// Print a file (text mode: its bytes as they are; JSON: content or content_b64).
    #[command(after_help = "Example:\n  agentssh file read -p prod --remote /etc/app.ini")]
    Read(RemoteArgs),
    /// Replace a file atomically (mode kept), or append to it.
    #[command(
        after_help = "Examples:\n  agentssh file write -p prod --remote /etc/app.ini --content $'[app]\\nport=8080\\n'\n  tar c dir | agentssh file write -p prod --remote /tmp/dir.tar --stdin"
    )]
    Write(WriteArgs),
    /// Find and replace in a file atomically; fails with not_found if nothing matched.
    #[command(
        after_help = "Examples:\n  agentssh file edit -p prod --remote /etc/app.ini --find port=8080 --replace port=9090\n  agentssh file edit -p prod --remote /etc/app.ini --find 'port=\\d+' --replace port=9090 --regex"
    )]
    Edit(EditArgs),
    /// Delete a file, or a directory tree with --recursive (refuses / and the home dir).
    #[command(
        after_help = "Example:\n  agentssh file delete -p prod --remote /tmp/build --recursive"
    )]
    Delete(DeleteArgs),
}

impl FileCommand {
    /// The connection flags (for argv secret warnings).
    pub fn conn(&self) -> &ConnectArgs {
        &self.fc().conn
    }

    fn fc(&self) -> &FileConn {
        match self {
            FileCommand::Upload(a) | FileCommand::Download(a) => &a.fc,
            FileCommand::Ls(a) | FileCommand::Read(a) => &a.fc,
            FileCommand::Write(a) => &a.fc,
            FileCommand::Edit(a) => &a.fc,
            FileCommand::Delete(a) => &a.fc,
        }
    }
}

/// An absolute, lexically normalised local path; a trailing `/` is kept (it means "into
/// this directory").
pub fn local_abs(p: &str) -> Result<PathBuf> {
    if p.is_empty() {
        return Err(Error::usage("--local must not be empty"));
    }
    let abs = std::path::absolute(p).map_err(|e| Error::local_io(p, &e))?;
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    if p.ends_with('/') && out != Path::new("/") {
        let mut s = out.into_os_string();
        s.push("/");
        out = PathBuf::from(s);
    }
    Ok(out)
}

fn method(m: MethodArg) -> Result<Method> {
    match m {
        MethodArg::Auto => Ok(Method::Auto),
        MethodArg::Sftp => Ok(Method::Sftp),
        MethodArg::Exec => Ok(Method::Exec),
        MethodArg::Scp => Err(Error::usage(
            "--method scp is accepted for compatibility but there is no SCP backend; use --method auto, sftp or exec",
        )),
    }
}

fn build(cmd: FileCommand) -> Result<(FileConn, FileAction)> {
    Ok(match cmd {
        FileCommand::Upload(a) => {
            let local = local_abs(&a.local)?;
            (
                a.fc,
                FileAction::Upload {
                    local,
                    remote: a.remote,
                    recursive: a.recursive,
                },
            )
        }
        FileCommand::Download(a) => {
            let local = local_abs(&a.local)?;
            (
                a.fc,
                FileAction::Download {
                    remote: a.remote,
                    local,
                    recursive: a.recursive,
                },
            )
        }
        FileCommand::Ls(a) => (a.fc, FileAction::Ls { remote: a.remote }),
        FileCommand::Read(a) => {
            let max_bytes = output::json_mode().then_some(MAX_JSON_READ);
            (
                a.fc,
                FileAction::Read {
                    remote: a.remote,
                    max_bytes,
                },
            )
        }
        FileCommand::Write(a) => {
            let content = if a.stdin { None } else { a.content };
            (
                a.fc,
                FileAction::Write {
                    remote: a.remote,
                    content,
                    append: a.append,
                },
            )
        }
        FileCommand::Edit(a) => (
            a.fc,
            FileAction::Edit {
                remote: a.remote,
                find: a.find,
                replace: a.replace,
                regex: a.regex,
                all: a.all,
            },
        ),
        FileCommand::Delete(a) => (
            a.fc,
            FileAction::Delete {
                remote: a.remote,
                recursive: a.recursive,
            },
        ),
    })
}

/// Where `read` content goes: straight to stdout in text mode, a bounded buffer in JSON.
struct ContentOut {
    json: bool,
    buf: Vec<u8>,
    dropped: u64,
}

impl ContentOut {
    fn push(&mut self, b: &[u8]) {
        if !self.json {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(b);
            return;
        }
        let room = (MAX_JSON_READ as usize).saturating_sub(self.buf.len());
        let take = room.min(b.len());
        self.buf.extend_from_slice(&b[..take]);
        self.dropped += (b.len() - take) as u64;
    }

    fn finish(self, data: &mut Value) {
        if !self.json {
            let _ = std::io::stdout().flush();
            return;
        }
        if let Some(obj) = data.as_object_mut() {
            match String::from_utf8(self.buf) {
                Ok(s) => {
                    obj.insert("content".into(), s.into());
                }
                Err(e) => {
                    let b64 = base64::engine::general_purpose::STANDARD.encode(e.as_bytes());
                    obj.insert("binary".into(), true.into());
                    obj.insert("content_b64".into(), b64.into());
                }
            }
            if self.dropped > 0 {
                obj.insert("content_truncated_bytes".into(), self.dropped.into());
            }
        }
    }
}

/// A progress bar on stderr (text mode, terminal, transfers only).
struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    fn new(enabled: bool) -> Bar {
        if !enabled {
            return Bar(None);
        }
        let pb = indicatif::ProgressBar::with_draw_target(
            Some(0),
            indicatif::ProgressDrawTarget::stderr_with_hz(10),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40.cyan/blue} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            pb.set_style(style.progress_chars("=> "));
        }
        Bar(Some(pb))
    }

    fn update(&self, done: u64, total: u64) {
        if let Some(pb) = &self.0 {
            pb.set_length(total.max(done));
            pb.set_position(done);
        }
    }

    fn finish(&self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}

/// Reads our stdin on a thread into [`Input`] chunks, ending with [`Input::Eof`]; a read
/// error ends the stream without it (the write is then abandoned).
fn stdin_input() -> mpsc::Receiver<Input> {
    let (tx, rx) = mpsc::channel::<Input>(8);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => {
                    let _ = tx.blocking_send(Input::Eof);
                    return;
                }
                Ok(n) => {
                    if tx
                        .blocking_send(Input::Data(Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    });
    rx
}

/// Runs `file ...`.
pub async fn run(cmd: FileCommand) -> Result<Reply> {
    let (fc, action) = build(cmd)?;
    let method = method(fc.method)?;
    if fc.direct && fc.session.is_some() {
        return Err(Error::usage(
            "--session-id uses the daemon's session connection; drop --direct",
        ));
    }
    let json = output::json_mode();
    let transfer = matches!(
        action,
        FileAction::Upload { .. } | FileAction::Download { .. }
    );
    let bar = Bar::new(transfer && !json && std::io::stderr().is_terminal());
    let mut content = ContentOut {
        json,
        buf: Vec::new(),
        dropped: 0,
    };
    let result = if fc.direct {
        direct(&fc, method, &action, &bar, &mut content).await
    } else {
        via_daemon(&fc, method, &action, &bar, &mut content).await
    };
    bar.finish();
    let mut data = result?;
    if action.streams_content() {
        content.finish(&mut data);
        if !json {
            return Ok(Reply {
                data,
                text: None,
                exit_code: 0,
                error: None,
                streamed: false,
            });
        }
    }
    let text = render(&action, &data);
    Ok(Reply::ok(data, text))
}

async fn interrupt() {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    match term {
        Ok(mut t) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = t.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn direct(
    fc: &FileConn,
    method: Method,
    action: &FileAction,
    bar: &Bar,
    content: &mut ContentOut,
) -> Result<Value> {
    let mut spec = super::target::resolve(&fc.conn)?;
    let conn = super::connect::connect_with_retry(&mut spec, fc.retry).await?;
    let progress = Arc::new(Progress::default());
    let (content_tx, mut content_rx) = mpsc::channel::<Bytes>(8);
    let ctx = Ctx {
        progress: progress.clone(),
        content: action.streams_content().then_some(content_tx),
        input: action.wants_input().then(stdin_input),
    };
    let op = sftp::run(&conn.handle, method, action, ctx, interrupt());
    tokio::pin!(op);
    let mut tick = tokio::time::interval(TICK);
    let mut open = true;
    let result = loop {
        tokio::select! {
            r = &mut op => break r,
            chunk = content_rx.recv(), if open => match chunk {
                Some(b) => content.push(&b),
                None => open = false,
            },
            _ = tick.tick() => {
                let (d, t) = progress.get();
                bar.update(d, t);
            }
        }
    };
    while let Some(b) = content_rx.recv().await {
        content.push(&b);
    }
    let _ = conn
        .handle
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    result
}

async fn via_daemon(
    fc: &FileConn,
    method: Method,
    action: &FileAction,
    bar: &Bar,
    content: &mut ContentOut,
) -> Result<Value> {
    let mut target = match &fc.session {
        Some(s) => FileTarget::Session { session: s.clone() },
        None => FileTarget::Spec {
            spec: Box::new(super::target::resolve(&fc.conn)?),
            retry: fc.retry,
        },
    };
    let mut prompted = action.wants_input();
    loop {
        let client = DaemonClient::connect_or_start("cli").await?;
        let req = Request::File(Box::new(FileRequest {
            target: target.clone(),
            method,
            action: action.clone(),
        }));
        let (mut reader, mut writer) = client.split();
        let frame = crate::protocol::encode(&ClientToDaemon::Request(req))?;
        tokio::io::AsyncWriteExt::write_all(&mut writer, &frame)
            .await
            .map_err(|e| {
                Error::new(
                    ErrorCode::DaemonUnavailable,
                    format!("lost the daemon connection: {e}"),
                )
            })?;
        // The pump owns the write half and keeps it open until we abort it: the daemon takes
        // a closed socket for a client that went away (and cancels the operation).
        let input = action.wants_input().then(stdin_input);
        let pump = tokio::spawn(pump_input(input, writer));
        let response = loop {
            match recv_from(&mut reader).await {
                Ok(DaemonToClient::Progress { done, total }) => bar.update(done, total),
                Ok(DaemonToClient::Output { data, .. }) => {
                    let b = base64::engine::general_purpose::STANDARD
                        .decode(data)
                        .unwrap_or_default();
                    content.push(&b);
                }
                Ok(DaemonToClient::Response(r)) => break Ok(r),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
        };
        pump.abort();
        match into_result(response?) {
            Ok(v) => return Ok(v),
            Err((error, _)) => {
                if let FileTarget::Spec { spec, .. } = &mut target {
                    if !prompted
                        && super::connect::offer_password_prompt(spec, error.code, &error.message)?
                    {
                        prompted = true;
                        continue;
                    }
                }
                return Err(error);
            }
        }
    }
}

async fn pump_input(
    input: Option<mpsc::Receiver<Input>>,
    mut writer: tokio::net::unix::OwnedWriteHalf,
) {
    use tokio::io::AsyncWriteExt;
    if let Some(mut rx) = input {
        while let Some(chunk) = rx.recv().await {
            let frame = match chunk {
                Input::Data(b) => ClientToDaemon::Stdin {
                    data: base64::engine::general_purpose::STANDARD.encode(&b),
                },
                Input::Eof => ClientToDaemon::StdinEof,
            };
            let Ok(bytes) = crate::protocol::encode(&frame) else {
                return;
            };
            if writer.write_all(&bytes).await.is_err() {
                return;
            }
        }
    }
    std::future::pending::<()>().await;
}

fn num(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or(0)
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_default()
}

fn render(action: &FileAction, v: &Value) -> String {
    let via = format!("via {} in {} ms", s(v, "method"), num(v, "duration_ms"));
    match action {
        FileAction::Upload { .. } | FileAction::Download { .. } => {
            let verb = if matches!(action, FileAction::Upload { .. }) {
                "uploaded"
            } else {
                "downloaded"
            };
            let to = if matches!(action, FileAction::Upload { .. }) {
                s(v, "remote")
            } else {
                s(v, "local")
            };
            let mut extra = String::new();
            if s(v, "type") == "dir" {
                extra = format!(", {} dirs, {} symlinks", num(v, "dirs"), num(v, "symlinks"));
            }
            format!(
                "{verb} {} files ({} bytes{extra}) to {to} {via}",
                num(v, "files"),
                num(v, "bytes")
            )
        }
        FileAction::Ls { .. } => {
            let rows: Vec<String> = v["entries"]
                .as_array()
                .map(|a| a.iter().map(ls_line).collect())
                .unwrap_or_default();
            rows.join("\n")
        }
        FileAction::Read { .. } => String::new(),
        FileAction::Write { append, .. } => format!(
            "{} {} bytes to {} {via}",
            if *append { "appended" } else { "wrote" },
            num(v, "bytes"),
            s(v, "path")
        ),
        FileAction::Edit { .. } => {
            let n = num(v, "replacements");
            format!(
                "{n} replacement{} in {} {via}",
                if n == 1 { "" } else { "s" },
                s(v, "path")
            )
        }
        FileAction::Delete { .. } => format!("deleted {} ({}) {via}", s(v, "path"), s(v, "type")),
    }
}

fn ls_line(e: &Value) -> String {
    let kind = match s(e, "type") {
        "dir" => 'd',
        "symlink" => 'l',
        "file" => '-',
        _ => '?',
    };
    let mut line = format!(
        "{kind} {} {:>12} {} {}",
        s(e, "mode"),
        num(e, "size"),
        utc(num(e, "mtime")),
        s(e, "name").escape_debug()
    );
    if let Some(t) = e["link_target"].as_str() {
        line.push_str(&format!(" -> {}", t.escape_debug()));
    }
    line
}

/// `YYYY-MM-DD HH:MM` (UTC) from seconds since the epoch.
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_are_absolute_and_normalised() {
        assert_eq!(local_abs("/a/b/../c").unwrap(), PathBuf::from("/a/c"));
        assert_eq!(local_abs("/a/./b/").unwrap().to_string_lossy(), "/a/b/");
        assert_eq!(local_abs("/..").unwrap(), PathBuf::from("/"));
        assert!(local_abs("x").unwrap().is_absolute());
        assert!(local_abs("").is_err());
    }

    #[test]
    fn scp_is_refused_with_a_usage_error() {
        assert_eq!(method(MethodArg::Scp).unwrap_err().code, ErrorCode::Usage);
        assert_eq!(method(MethodArg::Exec).unwrap(), Method::Exec);
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00");
    }
}
