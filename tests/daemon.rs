//! The per-user daemon end to end: autostart (exactly one daemon under a stampede, stale
//! socket replaced), the socket's defences (peer uid, bad and oversized frames, hung
//! clients), connection pooling against a real sshd (reuse, replacement, idle expiry),
//! shutdown, version mismatch, the activity log, the systemd unit and streamed output.
//!
//! Every test has its own [`TestEnv`] (so its own daemon) and ends with `daemon shutdown`
//! where natural; the env's drop kills whatever is left.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::russh_server::RusshServer;
use common::*;
use serde_json::Value;

/// The hello frame a protocol-1 client sends.
const HELLO: &[u8] =
    b"{\"type\":\"hello\",\"protocol\":1,\"version\":\"0.1.0\",\"client\":\"cli\"}\n";

// ---------------------------------------------------------------- helpers

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `--json <words...>` against 127.0.0.1:`port` as [`TEST_USER`] with the env's key.
fn target_argv(env: &TestEnv, port: u16, words: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec!["--json".into()];
    v.extend(words.iter().map(|s| s.to_string()));
    v.extend([
        "-H".into(),
        "127.0.0.1".into(),
        "-P".into(),
        port.to_string(),
        "-u".into(),
        TEST_USER.into(),
        "--private-key-path".into(),
        env.key_path().display().to_string(),
    ]);
    v
}

/// `--json exec` through the daemon against 127.0.0.1:`port` as [`TEST_USER`] with the
/// env's key, plus `extra` flags, running `cmd`.
fn exec_argv(env: &TestEnv, port: u16, extra: &[&str], cmd: &str) -> Vec<String> {
    let mut v = target_argv(env, port, &["exec"]);
    v.extend(extra.iter().map(|s| s.to_string()));
    v.push("--".into());
    v.push(cmd.into());
    v
}

/// Runs `cmd` through the daemon; asserts success and returns the remote stdout.
fn exec_ok(env: &TestEnv, sshd: &Sshd, cmd: &str) -> String {
    let argv = exec_argv(env, sshd.port, &[], cmd);
    let (v, rc) = env.json(&strs(&argv));
    assert_eq!(rc, 0, "exec {cmd:?} failed: {v}");
    assert_eq!(v["ok"], true, "exec {cmd:?}: {v}");
    assert_eq!(v["data"]["exit_status"], 0, "exec {cmd:?}: {v}");
    v["data"]["stdout"]
        .as_str()
        .unwrap_or_else(|| panic!("exec {cmd:?}: no stdout in {v}"))
        .to_string()
}

/// `daemon status` data (asserting the command itself succeeded).
fn status(env: &TestEnv) -> Value {
    let (v, rc) = env.json(&["--json", "daemon", "status"]);
    assert_eq!(rc, 0, "daemon status failed: {v}");
    assert_eq!(v["ok"], true, "daemon status: {v}");
    v["data"].clone()
}

/// The running daemon's pid from `daemon status` (panics if none runs).
fn status_pid(env: &TestEnv) -> u32 {
    let s = status(env);
    assert_eq!(s["running"], true, "no daemon running: {s}");
    s["pid"].as_u64().unwrap_or_else(|| panic!("no pid in {s}")) as u32
}

fn runtime_agentssh_dir(env: &TestEnv) -> PathBuf {
    env.runtime_dir.join("agentssh")
}

fn socket_path(env: &TestEnv) -> PathBuf {
    runtime_agentssh_dir(env).join("daemon.sock")
}

fn pid_file(env: &TestEnv) -> Option<u32> {
    fs::read_to_string(runtime_agentssh_dir(env).join("daemon.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn daemon_log(env: &TestEnv) -> String {
    fs::read_to_string(env.state_home.join("agentssh").join("daemon.log")).unwrap_or_default()
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("stat {path:?}: {e}"))
        .permissions()
        .mode()
        & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {path:?}: {e}"));
}

/// Live (non-zombie) `agentssh daemon run` processes of this env: their environment has
/// its XDG_RUNTIME_DIR, found through /proc.
fn daemon_pids(env: &TestEnv) -> Vec<u32> {
    let marker = format!("XDG_RUNTIME_DIR={}", env.runtime_dir.display());
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        let is_daemon = args.len() >= 3
            && args[0].ends_with(b"agentssh")
            && args[1] == b"daemon"
            && args[2] == b"run";
        if !is_daemon || !pid_running(pid) {
            continue;
        }
        let Ok(environ) = fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if environ.split(|&b| b == 0).any(|kv| kv == marker.as_bytes()) {
            out.push(pid);
        }
    }
    out
}

/// `daemon shutdown`, asserting it worked and that no daemon of this env is left.
fn shutdown(env: &TestEnv) {
    let (v, rc) = env.json(&["--json", "daemon", "shutdown"]);
    assert_eq!(rc, 0, "daemon shutdown failed: {v}");
    assert_eq!(v["ok"], true, "daemon shutdown: {v}");
    assert!(
        wait_until(Duration::from_secs(10), || daemon_pids(env).is_empty()),
        "a daemon survived `daemon shutdown`: {:?}",
        daemon_pids(env)
    );
}

