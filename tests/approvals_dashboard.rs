//! The dashboard's Approvals pane end to end (issue 16): the dashboard runs in a tmux pane
//! against a real sshd and a policy that asks for profile `t`; agents' requests wait in the
//! daemon until a human answers them with `n` (deny, with a typed reason), `y` (approve
//! once) or `a` (approve and allow the exact command from now on), and the agents' envelopes
//! and the remote side show that the answer was carried out.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::thread::JoinHandle;

use common::sessions::{fx, rows_of, s, Fx};
use common::tmux::Tmux;
use common::*;
use serde_json::Value;

/// The fixture: sshd, profile `t`, a policy asking for everything on `t` but ls/cat/uname
/// (connect allowed), and a fresh world-writable directory for the remote user.
fn setup() -> (Fx, tempfile::TempDir) {
    let f = fx();
    f.env.add_profile("t", &f.sshd);
    let conf = f.env.config_home.join("agentssh");
    fs::create_dir_all(&conf).unwrap();
    fs::write(
        conf.join("policy.toml"),
        "[[rule]]\ntargets = [\"t\"]\ndefault = \"ask\"\nallow = [\"ls\", \"cat\", \"uname\"]\nconnect = \"allow\"\n",
    )
    .unwrap();
    let dir = tempfile::Builder::new()
        .prefix("asappr-")
        .tempdir_in("/tmp")
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    (f, dir)
}

/// `agentssh --json ARGS` started in the background; join for (envelope, exit code).
fn spawn(f: &Fx, args: &[&str]) -> JoinHandle<(Value, i32)> {
    let mut all = vec!["--json".to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    let mut cmd = f.env.cmd();
    cmd.args(&all);
    std::thread::spawn(move || {
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        parse_json_output(&output_with_deadline(cmd, None, RUN_DEADLINE), &refs)
    })
}

fn exists(p: &Path) -> bool {
    p.exists()
}

#[test]
fn dashboard_denies_with_a_reason_approves_and_allows() {
    let (f, dir) = setup();
    let tmux = Tmux::new();
    let dash = tmux.dashboard(&f.env, 160, 45);
    dash.wait("the empty dashboard", |p| p.contains("Sessions (0)"));
    let d = dir.path().display().to_string();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));

    let first_cmd = format!("uname; touch {d}/a");
    let first = spawn(&f, &["exec", "-p", "t", "--", &first_cmd]);
    dash.wait("the first request", |p| {
        p.contains(&first_cmd) && p.contains("1 approval waiting")
    });
    let second_cmd = format!("ls $(touch {d}/b)");
    let second = spawn(&f, &["exec", "-p", "t", "--", &second_cmd]);
    dash.wait("both requests", |p| {
        p.contains(&second_cmd) && p.contains("Approvals (2)") && p.contains("2 approvals waiting")
    });
    assert!(!exists(&a) && !exists(&b), "nothing ran before an answer");

    // n on the oldest, a reason, Enter.
    dash.keys(&["n"]);
    dash.wait("the reason prompt", |p| p.contains("Deny a"));
    dash.type_text("wrong host, use staging");
    dash.keys(&["Enter"]);
    let (v, rc) = first.join().unwrap();
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["code"], "approval_denied", "{v}");
    assert_eq!(rc, 1, "{v}");
    assert!(
        v.to_string().contains("wrong host, use staging"),
        "the reason reaches the agent: {v}"
    );
    assert!(!exists(&a), "a denied command must not run");

    // y on the one left.
    dash.wait("one request left", |p| {
        p.contains("Approvals (1)") && !p.contains(&first_cmd)
    });
    dash.keys(&["y"]);
    let (v, rc) = second.join().unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(rc, 0, "{v}");
    assert!(exists(&b), "the approved command ran");
    dash.wait("no request left", |p| {
        !p.contains("approval waiting") && !p.contains("Approvals (")
    });

    // a: approve and allow this exact command from now on.
    let third_cmd = "uname -r; true";
    let third = spawn(&f, &["exec", "-p", "t", "--", third_cmd]);
    dash.wait("the third request", |p| p.contains(third_cmd));
    dash.keys(&["a"]);
    let (v, rc) = third.join().unwrap();
    assert_eq!((v["ok"].clone(), rc), (Value::Bool(true), 0), "{v}");
    let policy = fs::read_to_string(f.env.config_home.join("agentssh/policy.toml")).unwrap();
    assert!(
        policy.contains("exact:uname -r; true"),
        "policy.toml has no exact: entry:\n{policy}"
    );
    // The same command now runs without asking (--no-wait would answer approval_pending).
    let (v, rc) = f.json(&["exec", "-p", "t", "--no-wait", "--", third_cmd]);
    assert_eq!((v["ok"].clone(), rc), (Value::Bool(true), 0), "{v}");
    // A different one still asks.
    let (v, _) = f.json(&["exec", "-p", "t", "--no-wait", "--", "uname -a; true"]);
    assert_eq!(v["code"], "approval_pending", "{v}");
}

