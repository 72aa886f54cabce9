//! Client authentication, in OpenSSH's order: explicit keys, ssh-agent, default identity
//! files, then password (and keyboard-interactive answered with the password).
//!
//! Every failure ends in one `auth_failed` error that says what was tried and what the
//! server allows; a key that cannot be decrypted says so instead of failing silently.

use std::sync::Arc;

use russh::client::{AuthResult, KeyboardInteractiveAuthResponse};
use russh::keys::{decode_secret_key, PrivateKey, PrivateKeyWithHashAlg};
use russh::{MethodKind, MethodSet};

use super::client::SshHandle;
use crate::error::{Error, ErrorCode, Result};
use crate::wire::spec::{ConnectSpec, KeySource};

/// Most agent identities we offer: servers count each offer against MaxAuthTries.
const MAX_AGENT_KEYS: usize = 5;

/// What the server allows next, as it told us after a failure.
struct Progress {
    remaining: Option<MethodSet>,
    tried: Vec<String>,
}

impl Progress {
    fn allows(&self, kind: MethodKind) -> bool {
        self.remaining.as_ref().is_none_or(|m| m.contains(&kind))
    }

    /// Records a result; true when authentication is complete.
    fn record(&mut self, what: String, result: AuthResult) -> bool {
        match result {
            AuthResult::Success => true,
            AuthResult::Failure {
                remaining_methods, ..
            } => {
                self.tried.push(what);
                self.remaining = Some(remaining_methods);
                false
            }
        }
    }
}

fn transport(spec: &ConnectSpec, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::ConnectFailed,
        format!(
            "connection to {} failed during authentication: {e}",
            spec.display_target()
        ),
    )
}

/// Decodes a key, mapping "encrypted" and "wrong passphrase" to clear errors.
pub fn load_key(source: &KeySource, passphrase: Option<&str>) -> Result<PrivateKey> {
    let text = match source {
        KeySource::Path(p) => std::fs::read_to_string(p)
            .map_err(|e| Error::local_io(format!("cannot read private key {}", p.display()), &e))?,
        KeySource::Inline { text, .. } => text.expose().to_string(),
    };
    decode_secret_key(&text, passphrase).map_err(|e| match e {
        russh::keys::Error::KeyIsEncrypted => Error::new(
            ErrorCode::AuthFailed,
            format!(
                "private key {} is encrypted: pass --passphrase-env VAR (or --passphrase)",
                source.label()
            ),
        ),
        other if passphrase.is_some() => Error::new(
            ErrorCode::AuthFailed,
            format!(
                "cannot decrypt private key {} (wrong passphrase?): {other}",
                source.label()
            ),
        ),
        other => Error::new(
            ErrorCode::Usage,
            format!("cannot parse private key {}: {other}", source.label()),
        ),
    })
}

/// The signature hash for an RSA key (the best the server supports); None for other keys.
async fn rsa_hash(
    handle: &SshHandle,
    spec: &ConnectSpec,
    algorithm: russh::keys::Algorithm,
) -> Result<Option<russh::keys::HashAlg>> {
    if !algorithm.is_rsa() {
        return Ok(None);
    }
    Ok(handle
        .best_supported_rsa_hash()
        .await
        .map_err(|e| transport(spec, e))?
        .flatten())
}

async fn try_key(
    handle: &mut SshHandle,
    spec: &ConnectSpec,
    key: PrivateKey,
    progress: &mut Progress,
    label: String,
) -> Result<bool> {
    let hash = rsa_hash(handle, spec, key.algorithm()).await?;
    let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
    let result = handle
        .authenticate_publickey(spec.username.clone(), key)
        .await
        .map_err(|e| transport(spec, e))?;
    Ok(progress.record(format!("publickey {label}"), result))
}

