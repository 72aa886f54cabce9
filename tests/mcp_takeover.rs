//! A session opened through `agentssh mcp` (driven by the official Python MCP SDK, kept
//! running between steps) is taken over by a human in the dashboard running in tmux: the
//! next `session_send` tool call is a tool error with code `session_taken_over`, and after
//! the human hands control back (`r`) the tool works again.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use common::tmux::Tmux;
use common::*;

/// How long a pane, the daemon or the client gets to show a change.
const UI: Duration = Duration::from_secs(20);

/// The Python client in `takeover` mode: one JSON line out per step, a line in to go on.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Client {
    fn start(env: &TestEnv) -> Client {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/client.py");
        let mut cmd = Command::new("python3");
        env.apply_env(&mut cmd);
        cmd.arg(script)
            .args(["takeover", env!("CARGO_BIN_EXE_agentssh"), "t", "-"])
            .args(["--profile", "t"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("start python3");
        let stdin = child.stdin.take();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Client {
            child,
            stdin,
            lines,
        }
    }

    /// The next step's report.
    fn next(&self, ctx: &str) -> Value {
        let line = self
            .lines
            .recv_timeout(RUN_DEADLINE)
            .unwrap_or_else(|e| panic!("{ctx}: no line from client.py: {e}"));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{ctx}: {e}: {line}"))
    }

    /// Lets the client make its next `session_send` call and returns the result.
    fn send(&mut self, ctx: &str) -> Value {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
        self.next(ctx)["send"].clone()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn controller(env: &TestEnv) -> String {
    let (v, _) = env.json(&["--json", "session", "status", "-s", "mcp-work"]);
    v["data"]["controller"].as_str().unwrap_or_default().into()
}

#[test]
fn dashboard_takeover_gives_the_mcp_tool_session_taken_over() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    env.add_profile("t", &sshd);

    let mut client = Client::start(&env);
    let opened = client.next("session_open")["opened"].clone();
    assert_eq!(opened["is_error"], false, "{opened}");
    let id = opened["structured"]["id"].as_str().unwrap().to_string();

    let before = client.send("agent in control");
    assert_eq!(before["is_error"], false, "{before}");
    assert!(
        before["structured"]["output"]
            .as_str()
            .unwrap_or_default()
            .contains("step-10"),
        "{before}"
    );

    let tmux = Tmux::new();
    let dash = tmux.dashboard(&env, 120, 40);
    dash.wait_for(&id, "the dashboard lists the MCP session");
    dash.wait_for(
        "prompt      mcp ",
        "the session row names its client in the ctl column",
    );
    dash.wait_for("agent in control", "live pane title");
    dash.keys(&["t"]);
    assert!(
        wait_until(UI, || controller(&env) == "human"),
        "`t` in the dashboard did not take control:\n{}",
        dash.capture()
    );

    let refused = client.send("human in control");
    assert_eq!(refused["is_error"], true, "{refused}");
    assert_eq!(
        refused["structured"]["code"], "session_taken_over",
        "{refused}"
    );

    // Ctrl-] back to the dashboard's keys, `r` hands control back; the tool works again.
    dash.keys(&["C-]"]);
    dash.wait_for("you hold control", "after Ctrl-]");
    dash.keys(&["r"]);
    assert!(
        wait_until(UI, || controller(&env) == "agent"),
        "`r` did not hand control back:\n{}",
        dash.capture()
    );
    let after = client.send("handed back");
    assert_eq!(after["is_error"], false, "{after}");
    assert!(
        after["structured"]["output"]
            .as_str()
            .unwrap_or_default()
            .contains("step-30"),
        "{after}"
    );
    let all = env
        .json(&[
            "--json", "session", "read", "-s", "mcp-work", "--offset", "0",
        ])
        .0;
    let text = all["data"]["output"].as_str().unwrap_or_default();
    assert!(
        !text.contains("step-20"),
        "the refused input reached the shell:\n{text}"
    );
}
