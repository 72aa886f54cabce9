//! `session ask`: an agent marks its session as needing a human. The dashboard shows the
//! request at once (the session's `needs_human`); it is resolved when a human takes control
//! and hands it back, or dismisses it. With `--wait` the agent blocks, in the daemon, until
//! then, and learns how it ended and how long the human held the session; it then reads what
//! happened like any other output (what a human typed at a no-echo prompt was never output).

use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::{SessionHandle, Status, MAX_WAIT};
use crate::error::{Error, ErrorCode, Result};

/// Longest message kept, characters.
pub const MESSAGE_CAP: usize = 500;

/// Serves `session ask`.
pub async fn ask(
    handle: &SessionHandle,
    message: String,
    wait: bool,
    timeout_ms: u64,
) -> Result<Value> {
    if message.trim().is_empty() {
        return Err(Error::usage("--message must say what the human should do"));
    }
    let request = handle.ask_human(message).await?;
    if !wait {
        return Ok(json!({"session_id": handle.meta.id, "request": request}));
    }
    let deadline = Instant::now() + Duration::from_millis(timeout_ms).min(MAX_WAIT);
    let mut ticks = handle.ticks();
    loop {
        if let Some(r) = handle.resolution(&request).await? {
            return Ok(json!({
                "session_id": handle.meta.id,
                "request": r.request,
                "resolved_by": r.resolved_by,
                "held_ms": r.held_ms,
            }));
        }
        let status = ticks.borrow_and_update().status;
        if status != Status::Running && status != Status::Reconnecting {
            return Err(Error::new(
                ErrorCode::SessionClosed,
                format!("session {} ended before a human answered", handle.meta.id),
            ));
        }
        match tokio::time::timeout_at(deadline, ticks.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(Error::new(ErrorCode::SessionClosed, "session is gone")),
            Err(_) => {
                return Err(Error::new(
                    ErrorCode::Timeout,
                    format!(
                        "no human answered request {request} within {timeout_ms} ms; it stays open in the dashboard"
                    ),
                )
                .with_data(json!({"session_id": handle.meta.id, "request": request})))
            }
        }
    }
}
