//! What it takes to reach one server: [`ConnectSpec`].
//!
//! Part of the client–daemon contract (see [`crate::wire`]). The faces resolve flags, profile
//! and `~/.ssh/config` into a spec (see [`crate::target`]); the spec is plain data so it can
//! travel to the daemon, whose `ssh` module connects with it. Secrets inside are [`Secret`]s.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::secret::Secret;

/// `--strict-host-key-checking`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyPolicy {
    /// Only keys already in a known_hosts file are accepted.
    Yes,
    /// Unknown keys are learned into agentssh's own known_hosts; changed keys are refused.
    #[default]
    AcceptNew,
    /// Any key is accepted and nothing is recorded (unsafe; for throwaway hosts).
    No,
}

/// A private key the user named.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum KeySource {
    /// A key file.
    Path(PathBuf),
    /// Key text from an environment variable (the variable's name, for messages, and value).
    Inline {
        /// Where it came from, e.g. `$DEPLOY_KEY`.
        origin: String,
        /// The OpenSSH/PEM key text.
        text: Secret,
    },
}

impl KeySource {
    /// How to name this key in messages and the pool key (never the key itself).
    pub fn label(&self) -> String {
        match self {
            KeySource::Path(p) => p.display().to_string(),
            KeySource::Inline { origin, .. } => origin.clone(),
        }
    }
}

/// One hop of `--proxy-jump`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JumpHost {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User.
    pub username: String,
}

impl JumpHost {
    /// Parses `[user@]host[:port]` (IPv6 as `[addr]:port`), defaulting the user.
    pub fn parse(s: &str, default_user: &str) -> Result<Self> {
        let bad = || Error::usage(format!("invalid jump host '{s}': use [user@]host[:port]"));
        let (user, rest) = match s.rsplit_once('@') {
            Some((u, r)) if !u.is_empty() => (u.to_string(), r),
            Some(_) => return Err(bad()),
            None => (default_user.to_string(), s),
        };
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (h, after) = inner.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad())?,
                None if after.is_empty() => 22,
                None => return Err(bad()),
            };
            (h.to_string(), port)
        } else {
            match rest.split_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad())?),
                None => (rest.to_string(), 22),
            }
        };
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok(JumpHost {
            host,
            port,
            username: user,
        })
    }

    /// Parses a comma-separated chain.
    pub fn parse_chain(s: &str, default_user: &str) -> Result<Vec<Self>> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| JumpHost::parse(p, default_user))
            .collect()
    }
}

/// Everything needed to open and authenticate one SSH connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectSpec {
    /// Host to connect to (after `HostName` resolution); also the known_hosts name.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Remote user.
    pub username: String,
    /// Keys named explicitly (flags, profile, or ssh_config IdentityFile), tried first.
    pub keys: Vec<KeySource>,
    /// Default identity files tried after the agent (`~/.ssh/id_ed25519`, ...).
    pub default_keys: Vec<PathBuf>,
    /// Passphrase for encrypted keys.
    pub passphrase: Option<Secret>,
    /// Password, tried last.
    pub password: Option<Secret>,
    /// ssh-agent socket (`SSH_AUTH_SOCK` of the calling process), if any.
    pub agent_socket: Option<PathBuf>,
    /// Host key policy.
    pub host_key_policy: HostKeyPolicy,
    /// known_hosts files to read, in order.
    pub known_hosts_files: Vec<PathBuf>,
    /// agentssh's own known_hosts, where accept-new writes.
    pub own_known_hosts: PathBuf,
    /// Deadline for TCP connect + handshake + auth, in ms.
    pub ready_timeout_ms: u64,
    /// Jump hosts, in order.
    pub proxy_jump: Vec<JumpHost>,
    /// The profile the target came from, if any (approval rules match profile names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Only `profile` is filled in: the daemon resolves it with its own settings (a client of
    /// a supervisor's daemon through `AGENTSSH_SOCKET`, which cannot read them).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resolve_in_daemon: bool,
}

impl ConnectSpec {
    /// The connect deadline.
    pub fn ready_timeout(&self) -> Duration {
        Duration::from_millis(self.ready_timeout_ms)
    }

    /// `user@host:port`, for messages.
    pub fn display_target(&self) -> String {
        format!("{}@{}", self.username, host_port(&self.host, self.port))
    }

    /// `profile: user@host:port` (or just `user@host:port`), for approvals.
    pub fn display_with_profile(&self) -> String {
        match &self.profile {
            Some(p) => format!("{p}: {}", self.display_target()),
            None => self.display_target(),
        }
    }

    /// The spec for jump hop `hop`: same auth material, that hop's address and user.
    pub fn for_jump(&self, hop: &JumpHost) -> ConnectSpec {
        ConnectSpec {
            host: hop.host.clone(),
            port: hop.port,
            username: hop.username.clone(),
            proxy_jump: Vec::new(),
            ..self.clone()
        }
    }

    /// A key for the connection pool: the same user, host, port, route and identity share a
    /// connection. Secrets enter only as a SHA-256 digest.
    pub fn pool_key(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for k in &self.keys {
            match k {
                KeySource::Path(p) => h.update(p.display().to_string()),
                KeySource::Inline { text, .. } => h.update(text.expose()),
            }
            h.update([0]);
        }
        if let Some(p) = &self.password {
            h.update(b"pw:");
            h.update(p.expose());
        }
        if let Some(a) = &self.agent_socket {
            h.update(a.display().to_string());
        }
        let jumps: Vec<String> = self
            .proxy_jump
            .iter()
            .map(|j| format!("{}@{}", j.username, host_port(&j.host, j.port)))
            .collect();
        let digest = h.finalize();
        format!(
            "{}|{}|{:?}|{}",
            self.display_target(),
            jumps.join(","),
            self.host_key_policy,
            &crate::hex(&digest[..8])
        )
    }
}

/// `host:port`, bracketing IPv6 literals.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_host_forms() {
        let j = JumpHost::parse("bob@gw:2222", "me").unwrap();
        assert_eq!(
            (j.username.as_str(), j.host.as_str(), j.port),
            ("bob", "gw", 2222)
        );
        let j = JumpHost::parse("gw", "me").unwrap();
        assert_eq!((j.username.as_str(), j.port), ("me", 22));
        let j = JumpHost::parse("[::1]:2200", "me").unwrap();
        assert_eq!((j.host.as_str(), j.port), ("::1", 2200));
        assert!(JumpHost::parse("@gw", "me").is_err());
        assert!(JumpHost::parse("gw:notaport", "me").is_err());
        assert_eq!(JumpHost::parse_chain("a,b:2", "u").unwrap().len(), 2);
    }
}
