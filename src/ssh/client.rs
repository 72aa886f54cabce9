//! Opening an authenticated SSH connection from a [`ConnectSpec`].
//!
//! One deadline (`--ready-timeout-ms`) covers TCP connect, handshake, host-key check and auth.
//! Host keys are verified by our own code ([`super::known_hosts`]) under the spec's policy;
//! the verdict is kept so a refused key is reported as `host_key_unknown`/`host_key_changed`,
//! not as a generic handshake failure. Connections set `nodelay` and a 5 s keepalive.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{Config, Handle, Handler};
use russh::keys::PublicKeyOrCertificate;
use russh::{cipher, Preferred};

use super::auth;
use super::forward::ForwardRegistry;
use super::known_hosts::{self, HostKeyStatus};
use crate::error::{Error, ErrorCode, Result};
use crate::wire::spec::{host_port, ConnectSpec, HostKeyPolicy};

/// Keepalive interval; a path is declared dead after [`KEEPALIVE_MAX`] unanswered probes.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// Unanswered keepalives before the connection is closed.
pub const KEEPALIVE_MAX: usize = 3;

/// Our russh client handler: verifies the host key and remembers why it refused one.
pub struct ClientHandler {
    host: String,
    port: u16,
    policy: HostKeyPolicy,
    files: Vec<std::path::PathBuf>,
    own_known_hosts: std::path::PathBuf,
    verdict: Arc<Mutex<Option<Error>>>,
    /// Where server-opened `forwarded-tcpip` channels go (reverse proxies register here).
    forwards: ForwardRegistry,
}

/// An authenticated connection.
pub type SshHandle = Handle<ClientHandler>;

/// An authenticated connection plus the jump-host connections it runs through (kept alive
/// for as long as it is).
pub struct Connection {
    /// The connection to the target.
    pub handle: SshHandle,
    /// Hops, first to last.
    pub jumps: Vec<SshHandle>,
    /// Routes for the target's `forwarded-tcpip` channels (remote forwards).
    pub forwards: ForwardRegistry,
}

impl Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> std::result::Result<bool, Self::Error> {
        let verdict = self.judge(key);
        let ok = verdict.is_ok();
        if let Err(e) = verdict {
            tracing::warn!(host = %self.host, port = self.port, "host key refused: {}", e.message);
            if let Ok(mut slot) = self.verdict.lock() {
                *slot = Some(e);
            }
        }
        Ok(ok)
    }

    /// A connection to one of our remote forwards: handed to the reverse proxy that
    /// registered it (which accepts or rejects it); never waits.
    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: russh::Channel<russh::client::Msg>,
        connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: russh::client::ChannelOpenHandle,
        _session: &mut russh::client::Session,
    ) -> std::result::Result<(), Self::Error> {
        let fwd = super::forward::ForwardedChannel {
            channel,
            reply,
            originator: host_port(
                originator_address,
                u16::try_from(originator_port).unwrap_or(0),
            ),
        };
        self.forwards.route(connected_address, connected_port, fwd);
        Ok(())
    }
}

impl ClientHandler {
    fn judge(&self, key: &PublicKeyOrCertificate) -> Result<()> {
        let target = host_port(&self.host, self.port);
        let shown = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => known_hosts::fingerprint(key),
            PublicKeyOrCertificate::Certificate(c) => {
                format!(
                    "certificate signed by {}",
                    c.signature_key().fingerprint(Default::default())
                )
            }
        };
        match known_hosts::check_host_key(&self.files, &self.host, self.port, key) {
            HostKeyStatus::Known => Ok(()),
            HostKeyStatus::Revoked { file, line } => Err(Error::new(
                ErrorCode::HostKeyChanged,
                format!(
                    "host key {shown} for {target} is marked @revoked in {}:{line}; refusing to connect",
                    file.display()
                ),
            )),
            HostKeyStatus::Changed { recorded } => {
                if self.policy == HostKeyPolicy::No {
                    return Ok(());
                }
                let was: Vec<String> = recorded
                    .iter()
                    .map(|r| format!("{} {} ({}:{})", r.algorithm, r.fingerprint, r.file.display(), r.line))
                    .collect();
                Err(Error::new(
                    ErrorCode::HostKeyChanged,
                    format!(
                        "HOST KEY CHANGED for {target}: server offered {shown}, known_hosts has {}; \
                         this may be an attack. If the change is expected, remove the old line and reconnect",
                        was.join(", ")
                    ),
                ))
            }
            HostKeyStatus::Unknown => match (self.policy, key) {
                (HostKeyPolicy::No, _) => Ok(()),
                (HostKeyPolicy::AcceptNew, PublicKeyOrCertificate::PublicKey { key, .. }) => {
                    known_hosts::learn_host_key(&self.own_known_hosts, &self.host, self.port, key)
                        .map_err(|e| Error::local_io(self.own_known_hosts.display(), &e))?;
                    tracing::info!(%target, fingerprint = %shown, "learned new host key");
                    Ok(())
                }
                _ => Err(Error::new(
                    ErrorCode::HostKeyUnknown,
                    format!(
                        "host key {shown} for {target} is not in known_hosts and --strict-host-key-checking is yes; \
                         verify it and add it, or use --strict-host-key-checking accept-new"
                    ),
                )),
            },
        }
    }
}

