//! Host-key verification against an in-process russh server whose host key we control:
//! learning on first contact, a changed key on the same port, `no`, `@revoked`, hashed
//! known_hosts entries. Each test runs through the daemon and with `--direct`.

mod common;

use std::fs;
use std::process::{Command, Stdio};

use rstest::rstest;
use serde_json::Value;

use common::russh_server::RusshServer;
use common::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Daemon,
    Direct,
}

fn exec(env: &TestEnv, via: Via, port: u16, flags: &[&str]) -> (Value, i32) {
    let port = port.to_string();
    let mut args = vec![
        "--json",
        "exec",
        "-H",
        "127.0.0.1",
        "-P",
        &port,
        "-u",
        "tester",
    ];
    if via == Via::Direct {
        args.push("--direct");
    }
    args.extend_from_slice(flags);
    args.extend(["--", "echo", "hi"]);
    env.json(&args)
}

fn own_known_hosts(env: &TestEnv) -> String {
    fs::read_to_string(env.config_home.join("agentssh").join("known_hosts")).unwrap_or_default()
}

fn assert_ran(v: &Value, rc: i32) {
    assert_eq!(v["ok"], true, "expected success: {v}");
    assert_eq!(rc, 0, "{v}");
    assert_eq!(v["data"]["stdout"], "ok\n", "{v}");
    assert_eq!(v["data"]["exit_status"], 0, "{v}");
}

fn assert_refused(v: &Value, rc: i32, code: &str) {
    assert_eq!(v["ok"], false, "expected refusal: {v}");
    assert_eq!(v["code"], code, "{v}");
    assert_eq!(rc, 255, "{v}");
}

fn append(path: &std::path::Path, line: &str) {
    let mut text = fs::read_to_string(path).unwrap_or_default();
    text.push_str(line);
    text.push('\n');
    fs::write(path, text).unwrap();
}

#[rstest]
fn first_contact_learns_the_key(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let env = TestEnv::new();
    let server = RusshServer::start();
    let (v, rc) = exec(&env, via, server.port, &[]);
    assert_ran(&v, rc);
    let known = own_known_hosts(&env);
    assert!(
        known.lines().any(|l| l.trim() == server.known_hosts_line()),
        "expected {:?} in agentssh's known_hosts:\n{known}",
        server.known_hosts_line()
    );
    // Learned once: a second call neither fails nor duplicates the line.
    let (v, rc) = exec(
        &env,
        via,
        server.port,
        &["--strict-host-key-checking", "yes"],
    );
    assert_ran(&v, rc);
    let known = own_known_hosts(&env);
    assert_eq!(
        known
            .lines()
            .filter(|l| l.trim() == server.known_hosts_line())
            .count(),
        1,
        "{known}"
    );
}

#[rstest]
fn changed_key_is_refused_with_both_fingerprints(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let env = TestEnv::new();
    let server = RusshServer::start();
    let (v, rc) = exec(&env, via, server.port, &[]);
    assert_ran(&v, rc);
    let old_fp = server.host_key_fingerprint.clone();
    let known_before = own_known_hosts(&env);

    let server = server.restart_with_new_key();
    let new_fp = server.host_key_fingerprint.clone();
    assert_ne!(old_fp, new_fp);

    for flags in [
        &[][..],
        &["--strict-host-key-checking", "accept-new"][..],
        &["--strict-host-key-checking", "yes"][..],
    ] {
        let (v, rc) = exec(&env, via, server.port, flags);
        assert_refused(&v, rc, "host_key_changed");
        let msg = v["error"].as_str().unwrap();
        assert!(
            msg.contains(&old_fp),
            "error should show the recorded fingerprint {old_fp}: {msg}"
        );
        assert!(
            msg.contains(&new_fp),
            "error should show the offered fingerprint {new_fp}: {msg}"
        );
    }
    assert_eq!(
        own_known_hosts(&env),
        known_before,
        "a changed key must not be recorded"
    );

    // `no` connects anyway, and records nothing.
    let (v, rc) = exec(
        &env,
        via,
        server.port,
        &["--strict-host-key-checking", "no"],
    );
    assert_ran(&v, rc);
    assert_eq!(own_known_hosts(&env), known_before);
    let (v, rc) = exec(&env, via, server.port, &[]);
    assert_refused(&v, rc, "host_key_changed");
}

#[rstest]
fn changed_key_against_dot_ssh_known_hosts(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let env = TestEnv::new();
    let old = RusshServer::start();
    let old_line = old.known_hosts_line();
    let old_fp = old.host_key_fingerprint.clone();
    let server = old.restart_with_new_key();
    append(&env.known_hosts_path(), &old_line);
    let (v, rc) = exec(&env, via, server.port, &[]);
    assert_refused(&v, rc, "host_key_changed");
    let msg = v["error"].as_str().unwrap();
    assert!(msg.contains(&old_fp), "{msg}");
    assert!(msg.contains(&server.host_key_fingerprint), "{msg}");
    assert!(
        !own_known_hosts(&env).contains(&server.host_key_pub),
        "a changed key must not be learned"
    );
}

#[rstest]
fn revoked_key_is_refused(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let env = TestEnv::new();
    let server = RusshServer::start();
    append(
        &env.known_hosts_path(),
        &format!("@revoked * {}", server.host_key_pub),
    );
    let (v, rc) = exec(&env, via, server.port, &[]);
    assert_eq!(v["ok"], false, "a revoked key must be refused: {v}");
    assert_eq!(rc, 255, "{v}");
    let code = v["code"].as_str().unwrap_or("");
    assert!(code.starts_with("host_key_"), "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("revoked"),
        "the error should say the key is revoked: {v}"
    );
    assert!(
        !own_known_hosts(&env).contains(&server.host_key_pub),
        "a revoked key must not be learned"
    );

    // Even when the key is also recorded as known, @revoked wins.
    append(&env.known_hosts_path(), &server.known_hosts_line());
    let (v, rc) = exec(
        &env,
        via,
        server.port,
        &["--strict-host-key-checking", "yes"],
    );
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(rc, 255, "{v}");
}

fn hash_known_hosts(path: &std::path::Path) {
    let out = Command::new(SSH_KEYGEN_BIN)
        .arg("-H")
        .arg("-f")
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show_output(&out));
    let _ = fs::remove_file(path.with_extension("old"));
    let text = fs::read_to_string(path).unwrap();
    assert!(
        text.starts_with("|1|") && !text.contains("127.0.0.1"),
        "not hashed: {text}"
    );
}

#[rstest]
fn hashed_known_hosts_entry_is_honoured(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let env = TestEnv::new();
    let server = RusshServer::start();
    let path = env.known_hosts_path();
    append(&path, &server.known_hosts_line());
    hash_known_hosts(&path);
    let (v, rc) = exec(
        &env,
        via,
        server.port,
        &["--strict-host-key-checking", "yes"],
    );
    assert_ran(&v, rc);
    assert!(
        !own_known_hosts(&env).contains(&server.host_key_pub),
        "a known key must not be re-recorded"
    );
}

#[rstest]
fn hashed_entry_with_another_key_means_changed(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let env = TestEnv::new();
    let old = RusshServer::start();
    let path = env.known_hosts_path();
    append(&path, &old.known_hosts_line());
    hash_known_hosts(&path);
    let server = old.restart_with_new_key();
    let (v, rc) = exec(&env, via, server.port, &[]);
    assert_refused(&v, rc, "host_key_changed");
}
