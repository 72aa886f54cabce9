//! Proves the test harness (`tests/common`) works, using the OpenSSH client rather than
//! agentssh: real sshd, key and password logins, SFTP on/off, connection counting, restart,
//! cleanup on drop, the fault proxy, the late listener and the helpers.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::fault_proxy::{FaultMode, FaultProxy};
use common::*;

fn ok_stdout(cmd: Command) -> String {
    let out = output_with_deadline(cmd, None, RUN_DEADLINE);
    assert!(out.status.success(), "{}", show_output(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// A long-running `ssh ... 'echo ready; sleep 600'`, returned once "ready" arrived.
fn live_session(mut cmd: Command) -> (std::process::Child, KillOnDrop) {
    cmd.arg("echo ready; exec sleep 600")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn ssh");
    let guard = KillOnDrop(vec![child.id()]);
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("no output from the live session")
        .unwrap();
    assert_eq!(line, "ready");
    (child, guard)
}

fn exits_within(child: &mut std::process::Child, deadline: Duration) -> bool {
    wait_until(deadline, || matches!(child.try_wait(), Ok(Some(_))))
}

#[test]
fn key_login_runs_echo() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    let mut cmd = env.openssh(&sshd);
    cmd.arg("echo hi");
    assert_eq!(ok_stdout(cmd), "hi\n");
    // The session really runs as the test user, in its home.
    let mut cmd = env.openssh(&sshd);
    cmd.arg("id -un; pwd");
    assert_eq!(ok_stdout(cmd), format!("{TEST_USER}\n/home/{TEST_USER}\n"));
}

#[test]
fn bench_user_can_log_in_with_key() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    let mut cmd = env.openssh_to(&sshd, sshd.port, BENCH_USER);
    cmd.arg("id -un");
    assert_eq!(ok_stdout(cmd), format!("{BENCH_USER}\n"));
}

#[test]
fn wrong_key_is_rejected() {
    let env = TestEnv::new();
    let other = TestEnv::new();
    let sshd = Sshd::start(&[other.client_pubkey()]);
    let mut cmd = env.openssh(&sshd);
    cmd.arg("true");
    let out = output_with_deadline(cmd, None, RUN_DEADLINE);
    assert_eq!(out.status.code(), Some(255), "{}", show_output(&out));
}

fn password_login(sshd: &Sshd, env: &TestEnv) -> std::process::Output {
    let askpass = env.dir.path().join("askpass.sh");
    std::fs::write(&askpass, format!("#!/bin/sh\necho '{TEST_PASSWORD}'\n")).unwrap();
    std::fs::set_permissions(
        &askpass,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // BatchMode=no overrides the harness default (BatchMode=yes forbids asking).
    let mut cmd = env.openssh_with(
        sshd,
        sshd.port,
        TEST_USER,
        &[
            "-o",
            "BatchMode=no",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=1",
        ],
    );
    cmd.env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .arg("echo pw-ok");
    output_with_deadline(cmd, None, RUN_DEADLINE)
}

#[test]
fn password_login_works_and_can_be_disabled() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[]);
    let out = password_login(&sshd, &env);
    assert!(out.status.success(), "{}", show_output(&out));
    assert_eq!(out.stdout, b"pw-ok\n");

    let sshd = Sshd::start_with(SshdOptions {
        password_auth: false,
        ..SshdOptions::default()
    });
    let out = password_login(&sshd, &env);
    assert_eq!(out.status.code(), Some(255), "{}", show_output(&out));
}

fn sftp_pwd(env: &TestEnv, sshd: &Sshd) -> std::process::Output {
    let mut cmd = Command::new("/usr/bin/sftp");
    env.apply_env(&mut cmd);
    cmd.args(env.openssh_opts(sshd, sshd.port))
        .args(["-P", &sshd.port.to_string(), "-b", "-"])
        .arg(format!("{TEST_USER}@127.0.0.1"));
    output_with_deadline(cmd, Some(b"pwd\n"), RUN_DEADLINE)
}