/// The keepalive interval: [`KEEPALIVE_INTERVAL`], or `AGENTSSH_KEEPALIVE_MS` (≥ 100 ms) so
/// tests and impatient users can detect a dead path faster.
pub fn keepalive_interval() -> Duration {
    std::env::var("AGENTSSH_KEEPALIVE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(|ms| Duration::from_millis(ms.max(100)))
        .unwrap_or(KEEPALIVE_INTERVAL)
}

fn client_config() -> Arc<Config> {
    Arc::new(Config {
        keepalive_interval: Some(keepalive_interval()),
        keepalive_max: KEEPALIVE_MAX,
        nodelay: true,
        window_size: 8 * 1024 * 1024,
        maximum_packet_size: 65535,
        preferred: Preferred {
            cipher: Cow::Borrowed(cipher_order(hardware_aes_gcm())),
            ..Preferred::default()
        },
        ..Config::default()
    })
}

/// AES-256-GCM before ChaCha20-Poly1305, for CPUs with AES and carry-less multiply.
const CIPHERS_AES_FIRST: &[cipher::Name] = &[
    cipher::AES_256_GCM,
    cipher::CHACHA20_POLY1305,
    cipher::AES_256_CTR,
    cipher::AES_192_CTR,
    cipher::AES_128_CTR,
];

/// OpenSSH's order: ChaCha20-Poly1305 first (constant time without AES instructions).
const CIPHERS_CHACHA_FIRST: &[cipher::Name] = &[
    cipher::CHACHA20_POLY1305,
    cipher::AES_256_GCM,
    cipher::AES_256_CTR,
    cipher::AES_192_CTR,
    cipher::AES_128_CTR,
];

/// The cipher preference sent to the server. Both AEADs are constant time in ring; with
/// AES instructions AES-256-GCM costs a fraction of ChaCha20-Poly1305 on both ends of
/// the connection, which is what bulk transfers (forwards, SFTP) are bound by. Without
/// them it would be the slower one, so OpenSSH's order is kept.
fn cipher_order(hardware_aes: bool) -> &'static [cipher::Name] {
    if hardware_aes {
        CIPHERS_AES_FIRST
    } else {
        CIPHERS_CHACHA_FIRST
    }
}

/// Whether this CPU runs AES-GCM in hardware (AES rounds and carry-less multiply).
fn hardware_aes_gcm() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

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
    let base = FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.min(8))
        .min(MAX_BACKOFF);
    base + Duration::from_millis(rand::random::<u64>() % 50)
}

