//! File operations where the SSH connection is: `upload`, `download`, `ls`, `read`,
//! `write`, `edit`, `delete`, `mkdir`.
//!
//! [`run`] takes an authenticated connection (the daemon's pooled one, a session's, or the
//! CLI's own with `--direct`) and a [`FileAction`]. It opens SFTP (pipelined, see
//! [`sftp_fs`]) or, when the server has none or `--method exec` asks, the exec fallback
//! ([`exec_fs`]); the answer says which one ran (`"method"`). Local paths are read and
//! written by whoever calls [`run`], so the daemon touches local files itself and no file
//! bytes cross its socket except `read` output and `write` input.
//!
//! Atomicity: `write`, `edit` and every uploaded or downloaded file go to a hidden temp
//! file beside the target and are renamed over it only when complete. Temp files of a
//! failed or interrupted operation are removed (not when the process running it is
//! SIGKILLed: then a hidden `.NAME.agentssh-XXXXXXXX.tmp` may remain, the target intact).

mod dirs;
mod edit;
mod exec_fs;
mod exec_sh;
mod io;
mod local;
mod ops;
mod paths;
mod remote;
mod sftp_data;
mod sftp_fs;
mod transfer;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::wire::file::{FileAction, Method};
pub use io::{Input, Progress};
pub use ops::MAX_EDIT;
pub use paths::is_temp_name;

use crate::error::Result;
use crate::ssh::exec::ChannelSource;

/// The channels of one running operation.
pub struct Ctx {
    /// Bytes done / expected, for progress bars.
    pub progress: Arc<Progress>,
    /// Where `read` sends the file's bytes.
    pub content: Option<mpsc::Sender<Bytes>>,
    /// Where `write` without `content` takes its bytes from.
    pub input: Option<mpsc::Receiver<Input>>,
}

/// Runs `action` on channels from `source` (a bare connection, or a pooled one and its spare
/// channel). When `cancel` resolves (the client went away, SIGINT) the operation winds down,
/// removes its temp files and fails with `remote_io`.
pub async fn run(
    source: &dyn ChannelSource,
    method: Method,
    action: &FileAction,
    mut ctx: Ctx,
    cancel: impl std::future::Future<Output = ()>,
) -> Result<Value> {
    let started = Instant::now();
    let (stop_tx, stop_rx) = watch::channel(false);
    let remote = remote::Remote::open(source, method, io::Stop::new(stop_rx)).await?;
    tracing::info!(action = action.name(), method = remote.method(), path = %action.remote(), "file operation");
    let temps = io::Temps::default();
    let result = {
        let op = ops::perform(&remote, action, &mut ctx, &temps);
        tokio::pin!(op);
        tokio::select! {
            r = &mut op => r,
            () = cancel => {
                let _ = stop_tx.send(true);
                // Let the operation wind down (exec channels closed, handles released).
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), &mut op).await;
                Err(io::interrupted())
            }
        }
    };
    drop(ctx);
    let (remote_temps, local_temps) = temps.take();
    remote.cleanup(&remote_temps).await;
    local::cleanup(&local_temps);
    remote.close();
    match result {
        Ok(mut v) => {
            if let Some(obj) = v.as_object_mut() {
                obj.insert("method".into(), remote.method().into());
                obj.insert(
                    "duration_ms".into(),
                    u64::try_from(started.elapsed().as_millis())
                        .unwrap_or(u64::MAX)
                        .into(),
                );
            }
            Ok(v)
        }
        Err(e) => {
            tracing::info!(action = action.name(), code = %e.code, "file operation failed: {}", e.message);
            Err(e)
        }
    }
}