#[test]
fn a_denied_session_send_types_nothing() {
    let (f, dir) = setup();
    let victim = dir.path().join("y");
    fs::write(&victim, "keep").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o666)).unwrap();
    let tmux = Tmux::new();
    let dash = tmux.dashboard(&f.env, 160, 45);
    let id = s(&f.ok(&["connect", "-p", "t"])["id"]).to_string();
    dash.wait("the session", |p| p.contains("Sessions (1)"));
    let line = format!("rm -rf {}\n", victim.display());
    let send = spawn(&f, &["session", "send", "-s", &id, "--input", &line]);
    dash.wait("the send request", |p| {
        p.contains("rm -rf") && p.contains("Approvals (1)")
    });
    dash.keys(&["n"]);
    dash.wait("the reason prompt", |p| p.contains("Deny a"));
    dash.keys(&["Enter"]);
    let (v, rc) = send.join().unwrap();
    assert_eq!(v["code"], "approval_denied", "{v}");
    assert_eq!(rc, 1, "{v}");
    assert!(victim.exists(), "the denied line ran");
    let rows = rows_of(&f.ok(&["session", "screen", "-s", &id]));
    assert!(
        rows.iter().all(|r| !r.contains("rm")),
        "the denied line was typed:\n{}",
        rows.join("\n")
    );
    let prompt = rows.iter().rev().find(|r| !r.trim().is_empty());
    assert!(
        prompt.is_some_and(|r| r.trim_end().ends_with('$')),
        "the shell line is not an empty prompt:\n{}",
        rows.join("\n")
    );
    // A broken policy file: the previous policy stays in force and the dashboard says so
    // (on its next status, which the allowed exec's activity brings).
    fs::write(
        f.env.config_home.join("agentssh/policy.toml"),
        "[[rule]]\ntargets = [\"t\"]\nalow = [\"rm\"]\n",
    )
    .unwrap();
    let (v, rc) = f.json(&["exec", "-p", "t", "--no-wait", "--", "ls"]);
    assert_eq!((v["ok"].clone(), rc), (Value::Bool(true), 0), "{v}");
    let (v, _) = f.json(&["exec", "-p", "t", "--no-wait", "--", "rm -rf /tmp/nothing"]);
    assert_eq!(
        v["code"], "approval_pending",
        "the previous policy is in force: {v}"
    );
    dash.wait("the policy warning", |p| {
        p.contains("policy.toml is broken") && p.contains("alow")
    });
}

#[test]
fn a_on_a_file_upload_shows_the_daemons_refusal_and_y_still_approves() {
    let (f, dir) = setup();
    let local = f.env.home.join("up.txt");
    fs::write(&local, "payload\n").unwrap();
    let remote = dir.path().join("up.txt");
    let tmux = Tmux::new();
    let dash = tmux.dashboard(&f.env, 160, 45);
    dash.wait("the empty dashboard", |p| p.contains("Sessions (0)"));
    let (l, r) = (local.display().to_string(), remote.display().to_string());
    let upload = spawn(
        &f,
        &["file", "upload", "-p", "t", "--local", &l, "--remote", &r],
    );
    dash.wait("the upload request", |p| p.contains("Approvals (1)"));
    // No allow entry can name a file write: the daemon's usage error shows in the footer
    // and the request keeps waiting.
    dash.keys(&["a"]);
    dash.wait("the refusal", |p| {
        p.contains("failed:") && p.contains("approve it once instead")
    });
    assert!(dash.capture().contains("Approvals (1)"));
    assert!(!remote.exists(), "nothing was written before an approval");
    dash.keys(&["y"]);
    let (v, rc) = upload.join().unwrap();
    assert_eq!((v["ok"].clone(), rc), (Value::Bool(true), 0), "{v}");
    assert_eq!(fs::read_to_string(&remote).unwrap(), "payload\n");
    let policy = fs::read_to_string(f.env.config_home.join("agentssh/policy.toml")).unwrap();
    assert!(!policy.contains("exact:"), "no entry was added:\n{policy}");
}
