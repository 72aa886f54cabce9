//! The session registry: maps ids (`s1`) and names to actor handles, opens sessions and
//! reports their metadata. Its mutex guards only the map; nothing waits while holding it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::send::wait_idle;
use super::{ReadResult, ReadSpec, SessionHandle, SessionInfo, SessionMeta, Status};
use crate::daemon::pool::Pool;
use crate::daemon::record::Recordings;
use crate::error::{Error, ErrorCode, Result};
use crate::wire::spec::ConnectSpec;

/// All sessions of the daemon.
pub struct Registry {
    map: Mutex<BTreeMap<String, SessionHandle>>,
    next: AtomicU64,
    changes: tokio::sync::watch::Sender<u64>,
    /// Where sessions are recorded (none in unit tests).
    recordings: Option<Arc<Recordings>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            map: Mutex::default(),
            next: AtomicU64::new(0),
            changes: tokio::sync::watch::channel(0).0,
            recordings: None,
        }
    }
}

impl Registry {
    /// A registry whose sessions are recorded by `recordings` (unless opened without).
    pub fn with_recordings(recordings: Arc<Recordings>) -> Self {
        Registry {
            recordings: Some(recordings),
            ..Registry::default()
        }
    }

    /// A receiver bumped whenever any session changes (output, status, controller) or
    /// sessions come and go: what the dashboard feed waits on.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
    fn insert(&self, handle: SessionHandle) {
        if let Ok(mut m) = self.map.lock() {
            m.insert(handle.meta.id.clone(), handle);
        }
        self.changed();
    }

    /// Finds a session by id or name.
    pub fn get(&self, key: &str) -> Result<SessionHandle> {
        let m = self
            .map
            .lock()
            .map_err(|_| Error::internal("session registry poisoned"))?;
        m.get(key)
            .or_else(|| m.values().find(|h| h.meta.name.as_deref() == Some(key)))
            .cloned()
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::SessionNotFound,
                    format!("session '{key}' not found; run 'agentssh session list' to see open sessions"),
                )
            })
    }

    /// Every session, by id order.
    pub fn all(&self) -> Vec<SessionHandle> {
        self.map
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Drops a session from the registry.
    pub fn remove(&self, id: &str) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(id);
        }
        self.changed();
    }

    fn next_id(&self) -> String {
        format!("s{}", self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn check_name(&self, name: &Option<String>) -> Result<()> {
        if let Some(n) = name {
            let valid = !n.is_empty()
                && n.len() <= 64
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !valid {
                return Err(Error::usage(format!(
                    "invalid session name '{n}': use letters, digits, '-', '_' or '.'"
                )));
            }
            if n.starts_with('s') && n[1..].chars().all(|c| c.is_ascii_digit()) {
                return Err(Error::usage(format!(
                    "session name '{n}' looks like a session id; pick another"
                )));
            }
            if self.get(n).is_ok() {
                return Err(Error::new(
                    ErrorCode::Usage,
                    format!("a session named '{n}' already exists"),
                ));
            }
        }
        Ok(())
    }

    /// Metadata with `shared_with` filled in.
    pub async fn infos(&self) -> Vec<SessionInfo> {
        let mut infos = Vec::new();
        for h in self.all() {
            if let Ok(i) = h.info().await {
                infos.push(i);
            }
        }
        let snapshot = infos.clone();
        for i in &mut infos {
            i.shared_with = snapshot
                .iter()
                .filter(|o| {
                    o.id != i.id
                        && !o.connection_id.is_empty()
                        && o.connection_id == i.connection_id
                })
                .map(|o| o.id.clone())
                .collect();
        }
        infos
    }

    /// One session's metadata with `shared_with`.
    pub async fn info(&self, key: &str) -> Result<SessionInfo> {
        let id = self.get(key)?.meta.id.clone();
        self.infos()
            .await
            .into_iter()
            .find(|i| i.id == id)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::SessionNotFound,
                    format!("session '{key}' not found"),
                )
            })
    }

    /// Opens a session (connect or spawn) for the client kind `client` (see
    /// [`SessionMeta::client`]).
    #[allow(clippy::too_many_arguments)]
    pub async fn open(
        &self,
        pool: &Pool,
        client: &str,
        spec: ConnectSpec,
        retry: u32,
        name: Option<String>,
        reconnect: bool,
        shell_integration: bool,
        record: bool,
        cols: u16,
        rows: u16,
        wait_ms: u64,
        limit: usize,
    ) -> Result<serde_json::Value> {
        self.check_name(&name)?;
        let (cols, rows) = (cols.clamp(10, 500), rows.clamp(2, 300));
        let meta = SessionMeta {
            id: self.next_id(),
            name,
            spec,
            reconnect,
            shell_integration,
            nonce: crate::hex(&rand::random::<[u8; 8]>()),
            record,
            client: client.chars().take(super::CLIENT_KIND_MAX).collect(),
            created_at: crate::now_ms(),
            changes: self.changes.clone(),
        };
        let handle = super::start(pool.clone(), meta, retry, cols, rows).await?;
        if let (true, Some(rec)) = (record, &self.recordings) {
            // Subscribed before the session is listed, so no agent input precedes it.
            rec.start(&handle).await;
        }
        self.insert(handle.clone());
        // With the hooks in, the shell's first marked prompt is out: the initial output is
        // complete. Without them, collect what comes within `wait_ms` of quiet.
        if !super::integration::install(&handle, true).await {
            handle.integration_failed().await;
            wait_idle(
                &handle,
                Duration::from_millis(wait_ms.min(60_000)),
                Duration::from_millis(wait_ms.min(60_000)),
            )
            .await;
        }
        let read = handle
            .read(ReadSpec {
                offset: None,
                limit,
                raw: false,
            })
            .await?;
        let info = self.info(&handle.meta.id).await?;
        let status = handle.ticks().borrow().status;
        let answer = with_output(info, &read);
        match ended_at_start(status, &read.output) {
            None => Ok(answer),
            Some(e) => {
                // An agent must not get `ok` for a session that is already gone: the error
                // carries what it would have seen, and nothing is left open.
                handle.close().await;
                self.remove(&handle.meta.id);
                Err(e.with_data(answer))
            }
        }
    }
}

/// The error for a session whose connection dropped (`connect_failed`) or whose shell
/// exited (`session_closed`) before `connect` answered, quoting its last line of output;
/// `None` while it is up (or reconnecting).
fn ended_at_start(status: Status, output: &str) -> Option<Error> {
    let last = output
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("[agentssh]"))
        .map(|l| {
            format!(
                "; its last output: {:?}",
                l.chars().take(200).collect::<String>()
            )
        })
        .unwrap_or_default();
    match status {
        Status::Running | Status::Reconnecting => None,
        Status::Disconnected => Some(Error::new(
            ErrorCode::ConnectFailed,
            format!(
                "the server dropped the connection as the session started (its log says why: \
                 often a PTY it cannot set up){last}"
            ),
        )),
        Status::Closed => Some(Error::new(
            ErrorCode::SessionClosed,
            format!("the remote shell exited as the session started{last}"),
        )),
    }
}

/// Session metadata plus a read, as one JSON object.
pub fn with_output(info: SessionInfo, read: &ReadResult) -> serde_json::Value {
    let mut v = serde_json::to_value(info).unwrap_or_default();
    if let (Some(obj), Ok(serde_json::Value::Object(r))) =
        (v.as_object_mut(), serde_json::to_value(read))
    {
        obj.insert(
            "session_id".into(),
            obj.get("id").cloned().unwrap_or_default(),
        );
        for (k, val) in r {
            obj.insert(k, val);
        }
    }
    v
}