/// Reads `r` line by line on a thread; lines arrive on the returned channel.
fn line_reader(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads from `s` (with a read timeout already set) until EOF or an error; returns what
/// arrived and how it ended: `Ok(())` for EOF or a reset (the peer closed), `Err(kind)`
/// for anything else (a timeout: the peer kept the connection open).
fn read_to_close(s: &mut UnixStream) -> (Vec<u8>, Result<(), ErrorKind>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return (got, Ok(())),
            Err(e) => return (got, Err(e.kind())),
        }
    }
}

/// Autostarts this env's daemon without an sshd (an exec to a closed port still starts
/// it) and returns its pid.
fn autostart_without_sshd(env: &TestEnv) -> u32 {
    let port = free_port();
    let argv = exec_argv(env, port, &[], "true");
    let (v, rc) = env.json(&strs(&argv));
    assert_eq!(rc, 255, "exec to a closed port: {v}");
    assert_eq!(v["code"], "connect_failed", "exec to a closed port: {v}");
    status_pid(env)
}

// ---------------------------------------------------------------- autostart

#[test]
fn ten_concurrent_first_calls_start_exactly_one_daemon() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    assert!(!socket_path(&env).exists());

    let results: Vec<(usize, Value, i32)> = thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|i| {
                let env = &env;
                let argv = exec_argv(env, sshd.port, &[], &format!("echo {i}"));
                s.spawn(move || {
                    let (v, rc) = env.json(&strs(&argv));
                    (i, v, rc)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, v, rc) in &results {
        assert_eq!(*rc, 0, "call {i} failed: {v}");
        assert_eq!(v["ok"], true, "call {i}: {v}");
        assert_eq!(v["data"]["stdout"], format!("{i}\n"), "call {i}: {v}");
    }

    let pids = daemon_pids(&env);
    assert_eq!(pids.len(), 1, "expected one daemon process, found {pids:?}");
    let pid = status_pid(&env);
    assert_eq!(pids, vec![pid], "status names another daemon than /proc");
    assert_eq!(pid_file(&env), Some(pid), "pid file disagrees with status");
    // No second daemon ever got as far as listening (a loser would exit at once, so /proc
    // alone could miss it).
    let log = daemon_log(&env);
    assert_eq!(
        log.matches("daemon listening").count(),
        1,
        "more than one daemon started listening:\n{log}"
    );
    shutdown(&env);
}

#[test]
fn killed_daemon_is_replaced_and_stale_socket_reused() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    assert_eq!(exec_ok(&env, &sshd, "echo one"), "one\n");
    let old = status_pid(&env);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9 the daemon");
    assert!(
        wait_until(Duration::from_secs(5), || !pid_running(old)),
        "daemon {old} survived SIGKILL"
    );
    assert!(
        socket_path(&env).exists(),
        "a SIGKILLed daemon cannot remove its socket; the test needs the stale file"
    );

    assert_eq!(exec_ok(&env, &sshd, "echo two"), "two\n");
    let new = status_pid(&env);
    assert_ne!(new, old, "status still names the killed daemon");
    assert!(pid_running(new));
    assert_eq!(daemon_pids(&env), vec![new]);
    assert_eq!(pid_file(&env), Some(new));
    shutdown(&env);
}

/// A daemon being killed still accepts connections for a moment (its listening socket
/// outlives its main thread); a client that connected then loses the connection before any
/// hello. The client sends its request again to a fresh daemon, once.
#[test]
fn a_daemon_that_vanishes_before_its_hello_is_replaced() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    let dir = runtime_agentssh_dir(&env);
    fs::create_dir_all(&dir).unwrap();
    chmod(&dir, 0o700);
    let path = socket_path(&env);
    let listener = UnixListener::bind(&path).expect("bind the dying daemon");
    let dying = thread::spawn(move || {
        let (conn, _) = listener.accept().expect("accept the client");
        // Listener and socket file go first (a real daemon's stale file is replaced by the
        // next one), so the client's reconnect cannot reach this listener; then the client
        // is dropped without a hello.
        fs::remove_file(&path).expect("remove the socket");
        drop(listener);
        drop(conn);
    });
    assert_eq!(exec_ok(&env, &sshd, "echo served"), "served\n");
    dying.join().expect("the dying daemon thread");
    shutdown(&env);
}

#[test]
fn test_env_drop_kills_an_autostarted_daemon() {
    let env = TestEnv::new();
    let pid = autostart_without_sshd(&env);
    assert!(pid_running(pid));
    drop(env);
    assert!(
        wait_until(Duration::from_secs(5), || !pid_running(pid)),
        "TestEnv drop left the autostarted daemon {pid} running"
    );
}

// ---------------------------------------------------------------- socket defences

const FOREIGN_CLIENT_PY: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(8)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("CONNECT_FAILED", e)
    sys.exit(0)
print("CONNECTED", flush=True)
try:
    s.sendall(sys.argv[2].encode())
except OSError as e:
    print("SEND_FAILED", e)
data = b""
try:
    while True:
        c = s.recv(65536)
        if not c:
            print("EOF")
            break
        data += c
except socket.timeout:
    print("TIMEOUT")
except OSError as e:
    print("RESET", e)
print("DATA", repr(data))
"#;

