//! The command line, as clap derive types. Flags follow `../shared/CLI.md`.
//!
//! Every subcommand enum is `#[command(defer = true)]`: clap then builds the arguments of
//! only the subcommand that was typed, which takes about 0.3 ms off every invocation. With
//! deferral, a doc comment on an `Args` struct would be applied after, and so replace, the
//! `about` its enum variant gives; those structs therefore carry plain `//` comments, and
//! the test below checks that every subcommand keeps its variant's help line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::target::ConnectArgs;

/// `--output` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable text.
    Text,
    /// One JSON envelope (NDJSON for streams).
    Json,
}

/// SSH for AI agents and the humans who supervise them.
#[derive(Debug, Parser)]
#[command(name = "agentssh", version, about, propagate_version = true)]
#[command(
    after_help = "Examples:\n  agentssh --json exec -H host -u deploy -- uptime\n  agentssh profile add prod --host app.example.com --username deploy\n  agentssh exec -p prod -- df -h\n  agentssh shell -p prod"
)]
pub struct Cli {
    /// Print one JSON envelope on stdout (same as --output json).
    #[arg(long, global = true)]
    pub json: bool,
    /// Output format.
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
    /// When the approval policy asks a human first: how long to wait for an answer (ms)
    /// before failing with approval_timeout.
    #[arg(long, global = true, value_name = "MS", default_value_t = crate::wire::approval::DEFAULT_APPROVAL_TIMEOUT_MS)]
    pub approval_timeout: u64,
    /// When the approval policy asks a human first: fail at once with approval_pending and
    /// the approval's id (poll `approvals status ID`, then repeat the command once approved).
    #[arg(long, global = true)]
    pub no_wait: bool,
    /// The command (none on a terminal opens the dashboard).
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// Whether JSON output was asked for.
    pub fn json_mode(&self) -> bool {
        self.json || self.output == Some(OutputFormat::Json)
    }
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Run one command on a server and return its output and exit status.
    #[command(
        after_help = "Examples:\n  agentssh --json exec -p prod -- uptime\n  agentssh exec -H 10.0.0.5 -u root --timeout 60000 -- 'apt-get update'\n  printf 'a\\nb\\n' | agentssh exec -p prod -- wc -l"
    )]
    Exec(ExecArgs),
    /// Open an interactive shell (for humans; raw terminal passthrough).
    #[command(after_help = "Example:\n  agentssh shell -p prod")]
    Shell(ShellArgs),
    /// Move and change files on a server: upload, download, ls, read, write, edit, delete, mkdir.
    #[command(subcommand)]
    File(super::file::FileCommand),
    /// Open a long-lived PTY session (kept by the daemon).
    #[command(
        after_help = "Examples:\n  agentssh --json connect -p prod --reconnect\n  agentssh connect -H 10.0.0.5 -u root --name build --cols 200 --rows 50"
    )]
    Connect(ConnectCmdArgs),
    /// Drive and inspect PTY sessions.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Open the dashboard: watch sessions live, take over, hand back (same as no command).
    #[command(
        after_help = "Examples:\n  agentssh tui\n  agentssh          # the same, on a terminal"
    )]
    Tui,
    /// Serve the tools over MCP on stdio, for MCP clients (Claude Desktop, IDEs, agents).
    #[command(
        after_help = "Examples:\n  agentssh mcp --profile prod\n  agentssh mcp --tools exec,files --allow-inline-targets"
    )]
    Mcp(crate::mcp::McpArgs),
    /// Put one session in this terminal (Ctrl-] detaches).
    #[command(
        after_help = "Examples:\n  agentssh attach -s s1              # take control; agents are locked out until you detach\n  agentssh attach -s s1 --read-only  # watch only"
    )]
    Attach {
        /// Session id or name.
        #[arg(short = 's', long = "session-id")]
        session: String,
        /// Watch without taking control; keystrokes go nowhere.
        #[arg(long)]
        read_only: bool,
    },
    /// Manage saved connection profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Approval policy: what it decides for a command on a target, and why.
    #[command(subcommand)]
    Policy(super::policy::PolicyCommand),
    /// The approval queue: list requests waiting for a human, approve or deny them (the
    /// answer is read from the terminal, never from stdin).
    #[command(subcommand)]
    Approvals(super::approvals::ApprovalsCommand),
    /// Manage the per-user daemon (started on demand by other commands).
    #[command(subcommand)]
    Daemon(DaemonCommand),
    /// Port forwards, SOCKS5 and reverse forwards, kept by the daemon.
    #[command(subcommand)]
    Proxy(super::proxy::ProxyCommand),
    /// Show the daemon's activity log: every request, its duration and outcome.
    #[command(
        after_help = "Examples:\n  agentssh log\n  agentssh --json log --follow\n  agentssh --json log verify"
    )]
    Log(LogArgs),
    /// Try agentssh on a built-in throwaway SSH server: private daemon, scripted agent, dashboard.
    #[command(
        after_help = "Examples:\n  agentssh demo              # dashboard on top; take over the deploy session and answer it\n  agentssh demo --headless   # the same script without a terminal: one NDJSON envelope per step"
    )]
    Demo {
        /// Run the scripted agent without the dashboard, answering the deploy prompt itself.
        #[arg(long)]
        headless: bool,
    },
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  source <(agentssh completions bash)\n  agentssh completions fish > ~/.config/fish/completions/agentssh.fish"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: super::docs::CompletionShell,
    },
    /// Print the man page (roff) on stdout.
    #[command(
        after_help = "Examples:\n  agentssh man | man -l -\n  agentssh man > /usr/local/share/man/man1/agentssh.1"
    )]
    Man,
    /// List or delete session recordings (asciicast files kept by the daemon).
    #[command(subcommand)]
    Recordings(super::record::RecordingsCommand),
    /// Play a session recording in this terminal (space pause, left/right seek, +/- speed, q quit).
    #[command(
        after_help = "Examples:\n  agentssh replay -s build\n  agentssh replay ~/.local/state/agentssh/recordings/1700000000000-s1.cast --speed 2 --idle-limit 1"
    )]
    Replay(super::record::ReplayArgs),
}

