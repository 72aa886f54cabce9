//! `file ls`, `read`, `write`, `edit` and `delete`, written once over [`Remote`] so SFTP
//! and exec behave alike, plus the dispatcher for every [`FileAction`].

use bytes::Bytes;
use serde_json::{json, Value};

use super::dirs;
use super::edit::{self, Edit};
use super::io::{mode_string, Entry, Kind, Progress, Sink, Source, Temps};
use super::paths;
use super::remote::Remote;
use super::transfer;
use super::Ctx;
use crate::error::{Error, ErrorCode, Result};
use crate::wire::file::FileAction;

/// Largest file `file edit` loads.
pub const MAX_EDIT: u64 = 64 * 1024 * 1024;
/// New files made by `write` get this mode.
const NEW_FILE_MODE: u32 = 0o644;

/// Runs one action.
pub(crate) async fn perform(
    r: &Remote<'_>,
    action: &FileAction,
    ctx: &mut Ctx,
    temps: &Temps,
) -> Result<Value> {
    let progress = ctx.progress.clone();
    match action {
        FileAction::Upload {
            local,
            remote,
            recursive,
            parents,
        } => {
            let how = transfer::Upload {
                recursive: *recursive,
                parents: *parents,
            };
            transfer::upload(r, local, remote, how, &progress, temps).await
        }
        FileAction::Download {
            remote,
            local,
            recursive,
        } => transfer::download(r, remote, local, *recursive, &progress, temps).await,
        FileAction::Ls { remote } => ls(r, remote).await,
        FileAction::Read { remote, max_bytes } => {
            let tx = ctx
                .content
                .as_ref()
                .ok_or_else(|| Error::internal("file read without a content channel"))?;
            read(r, remote, *max_bytes, &mut Sink::Channel(tx), &progress).await
        }
        FileAction::Write {
            remote,
            content,
            append,
            parents,
        } => {
            let mut src = match (content, ctx.input.as_mut()) {
                (Some(c), _) => Source::Bytes(Bytes::from(c.clone().into_bytes())),
                (None, Some(rx)) => Source::Input(rx, Bytes::new()),
                (None, None) => return Err(Error::internal("file write without input")),
            };
            let how = WriteHow {
                append: *append,
                parents: *parents,
            };
            write(r, remote, &mut src, how, &progress, temps).await
        }
        FileAction::Edit {
            remote,
            find,
            replace,
            regex,
            all,
        } => {
            let e = Edit {
                find,
                replace,
                regex: *regex,
                all: *all,
            };
            edit(r, remote, &e, temps).await
        }
        FileAction::Delete { remote, recursive } => delete(r, remote, *recursive).await,
        FileAction::Mkdir { remote, parents } => dirs::mkdir(r, remote, *parents).await,
    }
}

fn is_not_found(e: &Error) -> bool {
    e.code == ErrorCode::NotFound
}

async fn ls(r: &Remote<'_>, remote: &str) -> Result<Value> {
    let p = r.abs(remote).await?;
    let st = match r.stat(&p).await {
        Ok(e) => e,
        // A dangling symlink: show the link itself.
        Err(e) if is_not_found(&e) => r.lstat(&p).await?,
        Err(e) => return Err(e),
    };
    let mut entries = if st.kind == Kind::Dir {
        r.list(&p).await?
    } else {
        vec![r.lstat(&p).await?]
    };
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let list: Vec<Value> = entries.iter().map(Entry::to_json).collect();
    Ok(json!({"path": p, "type": st.kind.as_str(), "count": list.len(), "entries": list}))
}

async fn read(
    r: &Remote<'_>,
    remote: &str,
    max: Option<u64>,
    sink: &mut Sink<'_>,
    progress: &Progress,
) -> Result<Value> {
    let p = r.abs(remote).await?;
    let st = r.stat(&p).await?;
    if st.kind == Kind::Dir {
        return Err(Error::usage(format!("{p} is a directory; use file ls")));
    }
    if let Some(max) = max.filter(|m| st.size > *m) {
        return Err(Error::usage(format!(
            "{p} is {} bytes, over the {max}-byte limit of file read --json; use file download (or file read without --json)",
            st.size
        )));
    }
    progress.add_total(st.size);
    let n = r.read_file(&p, Some(st.size), sink, progress).await?;
    Ok(json!({"path": p, "size": n, "mode": mode_string(st.mode), "mtime": st.mtime}))
}

