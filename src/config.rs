//! Where agentssh keeps its files.
//!
//! Config (profiles, our own known_hosts) lives in `$XDG_CONFIG_HOME/agentssh`, state (logs) in
//! `$XDG_STATE_HOME/agentssh`, and the daemon socket in `$XDG_RUNTIME_DIR/agentssh` (else
//! `/tmp/agentssh-$UID`). Environment variables are read on every call, so tests that point
//! HOME and XDG dirs at a temp dir are fully isolated.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorCode, Result};

fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// The user's home directory.
pub fn home_dir() -> Result<PathBuf> {
    env_dir("HOME")
        .or_else(|| directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf()))
        .ok_or_else(|| {
            Error::new(
                ErrorCode::LocalIo,
                "cannot find the home directory (HOME is unset)",
            )
        })
}

/// `$XDG_CONFIG_HOME/agentssh`, else `~/.config/agentssh`.
pub fn config_dir() -> Result<PathBuf> {
    Ok(match env_dir("XDG_CONFIG_HOME") {
        Some(d) => d.join("agentssh"),
        None => home_dir()?.join(".config").join("agentssh"),
    })
}

/// `$XDG_STATE_HOME/agentssh`, else `~/.local/state/agentssh`.
pub fn state_dir() -> Result<PathBuf> {
    Ok(match env_dir("XDG_STATE_HOME") {
        Some(d) => d.join("agentssh"),
        None => home_dir()?.join(".local").join("state").join("agentssh"),
    })
}

/// `$XDG_RUNTIME_DIR/agentssh`, else `/tmp/agentssh-$UID`.
pub fn runtime_dir() -> PathBuf {
    match env_dir("XDG_RUNTIME_DIR") {
        Some(d) => d.join("agentssh"),
        None => PathBuf::from(format!(
            "/tmp/agentssh-{}",
            rustix::process::getuid().as_raw()
        )),
    }
}

/// The profiles file.
pub fn profiles_path() -> Result<PathBuf> {
    Ok(config_dir()?.join("profiles.json"))
}

/// agentssh's own known_hosts, where `accept-new` records keys.
pub fn own_known_hosts_path() -> Result<PathBuf> {
    Ok(config_dir()?.join("known_hosts"))
}

/// The user's OpenSSH directory (`~/.ssh`).
pub fn ssh_dir() -> Result<PathBuf> {
    Ok(home_dir()?.join(".ssh"))
}

/// `AGENTSSH_SOCKET`: the socket of a supervisor's daemon this process uses as a client of
/// its agent uid (`daemon run --agent-uid`). Such a client never starts a daemon of its own.
pub fn agent_socket_override() -> Option<PathBuf> {
    std::env::var_os("AGENTSSH_SOCKET")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

/// Where a daemon run with `--agent-uid` listens for agent clients by default: a directory
/// of its own under /tmp (0711, so other users can reach a socket in it by name only).
pub fn default_agent_socket() -> PathBuf {
    let me = rustix::process::getuid().as_raw();
    PathBuf::from(format!("/tmp/agentssh-agent-{me}")).join("daemon.sock")
}

/// Paths of the daemon's runtime files.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Runtime dir (0700).
    pub dir: PathBuf,
    /// The socket.
    pub socket: PathBuf,
    /// Pid file, flocked by the live daemon.
    pub pid_file: PathBuf,
    /// Autostart lock held by a client while it spawns the daemon.
    pub spawn_lock: PathBuf,
}

impl Paths {
    /// The paths for this user.
    pub fn current() -> Paths {
        let dir = crate::config::runtime_dir();
        Paths {
            socket: agent_socket_override().unwrap_or_else(|| dir.join("daemon.sock")),
            pid_file: dir.join("daemon.pid"),
            spawn_lock: dir.join("daemon.lock"),
            dir,
        }
    }
}

/// Creates the runtime dir 0700 and refuses one owned by another user or open to others.
pub fn ensure_runtime_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    if let Err(e) = std::fs::create_dir_all(dir) {
        return Err(Error::local_io(
            format!("cannot create {}", dir.display()),
            &e,
        ));
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| Error::local_io(dir.display(), &e))?;
    let me = rustix::process::getuid().as_raw();
    if !meta.is_dir() || meta.uid() != me {
        return Err(Error::new(
            ErrorCode::PermissionDenied,
            format!(
                "{} is not a directory owned by uid {me}; refusing to use it",
                dir.display()
            ),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::local_io(dir.display(), &e))?;
    }
    Ok(())
}
