//! Turning connection flags ([`ConnectArgs`]) into a [`ConnectSpec`]: inline flags win over
//! the profile, which wins over `~/.ssh/config`; `-H` may be an ssh_config Host alias.
//!
//! Below both faces: the CLI and the dashboard resolve targets here, so neither imports the
//! other.

use std::path::PathBuf;

use clap::Args;

use crate::error::{Error, Result};
use crate::profile::{Profile, ProfileStore};
use crate::secret::Secret;
use crate::ssh::ssh_config;
use crate::wire::spec::{ConnectSpec, HostKeyPolicy, JumpHost, KeySource};

// Flags of every command that connects.
#[derive(Debug, Clone, Args, Default)]
pub struct ConnectArgs {
    /// Saved profile to start from (inline flags override it).
    #[arg(short = 'p', long)]
    pub profile: Option<String>,
    /// Host name, address or ~/.ssh/config alias.
    #[arg(short = 'H', long)]
    pub host: Option<String>,
    /// Port.
    #[arg(short = 'P', long)]
    pub port: Option<u16>,
    /// Remote user.
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password (visible to other users in `ps`; prefer --password-env).
    #[arg(long)]
    pub password: Option<String>,
    /// Environment variable holding the password.
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    /// Private key file.
    #[arg(long, value_name = "PATH")]
    pub private_key_path: Option<PathBuf>,
    /// Environment variable holding the private key text.
    #[arg(long, value_name = "VAR")]
    pub private_key_env: Option<String>,
    /// Passphrase of an encrypted key (visible in `ps`; prefer --passphrase-env).
    #[arg(long)]
    pub passphrase: Option<String>,
    /// Environment variable holding the key passphrase.
    #[arg(long, value_name = "VAR")]
    pub passphrase_env: Option<String>,
    /// Deadline for TCP connect + handshake + auth, in ms.
    #[arg(long, value_name = "MS", default_value_t = 15000)]
    pub ready_timeout_ms: u64,
    /// Host key policy.
    #[arg(long, value_enum, value_name = "POLICY")]
    pub strict_host_key_checking: Option<HostKeyPolicy>,
    /// Jump hosts, like `ssh -J`: [user@]host[:port][,...].
    #[arg(long, value_name = "HOPS")]
    pub proxy_jump: Option<String>,
}

/// The local user name (`$USER`, else the passwd entry).
pub fn local_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| "root".into())
}

fn env_secret(var: &str, what: &str) -> Result<Secret> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
        _ => Err(Error::usage(format!(
            "{what} environment variable {var} is not set (or empty)"
        ))),
    }
}

fn policy_from_config(value: &str) -> Option<HostKeyPolicy> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "ask" => Some(HostKeyPolicy::Yes),
        "accept-new" => Some(HostKeyPolicy::AcceptNew),
        "no" | "off" => Some(HostKeyPolicy::No),
        _ => None,
    }
}

/// Resolves `args` (plus the named profile and ssh_config) into a spec.
pub fn resolve(args: &ConnectArgs) -> Result<ConnectSpec> {
    if crate::config::agent_socket_override().is_some() {
        return deferred(args);
    }
    let profile = match &args.profile {
        Some(name) => ProfileStore::open_default()?.get(name)?,
        None => Profile::default(),
    };
    let alias = args
        .host
        .clone()
        .or_else(|| Some(profile.host.clone()).filter(|h| !h.is_empty()))
        .ok_or_else(|| Error::usage("no target: pass -H HOST (and -u USER) or -p PROFILE"))?;
    let home = crate::config::home_dir()?;
    let ssh_dir = crate::config::ssh_dir()?;
    let me = local_user();
    let hc = ssh_config::resolve(&ssh_dir.join("config"), &alias, &home, &me).map_err(|e| {
        Error::usage(format!(
            "cannot use {}: {e}",
            ssh_dir.join("config").display()
        ))
    })?;

    let host = hc.hostname.clone().unwrap_or_else(|| alias.clone());
    let port = args.port.or(profile.port).or(hc.port).unwrap_or(22);
    let username = args
        .username
        .clone()
        .or_else(|| profile.username.clone())
        .or_else(|| hc.user.clone())
        .unwrap_or_else(|| me.clone());

    let mut keys = Vec::new();
    let key_path = args
        .private_key_path
        .clone()
        .or_else(|| profile.private_key_path.clone());
    let key_env = args
        .private_key_env
        .clone()
        .or_else(|| profile.private_key_env.clone());
    if let Some(p) = key_path {
        keys.push(KeySource::Path(expand_tilde(&p, &home)));
    }
    if let Some(var) = key_env {
        let text = env_secret(&var, "private key")?;
        keys.push(KeySource::Inline {
            origin: format!("${var}"),
            text,
        });
    }
    keys.extend(
        hc.identity_files
            .iter()
            .filter(|p| p.exists())
            .cloned()
            .map(KeySource::Path),
    );
    let default_keys = if hc.identity_files.is_empty() {
        ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|n| ssh_dir.join(n))
            .filter(|p| p.exists())
            .collect()
    } else {
        Vec::new()
    };

    let passphrase = match (&args.passphrase, &args.passphrase_env) {
        (Some(p), _) => Some(Secret::new(p.clone())),
        (None, Some(var)) => Some(env_secret(var, "passphrase")?),
        (None, None) => match (&profile.passphrase, &profile.passphrase_env) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(var)) => Some(env_secret(var, "passphrase")?),
            (None, None) => None,
        },
    };
    let password = match (&args.password, &args.password_env) {
        (Some(p), _) => Some(Secret::new(p.clone())),
        (None, Some(var)) => Some(env_secret(var, "password")?),
        (None, None) => match (&profile.password, &profile.password_env) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(var)) => Some(env_secret(var, "password")?),
            (None, None) => None,
        },
    };

    let host_key_policy = args
        .strict_host_key_checking
        .or_else(|| {
            hc.strict_host_key_checking
                .as_deref()
                .and_then(policy_from_config)
        })
        .unwrap_or_default();
    let mut known_hosts_files: Vec<PathBuf> = if hc.user_known_hosts_files.is_empty() {
        vec![ssh_dir.join("known_hosts"), ssh_dir.join("known_hosts2")]
    } else {
        hc.user_known_hosts_files.clone()
    };
    known_hosts_files.push(PathBuf::from("/etc/ssh/ssh_known_hosts"));
    let own_known_hosts = crate::config::own_known_hosts_path()?;
    known_hosts_files.push(own_known_hosts.clone());

    let jump_text = args
        .proxy_jump
        .clone()
        .or_else(|| profile.proxy_jump.clone())
        .or_else(|| hc.proxy_jump.clone());
    let proxy_jump = match jump_text {
        Some(text) => resolve_jumps(&text, &ssh_dir, &home, &me)?,
        None => Vec::new(),
    };

    if args.ready_timeout_ms == 0 {
        return Err(Error::usage("--ready-timeout-ms must be greater than 0"));
    }
    Ok(ConnectSpec {
        host,
        port,
        username,
        keys,
        default_keys,
        passphrase,
        password,
        agent_socket: std::env::var_os("SSH_AUTH_SOCK")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
        host_key_policy,
        known_hosts_files,
        own_known_hosts,
        ready_timeout_ms: args.ready_timeout_ms,
        proxy_jump,
        profile: args.profile.clone(),
        resolve_in_daemon: false,
    })
}

