//! Integration-test harness shared by every `tests/*.rs` binary (`mod common;`).
//!
//! - [`Sshd`]: a real OpenSSH `sshd` on `127.0.0.1:<random free port>`, with its own temp
//!   dir (host key, `authorized_keys`, `sshd_config`, pid file, log), killed by pid on drop.
//!   A missing `sshd` or missing test user is a test *failure* that says to run
//!   `scripts/test-setup.sh`, never a silent skip.
//! - [`TestEnv`]: an isolated client environment (temp HOME and XDG dirs, a fresh ed25519
//!   client key) and helpers to run the `agentssh` binary inside it with a hard deadline.
//!   On drop it kills every process the binary left behind (e.g. its daemon).
//! - [`fault_proxy::FaultProxy`]: an in-process TCP proxy that can pass, delay, blackhole or
//!   reset traffic.
//! - [`late_listener::forward_after`]: a port that starts accepting only after a delay.
//! - [`wait_until`]: the only sanctioned way to wait in tests (poll a condition against a
//!   deadline; no bare sleeps).
//!
//! Needs root (sshd must switch to the test users) and the machine prepared by
//! `scripts/test-setup.sh`.
//!
//! Each test binary compiles this module separately and uses only part of it.
#![allow(dead_code)]

pub mod fault_proxy;
pub mod late_listener;
pub mod russh_server;
pub mod sessions;
pub mod tmux;

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

/// The local user tests log in as (created by `scripts/test-setup.sh`).
pub const TEST_USER: &str = "agentssh-test";
/// Its password (password authentication is enabled by default in [`SshdOptions`]).
pub const TEST_PASSWORD: &str = "agentssh-test-pw";
/// A second local user (login shell `/bin/sh`), used by benchmarks.
pub const BENCH_USER: &str = "agentssh-bench";

/// Absolute path of the OpenSSH server (sshd refuses to re-exec from a relative path).
pub const SSHD_BIN: &str = "/usr/sbin/sshd";
pub const SSH_KEYGEN_BIN: &str = "/usr/bin/ssh-keygen";
pub const SSH_BIN: &str = "/usr/bin/ssh";

/// Hard deadline for [`TestEnv::run`] and friends.
pub const RUN_DEADLINE: Duration = Duration::from_secs(60);

const SETUP_HINT: &str =
    "run scripts/test-setup.sh (installs openssh-server and creates the test users)";

/// Poll `cond` every 20 ms until it returns true or `deadline` passes; returns whether it
/// became true. `cond` is always evaluated at least once, and once more at the deadline.
/// The only sanctioned way to wait in tests; no bare sleeps.
pub fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return true;
        }
        let now = Instant::now();
        if now >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(20).min(end - now));
    }
}

/// Ask the kernel for a free TCP port on 127.0.0.1 (bind :0, read it, close). Racy by
/// nature; callers retry if someone else takes it first.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Whether a process with this pid exists (zombies included).
pub fn pid_alive(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_ok()
}

/// Whether a process with this pid exists and is not a zombie.
pub fn pid_running(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(stat_fields(&stat).first(), Some(&"Z") | Some(&"X")),
        Err(_) => false,
    }
}

/// Fields of `/proc/<pid>/stat` after the `(comm)` field: [state, ppid, pgrp, ...].
fn stat_fields(stat: &str) -> Vec<&str> {
    match stat.rfind(')') {
        Some(i) => stat[i + 1..].split_whitespace().collect(),
        None => Vec::new(),
    }
}

fn all_pids() -> Vec<u32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// All live descendants of `root` (children, grandchildren, ...), found through `/proc`.
pub fn descendants(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = all_pids()
        .into_iter()
        .filter_map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid = stat_fields(&stat).get(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(pid, ppid) in &parents {
            if ppid == p && !out.contains(&pid) {
                out.push(pid);
                frontier.push(pid);
            }
        }
    }
    out
}

/// Send `sig` to each pid, ignoring processes that are already gone.
pub fn signal_all(pids: &[u32], sig: Signal) {
    for &pid in pids {
        let _ = kill(Pid::from_raw(pid as i32), sig);
    }
}

