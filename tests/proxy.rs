//! The proxy tier end to end against a real sshd: local forwards (100 concurrent clients
//! each get their own bytes back), SOCKS5 through curl and by hand (a refused target gets a
//! failure reply, never a hang), reverse forwards, the loopback rule, `address_in_use`,
//! close freeing the port at once, shutdown closing proxies, surviving a dropped
//! connection, and jump hosts (two sshds, host keys checked at each hop).
//!
//! Local targets are small std servers on 127.0.0.1 (echo, HTTP) run on threads; sshd runs
//! on the same machine, so "reachable from the server" means reachable here too.

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Read/write timeout on every test socket: a hang fails the test instead of blocking it.
const IO_DEADLINE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- local servers

/// An echo server on 127.0.0.1: echoes until EOF, then closes. Runs until the test exits.
fn echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            thread::spawn(move || {
                let mut r = s.try_clone().unwrap();
                let _ = std::io::copy(&mut r, &mut s);
                let _ = s.shutdown(Shutdown::Write);
            });
        }
    });
    port
}

/// A one-page HTTP server on 127.0.0.1 answering every request with `body`.
fn http_server(body: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            thread::spawn(move || {
                let _ = s.set_read_timeout(Some(IO_DEADLINE));
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if line == "\r\n" {
                        break;
                    }
                    line.clear();
                }
                let mut s = s;
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    port
}

/// A port nothing listens on (bound, then closed).
fn closed_port() -> u16 {
    free_port()
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect 127.0.0.1:{port}: {e}"));
    s.set_read_timeout(Some(IO_DEADLINE)).unwrap();
    s.set_write_timeout(Some(IO_DEADLINE)).unwrap();
    s
}

/// Sends `data`, half-closes, and returns everything read back until EOF.
fn round_trip(port: u16, data: &[u8]) -> Vec<u8> {
    let mut s = connect(port);
    let mut w = s.try_clone().unwrap();
    let data = data.to_vec();
    let writer = thread::spawn(move || {
        w.write_all(&data).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    s.read_to_end(&mut back)
        .unwrap_or_else(|e| panic!("read through 127.0.0.1:{port}: {e}"));
    writer.join().unwrap();
    back
}

// ---------------------------------------------------------------- agentssh helpers

/// Connection flags for `sshd` as [`TEST_USER`] with the env's key.
fn conn(env: &TestEnv, sshd: &Sshd) -> Vec<String> {
    vec![
        "-H".into(),
        "127.0.0.1".into(),
        "-P".into(),
        sshd.port.to_string(),
        "-u".into(),
        TEST_USER.into(),
        "--private-key-path".into(),
        env.key_path().display().to_string(),
    ]
}

fn run_json(env: &TestEnv, args: &[String]) -> (Value, i32) {
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    env.json(&argv)
}

/// `--json proxy create <conn> <extra>`: the raw envelope and exit code.
fn try_create(env: &TestEnv, sshd: &Sshd, extra: &[&str]) -> (Value, i32) {
    let mut args: Vec<String> = vec!["--json".into(), "proxy".into(), "create".into()];
    args.extend(conn(env, sshd));
    args.extend(extra.iter().map(|s| s.to_string()));
    run_json(env, &args)
}

/// `proxy create`, asserting success; returns `data`.
fn create(env: &TestEnv, sshd: &Sshd, extra: &[&str]) -> Value {
    let (v, rc) = try_create(env, sshd, extra);
    assert_eq!(rc, 0, "proxy create {extra:?} failed: {v}");
    assert_eq!(v["ok"], true, "proxy create {extra:?}: {v}");
    v["data"].clone()
}

/// The port of an `ADDR:PORT` string in a proxy row.
fn port_of(v: &Value, field: &str) -> u16 {
    let s = v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {v}"));
    s.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {field} {s:?}"))
}

fn ok(env: &TestEnv, args: &[&str]) -> Value {
    let (v, rc) = env.json(args);
    assert_eq!(rc, 0, "{args:?} failed: {v}");
    assert_eq!(v["ok"], true, "{args:?}: {v}");
    v["data"].clone()
}

/// The row of proxy `id` in `proxy list`.
fn row(env: &TestEnv, id: &str) -> Value {
    let list = ok(env, &["--json", "proxy", "list"]);
    list["proxies"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["id"] == id))
        .cloned()
        .unwrap_or_else(|| panic!("proxy {id} not in {list}"))
}

fn can_bind(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

// ---------------------------------------------------------------- local forward

#[test]
fn local_forward_serves_100_concurrent_clients_and_close_frees_the_port() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    let echo = echo_server();

    let p = create(
        &env,
        &sshd,
        &[
            "--local",
            "127.0.0.1:0",
            "--remote",
            &format!("127.0.0.1:{echo}"),
        ],
    );
    assert_eq!(p["kind"], "local", "{p}");
    assert_eq!(p["proxy_id"], "p1", "{p}");
    assert_eq!(p["remote"], format!("127.0.0.1:{echo}"), "{p}");
    let port = port_of(&p, "local");
    assert_ne!(port, 0, "port 0 must be reported as the real port: {p}");

    const CLIENTS: usize = 100;
    const SIZE: usize = 64 * 1024;
    let handles: Vec<_> = (0..CLIENTS)
        .map(|i| {
            thread::spawn(move || {
                let data: Vec<u8> = (0..SIZE)
                    .map(|j| (j as u8).wrapping_mul(31).wrapping_add(i as u8))
                    .collect();
                let back = round_trip(port, &data);
                assert!(
                    back == data,
                    "client {i} got {} bytes back, not its own {SIZE}",
                    back.len()
                );
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a client failed");
    }

    let total = (CLIENTS * SIZE) as u64;
    assert!(
        wait_until(Duration::from_secs(10), || {
            row(&env, "p1")["active_clients"] == 0
        }),
        "clients still counted as active: {}",
        row(&env, "p1")
    );
    let r = row(&env, "p1");
    assert_eq!(r["bytes_in"], total, "{r}");
    assert_eq!(r["bytes_out"], total, "{r}");
    assert_eq!(r["total_clients"], CLIENTS as u64, "{r}");
    assert!(r["connection_id"].as_str().is_some(), "{r}");
    assert!(r["created_at"].as_u64().unwrap_or(0) > 0, "{r}");

    let ping = ok(&env, &["--json", "proxy", "ping", "--proxy-id", "p1"]);
    assert_eq!(ping["alive"], true, "{ping}");
    assert!(ping["latency_ms"].as_f64().is_some(), "{ping}");

    let status = ok(&env, &["--json", "daemon", "status"]);
    assert_eq!(status["proxies"], 1, "{status}");
    assert_eq!(status["proxy_list"][0]["id"], "p1", "{status}");

    // Close frees the port at once: no waiting before the rebind.
    let closed = ok(&env, &["--json", "proxy", "close", "--proxy-id", "p1"]);
    assert_eq!(closed["closed"][0], "p1", "{closed}");
    let rebound = TcpListener::bind(("127.0.0.1", port));
    assert!(
        rebound.is_ok(),
        "port {port} still taken after proxy close: {rebound:?}"
    );
    drop(rebound);

    let (v, rc) = env.json(&["--json", "proxy", "ping", "--proxy-id", "p1"]);
    assert_eq!(rc, 1, "{v}");
    assert_eq!(v["code"], "proxy_not_found", "{v}");
}

#[test]
fn named_proxy_uses_its_name_as_id_and_shutdown_closes_proxies() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    let echo = echo_server();
    let p = create(
        &env,
        &sshd,
        &[
            "--local",
            "0",
            "--remote",
            &echo.to_string(),
            "--name",
            "echo-tunnel",
        ],
    );
    assert_eq!(p["proxy_id"], "echo-tunnel", "{p}");
    let port = port_of(&p, "local");
    // A bare port on the remote side means localhost there, as with ssh -L.
    assert_eq!(round_trip(port, b"hello"), b"hello");

    let (v, rc) = try_create(&env, &sshd, &["--socks5", "0", "--name", "echo-tunnel"]);
    assert_eq!((rc, v["code"].as_str()), (2, Some("usage")), "{v}");

    let (v, rc) = env.json(&["--json", "daemon", "shutdown"]);
    assert_eq!(rc, 0, "{v}");
    assert!(
        wait_until(Duration::from_secs(10), || can_bind(port)),
        "port {port} still taken after daemon shutdown"
    );
}

// ---------------------------------------------------------------- SOCKS5

#[test]
fn socks5_serves_curl_by_hostname_and_by_ipv4() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    let http = http_server("hello through socks\n");
    let p = create(&env, &sshd, &["--socks5", "127.0.0.1:0"]);
    assert_eq!(p["kind"], "socks5", "{p}");
    let socks = port_of(&p, "local");

    for (flag, host) in [
        ("--socks5-hostname", "localhost"),
        ("--socks5", "127.0.0.1"),
    ] {
        let mut cmd = Command::new("curl");
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .args(["-sS", "--max-time", "20", flag])
            .arg(format!("127.0.0.1:{socks}"))
            .arg(format!("http://{host}:{http}/"));
        let out = output_with_deadline(cmd, None, Duration::from_secs(40));
        assert!(
            out.status.success(),
            "curl {flag} failed: {}",
            show_output(&out)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "hello through socks\n",
            "curl {flag}"
        );
    }
    let r = row(&env, "p1");
    assert!(r["bytes_out"].as_u64().unwrap_or(0) > 0, "{r}");
}

/// Greeting (no auth) and CONNECT to 127.0.0.1:`port` by hand; returns the reply.
fn socks_connect(socks: u16, port: u16) -> (TcpStream, [u8; 10]) {
    let mut s = connect(socks);
    s.write_all(&[5, 1, 0]).unwrap();
    let mut method = [0u8; 2];
    s.read_exact(&mut method).unwrap();
    assert_eq!(method, [5, 0], "server must pick no-auth");
    let mut req = vec![5, 1, 0, 1, 127, 0, 0, 1];
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).unwrap();
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply).unwrap_or_else(|e| {
        panic!("no SOCKS reply within {IO_DEADLINE:?} for 127.0.0.1:{port}: {e}")
    });
    (s, reply)
}

#[test]
fn socks5_refused_target_gets_a_failure_reply_not_a_hang() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    let echo = echo_server();
    let p = create(&env, &sshd, &["--socks5", "0"]);
    let socks = port_of(&p, "local");

    let (mut s, reply) = socks_connect(socks, closed_port());
    assert_eq!(reply[0], 5, "{reply:?}");
    assert_ne!(
        reply[1], 0,
        "a refused target must not get success: {reply:?}"
    );
    assert_eq!(reply[1], 5, "expected 0x05 connection refused: {reply:?}");
    let mut rest = Vec::new();
    let n = s.read_to_end(&mut rest);
    assert!(
        matches!(n, Ok(0)) || matches!(&n, Err(e) if e.kind() == ErrorKind::ConnectionReset),
        "the proxy must close after a failure reply: {n:?} {rest:?}"
    );

    // A working target through the same proxy: success reply, then data flows.
    let (mut s, reply) = socks_connect(socks, echo);
    assert_eq!(reply[..2], [5, 0], "{reply:?}");
    s.write_all(b"ping").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"ping");

    // Only username/password offered: 0xFF and close.
    let mut s = connect(socks);
    s.write_all(&[5, 1, 2]).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    assert_eq!(back, [5, 0xFF]);
}

