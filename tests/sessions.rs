//! PTY sessions end to end, against a real sshd: the read cursor and absolute offsets (with
//! the 1 MiB trimming), `session run` (exit status, cwd kept, quoting), expect/respond,
//! `session screen` with a full-screen program and resizes, signals, reconnect after a cut
//! path (reset and keepalive-detected blackhole), memory under an output flood and an
//! unterminated OSC string, the cleaning of output, list/spawn/close/exec, and
//! `read --follow` streaming.
//!
//! Every test has its own [`TestEnv`] (so its own daemon) and [`Sshd`]; the env's drop kills
//! the daemon.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::fault_proxy::{FaultMode, FaultProxy};
use common::sessions::*;
use common::*;
use serde_json::Value;

/// 1 MiB: the cap of the clean log (and of the raw ring).
const MIB: u64 = 1024 * 1024;

// ---------------------------------------------------------------- helpers
/// VmRSS of `pid` in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Samples a process's RSS on a thread every 50 ms and keeps the peak.
struct RssSampler {
    peak_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let peak_kib = Arc::new(AtomicU64::new(rss_kib(pid).unwrap_or(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, st) = (peak_kib.clone(), stop.clone());
        let thread = thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                if let Some(r) = rss_kib(pid) {
                    p.fetch_max(r, Ordering::SeqCst);
                }
                // Paces the sampling; returns early when asked to stop.
                wait_until(Duration::from_millis(50), || st.load(Ordering::SeqCst));
            }
        });
        RssSampler {
            peak_kib,
            stop,
            thread: Some(thread),
        }
    }

    fn peak_mib(&self) -> f64 {
        self.peak_kib.load(Ordering::SeqCst) as f64 / 1024.0
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A child process whose stdout is collected on a thread.
struct Streamer {
    child: std::process::Child,
    out: Arc<Mutex<Vec<u8>>>,
    reader: Option<thread::JoinHandle<()>>,
}

impl Streamer {
    fn spawn(mut cmd: Command) -> Streamer {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn agentssh");
        let mut stdout = child.stdout.take().unwrap();
        let out = Arc::new(Mutex::new(Vec::new()));
        let o = out.clone();
        let reader = thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => o.lock().unwrap().extend_from_slice(&buf[..n]),
                }
            }
        });
        Streamer {
            child,
            out,
            reader: Some(reader),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Waits for the process to exit; its exit code, or None if it is still running.
    fn wait(&mut self, deadline: Duration) -> Option<i32> {
        let mut code = None;
        wait_until(deadline, || match self.child.try_wait() {
            Ok(Some(st)) => {
                code = Some(st.code().unwrap_or(-1));
                true
            }
            _ => false,
        });
        if code.is_some() {
            if let Some(r) = self.reader.take() {
                let _ = r.join();
            }
        }
        code
    }
}

impl Drop for Streamer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses NDJSON: every line must be a JSON envelope with `ok: true`.
fn ndjson_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("follow line is not JSON ({e}): {l:?}\nall:\n{text}"));
            assert_eq!(v["ok"], true, "follow line not ok: {l}\nall:\n{text}");
            v
        })
        .collect()
}

// ---------------------------------------------------------------- 1. cursor and offsets

