//! `agentssh demo`: the built-in SSH server (every tier of the product against it) and the
//! headless demo run (every step ok, nothing left behind, the user's files untouched).

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use agentssh::demo::server::{DemoServer, Options};
use common::*;
use serde_json::Value;

/// Processes whose environment carries `marker` (`NAME=value`).
fn processes_with_env(marker: &str) -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

/// A demo server that accepts `env`'s key, its children marked with `marker`.
fn start_server(env: &TestEnv, marker: &str) -> DemoServer {
    start_server_for(env, marker, &env.client_pubkey())
}

/// A demo server that accepts only the public key `accepted`.
fn start_server_for(env: &TestEnv, marker: &str, accepted: &str) -> DemoServer {
    let key = russh::keys::PublicKey::from_openssh(accepted).expect("parse client key");
    let (name, value) = marker.split_once('=').expect("marker NAME=value");
    let server = DemoServer::start(Options {
        home: env.home.clone(),
        shell: "/bin/bash".into(),
        env: vec![(name.to_string(), value.to_string())],
        client_key: key,
    })
    .expect("start the demo server");
    env.trust_known_hosts_line(&format!("[127.0.0.1]:{} {}", server.port, server.host_key));
    server
}

fn ok_data(env: &TestEnv, args: &[&str]) -> Value {
    let (v, rc) = env.json(args);
    assert_eq!(v["ok"], true, "{args:?}: {v}");
    assert_eq!(rc, 0, "{args:?}: {v}");
    v["data"].clone()
}

