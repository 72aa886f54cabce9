//! The demo's private world and its teardown.
//!
//! [`DemoEnv::create`] makes a 0700 temp dir holding a HOME, the XDG config/state/runtime/
//! data/cache dirs, a client key, and agentssh's own `known_hosts` already trusting the demo
//! server, then starts the server. Every process the demo starts (CLI calls, the private
//! daemon they autostart, the server's shells, the dashboard) gets these dirs in its
//! environment plus `AGENTSSH_DEMO=<run id>`, so nothing reaches the user's profiles,
//! `known_hosts`, log or daemon, and [`Cleanup::run`] can find every one of them by that
//! marker: it shuts the private daemon down through the CLI, kills by pid what is left,
//! stops the server and removes the temp dir. It is idempotent and runs on every exit path
//! (normal end, error, SIGINT, SIGTERM, SIGHUP).

use std::ffi::OsString;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::server::{self, DemoServer, Options};
use crate::error::{Error, Result};

/// The environment variable that marks every process of one demo run.
pub const MARKER: &str = "AGENTSSH_DEMO";

/// The demo's dirs, key and server.
pub struct DemoEnv {
    /// The temp dir holding everything.
    pub dir: PathBuf,
    /// The private HOME (also the server's HOME for its shells).
    pub home: PathBuf,
    /// The client key the demo profile uses.
    pub key_path: PathBuf,
    /// This run's marker value.
    pub run_id: String,
    /// The demo server's port.
    pub port: u16,
    /// The login name (the server runs everything as the current user anyway).
    pub user: String,
    /// Environment overrides for every process of the demo.
    pub env: Vec<(String, OsString)>,
}

fn io(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::local_io(what, &e)
}

fn mkdir(path: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(io("cannot create a demo directory"))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io("cannot write a demo file"))?;
    f.write_all(text.as_bytes())
        .map_err(io("cannot write a demo file"))
}

/// The user's shell: `$SHELL` when it is an absolute path that exists, else `/bin/sh`.
fn user_shell() -> PathBuf {
    std::env::var_os("SHELL")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && p.exists())
        .unwrap_or_else(|| PathBuf::from("/bin/sh"))
}

impl DemoEnv {
    /// Creates the private dirs and key, and starts the server (returned separately so the
    /// cleanup can own it).
    pub fn create() -> Result<(DemoEnv, DemoServer)> {
        use rand::RngCore;
        let mut raw = [0u8; 6];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let run_id = format!("{}-{}", std::process::id(), crate::hex(&raw));
        // Short: the daemon socket lives below it and socket paths are limited to 108 bytes.
        let dir = std::env::temp_dir().join(format!("agentssh-demo-{run_id}"));
        mkdir(&dir)?;
        let sub = |name: &str| dir.join(name);
        for d in ["home", "config", "state", "run", "data", "cache"] {
            mkdir(&sub(d))?;
        }
        mkdir(&sub("config").join("agentssh"))?;
        // zsh would otherwise start its new-user wizard in every demo shell.
        write_private(&sub("home").join(".zshrc"), "")?;
        let key = server::generate_ed25519("agentssh-demo-client")?;
        let key_path = sub("client_ed25519");
        let pem = key
            .to_openssh(russh::keys::ssh_key::LineEnding::LF)
            .map_err(|e| Error::internal(format!("cannot encode the demo key: {e}")))?;
        write_private(&key_path, &pem)?;
        let env: Vec<(String, OsString)> = vec![
            ("HOME".into(), sub("home").into()),
            ("XDG_CONFIG_HOME".into(), sub("config").into()),
            ("XDG_STATE_HOME".into(), sub("state").into()),
            ("XDG_RUNTIME_DIR".into(), sub("run").into()),
            ("XDG_DATA_HOME".into(), sub("data").into()),
            ("XDG_CACHE_HOME".into(), sub("cache").into()),
            (MARKER.into(), run_id.clone().into()),
        ];
        let server = DemoServer::start(Options {
            home: sub("home"),
            shell: user_shell(),
            env: env
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string_lossy().into_owned()))
                .collect(),
            client_key: key.public_key().clone(),
        })?;
        let known = format!("[127.0.0.1]:{} {}\n", server.port, server.host_key);
        write_private(&sub("config").join("agentssh").join("known_hosts"), &known)?;
        let user = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| "demo".into());
        let demo = DemoEnv {
            home: sub("home"),
            key_path,
            port: server.port,
            run_id,
            user,
            env,
            dir,
        };
        Ok((demo, server))
    }

    /// A command running this binary inside the demo's environment (SSH_AUTH_SOCK removed,
    /// so the user's agent keys are never offered).
    pub fn agentssh(&self) -> Result<Command> {
        let exe = std::env::current_exe().map_err(io("cannot find the agentssh binary"))?;
        let mut cmd = Command::new(exe);
        cmd.env_remove("SSH_AUTH_SOCK").current_dir(&self.home);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        Ok(cmd)
    }

    /// The line a second terminal needs to reach the demo, e.g. `env HOME=… agentssh …`.
    pub fn env_line(&self) -> String {
        let vars: Vec<String> = self
            .env
            .iter()
            .filter(|(k, _)| k != MARKER)
            .map(|(k, v)| format!("{k}={}", v.to_string_lossy()))
            .collect();
        format!("env {}", vars.join(" "))
    }
}

