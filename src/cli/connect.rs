//! Direct connections from the CLI process: `--retry` with backoff for connection failures,
//! and one password prompt on a terminal when keys were refused.

use std::time::Duration;

use crate::error::{ErrorCode, Result};
use crate::ssh::client::{self, Connection};
use crate::ssh::spec::ConnectSpec;

/// First retry delay; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest pause between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Whether an error is a connection failure worth retrying (never auth or host keys).
pub fn is_retryable(code: ErrorCode) -> bool {
    matches!(code, ErrorCode::ConnectFailed | ErrorCode::Timeout)
}

/// The pause before retry number `attempt` (0-based), with a little jitter.
pub fn backoff(attempt: u32) -> Duration {
    let base = FIRST_BACKOFF.saturating_mul(1u32 << attempt.min(8)).min(MAX_BACKOFF);
    base + Duration::from_millis(rand::random::<u64>() % 50)
}

/// Connects, retrying connection failures `retries` times; on a terminal, asks once for a
/// password when the server refused our keys and no password was given.
pub async fn connect_with_retry(spec: &mut ConnectSpec, retries: u32) -> Result<Connection> {
    let mut attempt = 0;
    loop {
        match client::connect(spec).await {
            Ok(c) => return Ok(c),
            Err(e) if is_retryable(e.code) && attempt < retries => {
                tracing::info!("connect attempt {} failed: {}", attempt + 1, e.message);
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            Err(e) if e.code == ErrorCode::AuthFailed
                && spec.password.is_none()
                && super::prompt::can_prompt()
                && e.message.contains("password") =>
            {
                let prompt = format!("{}@{}'s password: ", spec.username, spec.host);
                spec.password = Some(super::prompt::read_secret(&prompt)?);
                return client::connect(spec).await;
            }
            Err(e) => return Err(e),
        }
    }
}