/// The file a write or edit really changes: the path, or what its symlink points to (so
/// the link stays a link), and its current metadata.
async fn target(r: &Remote<'_>, p: &str) -> Result<(String, Option<Entry>)> {
    match r.lstat(p).await {
        Ok(e) if e.kind == Kind::Symlink => {
            let real = r.realpath(p).await?;
            let st = match r.stat(&real).await {
                Ok(e) => Some(e),
                Err(e) if is_not_found(&e) => None,
                Err(e) => return Err(e),
            };
            Ok((real, st))
        }
        Ok(e) => Ok((p.to_string(), Some(e))),
        Err(e) if is_not_found(&e) => Ok((p.to_string(), None)),
        Err(e) => Err(e),
    }
}

/// The flags of a write.
#[derive(Debug, Clone, Copy)]
struct WriteHow {
    append: bool,
    parents: bool,
}

async fn write(
    r: &Remote<'_>,
    remote: &str,
    src: &mut Source<'_>,
    how: WriteHow,
    progress: &Progress,
    temps: &Temps,
) -> Result<Value> {
    let p = r.abs(remote).await?;
    let (path, existing) = target(r, &p).await?;
    if existing.as_ref().is_some_and(|e| e.kind == Kind::Dir) {
        return Err(Error::usage(format!("{path} is a directory")));
    }
    if how.parents && existing.is_none() {
        dirs::make_parent(r, &path).await?;
    }
    let mode = existing.as_ref().map_or(NEW_FILE_MODE, |e| e.mode);
    let written = if how.append {
        r.append(&path, src, progress).await
    } else {
        r.put_file(&path, src, mode, None, true, progress, temps)
            .await
    };
    let bytes = match written {
        Ok(n) => n,
        // A new file: its directory may be what is missing.
        Err(e) if existing.is_none() => return Err(dirs::name_missing_parent(r, &path, e).await),
        Err(e) => return Err(e),
    };
    let append = how.append;
    Ok(json!({
        "path": path,
        "bytes": bytes,
        "mode": mode_string(mode),
        "created": existing.is_none(),
        "appended": append,
    }))
}

async fn edit(r: &Remote<'_>, remote: &str, e: &Edit<'_>, temps: &Temps) -> Result<Value> {
    let p = r.abs(remote).await?;
    let (path, existing) = target(r, &p).await?;
    let st = existing.ok_or_else(|| {
        Error::new(
            ErrorCode::NotFound,
            format!("{path}: no such file or directory"),
        )
    })?;
    if st.kind != Kind::File {
        return Err(Error::usage(format!("{path} is not a regular file")));
    }
    if st.size > MAX_EDIT {
        return Err(Error::usage(format!(
            "{path} is {} bytes; file edit handles files up to {MAX_EDIT} bytes",
            st.size
        )));
    }
    let mut sink = Sink::Buffer {
        buf: Vec::with_capacity(usize::try_from(st.size).unwrap_or(0)),
        max: MAX_EDIT as usize,
    };
    r.read_file(&path, Some(st.size), &mut sink, &Progress::default())
        .await?;
    let Sink::Buffer { buf, .. } = sink else {
        return Err(Error::internal("edit sink changed kind"));
    };
    let (new, count) = edit::apply(&buf, e)?;
    if count == 0 {
        return Err(Error::new(
            ErrorCode::NotFound,
            format!(
                "pattern {:?} not found in {path}; the file is unchanged",
                e.find
            ),
        ));
    }
    let len = new.len();
    let mut src = Source::Bytes(Bytes::from(new));
    r.put_file(
        &path,
        &mut src,
        st.mode,
        None,
        true,
        &Progress::default(),
        temps,
    )
    .await?;
    Ok(json!({"path": path, "replacements": count, "bytes": len, "mode": mode_string(st.mode)}))
}

async fn delete(r: &Remote<'_>, remote: &str, recursive: bool) -> Result<Value> {
    if remote.trim().is_empty() {
        return Err(Error::usage("refusing to delete an empty path"));
    }
    let p = r.abs(remote).await?;
    let home = r.home().await?;
    paths::check_delete(remote, &p, &home, None)?;
    let e = r.lstat(&p).await?;
    if e.kind != Kind::Symlink {
        // `..` through a symlinked directory, or a path that is the home dir by another
        // name: check where it really is (a symlink itself is removed, never followed).
        let real = r.realpath(&p).await?;
        paths::check_delete(remote, &p, &home, Some(&real))?;
    }
    match e.kind {
        Kind::Dir if recursive => r.remove_tree(&p).await?,
        Kind::Dir => {
            if !r.list(&p).await?.is_empty() {
                return Err(Error::usage(format!(
                    "{p} is a directory that is not empty; pass --recursive to delete it"
                )));
            }
            r.remove_dir(&p).await?
        }
        _ => r.remove_file(&p).await?,
    }
    Ok(json!({"path": p, "type": e.kind.as_str(), "deleted": true, "recursive": recursive}))
}