#[test]
fn client_of_another_uid_is_refused() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    assert_eq!(exec_ok(&env, &sshd, "echo up"), "up\n");
    let dir = runtime_agentssh_dir(&env);
    let sock = socket_path(&env);
    assert_eq!(mode(&dir), 0o700, "runtime dir {dir:?} mode");
    assert_eq!(mode(&sock), 0o600, "socket {sock:?} mode");

    // Open the path to everyone: only the daemon's SO_PEERCRED check is left.
    chmod(env.dir.path(), 0o755);
    chmod(&env.runtime_dir, 0o755);
    chmod(&dir, 0o755);
    chmod(&sock, 0o666);

    let mut cmd = Command::new("/usr/bin/setpriv");
    cmd.args([
        &format!("--reuid={TEST_USER}"),
        &format!("--regid={TEST_USER}"),
        "--clear-groups",
        "/usr/bin/python3",
        "-c",
        FOREIGN_CLIENT_PY,
    ])
    .arg(&sock)
    .arg(std::str::from_utf8(HELLO).unwrap())
    .env_clear()
    .env("PATH", "/usr/bin:/bin")
    .current_dir("/");
    let out = output_with_deadline(cmd, None, Duration::from_secs(20));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "foreign client: {}",
        show_output(&out)
    );
    assert!(
        text.contains("CONNECTED"),
        "the foreign client could not even connect, so the test proves nothing: {}",
        show_output(&out)
    );
    assert!(
        !text.contains("hello") && !text.contains("TIMEOUT"),
        "a client of uid {TEST_USER} was not refused at once: {}",
        show_output(&out)
    );
    assert!(
        text.contains("EOF") || text.contains("RESET"),
        "{}",
        show_output(&out)
    );

    // Our own client is unaffected.
    assert_eq!(exec_ok(&env, &sshd, "echo still"), "still\n");
    assert_eq!(status(&env)["running"], true);
    let log = daemon_log(&env);
    assert!(
        log.contains("refused a client of another user"),
        "daemon.log does not mention the refused client:\n{log}"
    );
    shutdown(&env);
}

/// A client sends its request right behind its hello. If it speaks another protocol, the
/// daemon must answer the hello (so the client can say "version mismatch") and act on
/// nothing it sent after it, not even a request that parses.
#[test]
fn a_request_behind_a_foreign_protocol_hello_is_not_acted_on() {
    use std::io::{BufRead, BufReader};
    let env = TestEnv::new();
    let pid = autostart_without_sshd(&env);
    let mut s = UnixStream::connect(socket_path(&env)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"{\"type\":\"hello\",\"protocol\":999,\"version\":\"9.9.9\",\"client\":\"cli\"}\n\
          {\"type\":\"request\",\"op\":\"shutdown\"}\n",
    )
    .expect("send hello and request");
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).expect("read the daemon's hello");
    let hello: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    assert_eq!(hello["type"], "hello", "{hello}");
    assert_eq!(hello["protocol"], 1, "{hello}");
    line.clear();
    let n = r.read_line(&mut line).expect("read after the hello");
    assert_eq!(
        n, 0,
        "the daemon went on talking to a foreign client: {line:?}"
    );
    assert_eq!(
        status_pid(&env),
        pid,
        "the daemon obeyed the foreign shutdown request"
    );
    assert!(pid_running(pid));
    shutdown(&env);
}

/// Reads frames from `r` until a `response` frame and returns it.
fn next_response(r: &mut impl BufRead) -> Value {
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).expect("read a frame");
        assert!(n > 0, "the daemon closed the connection before answering");
        let frame: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        if frame["type"] == "response" {
            return frame;
        }
    }
}

