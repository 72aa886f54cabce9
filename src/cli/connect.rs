//! Direct connections from the CLI process: `--retry` with backoff for connection failures,
//! and one password prompt on a terminal when keys were refused.

use crate::error::{ErrorCode, Result};
use crate::secret::Secret;
use crate::ssh::client::{self, Connection};
use crate::wire::spec::ConnectSpec;

/// On a terminal, after keys were refused and no password was given, asks for one. Returns
/// whether the caller should try again with it.
pub fn offer_password_prompt(
    spec: &mut ConnectSpec,
    code: ErrorCode,
    message: &str,
) -> Result<bool> {
    if code != ErrorCode::AuthFailed
        || spec.password.is_some()
        || !super::prompt::can_prompt()
        || !message.contains("password")
    {
        return Ok(false);
    }
    let prompt = format!("{}@{}'s password: ", spec.username, spec.host);
    let password: Secret = super::prompt::read_secret(&prompt)?;
    spec.password = Some(password);
    Ok(true)
}

/// Connects, retrying connection failures `retries` times, with the terminal password prompt.
pub async fn connect_with_retry(spec: &mut ConnectSpec, retries: u32) -> Result<Connection> {
    match client::connect_retrying(spec, retries).await {
        Err(e) if offer_password_prompt(spec, e.code, &e.message)? => client::connect(spec).await,
        other => other,
    }
}

/// Passes the approval gate in the daemon before this process connects to a server itself
/// (`exec --direct`, `shell`): the daemon decides with the same policy as for its own
/// requests and answers once the action is allowed or a human approved it.
///
/// Without a policy file everything is allowed, so no daemon is needed (or started).
pub async fn authorize(spec: &ConnectSpec, command: Option<&str>) -> Result<()> {
    if spec.resolve_in_daemon {
        return Err(crate::error::Error::usage(
            "through AGENTSSH_SOCKET only the supervisor's daemon connects: drop --direct (and use connect instead of shell)",
        ));
    }
    let policy = crate::daemon::policy::file::default_path()?;
    if !policy.exists() {
        return Ok(());
    }
    let client = crate::client::DaemonClient::connect_or_start("cli").await?;
    let response = client
        .request(crate::protocol::Request::Authorize {
            spec: Box::new(spec.clone()),
            command: command.map(str::to_string),
        })
        .await?;
    crate::client::into_result(response)
        .map(|_| ())
        .map_err(crate::client::error_with_data)
}