#[test]
fn cursor_reads_return_only_new_text_and_offset_reads_do_not_move_it() {
    let f = fx();
    let id = f.connect(&[]);

    let d = f.send(&id, "echo one\n", &[]);
    assert!(has_line(s(&d["output"]), "one"), "send echo one: {d}");
    assert_eq!(d["status"], "running");
    assert_eq!(d["timed_out"], false);

    // The send already moved the cursor past "one".
    let r1 = f.read(&id, &[]);
    assert!(!has_line(s(&r1["output"]), "one"), "read 1: {r1}");
    let cursor = u(&r1["next_offset"]);

    // Type `echo two` without reading (detach), and wait (offset reads) for its output.
    let det = f.ok(&["session", "exec", "-s", &id, "--detach", "--", "echo two"]);
    assert_eq!(det["detached"], true, "{det}");
    f.wait_line_from(&id, cursor, "two", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no line 'two' after offset {cursor}"));

    let r2 = f.read(&id, &[]);
    let out2 = s(&r2["output"]);
    assert_eq!(
        u(&r2["offset"]),
        cursor,
        "read 2 starts at the cursor: {r2}"
    );
    assert_eq!(u(&r2["dropped_bytes"]), 0, "{r2}");
    assert!(has_line(out2, "two"), "read 2 lacks 'two': {r2}");
    assert!(
        !has_line(out2, "one") && !out2.contains("echo one"),
        "read 2 repeats older text: {r2}"
    );

    // --offset 0 returns everything...
    let all = f.read(&id, &["--offset", "0"]);
    let all_out = s(&all["output"]);
    assert_eq!(u(&all["offset"]), 0, "{all}");
    assert_eq!(u(&all["dropped_bytes"]), 0, "{all}");
    assert!(
        has_line(all_out, "one") && has_line(all_out, "two"),
        "offset 0 read: {all}"
    );
    assert_eq!(u(&all["next_offset"]), u(&r2["next_offset"]), "{all}");

    // ...and does not move the cursor: the next cursor read has nothing new.
    let r3 = f.read(&id, &[]);
    assert_eq!(s(&r3["output"]), "", "read after --offset 0: {r3}");
    assert_eq!(u(&r3["offset"]), u(&r2["next_offset"]), "{r3}");
    let st = f.status(&id);
    assert_eq!(u(&st["cursor"]), u(&r2["next_offset"]), "status: {st}");
    assert_eq!(
        u(&st["output_bytes"]),
        u(&r2["next_offset"]),
        "status: {st}"
    );
    // The prompt is the pending line, not counted in offsets.
    assert!(
        r3["pending"].as_str().is_some_and(|p| !p.is_empty()),
        "no pending prompt: {r3}"
    );
}

#[test]
fn reads_past_the_one_mib_cap_report_dropped_bytes() {
    let f = fx();
    let id = f.connect(&[]);
    let start = u(&f.status(&id)["output_bytes"]);
    let old_cursor = u(&f.read(&id, &[])["next_offset"]);

    // 15,000 lines of 100 'a' (1,515,000 clean bytes), then a marker line.
    f.send(
        &id,
        "head -c 1500000 /dev/zero | tr '\\0' a | fold -w 100; echo; echo big-done\n",
        &["--wait-idle", "0", "--limit", "100"],
    );
    f.wait_line_from(&id, start, "big-done", Duration::from_secs(25))
        .expect("the 1.5 MB output did not finish");
    let end = u(&f.status(&id)["output_bytes"]);
    assert!(end - start >= 1_515_000, "only {} bytes", end - start);

    let all = f.read(&id, &["--offset", "0", "--limit", "4000000"]);
    let (off, next, dropped) = (
        u(&all["offset"]),
        u(&all["next_offset"]),
        u(&all["dropped_bytes"]),
    );
    let text = s(&all["output"]);
    assert!(dropped > 0, "nothing dropped after 1.5 MB: offset {off}");
    assert_eq!(
        off, dropped,
        "from offset 0, the read starts at the dropped size"
    );
    assert_eq!(off + text.len() as u64, next);
    assert!(next - off <= MIB, "kept {} bytes > 1 MiB", next - off);
    assert!(next - off >= MIB - 4, "kept only {} bytes", next - off);
    assert_eq!(next, end, "read reaches the committed end");
    assert!(has_line(text, "big-done"));
    assert!(has_line(text, &"a".repeat(100)));

    // A small read from 0 reports the same dropped region.
    let small = f.read(&id, &["--offset", "0", "--limit", "50"]);
    assert_eq!(u(&small["offset"]), off, "{small}");
    assert_eq!(u(&small["dropped_bytes"]), dropped, "{small}");
    assert_eq!(s(&small["output"]).len(), 50, "{small}");
    assert!(
        small["pending"].is_null(),
        "pending only at the end: {small}"
    );

    // The cursor (left near the start) fell into the trimmed region: the cursor read says so.
    let cur = f.read(&id, &["--limit", "10"]);
    assert!(u(&cur["dropped_bytes"]) > 0, "cursor read: {cur}");
    assert_eq!(
        u(&cur["offset"]),
        off,
        "cursor read starts at the first kept byte: {cur}"
    );
    assert!(u(&cur["offset"]) - u(&cur["dropped_bytes"]) >= old_cursor);
}

// ---------------------------------------------------------------- 2. session run

#[test]
fn run_returns_exit_status_keeps_cwd_and_survives_quoting() {
    let f = fx();
    let id = f.connect(&[]);

    let (d, rc) = f.run(&id, "cd /tmp; false");
    assert_eq!(d["exit_status"], 1, "{d}");
    assert_eq!(rc, 1, "rc follows the exit status: {d}");
    assert_eq!(s(&d["output"]), "", "{d}");

    assert_eq!(f.run_ok(&id, "pwd"), "/tmp\n");

    let (d, rc) = f.run(&id, "exit_code() { return $1; }; exit_code 7");
    assert_eq!((d["exit_status"].clone(), rc), (7.into(), 7), "{d}");

    // Single quotes (also escaped ones) and a comment.
    assert_eq!(
        f.run_ok(
            &id,
            "echo 'it'\\''s quoted' \"#not-a-comment\" # a real comment; echo NOT"
        ),
        "it's quoted #not-a-comment\n"
    );
    // Several argv words are joined with spaces.
    let (d, rc) = f.json(&["session", "run", "-s", &id, "--", "echo", "a", "b"]);
    assert_eq!(rc, 0, "{d}");
    assert_eq!(s(&d["data"]["output"]), "a b\n", "{d}");
    // Multi-line output, no prompt or echo in it.
    assert_eq!(f.run_ok(&id, "printf 'x\\ny\\n'"), "x\ny\n");
    // An unterminated last line is kept.
    assert_eq!(f.run_ok(&id, "printf tail"), "tail");
}

/// `session run` of a command whose `eval` fails (a syntax error, a special built-in's error):
/// bash's `eval` just returns, but an interactive dash abandons the whole input line, end
/// marker included. Either way the caller gets the shell's error and a failure status at
/// once, not a timeout, and the shell stays usable with its state.
#[test]
fn run_reports_eval_failures_at_once_in_bash_and_dash() {
    let f = fx();
    let id = f.connect(&[]);
    let fails = |shell: &str, command: &str, says: &[&str]| {
        let (v, rc) = f.json(&[
            "session",
            "run",
            "-s",
            &id,
            "--timeout",
            "10000",
            "--",
            command,
        ]);
        assert_eq!(
            v["ok"], true,
            "{shell} {command:?}: should end, not time out: {v}"
        );
        let status = v["data"]["exit_status"].as_i64().unwrap_or(0);
        assert!(status > 0, "{shell} {command:?}: {v}");
        assert_eq!(i64::from(rc), status, "{shell} {command:?}: {v}");
        let out = s(&v["data"]["output"]).to_lowercase();
        assert!(
            says.iter().any(|w| out.contains(w)),
            "{shell} {command:?}: {v}"
        );
    };
    let all = |shell: &str| {
        fails(
            shell,
            "echo \"unterminated",
            &["unterminated", "unexpected eof"],
        );
        fails(shell, ". /nonexistent-agentssh", &["nonexistent-agentssh"]);
        fails(shell, "echo ${agentssh_unset?is unset}", &["is unset"]);
    };
    all("bash");
    assert_eq!(f.run_ok(&id, "cd /tmp && pwd"), "/tmp\n");

    // Debian's /bin/sh; the shell that abandons the line.
    f.send(&id, "exec dash\n", &["--wait-idle", "300"]);
    assert_eq!(f.run_ok(&id, "echo $0"), "dash\n");
    all("dash");
    // Still the same shell, same directory, and later commands run normally.
    assert_eq!(f.run_ok(&id, "pwd; echo after"), "/tmp\nafter\n");
    // dash reads lines in the kernel's canonical mode (at most 4095 bytes): the command is
    // typed once, so a 3,000-byte one still fits.
    let long = "x".repeat(3000);
    assert_eq!(f.run_ok(&id, &format!("echo {long}")), format!("{long}\n"));
}

/// `session run` hands the shell's `$?` to the command and leaves the command's status in
/// `$?` afterwards, in bash and in dash.
#[test]
fn run_keeps_the_shells_exit_status_both_ways_in_bash_and_dash() {
    let f = fx();
    let id = f.connect(&[]);
    let check = |shell: &str| {
        f.send(&id, "(exit 3)\n", &["--wait-idle", "300"]);
        assert_eq!(
            f.run_ok(&id, "echo \"exit=$?\""),
            "exit=3\n",
            "{shell}: the command sees the previous status"
        );
        let (d, rc) = f.run(&id, "(exit 5)");
        assert_eq!(
            (d["exit_status"].clone(), rc),
            (5.into(), 5),
            "{shell}: {d}"
        );
        let d = f.send(&id, "echo \"after=$?\"\n", &["--wait-idle", "300"]);
        assert!(
            has_line(s(&d["output"]), "after=5"),
            "{shell}: the shell's $? after a run is the command's: {d}"
        );
    };
    check("bash");
    f.send(&id, "exec dash\n", &["--wait-idle", "300"]);
    assert_eq!(f.run_ok(&id, "echo $0"), "dash\n");
    check("dash");
}

/// Nobody sees `session run`'s wrapper: not `read --offset 0`, not the screen, not bash's
/// history. They see the command as given, after the prompt, as if it had been typed.
#[test]
fn run_wrapper_is_invisible_in_reads_screen_and_history() {
    let f = fx();
    let id = f.connect(&[]);
    assert_eq!(f.run_ok(&id, "echo one-$((40+2))"), "one-42\n");
    let history = f.run_ok(&id, "history 5");
    let all = s(&f.read(&id, &["--offset", "0"])["output"]).to_string();
    let rows = rows_of(&f.screen(&id)).join("\n");
    for (what, text) in [("read", &all), ("screen", &rows), ("history", &history)] {
        assert!(
            !text.contains("__agentssh") && !text.contains("777;agentssh"),
            "{what} shows the run wrapper:\n{text}"
        );
        assert!(
            text.contains("echo one-$((40+2))"),
            "{what} lacks the command as given:\n{text}"
        );
    }
    assert!(
        all.lines()
            .any(|l| l.ends_with("$ echo one-$((40+2))") || l.ends_with("# echo one-$((40+2))")),
        "the command follows the prompt:\n{all}"
    );
    assert!(has_line(&all, "one-42"), "{all}");
}

/// While a `session run` is in flight an agent's `send` is refused with `session_busy`
/// (naming the run) instead of typing into the run's output; afterwards it works again.
#[test]
fn send_during_a_run_is_refused_as_busy() {
    let f = fx();
    let id = f.connect(&[]);
    let mut runner = f.env.cmd();
    runner.args([
        "--json",
        "session",
        "run",
        "-s",
        &id,
        "--",
        "sleep 2; echo run-done",
    ]);
    let run = thread::spawn(move || output_with_deadline(runner, None, RUN_DEADLINE));
    let mut last = Value::Null;
    let busy = wait_until(Duration::from_secs(20), || {
        // Empty input types nothing, so probing cannot disturb the run.
        last = f.json(&["session", "send", "-s", &id, "--input", ""]).0;
        last["code"] == "session_busy"
    });
    assert!(busy, "a send during the run was not refused: {last}");
    assert!(
        s(&last["error"]).contains("sleep 2; echo run-done"),
        "{last}"
    );
    let out = run.join().expect("run thread");
    let (v, rc) = parse_json_output(&out, &["session run"]);
    assert_eq!(rc, 0, "{v}");
    assert_eq!(v["data"]["output"], "run-done\n", "{v}");
    let d = f.send(&id, "echo free-again\n", &["--wait-idle", "300"]);
    assert!(has_line(s(&d["output"]), "free-again"), "{d}");
}

/// A `session run` that times out keeps what the command printed so far in the error's
/// `data`, interrupts it, and leaves the shell usable.
#[test]
fn run_timeout_keeps_the_partial_output() {
    let f = fx();
    let id = f.connect(&[]);
    let (v, rc) = f.json(&[
        "session",
        "run",
        "-s",
        &id,
        "--timeout",
        "1500",
        "--",
        "echo before-$((1+1)); sleep 30",
    ]);
    assert_eq!((v["code"].clone(), rc), ("timeout".into(), 124), "{v}");
    assert_eq!(v["data"]["output"], "before-2\n", "{v}");
    assert!(u(&v["data"]["duration_ms"]) >= 1500, "{v}");
    assert_eq!(f.run_ok(&id, "echo still-usable"), "still-usable\n");
}

/// `session run --limit`: the last bytes of the output, from a line start, with the number
/// of bytes left out.
#[test]
fn run_output_is_cut_at_a_line_start() {
    let f = fx();
    let id = f.connect(&[]);
    let (v, rc) = f.json(&[
        "session",
        "run",
        "-s",
        &id,
        "--limit",
        "100",
        "--",
        "seq 1 2000",
    ]);
    assert_eq!(rc, 0, "{v}");
    let d = &v["data"];
    let out = s(&d["output"]);
    let full: String = (1..=2000).map(|n| format!("{n}\n")).collect();
    assert!(out.len() <= 100 && !out.is_empty(), "{d}");
    assert!(full.ends_with(out), "{d}");
    assert_eq!(
        full.as_bytes()[full.len() - out.len() - 1],
        b'\n',
        "starts a line: {d}"
    );
    assert_eq!(d["truncated"], true, "{d}");
    assert_eq!(
        u(&d["dropped_bytes"]),
        (full.len() - out.len()) as u64,
        "{d}"
    );
}

// ---------------------------------------------------------------- 3. expect/respond

#[test]
fn expect_respond_answers_a_prompt() {
    let f = fx();
    let id = f.connect(&[]);

    // The prompt text is assembled at run time, so only the real prompt matches (not the
    // echoed command line).
    let d = f.send(
        &id,
        "P=word; read -p \"Pass$P: \" x; echo got=$x\n",
        &[
            "--expect",
            "Password: ",
            "--respond",
            "hunter2\n",
            "--timeout",
            "15000",
        ],
    );
    assert!(has_line(s(&d["output"]), "got=hunter2"), "{d}");
    assert_eq!(
        d["expect_matched"],
        serde_json::json!(["Password: "]),
        "{d}"
    );
    assert_eq!(d["timed_out"], false, "{d}");

    // The literal form from the docs (the pattern also occurs in the echoed command).
    let d = f.send(
        &id,
        "read -p 'Password: ' x; echo got2=$x\n",
        &["--expect", "Password: ", "--respond", "hunter3\n"],
    );
    let out = format!("{}{}", s(&d["output"]), s(&d["pending"]));
    assert!(has_line(&out, "got2=hunter3"), "{d}");
    assert_eq!(
        d["expect_matched"],
        serde_json::json!(["Password: "]),
        "{d}"
    );

    // A pattern that never shows up: timeout (rc 124).
    let (v, rc) = f.json(&[
        "session",
        "send",
        "-s",
        &id,
        "--input",
        "true\n",
        "--expect",
        "never-shown-[0-9]{9}",
        "--respond",
        "x\n",
        "--timeout",
        "1000",
    ]);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["code"], "timeout", "{v}");
    assert_eq!(rc, 124, "{v}");
}

