//! `agentssh exec` against a real OpenSSH sshd, every test run twice: through the per-user
//! daemon (the default) and with `--direct`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use rstest::rstest;
use serde_json::Value;
use sha2::{Digest, Sha256};

use common::fault_proxy::{FaultMode, FaultProxy};
use common::*;

/// How `exec` reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Daemon,
    Direct,
}

/// `--json exec -H 127.0.0.1 -P port -u TEST_USER [--direct] FLAGS... -- CMD...`.
fn exec_args(via: Via, port: u16, flags: &[&str], cmd: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec!["--json".into()];
    a.extend(text_exec_args(via, port, flags, cmd));
    a
}

/// Like [`exec_args`], without `--json`.
fn text_exec_args(via: Via, port: u16, flags: &[&str], cmd: &[&str]) -> Vec<String> {
    text_exec_args_as(TEST_USER, via, port, flags, cmd)
}

/// Like [`text_exec_args`], logging in as `user`.
fn text_exec_args_as(user: &str, via: Via, port: u16, flags: &[&str], cmd: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "exec".into(),
        "-H".into(),
        "127.0.0.1".into(),
        "-P".into(),
        port.to_string(),
        "-u".into(),
        user.into(),
    ];
    if via == Via::Direct {
        a.push("--direct".into());
    }
    a.extend(flags.iter().map(|s| s.to_string()));
    a.push("--".into());
    a.extend(cmd.iter().map(|s| s.to_string()));
    a
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Run `exec` in JSON mode and return (envelope, exit code).
fn jexec(env: &TestEnv, via: Via, port: u16, flags: &[&str], cmd: &[&str]) -> (Value, i32) {
    env.json(&strs(&exec_args(via, port, flags, cmd)))
}

/// Run a prepared `Command` (e.g. with extra env vars) and parse its one JSON document.
fn json_of(cmd: Command, what: &str) -> (Value, i32) {
    let out = output_with_deadline(cmd, None, RUN_DEADLINE);
    parse_json_output(&out, &[what])
}

fn assert_ok(v: &Value, rc: i32) {
    assert_eq!(v["ok"], true, "expected success, got {v} (exit {rc})");
    assert_eq!(rc, 0, "exit code for {v}");
}

fn assert_err(v: &Value, rc: i32, code: &str, want_rc: i32) {
    assert_eq!(v["ok"], false, "expected failure {code}, got {v}");
    assert_eq!(v["code"], code, "wrong code in {v}");
    assert!(
        v["error"].as_str().is_some_and(|e| !e.is_empty()),
        "missing error message in {v}"
    );
    assert_eq!(rc, want_rc, "exit code for {v}");
}

