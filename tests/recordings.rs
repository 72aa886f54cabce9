//! Session recordings against a real sshd: the asciicast plays with the third-party
//! `asciinema cat` and its text matches the session's clean output; a password typed at a
//! no-echo prompt is in no file under the state dir; the per-session cap holds under a
//! flood; a SIGKILLed daemon leaves a recording the player still reads; `--no-record`
//! records nothing.
//!
//! Every test has its own [`TestEnv`] (so its own daemon) and [`Sshd`].

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

struct Fx {
    env: TestEnv,
    sshd: Sshd,
    /// Environment the autostarted daemon inherits (recording caps).
    extra_env: Vec<(&'static str, String)>,
}

fn fx(extra_env: Vec<(&'static str, String)>) -> Fx {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    Fx {
        env,
        sshd,
        extra_env,
    }
}

impl Fx {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.env.cmd();
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd.args(args);
        cmd
    }

    fn json(&self, args: &[&str]) -> (Value, i32) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = output_with_deadline(self.cmd(&all), None, RUN_DEADLINE);
        parse_json_output(&out, &all)
    }

    fn ok(&self, args: &[&str]) -> Value {
        let (v, rc) = self.json(args);
        assert_eq!(v["ok"], true, "{args:?} failed (rc {rc}): {v}");
        v["data"].clone()
    }

    fn connect(&self, extra: &[&str]) -> String {
        let port = self.sshd.port.to_string();
        let key = self.env.key_path().display().to_string();
        let mut args = vec![
            "connect",
            "-H",
            "127.0.0.1",
            "-P",
            &port,
            "-u",
            TEST_USER,
            "--private-key-path",
            &key,
        ];
        args.extend_from_slice(extra);
        let d = self.ok(&args);
        d["id"].as_str().expect("session id").to_string()
    }

    fn recordings_dir(&self) -> PathBuf {
        self.env.state_home.join("agentssh").join("recordings")
    }

    /// The recording's path, via `session export` (which flushes a live one).
    fn export(&self, id: &str, format: &str) -> Value {
        self.ok(&["session", "export", "-s", id, "--format", format])
    }
}

/// `asciinema cat FILE`: what the third-party player prints (asserts it succeeds).
fn asciinema_cat(path: &Path) -> String {
    let out = Command::new("asciinema")
        .arg("cat")
        .arg(path)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("asciinema is not installed: run scripts/test-setup.sh (pip install asciinema)");
    assert!(
        out.status.success(),
        "asciinema cat {path:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `o` events of a recording, concatenated (what a player writes to its terminal).
fn output_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2, "header: {header}");
    let mut out = String::new();
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}"));
        assert_ne!(v[1], "i", "keystrokes must never be recorded: {l}");
        if v[1] == "o" {
            out.push_str(v[2].as_str().unwrap());
        }
    }
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn recording_plays_in_asciinema_and_its_text_is_the_clean_output() {
    let f = fx(Vec::new());
    let id = f.connect(&["--name", "rec1"]);
    f.ok(&[
        "session",
        "send",
        "-s",
        &id,
        "--input",
        "echo rec-$((6*7)); printf 'a\\tb\\n'\n",
    ]);
    f.ok(&[
        "session", "resize", "-s", &id, "--cols", "100", "--rows", "30",
    ]);
    f.ok(&["session", "run", "-s", &id, "--", "echo ran-$((2+3))"]);
    let read = f.ok(&["session", "read", "-s", &id, "--offset", "0"]);
    let clean = format!(
        "{}{}",
        read["output"].as_str().unwrap(),
        read["pending"].as_str().unwrap_or("")
    );
    assert!(
        clean.contains("rec-42") && clean.contains("ran-5"),
        "{clean}"
    );

    let txt = f.export("rec1", "txt");
    assert_eq!(
        txt["content"].as_str().unwrap(),
        clean,
        "export txt != read --offset 0"
    );
    let path = PathBuf::from(txt["recording"].as_str().unwrap());
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&f.recordings_dir()), 0o700);

    // The third-party player prints exactly the recorded output.
    let shown = asciinema_cat(&path);
    assert_eq!(shown, output_of(&path));
    assert!(shown.contains("rec-42") && shown.contains("ran-5"));

    let body = std::fs::read_to_string(&path).unwrap();
    for marker in [
        "\"m\",\"agent sent",
        "session run started",
        "session run ended (exit status 0)",
    ] {
        assert!(body.contains(marker), "no {marker:?} in\n{body}");
    }
    assert!(
        body.contains("\"r\",\"100x30\""),
        "no resize event in\n{body}"
    );

    // Closed sessions export too, by id, and are listed.
    f.ok(&["session", "close", "-s", &id]);
    let cast = f.export(&id, "cast");
    assert!(cast["content"]
        .as_str()
        .unwrap()
        .starts_with("{\"version\":2"));
    let list = f.ok(&["recordings", "list"]);
    let recs = list["recordings"].as_array().unwrap();
    assert_eq!(recs.len(), 1, "{list}");
    assert_eq!(recs[0]["name"], "rec1");
    assert_eq!(recs[0]["live"], false);
    f.ok(&["recordings", "delete", "-s", "rec1"]);
    assert!(!path.exists());
}