/// SIGTERM the pids, wait up to `grace` for them to go away, then SIGKILL the rest.
pub fn terminate(pids: &[u32], grace: Duration) {
    signal_all(pids, Signal::SIGTERM);
    if !wait_until(grace, || pids.iter().all(|&p| !pid_running(p))) {
        signal_all(pids, Signal::SIGKILL);
    }
}

/// Kills every pid it holds (SIGTERM, then SIGKILL after 2 s) when dropped.
#[derive(Debug, Default)]
pub struct KillOnDrop(pub Vec<u32>);

impl KillOnDrop {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&mut self, pid: u32) {
        self.0.push(pid);
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        terminate(&self.0, Duration::from_secs(2));
    }
}

fn run_tool(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}; {SETUP_HINT}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Generate an unencrypted ed25519 key pair at `path` / `path.pub` with ssh-keygen.
pub fn keygen_ed25519(path: &Path, comment: &str) {
    run_tool(
        Command::new(SSH_KEYGEN_BIN)
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(path),
    );
}

/// `"ssh-ed25519 AAAA..."` (type and base64, no comment) from a `.pub` file.
fn read_pubkey(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    let mut fields = text.split_whitespace();
    match (fields.next(), fields.next()) {
        (Some(t), Some(b)) => format!("{t} {b}"),
        _ => panic!("malformed public key file {path:?}: {text:?}"),
    }
}

/// `SHA256:...` fingerprint of a public key file.
fn fingerprint(path: &Path) -> String {
    let out = run_tool(
        Command::new(SSH_KEYGEN_BIN)
            .args(["-l", "-E", "sha256", "-f"])
            .arg(path),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("unexpected ssh-keygen -l output: {text:?}"))
        .to_string()
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {path:?}: {e}"));
}

/// Fail (never skip) unless this machine can run a real sshd for the tests.
fn sshd_preflight() {
    for bin in [SSHD_BIN, SSH_KEYGEN_BIN] {
        if !Path::new(bin).exists() {
            panic!("{bin} not found: {SETUP_HINT}");
        }
    }
    for user in [TEST_USER, BENCH_USER] {
        match nix::unistd::User::from_name(user) {
            Ok(Some(_)) => {}
            _ => panic!("local user {user:?} does not exist: {SETUP_HINT}"),
        }
    }
    if !nix::unistd::geteuid().is_root() {
        panic!(
            "the sshd tests must run as root (sshd has to switch to the user {TEST_USER:?}); \
             run them as root, e.g. via scripts/test.sh"
        );
    }
    // sshd's privilege-separation dir lives on tmpfs and vanishes on reboot; recreating it
    // is harmless, and we are root anyway.
    if !Path::new("/run/sshd").is_dir() {
        if let Err(e) = fs::create_dir_all("/run/sshd") {
            panic!("/run/sshd is missing and cannot be created ({e}): {SETUP_HINT}");
        }
        chmod(Path::new("/run/sshd"), 0o755);
    }
}

/// Options for [`Sshd::start_with`].
#[derive(Debug, Clone)]
pub struct SshdOptions {
    /// `Subsystem sftp internal-sftp` (default true).
    pub sftp: bool,
    /// `PasswordAuthentication yes` (default true).
    pub password_auth: bool,
    /// `MaxSessions N` when set (sshd's default is 10).
    pub max_sessions: Option<u32>,
    /// Appended verbatim to the generated `sshd_config`.
    pub extra_config: String,
    /// Public key lines written to the server's `authorized_keys` (used by every user).
    pub authorized_keys: Vec<String>,
    /// Let `root` log in with a key (`PermitRootLogin prohibit-password`): OpenSSH runs a
    /// root session without a privilege-separated child, which changes what works (e.g. it
    /// refuses `signal` requests).
    pub permit_root: bool,
}

impl Default for SshdOptions {
    fn default() -> Self {
        SshdOptions {
            sftp: true,
            password_auth: true,
            max_sessions: None,
            extra_config: String::new(),
            authorized_keys: Vec::new(),
            permit_root: false,
        }
    }
}

