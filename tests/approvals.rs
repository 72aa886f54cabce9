//! The approval gate against a real sshd: every acting path under a deny-everything policy
//! (nothing runs), `ask` with `--no-wait` / `--approval-timeout` / `approvals status`, the
//! advisories' bypasses, sends checked as the shell sees the line, answers refused without a
//! terminal (the CLI's /dev/tty and the daemon's own check), and a policy file that turns bad
//! or goes away. The dashboard's side (tmux) is in tests/approvals_dashboard.rs.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use common::sessions::*;
use common::*;
use serde_json::Value;

/// A fixture with profile `t` (and `t2`) for the sshd, and a marker directory the server
/// user can write to.
struct Gx {
    f: Fx,
    marks: tempfile::TempDir,
}

fn gx() -> Gx {
    let f = fx();
    for name in ["t", "t2"] {
        f.env.add_profile(name, &f.sshd);
    }
    let marks = tempfile::Builder::new()
        .prefix("agentssh-gate-")
        .tempdir_in("/tmp")
        .unwrap();
    fs::set_permissions(marks.path(), fs::Permissions::from_mode(0o777)).unwrap();
    Gx { f, marks }
}

impl Gx {
    fn policy_path(&self) -> PathBuf {
        self.f.env.config_home.join("agentssh").join("policy.toml")
    }

    /// Replaces the policy file atomically (a new inode, so the daemon sees the change).
    fn write_policy(&self, text: &str) {
        let path = self.policy_path();
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, text).unwrap();
        fs::rename(&tmp, &path).unwrap();
    }

    fn mark(&self, name: &str) -> String {
        self.marks.path().join(name).display().to_string()
    }

    fn marks_left(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.marks.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Runs `args` under --json and returns (envelope, exit code).
    fn json(&self, args: &[&str]) -> (Value, i32) {
        self.f.json(args)
    }

    fn denied(&self, args: &[&str]) -> Value {
        let (v, rc) = self.json(args);
        assert_eq!(
            (v["code"].as_str(), rc),
            (Some("approval_denied"), 1),
            "{args:?}: {v}"
        );
        v
    }
}

const DENY_ALL: &str = r#"
# Everything on `t` is refused except opening a session.
[[rule]]
targets = ["t"]
default = "deny"
connect = "allow"

[[rule]]
targets = ["t2"]
connect = "deny"
"#;

