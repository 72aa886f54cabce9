//! `daemon install|uninstall`: a systemd user unit that runs `agentssh daemon run`.
//!
//! Writing the unit needs no running systemd; the user is told the `systemctl --user`
//! command that enables it.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The unit's file name.
pub const UNIT_NAME: &str = "agentssh.service";

/// `~/.config/systemd/user/agentssh.service` (XDG_CONFIG_HOME honoured).
pub fn unit_path() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => crate::config::home_dir()?.join(".config"),
    };
    Ok(base.join("systemd").join("user").join(UNIT_NAME))
}

/// The unit text for the binary at `exe`.
pub fn unit_text(exe: &Path) -> String {
    format!(
        "[Unit]\n\
         Description=agentssh daemon (SSH connections, sessions and proxies for agents)\n\
         Documentation=https://crates.io/crates/agentssh\n\n\
         [Service]\n\
         Type=simple\n\
         ExecStart={} daemon run\n\
         Restart=on-failure\n\
         RestartSec=2\n\n\
         [Install]\n\
         WantedBy=default.target\n",
        exe.display()
    )
}

/// Writes the unit (or only returns it with `dry_run`).
pub fn install(dry_run: bool) -> Result<serde_json::Value> {
    let exe =
        std::env::current_exe().map_err(|e| Error::local_io("cannot find our own binary", &e))?;
    let path = unit_path()?;
    let text = unit_text(&exe);
    if !dry_run {
        crate::fsutil::atomic_write(&path, text.as_bytes(), 0o644)
            .map_err(|e| Error::local_io(path.display(), &e))?;
    }
    Ok(serde_json::json!({
        "unit_path": path,
        "unit": text,
        "written": !dry_run,
        "enable_with": "systemctl --user daemon-reload && systemctl --user enable --now agentssh",
    }))
}

/// Removes the unit if present.
pub fn uninstall(dry_run: bool) -> Result<serde_json::Value> {
    let path = unit_path()?;
    let existed = path.exists();
    if existed && !dry_run {
        std::fs::remove_file(&path).map_err(|e| Error::local_io(path.display(), &e))?;
    }
    Ok(serde_json::json!({
        "unit_path": path,
        "removed": existed && !dry_run,
        "existed": existed,
        "disable_with": "systemctl --user disable --now agentssh && systemctl --user daemon-reload",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_runs_the_daemon_in_the_foreground() {
        let t = unit_text(Path::new("/usr/local/bin/agentssh"));
        assert!(t.contains("ExecStart=/usr/local/bin/agentssh daemon run\n"));
        assert!(t.contains("WantedBy=default.target"));
    }
}
