//! Session rows as the dashboard keeps them: the parts of the daemon's session metadata it
//! draws (status, controller, attention state, an open request for a human, PTY size).

use serde_json::Value;

/// A session row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionRow {
    /// Id.
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// `user@host:port`.
    pub target: String,
    /// Status.
    pub status: String,
    /// `agent` or `human`.
    pub controller: String,
    /// Clean bytes so far.
    pub output_bytes: u64,
    /// Last activity, ms since epoch.
    pub updated_at: u64,
    /// Last line an agent sent.
    pub last_input: Option<String>,
    /// `prompt`, `busy`, `input` or `closed`.
    pub state: String,
    /// Since when, ms since epoch.
    pub state_since: u64,
    /// Exit status of the last command at the prompt.
    pub last_exit_status: Option<i64>,
    /// The agent's open request for a human.
    pub needs_human: Option<HumanRequest>,
    /// PTY columns.
    pub cols: u16,
    /// PTY rows.
    pub rows: u16,
    /// Position in the daemon's list (the order when attention-first is off).
    pub seq: usize,
    /// Created, ms since epoch.
    pub created_at: u64,
    /// A closed session listed because its recording exists: the recording's path.
    pub recording: Option<String>,
    /// Which kind of client opened it (`cli`, `mcp`, `tui`, ...), when the daemon says.
    pub client: Option<String>,
}

impl SessionRow {
    /// Whether this row is a closed session kept for its recording.
    pub fn archived(&self) -> bool {
        self.recording.is_some()
    }
}

/// An agent's open request for a human, as the session metadata carries it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HumanRequest {
    /// Request id, unique within the session.
    pub request: String,
    /// What the agent needs.
    pub message: String,
    /// Since when, ms since epoch.
    pub since: u64,
}

/// A session row from the daemon's session metadata (`SessionInfo` as JSON); `seq` is its
/// position in the daemon's list.
pub(super) fn row_from(v: &Value, seq: usize) -> SessionRow {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let nh = &v["needs_human"];
    let size = |k: &str| u16::try_from(v[k].as_u64().unwrap_or(0)).unwrap_or(u16::MAX);
    SessionRow {
        id: s("id"),
        name: v["name"].as_str().map(String::from),
        target: format!("{}@{}:{}", s("username"), s("host"), v["port"]),
        status: s("status"),
        controller: s("controller"),
        output_bytes: v["output_bytes"].as_u64().unwrap_or(0),
        updated_at: v["updated_at"].as_u64().unwrap_or(0),
        last_input: v["last_input"].as_str().map(String::from),
        state: s("state"),
        state_since: v["state_since"].as_u64().unwrap_or(0),
        last_exit_status: v["last_exit_status"].as_i64(),
        needs_human: nh.is_object().then(|| HumanRequest {
            request: nh["request"].as_str().unwrap_or_default().to_string(),
            message: nh["message"].as_str().unwrap_or_default().to_string(),
            since: nh["since"].as_u64().unwrap_or(0),
        }),
        cols: size("cols"),
        rows: size("rows"),
        seq,
        created_at: v["created_at"].as_u64().unwrap_or(0),
        recording: None,
        client: v["client"]
            .as_str()
            .filter(|c| !c.is_empty())
            .map(String::from),
    }
}