#[test]
fn no_acting_path_bypasses_a_deny_policy() {
    let g = gx();
    // A session opened before the policy exists, and a local file to upload.
    let id = g.f.connect(&[]);
    let local = g.marks.path().join("local.txt");
    fs::write(&local, "x").unwrap();
    let local = local.display().to_string();
    let existing = g.mark("existing");
    fs::write(&existing, "keep").unwrap();
    fs::set_permissions(&existing, fs::Permissions::from_mode(0o666)).unwrap();
    g.write_policy(DENY_ALL);
    // The session opened by profile `t` carries it; the first one came from -H (no rule
    // matches its profile, but its host does not match `t` either): open one by profile.
    let sid = s(&g.f.ok(&["connect", "-p", "t", "--name", "gated"])["id"]).to_string();
    let _ = id;

    let touch = |n: &str| format!("touch {}", g.mark(n));
    let cases: Vec<Vec<String>> = vec![
        vec![
            "exec".into(),
            "-p".into(),
            "t".into(),
            "--".into(),
            touch("exec"),
        ],
        vec![
            "exec".into(),
            "--direct".into(),
            "-p".into(),
            "t".into(),
            "--".into(),
            touch("direct"),
        ],
        vec![
            "session".into(),
            "run".into(),
            "-s".into(),
            sid.clone(),
            "--".into(),
            touch("run"),
        ],
        vec![
            "session".into(),
            "run".into(),
            "--detach".into(),
            "-s".into(),
            sid.clone(),
            "--".into(),
            touch("job"),
        ],
        vec![
            "session".into(),
            "send".into(),
            "-s".into(),
            sid.clone(),
            "--input".into(),
            format!("{}\n", touch("send")),
        ],
        vec![
            "session".into(),
            "send".into(),
            "-s".into(),
            sid.clone(),
            "--input".into(),
            format!("{}", touch("keys")),
        ],
        vec![
            "session".into(),
            "exec".into(),
            "-s".into(),
            sid.clone(),
            "--".into(),
            touch("sexec"),
        ],
        vec![
            "session".into(),
            "exec".into(),
            "--detach".into(),
            "-s".into(),
            sid.clone(),
            "--".into(),
            touch("sdetach"),
        ],
        vec![
            "file".into(),
            "write".into(),
            "-p".into(),
            "t".into(),
            "--remote".into(),
            g.mark("write"),
            "--content".into(),
            "x".into(),
        ],
        vec![
            "file".into(),
            "write".into(),
            "-s".into(),
            sid.clone(),
            "--remote".into(),
            g.mark("swrite"),
            "--content".into(),
            "x".into(),
        ],
        vec![
            "file".into(),
            "upload".into(),
            "-p".into(),
            "t".into(),
            "--local".into(),
            local.clone(),
            "--remote".into(),
            g.mark("upload"),
        ],
        vec![
            "file".into(),
            "mkdir".into(),
            "-p".into(),
            "t".into(),
            "--remote".into(),
            g.mark("dir"),
        ],
        vec![
            "file".into(),
            "edit".into(),
            "-p".into(),
            "t".into(),
            "--remote".into(),
            existing.clone(),
            "--find".into(),
            "keep".into(),
            "--replace".into(),
            "gone".into(),
        ],
        vec![
            "file".into(),
            "delete".into(),
            "-p".into(),
            "t".into(),
            "--remote".into(),
            existing.clone(),
        ],
        vec![
            "file".into(),
            "read".into(),
            "-p".into(),
            "t".into(),
            "--remote".into(),
            existing.clone(),
        ],
        vec![
            "file".into(),
            "ls".into(),
            "-p".into(),
            "t".into(),
            "--remote".into(),
            g.marks.path().display().to_string(),
        ],
        vec![
            "file".into(),
            "download".into(),
            "-p".into(),
            "t".into(),
            "--remote".into(),
            existing.clone(),
            "--local".into(),
            g.mark("down"),
        ],
        vec![
            "proxy".into(),
            "create".into(),
            "-p".into(),
            "t".into(),
            "--local".into(),
            "127.0.0.1:0".into(),
            "--remote".into(),
            "127.0.0.1:22".into(),
        ],
        vec![
            "proxy".into(),
            "create".into(),
            "-p".into(),
            "t".into(),
            "--socks5".into(),
            "127.0.0.1:0".into(),
        ],
        vec!["connect".into(), "-p".into(), "t2".into()],
    ];
    for case in &cases {
        let args: Vec<&str> = case.iter().map(String::as_str).collect();
        let v = g.denied(&args);
        assert!(
            v["error"].as_str().unwrap().contains("nothing ran"),
            "{args:?}: {v}"
        );
    }
    // Nothing reached the server: no marker, the existing file untouched, no proxy, and
    // the session's line holds nothing typed.
    assert_eq!(g.marks_left(), vec!["existing", "local.txt"]);
    assert_eq!(fs::read_to_string(&existing).unwrap(), "keep");
    assert_eq!(g.f.ok(&["proxy", "list"])["proxies"], serde_json::json!([]));
    let screen = rows_of(&g.f.screen(&sid)).join("\n");
    assert!(!screen.contains("touch"), "{screen}");
    // Reads and session management stay free.
    g.f.ok(&["session", "read", "-s", &sid]);
    g.f.ok(&["session", "signal", "-s", &sid, "--signal", "INT"]);
    // Every refusal is in the activity log, decided by the policy.
    let log = g.f.ok(&["log", "--limit", "200"]);
    let denials = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["client"] == "policy" && e["outcome"] == "approval_denied")
        .count();
    assert_eq!(denials, cases.len(), "{log}");
}