/// A prompt that appears only after a delay, with a pattern that also occurs in the command
/// line: the pattern is looked for only after the echo, so the secret is typed at the real
/// (no-echo) prompt and is never shown anywhere.
#[test]
fn expect_waits_past_the_echo_for_a_delayed_prompt() {
    let f = fx();
    let id = f.connect(&[]);
    let d = f.send(
        &id,
        "sleep 2; read -s -p 'Password: ' pw; echo; echo len=${#pw}\n",
        &[
            "--expect",
            "Password: ",
            "--respond",
            "hunter2\n",
            "--timeout",
            "20000",
        ],
    );
    assert_eq!(
        d["expect_matched"],
        serde_json::json!(["Password: "]),
        "{d}"
    );
    assert!(
        f.wait_line_from(&id, 0, "len=7", Duration::from_secs(20))
            .is_some(),
        "the answer did not reach the prompt"
    );
    let everything = s(&f.read(&id, &["--offset", "0"])["output"]).to_string();
    let rows = rows_of(&f.screen(&id)).join("\n");
    for (what, text) in [
        ("send", s(&d["output"])),
        ("log", &everything),
        ("screen", &rows),
    ] {
        assert!(
            !text.contains("hunter2"),
            "{what} shows the secret:\n{text}"
        );
    }
}