/// `daemon ...`.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum DaemonCommand {
    /// Run the daemon in the foreground (used by autostart and the systemd unit).
    #[command(
        after_help = "Examples:\n  agentssh daemon run\n  agentssh daemon run --pool-idle-secs 60\n  agentssh daemon run --agent-uid agent   # the agent user sets AGENTSSH_SOCKET=/tmp/agentssh-agent-$(id -u)/daemon.sock"
    )]
    Run {
        /// Also serve clients of this user (name or uid) on a second socket, as agents: they
        /// may use every command through the supervisor's profiles (named with -p), but cannot
        /// answer approvals, take control of a session, or see the profiles' secrets.
        #[arg(long, value_name = "USER")]
        agent_uid: Option<String>,
        /// Where agent clients connect (default /tmp/agentssh-agent-UID/daemon.sock, UID being
        /// the supervisor's); they set AGENTSSH_SOCKET to it.
        #[arg(long, value_name = "PATH", requires = "agent_uid")]
        agent_socket: Option<std::path::PathBuf>,
        /// Close pooled connections idle for this many seconds.
        #[arg(
            long,
            env = "AGENTSSH_POOL_IDLE_SECS",
            default_value_t = 600,
            value_name = "SECS"
        )]
        pool_idle_secs: u64,
    },
    /// Show whether the daemon runs, and what it holds.
    #[command(after_help = "Example:\n  agentssh --json daemon status")]
    Status,
    /// Stop the daemon: closes sessions, proxies and pooled connections.
    #[command(after_help = "Example:\n  agentssh daemon shutdown")]
    Shutdown,
    /// Write a systemd user unit that runs the daemon.
    #[command(
        after_help = "Examples:\n  agentssh daemon install --dry-run\n  agentssh daemon install && systemctl --user enable --now agentssh"
    )]
    Install {
        /// Print the unit without writing it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove the systemd user unit.
    #[command(after_help = "Example:\n  agentssh daemon uninstall --dry-run")]
    Uninstall {
        /// Say what would be removed without removing it.
        #[arg(long)]
        dry_run: bool,
    },
}