const ASK: &str = r#"[[rule]]
targets = ["t"]
default = "ask"
allow = ["ls", "cat", "uname"]
connect = "allow"
"#;

#[test]
fn ask_waits_and_the_advisories_bypasses_do_not_run() {
    let g = gx();
    g.write_policy(ASK);
    // An allowed whole simple command runs at once.
    let d = g.f.ok(&["exec", "-p", "t", "--", "uname", "-a"]);
    assert_eq!(d["exit_status"], 0, "{d}");

    // Each bypass waits for a human: with --no-wait the agent gets approval_pending and an
    // id at once, and nothing ran.
    let m = |n: &str| g.mark(n);
    let bypasses = [
        format!("uname; touch {}", m("semicolon")),
        format!("ls $(touch {})", m("subst")),
        format!("S=touch; $S {}", m("var")),
        format!("sh -c 'touch {}'", m("shc")),
        format!("ls `touch {}`", m("backtick")),
        format!("ls\ntouch {}", m("newline")),
        format!("env touch {}", m("env")),
        format!("cat /etc/hostname > {}", m("redirect")),
    ];
    let mut ids = Vec::new();
    for cmd in &bypasses {
        let (v, rc) = g.json(&["--no-wait", "exec", "-p", "t", "--", cmd]);
        assert_eq!(
            (v["code"].as_str(), rc),
            (Some("approval_pending"), 1),
            "{cmd}: {v}"
        );
        let id = s(&v["data"]["approval"]).to_string();
        assert!(id.starts_with('a'), "{v}");
        ids.push(id);
    }
    // The same request again gets the same pending id, not a second entry.
    let (again, _) = g.json(&["--no-wait", "exec", "-p", "t", "--", &bypasses[0]]);
    assert_eq!(again["data"]["approval"], ids[0].as_str(), "{again}");
    let list = g.f.ok(&["approvals", "list"]);
    let pending = list["approvals"].as_array().unwrap();
    assert_eq!(pending.len(), bypasses.len(), "{list}");
    assert_eq!(pending[0]["command"], bypasses[0].as_str(), "{list}");
    assert_eq!(
        pending[0]["target"].as_str().unwrap().split(':').next(),
        Some("t")
    );
    assert!(
        pending[0]["rule"].as_str().unwrap().starts_with("rule 1"),
        "{list}"
    );
    let st = g.f.ok(&["approvals", "status", &ids[1]]);
    assert_eq!(st["state"], "pending", "{st}");

    // Waiting: nobody answers, so approval_timeout (exit 124) and the request is over.
    let (v, rc) = g.json(&[
        "--approval-timeout",
        "300",
        "exec",
        "-p",
        "t",
        "--",
        &format!("uname && touch {}", m("timeout")),
    ]);
    assert_eq!(
        (v["code"].as_str(), rc),
        (Some("approval_timeout"), 124),
        "{v}"
    );
    let timed = s(&v["data"]["approval"]).to_string();
    assert_eq!(
        g.f.ok(&["approvals", "status", &timed])["state"],
        "timed_out"
    );

    // Answering needs a terminal: with stdin from a pipe and no controlling terminal the
    // CLI refuses, and so does the daemon when spoken to directly.
    let mut cmd = g.f.env.cmd();
    cmd.args(["--json", "approvals", "approve", &ids[0]]);
    let out = output_with_deadline(setsid(cmd), Some(b"y\n"), RUN_DEADLINE);
    let (v, rc) = parse_json_output(&out, &["approvals approve (no tty)"]);
    assert_eq!(
        (v["code"].as_str(), rc),
        (Some("permission_denied"), 1),
        "{v}"
    );
    let raw = raw_request(
        &g.f.env,
        &serde_json::json!({"op": "approval_decide", "id": ids[0], "approve": true, "reason": null}),
    );
    assert_eq!(raw["err"]["error"]["code"], "permission_denied", "{raw}");
    assert_eq!(
        g.f.ok(&["approvals", "status", &ids[0]])["state"],
        "pending"
    );

    // A session send under ask: nothing reaches the PTY while it waits.
    let sid = s(&g.f.ok(&["connect", "-p", "t"])["id"]).to_string();
    let line = format!("rm -rf {}\n", m("y"));
    let (v, _) = g.json(&["--no-wait", "session", "send", "-s", &sid, "--input", &line]);
    assert_eq!(v["code"], "approval_pending", "{v}");
    let screen = rows_of(&g.f.screen(&sid)).join("\n");
    assert!(!screen.contains("rm -rf"), "{screen}");
    // Typed in two parts, the line is still checked whole: `rm -r` + `f X` is `rm -rf X`.
    g.write_policy(&format!("{ASK}deny = [\"rm\"]\n"));
    let (v, _) = g.json(&["session", "send", "-s", &sid, "--input", "rm -r"]);
    assert_eq!(v["code"], "approval_denied", "{v}");

    assert_eq!(g.marks_left(), Vec::<String>::new());
}