// ---------------------------------------------------------------- 4. screen and resize

impl Fx {
    /// Total raw bytes received so far (a raw read past the end starts at the end).
    fn raw_total(&self, id: &str) -> u64 {
        u(&self.read(id, &["--raw", "--offset", "999999999999"])["offset"])
    }

    /// Whether the shell shows its prompt (the pending line ends with `$ `).
    fn at_prompt(&self, id: &str) -> bool {
        let d = self.read(id, &["--offset", "999999999999"]);
        s(&d["pending"]).ends_with("$ ")
    }
}

#[test]
fn screen_shows_top_and_follows_a_resize() {
    assert!(
        std::path::Path::new("/usr/bin/top").exists(),
        "top is missing (procps); install it"
    );
    let f = fx();
    let id = f.connect(&["--cols", "120", "--rows", "40"]);
    f.send(&id, "top -d 1\n", &["--wait-idle", "200"]);

    // procps top draws on the normal screen (it sends no smcup), so only the rows count.
    let mut snap = Value::Null;
    let shown = wait_until(Duration::from_secs(15), || {
        snap = f.screen(&id);
        let rows = rows_of(&snap);
        rows.iter().any(|l| l.contains("PID")) && rows.iter().any(|l| l.starts_with("top - "))
    });
    assert!(shown, "top not on screen: {snap}");
    assert_eq!(snap["cols"], 120, "{snap}");
    assert_eq!(snap["rows_count"], 40, "{snap}");
    assert_eq!(rows_of(&snap).len(), 40, "{snap}");
    assert!(snap["cursor"].is_array(), "{snap}");
    let wide = rows_of(&snap)
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap();
    assert!(wide > 60, "top drew nothing wider than 60 columns: {snap}");

    let r = f.ok(&[
        "session", "resize", "-s", &id, "--cols", "60", "--rows", "20",
    ]);
    assert_eq!(
        (r["cols"].clone(), r["rows"].clone()),
        (60.into(), 20.into())
    );
    let before = f.raw_total(&id);
    let redrawn = wait_until(Duration::from_secs(15), || {
        snap = f.screen(&id);
        let rows = rows_of(&snap);
        snap["cols"] == 60
            && snap["rows_count"] == 20
            && rows.len() == 20
            && rows.iter().all(|l| l.chars().count() <= 60)
            && rows.iter().any(|l| l.contains("PID"))
            && rows[0].starts_with("top - ")
            && f.raw_total(&id) > before
    });
    assert!(redrawn, "top did not redraw at 60x20: {snap}");
    let st = f.status(&id);
    assert_eq!(
        (st["cols"].clone(), st["rows"].clone()),
        (60.into(), 20.into())
    );

    // Quit top; the PTY itself is 60x20.
    f.send(&id, "q", &["--wait-idle", "200"]);
    assert!(
        wait_until(Duration::from_secs(10), || f.at_prompt(&id)),
        "no prompt after quitting top: {}",
        f.screen(&id)
    );
    assert_eq!(f.run_ok(&id, "stty size"), "20 60\n");
}

#[test]
fn screen_shows_less_on_the_alternate_screen_and_follows_a_resize() {
    let f = fx();
    let id = f.connect(&["--cols", "60", "--rows", "20"]);
    let mut snap = f.screen(&id);
    assert_eq!(snap["alternate_screen"], false, "{snap}");
    f.send(&id, "seq 1 300 | less\n", &["--wait-idle", "200"]);

    let shown = wait_until(Duration::from_secs(15), || {
        snap = f.screen(&id);
        let rows = rows_of(&snap);
        snap["alternate_screen"] == true && rows.len() == 20 && rows[0] == "1" && rows[18] == "19"
    });
    assert!(shown, "less not on the alternate screen: {snap}");

    f.ok(&[
        "session", "resize", "-s", &id, "--cols", "40", "--rows", "10",
    ]);
    // less redraws for 10 rows: lines 1-9 and its prompt on the last row (a mere
    // truncation of the old screen would leave "10" there).
    let redrawn = wait_until(Duration::from_secs(15), || {
        snap = f.screen(&id);
        let rows = rows_of(&snap);
        snap["cols"] == 40
            && snap["rows_count"] == 10
            && rows.len() == 10
            && rows[0] == "1"
            && rows[8] == "9"
            && rows[9].starts_with(':')
    });
    assert!(redrawn, "less did not redraw at 40x10: {snap}");

    f.send(&id, "q", &["--wait-idle", "200"]);
    let back = wait_until(Duration::from_secs(10), || {
        snap = f.screen(&id);
        snap["alternate_screen"] == false
    });
    assert!(back, "still on the alternate screen after q: {snap}");
    assert!(wait_until(Duration::from_secs(10), || f.at_prompt(&id)));
    assert_eq!(f.run_ok(&id, "stty size"), "10 40\n");
}

// ---------------------------------------------------------------- 5. signals

#[test]
fn signal_int_stops_the_foreground_job_and_kill_closes_the_session() {
    let f = fx();
    let id = f.connect(&[]);
    // Interactive bash abandons the rest of a command list when its job dies of SIGINT, so
    // the status is asked for on its own line.
    let d = f.send(&id, "sleep 100\n", &["--wait-idle", "200"]);
    assert_eq!(d["status"], "running", "{d}");
    let sig = f.ok(&["session", "signal", "-s", &id, "--signal", "INT"]);
    assert_eq!(sig["signal"], "INT", "{sig}");
    let d = f.send(&id, "echo after=$?\n", &["--wait-idle", "300"]);
    let mut text = s(&d["output"]).to_string();
    if !has_line(&text, "after=130") {
        text.push_str(&f.read_until(&id, Duration::from_secs(10), |t| has_line(t, "after=130")));
    }
    assert!(has_line(&text, "after=130"), "{text:?}");
    assert_eq!(f.run_ok(&id, "echo still-here"), "still-here\n");

    f.ok(&["session", "signal", "-s", &id, "--signal", "KILL"]);
    let st = f.wait_status(&id, Duration::from_secs(10), |v| v["status"] == "closed");
    assert_eq!(st["status"], "closed");
    let ping = f.ok(&["session", "ping", "-s", &id]);
    assert_eq!(ping["alive"], false, "{ping}");
    assert_eq!(ping["status"], "closed", "{ping}");
    let (code, rc) = f.err(&["session", "send", "-s", &id, "--input", "echo x\n"]);
    assert_eq!(code, "session_closed");
    assert_eq!(rc, 1);
    let (code, _) = f.err(&["session", "run", "-s", &id, "--", "true"]);
    assert_eq!(code, "session_closed");
}