// ---------------------------------------------------------------- reverse forward

#[test]
fn reverse_forward_serves_a_local_port_on_the_server() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    let echo = echo_server();

    let remote = free_port();
    let p = create(
        &env,
        &sshd,
        &[
            "--reverse",
            &format!("127.0.0.1:{remote}"),
            "--to",
            &format!("127.0.0.1:{echo}"),
        ],
    );
    assert_eq!(p["kind"], "reverse", "{p}");
    assert_eq!(p["remote"], format!("127.0.0.1:{remote}"), "{p}");
    assert_eq!(p["local"], format!("127.0.0.1:{echo}"), "{p}");
    // sshd listens on 127.0.0.1:remote on our behalf (same machine).
    assert_eq!(
        round_trip(remote, b"from the server side"),
        b"from the server side"
    );
    let r = row(&env, "p1");
    assert_eq!(r["bytes_in"], 20, "{r}");

    // Port 0: the server picks one, and we report it.
    let p2 = create(
        &env,
        &sshd,
        &["--reverse", "127.0.0.1:0", "--to", &echo.to_string()],
    );
    let picked = port_of(&p2, "remote");
    assert_ne!(picked, 0, "{p2}");
    assert_eq!(round_trip(picked, b"picked"), b"picked");

    // Close cancels the forward on the server.
    ok(&env, &["--json", "proxy", "close", "--all"]);
    assert!(
        wait_until(Duration::from_secs(10), || can_bind(remote)
            && can_bind(picked)),
        "the server still listens after proxy close"
    );
}