#[test]
fn sftp_subsystem_on_and_off() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    let out = sftp_pwd(&env, &sshd);
    assert!(out.status.success(), "{}", show_output(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("/home/{TEST_USER}")),
        "{}",
        show_output(&out)
    );

    let sshd = Sshd::start_with(SshdOptions {
        sftp: false,
        authorized_keys: vec![env.client_pubkey()],
        ..SshdOptions::default()
    });
    let out = sftp_pwd(&env, &sshd);
    assert!(!out.status.success(), "{}", show_output(&out));
}

#[test]
fn options_max_sessions_and_extra_config_are_accepted() {
    let env = TestEnv::new();
    let sshd = Sshd::start_with(SshdOptions {
        max_sessions: Some(2),
        extra_config: "MaxAuthTries 3\n".into(),
        authorized_keys: vec![env.client_pubkey()],
        ..SshdOptions::default()
    });
    let config = std::fs::read_to_string(&sshd.config_path).unwrap();
    assert!(config.contains("MaxSessions 2\n"));
    assert!(config.contains("MaxAuthTries 3\n"));
    let mut cmd = env.openssh(&sshd);
    cmd.arg("echo hi");
    assert_eq!(ok_stdout(cmd), "hi\n");
}

#[test]
fn connection_count_increases_by_one_per_ssh_run() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    assert_eq!(sshd.connection_count(), 0, "{}", sshd.log());
    for i in 1..=3 {
        let mut cmd = env.openssh(&sshd);
        cmd.arg("true");
        ok_stdout(cmd);
        assert_eq!(sshd.connection_count(), i, "{}", sshd.log());
    }
}

#[test]
fn known_hosts_line_matches_the_served_key() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    let line = sshd.known_hosts_line();
    assert!(line.starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 AAAA", sshd.port)));
    assert!(sshd.host_key_fingerprint.starts_with("SHA256:"));
    // With a different key pinned, strict checking refuses the server.
    let other = Sshd::start(&[]);
    let kh = env.known_hosts_path();
    std::fs::write(
        &kh,
        format!("[127.0.0.1]:{} {}\n", sshd.port, other.host_key_pub),
    )
    .unwrap();
    let mut cmd = Command::new(SSH_BIN);
    env.apply_env(&mut cmd);
    cmd.args(["-F", "/dev/null", "-o"])
        .arg(format!("UserKnownHostsFile={}", kh.display()))
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-i",
        ])
        .arg(env.key_path())
        .args(["-p", &sshd.port.to_string()])
        .arg(format!("{TEST_USER}@127.0.0.1"))
        .arg("true");
    let out = output_with_deadline(cmd, None, RUN_DEADLINE);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("HOST IDENTIFICATION HAS CHANGED"),
        "{}",
        show_output(&out)
    );
}

#[test]
fn drop_kills_sshd_and_its_sessions() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    let pid = sshd.pid();
    let port = sshd.port;
    let (mut client, _guard) = live_session(env.openssh(&sshd));
    assert!(!descendants(pid).is_empty());
    drop(sshd);
    assert!(!pid_alive(pid), "sshd {pid} survived drop");
    assert!(exits_within(&mut client, Duration::from_secs(10)));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn restart_same_port_keeps_port_key_and_count() {
    let env = TestEnv::new();
    let mut sshd = Sshd::start(&[env.client_pubkey()]);
    let (port, old_pid) = (sshd.port, sshd.pid());
    let (mut client, _guard) = live_session(env.openssh(&sshd));
    sshd.restart_same_port();
    assert_eq!(sshd.port, port);
    assert_ne!(sshd.pid(), old_pid);
    assert!(!pid_alive(old_pid));
    assert!(
        exits_within(&mut client, Duration::from_secs(10)),
        "restart must drop live sessions"
    );
    let mut cmd = env.openssh(&sshd);
    cmd.arg("echo again");
    assert_eq!(ok_stdout(cmd), "again\n");
    assert_eq!(sshd.connection_count(), 2, "{}", sshd.log());
}

