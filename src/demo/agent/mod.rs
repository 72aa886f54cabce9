//! The demo's scripted agent: it drives the real `agentssh --json` CLI (this binary, as a
//! subprocess, in the demo's private environment) the way an agent would, and reports one
//! envelope per step: `{"ok":true,"data":{"step":…,"argv":…,"result":…}}`, or an error
//! envelope carrying the failing step. It stops at the first failed step.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

mod steps;

use steps::{expect, shell_words};

use super::scripts;
use super::setup::{run_with_deadline, DemoEnv};
use crate::cli::output::{err_envelope, ok_envelope};
use crate::error::{Error, ErrorCode};

/// Deadline of one CLI call.
const CALL_DEADLINE: Duration = Duration::from_secs(90);
/// Pause between two polls of a session's screen or status.
const POLL: Duration = Duration::from_millis(200);
/// The same while waiting for a human (fewer entries in the dashboard's activity pane).
const HUMAN_POLL: Duration = Duration::from_secs(1);

/// How the deploy prompt is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The agent types `y` itself (headless).
    Agent,
    /// A human takes over in the dashboard and answers; the agent waits up to this long.
    Human(Duration),
}

/// The agent: where its envelopes go and whether every step so far succeeded.
pub struct Agent<'a> {
    demo: &'a DemoEnv,
    sink: Box<dyn Write + Send + 'a>,
    stop: Arc<AtomicBool>,
    poll: Duration,
}

/// A failed step (already reported).
#[derive(Debug)]
pub struct Failed;

type Step<T> = std::result::Result<T, Failed>;