/// Everything to undo, behind a lock so the signal thread and the main thread never race.
pub struct Cleanup {
    state: Mutex<Option<Teardown>>,
    /// The signal that ended the demo (0: none).
    signal: AtomicI32,
}

struct Teardown {
    demo_cmd: Option<Command>,
    dir: PathBuf,
    run_id: String,
    server: DemoServer,
}

impl Cleanup {
    /// Takes charge of `server` and `demo`'s dir.
    pub fn new(demo: &DemoEnv, server: DemoServer) -> Cleanup {
        let mut shutdown = demo.agentssh().ok();
        if let Some(c) = shutdown.as_mut() {
            c.args(["--json", "daemon", "shutdown"]);
        }
        Cleanup {
            state: Mutex::new(Some(Teardown {
                demo_cmd: shutdown,
                dir: demo.dir.clone(),
                run_id: demo.run_id.clone(),
                server,
            })),
            signal: AtomicI32::new(0),
        }
    }

    /// Records that signal `no` ends the demo (before [`Cleanup::run`] on the signal path).
    pub fn interrupted(&self, no: i32) {
        self.signal.store(no, Ordering::SeqCst);
    }

    /// The exit code the process must end with: 128+signal after a signal, else `code`.
    pub fn exit_code(&self, code: i32) -> i32 {
        match self.signal.load(Ordering::SeqCst) {
            0 => code,
            no => 128 + no,
        }
    }

    /// Shuts the private daemon down, kills every marked process, stops the server, removes
    /// the temp dir. Returns what it did (for the last envelope); runs once.
    pub fn run(&self) -> Option<serde_json::Value> {
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut t = guard.take()?;
        let daemon_shutdown = t
            .demo_cmd
            .take()
            .map(|mut c| {
                run_with_deadline(&mut c, Duration::from_secs(10))
                    .is_some_and(|o| o.status.success())
            })
            .unwrap_or(false);
        let killed = kill_marked(&t.run_id);
        t.server.stop();
        // The server's children are marked too; a last sweep catches any started meanwhile.
        let killed = killed + kill_marked(&t.run_id);
        let removed = std::fs::remove_dir_all(&t.dir).is_ok() || !t.dir.exists();
        Some(serde_json::json!({
            "daemon_shutdown": daemon_shutdown,
            "processes_killed": killed,
            "server_stopped": true,
            "dir_removed": removed,
        }))
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.run();
    }
}

/// Runs `cmd` (stdin null, output captured), killing it after `deadline`.
pub fn run_with_deadline(cmd: &mut Command, deadline: Duration) -> Option<std::process::Output> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(deadline) {
        Ok(out) => out.ok(),
        Err(_) => {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            rx.recv_timeout(Duration::from_secs(5))
                .ok()
                .and_then(|o| o.ok())
        }
    }
}

/// Pids (not ours) whose environment holds `AGENTSSH_DEMO=<run_id>`.
pub fn marked_processes(run_id: &str) -> Vec<i32> {
    let needle = format!("{MARKER}={run_id}");
    let me = i32::try_from(std::process::id()).unwrap_or(0);
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
        })
        .collect()
}

/// SIGTERM every marked process, SIGKILL what is left after a grace period; returns how many
/// there were.
fn kill_marked(run_id: &str) -> usize {
    use nix::sys::signal::{kill, Signal};
    let pids = marked_processes(run_id);
    for &pid in &pids {
        let _ = kill(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && pids.iter().any(|&p| alive(p)) {
        // Waiting for processes we signalled to exit; there is nothing to block on.
        std::thread::sleep(Duration::from_millis(20));
    }
    for &pid in &pids {
        if alive(pid) {
            let _ = kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    pids.len()
}

/// Running and not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rfind(')')
            .and_then(|i| s[i + 1..].split_whitespace().next())
            .is_some_and(|st| st != "Z" && st != "X")
    })
}