#[test]
fn kill_connections_keeps_listening() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    let (mut client, _guard) = live_session(env.openssh(&sshd));
    sshd.kill_connections();
    assert!(exits_within(&mut client, Duration::from_secs(10)));
    let mut cmd = env.openssh(&sshd);
    cmd.arg("echo still-here");
    assert_eq!(ok_stdout(cmd), "still-here\n");
}

#[test]
fn fault_proxy_pass_reset_pass() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    let proxy = FaultProxy::new(sshd.port);
    let via_proxy = |what: &str| {
        let mut cmd = env.openssh_to(&sshd, proxy.port(), TEST_USER);
        cmd.arg(format!("echo {what}"));
        output_with_deadline(cmd, None, RUN_DEADLINE)
    };

    let out = via_proxy("through");
    assert!(out.status.success(), "{}", show_output(&out));
    assert_eq!(out.stdout, b"through\n");
    assert_eq!(proxy.connections(), 1);
    assert_eq!(sshd.connection_count(), 1);

    proxy.set_mode(FaultMode::Reset);
    // Reset refuses new connections: the listening socket is gone.
    assert!(wait_until(Duration::from_secs(5), || {
        std::net::TcpStream::connect(("127.0.0.1", proxy.port())).is_err()
    }));
    let out = via_proxy("blocked");
    assert_eq!(out.status.code(), Some(255), "{}", show_output(&out));
    assert_eq!(proxy.connections(), 1);

    proxy.set_mode(FaultMode::Pass);
    // The listener comes back on the same port.
    assert!(wait_until(Duration::from_secs(5), || {
        std::net::TcpStream::connect(("127.0.0.1", proxy.port())).is_ok()
    }));
    let out = via_proxy("back");
    assert!(out.status.success(), "{}", show_output(&out));
}

#[test]
fn fault_proxy_reset_kills_live_connections() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    let proxy = FaultProxy::new(sshd.port);
    let (mut client, _guard) = live_session(env.openssh_to(&sshd, proxy.port(), TEST_USER));
    proxy.set_mode(FaultMode::Reset);
    assert!(exits_within(&mut client, Duration::from_secs(10)));
    assert_eq!(client.try_wait().unwrap().unwrap().code(), Some(255));
}

#[test]
fn fault_proxy_blackhole_stalls_and_delay_passes() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    let proxy = FaultProxy::new(sshd.port);

    proxy.set_mode(FaultMode::Blackhole);
    // ConnectTimeout also bounds the wait for the server's banner.
    let mut cmd = env.openssh_with(&sshd, proxy.port(), TEST_USER, &["-o", "ConnectTimeout=2"]);
    cmd.arg("echo never");
    let started = Instant::now();
    let out = output_with_deadline(cmd, None, RUN_DEADLINE);
    assert_eq!(out.status.code(), Some(255), "{}", show_output(&out));
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert_eq!(proxy.connections(), 1, "blackhole still accepts");

    proxy.set_mode(FaultMode::Delay(Duration::from_millis(5)));
    let mut cmd = env.openssh_to(&sshd, proxy.port(), TEST_USER);
    cmd.arg("echo slow");
    assert_eq!(ok_stdout(cmd), "slow\n");
}

#[test]
fn openssh_with_extra_options_win_over_defaults() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[]);
    // `ssh -G` prints the effective configuration and exits.
    let cmd = env.openssh_with(
        &sshd,
        sshd.port,
        TEST_USER,
        &["-G", "-o", "ConnectTimeout=2", "-o", "BatchMode=no"],
    );
    let config = ok_stdout(cmd);
    assert!(config.contains("\nconnecttimeout 2\n"), "{config}");
    assert!(config.contains("\nbatchmode no\n"), "{config}");
    assert!(
        config.contains(&format!("\nport {}\n", sshd.port)),
        "{config}"
    );
    let config = ok_stdout(env.openssh_with(&sshd, sshd.port, TEST_USER, &["-G"]));
    assert!(config.contains("\nconnecttimeout 10\n"), "{config}");
    assert!(config.contains("\nbatchmode yes\n"), "{config}");
}