fn stdout_of(v: &Value) -> &str {
    v["data"]["stdout"]
        .as_str()
        .unwrap_or_else(|| panic!("no data.stdout in {v}"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// Digits unique to this test process and call.
fn unique_digits() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}{:03}{:09}",
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// A started sshd that authorizes the env's key, plus the env.
fn setup() -> (TestEnv, Sshd) {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    (env, sshd)
}

/// Move `~/.ssh/id_ed25519{,.pub}` out of `~/.ssh`, so no default identity exists; returns
/// the new private key path.
fn hide_default_identity(env: &TestEnv) -> PathBuf {
    let dir = env.dir.path().join("keys");
    fs::create_dir_all(&dir).unwrap();
    let key = dir.join("moved_ed25519");
    fs::rename(env.key_path(), &key).unwrap();
    fs::rename(
        env.key_path().with_extension("pub"),
        key.with_extension("pub"),
    )
    .unwrap();
    key
}

fn pgrep(pattern: &str) -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-a", "-f", pattern])
        .stdin(Stdio::null())
        .output()
        .expect("run pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[rstest]
fn exit_status_and_separated_streams(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let (env, sshd) = setup();
    let (v, rc) = jexec(
        &env,
        via,
        sshd.port,
        &[],
        &["echo to-out; echo to-err >&2; exit 42"],
    );
    assert_eq!(rc, 42, "{v}");
    assert_eq!(
        v["ok"], true,
        "a command that ran is a success envelope: {v}"
    );
    assert_eq!(v["data"]["exit_status"], 42, "{v}");
    assert_eq!(v["data"]["stdout"], "to-out\n", "{v}");
    assert_eq!(v["data"]["stderr"], "to-err\n", "{v}");
    assert!(v["data"]["duration_ms"].is_u64(), "{v}");
    assert!(v["data"].get("stdout_b64").is_none(), "{v}");

    let (v, rc) = jexec(&env, via, sshd.port, &[], &["true"]);
    assert_ok(&v, rc);
    assert_eq!(v["data"]["exit_status"], 0, "{v}");
}

#[rstest]
fn timeout_stops_the_remote_command(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let (env, sshd) = setup();
    let arg = format!("5.{}", unique_digits());
    let pattern = format!("sleep {arg}");
    let start = Instant::now();
    let (v, rc) = jexec(
        &env,
        via,
        sshd.port,
        &["--timeout", "500"],
        &[&format!("echo started; sleep {arg}")],
    );
    assert_err(&v, rc, "timeout", 124);
    // The output before the deadline comes along.
    assert_eq!(
        v["data"]["stdout"], "started\n",
        "timeout envelope lacks the partial output: {v}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "exec took {:?} with --timeout 500",
        start.elapsed()
    );
    // The remote sleep is gone well before it would have ended on its own (5 s).
    let gone = wait_until(Duration::from_millis(3000), || pgrep(&pattern).is_empty());
    assert!(
        gone,
        "remote command still running {:?} after the timeout: {:?}",
        start.elapsed(),
        pgrep(&pattern)
    );
    assert!(
        start.elapsed() < Duration::from_millis(4800),
        "the sleep may have ended on its own"
    );
}

/// An sshd that also lets root log in (with the env's key), plus the env.
fn setup_with_root() -> (TestEnv, Sshd) {
    let env = TestEnv::new();
    let sshd = Sshd::start_with(SshdOptions {
        authorized_keys: vec![env.client_pubkey()],
        permit_root: true,
        ..SshdOptions::default()
    });
    (env, sshd)
}

/// `--json exec` as `user`.
fn jexec_as(
    env: &TestEnv,
    user: &str,
    via: Via,
    port: u16,
    flags: &[&str],
    cmd: &[&str],
) -> (Value, i32) {
    let mut a = vec!["--json".to_string()];
    a.extend(text_exec_args_as(user, via, port, flags, cmd));
    env.json(&strs(&a))
}

/// Kills what a test left running on purpose (the server is this machine).
struct PkillOnDrop(String);

impl Drop for PkillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-f", &self.0])
            .stdin(Stdio::null())
            .status();
    }
}

// Root's sessions on OpenSSH have no privilege-separated child and refuse `signal`: before
// the pid-based stop, root's `sleep` survived a timeout reported as "was stopped".
#[rstest]
fn timeout_stops_the_command_of_root_and_of_a_user(
    #[values("root", TEST_USER)] user: &str,
    #[values(Via::Daemon, Via::Direct)] via: Via,
    #[values(false, true)] tty: bool,
) {
    let (env, sshd) = setup_with_root();
    let arg = format!("61.{}", unique_digits());
    let pattern = format!("sleep {arg}");
    let _cleanup = PkillOnDrop(pattern.clone());
    let mut flags = vec!["--timeout", "1500"];
    if tty {
        flags.push("--tty");
    }
    let (v, rc) = jexec_as(
        &env,
        user,
        via,
        sshd.port,
        &flags,
        &[&format!("echo before; sleep {arg}")],
    );
    assert_err(&v, rc, "timeout", 124);
    let want = if tty { "before\r\n" } else { "before\n" };
    assert_eq!(v["data"]["stdout"], want, "partial output: {v}");
    assert_eq!(v["data"]["stderr"], "", "no marker or noise on stderr: {v}");
    assert!(v["data"]["duration_ms"].is_u64(), "{v}");
    assert_eq!(v["data"]["remote_stopped"], true, "{v}");
    assert!(v["error"].as_str().unwrap().contains("was stopped"), "{v}");
    // The server closed the channel, so the command is gone (or a zombie being reaped).
    let gone = wait_until(Duration::from_secs(2), || pgrep(&pattern).is_empty());
    assert!(
        gone,
        "still running after the timeout: {:?}",
        pgrep(&pattern)
    );
}

#[rstest]
fn a_stop_that_cannot_be_confirmed_says_so(#[values("root", TEST_USER)] user: &str) {
    let (env, sshd) = setup_with_root();
    let arg = format!("61.{}", unique_digits());
    let pattern = format!("sleep {arg}");
    let _cleanup = PkillOnDrop(pattern.clone());
    // `setsid` leaves the process group that both `signal` and our `kill` reach, and the
    // sleep keeps the channel's output open: nobody can tell that it ended, because it did not.
    let (v, rc) = jexec_as(
        &env,
        user,
        Via::Daemon,
        sshd.port,
        &["--timeout", "1000"],
        &[&format!("echo before; setsid sleep {arg}")],
    );
    assert_err(&v, rc, "timeout", 124);
    assert_eq!(v["data"]["stdout"], "before\n", "{v}");
    assert_eq!(v["data"]["remote_stopped"], false, "{v}");
    let msg = v["error"].as_str().unwrap();
    assert!(
        !msg.contains("was stopped") && msg.contains("may still be running"),
        "{v}"
    );
    assert!(!pgrep(&pattern).is_empty(), "the claim would be wrong: {v}");
}

#[rstest]
fn root_commands_keep_their_streams_stdin_and_status(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let (env, sshd) = setup_with_root();
    let args = {
        let mut a = vec!["--json".to_string()];
        a.extend(text_exec_args_as(
            "root",
            via,
            sshd.port,
            &[],
            &["cat; echo to-err >&2; echo end; exit 7"],
        ));
        a
    };
    let (v, rc) = env.json_stdin(&strs(&args), b"in\x00\xffput");
    assert_eq!(rc, 7, "{v}");
    assert_eq!(
        v["data"]["stdout_b64"],
        base64::engine::general_purpose::STANDARD.encode(b"in\x00\xffputend\n"),
        "{v}"
    );
    assert_eq!(v["data"]["stderr"], "to-err\n", "{v}");
}

#[rstest]
fn strip_ansi_cleans_tty_output(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let (env, sshd) = setup();
    let cmd = r#"printf '\033[1;31mred\033[0m plain\n\033]0;title\007done'"#;
    let (v, rc) = jexec(&env, via, sshd.port, &["--tty"], &[cmd]);
    assert_ok(&v, rc);
    assert!(
        stdout_of(&v).contains("\u{1b}[1;31m"),
        "raw by default: {v}"
    );
    let (v, rc) = jexec(&env, via, sshd.port, &["--tty", "--strip-ansi"], &[cmd]);
    assert_ok(&v, rc);
    assert_eq!(stdout_of(&v), "red plain\ndone", "{v}");
    // Text mode streams the cleaned text too.
    let out = env.run(&strs(&text_exec_args(
        via,
        sshd.port,
        &["--tty", "--strip-ansi"],
        &[cmd],
    )));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "red plain\ndone");
}