// ---------------------------------------------------------------- refusals

#[test]
fn public_bind_needs_allow_public() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    let port = free_port();
    for args in [
        vec!["--socks5".to_string(), format!("0.0.0.0:{port}")],
        vec!["--socks5".to_string(), format!("[::]:{port}")],
        vec![
            "--local".into(),
            "0.0.0.0:0".into(),
            "--remote".into(),
            "127.0.0.1:80".into(),
        ],
        vec![
            "--reverse".into(),
            "0.0.0.0:0".into(),
            "--to".into(),
            "127.0.0.1:80".into(),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (v, rc) = try_create(&env, &sshd, &args);
        assert_eq!(rc, 2, "{args:?}: {v}");
        assert_eq!(v["code"], "usage", "{args:?}: {v}");
        assert!(
            v["error"]
                .as_str()
                .unwrap_or_default()
                .contains("--allow-public"),
            "{v}"
        );
    }
    let p = create(&env, &sshd, &["--socks5", "0.0.0.0:0", "--allow-public"]);
    assert!(
        p["local"]
            .as_str()
            .unwrap_or_default()
            .starts_with("0.0.0.0:"),
        "{p}"
    );
}

#[test]
fn address_in_use_is_reported() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (v, rc) = try_create(&env, &sshd, &["--socks5", &format!("127.0.0.1:{port}")]);
    assert_eq!(rc, 1, "{v}");
    assert_eq!(v["code"], "address_in_use", "{v}");
    let (v, rc) = try_create(
        &env,
        &sshd,
        &["--local", &port.to_string(), "--remote", "127.0.0.1:80"],
    );
    assert_eq!((rc, v["code"].as_str()), (1, Some("address_in_use")), "{v}");
    // Nothing was registered.
    let list = ok(&env, &["--json", "proxy", "list"]);
    assert_eq!(list["proxies"], serde_json::json!([]), "{list}");
}

