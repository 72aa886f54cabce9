//! The agent's waiting steps (polling a session's screen or status until a condition holds)
//! and the port-forward step, plus small helpers.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{Agent, Step, CALL_DEADLINE};
use crate::cli::output::ok_envelope;
use crate::demo::setup::run_with_deadline;
use crate::error::{Error, ErrorCode};

impl Agent<'_> {
    /// Polls `session screen` until `pred` holds for its text, up to `deadline`.
    pub(super) fn wait_screen(
        &mut self,
        step: &str,
        session: &str,
        deadline: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Step<Value> {
        let argv = format!("agentssh --json session screen -s {session}");
        let start = Instant::now();
        loop {
            self.stopped(step, &argv)?;
            let v = self.quiet(&["session", "screen", "-s", session]);
            let text = v["rows"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default();
            if pred(&text) {
                self.emit(&ok_envelope(
                    json!({"step": step, "argv": argv, "result": v}),
                ));
                return Ok(v);
            }
            if start.elapsed() > deadline {
                let e = Error::new(
                    ErrorCode::Timeout,
                    format!(
                        "{step}: the screen of {session} never showed what was expected:\n{text}"
                    ),
                );
                return Err(self.fail(step, &argv, e));
            }
            // Polling the daemon's screen model: there is no event to wait on from here.
            std::thread::sleep(self.poll);
        }
    }

    /// Polls `session status` until the agent controls `session` again (the human handed it
    /// back), up to `deadline`.
    pub(super) fn wait_controller(
        &mut self,
        step: &str,
        session: &str,
        deadline: Duration,
    ) -> Step<Value> {
        let argv = format!("agentssh --json session status -s {session}");
        let start = Instant::now();
        loop {
            self.stopped(step, &argv)?;
            let v = self.quiet(&["session", "status", "-s", session]);
            if v["controller"] == "agent" {
                self.emit(&ok_envelope(
                    json!({"step": step, "argv": argv, "result": v}),
                ));
                return Ok(v);
            }
            if start.elapsed() > deadline {
                let e = Error::new(
                    ErrorCode::Timeout,
                    format!("{step}: {session} was not handed back"),
                );
                return Err(self.fail(step, &argv, e));
            }
            // Polling the daemon's session state: there is no event to wait on from here.
            std::thread::sleep(self.poll);
        }
    }

    /// A CLI call whose envelope is not reported (polling); its data, or null.
    pub(super) fn quiet(&self, args: &[&str]) -> Value {
        let Ok(mut cmd) = self.demo.agentssh() else {
            return Value::Null;
        };
        cmd.arg("--json").args(args);
        run_with_deadline(&mut cmd, CALL_DEADLINE)
            .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
            .map(|v| v["data"].clone())
            .unwrap_or(Value::Null)
    }

    /// Opens a local forward to a tiny loopback service through the server and uses it.
    pub(super) fn forward(&mut self) -> Step<()> {
        let argv = "(local service)";
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| {
            self.fail(
                "forward",
                argv,
                Error::local_io("cannot listen on 127.0.0.1", &e),
            )
        })?;
        let service = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        std::thread::spawn(move || {
            // One greeting per connection; the thread ends with the demo process.
            for mut s in listener.incoming().flatten().take(16) {
                let _ = s.write_all(b"hello from the demo service\n");
            }
        });
        let d = self.call(
            "proxy_create",
            &[
                "proxy",
                "create",
                "-p",
                "demo",
                "--name",
                "web",
                "--local",
                "127.0.0.1:0",
                "--remote",
                &service,
            ],
            |d| expect(d["local"].is_string(), "the bound local address"),
        )?;
        let local = d["local"].as_str().unwrap_or_default().to_string();
        let line = TcpStream::connect(&local).and_then(|s| {
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut line = String::new();
            BufReader::new(s).read_line(&mut line)?;
            Ok(line)
        });
        match line {
            Ok(l) if l.starts_with("hello from the demo service") => {
                self.emit(&ok_envelope(json!({"step": "proxy_use", "argv": format!("connect {local}"), "result": {"received": l.trim_end()}})));
            }
            Ok(l) => {
                return Err(self.fail(
                    "proxy_use",
                    &local,
                    Error::internal(format!("unexpected reply {l:?}")),
                ))
            }
            Err(e) => {
                return Err(self.fail("proxy_use", &local, Error::local_io("the forward", &e)))
            }
        }
        self.call(
            "proxy_close",
            &["proxy", "close", "--proxy-id", "web"],
            |_| Ok(()),
        )?;
        Ok(())
    }
}

pub(super) fn expect(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(format!("expected {what}"))
    }
}

/// Arguments quoted for display, as a shell would need them.
pub(super) fn shell_words(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,".contains(c))
            {
                a.to_string()
            } else if a.contains('\n') && a.len() > 40 {
                "'…'".to_string()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