#[test]
fn unsupported_signal_is_a_usage_error() {
    let f = fx();
    let id = f.connect(&[]);
    let (code, rc) = f.err(&["session", "signal", "-s", &id, "--signal", "HUP"]);
    assert_eq!((code.as_str(), rc), ("usage", 2));
    assert_eq!(f.status(&id)["status"], "running");
}

// ---------------------------------------------------------------- 6. reconnect

/// An env with a 500 ms keepalive (inherited by the autostarted daemon) and a fault proxy
/// in front of sshd whose port is trusted.
fn fx_with_proxy() -> (Fx, FaultProxy) {
    let mut f = fx();
    f.extra_env
        .push(("AGENTSSH_KEEPALIVE_MS".into(), "500".into()));
    let proxy = FaultProxy::new(f.sshd.port);
    f.env.trust_host_as(&f.sshd, proxy.port());
    (f, proxy)
}

#[test]
fn reconnect_after_a_reset_path_opens_a_new_shell() {
    let (f, proxy) = fx_with_proxy();
    let d = f.connect_to(proxy.port(), &["--reconnect"]);
    let id = s(&d["id"]).to_string();
    assert_eq!(d["reconnects"], 0, "{d}");
    assert_eq!(f.run_ok(&id, "cd /tmp && pwd"), "/tmp\n");
    f.read(&id, &[]);

    proxy.set_mode(FaultMode::Reset);
    proxy.set_mode(FaultMode::Pass);
    let st = f.wait_status(&id, Duration::from_secs(40), |v| {
        v["status"] == "running" && v["reconnects"] == 1
    });
    assert_eq!(st["reconnects"], 1, "{st}");

    let text = f.read_until(&id, Duration::from_secs(10), |t| {
        t.lines().any(|l| l.starts_with("[agentssh]"))
    });
    let notice = text
        .lines()
        .find(|l| l.starts_with("[agentssh]"))
        .unwrap_or_default();
    assert!(notice.contains("lost"), "notice: {notice:?}");

    assert_eq!(f.run_ok(&id, "echo alive"), "alive\n");
    // A new shell: the old working directory is gone.
    assert_ne!(f.run_ok(&id, "pwd"), "/tmp\n");
    assert_eq!(f.status(&id)["reconnects"], 1);
}

#[test]
fn keepalive_detects_a_blackholed_path_and_reconnects() {
    let (f, proxy) = fx_with_proxy();
    let d = f.connect_to(proxy.port(), &["--reconnect"]);
    let id = s(&d["id"]).to_string();
    assert_eq!(f.run_ok(&id, "echo before"), "before\n");

    // Nothing arrives, nothing fails: only keepalives (500 ms x 3) can notice.
    proxy.set_mode(FaultMode::Blackhole);
    let started = Instant::now();
    let st = f.wait_status(&id, Duration::from_secs(20), |v| {
        v["status"] == "reconnecting"
    });
    let detected = started.elapsed();
    assert_eq!(st["status"], "reconnecting");
    proxy.set_mode(FaultMode::Pass);
    f.wait_status(&id, Duration::from_secs(40), |v| {
        v["status"] == "running" && v["reconnects"] == 1
    });
    f.read_until(&id, Duration::from_secs(10), |t| {
        t.lines().any(|l| l.starts_with("[agentssh]"))
    });
    assert_eq!(f.run_ok(&id, "echo alive"), "alive\n");
    eprintln!("dead path detected after {detected:?}");
    assert!(
        detected < Duration::from_secs(10),
        "keepalive took {detected:?} to notice a dead path with AGENTSSH_KEEPALIVE_MS=500"
    );
}

#[test]
fn without_reconnect_a_dropped_connection_disconnects_the_session() {
    let (f, proxy) = fx_with_proxy();
    let d = f.connect_to(proxy.port(), &[]);
    let id = s(&d["id"]).to_string();
    assert_eq!(f.run_ok(&id, "echo before"), "before\n");

    proxy.set_mode(FaultMode::Reset);
    let st = f.wait_status(&id, Duration::from_secs(20), |v| {
        v["status"] == "disconnected"
    });
    assert_eq!(st["reconnects"], 0, "{st}");
    proxy.set_mode(FaultMode::Pass);
    f.read_until(&id, Duration::from_secs(5), |t| {
        t.lines()
            .any(|l| l.starts_with("[agentssh]") && l.contains("connection lost"))
    });
    let (code, _) = f.err(&["session", "send", "-s", &id, "--input", "echo x\n"]);
    assert_eq!(code, "session_closed");
    // It stays disconnected (no reconnect behind our back).
    assert_eq!(f.status(&id)["status"], "disconnected");
}

#[test]
fn reconnect_attempts_back_off_while_the_server_is_down() {
    // The proxy, not sshd.stop(): with Reset no new connection gets through (stopping sshd
    // races with an immediate reconnect that an orphaned sshd child may still serve).
    let (f, proxy) = fx_with_proxy();
    let d = f.connect_to(proxy.port(), &["--reconnect"]);
    let id = s(&d["id"]).to_string();
    assert_eq!(f.run_ok(&id, "echo up"), "up\n");

    let failures = |log: &str| {
        log.lines()
            .filter(|l| l.contains("reconnect failed") && l.contains(&id))
            .count()
    };
    proxy.set_mode(FaultMode::Reset);
    let started = Instant::now();
    // With a backoff that doubles from 200 ms, six failed attempts take about 6 s; a fixed
    // 200 ms pause makes them in about 1.2 s.
    let mut seen = 0;
    let ok = wait_until(Duration::from_secs(30), || {
        seen = failures(&f.daemon_log());
        seen >= 6
    });
    let elapsed = started.elapsed();
    eprintln!("{seen} failed reconnect attempts in {elapsed:?}");
    proxy.set_mode(FaultMode::Pass);
    assert!(ok, "only {seen} failed reconnect attempts logged in 30 s");
    f.wait_status(&id, Duration::from_secs(40), |v| {
        v["status"] == "running" && v["reconnects"] == 1
    });
    assert_eq!(f.run_ok(&id, "echo back"), "back\n");
    assert!(
        elapsed >= Duration::from_secs(3),
        "6 failed reconnect attempts within {elapsed:?}: the pause between attempts does not grow \
         (src/daemon/session.rs on_reconnected must pass the failed-attempt count)"
    );
}