impl<'a> Agent<'a> {
    /// An agent reporting to `sink`.
    pub fn new(demo: &'a DemoEnv, sink: Box<dyn Write + Send + 'a>) -> Agent<'a> {
        Agent {
            demo,
            sink,
            stop: Arc::default(),
            poll: POLL,
        }
    }

    /// Makes the agent give up (at its next call or poll) once `stop` is set.
    pub fn with_stop(mut self, stop: Arc<AtomicBool>) -> Agent<'a> {
        self.stop = stop;
        self
    }

    fn stopped(&mut self, step: &str, argv: &str) -> Step<()> {
        if self.stop.load(Ordering::SeqCst) {
            let e = Error::new(ErrorCode::SessionClosed, "the demo is ending");
            return Err(self.fail(step, argv, e));
        }
        Ok(())
    }

    /// Writes one envelope line.
    pub fn emit(&mut self, v: &Value) {
        let _ = writeln!(self.sink, "{v}");
        let _ = self.sink.flush();
    }

    fn fail(&mut self, step: &str, argv: &str, err: Error) -> Failed {
        let data = json!({"step": step, "argv": argv});
        self.emit(&err_envelope(&err, Some(data)));
        Failed
    }

    /// Runs `agentssh --json ARGS`, checks the envelope with `check`, reports the step.
    fn call(
        &mut self,
        step: &str,
        args: &[&str],
        check: impl Fn(&Value) -> Result<(), String>,
    ) -> Step<Value> {
        let argv = format!("agentssh --json {}", shell_words(args));
        self.stopped(step, &argv)?;
        let out = self
            .demo
            .agentssh()
            .map_err(|e| self.fail(step, &argv, e))
            .and_then(|mut cmd| {
                cmd.arg("--json").args(args);
                run_with_deadline(&mut cmd, CALL_DEADLINE).ok_or_else(|| {
                    let e = Error::new(ErrorCode::Timeout, "the CLI call did not finish in time");
                    self.fail(step, &argv, e)
                })
            })?;
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Value = match serde_json::from_str(text.trim()) {
            Ok(v) => v,
            Err(e) => {
                let e = Error::internal(format!(
                    "the CLI printed no JSON envelope ({e}): {}",
                    text.trim()
                ));
                return Err(self.fail(step, &argv, e));
            }
        };
        if v["ok"] != true {
            let code = v["code"].as_str().unwrap_or("internal");
            let msg = v["error"].as_str().unwrap_or("failed");
            let code = serde_json::from_value(json!(code)).unwrap_or(ErrorCode::Internal);
            let e = Error::new(code, format!("{step}: {msg}"));
            return Err(self.fail(step, &argv, e));
        }
        let data = v["data"].clone();
        if let Err(why) = check(&data) {
            let e = Error::internal(format!("{step}: {why}"));
            return Err(self.fail(step, &argv, e));
        }
        self.emit(&ok_envelope(
            json!({"step": step, "argv": argv, "result": data}),
        ));
        Ok(data)
    }

    /// The whole script. `answer` says who answers the deploy prompt.
    pub fn run(&mut self, answer: Answer) -> Step<()> {
        let port = self.demo.port.to_string();
        let key = self.demo.key_path.to_string_lossy().into_owned();
        let user = self.demo.user.clone();
        let ok = |_: &Value| Ok(());
        self.call(
            "profile_add",
            &[
                "profile",
                "add",
                "demo",
                "--host",
                "127.0.0.1",
                "--port",
                &port,
                "--username",
                &user,
                "--private-key-path",
                &key,
            ],
            ok,
        )?;
        let v = self.call(
            "exec",
            &[
                "exec",
                "-p",
                "demo",
                "--",
                "echo \"hello from $(uname -s)\"; command -v top || true",
            ],
            |d| {
                expect(
                    d["exit_status"] == 0
                        && d["stdout"]
                            .as_str()
                            .is_some_and(|s| s.starts_with("hello from")),
                    "exec output",
                )
            },
        )?;
        let has_top = v["stdout"].as_str().is_some_and(|s| s.lines().count() > 1);
        for (name, body) in [
            ("build.sh", scripts::BUILD),
            ("monitor.sh", scripts::MONITOR),
            ("deploy.sh", scripts::DEPLOY),
        ] {
            self.call(
                "file_write",
                &[
                    "file",
                    "write",
                    "-p",
                    "demo",
                    "--remote",
                    name,
                    "--content",
                    body,
                ],
                ok,
            )?;
        }
        self.call(
            "file_read",
            &["file", "read", "-p", "demo", "--remote", "deploy.sh"],
            |d| {
                expect(
                    d["content"] == scripts::DEPLOY,
                    "file read returned what was written",
                )
            },
        )?;
        for name in ["build", "monitor", "deploy"] {
            self.call(
                "connect",
                &[
                    "connect", "-p", "demo", "--name", name, "--cols", "100", "--rows", "30",
                ],
                |d| expect(d["name"] == name || d["id"].is_string(), "a session id"),
            )?;
        }
        // The deploy starts first, so its prompt waits for a human from the first seconds.
        self.call(
            "session_send",
            &[
                "session",
                "send",
                "-s",
                "deploy",
                "--input",
                "sh deploy.sh\n",
            ],
            ok,
        )?;
        self.call(
            "session_run",
            &[
                "session",
                "run",
                "-s",
                "build",
                "--timeout",
                "60000",
                "--",
                "sh build.sh",
            ],
            |d| {
                expect(
                    d["exit_status"] == 0
                        && d["output"].as_str().is_some_and(|s| s.contains("Finished")),
                    "the build finished",
                )
            },
        )?;
        let monitor = if has_top {
            "top -d 1\n"
        } else {
            "sh monitor.sh\n"
        };
        self.call(
            "session_send",
            &["session", "send", "-s", "monitor", "--input", monitor],
            ok,
        )?;
        self.wait_screen("session_screen", "monitor", Duration::from_secs(20), |t| {
            t.contains("load average")
        })?;
        self.call(
            "session_exec",
            &["session", "exec", "-s", "build", "--", "ls"],
            |d| {
                expect(
                    d["stdout"]
                        .as_str()
                        .is_some_and(|s| s.contains("deploy.sh")),
                    "ls lists the scripts",
                )
            },
        )?;
        self.forward()?;
        let waiting = |t: &str| {
            t.trim_end().ends_with(scripts::PROMPT)
                || scripts::DEPLOY_DONE.iter().any(|d| t.contains(d))
        };
        match answer {
            Answer::Agent => {
                self.wait_screen("deploy_prompt", "deploy", Duration::from_secs(20), |t| {
                    t.trim_end().ends_with(scripts::PROMPT)
                })?;
                self.call(
                    "deploy_answer",
                    &["session", "send", "-s", "deploy", "--input", "y\n"],
                    ok,
                )?;
                self.wait_screen("deploy_done", "deploy", Duration::from_secs(20), |t| {
                    t.contains(scripts::DEPLOY_DONE[0])
                })?;
            }
            Answer::Human(limit) => {
                self.poll = HUMAN_POLL;
                // A quick human may answer before the agent has even seen the prompt.
                self.wait_screen("deploy_prompt", "deploy", Duration::from_secs(20), waiting)?;
                self.wait_screen("deploy_done", "deploy", limit, |t| {
                    scripts::DEPLOY_DONE.iter().any(|d| t.contains(d))
                })?;
                self.wait_controller("handed_back", "deploy", limit)?;
            }
        }
        self.call("session_list", &["session", "list"], |d| {
            let n = d["sessions"].as_array().map_or(0, Vec::len);
            expect(n == 3, "three sessions")
        })?;
        Ok(())
    }
}
