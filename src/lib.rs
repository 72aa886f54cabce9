//! agentssh: SSH for AI agents and the humans who supervise them.
//!
//! One binary, three faces: the `--json` CLI ([`cli`]), the per-user daemon ([`daemon`]) and
//! the dashboard. This library holds all of it; `main.rs` only calls [`cli::main`].

pub mod cast;
pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod error;
pub mod fsutil;
pub mod mcp;
pub mod panic_cleanup;
pub mod profile;
pub mod protocol;
pub mod screen;
pub mod secret;
pub mod sftp;
pub mod ssh;
pub mod target;
pub mod tui;
pub mod wire;

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