#[test]
fn late_listener_refuses_then_forwards() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    let port = common::late_listener::forward_after(Duration::from_millis(500), sshd.port);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "must refuse before the delay"
    );
    assert!(wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }));
    let mut cmd = env.openssh_to(&sshd, port, TEST_USER);
    cmd.arg("echo late");
    assert_eq!(ok_stdout(cmd), "late\n");
}

#[test]
fn wait_until_polls_until_true_or_deadline() {
    let mut calls = 0;
    assert!(wait_until(Duration::from_secs(5), || {
        calls += 1;
        calls == 3
    }));
    assert_eq!(calls, 3);

    let started = Instant::now();
    assert!(!wait_until(Duration::from_millis(100), || false));
    assert!(started.elapsed() >= Duration::from_millis(100));
}

#[test]
fn test_env_is_isolated() {
    let env = TestEnv::new();
    let cmd = env.cmd();
    let envs: std::collections::HashMap<_, _> = cmd
        .get_envs()
        .map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned())))
        .collect();
    let get = |k: &str| envs.get(std::ffi::OsStr::new(k)).cloned().flatten();
    assert_eq!(get("HOME").unwrap(), env.home.as_os_str());
    assert_eq!(get("XDG_RUNTIME_DIR").unwrap(), env.runtime_dir.as_os_str());
    assert_eq!(get("XDG_CONFIG_HOME").unwrap(), env.config_home.as_os_str());
    assert_eq!(get("XDG_STATE_HOME").unwrap(), env.state_home.as_os_str());
    assert_eq!(get("LANG").unwrap(), "C.UTF-8");
    assert!(get("SSH_AUTH_SOCK").is_none());

    // env_clear() took effect: the child sees exactly what we set.
    let mut probe = Command::new("/usr/bin/env");
    env.apply_env(&mut probe);
    let seen = ok_stdout(probe);
    assert!(!seen.contains("SSH_AUTH_SOCK="));
    assert!(seen.contains(&format!("HOME={}\n", env.home.display())));

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&env.runtime_dir)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    assert!(env.key_path().exists());
    assert!(env.client_pubkey().starts_with("ssh-ed25519 AAAA"));
    assert!(TestEnv::new().client_pubkey() != env.client_pubkey());
}

#[test]
fn test_env_drop_kills_leftover_processes() {
    let env = TestEnv::new();
    // Stands in for the agentssh daemon: started with the env, never waited for.
    let mut cmd = Command::new("/bin/sleep");
    env.apply_env(&mut cmd);
    let mut child = cmd.arg("600").spawn().unwrap();
    drop(env);
    assert!(exits_within(&mut child, Duration::from_secs(5)));
}

#[test]
fn run_deadline_kills_and_panics() {
    let result = std::panic::catch_unwind(|| {
        let mut cmd = Command::new("/bin/sleep");
        cmd.arg("600");
        output_with_deadline(cmd, None, Duration::from_millis(200))
    });
    let err = result.expect_err("must panic");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("did not finish"), "{msg}");
}

#[test]
fn output_with_deadline_feeds_stdin() {
    let out = output_with_deadline(Command::new("/bin/cat"), Some(b"abc"), RUN_DEADLINE);
    assert_eq!(out.stdout, b"abc");
}

#[test]
fn json_parsing_requires_exactly_one_document() {
    let mut cmd = Command::new("/bin/echo");
    cmd.arg(r#"{"ok": true}"#);
    let out = output_with_deadline(cmd, None, RUN_DEADLINE);
    let (v, code) = parse_json_output(&out, &["echo"]);
    assert_eq!(v["ok"], true);
    assert_eq!(code, 0);

    let mut cmd = Command::new("/bin/echo");
    cmd.arg(r#"{"a": 1} {"b": 2}"#);
    let out = output_with_deadline(cmd, None, RUN_DEADLINE);
    assert!(std::panic::catch_unwind(|| parse_json_output(&out, &["echo"])).is_err());
}
