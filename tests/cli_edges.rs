//! Rough edges of the CLI found by trying it as an agent (issue 14): connection flags
//! before the subcommand, what `connect_failed` says, readable times in `log`, and a daemon
//! autostarted by a long-lived client that must never become its zombie child.

mod common;

use std::fs;
use std::process::Stdio;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use common::*;

fn assert_ok(v: &Value, rc: i32, what: &str) {
    assert_eq!((v["ok"].clone(), rc), (true.into(), 0), "{what}: {v}");
}

#[test]
fn connection_flags_work_before_the_subcommand() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    let port = sshd.port.to_string();
    env.add_profile("t", &sshd);

    let (v, rc) = env.json(&["-p", "t", "--json", "exec", "--", "echo", "hi"]);
    assert_ok(&v, rc, "-p t --json exec");
    assert_eq!(v["data"]["stdout"], "hi\n", "{v}");

    // Inline flags, text mode.
    let out = env.run(&[
        "-H",
        "127.0.0.1",
        "-P",
        &port,
        "-u",
        TEST_USER,
        "exec",
        "--",
        "echo",
        "text",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show_output(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "text\n");

    // A session id before `session read`, with --json on either side of it.
    let (v, rc) = env.json(&["-p", "t", "--json", "connect", "--name", "edge"]);
    assert_ok(&v, rc, "connect");
    let id = v["data"]["id"].as_str().expect("session id").to_string();
    for argv in [
        ["-s", id.as_str(), "--json", "session", "read"],
        ["--json", "-s", id.as_str(), "session", "read"],
    ] {
        let (v, rc) = env.json(&argv);
        assert_ok(&v, rc, &format!("{argv:?}"));
        assert!(v["data"]["next_offset"].is_u64(), "{v}");
    }

    // A flag the command does not take is still a plain usage error, as one envelope.
    let (v, rc) = env.json(&["-p", "t", "--json", "session", "list"]);
    assert_eq!((v["code"].clone(), rc), ("usage".into(), 2), "{v}");
    assert!(v["error"].as_str().is_some_and(|e| e.contains("-p")), "{v}");
    let (v, rc) = env.json(&["--json", "session", "close", "--all"]);
    assert_ok(&v, rc, "session close --all");
}

#[test]
fn connect_failed_says_what_to_check_and_how_often_it_tried() {
    let env = TestEnv::new();
    let port = free_port().to_string();
    for direct in [false, true] {
        let mut base = vec!["--json", "exec", "-H", "127.0.0.1", "-P", &port];
        if direct {
            base.push("--direct");
        }
        let once: Vec<&str> = base.iter().copied().chain(["--", "true"]).collect();
        let (v, rc) = env.json(&once);
        assert_eq!(
            (v["code"].clone(), rc),
            ("connect_failed".into(), 255),
            "{v}"
        );
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(
            msg.contains(&format!("127.0.0.1:{port}"))
                && msg.contains("-P")
                && msg.contains("-H")
                && msg.contains("sshd is running"),
            "direct={direct}: {msg}"
        );
        assert!(!msg.contains("attempts"), "{msg}");

        let retried: Vec<&str> = base
            .iter()
            .copied()
            .chain(["--retry", "2", "--", "true"])
            .collect();
        let (v, rc) = env.json(&retried);
        assert_eq!(
            (v["code"].clone(), rc),
            ("connect_failed".into(), 255),
            "{v}"
        );
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(
            msg.contains("3 attempts") && msg.contains("sshd is running"),
            "direct={direct}: {msg}"
        );
    }
}

/// `YYYY-MM-DD HH:MM:SS.mmm` of `ms` since the epoch, in UTC shifted by `offset_min`.
fn civil(ms: u64, offset_min: i64) -> String {
    let total = ms as i64 / 1000 + offset_min * 60;
    let (days, rem) = (total.div_euclid(86_400), total.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[test]
fn log_shows_local_times_in_text_and_epoch_ms_in_json() {
    let env = TestEnv::new();
    // One logged request: an exec through the daemon to a closed port.
    let port = free_port().to_string();
    let (v, _) = env.json(&[
        "--json",
        "exec",
        "-H",
        "127.0.0.1",
        "-P",
        &port,
        "--",
        "true",
    ]);
    assert_eq!(v["code"], "connect_failed", "{v}");
    let (v, rc) = env.json(&["--json", "log"]);
    assert_ok(&v, rc, "log");
    let entries = v["data"]["entries"].as_array().expect("entries").clone();
    let t = entries
        .last()
        .and_then(|e| e["time_ms"].as_u64())
        .unwrap_or_else(|| panic!("no time_ms in {v}"));
    for (tz, offset_min) in [("UTC0", 0), ("XYZ-05:30", 330)] {
        let mut cmd = env.cmd();
        cmd.env("TZ", tz).arg("log");
        let out = output_with_deadline(cmd, None, RUN_DEADLINE);
        assert_eq!(out.status.code(), Some(0), "{}", show_output(&out));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let last = text.lines().last().unwrap_or_default();
        assert!(
            last.starts_with(&civil(t, offset_min)),
            "TZ={tz}: want {} at the start of {last:?}",
            civil(t, offset_min)
        );
        assert!(!text.contains(&t.to_string()), "epoch ms in text: {text}");
    }
}

/// The parent pid and state letter of `pid`, from /proc.
fn parent_and_state(pid: u32) -> Option<(u32, char)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    Some((fields.next()?.parse().ok()?, state))
}

/// Zombie children of `parent`.
fn zombie_children(parent: u32) -> Vec<u32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| parent_and_state(pid).is_some_and(|(pp, st)| pp == parent && st == 'Z'))
        .collect()
}

#[test]
fn a_daemon_autostarted_by_a_long_lived_client_never_becomes_its_zombie() {
    let env = TestEnv::new();
    // `log --follow` starts the daemon and stays connected: a long-lived client.
    let mut client = env
        .cmd()
        .args(["log", "--follow"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start log --follow");
    let client_pid = client.id();
    let mut daemon_pid = 0;
    assert!(
        wait_until(RUN_DEADLINE, || {
            let (v, _) = env.json(&["--json", "daemon", "status"]);
            daemon_pid = v["data"]["pid"].as_u64().unwrap_or(0) as u32;
            daemon_pid != 0
        }),
        "the client did not start a daemon"
    );
    let (parent, _) = parent_and_state(daemon_pid).expect("daemon in /proc");
    assert_ne!(parent, client_pid, "the daemon is the client's child");

    // Stopped, the client cannot exit (and hand a zombie on to init) when the daemon ends.
    kill(Pid::from_raw(client_pid as i32), Signal::SIGSTOP).expect("SIGSTOP the client");
    let (v, rc) = env.json(&["--json", "daemon", "shutdown"]);
    assert_ok(&v, rc, "daemon shutdown");
    assert!(
        wait_until(RUN_DEADLINE, || !pid_running(daemon_pid)),
        "the daemon did not stop"
    );
    let zombies = zombie_children(client_pid);
    let _ = kill(Pid::from_raw(client_pid as i32), Signal::SIGCONT);
    let _ = client.kill();
    let _ = client.wait();
    assert!(
        zombies.is_empty(),
        "zombie children of the client: {zombies:?}"
    );
}