/// The spec of a client of a supervisor's daemon: only the profile name, resolved there.
fn deferred(args: &ConnectArgs) -> Result<ConnectSpec> {
    let inline = ConnectArgs {
        profile: None,
        ready_timeout_ms: 0,
        ..args.clone()
    };
    let name = match &args.profile {
        Some(p) if format!("{inline:?}") == format!("{:?}", ConnectArgs::default()) => p.clone(),
        _ => {
            return Err(Error::usage(
                "through AGENTSSH_SOCKET (a supervisor's daemon) name a profile with -p and nothing else; the daemon uses the supervisor's settings for it",
            ))
        }
    };
    Ok(ConnectSpec {
        host: String::new(),
        port: 0,
        username: String::new(),
        keys: Vec::new(),
        default_keys: Vec::new(),
        passphrase: None,
        password: None,
        agent_socket: None,
        host_key_policy: crate::wire::spec::HostKeyPolicy::default(),
        known_hosts_files: Vec::new(),
        own_known_hosts: PathBuf::new(),
        ready_timeout_ms: args.ready_timeout_ms,
        proxy_jump: Vec::new(),
        profile: Some(name),
        resolve_in_daemon: true,
    })
}

/// Resolves a spec a client left to the daemon ([`ConnectSpec::resolve_in_daemon`]) with
/// this process's own profiles and ssh settings.
pub fn resolve_deferred(spec: &ConnectSpec) -> Result<ConnectSpec> {
    let args = ConnectArgs {
        profile: spec.profile.clone(),
        ready_timeout_ms: spec.ready_timeout_ms.max(1),
        ..ConnectArgs::default()
    };
    resolve(&args)
}

/// Parses a jump chain; each hop's host may itself be an ssh_config alias.
fn resolve_jumps(
    text: &str,
    ssh_dir: &std::path::Path,
    home: &std::path::Path,
    me: &str,
) -> Result<Vec<JumpHost>> {
    let mut hops = Vec::new();
    for raw in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let explicit_user = raw.contains('@');
        let mut hop = JumpHost::parse(raw, me)?;
        let explicit_port = raw
            .rsplit(']')
            .next()
            .is_some_and(|tail| tail.contains(':'));
        let hc = ssh_config::resolve(&ssh_dir.join("config"), &hop.host, home, me)
            .map_err(|e| Error::usage(format!("cannot read ssh config: {e}")))?;
        if let Some(h) = hc.hostname {
            hop.host = h;
        }
        if !explicit_user {
            if let Some(u) = hc.user {
                hop.username = u;
            }
        }
        if !explicit_port {
            if let Some(p) = hc.port {
                hop.port = p;
            }
        }
        hops.push(hop);
    }
    Ok(hops)
}

fn expand_tilde(p: &std::path::Path, home: &std::path::Path) -> PathBuf {
    match p.strip_prefix("~") {
        Ok(rest) => home.join(rest),
        Err(_) => p.to_path_buf(),
    }
}

/// Warnings for secrets given on argv (text mode prints them on stderr).
pub fn argv_secret_warnings(args: &ConnectArgs) -> Vec<&'static str> {
    let mut w = Vec::new();
    if args.password.is_some() {
        w.push("warning: --password on the command line is visible to other users (ps); prefer --password-env");
    }
    if args.passphrase.is_some() {
        w.push("warning: --passphrase on the command line is visible to other users (ps); prefer --passphrase-env");
    }
    w
}