// ---------------------------------------------------------------- 7. memory under floods

/// Generous bound on the daemon's RSS (ARCHITECTURE's budget is 64 MiB).
const RSS_BOUND_MIB: f64 = 200.0;

/// CPU seconds (user + system) a process has used so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rfind(')')
        .map(|i| stat[i + 1..].split_whitespace().collect())
        .unwrap_or_default();
    // After "(comm)": state is field 0, utime 11, stime 12 (in clock ticks).
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}

/// How long the floods may run before the test stops them (the tests must stay < 90 s; how
/// fast the daemon digests output is not asserted, only reported).
const FLOOD_BUDGET: Duration = Duration::from_secs(55);

#[test]
fn flood_keeps_daemon_memory_bounded_and_other_sessions_responsive() {
    let f = fx();
    let flood = f.connect(&[]);
    let other = f.connect(&[]);
    let pid = f.daemon_pid();
    let sampler = RssSampler::start(pid);
    let cpu_before = cpu_secs(pid);
    let start = u(&f.status(&flood)["output_bytes"]);

    f.send(
        &flood,
        "yes | head -c 300000000; echo flood-done\n",
        &["--wait-idle", "0", "--limit", "100"],
    );
    let started = Instant::now();
    let mut runs = 0;
    let mut done = false;
    let mut last_bytes = start;
    // The other session answers while the flood runs.
    while started.elapsed() < FLOOD_BUDGET {
        assert_eq!(f.run_ok(&other, "echo ok"), "ok\n", "run during the flood");
        runs += 1;
        let peak = sampler.peak_mib();
        assert!(
            peak <= RSS_BOUND_MIB,
            "daemon RSS peaked at {peak:.1} MiB during the flood"
        );
        last_bytes = u(&f.status(&flood)["output_bytes"]);
        if last_bytes - start >= 300_000_000 {
            done = f
                .wait_line_from(
                    &flood,
                    last_bytes.saturating_sub(4096),
                    "flood-done",
                    Duration::from_secs(5),
                )
                .is_some();
            if done {
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    let cpu = cpu_secs(pid) - cpu_before;
    let mb = (last_bytes - start) as f64 / 1e6;
    eprintln!(
        "flood: {mb:.0} MB clean in {elapsed:.1?} ({:.1} MB/s, daemon CPU {cpu:.1} s), \
         finished: {done}, {runs} runs answered meanwhile, daemon RSS peak {:.1} MiB",
        mb / elapsed.as_secs_f64(),
        sampler.peak_mib()
    );
    assert!(runs >= 2, "the other session answered only {runs} time(s)");
    assert!(mb > 1.0, "the flood produced only {mb} MB");
    if !done {
        // Stop the flood; the session must recover.
        f.ok(&["session", "signal", "-s", &flood, "--signal", "INT"]);
    }
    assert!(
        wait_until(Duration::from_secs(25), || f.at_prompt(&flood)),
        "no prompt after the flood"
    );
    assert_eq!(f.run_ok(&flood, "echo after-flood"), "after-flood\n");
    let peak = sampler.peak_mib();
    assert!(peak <= RSS_BOUND_MIB, "daemon RSS peaked at {peak:.1} MiB");
}

#[test]
fn unterminated_osc_string_does_not_grow_daemon_memory() {
    let f = fx();
    let id = f.connect(&[]);
    let other = f.connect(&[]);
    let pid = f.daemon_pid();
    let sampler = RssSampler::start(pid);
    let cpu_before = cpu_secs(pid);
    let raw_start = f.raw_total(&id);

    // 256 MiB inside one OSC string that never ends.
    f.send(
        &id,
        "printf '\\033]0;'; head -c 268435456 /dev/zero | tr '\\0' x\n",
        &["--wait-idle", "0"],
    );
    let started = Instant::now();
    let mut raw_now = raw_start;
    let arrived = wait_until(FLOOD_BUDGET, || {
        raw_now = f.raw_total(&id);
        raw_now - raw_start >= 268_435_456
    });
    let elapsed = started.elapsed();
    let mib = (raw_now - raw_start) as f64 / MIB as f64;
    eprintln!(
        "OSC flood: {mib:.0} MiB raw in {elapsed:.1?} ({:.1} MiB/s, daemon CPU {:.1} s), \
         complete: {arrived}, daemon RSS peak {:.1} MiB",
        mib / elapsed.as_secs_f64(),
        cpu_secs(pid) - cpu_before,
        sampler.peak_mib()
    );
    assert!(mib > 1.0, "only {mib:.1} MiB of the OSC string arrived");
    let peak = sampler.peak_mib();
    assert!(
        peak <= RSS_BOUND_MIB,
        "daemon RSS peaked at {peak:.1} MiB during a {mib:.0} MiB OSC string"
    );
    // The title is capped, whatever the program sent.
    let snap = f.screen(&id);
    assert!(s(&snap["title"]).chars().count() <= 256, "title too long");
    // Nothing of the string shows up as text.
    let tail = f.read(&id, &["--offset", "0"]);
    assert!(
        !s(&tail["output"]).contains("xxxxxxxx"),
        "OSC body leaked into clean text"
    );
    assert!(
        !s(&tail["pending"]).contains("xxxxxxxx"),
        "OSC body leaked into pending"
    );

    // Another session works meanwhile, and this one once the string is terminated.
    assert_eq!(f.run_ok(&other, "echo ok"), "ok\n");
    f.ok(&["session", "signal", "-s", &id, "--signal", "INT"]);
    f.send(&id, "printf '\\007'\n", &["--wait-idle", "300"]);
    assert!(
        wait_until(Duration::from_secs(25), || f.at_prompt(&id)),
        "no prompt after terminating the OSC string"
    );
    assert_eq!(f.run_ok(&id, "echo clean-again"), "clean-again\n");
    let peak = sampler.peak_mib();
    assert!(peak <= RSS_BOUND_MIB, "daemon RSS peaked at {peak:.1} MiB");
}

// ---------------------------------------------------------------- 8. cleaning

const GOLDEN_PRINTF: &str =
    "printf '\\033[1;31mred\\033[0m \\xee\\x82\\xb0 glyph \\xff bad\\n10%%\\r50%%\\r100%%\\n'";

#[test]
fn output_is_cleaned_end_to_end_and_raw_keeps_the_bytes() {
    let f = fx();
    let id = f.connect(&[]);

    // Through `session run`: only the command's own clean output.
    let out = f.run_ok(&id, GOLDEN_PRINTF);
    assert_eq!(out, "red  glyph \u{FFFD} bad\n100%\n");

    // Through send/read: the same lines in the transcript, no progress states.
    let raw_start = u(&f.read(&id, &["--raw", "--offset", "999999999999"])["offset"]);
    let d = f.send(&id, &format!("{GOLDEN_PRINTF}\n"), &[]);
    let mut text = s(&d["output"]).to_string();
    if !has_line(&text, "100%") {
        text.push_str(&f.read_until(&id, Duration::from_secs(5), |t| has_line(t, "100%")));
    }
    assert!(has_line(&text, "red  glyph \u{FFFD} bad"), "{text:?}");
    assert!(has_line(&text, "100%"), "{text:?}");
    assert!(
        !has_line(&text, "10%") && !has_line(&text, "50%") && !text.contains("10%\n"),
        "progress states leaked: {text:?}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "escape left in clean text: {text:?}"
    );
    assert!(!text.contains('\u{e0b0}'), "PUA glyph left: {text:?}");
    assert!(!text.contains('\r'), "CR left: {text:?}");

    // --raw keeps the escape bytes (and the invalid byte, base64 when not UTF-8).
    let off = raw_start.to_string();
    let raw = f.ok(&["session", "read", "-s", &id, "--raw", "--offset", &off]);
    let raw_text = s(&raw["output"]);
    assert!(raw_text.contains("\u{1b}[1;31mred\u{1b}[0m"), "{raw}");
    assert!(raw_text.contains("10%\r50%\r100%"), "{raw}");
    use base64::Engine;
    let b64 = raw["output_b64"]
        .as_str()
        .unwrap_or_else(|| panic!("raw read of invalid UTF-8 has no output_b64: {raw}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("output_b64 is base64");
    let find = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(find(b"\x1b[1;31mred"), "raw bytes lack the SGR");
    assert!(
        find(b"\xee\x82\xb0 glyph \xff bad"),
        "raw bytes lack the glyph/invalid byte"
    );
    assert_eq!(
        u(&raw["next_offset"]) - u(&raw["offset"]),
        bytes.len() as u64,
        "raw offsets count raw bytes"
    );
}

// ---------------------------------------------------------------- 9. list, spawn, close, exec

#[test]
fn list_spawn_exec_and_close_all() {
    let f = fx();
    let a = f.connect(&["--name", "first"]);
    let sp = f.ok(&["session", "spawn", "--from", &a]);
    let b = s(&sp["id"]).to_string();
    assert_ne!(a, b);
    assert_eq!(sp["status"], "running", "{sp}");

    let list = f.ok(&["session", "list"]);
    let sessions = list["sessions"].as_array().expect("sessions array").clone();
    assert_eq!(sessions.len(), 2, "{list}");
    let find = |id: &str| {
        sessions
            .iter()
            .find(|x| x["id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed: {list}"))
            .clone()
    };
    let (ia, ib) = (find(&a), find(&b));
    assert_eq!(ia["name"], "first");
    assert!(!s(&ia["connection_id"]).is_empty(), "{ia}");
    assert_eq!(
        ia["connection_id"], ib["connection_id"],
        "spawn shares the connection"
    );
    assert_eq!(ia["shared_with"], serde_json::json!([b.clone()]), "{ia}");
    assert_eq!(ib["shared_with"], serde_json::json!([a.clone()]), "{ib}");
    for i in [&ia, &ib] {
        for k in [
            "host",
            "port",
            "username",
            "status",
            "controller",
            "output_bytes",
            "cursor",
            "cols",
            "rows",
            "reconnects",
            "created_at",
            "updated_at",
        ] {
            assert!(!i[k].is_null(), "{k} missing in {i}");
        }
        assert_eq!(i["username"], TEST_USER);
        assert_eq!(i["controller"], "agent");
    }
    // A name works wherever an id does.
    assert_eq!(f.status("first")["id"], a.as_str());

    // session exec: a fresh exec channel, clean stdout.
    let ex = f.ok(&["session", "exec", "-s", &a, "--", "echo $((6*7))"]);
    assert_eq!(ex["stdout"], "42\n", "{ex}");
    assert_eq!(ex["exit_status"], 0, "{ex}");
    let (ex, rc) = f.json(&["session", "exec", "-s", &a, "--", "echo oops >&2; exit 3"]);
    assert_eq!(rc, 3, "{ex}");
    assert_eq!(ex["data"]["stderr"], "oops\n", "{ex}");

    // --detach types into the PTY and returns at once; the output shows up later.
    let det = f.ok(&[
        "session",
        "exec",
        "-s",
        &b,
        "--detach",
        "--",
        "echo det-$((6*7))",
    ]);
    assert_eq!(det["detached"], true, "{det}");
    f.read_until(&b, Duration::from_secs(10), |t| has_line(t, "det-42"));

    // Unknown sessions.
    for args in [
        vec!["session", "status", "-s", "s999"],
        vec!["session", "read", "-s", "nope"],
        vec!["session", "send", "-s", "nope", "--input", "x"],
        vec!["session", "spawn", "--from", "nope"],
    ] {
        let (code, rc) = f.err(&args);
        assert_eq!((code.as_str(), rc), ("session_not_found", 1), "{args:?}");
    }

    let closed = f.ok(&["session", "close", "--all"]);
    let mut ids: Vec<String> = closed["closed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| s(v).to_string())
        .collect();
    ids.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(ids, want, "{closed}");
    assert_eq!(
        f.ok(&["session", "list"])["sessions"],
        serde_json::json!([])
    );
    let (code, _) = f.err(&["session", "status", "-s", &a]);
    assert_eq!(code, "session_not_found");
}

#[test]
fn close_one_session_leaves_the_other() {
    let f = fx();
    let a = f.connect(&[]);
    let b = f.connect(&[]);
    let closed = f.ok(&["session", "close", "-s", &a]);
    assert_eq!(closed["closed"], serde_json::json!([a.clone()]));
    let (code, _) = f.err(&["session", "read", "-s", &a]);
    assert_eq!(code, "session_not_found");
    assert_eq!(f.run_ok(&b, "echo b-alive"), "b-alive\n");
}

// ---------------------------------------------------------------- 10. read --follow

fn follow_cmd(f: &Fx, id: &str, timeout_ms: &str) -> Command {
    let mut cmd = f.env.cmd();
    cmd.args([
        "--json",
        "session",
        "read",
        "-s",
        id,
        "--follow",
        "--timeout",
        timeout_ms,
    ]);
    cmd
}

#[test]
fn read_follow_streams_ndjson_until_the_timeout() {
    let f = fx();
    let id = f.connect(&[]);
    let mut follower = Streamer::spawn(follow_cmd(&f, &id, "3000"));
    // The follower reads from the cursor, so output typed now is never missed.
    let det = f.ok(&[
        "session",
        "exec",
        "-s",
        &id,
        "--detach",
        "--",
        "echo streamed",
    ]);
    assert_eq!(det["detached"], true);
    let code = follower.wait(Duration::from_secs(20));
    let text = follower.text();
    assert_eq!(code, Some(0), "follow did not end by itself:\n{text}");
    let lines = ndjson_lines(&text);
    assert!(lines.len() >= 2, "{text}");
    let streamed: String = lines
        .iter()
        .filter_map(|v| v["data"]["output"].as_str())
        .collect();
    assert!(has_line(&streamed, "streamed"), "{text}");
    let last = lines.last().unwrap();
    assert_eq!(last["data"]["end"]["ended"], "timeout", "{text}");
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|v| v["data"]["end"].is_null() && v["data"]["next_offset"].is_u64()),
        "{text}"
    );
}

#[test]
fn read_follow_ends_when_the_session_closes() {
    let f = fx();
    let id = f.connect(&[]);
    let mut follower = Streamer::spawn(follow_cmd(&f, &id, "60000"));
    f.ok(&[
        "session",
        "exec",
        "-s",
        &id,
        "--detach",
        "--",
        "echo before-exit; exit",
    ]);
    let code = follower.wait(Duration::from_secs(20));
    let text = follower.text();
    assert_eq!(
        code,
        Some(0),
        "follow did not end after the shell exited:\n{text}"
    );
    let lines = ndjson_lines(&text);
    let streamed: String = lines
        .iter()
        .filter_map(|v| v["data"]["output"].as_str())
        .collect();
    assert!(has_line(&streamed, "before-exit"), "{text}");
    let end = &lines.last().unwrap()["data"]["end"];
    assert_eq!(end["ended"], "session_ended", "{text}");
    assert_eq!(end["status"], "closed", "{text}");
    assert_eq!(f.status(&id)["status"], "closed");
}

#[test]
fn read_follow_ends_when_the_session_is_closed_by_a_client() {
    let f = fx();
    let id = f.connect(&[]);
    let mut follower = Streamer::spawn(follow_cmd(&f, &id, "60000"));
    f.ok(&[
        "session",
        "exec",
        "-s",
        &id,
        "--detach",
        "--",
        "echo hello-follow",
    ]);
    // Wait until the follower has streamed the output, then close the session.
    let streamed = wait_until(Duration::from_secs(10), || {
        follower.text().contains("hello-follow\\n")
    });
    assert!(streamed, "nothing streamed:\n{}", follower.text());
    f.ok(&["session", "close", "-s", &id]);
    let code = follower.wait(Duration::from_secs(10));
    let text = follower.text();
    assert_eq!(code, Some(0), "follow did not end after close:\n{text}");
    let lines = ndjson_lines(&text);
    assert_eq!(
        lines.last().unwrap()["data"]["end"]["ended"],
        "session_ended",
        "{text}"
    );
}

// Root's sessions on OpenSSH refuse `signal`, so before the pid-based stop root's command
// outlived a `session exec` timeout that said "was stopped", and the output was dropped.
#[test]
fn session_exec_timeout_stops_the_command_and_keeps_the_output() {
    let env = TestEnv::new();
    let sshd = Sshd::start_with(SshdOptions {
        authorized_keys: vec![env.client_pubkey()],
        permit_root: true,
        ..SshdOptions::default()
    });
    env.trust_host(&sshd);
    let f = Fx {
        env,
        sshd,
        extra_env: Vec::new(),
    };
    let port = f.sshd.port.to_string();
    let key = f.env.key_path().display().to_string();
    let pgrep = |pattern: &str| {
        let out = Command::new("pgrep")
            .args(["-a", "-f", pattern])
            .stdin(Stdio::null())
            .output()
            .expect("run pgrep");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    for (i, user) in ["root", TEST_USER].into_iter().enumerate() {
        let d = f.ok(&[
            "connect",
            "-H",
            "127.0.0.1",
            "-P",
            &port,
            "-u",
            user,
            "--private-key-path",
            &key,
        ]);
        let id = s(&d["id"]).to_string();
        let pattern = format!("sleep 61.{}{i}", std::process::id());
        let cmd = format!("echo before; {pattern}");
        let (v, rc) = f.json(&[
            "session",
            "exec",
            "-s",
            &id,
            "--timeout",
            "1500",
            "--",
            &cmd,
        ]);
        let stray = pgrep(&pattern);
        if !stray.is_empty() {
            let _ = Command::new("pkill")
                .args(["-KILL", "-f", &pattern])
                .status();
        }
        assert_eq!(v["code"], "timeout", "{user}: {v}");
        assert_eq!(rc, 124, "{user}: {v}");
        assert_eq!(v["data"]["stdout"], "before\n", "{user}: {v}");
        assert_eq!(v["data"]["session_id"], id.as_str(), "{user}: {v}");
        assert_eq!(v["data"]["remote_stopped"], true, "{user}: {v}");
        assert!(s(&v["error"]).contains("was stopped"), "{user}: {v}");
        assert!(stray.is_empty(), "{user}: still running: {stray}");
    }
}

/// `connect` answers with an error, never `ok`, for a session that is already gone when it
/// answers: the shell exited at once (`session_closed`, quoting its last line) or the server
/// dropped the connection (`connect_failed`); the error's data holds what the session showed,
/// and nothing is left in `session list`.
#[test]
fn connect_to_a_session_that_ends_at_once_is_an_error_not_a_dead_session() {
    for (force, code, rc, said) in [
        (
            "echo goodbye-from-$((6*7))",
            "session_closed",
            1,
            "goodbye-from-42",
        ),
        ("kill -9 $PPID", "connect_failed", 255, ""),
    ] {
        let env = TestEnv::new();
        let sshd = Sshd::start_with(SshdOptions {
            authorized_keys: vec![env.client_pubkey()],
            extra_config: format!("ForceCommand {force}"),
            ..SshdOptions::default()
        });
        env.trust_host(&sshd);
        env.add_profile("t", &sshd);
        let (v, got_rc) = env.json(&["--json", "connect", "-p", "t"]);
        assert_eq!(v["ok"], false, "{force}: {v}");
        assert_eq!(v["code"], code, "{force}: {v}");
        assert_eq!(got_rc, rc, "{force}: {v}");
        assert!(
            v["error"].as_str().unwrap_or_default().contains(said),
            "{force}: the error does not quote the last output: {v}"
        );
        assert!(v["data"]["session_id"].is_string(), "{force}: {v}");
        let (list, _) = env.json(&["--json", "session", "list"]);
        assert_eq!(
            list["data"]["sessions"],
            serde_json::json!([]),
            "{force}: {list}"
        );
    }
}