/// A long-lived client (`agentssh mcp`) asks for `keep_alive` and sends one request after
/// another on one connection; the daemon closes it after a request that does not keep it.
/// A client that did not ask is served one request, as before, even if it sends two.
#[test]
fn a_kept_alive_connection_serves_request_after_request() {
    let env = TestEnv::new();
    let pid = autostart_without_sshd(&env);
    let sock = socket_path(&env);

    let mut s = UnixStream::connect(&sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(
        b"{\"type\":\"hello\",\"protocol\":1,\"version\":\"0.1.0\",\"client\":\"mcp\",\"keep_alive\":true}\n",
    )
    .expect("send hello");
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    let mut line = String::new();
    r.read_line(&mut line).expect("read the daemon's hello");
    for round in 0..3 {
        s.write_all(b"{\"type\":\"request\",\"op\":\"status\"}\n")
            .expect("send status");
        let answer = next_response(&mut r);
        assert_eq!(answer["ok"]["pid"], pid, "round {round}: {answer}");
        s.write_all(b"{\"type\":\"request\",\"op\":\"session_list\"}\n")
            .expect("send session_list");
        let answer = next_response(&mut r);
        assert!(answer["ok"].is_object(), "round {round}: {answer}");
    }
    drop(r);
    drop(s);

    let mut once = UnixStream::connect(&sock).expect("connect");
    once.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    once.write_all(HELLO).expect("send hello");
    once.write_all(
        b"{\"type\":\"request\",\"op\":\"status\"}\n{\"type\":\"request\",\"op\":\"status\"}\n",
    )
    .expect("send two requests");
    let (got, how) = read_to_close(&mut once);
    assert_eq!(how, Ok(()), "a one-shot connection was kept open");
    let text = String::from_utf8_lossy(&got);
    assert_eq!(
        text.matches("\"type\":\"response\"").count(),
        1,
        "a one-shot connection answered more than one request: {text}"
    );
    shutdown(&env);
}

#[test]
fn bad_frames_and_hung_clients_do_not_disturb_others() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    assert_eq!(exec_ok(&env, &sshd, "echo warm"), "warm\n");
    let sock = socket_path(&env);
    let started = Instant::now();

    // 1. A client that connects and says nothing.
    let mut hanger = UnixStream::connect(&sock).expect("connect hanger");

    // 2. Garbage instead of a hello.
    let mut garbage = UnixStream::connect(&sock).expect("connect garbage");
    garbage.write_all(b"not json\n").expect("send garbage");

    // 3. 100 MB without a newline, after a valid hello, from a thread.
    let big_sock = sock.clone();
    let big = thread::spawn(move || -> (usize, Option<std::io::Error>) {
        let mut s = UnixStream::connect(&big_sock).expect("connect big");
        s.set_write_timeout(Some(Duration::from_secs(15))).unwrap();
        if let Err(e) = s.write_all(HELLO) {
            return (0, Some(e));
        }
        let chunk = vec![b'a'; 1 << 20];
        let mut sent = 0usize;
        for _ in 0..100 {
            match s.write_all(&chunk) {
                Ok(()) => sent += chunk.len(),
                Err(e) => return (sent, Some(e)),
            }
        }
        (sent, None)
    });

    // Meanwhile the daemon serves everyone else.
    let s = status(&env);
    assert_eq!(s["running"], true, "{s}");
    assert_eq!(exec_ok(&env, &sshd, "echo busy"), "busy\n");

    let (sent, err) = big.join().expect("big writer panicked");
    match err {
        None => panic!("the daemon accepted a 100 MB frame without closing the connection"),
        Some(e) => assert!(
            matches!(
                e.kind(),
                ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
            ),
            "oversized frame: expected the daemon to close the connection, got {e} \
             ({:?}) after {sent} bytes (a timeout means it stopped reading but kept it open)",
            e.kind()
        ),
    }
    assert!(sent < 100 << 20, "sent {sent} bytes");

    garbage
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let (got, how) = read_to_close(&mut garbage);
    assert_eq!(
        how,
        Ok(()),
        "the garbage client's connection stayed open (got {:?})",
        String::from_utf8_lossy(&got)
    );
    assert!(
        !String::from_utf8_lossy(&got).contains("hello"),
        "the daemon answered garbage with a hello: {:?}",
        String::from_utf8_lossy(&got)
    );

    // The hung client holds only its own connection, and not forever.
    assert_eq!(status(&env)["running"], true);
    let left = Duration::from_secs(19).saturating_sub(started.elapsed());
    hanger.set_read_timeout(Some(left)).unwrap();
    let (got, how) = read_to_close(&mut hanger);
    assert_eq!(
        how,
        Ok(()),
        "a client that never says hello was still connected after {:?}",
        started.elapsed()
    );
    assert!(got.is_empty(), "the silent client got {got:?}");
    assert_eq!(exec_ok(&env, &sshd, "echo after"), "after\n");
    shutdown(&env);
}

// ---------------------------------------------------------------- pooling

#[test]
fn sequential_and_parallel_execs_share_pooled_connections() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    for i in 0..100 {
        assert_eq!(
            exec_ok(&env, &sshd, &format!("echo s{i}")),
            format!("s{i}\n")
        );
    }
    assert_eq!(
        sshd.connection_count(),
        1,
        "100 sequential execs through the daemon opened more than one SSH connection"
    );

    let results: Vec<(usize, Value, i32)> = thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let env = &env;
                let argv = exec_argv(env, sshd.port, &[], &format!("echo p{i}"));
                s.spawn(move || {
                    let (v, rc) = env.json(&strs(&argv));
                    (i, v, rc)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, v, rc) in &results {
        assert_eq!(*rc, 0, "parallel exec {i}: {v}");
        assert_eq!(
            v["data"]["stdout"],
            format!("p{i}\n"),
            "parallel exec {i}: {v}"
        );
    }
    let n = sshd.connection_count();
    assert!(
        (1..=3).contains(&n),
        "20 parallel execs made the pool open {n} SSH connections in total"
    );
    let s = status(&env);
    let pooled = s["connections"].as_u64().unwrap_or(0);
    assert!(
        (1..=n as u64).contains(&pooled),
        "the pool lists {pooled} connections, sshd saw {n}: {s}"
    );
    shutdown(&env);
}

/// `daemon status` carries every field CLI.md and the brief name, with sane types.
fn assert_status_shape(env: &TestEnv, s: &Value) {
    assert_eq!(s["running"], true, "{s}");
    assert!(s["pid"].is_u64(), "{s}");
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"), "{s}");
    assert!(s["protocol"].is_u64(), "{s}");
    assert_eq!(s["socket"], socket_path(env).display().to_string(), "{s}");
    assert!(s["uptime_ms"].is_u64(), "{s}");
    for k in ["connections", "sessions", "proxies"] {
        assert!(s[k].is_u64(), "{k} in {s}");
    }
    assert!(s["session_list"].is_array(), "{s}");
    let rows = s["connection_list"].as_array().expect("connection_list");
    assert_eq!(rows.len() as u64, s["connections"].as_u64().unwrap(), "{s}");
    for row in rows {
        assert!(row["id"].is_string(), "{row}");
        assert!(row["target"].is_string(), "{row}");
        for k in ["channels_in_use", "channels_opened", "age_ms", "idle_ms"] {
            assert!(row[k].is_u64(), "{k} in {row}");
        }
        assert!(row["healthy"].is_boolean(), "{row}");
    }
}

