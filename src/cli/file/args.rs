//! The clap definitions of `agentssh file ...`.

use clap::{Args, Subcommand, ValueEnum};

use crate::target::ConnectArgs;

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

// Connection flags shared by every `file` command.
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

// `file upload`.
#[derive(Debug, Args)]
pub struct UploadArgs {
    #[command(flatten)]
    pub fc: FileConn,
    /// Local file (or directory, with --recursive) to send.
    #[arg(long, value_name = "PATH")]
    pub local: String,
    /// Where it goes on the server (an existing directory, or a path ending in '/', receives it under its own name; otherwise the path names the copy).
    #[arg(long, value_name = "PATH")]
    pub remote: String,
    /// Upload a directory and everything under it.
    #[arg(long, short = 'r')]
    pub recursive: bool,
    /// Create the missing parent directories of the destination first (like mkdir -p).
    #[arg(long)]
    pub parents: bool,
}

// `file download`.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    #[command(flatten)]
    pub fc: FileConn,
    /// Remote file (or directory, with --recursive) to fetch.
    #[arg(long, value_name = "PATH")]
    pub remote: String,
    /// Where it goes on this machine (an existing directory, or a path ending in '/', receives it under its own name; otherwise the path names the copy).
    #[arg(long, value_name = "PATH")]
    pub local: String,
    /// Download a directory and everything under it.
    #[arg(long, short = 'r')]
    pub recursive: bool,
}

// `file ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub fc: FileConn,
    /// Remote directory to list (a file is described on its own).
    #[arg(long, value_name = "PATH")]
    pub remote: String,
}

// `file read`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    #[command(flatten)]
    pub fc: FileConn,
    /// Remote file to print.
    #[arg(long, value_name = "PATH")]
    pub remote: String,
}

// `file mkdir`.
#[derive(Debug, Args)]
pub struct MkdirArgs {
    #[command(flatten)]
    pub fc: FileConn,
    /// Remote directory to create.
    #[arg(long, value_name = "PATH")]
    pub remote: String,
    /// Create missing parent directories too, and accept an existing directory (like mkdir -p).
    #[arg(long)]
    pub parents: bool,
}

// `file write`.
#[derive(Debug, Args)]
pub struct WriteArgs {
    #[command(flatten)]
    pub fc: FileConn,
    /// Remote file to replace or create (through a symlink, its target is written).
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
    /// Create the missing parent directories first (like mkdir -p).
    #[arg(long)]
    pub parents: bool,
}

// `file edit`.
#[derive(Debug, Args)]
pub struct EditArgs {
    #[command(flatten)]
    pub fc: FileConn,
    /// Remote file to change.
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

// `file delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub fc: FileConn,
    /// Remote file, symlink or directory to delete (never /, ~ or the home directory).
    #[arg(long, value_name = "PATH", allow_hyphen_values = true)]
    pub remote: String,
    /// Delete a directory and everything under it.
    #[arg(long, short = 'r')]
    pub recursive: bool,
}

/// `file ...`.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum FileCommand {
    /// Copy a local file (or tree, with --recursive) to the server; modes and mtimes kept.
    #[command(
        after_help = "Examples:\n  agentssh file upload -p prod --local ./app.tar.gz --remote /tmp/\n  agentssh --json file upload -p prod --local ./site --remote /var/www/site --recursive"
    )]
    Upload(UploadArgs),
    /// Copy a remote file (or tree, with --recursive) here; modes and mtimes kept.
    #[command(
        after_help = "Example:\n  agentssh file download -p prod --remote /var/log/app.log --local ./app.log"
    )]
    Download(DownloadArgs),
    /// List a directory: name, type, size, mode, mtime, link target.
    #[command(after_help = "Example:\n  agentssh --json file ls -p prod --remote /var/www")]
    Ls(LsArgs),
    /// Print a file (text mode: its bytes as they are; JSON: content or content_b64).
    #[command(after_help = "Example:\n  agentssh file read -p prod --remote /etc/app.ini")]
    Read(ReadArgs),
    /// Replace a file atomically (mode kept), or append to it.
    #[command(
        after_help = "Examples:\n  agentssh file write -p prod --remote /etc/app.ini --content $'[app]\\nport=8080\\n'\n  tar c dir | agentssh file write -p prod --remote /tmp/dir.tar --stdin\n  agentssh file write -p prod --remote /srv/new/dir/app.ini --content x --parents"
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
    /// Create a directory (with --parents: its missing parents too, like mkdir -p).
    #[command(
        after_help = "Example:\n  agentssh --json file mkdir -p prod --remote /srv/app/releases --parents"
    )]
    Mkdir(MkdirArgs),
}

impl FileCommand {
    /// The connection flags (for argv secret warnings).
    pub fn conn(&self) -> &ConnectArgs {
        &self.fc().conn
    }

    fn fc(&self) -> &FileConn {
        match self {
            FileCommand::Upload(a) => &a.fc,
            FileCommand::Download(a) => &a.fc,
            FileCommand::Ls(a) => &a.fc,
            FileCommand::Read(a) => &a.fc,
            FileCommand::Mkdir(a) => &a.fc,
            FileCommand::Write(a) => &a.fc,
            FileCommand::Edit(a) => &a.fc,
            FileCommand::Delete(a) => &a.fc,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use crate::cli::args::Cli;

    /// The help line of `--name` of `file SUB`.
    fn help_of(sub: &str, name: &str) -> String {
        let mut cmd = Cli::command();
        cmd.build();
        let file = cmd.find_subcommand("file").expect("file");
        let sub = file.find_subcommand(sub).expect("subcommand");
        let arg = sub
            .get_arguments()
            .find(|a| a.get_id() == name)
            .unwrap_or_else(|| panic!("no --{name}"));
        arg.get_help().map(|h| h.to_string()).unwrap_or_default()
    }

    #[test]
    fn each_file_command_describes_its_own_direction() {
        assert!(help_of("upload", "local").contains("to send"));
        assert!(help_of("upload", "remote").contains("on the server"));
        assert!(help_of("download", "remote").contains("to fetch"));
        assert!(help_of("download", "local").contains("on this machine"));
        assert!(!help_of("download", "remote").contains("receives"));
        assert!(help_of("ls", "remote").contains("to list"));
        assert!(help_of("read", "remote").contains("to print"));
        assert!(help_of("write", "remote").contains("to replace or create"));
        assert!(help_of("edit", "remote").contains("to change"));
        assert!(help_of("delete", "remote").contains("to delete"));
        assert!(help_of("mkdir", "remote").contains("to create"));
    }
}