/// [`connect`], retrying connection failures (never auth or host-key refusals) `retries`
/// times with exponential backoff. When the last try fails too, the sentence says how many
/// attempts were made.
pub async fn connect_retrying(spec: &ConnectSpec, retries: u32) -> Result<Connection> {
    let mut attempt = 0;
    loop {
        match connect(spec).await {
            Err(e) if is_retryable(e.code) && attempt < retries => {
                tracing::info!("connect attempt {} failed: {}", attempt + 1, e.message);
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            Err(mut e) if is_retryable(e.code) && retries > 0 => {
                e.message = format!(
                    "{} (gave up after {} attempts, --retry {retries})",
                    e.message,
                    u64::from(retries) + 1
                );
                return Err(e);
            }
            other => return other,
        }
    }
}

/// What to check when the TCP connection to `target` failed with `e`.
fn tcp_failure(target: &str, e: &std::io::Error) -> Error {
    let hint = if e.kind() == std::io::ErrorKind::ConnectionRefused {
        "nothing accepts connections there: check the host (-H) and port (-P, default 22) and that sshd is running on it"
    } else {
        "check the host name or address (-H) and port (-P, default 22), that sshd is running there, and that the network lets you reach it"
    };
    Error::new(
        ErrorCode::ConnectFailed,
        format!("cannot connect to {target}: {e}; {hint}"),
    )
}

/// Connects, verifies and authenticates, all within the spec's ready timeout.
pub async fn connect(spec: &ConnectSpec) -> Result<Connection> {
    let deadline = spec.ready_timeout();
    match tokio::time::timeout(deadline, connect_inner(spec)).await {
        Ok(r) => r,
        Err(_) => Err(Error::new(
            ErrorCode::Timeout,
            format!(
                "connecting to {} timed out after {} ms (TCP connect + handshake + auth; see --ready-timeout-ms)",
                spec.display_target(),
                spec.ready_timeout_ms
            ),
        )),
    }
}

async fn connect_inner(spec: &ConnectSpec) -> Result<Connection> {
    let mut jumps: Vec<SshHandle> = Vec::new();
    for hop in &spec.proxy_jump {
        let hop_spec = spec.for_jump(hop);
        // Hops never carry remote forwards: their registry stays empty.
        let none = ForwardRegistry::default();
        let handle = match jumps.last() {
            None => open_tcp(&hop_spec, &none).await?,
            Some(prev) => open_via(prev, &hop_spec, &none).await?,
        };
        jumps.push(handle);
    }
    let forwards = ForwardRegistry::default();
    let handle = match jumps.last() {
        None => open_tcp(spec, &forwards).await?,
        Some(prev) => open_via(prev, spec, &forwards).await?,
    };
    Ok(Connection {
        handle,
        jumps,
        forwards,
    })
}

fn handler_for(
    spec: &ConnectSpec,
    forwards: &ForwardRegistry,
) -> (ClientHandler, Arc<Mutex<Option<Error>>>) {
    let verdict = Arc::new(Mutex::new(None));
    let handler = ClientHandler {
        host: spec.host.clone(),
        port: spec.port,
        policy: spec.host_key_policy,
        files: spec.known_hosts_files.clone(),
        own_known_hosts: spec.own_known_hosts.clone(),
        verdict: verdict.clone(),
        forwards: forwards.clone(),
    };
    (handler, verdict)
}

async fn open_tcp(spec: &ConnectSpec, forwards: &ForwardRegistry) -> Result<SshHandle> {
    let target = host_port(&spec.host, spec.port);
    let stream = tokio::net::TcpStream::connect((spec.host.as_str(), spec.port))
        .await
        .map_err(|e| tcp_failure(&target, &e))?;
    let _ = stream.set_nodelay(true);
    handshake(spec, stream, forwards).await
}

async fn open_via(
    prev: &SshHandle,
    spec: &ConnectSpec,
    forwards: &ForwardRegistry,
) -> Result<SshHandle> {
    let target = host_port(&spec.host, spec.port);
    let channel = prev
        .channel_open_direct_tcpip(spec.host.clone(), u32::from(spec.port), "127.0.0.1", 0)
        .await
        .map_err(|e| {
            Error::new(
                ErrorCode::ConnectFailed,
                format!("jump host could not reach {target}: {e}"),
            )
        })?;
    handshake(spec, channel.into_stream(), forwards).await
}

async fn handshake<S>(
    spec: &ConnectSpec,
    stream: S,
    forwards: &ForwardRegistry,
) -> Result<SshHandle>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let target = host_port(&spec.host, spec.port);
    let (handler, verdict) = handler_for(spec, forwards);
    let mut handle = russh::client::connect_stream(client_config(), stream, handler)
        .await
        .map_err(|e| {
            if let Some(v) = verdict.lock().ok().and_then(|mut s| s.take()) {
                return v;
            }
            Error::new(
                ErrorCode::ConnectFailed,
                format!("SSH handshake with {target} failed: {e}"),
            )
        })?;
    auth::authenticate(&mut handle, spec).await?;
    Ok(handle)
}

#[cfg(test)]
mod cipher_tests {
    use super::*;

    #[test]
    fn aes_gcm_leads_only_with_hardware_aes() {
        assert_eq!(cipher_order(true)[0], cipher::AES_256_GCM);
        assert_eq!(cipher_order(false)[0], cipher::CHACHA20_POLY1305);
        // Both orders offer the same set, so no server that accepts one refuses the other.
        let mut with: Vec<_> = cipher_order(true).iter().map(|c| c.as_ref()).collect();
        let mut without: Vec<_> = cipher_order(false).iter().map(|c| c.as_ref()).collect();
        with.sort_unstable();
        without.sort_unstable();
        assert_eq!(with, without);
    }
}
