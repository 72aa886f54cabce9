//! The command line, as clap derive types. Flags follow `../shared/CLI.md`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::ssh::spec::HostKeyPolicy;

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
pub enum Command {
    /// Run one command on a server and return its output and exit status.
    #[command(
        after_help = "Examples:\n  agentssh --json exec -p prod -- uptime\n  agentssh exec -H 10.0.0.5 -u root --timeout 60000 -- 'apt-get update'\n  printf 'a\\nb\\n' | agentssh exec -p prod -- wc -l"
    )]
    Exec(ExecArgs),
    /// Open an interactive shell (for humans; raw terminal passthrough).
    #[command(after_help = "Example:\n  agentssh shell -p prod")]
    Shell(ShellArgs),
    /// Manage saved connection profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Manage the per-user daemon (started on demand by other commands).
    #[command(subcommand)]
    Daemon(DaemonCommand),
    /// Show the daemon's activity log: every request, its duration and outcome.
    #[command(after_help = "Examples:\n  agentssh log\n  agentssh --json log --follow")]
    Log(LogArgs),
}

/// `daemon ...`.
#[derive(Debug, Subcommand)]
pub enum DaemonCommand {
    /// Run the daemon in the foreground (used by autostart and the systemd unit).
    Run {
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
    Status,
    /// Stop the daemon: closes sessions, proxies and pooled connections.
    Shutdown,
    /// Write a systemd user unit that runs the daemon.
    Install {
        /// Print the unit without writing it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove the systemd user unit.
    Uninstall {
        /// Say what would be removed without removing it.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Keep printing new entries as they happen.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// How many past entries to show.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub limit: usize,
}

/// Flags of every command that connects.
#[derive(Debug, Clone, Args, Default)]
pub struct ConnectArgs {
    /// Saved profile to start from (inline flags override it).
    #[arg(short = 'p', long)]
    pub profile: Option<String>,
    /// Host name, address or ~/.ssh/config alias.
    #[arg(short = 'H', long)]
    pub host: Option<String>,
    /// Port.
    #[arg(short = 'P', long)]
    pub port: Option<u16>,
    /// Remote user.
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password (visible to other users in `ps`; prefer --password-env).
    #[arg(long)]
    pub password: Option<String>,
    /// Environment variable holding the password.
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    /// Private key file.
    #[arg(long, value_name = "PATH")]
    pub private_key_path: Option<PathBuf>,
    /// Environment variable holding the private key text.
    #[arg(long, value_name = "VAR")]
    pub private_key_env: Option<String>,
    /// Passphrase of an encrypted key (visible in `ps`; prefer --passphrase-env).
    #[arg(long)]
    pub passphrase: Option<String>,
    /// Environment variable holding the key passphrase.
    #[arg(long, value_name = "VAR")]
    pub passphrase_env: Option<String>,
    /// Deadline for TCP connect + handshake + auth, in ms.
    #[arg(long, value_name = "MS", default_value_t = 15000)]
    pub ready_timeout_ms: u64,
    /// Host key policy.
    #[arg(long, value_enum, value_name = "POLICY")]
    pub strict_host_key_checking: Option<HostKeyPolicy>,
    /// Jump hosts, like `ssh -J`: [user@]host[:port][,...].
    #[arg(long, value_name = "HOPS")]
    pub proxy_jump: Option<String>,
}

/// `exec`.
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
    /// Connect from this process instead of through the daemon's connection pool.
    #[arg(long)]
    pub direct: bool,
    /// The command and its arguments (after `--`).
    #[arg(trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `shell`.
#[derive(Debug, Args)]
pub struct ShellArgs {
    #[command(flatten)]
    pub conn: ConnectArgs,
}

/// `profile ...`.
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Save (or replace) a profile.
    #[command(
        after_help = "Examples:\n  agentssh profile add prod --host app.example.com --username deploy --private-key-path ~/.ssh/id_ed25519\n  agentssh profile add ci --host 10.0.0.5 --username ci --password-env CI_SSH_PASSWORD"
    )]
    Add(Box<ProfileAddArgs>),
    /// List profiles (secrets shown as <set>).
    List,
    /// Show one profile (secrets shown as <set>).
    Read {
        /// Profile name.
        name: String,
    },
    /// Delete a profile.
    Delete {
        /// Profile name.
        name: String,
    },
}

/// `profile add`.
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