#[test]
fn usage_errors_for_missing_or_mixed_modes() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    for args in [
        vec![],
        vec!["--local", "0"],
        vec!["--socks5", "0", "--local", "0", "--remote", "1"],
        vec!["--reverse", "0"],
        vec!["--local", "0", "--remote", "127.0.0.1:0"],
    ] {
        let (v, rc) = try_create(&env, &sshd, &args);
        assert_eq!(
            (rc, v["code"].as_str()),
            (2, Some("usage")),
            "{args:?}: {v}"
        );
    }
    let (v, rc) = env.json(&["--json", "proxy", "close"]);
    assert_eq!((rc, v["code"].as_str()), (2, Some("usage")), "{v}");
    let (v, rc) = env.json(&["--json", "proxy", "close", "--proxy-id", "p9"]);
    assert_eq!(
        (rc, v["code"].as_str()),
        (1, Some("proxy_not_found")),
        "{v}"
    );

    // Text mode.
    let out = env.run(&["proxy", "list"]);
    assert!(out.status.success(), "{}", show_output(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "no proxies\n");
}

// ---------------------------------------------------------------- resilience

#[test]
fn proxies_survive_a_dropped_connection() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    let echo = echo_server();
    let local = create(
        &env,
        &sshd,
        &["--local", "0", "--remote", &format!("127.0.0.1:{echo}")],
    );
    let lport = port_of(&local, "local");
    let reverse = create(&env, &sshd, &["--reverse", "0", "--to", &echo.to_string()]);
    let rport = port_of(&reverse, "remote");
    assert_eq!(round_trip(lport, b"before"), b"before");
    assert_eq!(round_trip(rport, b"before"), b"before");
    let conn_before = row(&env, "p1")["connection_id"].clone();

    sshd.kill_connections();

    // The very next local client works, on a fresh pooled connection.
    assert_eq!(round_trip(lport, b"after"), b"after");
    let conn_after = row(&env, "p1")["connection_id"].clone();
    assert_ne!(conn_before, conn_after, "expected a new connection");
    let ping = ok(&env, &["--json", "proxy", "ping", "--proxy-id", "p1"]);
    assert_eq!(ping["alive"], true, "{ping}");

    // The reverse forward is re-established on the server (same port).
    let back_again = wait_until(Duration::from_secs(20), || {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", rport)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(IO_DEADLINE));
        if s.write_all(b"again").is_err() || s.shutdown(Shutdown::Write).is_err() {
            return false;
        }
        let mut back = Vec::new();
        s.read_to_end(&mut back).is_ok() && back == b"again"
    });
    assert!(
        back_again,
        "reverse forward not re-established: {}",
        row(&env, "p2")
    );
}