/// The pool keeps a session channel open ahead of need on each connection. A server that
/// closes channels left without a request (an idle-channel timeout) closes that spare; the
/// next exec must notice and open a fresh channel instead of failing on the dead one.
#[test]
fn a_spare_channel_the_server_closed_is_replaced() {
    let env = TestEnv::new();
    let server = RusshServer::start_closing_idle_sessions(Duration::from_millis(100));
    env.trust_known_hosts_line(&server.known_hosts_line());
    let run = |i: usize| {
        let argv = exec_argv(&env, server.port, &[], &format!("echo {i}"));
        let (v, rc) = env.json(&strs(&argv));
        assert_eq!(rc, 0, "exec {i}: {v}");
        assert_eq!(v["data"]["stdout"], "ok\n", "exec {i}: {v}");
    };
    run(0);
    for i in 1..4 {
        // Wait until the server has closed the spare opened after the previous exec.
        assert!(
            wait_until(Duration::from_secs(10), || {
                server
                    .idle_sessions_closed
                    .load(std::sync::atomic::Ordering::SeqCst)
                    >= i
            }),
            "the server never closed spare channel {i}"
        );
        run(i);
    }
    shutdown(&env);
}

#[test]
fn a_file_operation_starts_on_the_spare_channel() {
    let env = TestEnv::new();
    let server = RusshServer::start();
    env.trust_known_hosts_line(&server.known_hosts_line());
    let argv = exec_argv(&env, server.port, &[], "true");
    let (v, rc) = env.json(&strs(&argv));
    assert_eq!(rc, 0, "exec: {v}");
    // The exec's channel, then a spare opened in the background for the next request.
    assert!(
        wait_until(Duration::from_secs(10), || {
            status(&env)["connection_list"][0]["spare_channel"] == true
        }),
        "the daemon never reported a spare channel: {}",
        status(&env)
    );
    let spare = server.channels.lock().unwrap().opened[1];
    // The exec backend (the russh server has no SFTP) runs `sh` commands; the server answers
    // every one with "ok", so the read itself fails. Only its first channel matters here.
    let mut read = target_argv(&env, server.port, &["file", "read"]);
    read.extend(["--method", "exec", "--remote", "/etc/hostname"].map(String::from));
    let (v, _) = env.json(&strs(&read));
    assert_eq!(
        v["ok"], false,
        "the russh server cannot serve a real read: {v}"
    );
    let log = server.channels.lock().unwrap();
    assert!(
        log.execs.len() >= 2,
        "no command of the file read reached the server: {log:?}"
    );
    assert_eq!(
        log.execs[1], spare,
        "the file read's first command should run on the spare channel: {log:?}"
    );
    drop(log);
    shutdown(&env);
}

#[test]
fn pooled_connection_killed_server_side_is_replaced() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    assert_eq!(exec_ok(&env, &sshd, "echo before"), "before\n");
    assert_eq!(sshd.connection_count(), 1);
    let before = status(&env);
    assert_status_shape(&env, &before);
    assert_eq!(before["connections"], 1, "{before}");
    let row = &before["connection_list"][0];
    assert_eq!(
        row["target"],
        format!("{TEST_USER}@127.0.0.1:{}", sshd.port)
    );
    assert_eq!(row["channels_in_use"], 0, "{before}");
    assert_eq!(row["channels_opened"], 1, "{before}");
    assert_eq!(row["healthy"], true, "{before}");

    sshd.kill_connections();
    // No --retry: the daemon itself must notice the dead connection and open another.
    assert_eq!(exec_ok(&env, &sshd, "echo after"), "after\n");
    assert_eq!(
        sshd.connection_count(),
        2,
        "expected exactly one new connection"
    );
    let after = status(&env);
    assert_eq!(after["connections"], 1, "{after}");
    assert_ne!(
        after["connection_list"][0]["id"], before["connection_list"][0]["id"],
        "the pool still lists the killed connection: {after}"
    );
    assert_eq!(after["connection_list"][0]["healthy"], true, "{after}");
    shutdown(&env);
}

#[test]
fn idle_pooled_connection_expires() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    let argv = exec_argv(&env, sshd.port, &[], "sleep 3; echo done");
    thread::scope(|s| {
        let runner = s.spawn(|| {
            let mut cmd = env.cmd();
            cmd.args(&argv).env("AGENTSSH_POOL_IDLE_SECS", "1");
            parse_json_output(&output_with_deadline(cmd, None, RUN_DEADLINE), &["exec"])
        });
        // While the command runs (longer than the idle timeout) its connection is in use.
        let mut last = Value::Null;
        let seen = wait_until(Duration::from_secs(15), || {
            let (v, _) = env.json(&["--json", "daemon", "status"]);
            last = v["data"].clone();
            last["connections"] == 1 && last["connection_list"][0]["channels_in_use"] == 1
        });
        assert!(seen, "status never showed the in-use connection: {last}");
        let (v, rc) = runner.join().unwrap();
        assert_eq!(rc, 0, "an in-use connection must not expire: {v}");
        assert_eq!(v["data"]["stdout"], "done\n", "{v}");
    });
    let mut last = Value::Null;
    let expired = wait_until(Duration::from_secs(10), || {
        last = status(&env);
        last["connections"] == 0
    });
    assert!(
        expired,
        "the idle connection did not expire (AGENTSSH_POOL_IDLE_SECS=1): {last}"
    );
    assert_eq!(last["running"], true, "{last}");
    assert_eq!(last["connection_list"], serde_json::json!([]), "{last}");
    shutdown(&env);
}