/// `cmd` in a new session without a controlling terminal.
fn setsid(cmd: std::process::Command) -> std::process::Command {
    let mut c = std::process::Command::new("setsid");
    c.arg(cmd.get_program());
    c.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

/// Speaks the daemon protocol directly (hello, one request) from a process without a
/// terminal, as an agent could; returns the response frame.
fn raw_request(env: &TestEnv, request: &Value) -> Value {
    let sock = env.runtime_dir.join("agentssh").join("daemon.sock");
    raw_request_at(&sock, request, None)
}

/// [`raw_request`] to the socket at `sock`, as `user` when given.
fn raw_request_at(sock: &std::path::Path, request: &Value, user: Option<&str>) -> Value {
    let script = r#"
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
hello = {"type": "hello", "protocol": 1, "version": "x", "client": "raw"}
req = json.loads(sys.argv[2]); req["type"] = "request"
s.sendall((json.dumps(hello) + "\n" + json.dumps(req) + "\n").encode())
f = s.makefile()
for line in f:
    m = json.loads(line)
    if m.get("type") == "response":
        print(json.dumps(m)); break
"#;
    let mut c = std::process::Command::new("setsid");
    if let Some(u) = user {
        c.args(["runuser", "-u", u, "--"]);
    }
    c.args([
        "python3",
        "-c",
        script,
        sock.to_str().unwrap(),
        &request.to_string(),
    ]);
    let out = output_with_deadline(c, None, RUN_DEADLINE);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("raw request: {e}: {}", show_output(&out)))
}

#[test]
fn a_broken_policy_keeps_the_last_good_one_and_no_file_allows_everything() {
    let g = gx();
    g.write_policy("[[rule]]\ntargets = [\"t\"]\ndeny = [\"touch\"]\n");
    let cmd = format!("touch {}", g.mark("a"));
    g.denied(&["exec", "-p", "t", "--", &cmd]);
    g.write_policy("[[rule]]\ntargets = [\"t\"]\ndenny = [\"touch\"]\n");
    g.denied(&["exec", "-p", "t", "--", &cmd]);
    let list = g.f.ok(&["approvals", "list"]);
    assert!(
        list["policy_error"].as_str().unwrap().contains("line 3"),
        "{list}"
    );
    fs::remove_file(g.policy_path()).unwrap();
    g.f.ok(&["exec", "-p", "t", "--", &cmd]);
    assert_eq!(g.marks_left(), vec!["a"]);
}