#[rstest]
fn ten_megabytes_of_binary_output_round_trip(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let (env, sshd) = setup();
    let tmp = format!("/tmp/agentssh-big-{}", unique_digits());
    let _cleanup = RemoveOnDrop(PathBuf::from(&tmp));
    let cmd =
        format!("head -c 10000000 /dev/urandom | tee {tmp} ; sha256sum < {tmp} >&2; rm -f {tmp}");
    let (v, rc) = jexec(&env, via, sshd.port, &["--timeout", "60000"], &[&cmd]);
    assert_ok(&v, rc);
    let b64 = v["data"]["stdout_b64"]
        .as_str()
        .unwrap_or_else(|| panic!("random bytes must come with stdout_b64"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("stdout_b64 is valid base64");
    assert_eq!(bytes.len(), 10_000_000);
    let remote_sha = v["data"]["stderr"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    assert_eq!(remote_sha.len(), 64, "stderr: {}", v["data"]["stderr"]);
    assert_eq!(sha256_hex(&bytes), remote_sha);
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[rstest]
fn stdin_is_forwarded(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let (env, sshd) = setup();
    let args = exec_args(via, sshd.port, &[], &["wc", "-l"]);
    let (v, rc) = env.json_stdin(&strs(&args), b"a\nb");
    assert_ok(&v, rc);
    assert_eq!(stdout_of(&v).trim(), "1", "{v}");

    // 1 MB of binary stdin through sha256sum.
    let input: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let args = exec_args(via, sshd.port, &[], &["sha256sum"]);
    let (v, rc) = env.json_stdin(&strs(&args), &input);
    assert_ok(&v, rc);
    let remote = stdout_of(&v).split_whitespace().next().unwrap_or("");
    assert_eq!(remote, sha256_hex(&input), "{v}");
}

#[rstest]
fn text_mode_passes_streams_and_status_through(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let (env, sshd) = setup();
    let args = text_exec_args(
        via,
        sshd.port,
        &[],
        &["printf 'line1\\nno-newline'; printf 'oops\\n' >&2; exit 3"],
    );
    let out = env.run(&strs(&args));
    assert_eq!(out.status.code(), Some(3), "{}", show_output(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "line1\nno-newline",
        "stdout must be the remote stdout, raw: {}",
        show_output(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("oops\n"),
        "{}",
        show_output(&out)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("oops"),
        "{}",
        show_output(&out)
    );
}

#[rstest]
fn non_utf8_output_comes_with_b64(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let (env, sshd) = setup();
    let (v, rc) = jexec(&env, via, sshd.port, &[], &["printf '\\377\\376abc'"]);
    assert_ok(&v, rc);
    let b64 = v["data"]["stdout_b64"]
        .as_str()
        .unwrap_or_else(|| panic!("no stdout_b64 in {v}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(bytes, b"\xff\xfeabc");
    assert!(stdout_of(&v).ends_with("abc"), "lossy text: {v}");
    assert!(v["data"].get("stderr_b64").is_none(), "{v}");
}

#[rstest]
fn password_auth(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let env = TestEnv::new();
    // No key is authorized (the env's default identity will be refused).
    let sshd = Sshd::start(&[]);
    let (v, rc) = jexec(&env, via, sshd.port, &["--password", "wrong"], &["true"]);
    assert_err(&v, rc, "auth_failed", 255);

    let (v, rc) = jexec(
        &env,
        via,
        sshd.port,
        &["--password", TEST_PASSWORD],
        &["whoami"],
    );
    assert_ok(&v, rc);
    assert_eq!(stdout_of(&v), format!("{TEST_USER}\n"));

    let mut cmd = env.cmd();
    cmd.env("AGENTSSH_TEST_PW", TEST_PASSWORD).args(exec_args(
        via,
        sshd.port,
        &["--password-env", "AGENTSSH_TEST_PW"],
        &["whoami"],
    ));
    let (v, rc) = json_of(cmd, "exec --password-env");
    assert_ok(&v, rc);
    assert_eq!(stdout_of(&v), format!("{TEST_USER}\n"));
}

#[rstest]
fn closed_port_is_connect_failed(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let env = TestEnv::new();
    let port = free_port();
    let (v, rc) = jexec(&env, via, port, &[], &["true"]);
    assert_err(&v, rc, "connect_failed", 255);
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.contains(&format!("127.0.0.1:{port}")),
        "error should name the address: {msg}"
    );
}

#[rstest]
fn host_key_policies(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let (env, sshd) = setup();
    let own = env.config_home.join("agentssh").join("known_hosts");

    let (v, rc) = jexec(
        &env,
        via,
        sshd.port,
        &["--strict-host-key-checking", "yes"],
        &["true"],
    );
    assert_err(&v, rc, "host_key_unknown", 255);
    assert!(
        !fs::read_to_string(&own)
            .unwrap_or_default()
            .contains(&sshd.host_key_pub),
        "policy yes must not record the key"
    );

    // Default policy accept-new learns the key into agentssh's own known_hosts.
    let (v, rc) = jexec(&env, via, sshd.port, &[], &["true"]);
    assert_ok(&v, rc);
    let text = fs::read_to_string(&own).expect("accept-new wrote agentssh's known_hosts");
    assert!(
        text.lines().any(|l| l.trim() == sshd.known_hosts_line()),
        "expected line {:?} in {own:?}:\n{text}",
        sshd.known_hosts_line()
    );

    // Now known: `yes` works.
    let (v, rc) = jexec(
        &env,
        via,
        sshd.port,
        &["--strict-host-key-checking", "yes"],
        &["echo known"],
    );
    assert_ok(&v, rc);
    assert_eq!(stdout_of(&v), "known\n");
}

#[rstest]
fn known_hosts_in_dot_ssh_is_honoured(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let (env, sshd) = setup();
    env.trust_host(&sshd);
    let (v, rc) = jexec(
        &env,
        via,
        sshd.port,
        &["--strict-host-key-checking", "yes"],
        &["true"],
    );
    assert_ok(&v, rc);
}

#[rstest]
fn retry_reaches_a_late_server(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let (env, sshd) = setup();
    let late = late_listener::forward_after(Duration::from_millis(700), sshd.port);
    let (v, rc) = jexec(&env, via, late, &["--retry", "3"], &["echo up"]);
    assert_ok(&v, rc);
    assert_eq!(stdout_of(&v), "up\n");

    // Without --retry the first refusal is final (this one opens far too late).
    let never = late_listener::forward_after(Duration::from_secs(60), sshd.port);
    let (v, rc) = jexec(&env, via, never, &[], &["echo up"]);
    assert_err(&v, rc, "connect_failed", 255);
}

#[rstest]
fn ready_timeout_against_a_blackhole(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let (env, sshd) = setup();
    let proxy = FaultProxy::new(sshd.port);
    proxy.set_mode(FaultMode::Blackhole);
    let start = Instant::now();
    let (v, rc) = jexec(
        &env,
        via,
        proxy.port(),
        &["--ready-timeout-ms", "300"],
        &["true"],
    );
    assert_err(&v, rc, "timeout", 124);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
}

#[rstest]
fn encrypted_key_needs_its_passphrase(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let env = TestEnv::new();
    let key = env.dir.path().join("enc_ed25519");
    let out = Command::new(SSH_KEYGEN_BIN)
        .args(["-q", "-t", "ed25519", "-N", "secretpass", "-C", "enc", "-f"])
        .arg(&key)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show_output(&out));
    let pubkey = fs::read_to_string(key.with_extension("pub")).unwrap();
    let sshd = Sshd::start(&[pubkey.trim().to_string()]);
    let key_s = key.display().to_string();

    let (v, rc) = jexec(
        &env,
        via,
        sshd.port,
        &["--private-key-path", &key_s],
        &["true"],
    );
    assert_err(&v, rc, "auth_failed", 255);
    assert!(
        v["error"].as_str().unwrap().contains("passphrase"),
        "the error should say the key needs a passphrase: {v}"
    );

    let mut cmd = env.cmd();
    cmd.env("AGENTSSH_TEST_PASSPHRASE", "secretpass")
        .args(exec_args(
            via,
            sshd.port,
            &[
                "--private-key-path",
                &key_s,
                "--passphrase-env",
                "AGENTSSH_TEST_PASSPHRASE",
            ],
            &["whoami"],
        ));
    let (v, rc) = json_of(cmd, "exec --passphrase-env");
    assert_ok(&v, rc);
    assert_eq!(stdout_of(&v), format!("{TEST_USER}\n"));
}

/// An `ssh-agent -D` on a socket in a temp dir, killed by pid on drop.
struct Agent {
    child: std::process::Child,
    sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start() -> Agent {
        let dir = tempfile::Builder::new().prefix("asa-").tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ssh-agent");
        let agent = Agent {
            child,
            sock,
            _dir: dir,
        };
        assert!(
            wait_until(Duration::from_secs(10), || agent.sock.exists()),
            "ssh-agent did not create its socket"
        );
        agent
    }

    fn add(&self, key: &Path) {
        let out = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.sock)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "ssh-add: {}", show_output(&out));
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        terminate(&[self.child.id()], Duration::from_secs(2));
        let _ = self.child.wait();
    }
}

#[rstest]
fn ssh_agent_is_used(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let (env, sshd) = setup();
    let agent = Agent::start();
    agent.add(&env.key_path());
    // No key flags and no default identity: only the agent can log in.
    hide_default_identity(&env);
    let mut cmd = env.cmd();
    cmd.env("SSH_AUTH_SOCK", &agent.sock)
        .args(exec_args(via, sshd.port, &[], &["whoami"]));
    let (v, rc) = json_of(cmd, "exec via ssh-agent");
    assert_ok(&v, rc);
    assert_eq!(stdout_of(&v), format!("{TEST_USER}\n"));

    // Control: without the agent the same call fails.
    let (v, rc) = jexec(&env, via, sshd.port, &[], &["whoami"]);
    assert_err(&v, rc, "auth_failed", 255);
}

#[rstest]
fn default_identity_is_used(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let (env, sshd) = setup();
    let (v, rc) = jexec(&env, via, sshd.port, &[], &["whoami"]);
    assert_ok(&v, rc);
    assert_eq!(stdout_of(&v), format!("{TEST_USER}\n"));
}

#[rstest]
fn ssh_config_alias(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let env = TestEnv::new();
    // The alias names a key that is not a default identity; only it is authorized.
    let key = hide_default_identity(&env);
    let pubkey = fs::read_to_string(key.with_extension("pub")).unwrap();
    let sshd = Sshd::start(&[pubkey.trim().to_string()]);
    let config = env.home.join(".ssh").join("config");
    fs::write(
        &config,
        format!(
            "Host myalias\n  HostName 127.0.0.1\n  Port {}\n  User {TEST_USER}\n  IdentityFile {}\n",
            sshd.port,
            key.display()
        ),
    )
    .unwrap();
    let mut args = vec!["--json", "exec", "-H", "myalias"];
    if via == Via::Direct {
        args.push("--direct");
    }
    args.extend(["--", "whoami"]);
    let (v, rc) = env.json(&args);
    assert_ok(&v, rc);
    assert_eq!(stdout_of(&v), format!("{TEST_USER}\n"));
}

#[rstest]
fn retry_never_repeats_a_command_that_ran(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let (env, sshd) = setup();
    let tmp = format!("/tmp/agentssh-retry-{}", unique_digits());
    let _cleanup = RemoveOnDrop(PathBuf::from(&tmp));
    let (v, rc) = jexec(
        &env,
        via,
        sshd.port,
        &["--retry", "3"],
        &[&format!("echo ran >> {tmp}; exit 1")],
    );
    assert_eq!(rc, 1, "{v}");
    assert_eq!(v["data"]["exit_status"], 1, "{v}");
    let runs = fs::read_to_string(&tmp).unwrap_or_default();
    assert_eq!(
        runs,
        "ran\n",
        "the command ran {} times",
        runs.lines().count()
    );
}

#[rstest]
fn exit_signal_is_reported(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let (env, sshd) = setup();
    let (v, rc) = jexec(&env, via, sshd.port, &[], &["echo before; kill -KILL $$"]);
    assert_eq!(v["data"]["stdout"], "before\n", "{v}");
    assert_eq!(v["data"]["exit_signal"], "KILL", "{v}");
    assert_ne!(rc, 0, "a command killed by a signal must not exit 0: {v}");
}

#[rstest]
fn stdin_at_eof_does_not_hang(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let (env, sshd) = setup();
    // env.json runs with stdin = /dev/null: `cat` must see EOF at once.
    let (v, rc) = jexec(
        &env,
        via,
        sshd.port,
        &["--timeout", "10000"],
        &["cat; echo done"],
    );
    assert_ok(&v, rc);
    assert_eq!(stdout_of(&v), "done\n");
}

#[rstest]
fn text_mode_timeout_exits_124(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let (env, sshd) = setup();
    let args = text_exec_args(
        via,
        sshd.port,
        &["--timeout", "300"],
        &["echo partial; sleep 3"],
    );
    let out = env.run(&strs(&args));
    assert_eq!(out.status.code(), Some(124), "{}", show_output(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "partial\n",
        "{}",
        show_output(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("timed out"),
        "{}",
        show_output(&out)
    );
}

#[rstest]
fn password_on_argv_warns_in_text_mode(#[values(Via::Daemon, Via::Direct)] via: Via) {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[]);
    let args = text_exec_args(via, sshd.port, &["--password", TEST_PASSWORD], &["echo in"]);
    let out = env.run(&strs(&args));
    assert_eq!(out.status.code(), Some(0), "{}", show_output(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "in\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--password") && stderr.to_lowercase().contains("warning"),
        "expected a warning about --password on argv: {}",
        show_output(&out)
    );
    assert!(!stderr.contains(TEST_PASSWORD), "{}", show_output(&out));
}