// ---------------------------------------------------------------- shutdown, versions

#[test]
fn shutdown_leaves_nothing_behind() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    assert_eq!(exec_ok(&env, &sshd, "echo hi"), "hi\n");
    let pid = status_pid(&env);
    let sock = socket_path(&env);
    let sock_str = sock.display().to_string();
    let listening = || {
        let out = Command::new("ss")
            .args(["-xl"])
            .stdin(Stdio::null())
            .output()
            .expect("run ss -xl");
        String::from_utf8_lossy(&out.stdout).contains(&sock_str)
    };
    assert!(sock.exists());
    assert!(
        listening(),
        "ss -xl does not list {sock_str}: the check below is void"
    );

    let (v, rc) = env.json(&["--json", "daemon", "shutdown"]);
    assert_eq!(rc, 0, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    assert!(!sock.exists(), "the socket file outlived `daemon shutdown`");
    assert!(
        wait_until(Duration::from_secs(5), || !pid_running(pid)),
        "daemon {pid} still running after shutdown"
    );
    assert!(!listening(), "{sock_str} is still a listening socket");
    assert!(daemon_pids(&env).is_empty(), "{:?}", daemon_pids(&env));

    let s = status(&env);
    assert_eq!(s["running"], false, "{s}");
    assert!(!sock.exists(), "`daemon status` started a daemon");
    assert!(
        daemon_pids(&env).is_empty(),
        "`daemon status` started a daemon"
    );

    // A second shutdown is harmless.
    let (v, rc) = env.json(&["--json", "daemon", "shutdown"]);
    assert_eq!(rc, 0, "{v}");
    assert!(daemon_pids(&env).is_empty());
}

/// Binds a fake daemon at the env's socket path that answers every hello with protocol
/// 999 / version 9.9.9 / pid 1.
fn fake_future_daemon(env: &TestEnv) {
    let dir = runtime_agentssh_dir(env);
    fs::create_dir_all(&dir).unwrap();
    chmod(&dir, 0o700);
    let listener = UnixListener::bind(socket_path(env)).expect("bind fake daemon");
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { break };
            thread::spawn(move || {
                let mut w = conn.try_clone().unwrap();
                let mut r = BufReader::new(conn);
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let _ = w.write_all(
                    b"{\"type\":\"hello\",\"protocol\":999,\"version\":\"9.9.9\",\"pid\":1}\n",
                );
                // Swallow whatever else comes until the client leaves.
                let _ = std::io::copy(&mut r, &mut std::io::sink());
            });
        }
    });
}

#[test]
fn version_mismatch_is_reported_with_both_versions() {
    let env = TestEnv::new();
    fake_future_daemon(&env);
    let (v, rc) = env.json(&["--json", "daemon", "status"]);
    assert_ne!(rc, 0, "{v}");
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["code"], "version_mismatch", "{v}");
    let msg = v["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains("9.9.9"),
        "message lacks the daemon's version: {msg}"
    );
    assert!(
        msg.contains(env!("CARGO_PKG_VERSION")),
        "message lacks our version: {msg}"
    );
    assert!(
        msg.contains("daemon shutdown"),
        "message does not suggest `daemon shutdown`: {msg}"
    );
    // The client never guesses: it did not start a daemon of its own either.
    assert!(daemon_pids(&env).is_empty());
}

/// A stand-in for a daemon of another version: answers hellos with protocol 999 and its
/// own pid, removes its socket and exits on SIGTERM.
const OLD_DAEMON_PY: &str = r#"
import json, os, signal, socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(16)
def term(*_):
    try:
        os.unlink(path)
    finally:
        os._exit(0)
signal.signal(signal.SIGTERM, term)
print("ready", flush=True)
hello = json.dumps({"type": "hello", "protocol": 999, "version": "9.9.9", "pid": os.getpid()})
while True:
    c, _ = s.accept()
    try:
        c.settimeout(5)
        c.recv(65536)
        c.sendall(hello.encode() + b"\n")
        c.recv(65536)
    except OSError:
        pass
    c.close()
"#;