// `log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Keep printing new entries as they happen.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// How many past entries to show.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub limit: usize,
    /// `log verify`.
    #[command(subcommand)]
    pub action: Option<LogAction>,
}

// `log ...`.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum LogAction {
    /// Check the hash chain of the activity log on disk (rotated files included) and the
    /// hashes of the recordings it names; exit 1 when something was changed.
    #[command(after_help = "Example:\n  agentssh --json log verify")]
    Verify,
}

// `exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub conn: ConnectArgs,
    /// Stop the command after this many ms (0 = no limit).
    #[arg(long, value_name = "MS", default_value_t = 30000)]
    pub timeout: u64,
    /// Retry connection failures this many times (never a command that ran).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retry: u32,
    /// Allocate a PTY for the command.
    #[arg(long)]
    pub tty: bool,
    /// Remove escape sequences and control characters from the output (as `session read`
    /// does), e.g. the colours a command prints under --tty.
    #[arg(long)]
    pub strip_ansi: bool,
    /// Connect from this process instead of through the daemon's connection pool.
    #[arg(long)]
    pub direct: bool,
    /// The command and its arguments (after `--`).
    #[arg(trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<String>,
}

// `shell`.
#[derive(Debug, Args)]
pub struct ShellArgs {
    #[command(flatten)]
    pub conn: ConnectArgs,
}

/// `profile ...`.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ProfileCommand {
    /// Save (or replace) a profile.
    #[command(
        after_help = "Examples:\n  agentssh profile add prod --host app.example.com --username deploy --private-key-path ~/.ssh/id_ed25519\n  agentssh profile add ci --host 10.0.0.5 --username ci --password-env CI_SSH_PASSWORD"
    )]
    Add(Box<ProfileAddArgs>),
    /// List profiles (secrets shown as <set>).
    #[command(after_help = "Example:\n  agentssh --json profile list")]
    List,
    /// Show one profile (secrets shown as <set>).
    #[command(after_help = "Example:\n  agentssh --json profile read prod")]
    Read {
        /// Profile name.
        name: String,
    },
    /// Delete a profile.
    #[command(after_help = "Example:\n  agentssh profile delete prod")]
    Delete {
        /// Profile name.
        name: String,
    },
}

// `profile add`.
#[derive(Debug, Args)]
pub struct ProfileAddArgs {
    /// Profile name (letters, digits, '-', '_', '.').
    pub name: String,
    /// Host name, address or ~/.ssh/config alias.
    #[arg(short = 'H', long)]
    pub host: String,
    /// Port.
    #[arg(short = 'P', long)]
    pub port: Option<u16>,
    /// Remote user.
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Private key file.
    #[arg(long, value_name = "PATH")]
    pub private_key_path: Option<PathBuf>,
    /// Environment variable holding the private key text.
    #[arg(long, value_name = "VAR")]
    pub private_key_env: Option<String>,
    /// Environment variable holding the password.
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    /// Environment variable holding the key passphrase.
    #[arg(long, value_name = "VAR")]
    pub passphrase_env: Option<String>,
    /// Store this password in the profile file (0600; prefer --password-env).
    #[arg(long)]
    pub password: Option<String>,
    /// Store this passphrase in the profile file (0600; prefer --passphrase-env).
    #[arg(long)]
    pub passphrase: Option<String>,
    /// Jump hosts: [user@]host[:port][,...].
    #[arg(long, value_name = "HOPS")]
    pub proxy_jump: Option<String>,
}

// PTY geometry and initial-output flags shared by `connect` and `session spawn`.
#[derive(Debug, Clone, Args)]
pub struct PtyArgs {
    /// PTY columns.
    #[arg(long, default_value_t = 120)]
    pub cols: u16,
    /// PTY rows.
    #[arg(long, default_value_t = 40)]
    pub rows: u16,
    /// How long to collect the initial output (ms of quiet, at most this long).
    #[arg(long, value_name = "MS", default_value_t = 250)]
    pub wait_ms: u64,
    /// Most bytes of initial output returned.
    #[arg(long, value_name = "BYTES", default_value_t = 8000)]
    pub limit: usize,
    /// A name usable wherever a session id is.
    #[arg(long)]
    pub name: Option<String>,
}