// ---------------------------------------------------------------- jump hosts

/// exec argv through `jump` to `target`, with extra flags.
fn jump_exec(env: &TestEnv, jump: &Sshd, target: &Sshd, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec!["--json".into(), "exec".into()];
    v.extend(conn(env, target));
    v.push("--proxy-jump".into());
    v.push(format!("{TEST_USER}@127.0.0.1:{}", jump.port));
    v.extend(extra.iter().map(|s| s.to_string()));
    v.push("--".into());
    v.push("echo \"$SSH_CONNECTION\"".into());
    v
}

#[test]
fn jump_host_route_and_host_keys_at_each_hop() {
    let env = TestEnv::new();
    let jump = Sshd::start(&[env.client_pubkey()]);
    let target = Sshd::start(&[env.client_pubkey()]);
    let echo = echo_server();
    let strict = ["--strict-host-key-checking", "yes"];
    let hop = format!("{TEST_USER}@127.0.0.1:{}", jump.port);
    let direct: Vec<&str> = strict.iter().copied().chain(["--direct"]).collect();

    // Only the target trusted: the jump's key is refused first.
    env.trust_host(&target);
    let (v, rc) = run_json(&env, &jump_exec(&env, &jump, &target, &direct));
    assert_eq!(
        (rc, v["code"].as_str()),
        (255, Some("host_key_unknown")),
        "{v}"
    );
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains(&jump.port.to_string()),
        "the error must name the jump host: {v}"
    );
    assert_eq!(target.connection_count(), 0, "never reached the target");

    // Both trusted: a proxy through the jump works (and keeps its connection open).
    env.trust_host(&jump);
    let p = create(
        &env,
        &target,
        &[
            "--proxy-jump",
            &hop,
            strict[0],
            strict[1],
            "--local",
            "0",
            "--remote",
            &format!("127.0.0.1:{echo}"),
        ],
    );
    assert_eq!(round_trip(port_of(&p, "local"), b"via jump"), b"via jump");

    // An exec with the same flags shares that pooled connection: the target saw it coming
    // from a socket of the jump host's sshd.
    let (v, rc) = run_json(&env, &jump_exec(&env, &jump, &target, &strict));
    assert_eq!(rc, 0, "{v}");
    let conn_line = v["data"]["stdout"].as_str().unwrap_or_default().to_string();
    // SSH_CONNECTION = client_ip client_port server_ip server_port, as the target saw it.
    let fields: Vec<&str> = conn_line.split_whitespace().collect();
    assert_eq!(fields.len(), 4, "{conn_line:?}");
    assert_eq!(fields[3], target.port.to_string(), "{conn_line:?}");
    let client_port: u16 = fields[1].parse().unwrap();
    assert!(
        jump_owns_local_port(&jump, client_port),
        "the target's client (port {client_port}) is not the jump host's sshd"
    );
    assert_eq!(
        jump.connection_count(),
        2,
        "one refused, one used:\n{}",
        jump.log()
    );
    assert_eq!(target.connection_count(), 1, "{}", target.log());

    // Only the jump trusted: the target's key is refused.
    std::fs::write(
        env.known_hosts_path(),
        format!("{}\n", jump.known_hosts_line()),
    )
    .unwrap();
    let (v, rc) = run_json(&env, &jump_exec(&env, &jump, &target, &direct));
    assert_eq!(
        (rc, v["code"].as_str()),
        (255, Some("host_key_unknown")),
        "{v}"
    );
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains(&target.port.to_string()),
        "the error must name the target: {v}"
    );
}

/// Whether a TCP socket bound to local port `port` belongs to a process of `sshd` (its
/// per-connection children), per /proc/net/tcp and /proc/PID/fd.
fn jump_owns_local_port(sshd: &Sshd, port: u16) -> bool {
    let inodes: Vec<String> = std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local_port = f.get(1)?.rsplit(':').next()?;
            let inode = f.get(9)?.to_string();
            (u16::from_str_radix(local_port, 16).ok()? == port).then_some(inode)
        })
        .collect();
    if inodes.is_empty() {
        return false;
    }
    let mut pids = descendants(sshd.pid());
    pids.push(sshd.pid());
    pids.iter().any(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|rd| {
                rd.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                    .any(|t| {
                        inodes
                            .iter()
                            .any(|i| t.to_string_lossy() == format!("socket:[{i}]"))
                    })
            })
            .unwrap_or(false)
    })
}