/// The version-mismatch message tells the user to run `daemon shutdown`; that advice must
/// work against a daemon that speaks another protocol (e.g. by signalling the pid it
/// announced and its peer credentials confirm).
#[test]
fn daemon_shutdown_stops_a_daemon_of_another_version() {
    let env = TestEnv::new();
    let dir = runtime_agentssh_dir(&env);
    fs::create_dir_all(&dir).unwrap();
    chmod(&dir, 0o700);
    let sock = socket_path(&env);
    let mut fake = Command::new("/usr/bin/python3");
    fake.args(["-c", OLD_DAEMON_PY])
        .arg(&sock)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = fake.spawn().expect("start the fake old daemon");
    let mut guard = KillOnDrop::new();
    guard.push(child.id());
    let lines = line_reader(child.stdout.take().unwrap());
    assert_eq!(
        lines.recv_timeout(Duration::from_secs(10)).as_deref(),
        Ok("ready")
    );

    let (v, _) = env.json(&["--json", "daemon", "status"]);
    assert_eq!(v["code"], "version_mismatch", "{v}");

    let (v, rc) = env.json(&["--json", "daemon", "shutdown"]);
    let exited = wait_until(Duration::from_secs(5), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    assert!(
        rc == 0 && v["ok"] == true && exited && !sock.exists(),
        "`daemon shutdown`, which the version-mismatch error recommends, did not stop a \
         daemon of another version: rc {rc}, {v}; fake daemon exited: {exited}"
    );
}

// ---------------------------------------------------------------- activity log

#[test]
fn activity_log_records_requests_without_secrets() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    let secret = format!("pw-{}-Zq8r", env.id.replace('-', ""));
    let pw = ["--password", secret.as_str()];
    let mut exec_outputs = String::new();

    // a) remote command fails: still outcome ok.
    let argv = exec_argv(&env, sshd.port, &pw, "echo activity-a; exit 3");
    let out = env.run(&strs(&argv));
    exec_outputs += &show_output(&out);
    let (v, rc) = parse_json_output(&out, &["exec a"]);
    assert_eq!(rc, 3, "{v}");
    assert_eq!(v["data"]["exit_status"], 3, "{v}");

    // b) nothing listens: connect_failed.
    let closed = free_port();
    let argv = exec_argv(&env, closed, &pw, "echo activity-b");
    let out = env.run(&strs(&argv));
    exec_outputs += &show_output(&out);
    let (v, rc) = parse_json_output(&out, &["exec b"]);
    assert_eq!(rc, 255, "{v}");
    assert_eq!(v["code"], "connect_failed", "{v}");

    // c) a user sshd refuses: the password really is sent, and fails.
    let mut argv = exec_argv(&env, sshd.port, &pw, "echo activity-c");
    let u = argv.iter().position(|a| a == TEST_USER).unwrap();
    argv[u] = "nobody".into();
    let out = env.run(&strs(&argv));
    exec_outputs += &show_output(&out);
    let (v, rc) = parse_json_output(&out, &["exec c"]);
    assert_eq!(rc, 255, "{v}");
    assert_eq!(v["code"], "auth_failed", "{v}");

    let log_out = env.run(&["--json", "log"]);
    let (v, rc) = parse_json_output(&log_out, &["log"]);
    assert_eq!(rc, 0, "{v}");
    let entries = v["data"]["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no entries in {v}"))
        .clone();
    let find = |marker: &str| -> Value {
        entries
            .iter()
            .find(|e| e["command"].as_str().unwrap_or("").contains(marker))
            .unwrap_or_else(|| panic!("no log entry for {marker}: {v}"))
            .clone()
    };
    let a = find("activity-a");
    assert_eq!(a["outcome"], "ok", "{a}");
    assert_eq!(
        a["target"],
        format!("{TEST_USER}@127.0.0.1:{}", sshd.port),
        "{a}"
    );
    assert!(a["command"].as_str().unwrap().contains("exit 3"), "{a}");
    assert!(a["duration_ms"].is_u64(), "{a}");
    assert!(a["time_ms"].is_u64(), "{a}");
    let b = find("activity-b");
    assert_eq!(b["outcome"], "connect_failed", "{b}");
    assert_eq!(
        b["target"],
        format!("{TEST_USER}@127.0.0.1:{closed}"),
        "{b}"
    );
    assert!(b["duration_ms"].is_u64(), "{b}");
    let c = find("activity-c");
    assert_eq!(c["outcome"], "auth_failed", "{c}");
    assert_eq!(
        c["target"],
        format!("nobody@127.0.0.1:{}", sshd.port),
        "{c}"
    );

    let (v, rc) = env.json(&["--json", "log", "--limit", "1"]);
    assert_eq!(rc, 0, "{v}");
    let newest = v["data"]["entries"].as_array().expect("entries");
    assert_eq!(newest.len(), 1, "--limit 1: {v}");
    assert!(
        newest[0]["command"]
            .as_str()
            .unwrap_or("")
            .contains("activity-c"),
        "--limit 1 must keep the newest entry: {v}"
    );

    let text_out = env.run(&["log"]);
    assert!(text_out.status.success(), "{}", show_output(&text_out));
    let text = String::from_utf8_lossy(&text_out.stdout);
    assert!(text.contains("activity-a"), "text log: {text}");

    for (what, hay) in [
        ("`log --json` output", show_output(&log_out)),
        ("`log` text output", show_output(&text_out)),
        ("daemon.log", daemon_log(&env)),
        ("exec JSON/stderr", exec_outputs),
    ] {
        assert!(
            !hay.contains(&secret),
            "the password appears in {what}:\n{hay}"
        );
    }
    shutdown(&env);
}