// `connect`.
#[derive(Debug, Args)]
pub struct ConnectCmdArgs {
    #[command(flatten)]
    pub conn: ConnectArgs,
    #[command(flatten)]
    pub pty: PtyArgs,
    /// Reconnect with backoff after a dropped connection (shell state is lost).
    #[arg(long)]
    pub reconnect: bool,
    /// Do not install prompt and command marks in the shell (state then comes from
    /// heuristics only).
    #[arg(long)]
    pub no_shell_integration: bool,
    /// Do not record this session to disk (see `agentssh recordings`).
    #[arg(long)]
    pub no_record: bool,
    /// Retry connection failures this many times.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retry: u32,
}

// Output form of session reads.
#[derive(Debug, Clone, Copy, Args)]
pub struct OutputForm {
    /// Strip escape sequences and control characters (the default).
    #[arg(long, conflicts_with = "raw")]
    pub strip_ansi: bool,
    /// Raw PTY bytes (escape sequences included; offsets count raw bytes).
    #[arg(long)]
    pub raw: bool,
}

/// `session ...`.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum SessionCommand {
    /// Open another PTY on the connection of an existing session.
    #[command(after_help = "Example:\n  agentssh session spawn --from s1 --name logs")]
    Spawn {
        /// Existing session id or name.
        #[arg(long)]
        from: String,
        #[command(flatten)]
        pty: PtyArgs,
    },
    /// Type into a session and return the output that follows.
    #[command(
        after_help = "Examples:\n  agentssh --json session send -s s1 --input $'ls -la\\n'\n  agentssh --json session send -s s1 --input $'sudo true\\n' --expect 'password' --respond $'secret\\n'\n  agentssh --json session send -s s1 --input $'make\\n' --wait-for-exit --timeout 600000"
    )]
    Send(Box<SendArgs>),
    /// Read new output (the cursor advances) or from an absolute offset.
    #[command(
        after_help = "Examples:\n  agentssh --json session read -s s1\n  agentssh --json session read -s s1 --offset 0 --limit 4096\n  agentssh --json session read -s s1 --follow --timeout 60000"
    )]
    Read {
        /// Session id or name.
        #[arg(short = 's', long = "session-id")]
        session: String,
        /// Stream output (NDJSON under --json) until exit, disconnect or timeout.
        #[arg(long)]
        follow: bool,
        /// Read from this absolute offset without moving the cursor.
        #[arg(long, value_name = "N")]
        offset: Option<u64>,
        #[command(flatten)]
        form: OutputForm,
        /// Deadline for --follow, ms.
        #[arg(long, value_name = "MS", default_value_t = 30000)]
        timeout: u64,
        /// Most bytes returned per read.
        #[arg(long, value_name = "BYTES", default_value_t = 1048576)]
        limit: usize,
    },
    /// The rendered screen (what a human would see), for full-screen programs.
    #[command(after_help = "Example:\n  agentssh --json session screen -s monitor")]
    Screen {
        /// Session id or name.
        #[arg(short = 's', long = "session-id")]
        session: String,
    },
    /// Run a command on a fresh exec channel of the session's connection (clean output).
    #[command(
        after_help = "Examples:\n  agentssh --json session exec -s s1 -- df -h\n  agentssh --json session exec -s s1 --detach -- 'nohup ./server &'"
    )]
    Exec {
        /// Session id or name.
        #[arg(short = 's', long = "session-id")]
        session: String,
        /// Stop the command after this many ms (0 = no limit).
        #[arg(long, value_name = "MS", default_value_t = 30000)]
        timeout: u64,
        /// Type the command into the PTY and return at once.
        #[arg(long)]
        detach: bool,
        /// The command.
        #[arg(trailing_var_arg = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Run a command inside the PTY shell (its cwd and env); return its own output and status.
    #[command(
        after_help = "Example:\n  agentssh --json session run -s s1 -- 'cd /srv && git pull'"
    )]
    Run {
        /// Session id or name.
        #[arg(short = 's', long = "session-id")]
        session: String,
        /// Give up (and send Ctrl-C) after this many ms.
        #[arg(long, value_name = "MS", default_value_t = 30000)]
        timeout: u64,
        /// Return at most this many bytes of output: the last ones, from a line start
        /// (`dropped_bytes` says how many were left out).
        #[arg(long, value_name = "BYTES", default_value_t = crate::protocol::RUN_OUTPUT_LIMIT)]
        limit: usize,
        /// Start CMD as a job and return its id at once (`session job` gives its state,
        /// output and exit status later, also after this CLI has exited).
        #[arg(long, conflicts_with = "timeout")]
        detach: bool,
        /// The command.
        #[arg(trailing_var_arg = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Change the PTY size.
    #[command(
        after_help = "Example:\n  agentssh --json session resize -s s1 --cols 200 --rows 50"
    )]
    Resize {
        /// Session id or name.
        #[arg(short = 's', long = "session-id")]
        session: String,
        /// Columns.
        #[arg(long)]
        cols: u16,
        /// Rows.
        #[arg(long)]
        rows: u16,
    },
    /// Send a signal: INT, QUIT, TSTP (as the terminal keys) or TERM/KILL (close the session).
    #[command(
        after_help = "Examples:\n  agentssh --json session signal -s s1 --signal INT\n  agentssh --json session signal -s s1 --signal KILL"
    )]
    Signal {
        /// Session id or name.
        #[arg(short = 's', long = "session-id")]
        session: String,
        /// Signal name.
        #[arg(long)]
        signal: String,
    },
    /// Is the session alive?
    #[command(after_help = "Example:\n  agentssh --json session ping -s build")]
    Ping {
        /// Session id or name.
        #[arg(short = 's', long = "session-id")]
        session: String,
    },
    /// Wait until the session is at its prompt, waits for input, ends, goes quiet or shows a text.
    #[command(
        after_help = "Examples:\n  agentssh --json session wait -s s1 --for prompt --timeout 600000   # a long build is done\n  agentssh --json session wait -s s1 --for input                    # a question or password prompt\n  agentssh --json session wait -s s1 --for 'text:Listening on port [0-9]+'"
    )]
    Wait {
        /// Session id or name.
        #[arg(short = 's', long = "session-id")]
        session: String,
        /// What to wait for: prompt, input, exit, quiet or text:REGEX.
        #[arg(long = "for", value_name = "WHAT")]
        until: String,
        /// With `--for quiet`: this many ms without output.
        #[arg(long, value_name = "MS", default_value_t = 500)]
        quiet_ms: u64,
        /// Give up (code `timeout`, exit 124) after this many ms.
        #[arg(long, value_name = "MS", default_value_t = 30000)]
        timeout: u64,
        /// Most output bytes returned.
        #[arg(long, value_name = "BYTES", default_value_t = 65536)]
        limit: usize,
    },
    /// A detached job's state, output so far and, once done, its exit status.
    #[command(
        after_help = "Examples:\n  J=$(agentssh --json session run -s s1 --detach -- 'make -j4' | jq -r .data.job)\n  agentssh --json session job -s s1 --job \"$J\" --wait --timeout 600000"
    )]
    Job {
        /// Session id or name.
        #[arg(short = 's', long = "session-id")]
        session: String,
        /// The job id `session run --detach` returned.
        #[arg(long)]
        job: String,
        /// Wait until the job is done.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up (code `timeout`) after this many ms.
        #[arg(long, value_name = "MS", default_value_t = 30000)]
        timeout: u64,
        /// Most output bytes returned (the last ones, from a line start).
        #[arg(long, value_name = "BYTES", default_value_t = crate::protocol::RUN_OUTPUT_LIMIT)]
        limit: usize,
    },
    /// Ask a human for help: the dashboard shows the request at once.
    #[command(
        after_help = "Examples:\n  agentssh --json session ask -s s1 --message 'type the sudo password, then hand back' --wait --timeout 600000\n  agentssh --json session ask -s s1 --message 'check the diff before I deploy'"
    )]
    Ask {
        /// Session id or name.
        #[arg(short = 's', long = "session-id")]
        session: String,
        /// What the human should do.
        #[arg(long)]
        message: String,
        /// Wait until a human took control and handed it back, or dismissed the request.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up (code `timeout`) after this many ms; the request stays open.
        #[arg(long, value_name = "MS", default_value_t = 300000)]
        timeout: u64,
    },
    /// Dismiss a session's open request for a human.
    #[command(after_help = "Example:\n  agentssh session dismiss -s s1")]
    Dismiss {
        /// Session id or name.
        #[arg(short = 's', long = "session-id")]
        session: String,
    },
    /// The commands that ran at the prompt, with who typed them and their exit statuses.
    #[command(after_help = "Example:\n  agentssh --json session history -s s1 --limit 20")]
    History {
        /// Session id or name.
        #[arg(short = 's', long = "session-id")]
        session: String,
        /// The last this many commands.
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: usize,
    },
    /// Session metadata.
    #[command(
        after_help = "Example:\n  agentssh --json session status -s build   # controller: agent or human"
    )]
    Status {
        /// Session id or name.
        #[arg(short = 's', long = "session-id")]
        session: String,
    },
    /// All sessions.
    #[command(after_help = "Example:\n  agentssh --json session list")]
    List,
    /// Export a session's recording (closed sessions too): asciicast or its clean text.
    #[command(
        after_help = "Examples:\n  agentssh session export -s s1 --format txt\n  agentssh --json session export -s build --format cast --output-file build.cast"
    )]
    Export(super::record::ExportArgs),
    /// Close a session, or all of them.
    #[command(
        after_help = "Examples:\n  agentssh --json session close -s build\n  agentssh --json session close --all"
    )]
    Close {
        /// Session id or name.
        #[arg(short = 's', long = "session-id", required_unless_present = "all")]
        session: Option<String>,
        /// Close every session.
        #[arg(long, conflicts_with = "session")]
        all: bool,
    },
}

