//! Small filesystem helpers: atomic replace with a given mode.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Writes `data` to `path` atomically: a temp file in the same directory (created with
/// `mode`), fsync, rename over the target. Readers see the old or the new file, never half.
pub fn atomic_write(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = dir.join(format!(
        ".{name}.tmp.{}.{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have narrowed `mode`; set it exactly.
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Creates `dir` (and parents) and sets it to `mode`.
pub fn ensure_dir(dir: &Path, mode: u32) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
}

/// Opens (creating, 0600, never truncating) a file used as an `flock` lock.
pub fn open_lock_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

/// An absolute, lexically normalised local path; a trailing `/` is kept (it means "into
/// this directory"). Shared by the CLI and the MCP face: the daemon takes only absolute
/// local paths, resolved against the caller's working directory.
pub fn local_abs(p: &str) -> crate::error::Result<std::path::PathBuf> {
    if p.is_empty() {
        return Err(crate::error::Error::usage("--local must not be empty"));
    }
    let abs = std::path::absolute(p).map_err(|e| crate::error::Error::local_io(p, &e))?;
    let mut out = std::path::PathBuf::from("/");
    for c in abs.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    if p.ends_with('/') && out != Path::new("/") {
        let mut s = out.into_os_string();
        s.push("/");
        out = std::path::PathBuf::from(s);
    }
    Ok(out)
}