#[test]
fn demo_server_serves_exec_pty_sftp_and_forwards() {
    let env = TestEnv::new();
    let marker = format!("AGENTSSH_DEMO_TEST={}", env.id);
    let mut server = start_server(&env, &marker);
    let port = server.port.to_string();
    let user = "demo";
    let key = env.key_path();
    let key = key.to_str().expect("utf-8 key path");
    let target = [
        "-H",
        "127.0.0.1",
        "-P",
        &port,
        "-u",
        user,
        "--private-key-path",
        key,
    ];
    let with = |head: &[&str], tail: &[&str]| -> Vec<String> {
        head.iter()
            .chain(target.iter())
            .chain(tail.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let run = |args: Vec<String>| -> (Value, i32) {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        env.json(&refs)
    };

    // exec: stdout, stderr and the exit status, through $SHELL -c.
    let (v, rc) = run(with(
        &["--json", "exec"],
        &["--", "echo out; echo err >&2; exit 3"],
    ));
    assert_eq!(rc, 3, "{v}");
    assert_eq!(v["data"]["stdout"], "out\n", "{v}");
    assert_eq!(v["data"]["stderr"], "err\n", "{v}");
    assert_eq!(v["data"]["exit_status"], 3, "{v}");
    // A signal is reported as a signal.
    let (v, _) = run(with(&["--json", "exec"], &["--", "kill -TERM $$"]));
    assert_eq!(v["data"]["exit_signal"], "TERM", "{v}");

    // PTY session: run a command in the shell, resize it (window-change reaches the PTY).
    let (v, rc) = run(with(
        &["--json", "connect"],
        &["--name", "t", "--cols", "100", "--rows", "30"],
    ));
    assert_eq!(rc, 0, "{v}");
    let d = ok_data(
        &env,
        &[
            "--json",
            "session",
            "run",
            "-s",
            "t",
            "--",
            "echo $((6*7)); stty size",
        ],
    );
    assert_eq!(d["exit_status"], 0, "{d}");
    let out = d["output"].as_str().unwrap_or_default();
    assert!(out.contains("42") && out.contains("30 100"), "{d}");
    ok_data(
        &env,
        &[
            "--json", "session", "resize", "-s", "t", "--cols", "90", "--rows", "20",
        ],
    );
    let d = ok_data(
        &env,
        &["--json", "session", "run", "-s", "t", "--", "stty size"],
    );
    assert!(
        d["output"].as_str().unwrap_or_default().contains("20 90"),
        "{d}"
    );

    // SFTP: write, read back, list; the file lands in the server's HOME.
    let (v, rc) = run(with(
        &["--json", "file", "write"],
        &[
            "--remote",
            "hello.txt",
            "--content",
            "hi from sftp\n",
            "--method",
            "sftp",
        ],
    ));
    assert_eq!(rc, 0, "{v}");
    assert_eq!(
        std::fs::read_to_string(env.home.join("hello.txt")).unwrap(),
        "hi from sftp\n"
    );
    let (v, rc) = run(with(
        &["--json", "file", "read"],
        &["--remote", "hello.txt", "--method", "sftp"],
    ));
    assert_eq!(rc, 0, "{v}");
    assert_eq!(v["data"]["content"], "hi from sftp\n", "{v}");

    // Local forward through direct-tcpip to the server's own port: the SSH banner comes back.
    let local = format!("127.0.0.1:{}", free_port());
    let remote = format!("127.0.0.1:{port}");
    let (v, rc) = run(with(
        &["--json", "proxy", "create"],
        &["--local", &local, "--remote", &remote],
    ));
    assert_eq!(rc, 0, "{v}");
    let mut s = TcpStream::connect(&local).expect("connect to the forward");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut banner = [0u8; 8];
    s.read_exact(&mut banner)
        .expect("banner through the forward");
    assert_eq!(&banner, b"SSH-2.0-");
    drop(s);

    // Stopping the server ends the shell it started (the session's PTY child).
    assert!(
        !processes_with_env(&marker).is_empty(),
        "the PTY shell should be running"
    );
    ok_data(&env, &["--json", "daemon", "shutdown"]);
    server.stop();
    assert!(
        wait_until(Duration::from_secs(10), || processes_with_env(&marker)
            .is_empty()),
        "left running: {:?}",
        processes_with_env(&marker)
    );
    assert!(
        TcpStream::connect(("127.0.0.1", server.port)).is_err(),
        "still listening"
    );
}

#[test]
fn demo_server_accepts_only_its_client_key() {
    let env = TestEnv::new();
    let marker = format!("AGENTSSH_DEMO_TEST={}", env.id);
    let accepted = env.dir.path().join("accepted_key");
    keygen_ed25519(&accepted, "the-demo-key");
    let accepted_pub = std::fs::read_to_string(accepted.with_extension("pub")).unwrap();
    let server = start_server_for(&env, &marker, accepted_pub.trim());
    let port = server.port.to_string();
    let base = [
        "--json",
        "exec",
        "--direct",
        "-H",
        "127.0.0.1",
        "-P",
        &port,
        "-u",
        "demo",
    ];
    // The client's own default key (~/.ssh/id_ed25519) is refused...
    let (v, rc) = env.json(&[&base[..], &["--", "true"]].concat());
    assert_eq!(v["code"], "auth_failed", "{v}");
    assert_eq!(rc, 255, "{v}");
    // ...and the demo's key is accepted.
    let key = accepted.to_str().unwrap();
    let (v, rc) = env.json(&[&base[..], &["--private-key-path", key, "--", "true"]].concat());
    assert_eq!((v["ok"].clone(), rc), (Value::Bool(true), 0), "{v}");
}

/// Every envelope line of a headless run; panics on a line that is not JSON.
fn envelopes(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// What a finished run must not leave: its temp dir, its server port, its processes.
fn assert_nothing_left(setup: &Value) {
    let dir = setup["dir"].as_str().expect("setup.dir");
    let run_id = setup["run_id"].as_str().expect("setup.run_id");
    let server = setup["server"].as_str().expect("setup.server");
    assert!(
        !std::path::Path::new(dir).exists(),
        "temp dir {dir} left behind"
    );
    assert!(
        TcpStream::connect(server).is_err(),
        "{server} still listening"
    );
    let marker = format!("AGENTSSH_DEMO={run_id}");
    assert!(
        wait_until(Duration::from_secs(5), || processes_with_env(&marker)
            .is_empty()),
        "processes left: {:?}",
        processes_with_env(&marker)
    );
}

#[test]
fn headless_demo_runs_every_step_and_leaves_nothing() {
    let env = TestEnv::new();
    let out = env.run_with(&["demo", "--headless"], None, Duration::from_secs(180));
    let lines = envelopes(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", show_output(&out));
    assert!(
        lines.iter().all(|v| v["ok"] == true),
        "{}",
        show_output(&out)
    );
    let steps: Vec<&str> = lines
        .iter()
        .filter_map(|v| v["data"]["step"].as_str())
        .collect();
    for want in [
        "setup",
        "profile_add",
        "exec",
        "file_write",
        "file_read",
        "connect",
        "session_run",
        "session_screen",
        "session_exec",
        "proxy_create",
        "proxy_use",
        "deploy_prompt",
        "deploy_answer",
        "deploy_done",
        "session_list",
        "cleanup",
    ] {
        assert!(steps.contains(&want), "no step {want} in {steps:?}");
    }
    let last = lines.last().expect("a cleanup envelope");
    assert_eq!(last["data"]["result"]["daemon_shutdown"], true, "{last}");
    assert_nothing_left(&lines[0]["data"]["result"]);
}

/// Path → (mode, bytes) of every file below `root`.
fn tree(root: &std::path::Path) -> Vec<(String, u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p.clone());
            }
            let bytes = if m.is_file() {
                std::fs::read(&p).unwrap_or_default()
            } else {
                Vec::new()
            };
            out.push((p.display().to_string(), m.permissions().mode(), bytes));
        }
    }
    out.sort();
    out
}

