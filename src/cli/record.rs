//! `session export`, `recordings list|delete` and `replay`: the CLI side of session
//! recordings. The daemon owns the recordings directory and says where a session's recording
//! is (flushing it first while the session lives); the files are then read here.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};

use super::session::ask;
use super::Reply;
use crate::cast::Cast;
use crate::client::{into_result, DaemonClient};
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::Request;

/// `session export --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// The asciicast v2 recording itself.
    Cast,
    /// The clean text (what `session read --offset 0` returns).
    Txt,
}

// `session export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Session id or name (the newest recording of that id or name).
    #[arg(short = 's', long = "session-id")]
    pub session: String,
    /// cast (asciicast v2) or txt (clean text).
    #[arg(long, value_enum, default_value = "cast")]
    pub format: ExportFormat,
    /// Write here (0600) instead of stdout. (`--output` is the global output format.)
    #[arg(long = "output-file", value_name = "FILE")]
    pub output_file: Option<PathBuf>,
}

/// `recordings ...`.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum RecordingsCommand {
    /// Every recording on disk, oldest first, with sizes and caps.
    #[command(after_help = "Example:\n  agentssh --json recordings list")]
    List,
    /// Delete a session's recordings, or every finished one.
    #[command(
        after_help = "Examples:\n  agentssh recordings delete -s build\n  agentssh --json recordings delete --all"
    )]
    Delete {
        /// Session id or name.
        #[arg(short = 's', long = "session-id", required_unless_present = "all")]
        session: Option<String>,
        /// Every finished recording.
        #[arg(long, conflicts_with = "session")]
        all: bool,
    },
}

// `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A recording file (else use -s).
    #[arg(value_name = "FILE", required_unless_present = "session")]
    pub file: Option<PathBuf>,
    /// The recording of this session id or name.
    #[arg(short = 's', long = "session-id", conflicts_with = "file")]
    pub session: Option<String>,
    /// Playback speed (0.1-64).
    #[arg(long, value_name = "N", default_value_t = 1.0)]
    pub speed: f64,
    /// Pauses longer than this many seconds are shortened to it.
    #[arg(long, value_name = "S")]
    pub idle_limit: Option<f64>,
}

/// Asks the daemon where the session's recording is.
async fn locate(session: &str) -> Result<(PathBuf, Value)> {
    let client = DaemonClient::connect_or_start("cli").await?;
    let req = Request::RecordingLocate {
        session: session.to_string(),
    };
    let v = into_result(client.request(req).await?).map_err(|(e, _)| e)?;
    let path = v["path"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| Error::internal("the daemon sent no recording path"))?;
    Ok((path, v))
}

fn read_cast(path: &Path) -> Result<Cast> {
    Cast::read(path).map_err(|e| match e {
        crate::cast::CastError::Io { source, .. } => Error::local_io(path.display(), &source),
        other => Error::new(ErrorCode::Usage, other.to_string()),
    })
}

/// The recording's bytes up to its last complete line (a live one may end mid-line).
fn whole_lines(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = std::fs::read(path).map_err(|e| Error::local_io(path.display(), &e))?;
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes.truncate(keep);
    Ok(bytes)
}

/// `session export`.
pub async fn export(a: ExportArgs) -> Result<Reply> {
    let (path, found) = locate(&a.session).await?;
    let content = match a.format {
        ExportFormat::Cast => whole_lines(&path)?,
        ExportFormat::Txt => read_cast(&path)?.clean_text().into_bytes(),
    };
    let format = match a.format {
        ExportFormat::Cast => "cast",
        ExportFormat::Txt => "txt",
    };
    let mut data = json!({
        "session_id": found["session_id"],
        "name": found["name"],
        "recording": path,
        "format": format,
        "bytes": content.len(),
    });
    if let Some(out) = &a.output_file {
        crate::fsutil::atomic_write(out, &content, 0o600)
            .map_err(|e| Error::local_io(out.display(), &e))?;
        data["path"] = json!(out);
        let text = format!("wrote {} bytes to {}", content.len(), out.display());
        return Ok(Reply::ok(data, text));
    }
    if super::output::json_mode() {
        data["content"] = json!(String::from_utf8_lossy(&content));
        return Ok(Reply::ok(data, ""));
    }
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&content)
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::local_io("stdout", &e))?;
    Ok(Reply::streamed(0))
}

/// `recordings list|delete`.
pub async fn recordings(c: RecordingsCommand) -> Result<Reply> {
    match c {
        RecordingsCommand::List => {
            ask(Request::RecordingList, |v| {
                let rows: Vec<String> = v["recordings"]
                    .as_array()
                    .map(|a| a.iter().map(row).collect())
                    .unwrap_or_default();
                if rows.is_empty() {
                    "no recordings".into()
                } else {
                    rows.join("\n")
                }
            })
            .await
        }
        RecordingsCommand::Delete { session, all } => {
            ask(Request::RecordingDelete { session, all }, |v| {
                format!(
                    "deleted {} recording(s)",
                    v["deleted"].as_array().map_or(0, Vec::len)
                )
            })
            .await
        }
    }
}

fn row(r: &Value) -> String {
    format!(
        "{}{}  {} bytes{}  {}",
        r["session_id"].as_str().unwrap_or_default(),
        r["name"]
            .as_str()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default(),
        r["bytes"],
        if r["live"].as_bool() == Some(true) {
            "  live"
        } else {
            ""
        },
        r["path"].as_str().unwrap_or_default()
    )
}

/// `replay`.
pub async fn replay(a: ReplayArgs) -> Result<Reply> {
    if !(0.1..=64.0).contains(&a.speed) {
        return Err(Error::usage("--speed must be between 0.1 and 64"));
    }
    if a.idle_limit.is_some_and(|s| s.is_nan() || s <= 0.0) {
        return Err(Error::usage(
            "--idle-limit must be a positive number of seconds",
        ));
    }
    let path = match (&a.file, &a.session) {
        (Some(f), _) => f.clone(),
        (None, Some(s)) => locate(s).await?.0,
        (None, None) => return Err(Error::usage("pass a recording FILE or -s ID")),
    };
    let cast = read_cast(&path)?;
    let ended = crate::tui::replay::run_replay(cast, a.speed, a.idle_limit).await?;
    Ok(Reply::ok(
        json!({"recording": path, "ended": ended}),
        format!("replay of {} ended ({ended})", path.display()),
    ))
}
