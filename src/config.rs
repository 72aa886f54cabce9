//! Where agentssh keeps its files.
//!
//! Config (profiles, our own known_hosts) lives in `$XDG_CONFIG_HOME/agentssh`, state (logs) in
//! `$XDG_STATE_HOME/agentssh`, and the daemon socket in `$XDG_RUNTIME_DIR/agentssh` (else
//! `/tmp/agentssh-$UID`). Environment variables are read on every call, so tests that point
//! HOME and XDG dirs at a temp dir are fully isolated.

use std::path::PathBuf;

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
