//! Remote directories on request: `file mkdir`, the `--parents` of `write` and `upload`
//! (like `mkdir -p`), and the error that names a missing parent directory rather than the
//! temp file that could not be created in it.
//!
//! The happy path costs nothing extra: a write without `--parents` is attempted as it is,
//! and only when it fails is the parent looked at, to say what is missing.

use serde_json::{json, Value};

use super::io::Kind;
use super::paths;
use super::remote::Remote;
use crate::error::{Error, ErrorCode, Result};

/// `file mkdir`: creates `remote`. With `parents`, missing ancestors too, and an existing
/// directory is fine; without, an existing path is `remote_io` and a missing parent
/// `not_found`, as with `mkdir`.
pub(crate) async fn mkdir(r: &Remote<'_>, remote: &str, parents: bool) -> Result<Value> {
    let p = r.abs(remote).await?;
    let created = if parents {
        r.mkdir_p(&p).await?
    } else {
        match r.stat(&p).await {
            Ok(e) => {
                let what = if e.kind == Kind::Dir {
                    "a directory"
                } else {
                    "not a directory"
                };
                return Err(Error::new(
                    ErrorCode::RemoteIo,
                    format!("{p} already exists ({what}); pass --parents to accept an existing directory"),
                ));
            }
            Err(e) if e.code == ErrorCode::NotFound => {}
            Err(e) => return Err(e),
        }
        if let Err(e) = r.mkdir_one(&p).await {
            return Err(name_missing_parent(r, &p, e).await);
        }
        true
    };
    Ok(json!({"path": p, "created": created}))
}

/// Creates the missing directories above `path` (a file or tree about to be written there).
pub(crate) async fn make_parent(r: &Remote<'_>, path: &str) -> Result<()> {
    r.mkdir_p(paths::parent(path)).await.map(|_| ())
}

/// `err` came from creating something at `path`. When the reason is that its parent
/// directory does not exist, the answer says so (code `not_found`) and how to create it;
/// otherwise `err` stands.
pub(crate) async fn name_missing_parent(r: &Remote<'_>, path: &str, err: Error) -> Error {
    let dir = paths::parent(path);
    match r.stat(dir).await {
        Err(e) if e.code == ErrorCode::NotFound => Error::new(
            ErrorCode::NotFound,
            format!("remote directory {dir} does not exist (pass --parents to create it)"),
        ),
        Ok(e) if e.kind != Kind::Dir => Error::new(
            ErrorCode::RemoteIo,
            format!("{dir} is not a directory, so {path} cannot be created"),
        ),
        _ => err,
    }
}
