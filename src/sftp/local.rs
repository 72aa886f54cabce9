//! The local side of transfers: walking a tree to upload (symlinks kept as symlinks), and
//! writing downloads atomically (hidden temp file in the target directory, mode and mtime
//! set, then renamed). Names coming from the server are checked so that a hostile listing
//! (`..`, `/`) can never write outside the download directory.

use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use super::io::{Entry, Kind};
use crate::error::{Error, ErrorCode, Result};

fn io_err(p: &Path, e: &std::io::Error) -> Error {
    Error::local_io(p.display(), e)
}

fn join_err(e: tokio::task::JoinError) -> Error {
    Error::internal(format!("a local file task failed: {e}"))
}

/// Local metadata as an [`Entry`] named `name`.
pub fn entry_of(name: String, path: &Path, meta: &std::fs::Metadata) -> Result<Entry> {
    let kind = Kind::from_mode(meta.mode());
    let link = if kind == Kind::Symlink {
        let t = std::fs::read_link(path).map_err(|e| io_err(path, &e))?;
        Some(utf8(&t)?.to_string())
    } else {
        None
    };
    Ok(Entry {
        name,
        kind,
        size: meta.len(),
        mode: meta.mode() & 0o7777,
        mtime: u64::try_from(meta.mtime()).unwrap_or(0),
        link,
    })
}

fn utf8(p: &Path) -> Result<&str> {
    p.to_str().ok_or_else(|| {
        Error::usage(format!(
            "{}: the name is not UTF-8, which SFTP cannot carry",
            p.display()
        ))
    })
}

/// Metadata of a local path (following symlinks when `follow`).
pub async fn stat(path: &Path, follow: bool) -> Result<Entry> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let meta = if follow {
            std::fs::metadata(&p)
        } else {
            std::fs::symlink_metadata(&p)
        }
        .map_err(|e| io_err(&p, &e))?;
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        entry_of(name, &p, &meta)
    })
    .await
    .map_err(join_err)?
}

/// Every entry under `root` (not following symlinks), relative names, parents first,
/// siblings sorted.
pub async fn walk(root: &Path) -> Result<Vec<Entry>> {
    let root = root.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        let mut stack = vec![String::new()];
        while let Some(rel) = stack.pop() {
            let dir = if rel.is_empty() {
                root.clone()
            } else {
                root.join(&rel)
            };
            let mut names = Vec::new();
            for item in std::fs::read_dir(&dir).map_err(|e| io_err(&dir, &e))? {
                let item = item.map_err(|e| io_err(&dir, &e))?;
                names.push(item.file_name());
            }
            names.sort();
            let mut subdirs = Vec::new();
            for n in names {
                let path = dir.join(&n);
                let name = utf8(Path::new(&n))?.to_string();
                let rel_name = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let meta = std::fs::symlink_metadata(&path).map_err(|e| io_err(&path, &e))?;
                let e = entry_of(rel_name, &path, &meta)?;
                if e.kind == Kind::Dir {
                    subdirs.push(e.name.clone());
                }
                out.push(e);
            }
            // Depth-first, parents always before their children.
            stack.extend(subdirs.into_iter().rev());
        }
        Ok(out)
    })
    .await
    .map_err(join_err)?
}

/// Checks a relative path from the server: components must be plain names.
pub fn safe_rel(rel: &str) -> Result<()> {
    let ok = !rel.is_empty()
        && !rel.starts_with('/')
        && rel
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::RemoteIo,
            format!("the server listed an unsafe name {rel:?}; refusing to download it"),
        ))
    }
}

/// A hidden temp path beside `target`.
pub fn temp_beside(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let short: String = name.chars().take(100).collect();
    target.with_file_name(format!(
        ".{short}.agentssh-{:08x}.tmp",
        rand::random::<u32>()
    ))
}

/// Creates a new file at `path` (must not exist) for writing.
pub async fn create_new(path: &Path) -> Result<tokio::fs::File> {
    let p = path.to_path_buf();
    let f = tokio::task::spawn_blocking(move || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .map_err(|e| io_err(&p, &e))
    })
    .await
    .map_err(join_err)??;
    Ok(tokio::fs::File::from_std(f))
}

fn set_times(f: &std::fs::File, mtime: u64) -> std::io::Result<()> {
    let t = UNIX_EPOCH + Duration::from_secs(mtime);
    f.set_times(std::fs::FileTimes::new().set_modified(t).set_accessed(t))
}

/// Flushes `file`, sets its mode and mtime, and renames `tmp` over `target`.
pub async fn finish(
    file: tokio::fs::File,
    tmp: &Path,
    target: &Path,
    mode: u32,
    mtime: u64,
) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut file = file;
    file.flush().await.map_err(|e| io_err(tmp, &e))?;
    let f = file.into_std().await;
    let (tmp, target) = (tmp.to_path_buf(), target.to_path_buf());
    tokio::task::spawn_blocking(move || {
        f.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| io_err(&tmp, &e))?;
        set_times(&f, mtime).map_err(|e| io_err(&tmp, &e))?;
        drop(f);
        std::fs::rename(&tmp, &target).map_err(|e| io_err(&target, &e))
    })
    .await
    .map_err(join_err)?
}

/// Creates directory `path` (an existing directory is fine).
pub async fn mkdir(path: &Path) -> Result<()> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || match std::fs::create_dir(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && p.is_dir() => Ok(()),
        Err(e) => Err(io_err(&p, &e)),
    })
    .await
    .map_err(join_err)?
}

/// Sets a directory's mode and mtime.
pub async fn set_dir_attrs(path: &Path, mode: u32, mtime: u64) -> Result<()> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| io_err(&p, &e))?;
        let f = std::fs::File::open(&p).map_err(|e| io_err(&p, &e))?;
        set_times(&f, mtime).map_err(|e| io_err(&p, &e))
    })
    .await
    .map_err(join_err)?
}

/// Creates symlink `link` → `target`, replacing an existing non-directory.
pub async fn symlink(target: &str, link: &Path) -> Result<()> {
    let (t, l) = (target.to_string(), link.to_path_buf());
    tokio::task::spawn_blocking(move || {
        if let Ok(m) = std::fs::symlink_metadata(&l) {
            if !m.is_dir() {
                let _ = std::fs::remove_file(&l);
            }
        }
        std::os::unix::fs::symlink(&t, &l).map_err(|e| io_err(&l, &e))
    })
    .await
    .map_err(join_err)?
}

/// Best-effort removal of leftover temp files.
pub fn cleanup(files: &[PathBuf]) {
    for f in files {
        let _ = std::fs::remove_file(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_names_from_the_server_are_refused() {
        for bad in ["", "..", "a/../b", "/etc/passwd", "a//b", ".", "a/."] {
            assert!(safe_rel(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "a b/c\nd", ".hidden/x", "..x"] {
            assert!(safe_rel(good).is_ok(), "{good:?}");
        }
    }

    #[tokio::test]
    async fn walk_lists_parents_first_and_keeps_symlinks() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::write(d.path().join("a/b/f"), b"x").unwrap();
        std::os::unix::fs::symlink("a/b/f", d.path().join("l")).unwrap();
        let e = walk(d.path()).await.unwrap();
        let names: Vec<&str> = e.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "l", "a/b", "a/b/f"]);
        assert_eq!(e[1].link.as_deref(), Some("a/b/f"));
    }
}