/// A real OpenSSH sshd on 127.0.0.1:<random free port>, killed by pid on Drop.
///
/// Everything lives in `dir`: `host_ed25519{,.pub}`, `authorized_keys` (shared by all users,
/// absolute `AuthorizedKeysFile`), `sshd_config`, `sshd.pid`, `sshd.log` (LogLevel VERBOSE,
/// appended to across restarts) and `sshd.stderr`.
pub struct Sshd {
    pub port: u16,
    /// `"ssh-ed25519 AAAA..."` (no comment).
    pub host_key_pub: String,
    /// `"SHA256:..."`, as OpenSSH prints it.
    pub host_key_fingerprint: String,
    pub log_path: PathBuf,
    pub config_path: PathBuf,
    pub dir: TempDir,
    pub opts: SshdOptions,
    pid: u32,
    child: Option<Child>,
}

impl Sshd {
    /// Start with default options and these authorized public keys.
    pub fn start(authorized_keys: &[String]) -> Sshd {
        Sshd::start_with(SshdOptions {
            authorized_keys: authorized_keys.to_vec(),
            ..SshdOptions::default()
        })
    }

    pub fn start_with(opts: SshdOptions) -> Sshd {
        sshd_preflight();
        let dir = tempfile::Builder::new()
            .prefix("agentssh-sshd-")
            .tempdir()
            .expect("create sshd temp dir");
        // sshd reads authorized_keys as the target user, so the dir must be traversable.
        chmod(dir.path(), 0o755);
        let host_key = dir.path().join("host_ed25519");
        keygen_ed25519(&host_key, "agentssh-test-host");
        let host_pub = host_key.with_extension("pub");
        let mut sshd = Sshd {
            port: 0,
            host_key_pub: read_pubkey(&host_pub),
            host_key_fingerprint: fingerprint(&host_pub),
            log_path: dir.path().join("sshd.log"),
            config_path: dir.path().join("sshd_config"),
            dir,
            opts,
            pid: 0,
            child: None,
        };
        sshd.set_authorized_keys(&sshd.opts.authorized_keys.clone());

        // Port race: the free port we picked may be taken before sshd binds it. Retry.
        let mut last_error = String::new();
        for attempt in 0..5 {
            sshd.port = free_port();
            sshd.write_config();
            if attempt == 0 {
                sshd.check_config();
            }
            match sshd.spawn() {
                Ok(()) => return sshd,
                Err(e) => last_error = e,
            }
        }
        panic!("sshd could not start after 5 attempts; last error:\n{last_error}");
    }