#[test]
fn a_password_typed_at_a_no_echo_prompt_is_in_no_file() {
    let f = fx(Vec::new());
    let id = f.connect(&[]);
    let secret = "hunter2-Zq8v-secret";
    let respond = format!("{secret}\n");
    let d = f.ok(&[
        "session",
        "send",
        "-s",
        &id,
        "--input",
        "read -s -p 'Password: ' pw; echo; echo len=${#pw}\n",
        "--expect",
        "Password:",
        "--respond",
        &respond,
        "--wait-idle",
        "500",
    ]);
    let all = f.ok(&["session", "read", "-s", &id, "--offset", "0"]);
    assert!(
        all["output"]
            .as_str()
            .unwrap()
            .contains(&format!("len={}", secret.len())),
        "the shell did not get the password: {d} {all}"
    );
    let path = PathBuf::from(
        f.export(&id, "cast")["recording"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    f.ok(&["session", "close", "-s", &id]);
    f.ok(&["daemon", "shutdown"]);
    let body = std::fs::read_to_string(&path).unwrap();
    assert!(
        body.contains(&format!("agent sent {} bytes", respond.len())),
        "{body}"
    );
    let mut checked = 0;
    for file in walk(&f.env.state_home) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the password is in {file:?}"
        );
        checked += 1;
    }
    assert!(
        checked >= 2,
        "expected the daemon log and the recording, saw {checked} files"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn the_session_cap_bounds_a_flooded_recording() {
    const CAP: u64 = 1024 * 1024;
    let f = fx(vec![("AGENTSSH_RECORD_SESSION_CAP", "1M".into())]);
    let id = f.connect(&[]);
    // About 8 MiB of output.
    let d = f.ok(&[
        "session",
        "run",
        "-s",
        &id,
        "--timeout",
        "120000",
        "--limit",
        "100",
        "--",
        "head -c 6000000 /dev/zero | base64 -w 200; echo flood-done",
    ]);
    assert_eq!(d["exit_status"], 0, "{d}");
    f.ok(&["session", "close", "-s", &id]);
    let path = PathBuf::from(
        f.export(&id, "cast")["recording"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(
        size <= CAP + 4096,
        "recording of {size} bytes passes the cap"
    );
    assert!(
        size > CAP / 2,
        "recording of {size} bytes: too little recorded"
    );
    let body = std::fs::read_to_string(&path).unwrap();
    assert!(
        body.contains("recording cap of 1048576 bytes reached"),
        "no cap marker"
    );
    assert!(
        body.contains("bytes of output not recorded"),
        "no closing summary"
    );
    asciinema_cat(&path);
}

#[test]
fn a_sigkilled_daemon_leaves_a_recording_the_player_reads_and_no_record_records_nothing() {
    let f = fx(Vec::new());
    let quiet = f.connect(&["--no-record", "--name", "quiet"]);
    f.ok(&[
        "session",
        "send",
        "-s",
        &quiet,
        "--input",
        "echo quiet-one\n",
    ]);
    let id = f.connect(&[]);
    f.ok(&[
        "session",
        "send",
        "-s",
        &id,
        "--input",
        "echo before-$((40+2))\n",
    ]);
    // The writer flushes within a second of the output, without being asked.
    let on_disk = wait_until(Duration::from_secs(10), || {
        walk(&f.recordings_dir()).iter().any(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .contains("before-42")
        })
    });
    assert!(on_disk, "the output never reached the recording");
    let pid = f.ok(&["daemon", "status"])["pid"].as_u64().unwrap() as u32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(wait_until(Duration::from_secs(10), || !pid_alive(pid)));
    let files = walk(&f.recordings_dir());
    assert_eq!(files.len(), 1, "--no-record must record nothing: {files:?}");
    let shown = asciinema_cat(&files[0]);
    assert!(shown.contains("before-42"), "{shown}");
}

#[test]
fn a_slow_disk_drops_output_with_a_marker_while_the_session_goes_on() {
    // Every write to the recording takes 100 ms: the 4 MiB queue overflows under a flood.
    let f = fx(vec![("AGENTSSH_TEST_RECORD_WRITE_DELAY_MS", "100".into())]);
    let id = f.connect(&[]);
    let d = f.ok(&[
        "session",
        "run",
        "-s",
        &id,
        "--timeout",
        "120000",
        "--limit",
        "100",
        "--",
        "head -c 12000000 /dev/zero | base64 -w 200; echo flood-done",
    ]);
    assert_eq!(d["exit_status"], 0, "{d}");
    assert!(d["output"].as_str().unwrap().contains("flood-done"), "{d}");
    f.ok(&["session", "close", "-s", &id]);
    // The slow writer still works through its queue; wait until it has closed the file.
    let finished = wait_until(Duration::from_secs(60), || {
        f.ok(&["recordings", "list"])["recordings"][0]["live"] == false
    });
    assert!(finished, "the recording never finished");
    let path = PathBuf::from(
        f.export(&id, "cast")["recording"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let body = std::fs::read_to_string(&path).unwrap();
    let dropped: u64 = body
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v[1] == "m")
        .filter_map(|v| {
            let label = v[2].as_str()?.to_string();
            label
                .strip_suffix(" bytes of output dropped: the disk was too slow")?
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert!(
        dropped > 0,
        "no drop marker in a recording of {} bytes",
        body.len()
    );
    asciinema_cat(&path);
}

/// Replaces the first occurrence of `from` in `path` by `to` (same length: one byte).
fn tamper(path: &Path, from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} not in {path:?}");
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn log_verify_follows_the_chain_across_restarts_and_names_an_edited_entry_or_recording() {
    let f = fx(Vec::new());
    let id = f.connect(&[]);
    f.ok(&["session", "send", "-s", &id, "--input", "echo audit-one\n"]);
    f.ok(&["session", "close", "-s", &id]);
    f.ok(&["daemon", "shutdown"]);
    // A second daemon continues the chain.
    let id2 = f.connect(&[]);
    f.ok(&["session", "send", "-s", &id2, "--input", "echo audit-two\n"]);
    f.ok(&["session", "close", "-s", &id2]);
    f.ok(&["daemon", "shutdown"]);

    let log = f.env.state_home.join("agentssh").join("activity.jsonl");
    assert_eq!(mode(&log), 0o600);
    let v = f.ok(&["log", "verify"]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["recordings_checked"], 2, "{v}");
    let entries = v["entries"].as_u64().unwrap();
    assert!(entries >= 6, "{v}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("recording closed"), "{text}");
    // A fresh daemon's `log` shows the first daemon's entries.
    f.ok(&["session", "list"]);
    let past = f.ok(&["log", "--limit", "1000"]);
    assert!(past.to_string().contains("echo audit-one"), "{past}");
    f.ok(&["daemon", "shutdown"]);

    // One byte of a recording.
    let rec = walk(&f.recordings_dir())
        .into_iter()
        .find(|p| std::fs::read_to_string(p).unwrap().contains("audit-two"));
    let rec = rec.expect("the second recording");
    tamper(&rec, "audit-two", "audit-twO");
    let (v, rc) = f.json(&["log", "verify"]);
    assert_eq!(rc, 1, "{v}");
    assert_eq!(v["data"]["ok"], false, "{v}");
    assert_eq!(
        v["data"]["broken_at"]["file"],
        rec.display().to_string(),
        "{v}"
    );
    tamper(&rec, "audit-twO", "audit-two");
    assert_eq!(f.ok(&["log", "verify"])["ok"], true);

    // One byte of a log entry: the line of the first `session send` is named.
    let line = text
        .lines()
        .position(|l| l.contains("audit-one"))
        .expect("the send is logged")
        + 1;
    tamper(&log, "audit-one", "audit-onE");
    let (v, rc) = f.json(&["log", "verify"]);
    assert_eq!(rc, 1, "{v}");
    let b = &v["data"]["broken_at"];
    assert_eq!(b["file"], log.display().to_string(), "{v}");
    assert_eq!(b["line"], line as u64, "{v}");
}