// `session send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Session id or name.
    #[arg(short = 's', long = "session-id")]
    pub session: String,
    /// Text to type (use $'...\\n' or a real newline to press Enter).
    #[arg(long, allow_hyphen_values = true)]
    pub input: String,
    /// Turn LF into CRLF (Windows targets).
    #[arg(long)]
    pub crlf: bool,
    /// Wait until the shell exits (or --timeout).
    #[arg(long, conflicts_with = "wait_idle")]
    pub wait_for_exit: bool,
    /// Wait until no output arrived for this many ms (default 300 when no wait is given).
    #[arg(long, value_name = "MS")]
    pub wait_idle: Option<u64>,
    /// Overall deadline, ms.
    #[arg(long, value_name = "MS", default_value_t = 30000)]
    pub timeout: u64,
    #[command(flatten)]
    pub form: OutputForm,
    /// Regex to wait for; answered with the matching --respond (up to three pairs).
    #[arg(long, value_name = "REGEX", allow_hyphen_values = true)]
    pub expect: Vec<String>,
    /// Text to type when the matching --expect appears.
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    pub respond: Vec<String>,
    /// Most bytes returned.
    #[arg(long, value_name = "BYTES", default_value_t = 1048576)]
    pub limit: usize,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every path of subcommand names below `cmd`, with its `about` line.
    fn abouts(cmd: &clap::Command, prefix: &str, out: &mut Vec<(String, Option<String>)>) {
        for sub in cmd.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            let path = format!("{prefix} {}", sub.get_name()).trim().to_string();
            out.push((path.clone(), sub.get_about().map(|about| about.to_string())));
            abouts(sub, &path, out);
        }
    }

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn deferred_subcommands_keep_their_variant_help_lines() {
        let mut cmd = Cli::command();
        cmd.build();
        let mut found = Vec::new();
        abouts(&cmd, "", &mut found);
        assert!(found.len() > 30, "only {} subcommands", found.len());
        for (path, about) in found {
            let about = about.unwrap_or_else(|| panic!("`{path}` has no help line"));
            assert!(
                !about.starts_with('`') && !about.contains("Flags of") && !about.contains("shared"),
                "`{path}` shows a struct's comment as its help line: {about}"
            );
        }
        let exec = cmd.find_subcommand("exec").expect("exec exists");
        assert_eq!(
            exec.get_about().map(|about| about.to_string()).as_deref(),
            Some("Run one command on a server and return its output and exit status")
        );
    }
}