    /// The listener's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `[127.0.0.1]:PORT ssh-ed25519 AAAA...`, for pre-seeding a known_hosts file.
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port, self.host_key_pub)
    }

    /// `"127.0.0.1:PORT"`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Replace the server's authorized_keys (takes effect for new authentications).
    pub fn set_authorized_keys(&mut self, keys: &[String]) {
        self.opts.authorized_keys = keys.to_vec();
        let path = self.dir.path().join("authorized_keys");
        let mut text = keys.join("\n");
        text.push('\n');
        fs::write(&path, text).expect("write authorized_keys");
        chmod(&path, 0o644);
    }

    /// The sshd log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Number of TCP connections sshd has accepted so far (its `Connection from ...` log
    /// lines), across restarts. The harness itself never connects, so this counts only the
    /// clients under test: use it to prove connection pooling.
    pub fn connection_count(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("Connection from "))
            .count()
    }

    /// Kill every existing connection (all per-connection sshd processes and their
    /// sessions) while the listener keeps accepting new ones.
    pub fn kill_connections(&self) {
        let pids = self.connection_pids();
        signal_all(&pids, Signal::SIGKILL);
        wait_until(Duration::from_secs(5), || {
            pids.iter().all(|&p| !pid_running(p))
        });
    }

    /// Per-connection sshd processes (descendants of the listener) plus session processes
    /// that outlived their connection (a remote `sleep` whose connection dropped is
    /// reparented to init): those whose SSH_CONNECTION names this server's port.
    /// Only while running: once stopped, the port may belong to someone else.
    fn connection_pids(&self) -> Vec<u32> {
        if self.child.is_none() {
            return Vec::new();
        }
        let mut pids = descendants(self.pid);
        let suffix = format!(" 127.0.0.1 {}", self.port);
        for pid in all_pids() {
            if pids.contains(&pid) || pid == self.pid {
                continue;
            }
            let Ok(env) = fs::read(format!("/proc/{pid}/environ")) else {
                continue;
            };
            let ours = env.split(|&b| b == 0).any(|kv| {
                kv.strip_prefix(b"SSH_CONNECTION=")
                    .is_some_and(|v| v.ends_with(suffix.as_bytes()))
            });
            if ours {
                pids.push(pid);
            }
        }
        pids
    }

    /// Stop the server: kill its connections and the listener; the port is closed until
    /// [`Sshd::restart_same_port`]. Idempotent.
    pub fn stop(&mut self) {
        if self.child.is_none() {
            return;
        }
        let kids = self.connection_pids();
        signal_all(&kids, Signal::SIGKILL);
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
        let exited = wait_until(Duration::from_secs(5), || {
            matches!(child.try_wait(), Ok(Some(_)))
        });
        if !exited {
            let _ = child.kill();
            let _ = child.wait();
        }
        wait_until(Duration::from_secs(5), || {
            kids.iter().all(|&p| !pid_running(p))
        });
    }

    /// Stop (if running) and start sshd again on the same port with the same host key and
    /// config. The log is appended to, so [`Sshd::connection_count`] keeps counting.
    pub fn restart_same_port(&mut self) {
        self.stop();
        let mut last_error = String::new();
        // SO_REUSEADDR makes TIME_WAIT harmless; retry only for a stray process grabbing
        // the port in between.
        let ok = wait_until(Duration::from_secs(10), || match self.spawn() {
            Ok(()) => true,
            Err(e) => {
                last_error = e;
                false
            }
        });
        if !ok {
            panic!(
                "sshd could not restart on port {}:\n{last_error}",
                self.port
            );
        }
    }

    fn config_text(&self, with_optional: bool) -> String {
        let d = self.dir.path().display();
        let mut c = String::new();
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let _ = writeln!(c, "ListenAddress 127.0.0.1");
        let _ = writeln!(c, "Port {}", self.port);
        let _ = writeln!(c, "HostKey {d}/host_ed25519");
        let _ = writeln!(c, "PidFile {d}/sshd.pid");
        let _ = writeln!(c, "AuthorizedKeysFile {d}/authorized_keys");
        let _ = writeln!(c, "UsePAM no");
        let _ = writeln!(c, "StrictModes no");
        let _ = writeln!(
            c,
            "PasswordAuthentication {}",
            yes_no(self.opts.password_auth)
        );
        let _ = writeln!(c, "PermitEmptyPasswords no");
        let _ = writeln!(c, "KbdInteractiveAuthentication no");
        let _ = writeln!(c, "PubkeyAuthentication yes");
        if self.opts.permit_root {
            let _ = writeln!(c, "PermitRootLogin prohibit-password");
            let _ = writeln!(c, "AllowUsers {TEST_USER} {BENCH_USER} root");
        } else {
            let _ = writeln!(c, "PermitRootLogin no");
            let _ = writeln!(c, "AllowUsers {TEST_USER} {BENCH_USER}");
        }
        if self.opts.sftp {
            let _ = writeln!(c, "Subsystem sftp internal-sftp");
        }
        let _ = writeln!(c, "LogLevel VERBOSE");
        let _ = writeln!(c, "MaxStartups 100:30:200");
        if let Some(n) = self.opts.max_sessions {
            let _ = writeln!(c, "MaxSessions {n}");
        }
        let _ = writeln!(c, "ClientAliveInterval 0");
        let _ = writeln!(c, "UseDNS no");
        let _ = writeln!(c, "PrintMotd no");
        let _ = writeln!(c, "PrintLastLog no");
        let _ = writeln!(c, "X11Forwarding no");
        let _ = writeln!(c, "AllowTcpForwarding yes");
        if with_optional {
            // OpenSSH >= 9.8 penalises addresses whose connections fail auth or crash;
            // every test client is 127.0.0.1, so that would make tests interfere.
            let _ = writeln!(c, "PerSourcePenalties no");
        }
        if !self.opts.extra_config.is_empty() {
            let _ = writeln!(c, "{}", self.opts.extra_config);
        }
        c
    }

    fn write_config(&self) {
        let with_optional = supports_per_source_penalties();
        fs::write(&self.config_path, self.config_text(with_optional)).expect("write sshd_config");
    }

    /// `sshd -t`: a readable failure for a bad config instead of a silent exit.
    fn check_config(&self) {
        let out = Command::new(SSHD_BIN)
            .arg("-t")
            .arg("-f")
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {SSHD_BIN}: {e}; {SETUP_HINT}"));
        if !out.status.success() {
            panic!(
                "sshd -t rejected the test config ({}):\n{}\n--- config ---\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                fs::read_to_string(&self.config_path).unwrap_or_default()
            );
        }
    }

    /// Start the listener on `self.port` and wait until it listens (its "Server listening"
    /// log line, so no probe connection shows up in `connection_count`). Err with the
    /// output if sshd exited (e.g. the port was taken).
    fn spawn(&mut self) -> Result<(), String> {
        let stderr_path = self.dir.path().join("sshd.stderr");
        let stderr = fs::File::create(&stderr_path).expect("create sshd.stderr");
        let log_before = self.log().len();
        let mut child = Command::new(SSHD_BIN)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&self.config_path)
            .arg("-E")
            .arg(&self.log_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {SSHD_BIN}: {e}; {SETUP_HINT}"));
        let needle = format!("Server listening on 127.0.0.1 port {}.", self.port);
        let mut exited: Option<ExitStatus> = None;
        let listening = wait_until(Duration::from_secs(10), || {
            if self
                .log()
                .get(log_before..)
                .is_some_and(|l| l.contains(&needle))
            {
                return true;
            }
            if let Ok(Some(st)) = child.try_wait() {
                exited = Some(st);
                return true;
            }
            false
        });
        let report = |what: &str| {
            format!(
                "sshd on port {} {what}\n--- sshd.log ---\n{}\n--- sshd.stderr ---\n{}",
                self.port,
                self.log().get(log_before..).unwrap_or(""),
                fs::read_to_string(&stderr_path).unwrap_or_default()
            )
        };
        if let Some(st) = exited {
            return Err(report(&format!("exited with {st}")));
        }
        if !listening {
            let _ = child.kill();
            let _ = child.wait();
            return Err(report("did not start listening within 10 s"));
        }
        self.pid = child.id();
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether this sshd knows `PerSourcePenalties` (OpenSSH >= 9.8). Probed once.
fn supports_per_source_penalties() -> bool {
    static CACHE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CACHE.get_or_init(|| {
        let out = Command::new(SSHD_BIN)
            .args(["-V"])
            .stdin(Stdio::null())
            .output();
        let Ok(out) = out else { return false };
        // "OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL ..." on stderr.
        let text = String::from_utf8_lossy(&out.stderr);
        let Some(ver) = text
            .split_whitespace()
            .next()
            .and_then(|v| v.strip_prefix("OpenSSH_"))
        else {
            return false;
        };
        let mut nums = ver
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse::<u32>().ok());
        let (major, minor) = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
        (major, minor) >= (9, 8)
    })
}

