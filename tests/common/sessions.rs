//! A client environment plus a real sshd, with helpers that drive sessions through the CLI
//! (`connect`, `send`, `read`, `run`, `status`, waits): shared by the session test binaries.

use std::time::Duration;

use serde_json::Value;

use super::*;

/// One client environment plus one sshd that trusts its key (env first: its drop kills the
/// daemon before sshd goes away).
pub struct Fx {
    pub env: TestEnv,
    pub sshd: Sshd,
    /// Extra environment for the agentssh processes (e.g. `AGENTSSH_KEEPALIVE_MS`, which the
    /// autostarted daemon inherits).
    pub extra_env: Vec<(String, String)>,
}

pub fn fx() -> Fx {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    Fx {
        env,
        sshd,
        extra_env: Vec::new(),
    }
}

pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

pub fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("not an unsigned number: {v}"))
}

/// Whether `text` has a line exactly equal to `line`.
pub fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

impl Fx {
    /// `agentssh --json ARGS` → (envelope, exit code).
    pub fn json(&self, args: &[&str]) -> (Value, i32) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let mut cmd = self.env.cmd();
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd.args(&all);
        parse_json_output(&output_with_deadline(cmd, None, RUN_DEADLINE), &all)
    }

    /// `data` of a successful command (asserts ok and exit code 0).
    pub fn ok(&self, args: &[&str]) -> Value {
        let (v, rc) = self.json(args);
        assert_eq!(v["ok"], true, "{args:?} failed (rc {rc}): {v}");
        assert_eq!(rc, 0, "{args:?}: exit code {rc}: {v}");
        v["data"].clone()
    }

    /// (error code, exit code) of a failing command.
    pub fn err(&self, args: &[&str]) -> (String, i32) {
        let (v, rc) = self.json(args);
        assert_eq!(v["ok"], false, "{args:?} should have failed: {v}");
        (s(&v["code"]).to_string(), rc)
    }

    /// `connect` to `port` (sshd's or a proxy's) with `extra` flags; returns its data.
    pub fn connect_to(&self, port: u16, extra: &[&str]) -> Value {
        let port = port.to_string();
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
        assert_eq!(d["status"], "running", "connect: {d}");
        assert!(d["id"].is_string(), "connect: no id in {d}");
        d
    }

    /// `connect` straight to sshd; returns the session id.
    pub fn connect(&self, extra: &[&str]) -> String {
        s(&self.connect_to(self.sshd.port, extra)["id"]).to_string()
    }

    pub fn send(&self, id: &str, input: &str, extra: &[&str]) -> Value {
        let mut args = vec!["session", "send", "-s", id, "--input", input];
        args.extend_from_slice(extra);
        self.ok(&args)
    }

    pub fn read(&self, id: &str, extra: &[&str]) -> Value {
        let mut args = vec!["session", "read", "-s", id];
        args.extend_from_slice(extra);
        let d = self.ok(&args);
        check_read_invariants(&d);
        d
    }

    pub fn status(&self, id: &str) -> Value {
        self.ok(&["session", "status", "-s", id])
    }

    pub fn screen(&self, id: &str) -> Value {
        self.ok(&["session", "screen", "-s", id])
    }

    /// `session run` → (data or error envelope, exit code).
    pub fn run(&self, id: &str, command: &str) -> (Value, i32) {
        let (v, rc) = self.json(&["session", "run", "-s", id, "--", command]);
        if v["ok"] == true {
            (v["data"].clone(), rc)
        } else {
            (v, rc)
        }
    }

    /// `session run` that must exit 0; returns its output.
    pub fn run_ok(&self, id: &str, command: &str) -> String {
        let (d, rc) = self.run(id, command);
        assert_eq!(rc, 0, "run {command:?}: rc {rc}: {d}");
        assert_eq!(d["exit_status"], 0, "run {command:?}: {d}");
        s(&d["output"]).to_string()
    }

    /// Polls offset reads (the cursor does not move) from `from` until some committed line
    /// equals `line`; returns the offset just past that line's chunk, or None on timeout.
    pub fn wait_line_from(
        &self,
        id: &str,
        from: u64,
        line: &str,
        deadline: Duration,
    ) -> Option<u64> {
        let mut from = from;
        let mut carry = String::new();
        let mut found = None;
        wait_until(deadline, || {
            let off = from.to_string();
            let d = self.read(id, &["--offset", &off]);
            let text = format!("{carry}{}", s(&d["output"]));
            from = u(&d["next_offset"]);
            // Keep an incomplete last line (a read cut by --limit) for the next round.
            let (complete, rest) = match text.rfind('\n') {
                Some(i) => (&text[..=i], &text[i + 1..]),
                None => ("", text.as_str()),
            };
            if has_line(complete, line) {
                found = Some(from);
                return true;
            }
            carry = rest.to_string();
            false
        });
        found
    }

    /// Cursor reads until the text read so far satisfies `cond`; returns that text.
    pub fn read_until(&self, id: &str, deadline: Duration, cond: impl Fn(&str) -> bool) -> String {
        let mut text = String::new();
        let ok = wait_until(deadline, || {
            let d = self.read(id, &[]);
            text.push_str(s(&d["output"]));
            cond(&text)
        });
        assert!(
            ok,
            "session {id}: condition not met within {deadline:?}; read so far:\n{text}"
        );
        text
    }

    /// Waits until `session status` satisfies `cond`; returns the last status.
    pub fn wait_status(
        &self,
        id: &str,
        deadline: Duration,
        cond: impl Fn(&Value) -> bool,
    ) -> Value {
        let mut last = Value::Null;
        let ok = wait_until(deadline, || {
            last = self.status(id);
            cond(&last)
        });
        assert!(
            ok,
            "session {id}: status condition not met within {deadline:?}: {last}"
        );
        last
    }

    /// The daemon's pid from `daemon status`.
    pub fn daemon_pid(&self) -> u32 {
        let d = self.ok(&["daemon", "status"]);
        assert_eq!(d["running"], true, "daemon not running: {d}");
        u(&d["pid"]) as u32
    }

    /// The daemon's log file (tracing output).
    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.env.state_home.join("agentssh").join("daemon.log"))
            .unwrap_or_default()
    }
}

/// Offsets of any read: `next_offset == offset + output.len()` for clean reads.
pub fn check_read_invariants(d: &Value) {
    let (offset, next) = (u(&d["offset"]), u(&d["next_offset"]));
    assert!(next >= offset, "next_offset < offset: {d}");
    if d["output_b64"].is_null() {
        assert_eq!(
            offset + s(&d["output"]).len() as u64,
            next,
            "offset + output length != next_offset: {d}"
        );
    }
}

/// Rows of a screen snapshot.
pub fn rows_of(snap: &Value) -> Vec<String> {
    snap["rows"]
        .as_array()
        .map(|r| r.iter().map(|l| s(l).to_string()).collect())
        .unwrap_or_default()
}