#[test]
fn a_second_uid_acts_through_profiles_but_cannot_answer_or_take_over() {
    let g = gx();
    g.write_policy(&ASK.replace(r#""uname"]"#, r#""uname", "id"]"#));
    // A directory every user can enter, for the agent's socket and a copy of the binary
    // (the build tree may sit under a home no other user can enter).
    let shared = tempfile::Builder::new()
        .prefix("asa-")
        .tempdir_in("/tmp")
        .unwrap();
    fs::set_permissions(shared.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let bin = shared.path().join("agentssh");
    fs::copy(env!("CARGO_BIN_EXE_agentssh"), &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    let sock = shared.path().join("agent").join("daemon.sock");
    let mut daemon = g.f.env.cmd();
    daemon.args(["daemon", "run", "--agent-uid", BENCH_USER, "--agent-socket"]);
    daemon.arg(&sock);
    daemon
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = daemon.spawn().unwrap();
    let mut guard = KillOnDrop::new();
    guard.push(child.id());
    assert!(
        wait_until(Duration::from_secs(20), || sock.exists()),
        "the agent socket did not appear"
    );
    // The agent: another user, its own HOME, only AGENTSSH_SOCKET pointing at our daemon.
    let agent_home = tempfile::Builder::new()
        .prefix("asa-home-")
        .tempdir_in("/tmp")
        .unwrap();
    std::process::Command::new("chown")
        .args(["-R", BENCH_USER, agent_home.path().to_str().unwrap()])
        .status()
        .unwrap();
    let agent = |args: &[&str], socket: &std::path::Path| -> (Value, i32) {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", BENCH_USER, "--", "env", "-i"]);
        c.arg(format!("HOME={}", agent_home.path().display()));
        c.arg(format!(
            "XDG_RUNTIME_DIR={}",
            agent_home.path().join("run").display()
        ));
        c.arg(format!("AGENTSSH_SOCKET={}", socket.display()));
        c.arg("PATH=/usr/bin:/bin");
        c.arg(&bin);
        c.arg("--json");
        c.args(args);
        parse_json_output(&output_with_deadline(c, None, RUN_DEADLINE), args)
    };
    // A command the policy allows runs with the supervisor's profile, resolved by the daemon.
    let (v, rc) = agent(&["exec", "-p", "t", "--", "id", "-un"], &sock);
    assert_eq!((v["ok"].as_bool(), rc), (Some(true), 0), "{v}");
    assert_eq!(v["data"]["stdout"], format!("{TEST_USER}\n"), "{v}");
    // One that needs a human waits like anyone's, and shows who asked.
    let (v, _) = agent(&["--no-wait", "exec", "-p", "t", "--", "uname; id"], &sock);
    assert_eq!(v["code"], "approval_pending", "{v}");
    let id = s(&v["data"]["approval"]).to_string();
    let st = g.f.ok(&["approvals", "status", &id]);
    assert!(st["client"].as_str().unwrap().contains("agent uid"), "{st}");
    // Inline targets are refused (the CLI says so; the daemon refuses a crafted one).
    let (v, _) = agent(&["exec", "-H", "127.0.0.1", "--", "true"], &sock);
    assert_eq!(v["code"], "usage", "{v}");
    // Answering and taking control are the supervisor's, even spoken to the socket directly.
    for req in [
        serde_json::json!({"op": "approval_decide", "id": id, "approve": true, "reason": null}),
        serde_json::json!({"op": "watch", "session": "s1", "take_control": true}),
    ] {
        let r = raw_request_at(&sock, &req, Some(BENCH_USER));
        assert_eq!(r["err"]["error"]["code"], "permission_denied", "{r}");
        assert!(
            r["err"]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("agent uid"),
            "{r}"
        );
    }
    assert_eq!(g.f.ok(&["approvals", "status", &id])["state"], "pending");
    // The supervisor's own socket stays out of reach.
    let main_sock = g.f.env.runtime_dir.join("agentssh").join("daemon.sock");
    let (v, _) = agent(&["session", "list"], &main_sock);
    assert_eq!(v["code"], "daemon_unavailable", "{v}");
    let _ = child.kill();
    let _ = child.wait();
}