#[test]
fn demo_leaves_the_users_files_and_daemon_alone() {
    let env = TestEnv::new();
    let d = ok_data(
        &env,
        &[
            "--json",
            "profile",
            "add",
            "prod",
            "--host",
            "app.example.com",
            "--username",
            "deploy",
        ],
    );
    assert_eq!(d["name"], "prod");
    env.trust_known_hosts_line("[app.example.com]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl");
    std::fs::write(
        env.home.join(".ssh").join("config"),
        "Host prod\n  HostName app.example.com\n",
    )
    .unwrap();
    // The user's own daemon, started the usual way.
    ok_data(&env, &["--json", "session", "list"]);
    let daemon = ok_data(&env, &["--json", "daemon", "status"]);
    let pid = daemon["pid"].as_u64().expect("daemon pid") as u32;
    let before = (
        tree(&env.home),
        tree(&env.config_home),
        tree(&env.state_home),
        tree(&env.runtime_dir),
    );

    let out = env.run_with(&["demo", "--headless"], None, Duration::from_secs(180));
    assert_eq!(out.status.code(), Some(0), "{}", show_output(&out));

    let after = (
        tree(&env.home),
        tree(&env.config_home),
        tree(&env.state_home),
        tree(&env.runtime_dir),
    );
    assert!(before == after, "the user's files changed");
    assert!(pid_running(pid), "the user's daemon was stopped");
    let again = ok_data(&env, &["--json", "daemon", "status"]);
    assert_eq!(again["pid"].as_u64(), Some(u64::from(pid)), "{again}");
    assert_eq!(
        again["sessions"], 0,
        "the demo's sessions ended up in the user's daemon: {again}"
    );
}

#[test]
fn demo_cleans_up_when_killed_with_sigterm() {
    use std::io::BufRead;
    let env = TestEnv::new();
    let mut cmd = env.cmd();
    cmd.args(["demo", "--headless"])
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("start the demo");
    let mut _guard = KillOnDrop::new();
    _guard.push(child.id());
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut setup = Value::Null;
    let mut line = String::new();
    // Read until the three sessions exist (the first session_run), so there is much to undo.
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        let v: Value = serde_json::from_str(line.trim()).expect("an envelope");
        line.clear();
        match v["data"]["step"].as_str() {
            Some("setup") => setup = v["data"]["result"].clone(),
            Some("session_run") => break,
            _ => {}
        }
    }
    assert!(setup.is_object(), "no setup envelope");
    let run_id = setup["run_id"].as_str().unwrap();
    assert!(!processes_with_env(&format!("AGENTSSH_DEMO={run_id}")).is_empty());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().expect("wait for the demo");
    assert_eq!(status.code(), Some(128 + 15), "{status:?}");
    assert_nothing_left(&setup);
}

/// `agentssh demo` in a tmux pane (a private tmux server), with `env`'s variables.
struct DemoPane {
    socket: std::path::PathBuf,
    dir: tempfile::TempDir,
}