async fn try_agent(
    handle: &mut SshHandle,
    spec: &ConnectSpec,
    progress: &mut Progress,
) -> Result<bool> {
    let Some(sock) = &spec.agent_socket else {
        return Ok(false);
    };
    let mut agent = match russh::keys::agent::client::AgentClient::connect_uds(sock).await {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!("ssh-agent at {} unusable: {e}", sock.display());
            return Ok(false);
        }
    };
    let identities = agent.request_identities().await.unwrap_or_default();
    for identity in identities.into_iter().take(MAX_AGENT_KEYS) {
        if !progress.allows(MethodKind::PublicKey) {
            break;
        }
        let key = identity.public_key().into_owned();
        let hash = rsa_hash(handle, spec, key.algorithm()).await?;
        let fp = key.fingerprint(Default::default()).to_string();
        match handle
            .authenticate_publickey_with(spec.username.clone(), key, hash, &mut agent)
            .await
        {
            Ok(result) => {
                if progress.record(format!("agent key {fp}"), result) {
                    return Ok(true);
                }
            }
            Err(e) => tracing::debug!("agent key {fp} could not sign: {e}"),
        }
    }
    Ok(false)
}

async fn try_password(
    handle: &mut SshHandle,
    spec: &ConnectSpec,
    password: &str,
    progress: &mut Progress,
) -> Result<bool> {
    if progress.allows(MethodKind::Password) {
        let result = handle
            .authenticate_password(spec.username.clone(), password)
            .await
            .map_err(|e| transport(spec, e))?;
        if progress.record("password".into(), result) {
            return Ok(true);
        }
    }
    if !progress.allows(MethodKind::KeyboardInteractive) {
        return Ok(false);
    }
    // Servers that keep passwords behind PAM ask through keyboard-interactive.
    let mut reply = handle
        .authenticate_keyboard_interactive_start(spec.username.clone(), None::<String>)
        .await
        .map_err(|e| transport(spec, e))?;
    for _round in 0..4 {
        match reply {
            KeyboardInteractiveAuthResponse::Success => return Ok(true),
            KeyboardInteractiveAuthResponse::Failure {
                remaining_methods, ..
            } => {
                progress.tried.push("keyboard-interactive".into());
                progress.remaining = Some(remaining_methods);
                return Ok(false);
            }
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                let answers = prompts
                    .iter()
                    .map(|p| {
                        if p.echo {
                            String::new()
                        } else {
                            password.to_string()
                        }
                    })
                    .collect();
                reply = handle
                    .authenticate_keyboard_interactive_respond(answers)
                    .await
                    .map_err(|e| transport(spec, e))?;
            }
        }
    }
    Ok(false)
}

/// Authenticates `handle` as `spec.username`, trying each configured method in order.
pub async fn authenticate(handle: &mut SshHandle, spec: &ConnectSpec) -> Result<()> {
    let mut progress = Progress {
        remaining: None,
        tried: Vec::new(),
    };
    let passphrase = spec.passphrase.as_ref().map(|p| p.expose());

    for source in &spec.keys {
        if !progress.allows(MethodKind::PublicKey) {
            break;
        }
        let key = load_key(source, passphrase)?;
        if try_key(handle, spec, key, &mut progress, source.label()).await? {
            return Ok(());
        }
    }
    if progress.allows(MethodKind::PublicKey) && try_agent(handle, spec, &mut progress).await? {
        return Ok(());
    }
    for path in &spec.default_keys {
        if !progress.allows(MethodKind::PublicKey) {
            break;
        }
        let source = KeySource::Path(path.clone());
        // Default identities are best effort: an encrypted one without a passphrase, or an
        // unreadable one, is skipped as OpenSSH does in batch mode.
        let key = match load_key(&source, passphrase) {
            Ok(k) => k,
            Err(e) => {
                tracing::debug!("skipping default identity: {}", e.message);
                continue;
            }
        };
        if try_key(handle, spec, key, &mut progress, source.label()).await? {
            return Ok(());
        }
    }
    if let Some(password) = &spec.password {
        if try_password(handle, spec, password.expose(), &mut progress).await? {
            return Ok(());
        }
    }
    let allowed = progress
        .remaining
        .as_ref()
        .map(|m| m.iter().map(<&str>::from).collect::<Vec<_>>().join(","))
        .unwrap_or_else(|| "unknown".into());
    let tried = if progress.tried.is_empty() {
        "no usable method (no key, agent or password)".to_string()
    } else {
        progress.tried.join("; ")
    };
    Err(Error::new(
        ErrorCode::AuthFailed,
        format!(
            "authentication failed for {}: tried {tried}; server allows: {allowed}",
            spec.display_target()
        ),
    ))
}
