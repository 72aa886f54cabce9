//! The command-line face: parse, dispatch, print, and map errors to exit codes.
//!
//! Under `--json`, every path ends in exactly one envelope on stdout: clap errors, help,
//! command errors and panics included (see [`output`]).

pub mod approvals;
pub mod args;
pub mod connect;
pub mod daemon;
pub mod docs;
pub mod exec;
pub mod file;
pub mod hoist;
pub mod output;
pub mod policy;
pub mod profile;
pub mod prompt;
pub mod proxy;
pub mod record;
pub mod session;
pub mod shell;

use clap::Parser;
use serde_json::Value;

use crate::error::{Error, Result};
// Target resolution lives below the faces; `super::target` in the subcommands resolves here.
use crate::target;
use args::{Cli, Command};

/// What a command produced.
#[derive(Debug)]
pub struct Reply {
    /// The JSON `data`.
    pub data: Value,
    /// What text mode prints on stdout (None: already printed, e.g. streamed).
    pub text: Option<String>,
    /// Process exit code.
    pub exit_code: i32,
    /// A failure that still carries data (e.g. output before a timeout).
    pub error: Option<Error>,
    /// The reply was already printed as a stream (NDJSON lines); print nothing more.
    pub streamed: bool,
}

impl Reply {
    /// A success with data and its text rendering.
    pub fn ok(data: Value, text: impl Into<String>) -> Self {
        Reply {
            data,
            text: Some(text.into()),
            exit_code: 0,
            error: None,
            streamed: false,
        }
    }

    /// A reply already printed as a stream (NDJSON lines); only the exit code remains.
    pub fn streamed(exit_code: i32) -> Self {
        Reply {
            data: Value::Null,
            text: None,
            exit_code,
            error: None,
            streamed: true,
        }
    }

    /// A failure that carries partial data.
    pub fn failure(error: Error, data: Option<Value>) -> Self {
        Reply {
            exit_code: error.code.exit_code(),
            data: data.unwrap_or(Value::Null),
            text: None,
            error: Some(error),
            streamed: false,
        }
    }
}

/// Entry point: returns the process exit code.
pub fn main() -> i32 {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    output::set_json_mode(output::argv_wants_json(&argv));
    output::install_panic_hook();
    let argv = hoist::hoist(argv);
    if std::env::var("AGENTSSH_DEBUG_PANIC").is_ok_and(|v| v != "tui" && v != "attach") {
        // Test hook: proves that a panic still yields one valid envelope.
        panic!("AGENTSSH_DEBUG_PANIC is set");
    }
    let cli = match Cli::try_parse_from(&argv) {
        Ok(c) => c,
        Err(e) => return clap_error(e),
    };
    output::set_json_mode(cli.json_mode());
    crate::client::set_approval_options(crate::protocol::ApprovalOptions {
        timeout_ms: cli.approval_timeout,
        no_wait: cli.no_wait,
    });
    let command = match cli.command {
        Some(c) => c,
        None if !output::json_mode() && std::io::IsTerminal::is_terminal(&std::io::stdout()) => {
            Command::Tui
        }
        None => {
            let err = Error::usage(
                "no command given (the dashboard needs a terminal); see agentssh --help",
            );
            output::report_error(&err, None);
            return err.code.exit_code();
        }
    };
    match dispatch(command) {
        Ok(reply) => emit(reply),
        Err(mut err) => {
            let data = err.take_data();
            output::report_error(&err, data);
            err.code.exit_code()
        }
    }
}

fn clap_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    let informational = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
    if output::json_mode() {
        let text = e.render().to_string();
        if informational {
            output::print_document(&output::ok_envelope(serde_json::json!({"help": text})));
            return 0;
        }
        let first = text
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("invalid arguments");
        let msg = first.trim_start_matches("error: ").to_string();
        output::report_error(&Error::usage(msg), None);
        return 2;
    }
    let _ = e.print();
    if informational {
        0
    } else {
        2
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))
}

fn warn_argv_secrets(conn: &crate::target::ConnectArgs) {
    if !output::json_mode() {
        for w in target::argv_secret_warnings(conn) {
            eprintln!("agentssh: {w}");
        }
    }
}

fn dispatch(command: Command) -> Result<Reply> {
    match command {
        Command::Exec(a) => {
            warn_argv_secrets(&a.conn);
            runtime()?.block_on(exec::run(a))
        }
        Command::Shell(a) => {
            warn_argv_secrets(&a.conn);
            runtime()?.block_on(shell::run(a))
        }
        Command::File(c) => {
            warn_argv_secrets(c.conn());
            runtime()?.block_on(file::run(c))
        }
        Command::Connect(a) => {
            warn_argv_secrets(&a.conn);
            runtime()?.block_on(session::connect(a))
        }
        Command::Session(c) => runtime()?.block_on(session::run(c)),
        Command::Tui => dashboard(),
        Command::Mcp(a) => {
            // stdout belongs to MCP frames: no envelope, whatever --json says.
            runtime()?.block_on(crate::mcp::serve(a))?;
            Ok(Reply::streamed(0))
        }
        Command::Attach { session, read_only } => {
            if output::json_mode() {
                return Err(Error::usage(
                    "attach is interactive and cannot run under --json",
                ));
            }
            let ended = runtime()?.block_on(crate::tui::attach::run_attach(&session, read_only))?;
            let text = match ended {
                crate::tui::attach::Ended::Detached => format!("detached from {session}"),
                crate::tui::attach::Ended::SessionEnded => format!("session {session} ended"),
                crate::tui::attach::Ended::Signalled => format!("left {session} (signal)"),
            };
            Ok(Reply::ok(serde_json::json!({"session_id": session}), text))
        }
        Command::Profile(c) => profile::run(c),
        Command::Policy(c) => policy::run(c),
        Command::Approvals(c) => runtime()?.block_on(approvals::run(c)),
        Command::Daemon(c) => daemon::run(c),
        Command::Log(a) => daemon::log(a),
        Command::Demo { headless } => crate::demo::run(headless),
        Command::Completions { shell } => Ok(docs::completions(shell)),
        Command::Man => docs::man(),
        Command::Recordings(c) => runtime()?.block_on(record::recordings(c)),
        Command::Replay(a) => {
            if output::json_mode() {
                return Err(Error::usage(
                    "replay is interactive and cannot run under --json; use session export",
                ));
            }
            runtime()?.block_on(record::replay(a))
        }
        Command::Proxy(c) => {
            if let proxy::ProxyCommand::Create(a) = &c {
                warn_argv_secrets(&a.conn);
            }
            runtime()?.block_on(proxy::run(c))
        }
    }
}

fn dashboard() -> Result<Reply> {
    if output::json_mode() {
        return Err(Error::usage(
            "the dashboard is interactive and cannot run under --json",
        ));
    }
    runtime()?.block_on(crate::tui::run_dashboard())?;
    Ok(Reply::ok(serde_json::Value::Null, ""))
}

fn emit(reply: Reply) -> i32 {
    if reply.streamed {
        return reply.exit_code;
    }
    match (&reply.error, output::json_mode()) {
        (Some(err), _) => {
            output::report_error(err, Some(reply.data).filter(|d| !d.is_null()));
        }
        (None, true) => output::print_document(&output::ok_envelope(reply.data)),
        (None, false) => {
            if let Some(text) = reply.text.filter(|t| !t.is_empty()) {
                println!("{text}");
            }
        }
    }
    reply.exit_code
}