impl DemoPane {
    fn start(env: &TestEnv) -> DemoPane {
        let dir = tempfile::Builder::new()
            .prefix("asdemo-")
            .tempdir()
            .unwrap();
        let q = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
        let probe = env.cmd();
        let vars: Vec<String> = probe
            .get_envs()
            .filter_map(|(k, v)| {
                Some(format!(
                    "{}={}",
                    k.to_string_lossy(),
                    q(&v?.to_string_lossy())
                ))
            })
            .collect();
        let script = format!(
            "#!/bin/bash\n( echo $BASHPID > {pid}.tmp; mv {pid}.tmp {pid}; exec env -i {vars} TERM=\"$TERM\" {bin} demo )\necho EXIT=$? > {exit}.tmp\nmv {exit}.tmp {exit}\nexec sleep 600\n",
            pid = q(&dir.path().join("pid").display().to_string()),
            exit = q(&dir.path().join("exit").display().to_string()),
            vars = vars.join(" "),
            bin = q(env!("CARGO_BIN_EXE_agentssh")),
        );
        let path = dir.path().join("run.sh");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let pane = DemoPane {
            socket: dir.path().join("tmux.sock"),
            dir,
        };
        pane.tmux(&[
            "new-session",
            "-d",
            "-s",
            "demo",
            "-x",
            "140",
            "-y",
            "40",
            &path.display().to_string(),
        ]);
        pane
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("tmux")
            .args(["-f", "/dev/null", "-S"])
            .arg(&self.socket)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run tmux (scripts/test-setup.sh installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn capture(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "=demo:"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "=demo:"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    fn wait_for(&self, text: &str, deadline: Duration) {
        assert!(
            wait_until(deadline, || self.capture().contains(text)),
            "the pane never showed {text:?}:\n{}",
            self.capture()
        );
    }

    fn file(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join(name)).ok()
    }
}

impl Drop for DemoPane {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}

/// The demo's setup envelope, from the agent log in its temp dir (found through the marker
/// in the environment of the demo's children).
fn interactive_setup(demo_pid: u32) -> Value {
    let mut found = Value::Null;
    let ok = wait_until(Duration::from_secs(30), || {
        for pid in descendants(demo_pid) {
            let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
                continue;
            };
            let Some(id) = env
                .split(|b| *b == 0)
                .find_map(|kv| kv.strip_prefix(b"AGENTSSH_DEMO="))
            else {
                continue;
            };
            let id = String::from_utf8_lossy(id).into_owned();
            let log = std::env::temp_dir()
                .join(format!("agentssh-demo-{id}"))
                .join("agent.ndjson");
            if let Some(first) = std::fs::read_to_string(log)
                .ok()
                .and_then(|t| t.lines().next().map(String::from))
            {
                found = serde_json::from_str::<Value>(&first).unwrap()["data"]["result"].clone();
                return true;
            }
        }
        false
    });
    assert!(ok, "no demo agent log found");
    found
}

#[test]
fn interactive_demo_in_tmux_takeover_answer_and_quit() {
    let env = TestEnv::new();
    let pane = DemoPane::start(&env);
    // The dashboard shows the three sessions well within the deadline (10 s on a quiet machine).
    pane.wait_for("Sessions (3)", Duration::from_secs(30));
    pane.wait_for("take over (t)", Duration::from_secs(5));
    let pid_text = pane
        .file("pid")
        .expect("the wrapper records the demo's pid");
    let demo_pid: u32 = pid_text.trim().parse().unwrap();
    let setup = interactive_setup(demo_pid);
    let dir = std::path::PathBuf::from(setup["dir"].as_str().unwrap());

    // Select deploy (the third session), wait for its prompt, take over, answer, hand back.
    pane.keys(&["j", "j"]);
    pane.wait_for("Proceed? [y/N]", Duration::from_secs(30));
    pane.keys(&["t"]);
    pane.wait_for("YOU ARE TYPING", Duration::from_secs(10));
    pane.keys(&["y", "Enter"]);
    pane.wait_for("Deploy complete", Duration::from_secs(20));
    pane.keys(&["C-]"]);
    pane.wait_for("you hold control", Duration::from_secs(10));
    pane.keys(&["r"]);
    // The agent notices the hand-back and finishes its script.
    let log = dir.join("agent.ndjson");
    assert!(
        wait_until(Duration::from_secs(30), || std::fs::read_to_string(&log)
            .is_ok_and(|t| t.contains("\"step\":\"session_list\""))),
        "the agent did not finish:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines().all(|l| l.starts_with("{\"ok\":true")),
        "{text}"
    );

    pane.keys(&["q"]);
    assert!(
        wait_until(Duration::from_secs(30), || pane.file("exit").is_some()),
        "the demo did not exit after q:\n{}",
        pane.capture()
    );
    assert_eq!(pane.file("exit").unwrap().trim(), "EXIT=0");
    assert_nothing_left(&setup);
}