#[test]
fn log_follow_streams_new_entries_as_ndjson() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    assert_eq!(exec_ok(&env, &sshd, "echo seed"), "seed\n");

    let mut cmd = env.cmd();
    cmd.args(["--json", "log", "--follow"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn log --follow");
    let mut guard = KillOnDrop::new();
    guard.push(child.id());
    let lines = line_reader(child.stdout.take().unwrap());
    // The past entry arrives first: from then on the follower is subscribed.
    let first = lines
        .recv_timeout(Duration::from_secs(10))
        .expect("log --follow printed no past entry");
    let first: Value = serde_json::from_str(&first).expect("NDJSON line");
    assert_eq!(first["ok"], true, "{first}");
    assert!(
        first["data"]["command"]
            .as_str()
            .unwrap_or("")
            .contains("seed"),
        "{first}"
    );

    assert_eq!(
        exec_ok(&env, &sshd, "echo followed-marker"),
        "followed-marker\n"
    );
    let end = Instant::now() + Duration::from_secs(10);
    let entry = loop {
        let left = end.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .expect("log --follow did not stream the new entry");
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("log --follow line is not JSON ({e}): {line:?}"));
        assert_eq!(v["ok"], true, "{v}");
        if v["data"]["command"]
            .as_str()
            .unwrap_or("")
            .contains("followed-marker")
        {
            break v;
        }
    };
    assert_eq!(entry["data"]["outcome"], "ok", "{entry}");
    assert_eq!(
        entry["data"]["target"],
        format!("{TEST_USER}@127.0.0.1:{}", sshd.port)
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "log --follow exited on its own"
    );
    let _ = child.kill();
    let _ = child.wait();
    shutdown(&env);
}

// ---------------------------------------------------------------- systemd unit

#[test]
fn install_and_uninstall_the_systemd_unit() {
    let env = TestEnv::new();
    let unit = env
        .config_home
        .join("systemd")
        .join("user")
        .join("agentssh.service");
    let exe = fs::canonicalize(env!("CARGO_BIN_EXE_agentssh")).unwrap();
    let exec_start = format!("ExecStart={} daemon run\n", exe.display());

    let out = env.run(&["daemon", "install", "--dry-run"]);
    assert!(out.status.success(), "{}", show_output(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&exec_start), "dry-run text: {text}");
    assert!(!unit.exists(), "--dry-run wrote {unit:?}");

    let (v, rc) = env.json(&["--json", "daemon", "install", "--dry-run"]);
    assert_eq!(rc, 0, "{v}");
    assert!(
        v["data"]["unit"]
            .as_str()
            .unwrap_or("")
            .contains(&exec_start),
        "{v}"
    );
    assert_eq!(v["data"]["unit_path"], unit.display().to_string(), "{v}");
    assert!(!unit.exists(), "--dry-run wrote {unit:?}");
    assert!(
        !env.config_home.join("systemd").exists(),
        "--dry-run created directories"
    );

    let (v, rc) = env.json(&["--json", "daemon", "install"]);
    assert_eq!(rc, 0, "{v}");
    let written = fs::read_to_string(&unit).expect("install wrote no unit");
    assert!(written.contains(&exec_start), "{written}");
    assert!(written.contains("[Install]"), "{written}");
    assert_eq!(v["data"]["unit"].as_str(), Some(written.as_str()));
    let enable = v["data"]["enable_with"].as_str().unwrap_or_default();
    assert!(
        enable.contains("systemctl --user") && enable.contains("enable"),
        "no systemctl --user enable command in {v}"
    );

    let (v, rc) = env.json(&["--json", "daemon", "uninstall", "--dry-run"]);
    assert_eq!(rc, 0, "{v}");
    assert!(unit.exists(), "uninstall --dry-run removed the unit");
    let (v, rc) = env.json(&["--json", "daemon", "uninstall"]);
    assert_eq!(rc, 0, "{v}");
    assert_eq!(v["data"]["removed"], true, "{v}");
    assert!(!unit.exists(), "uninstall left {unit:?}");
    let (v, rc) = env.json(&["--json", "daemon", "uninstall"]);
    assert_eq!(rc, 0, "a second uninstall should be harmless: {v}");

    // None of this needs or starts the daemon.
    assert!(daemon_pids(&env).is_empty());
    assert!(!socket_path(&env).exists());
}

// ---------------------------------------------------------------- streaming

#[test]
fn exec_through_the_daemon_streams_text_output() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    let port = sshd.port.to_string();
    let key = env.key_path().display().to_string();
    let mut cmd = env.cmd();
    cmd.args([
        "exec",
        "-H",
        "127.0.0.1",
        "-P",
        &port,
        "-u",
        TEST_USER,
        "--private-key-path",
        &key,
        "--",
        "echo first; sleep 2; echo second",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn exec");
    let mut guard = KillOnDrop::new();
    guard.push(child.id());
    let lines = line_reader(child.stdout.take().unwrap());

    let first = lines
        .recv_timeout(Duration::from_secs(20))
        .expect("no first line");
    let first_at = Instant::now();
    assert_eq!(first, "first");
    assert!(
        child.try_wait().unwrap().is_none(),
        "`first` arrived only after the command finished: output is not streamed"
    );
    let second = lines
        .recv_timeout(Duration::from_secs(20))
        .expect("no second line");
    assert_eq!(second, "second");
    assert!(
        first_at.elapsed() >= Duration::from_millis(1500),
        "the two lines arrived {:?} apart; the remote sleeps 2 s between them",
        first_at.elapsed()
    );
    assert!(
        wait_until(Duration::from_secs(10), || matches!(
            child.try_wait(),
            Ok(Some(_))
        )),
        "exec did not exit"
    );
    assert!(child.wait().unwrap().success());
    shutdown(&env);
}