static ENV_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An isolated client environment: temp HOME, XDG_CONFIG_HOME, XDG_STATE_HOME,
/// XDG_DATA_HOME, XDG_CACHE_HOME, XDG_RUNTIME_DIR (0700), and a fresh ed25519 client key at
/// `$HOME/.ssh/id_ed25519` (no passphrase) generated with ssh-keygen.
///
/// Every process started through [`TestEnv::cmd`] carries `AGENTSSH_TEST_ENV=<unique id>`;
/// on drop, every process whose environment has that id or this env's XDG_RUNTIME_DIR
/// (the agentssh daemon, stray children) is killed by pid.
pub struct TestEnv {
    pub dir: TempDir,
    pub home: PathBuf,
    pub config_home: PathBuf,
    pub state_home: PathBuf,
    pub data_home: PathBuf,
    pub cache_home: PathBuf,
    pub runtime_dir: PathBuf,
    /// Value of `AGENTSSH_TEST_ENV` in processes started from this env.
    pub id: String,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        // Short prefix: the daemon's unix socket lives under XDG_RUNTIME_DIR and socket
        // paths are limited to 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("ase-")
            .tempdir()
            .expect("create TestEnv temp dir");
        let p = dir.path();
        let home = p.join("home");
        let config_home = p.join("config");
        let state_home = p.join("state");
        let data_home = p.join("data");
        let cache_home = p.join("cache");
        let runtime_dir = p.join("run");
        for d in [
            &home,
            &config_home,
            &state_home,
            &data_home,
            &cache_home,
            &runtime_dir,
        ] {
            fs::create_dir_all(d).unwrap_or_else(|e| panic!("mkdir {d:?}: {e}"));
            chmod(d, 0o700);
        }
        let ssh_dir = home.join(".ssh");
        fs::create_dir_all(&ssh_dir).expect("mkdir ~/.ssh");
        chmod(&ssh_dir, 0o700);
        if !Path::new(SSH_KEYGEN_BIN).exists() {
            panic!("{SSH_KEYGEN_BIN} not found: {SETUP_HINT}");
        }
        keygen_ed25519(&ssh_dir.join("id_ed25519"), "agentssh-test-client");
        let id = format!(
            "{}-{}-{}",
            std::process::id(),
            ENV_COUNTER.fetch_add(1, Ordering::Relaxed),
            p.file_name().unwrap().to_string_lossy()
        );
        TestEnv {
            dir,
            home,
            config_home,
            state_home,
            data_home,
            cache_home,
            runtime_dir,
            id,
        }
    }

    /// The client's private key, `$HOME/.ssh/id_ed25519`.
    pub fn key_path(&self) -> PathBuf {
        self.home.join(".ssh").join("id_ed25519")
    }

    /// The client's public key line (`ssh-ed25519 AAAA... agentssh-test-client`).
    pub fn client_pubkey(&self) -> String {
        let path = self.key_path().with_extension("pub");
        fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {path:?}: {e}"))
            .trim()
            .to_string()
    }

    /// `$HOME/.ssh/known_hosts`.
    pub fn known_hosts_path(&self) -> PathBuf {
        self.home.join(".ssh").join("known_hosts")
    }

    /// Append the server's host key to `$HOME/.ssh/known_hosts` (once).
    pub fn trust_host(&self, sshd: &Sshd) {
        self.trust_host_as(sshd, sshd.port);
    }

    /// `agentssh profile add NAME` for `sshd` as [`TEST_USER`] with this env's key; panics
    /// unless it succeeds.
    pub fn add_profile(&self, name: &str, sshd: &Sshd) {
        let port = sshd.port.to_string();
        let key = self.key_path().display().to_string();
        let (v, rc) = self.json(&[
            "--json",
            "profile",
            "add",
            name,
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--username",
            TEST_USER,
            "--private-key-path",
            &key,
        ]);
        assert!(
            rc == 0 && v["ok"] == true,
            "profile add {name} (rc {rc}): {v}"
        );
    }

    /// Record `sshd`'s host key for `[127.0.0.1]:port` (e.g. a proxy in front of it).
    pub fn trust_host_as(&self, sshd: &Sshd, port: u16) {
        self.trust_known_hosts_line(&format!("[127.0.0.1]:{port} {}", sshd.host_key_pub));
    }

    /// Append a known_hosts `line` to `$HOME/.ssh/known_hosts` (once), e.g. the in-process
    /// russh server's [`russh_server::RusshServer::known_hosts_line`].
    pub fn trust_known_hosts_line(&self, line: &str) {
        let path = self.known_hosts_path();
        let existing = fs::read_to_string(&path).unwrap_or_default();
        if existing.lines().any(|l| l == line) {
            return;
        }
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("open known_hosts");
        writeln!(f, "{line}").expect("write known_hosts");
    }

    /// Apply this environment to `cmd`: `env_clear()` plus PATH, HOME, XDG_*, USER/LOGNAME,
    /// LANG=C.UTF-8 and the AGENTSSH_TEST_ENV marker (RUST_BACKTRACE and RUST_LOG pass
    /// through when set). SSH_AUTH_SOCK is therefore absent. Working dir: HOME.
    pub fn apply_env(&self, cmd: &mut Command) {
        let user = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| "root".to_string());
        let path = std::env::var_os("PATH").unwrap_or_else(|| {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
        });
        cmd.env_clear()
            .env("PATH", path)
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", &self.config_home)
            .env("XDG_STATE_HOME", &self.state_home)
            .env("XDG_DATA_HOME", &self.data_home)
            .env("XDG_CACHE_HOME", &self.cache_home)
            .env("XDG_RUNTIME_DIR", &self.runtime_dir)
            .env("USER", &user)
            .env("LOGNAME", &user)
            .env("LANG", "C.UTF-8")
            .env("AGENTSSH_TEST_ENV", &self.id)
            .current_dir(&self.home);
        for var in ["RUST_BACKTRACE", "RUST_LOG"] {
            if let Some(v) = std::env::var_os(var) {
                cmd.env(var, v);
            }
        }
    }

    /// `Command` for the agentssh binary inside this environment (see [`TestEnv::apply_env`]).
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_agentssh"));
        self.apply_env(&mut cmd);
        cmd
    }

    /// Run agentssh with `args` (stdin: /dev/null) under [`RUN_DEADLINE`].
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, None, RUN_DEADLINE)
    }

    /// Run agentssh with `args`, feeding `stdin`, under [`RUN_DEADLINE`].
    pub fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        self.run_with(args, Some(stdin), RUN_DEADLINE)
    }

    /// Run agentssh; `stdin: None` means /dev/null. Panics if the deadline passes (the child
    /// is killed first).
    pub fn run_with(&self, args: &[&str], stdin: Option<&[u8]>, deadline: Duration) -> Output {
        let mut cmd = self.cmd();
        cmd.args(args);
        output_with_deadline(cmd, stdin, deadline)
    }

    /// Run agentssh and parse stdout as exactly one JSON document; returns it and the exit
    /// code. Panics, showing stdout and stderr, if stdout is not one JSON document.
    pub fn json(&self, args: &[&str]) -> (serde_json::Value, i32) {
        parse_json_output(&self.run(args), args)
    }

    /// [`TestEnv::json`] with stdin bytes.
    pub fn json_stdin(&self, args: &[&str], stdin: &[u8]) -> (serde_json::Value, i32) {
        parse_json_output(&self.run_stdin(args, stdin), args)
    }

    /// The OpenSSH client (`ssh`), not agentssh, set up to log in to `sshd` as
    /// [`TEST_USER`] with this env's key (see [`TestEnv::openssh_opts`]). Append the remote
    /// command.
    pub fn openssh(&self, sshd: &Sshd) -> Command {
        self.openssh_to(sshd, sshd.port, TEST_USER)
    }

    /// `ssh ... -p port user@127.0.0.1`: `port` may be a proxy in front of `sshd`.
    /// Append only the remote command: ssh treats anything after the destination as part
    /// of it. To change an option use [`TestEnv::openssh_with`].
    pub fn openssh_to(&self, sshd: &Sshd, port: u16, user: &str) -> Command {
        self.openssh_with(sshd, port, user, &[])
    }

    /// Like [`TestEnv::openssh_to`], with `extra` ssh arguments (e.g.
    /// `["-o", "ConnectTimeout=2"]`) placed before the harness defaults, so they win: ssh
    /// keeps the first value given for an option.
    pub fn openssh_with(&self, sshd: &Sshd, port: u16, user: &str, extra: &[&str]) -> Command {
        let mut cmd = Command::new(SSH_BIN);
        self.apply_env(&mut cmd);
        cmd.args(extra)
            .args(self.openssh_opts(sshd, port))
            .arg("-p")
            .arg(port.to_string())
            .arg(format!("{user}@127.0.0.1"));
        cmd
    }

    /// Options for OpenSSH clients (ssh, sftp, scp) talking to `sshd` via 127.0.0.1:`port`:
    /// `-F /dev/null`, BatchMode, IdentitiesOnly with this env's key, and
    /// StrictHostKeyChecking against `$HOME/.ssh/known_hosts`, pre-seeded with `sshd`'s host
    /// key under `[127.0.0.1]:port`. No port or destination (ssh says `-p`, sftp `-P`).
    /// OpenSSH finds `~/.ssh` through the passwd entry, not HOME, hence the explicit paths.
    pub fn openssh_opts(&self, sshd: &Sshd, port: u16) -> Vec<String> {
        self.trust_host_as(sshd, port);
        let mut opts: Vec<String> = vec!["-F".into(), "/dev/null".into()];
        for o in [
            format!("UserKnownHostsFile={}", self.known_hosts_path().display()),
            "GlobalKnownHostsFile=/dev/null".into(),
            "StrictHostKeyChecking=yes".into(),
            "BatchMode=yes".into(),
            "IdentitiesOnly=yes".into(),
            "ConnectTimeout=10".into(),
            "LogLevel=ERROR".into(),
        ] {
            opts.push("-o".into());
            opts.push(o);
        }
        opts.push("-i".into());
        opts.push(self.key_path().display().to_string());
        opts
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let me = std::process::id();
        let marker = format!("AGENTSSH_TEST_ENV={}", self.id);
        let runtime = format!("XDG_RUNTIME_DIR={}", self.runtime_dir.display());
        let ours: Vec<u32> = all_pids()
            .into_iter()
            .filter(|&pid| pid != me)
            .filter(|pid| {
                let Ok(env) = fs::read(format!("/proc/{pid}/environ")) else {
                    return false;
                };
                env.split(|&b| b == 0)
                    .any(|kv| kv == marker.as_bytes() || kv == runtime.as_bytes())
            })
            .collect();
        terminate(&ours, Duration::from_secs(2));
    }
}

/// Parse `out.stdout` as exactly one JSON document; returns it and the exit code.
pub fn parse_json_output(out: &Output, what: &[&str]) -> (serde_json::Value, i32) {
    let code = out
        .status
        .code()
        .unwrap_or_else(|| panic!("{what:?} was killed by a signal: {}", show_output(out)));
    match serde_json::from_slice::<serde_json::Value>(&out.stdout) {
        Ok(v) => (v, code),
        Err(e) => panic!(
            "{what:?}: stdout is not exactly one JSON document ({e}); exit {code}\n{}",
            show_output(out)
        ),
    }
}

/// stdout and stderr of `out`, for panic messages.
pub fn show_output(out: &Output) -> String {
    format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Reads a pipe to EOF on a thread; the bytes so far are visible at any time.
struct Collector {
    buf: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl Collector {
    fn new(mut r: impl Read + Send + 'static) -> Collector {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = mpsc::channel();
        let b = buf.clone();
        thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            loop {
                match r.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => b.lock().unwrap().extend_from_slice(&chunk[..n]),
                }
            }
            let _ = tx.send(());
        });
        Collector { buf, done }
    }
    fn snapshot(&self) -> Vec<u8> {
        self.buf.lock().unwrap().clone()
    }
}

/// Run `cmd` to completion with stdout/stderr captured and optional stdin bytes
/// (`None`: /dev/null). If it has not exited within `deadline` it is killed and the test
/// panics, showing what it printed. Also panics if its stdout/stderr stay open for 5 s
/// after it exits (a process it started, e.g. a daemon, inherited them: that would hang
/// any caller capturing its output).
pub fn output_with_deadline(mut cmd: Command, stdin: Option<&[u8]>, deadline: Duration) -> Output {
    let desc = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {desc}: {e}"));
    let pid = child.id();
    if let Some(bytes) = stdin {
        let mut w = child.stdin.take().unwrap();
        let bytes = bytes.to_vec();
        // Errors (EPIPE when the child does not read stdin) are the child's business.
        thread::spawn(move || {
            let _ = w.write_all(&bytes);
        });
    }
    let out = Collector::new(child.stdout.take().unwrap());
    let err = Collector::new(child.stderr.take().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(deadline) {
        Ok(st) => st.unwrap_or_else(|e| panic!("wait for {desc}: {e}")),
        Err(_) => {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            let _ = rx.recv_timeout(Duration::from_secs(5));
            panic!(
                "{desc} did not finish within {deadline:?}; killed it (pid {pid})\n\
                 --- stdout ---\n{}\n--- stderr ---\n{}",
                String::from_utf8_lossy(&out.snapshot()),
                String::from_utf8_lossy(&err.snapshot())
            );
        }
    };
    for (name, c) in [("stdout", &out), ("stderr", &err)] {
        if c.done.recv_timeout(Duration::from_secs(5)).is_err() {
            panic!(
                "{desc} exited ({status}) but its {name} stayed open: a process it started \
                 inherited the pipe\n--- stdout ---\n{}\n--- stderr ---\n{}",
                String::from_utf8_lossy(&out.snapshot()),
                String::from_utf8_lossy(&err.snapshot())
            );
        }
    }
    Output {
        status,
        stdout: out.snapshot(),
        stderr: err.snapshot(),
    }
}
