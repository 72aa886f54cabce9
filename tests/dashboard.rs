//! The human faces end to end, in real terminals (tmux panes) against a real sshd: the
//! dashboard (`agentssh tui`) watching a session live, human takeover (`t`), typing into the
//! PTY, Ctrl-] and hand-back (`r`); `attach --read-only` (mirrors, keys go nowhere) and a
//! read-write `attach` (takes control, releases it on detach); the terminal and the daemon
//! surviving SIGTERM, SIGHUP and forced panics of both; hostile session output (OSC 52
//! clipboard writes, title changes, malformed escapes) never reaching the host terminal;
//! and the empty dashboard telling the user how to start a session. Controls prove the
//! checks can fail (SIGKILL leaves a raw terminal on the alternate screen; a raw OSC 52 /
//! title / mouse-mode switch in a plain pane does reach tmux).
//!
//! Every terminal is a tmux session on a private server (`-S` socket in a temp dir) running
//! a wrapper script: it prints a marker on the normal screen, runs agentssh under `env -i`
//! with exactly the TestEnv's variables (recording its pid), then records the exit status
//! and `stty -a`, and prints a second marker. The agent side is the CLI with `--json`.

mod common;

use std::fs;
use std::time::Duration;

use common::tmux::Tmux;
use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

/// How long a pane gets to show something.
const UI: Duration = Duration::from_secs(15);
/// How long the daemon gets to reflect a change.
const STATE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- fixture

/// A client environment and an sshd trusting its key. Tests declare their [`Tmux`] after
/// it, so the panes go first, then the daemon (TestEnv's drop), then sshd.
struct Fx {
    env: TestEnv,
    sshd: Sshd,
}

fn fx() -> Fx {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    Fx { env, sshd }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

impl Fx {
    /// `agentssh --json ARGS` → (envelope, exit code).
    fn json(&self, args: &[&str]) -> (Value, i32) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.env.json(&all)
    }

    /// `data` of a successful command.
    fn ok(&self, args: &[&str]) -> Value {
        let (v, rc) = self.json(args);
        assert_eq!(v["ok"], true, "{args:?} failed (rc {rc}): {v}");
        assert_eq!(rc, 0, "{args:?}: exit code {rc}: {v}");
        v["data"].clone()
    }

    /// `connect --name NAME` with a screen that fits the dashboard's live pane (70x24).
    fn connect(&self, name: &str) -> String {
        self.connect_sized(name, 70, 24)
    }

    /// `connect --name NAME --cols COLS --rows ROWS`.
    fn connect_sized(&self, name: &str, cols: u16, rows: u16) -> String {
        let (cols, rows) = (cols.to_string(), rows.to_string());
        let port = self.sshd.port.to_string();
        let key = self.env.key_path().display().to_string();
        let d = self.ok(&[
            "connect",
            "-H",
            "127.0.0.1",
            "-P",
            &port,
            "-u",
            TEST_USER,
            "--private-key-path",
            &key,
            "--name",
            name,
            "--cols",
            &cols,
            "--rows",
            &rows,
        ]);
        assert_eq!(d["status"], "running", "connect: {d}");
        s(&d["id"]).to_string()
    }

    fn send(&self, session: &str, input: &str) -> (Value, i32) {
        self.json(&["session", "send", "-s", session, "--input", input])
    }

    fn send_ok(&self, session: &str, input: &str) -> Value {
        self.ok(&["session", "send", "-s", session, "--input", input])
    }

    /// The session's whole clean output (absolute offset 0; the cursor does not move).
    fn output(&self, session: &str) -> String {
        let d = self.ok(&["session", "read", "-s", session, "--offset", "0"]);
        s(&d["output"]).to_string()
    }

    fn status(&self, session: &str) -> Value {
        self.ok(&["session", "status", "-s", session])
    }

    fn controller(&self, session: &str) -> String {
        s(&self.status(session)["controller"]).to_string()
    }

    /// Waits until the session's controller is `who`.
    fn wait_controller(&self, session: &str, who: &str, ctx: &str) {
        let mut last = String::new();
        let ok = wait_until(STATE, || {
            last = self.controller(session);
            last == who
        });
        assert!(ok, "{ctx}: controller stayed `{last}`, expected `{who}`");
    }

    fn daemon_pid(&self) -> u64 {
        self.ok(&["daemon", "status"])["pid"]
            .as_u64()
            .expect("daemon status has a pid")
    }

    /// The daemon still runs with `pid`, and the session is alive and usable by agents.
    fn assert_untouched(&self, session: &str, pid: u64, ctx: &str) {
        assert_eq!(self.daemon_pid(), pid, "{ctx}: the daemon was replaced");
        let st = self.status(session);
        assert_eq!(st["status"], "running", "{ctx}: {st}");
        let (v, rc) = self.json(&["session", "run", "-s", session, "--", "echo", "ok"]);
        assert_eq!(v["ok"], true, "{ctx}: session run failed (rc {rc}): {v}");
        assert_eq!(s(&v["data"]["output"]), "ok\n", "{ctx}: {v}");
    }

    /// Sends `echo PREFIX-$((N+0))` and returns the line it prints (`PREFIX-N`), so a pane
    /// showing that line shows the output, not the typed command.
    fn mark(&self, session: &str, prefix: &str, n: u32) -> String {
        self.send_ok(session, &format!("echo {prefix}-$(({n}+0))\n"));
        format!("{prefix}-{n}")
    }
}

fn signal(pid: u32, sig: Signal) {
    kill(Pid::from_raw(pid as i32), sig).unwrap_or_else(|e| panic!("kill {pid} {sig}: {e}"));
}

/// Whether some line of `text`, trimmed, is exactly `line`.
fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l.trim() == line)
}

// ---------------------------------------------------------------- tests

/// Must show 1: the dashboard shows an agent's session live; the human takes control with
/// `t` (agents get `session_taken_over`), types into the shell, goes back with Ctrl-] and
/// hands control back with `r`; the agent then sees what the human did.
#[test]
fn dashboard_takeover_round_trip() {
    let f = fx();
    let id = f.connect("work");
    let tmux = Tmux::new();
    let dash = tmux.agentssh(&f.env, "dash", &[]);
    dash.wait_for("Sessions (1)", "dashboard lists the session");
    dash.wait_for(&id, "dashboard shows the session id");
    dash.wait_for("agent in control", "live pane title");

    // The agent works; the dashboard shows it live.
    let d = f.send_ok("work", "echo agent-$((1+1))\n");
    assert!(has_line(s(&d["output"]), "agent-2"), "agent send: {d}");
    dash.wait_for("agent-2", "the agent's output shows live");

    // The human takes over.
    dash.keys(&["t"]);
    f.wait_controller("work", "human", "after `t` in the dashboard");
    dash.wait_for("YOU ARE TYPING", "control mode is visible");
    let st = f.status("work");
    assert_eq!(st["controller"], "human", "{st}");

    let (v, rc) = f.send("work", "echo refused-$((1+2))\n");
    assert_eq!(v["ok"], false, "agent send while a human controls: {v}");
    assert_eq!(v["code"], "session_taken_over", "{v}");
    assert_ne!(rc, 0, "{v}");
    assert!(
        s(&v["error"]).contains("since"),
        "the error should say since when a human holds control: {v}"
    );
    for args in [
        &["session", "run", "-s", "work", "--", "echo", "x"][..],
        &[
            "session", "exec", "-s", "work", "--detach", "--", "echo", "x",
        ][..],
    ] {
        let (v, _) = f.json(args);
        assert_eq!(v["code"], "session_taken_over", "{args:?}: {v}");
    }
    // Reads keep working.
    let r = f.ok(&["session", "read", "-s", "work", "--offset", "0"]);
    assert!(s(&r["output"]).contains("agent-2"), "{r}");

    // The human types into the shell.
    dash.type_line("echo human-$((2+3))");
    dash.wait_for("human-5", "the human's command runs in the session");

    // Ctrl-] back to the dashboard, still holding control; keys are the dashboard's again.
    dash.keys(&["C-]"]);
    dash.wait_for("you hold control", "after Ctrl-]");
    assert_eq!(f.controller("work"), "human", "Ctrl-] must not release");

    // `r` hands it back.
    dash.keys(&["r"]);
    f.wait_controller("work", "agent", "after `r`");
    dash.wait_for("agent in control", "after `r`");

    let d = f.send_ok("work", "echo agent-again-$((3+4))\n");
    assert!(has_line(s(&d["output"]), "agent-again-7"), "{d}");
    let all = f.output("work");
    assert!(
        all.contains("echo human-$((2+3))"),
        "the agent should see the human's command:\n{all}"
    );
    assert!(has_line(&all, "human-5"), "no human-5 in:\n{all}");
    assert!(
        !all.contains("refused-"),
        "the refused input reached the shell:\n{all}"
    );
    // The dashboard's own keys (t, Ctrl-], r) never reached the shell: a stray `r` would
    // have turned the agent's command into `recho ...` (no agent-again-7 above).

    // q quits cleanly and leaves the terminal sane.
    dash.keys(&["q"]);
    let code = dash.assert_restored("q");
    assert_eq!(code, 0, "dashboard exit status after q");
    assert_eq!(f.controller("work"), "agent");
}

/// `session ask --wait` (issue 20): the agent asks for a human; the request shows in the
/// session's status; the ask returns only after a human took over in the dashboard and handed
/// back, saying so; `session dismiss` ends an open request without a takeover.
#[test]
fn ask_waits_until_a_human_takes_over_in_the_dashboard_and_hands_back() {
    let f = fx();
    f.connect("work");
    let tmux = Tmux::new();
    let dash = tmux.agentssh(&f.env, "dash", &[]);
    dash.wait_for("agent in control", "live pane title");

    let mut asker = f.env.cmd();
    asker.args([
        "--json",
        "session",
        "ask",
        "-s",
        "work",
        "--message",
        "please type y at the prompt",
        "--wait",
        "--timeout",
        "60000",
    ]);
    let asked = std::thread::spawn(move || output_with_deadline(asker, None, RUN_DEADLINE));
    let mut st = Value::Null;
    assert!(
        wait_until(Duration::from_secs(20), || {
            st = f.status("work");
            st["needs_human"]["message"] == "please type y at the prompt"
        }),
        "the request does not show: {st}"
    );
    assert!(
        !asked.is_finished(),
        "ask --wait returned before any human acted"
    );

    dash.keys(&["t"]);
    f.wait_controller("work", "human", "after `t`");
    dash.keys(&["C-]"]);
    dash.wait_for("you hold control", "after Ctrl-]");
    dash.keys(&["r"]);
    f.wait_controller("work", "agent", "after `r`");

    let (v, rc) = parse_json_output(&asked.join().expect("ask thread"), &["session ask"]);
    assert_eq!(rc, 0, "{v}");
    assert_eq!(v["data"]["resolved_by"], "human", "{v}");
    assert_eq!(f.status("work")["needs_human"], Value::Null);

    let r = f.ok(&["session", "ask", "-s", "work", "--message", "look at this"]);
    assert_eq!(s(&r["request"]), "h2", "{r}");
    let d = f.ok(&["session", "dismiss", "-s", "work"]);
    assert_eq!(d["dismissed"], "h2", "{d}");
    assert_eq!(f.status("work")["needs_human"], Value::Null);
    dash.keys(&["q"]);
    dash.assert_restored("q");
}

/// Must show 2: a read-only attach mirrors the session and its keys go nowhere; Ctrl-]
/// detaches.
#[test]
fn read_only_attach_mirrors_and_ignores_keys() {
    let f = fx();
    f.connect("work");
    let tmux = Tmux::new();
    let ro = tmux.agentssh(&f.env, "ro", &["attach", "-s", "work", "--read-only"]);
    ro.wait_for("read-only", "attach status bar");
    ro.wait_for("Ctrl-] detach", "the detach key is shown on attach");
    assert_eq!(
        f.controller("work"),
        "agent",
        "read-only attach took control"
    );

    let line = f.mark("work", "mirrored", 7);
    ro.wait_for_line(&line, "agent output mirrored in the attach pane");

    // Keys typed in a read-only attach go nowhere.
    ro.type_line("echo nope-$((4+5))");
    // A barrier: output sent after the keys shows in the pane, so the keys were processed.
    let barrier = f.mark("work", "barrier", 11);
    ro.wait_for_line(&barrier, "barrier after typing");
    assert_eq!(
        f.controller("work"),
        "agent",
        "read-only attach took control"
    );
    let pane = ro.capture();
    assert!(
        !pane.contains("nope"),
        "typed keys reached the session:\n{pane}"
    );

    // Ctrl-] detaches.
    ro.keys(&["C-]"]);
    ro.wait_for("detached from", "Ctrl-] detaches");
    let code = ro.assert_restored("read-only detach");
    assert_eq!(code, 0, "attach exit status after Ctrl-]");

    // Another barrier after the attach is gone, then the whole output: no trace of the keys.
    let d = f.send_ok("work", "echo final-$((6+6))\n");
    assert!(has_line(s(&d["output"]), "final-12"), "{d}");
    let all = f.output("work");
    assert!(
        has_line(&all, "mirrored-7"),
        "mirrored output missing:\n{all}"
    );
    assert!(
        !all.contains("nope"),
        "read-only keystrokes reached the session:\n{all}"
    );
    assert_eq!(f.controller("work"), "agent");
}

/// Must show 3: a read-write attach takes control while attached and releases it on detach.
#[test]
fn read_write_attach_takes_and_releases_control() {
    let f = fx();
    f.connect("work");
    let pid = f.daemon_pid();
    let tmux = Tmux::new();
    let rw = tmux.agentssh(&f.env, "rw", &["attach", "-s", "work"]);
    rw.wait_for("you control this session", "read-write attach status bar");
    f.wait_controller("work", "human", "while attached read-write");

    let (v, _) = f.send("work", "echo refused-$((1+2))\n");
    assert_eq!(v["code"], "session_taken_over", "{v}");

    rw.type_line("echo rw-$((4+4))");
    rw.wait_for_line("rw-8", "the human's keys reach the shell");

    rw.keys(&["C-]"]);
    rw.wait_for("detached from work", "Ctrl-] detaches");
    let code = rw.assert_restored("read-write detach");
    assert_eq!(code, 0, "attach exit status after Ctrl-]");
    f.wait_controller("work", "agent", "after detaching");

    let d = f.send_ok("work", "echo back-$((5+5))\n");
    assert!(has_line(s(&d["output"]), "back-10"), "{d}");
    let all = f.output("work");
    assert!(has_line(&all, "rw-8"), "{all}");
    assert!(!all.contains("refused-"), "{all}");
    f.assert_untouched("work", pid, "after a read-write attach");

    // The session's history says who typed what (issue 20).
    let h = f.ok(&["session", "history", "-s", "work"]);
    let commands: Vec<(String, String)> = h["commands"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| (s(&c["command"]).to_string(), s(&c["by"]).to_string()))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        commands.contains(&("echo rw-$((4+4))".into(), "human".into())),
        "{h}"
    );
    assert!(
        commands.contains(&("echo back-$((5+5))".into(), "agent".into())),
        "{h}"
    );
}

/// Must show 4 (dashboard): SIGTERM and SIGHUP while holding control, and a forced panic,
/// leave the terminal sane, release control, and leave the daemon and session alone.
#[test]
fn dashboard_killed_restores_terminal_and_releases_control() {
    let f = fx();
    f.connect("work");
    let pid = f.daemon_pid();
    let tmux = Tmux::new();
    for (i, (name, sig)) in [("dterm", Signal::SIGTERM), ("dhup", Signal::SIGHUP)]
        .into_iter()
        .enumerate()
    {
        let pane = tmux.agentssh(&f.env, name, &[]);
        pane.wait_for("Sessions (1)", name);
        let line = f.mark("work", "ready", 100 + i as u32);
        pane.wait_for(&line, name);
        pane.keys(&["t"]);
        f.wait_controller("work", "human", &format!("{name}: after `t`"));
        pane.wait_for("YOU ARE TYPING", name);
        signal(pane.pid(), sig);
        pane.assert_restored(&format!("dashboard killed with {sig}"));
        f.wait_controller("work", "agent", &format!("dashboard killed with {sig}"));
        f.assert_untouched("work", pid, &format!("dashboard killed with {sig}"));
    }

    let name = "dpanic";
    let pane = tmux.start(
        name,
        &tmux.wrapper(&f.env, name, &[], &[("AGENTSSH_DEBUG_PANIC", "tui")]),
    );
    let code = pane.assert_restored("dashboard panic");
    assert_eq!(code, 1, "a panic exits 1:\n{}", pane.capture());
    pane.wait_for(
        "AGENTSSH_DEBUG_PANIC=tui",
        "the panic message on the normal screen",
    );
    assert_eq!(f.controller("work"), "agent");
    f.assert_untouched("work", pid, "dashboard panic");
}

/// Must show 4 (attach): SIGTERM, SIGHUP and a forced panic of a read-write attach leave
/// the terminal sane, release control, and leave the daemon and session alone.
#[test]
fn attach_killed_restores_terminal_and_releases_control() {
    let f = fx();
    f.connect("work");
    let pid = f.daemon_pid();
    let tmux = Tmux::new();
    for (i, (name, sig)) in [("aterm", Signal::SIGTERM), ("ahup", Signal::SIGHUP)]
        .into_iter()
        .enumerate()
    {
        let pane = tmux.agentssh(&f.env, name, &["attach", "-s", "work"]);
        pane.wait_for("you control this session", name);
        f.wait_controller("work", "human", &format!("{name}: attached"));
        pane.type_line(&format!("echo typed-$((200+{i}))"));
        pane.wait_for_line(&format!("typed-{}", 200 + i), name);
        signal(pane.pid(), sig);
        pane.assert_restored(&format!("attach killed with {sig}"));
        f.wait_controller("work", "agent", &format!("attach killed with {sig}"));
        f.assert_untouched("work", pid, &format!("attach killed with {sig}"));
    }

    let name = "apanic";
    let pane = tmux.start(
        name,
        &tmux.wrapper(
            &f.env,
            name,
            &["attach", "-s", "work"],
            &[("AGENTSSH_DEBUG_PANIC", "attach")],
        ),
    );
    let code = pane.assert_restored("attach panic");
    assert_eq!(code, 1, "a panic exits 1:\n{}", pane.capture());
    pane.wait_for(
        "AGENTSSH_DEBUG_PANIC=attach",
        "the panic message on the normal screen",
    );
    // The read-write attach held control when it panicked.
    f.wait_controller("work", "agent", "attach panic");
    f.assert_untouched("work", pid, "attach panic");
}

/// Control for the checks above: a dashboard that cannot clean up (SIGKILL) leaves the
/// terminal raw and on the alternate screen, and the checks see it. Control held by a
/// killed process is still released (the daemon sees its connection close).
#[test]
fn control_sigkill_leaves_a_broken_terminal_that_the_checks_detect() {
    let f = fx();
    f.connect("work");
    let pid = f.daemon_pid();
    let tmux = Tmux::new();
    let pane = tmux.agentssh(&f.env, "dkill", &[]);
    pane.wait_for("Sessions (1)", "dashboard");
    pane.wait_for("agent in control", "dashboard watches the session");
    pane.keys(&["t"]);
    f.wait_controller("work", "human", "after `t`");
    signal(pane.pid(), Signal::SIGKILL);
    let (code, stty) = pane.wait_exit("SIGKILL");
    assert_eq!(code, 128 + 9, "killed by SIGKILL");
    let words: Vec<&str> = stty.split_whitespace().collect();
    assert!(
        words.contains(&"-icanon") && words.contains(&"-echo"),
        "after SIGKILL the terminal should still be raw, or the stty check proves \
         nothing:\n{stty}"
    );
    assert_eq!(
        pane.display("#{alternate_on}"),
        "1",
        "after SIGKILL the pane should still be on the alternate screen, or the \
         alternate-screen check proves nothing"
    );
    f.wait_controller("work", "agent", "after SIGKILL of the holder");
    f.assert_untouched("work", pid, "dashboard SIGKILLed");
}

/// The session's hostile output: an OSC 52 clipboard write, a title change and malformed
/// escapes.
const HOSTILE: &str = "printf '\\033]52;c;%s\\007' $(printf evil | base64); \
printf '\\033]0;PWNED-TITLE\\007'; \
printf '\\033]2;PWNED-TITLE\\033\\\\'; \
printf '\\033]52;p;?\\007\\033[99999999999999999999;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;mX\\033[?1000h\\033[?2004h\\033P+q544e\\033\\\\\\033]8;;http://evil.example/\\007link\\033]8;;\\007\\033[38;5;999;2;999;999;999m\\033[\\033]\\033P\\033\\\\\\233999A\\302\\233c\\377\\376\\033(0\\033)B\\033#8\\033[0m\\n'; \
echo hostile-$((2*3))\n";

/// Must show 5: hostile output is drawn as cells only; the terminal around the dashboard
/// and an attach never gets the title or the clipboard write.
#[test]
fn hostile_output_never_reaches_the_host_terminal() {
    let f = fx();
    let id = f.connect("work");
    let tmux = Tmux::new();
    // tmux stores OSC 52 in a paste buffer only with set-clipboard on; set it so a leak
    // would be caught, and prove the checks can fail with a plain pane printing the same
    // kind of sequences raw.
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "ctl",
        "-x",
        "80",
        "-y",
        "24",
        "sleep 600",
    ]);
    tmux.run(&["set", "-g", "set-clipboard", "on"]);
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "plain",
        "-x",
        "80",
        "-y",
        "24",
        "printf '\\033]52;c;%s\\007' $(printf canary | base64); printf '\\033]0;PROOF-TITLE\\007\\033[?1000h'; exec sleep 600",
    ]);
    assert!(
        wait_until(UI, || tmux.buffers().contains("canary")),
        "control: a raw OSC 52 in a plain pane did not populate a tmux buffer; the leak \
         check would prove nothing. Buffers: {:?}",
        tmux.buffers()
    );
    assert!(
        wait_until(UI, || tmux
            .try_run(&["display", "-p", "-t", "=plain:", "#{pane_title}"])
            .trim()
            == "PROOF-TITLE"),
        "control: a raw OSC 0 did not change a plain pane's title; the title check would \
         prove nothing"
    );
    assert_eq!(
        tmux.run(&["display", "-p", "-t", "=plain:", "#{mouse_any_flag}"])
            .trim(),
        "1",
        "control: a raw mouse-mode switch did not show in #{{mouse_any_flag}}"
    );

    let dash = tmux.agentssh(&f.env, "dash", &[]);
    dash.wait_for("Sessions (1)", "dashboard");
    dash.wait_for("agent in control", "dashboard watches the session");
    let att = tmux.agentssh(&f.env, "att", &["attach", "-s", "work", "--read-only"]);
    att.wait_for("read-only", "attach");
    for p in [&dash, &att] {
        tmux.run(&["select-pane", "-t", &format!("={}:", p.name), "-T", "start"]);
        assert_eq!(p.display("#{pane_title}"), "start");
    }

    // A plain prompt: the default one sets the window title itself on every prompt.
    f.send_ok("work", "PS1='$ '; unset PROMPT_COMMAND\n");
    f.send_ok("work", HOSTILE);
    dash.wait_for("hostile-6", "hostile output drawn in the dashboard");
    att.wait_for_line("hostile-6", "hostile output drawn in the attach");
    // The session did get the title (so the sequences reached our screen model).
    let screen = f.ok(&["session", "screen", "-s", &id]);
    assert_eq!(
        screen["title"], "PWNED-TITLE",
        "the session's own screen should record the title: {screen}"
    );
    // A later frame, so anything leaked would have been flushed by now.
    let line = f.mark("work", "after", 9);
    dash.wait_for(&line, "dashboard after hostile output");
    att.wait_for_line(&line, "attach after hostile output");

    for p in [&dash, &att] {
        assert_eq!(
            p.display("#{pane_title}"),
            "start",
            "the session's title change leaked to the terminal of `{}`",
            p.name
        );
        assert_eq!(
            p.display("#{mouse_any_flag}"),
            "0",
            "the session's mouse-mode switch leaked to the terminal of `{}`",
            p.name
        );
    }
    let buffers = tmux.buffers();
    assert!(
        !buffers.contains("evil"),
        "the session's OSC 52 clipboard write reached the host terminal: {buffers:?}"
    );
    assert_eq!(f.status("work")["status"], "running");
}

/// Must show 6: with no sessions the dashboard says how to start one.
#[test]
fn empty_dashboard_explains_how_to_start() {
    let f = fx();
    let tmux = Tmux::new();
    let dash = tmux.agentssh(&f.env, "dash", &[]);
    dash.wait_for("Sessions (0)", "empty session list");
    dash.wait_for("agentssh connect -p PROFILE", "how to start a session");
    dash.wait_for("q quit", "footer keys");
    // Help.
    dash.keys(&["?"]);
    dash.wait_for("take control", "help overlay");
    dash.keys(&["Escape"]);
    assert!(
        wait_until(UI, || !dash.capture().contains("take control")),
        "help did not close:\n{}",
        dash.capture()
    );
    dash.keys(&["q"]);
    let code = dash.assert_restored("q on an empty dashboard");
    assert_eq!(code, 0);
    // The dashboard autostarted the daemon, which keeps running.
    let st = f.ok(&["daemon", "status"]);
    assert_eq!(st["sessions"], 0, "{st}");
}

/// Footer messages (errors of `x`/`i`/`n`, "no session selected", the Ctrl-] hint) must be
/// readable in a 120-column terminal, next to the key list.
#[test]
fn footer_message_visible_at_120_columns() {
    let f = fx();
    let tmux = Tmux::new();
    let dash = tmux.agentssh(&f.env, "dash", &[]);
    dash.wait_for("Sessions (0)", "empty session list");
    dash.keys(&["t"]);
    dash.wait_for(
        "no session selected",
        "footer message after `t` without sessions",
    );
}

/// A session at the default size (120x40) in a 120x40 terminal: the dashboard's live pane
/// (about 70x27) must still show the latest output, where the cursor is.
#[test]
fn dashboard_live_pane_shows_the_latest_output_of_a_full_screen() {
    let f = fx();
    let port = f.sshd.port.to_string();
    let key = f.env.key_path().display().to_string();
    f.ok(&[
        "connect",
        "-H",
        "127.0.0.1",
        "-P",
        &port,
        "-u",
        TEST_USER,
        "--private-key-path",
        &key,
        "--name",
        "big",
    ]);
    let tmux = Tmux::new();
    let dash = tmux.agentssh(&f.env, "dash", &[]);
    dash.wait_for("agent in control", "dashboard watches the session");
    let d = f.send_ok("big", "seq 1 60; echo latest-$((6*7))\n");
    assert!(has_line(s(&d["output"]), "latest-42"), "{d}");
    dash.wait_for(
        "latest-42",
        "the newest output of a 40-row session in the live pane",
    );
}

/// A read-write attach in a terminal as large as the session (120x40, one row used by the
/// status bar) must show the line the human is typing on, once the screen is full.
#[test]
fn attach_shows_the_cursor_line_of_a_full_screen() {
    let f = fx();
    let port = f.sshd.port.to_string();
    let key = f.env.key_path().display().to_string();
    f.ok(&[
        "connect",
        "-H",
        "127.0.0.1",
        "-P",
        &port,
        "-u",
        TEST_USER,
        "--private-key-path",
        &key,
        "--name",
        "big",
    ]);
    f.send_ok("big", "seq 1 60\n");
    let tmux = Tmux::new();
    let rw = tmux.agentssh(&f.env, "rw", &["attach", "-s", "big"]);
    rw.wait_for("you control this session", "attach");
    rw.wait_for_line("60", "the end of seq's output");
    // Typed, not yet entered: it sits on the cursor line (the session's last row).
    let target = "=rw:";
    tmux.run(&["send-keys", "-t", target, "-l", "echo typing-in-progress"]);
    rw.wait_for("echo typing-in-progress", "the line being typed");
}

/// The other dashboard keys: j/k select (the live pane follows), `/` filters activity,
/// `i` sends Ctrl-C after a confirmation, `x` closes after a confirmation (any other key
/// cancels), `n` opens a session from a profile.
#[test]
fn dashboard_select_filter_interrupt_close_new() {
    let f = fx();
    let work = f.connect("work");
    let other = f.connect("other");
    let w = f.mark("work", "wmark", 1);
    let o = f.mark("other", "omark", 2);
    let tmux = Tmux::new();
    let dash = tmux.agentssh(&f.env, "dash", &[]);
    dash.wait_for("Sessions (2)", "two sessions");
    dash.wait_for(
        &format!("{work} · running · agent in control"),
        "first selected",
    );
    dash.wait_for(&w, "the first session's screen");

    dash.keys(&["j"]);
    dash.wait_for(&format!("{other} · running · agent in control"), "after j");
    dash.wait_for(&o, "the second session's screen after j");
    dash.keys(&["Up"]);
    dash.wait_for(&format!("{work} · running · agent in control"), "after Up");
    dash.wait_for(&w, "the first session's screen after Up");

    // Filter the activity pane.
    dash.keys(&["/"]);
    tmux.run(&["send-keys", "-t", "=dash:", "-l", "omark"]);
    dash.keys(&["Enter"]);
    dash.wait_for("filter 'omark' (1)", "activity filter");

    // i: Ctrl-C to a running command, after y.
    f.send_ok("work", "sleep 300\n");
    dash.keys(&["i"]);
    dash.wait_for(
        &format!("Send Ctrl-C (INT) to session {work}?"),
        "interrupt asks",
    );
    dash.keys(&["y"]);
    assert!(
        wait_until(STATE, || f.output("work").contains("^C")),
        "no ^C in the session after i, y:\n{}",
        f.output("work")
    );
    f.send_ok("work", "echo after-int-$((1+1))\n");
    assert!(
        wait_until(STATE, || has_line(&f.output("work"), "after-int-2")),
        "the shell did not come back after Ctrl-C:\n{}",
        f.output("work")
    );

    // x: any key but y cancels; y closes.
    dash.keys(&["x"]);
    dash.wait_for(&format!("Close session {work}?"), "close asks");
    dash.keys(&["n"]);
    dash.wait_for("cancelled", "close cancelled");
    assert_eq!(f.status("work")["status"], "running");
    dash.keys(&["x"]);
    dash.wait_for(&format!("Close session {work}?"), "close asks");
    dash.keys(&["y"]);
    // A closed session stays listed (dimmed, after the live ones) while its recording
    // exists, and replays.
    dash.wait_for("recorded", "closed session stays listed");
    dash.wait_for("Sessions (2)", "the closed session is still counted");
    dash.wait_for(&o, "the remaining session is selected");
    dash.keys(&["j"]);
    dash.wait_for(
        &format!("{work} · closed · p replay"),
        "the closed session selected",
    );
    let (v, _) = f.json(&["session", "status", "-s", &work]);
    assert!(
        v["ok"] == false || v["data"]["status"] == "closed",
        "session still open after x, y: {v}"
    );
    dash.keys(&["p"]);
    dash.wait_for(&format!("{work} · REPLAY"), "replay of the closed session");
    dash.wait_for(&w, "the recorded screen in the replay");
    dash.keys(&["q"]);
    dash.wait_for(
        &format!("{work} · closed · p replay"),
        "q leaves the replay only",
    );
    dash.keys(&["k"]);
    dash.wait_for(&o, "the remaining session is shown again");

    // n: a new session from a profile.
    f.env.add_profile("p1", &f.sshd);
    dash.keys(&["n"]);
    dash.wait_for("profile:", "new-session prompt");
    tmux.run(&["send-keys", "-t", "=dash:", "-l", "p1"]);
    dash.keys(&["Enter"]);
    dash.wait_for("Sessions (3)", "a session opened from the profile");
    let list = f.ok(&["session", "list"]);
    assert!(list.to_string().contains("running"), "{list}");

    dash.keys(&["q"]);
    assert_eq!(dash.assert_restored("q"), 0);
}

/// Two humans: while a read-write attach holds control, a second holder (another
/// read-write attach) leaving must not unlock the session for agents: the first attach
/// still says "agents are locked out" and is still typing into the shell.
#[test]
fn second_holder_leaving_keeps_the_first_holders_control() {
    let f = fx();
    f.connect("work");
    let tmux = Tmux::new();
    let a = tmux.agentssh(&f.env, "a", &["attach", "-s", "work"]);
    a.wait_for("you control this session", "first attach");
    f.wait_controller("work", "human", "first attach");
    let b = tmux.agentssh(&f.env, "b", &["attach", "-s", "work"]);
    b.wait_for("you control this session", "second attach");
    b.keys(&["C-]"]);
    b.wait_for("detached from work", "second attach detaches");
    b.wait_exit("second attach detached");
    // The first attach is still there, holding control.
    let pane = a.capture();
    assert!(pane.contains("agents are locked out"), "{pane}");
    a.type_line("echo still-mine-$((1+1))");
    a.wait_for_line(
        "still-mine-2",
        "the first attach still types into the shell",
    );
    let (v, _) = f.send("work", "echo agent-sneaks-in-$((1+1))\n");
    assert_eq!(
        v["code"], "session_taken_over",
        "an agent could type while a read-write attach still holds control (the second \
         holder's release cleared it): {v}"
    );
    assert_eq!(f.controller("work"), "human");
}

/// `attach` to a session that does not exist fails with a normal error before touching
/// the terminal.
#[test]
fn attach_to_unknown_session_is_a_plain_error() {
    let f = fx();
    let tmux = Tmux::new();
    let p = tmux.agentssh(&f.env, "nope", &["attach", "-s", "nope"]);
    let code = p.assert_restored("attach to an unknown session");
    assert_eq!(code, 1, "{}", p.capture());
    p.wait_for("not found", "the error is printed on the normal screen");
    let (v, rc) = f.json(&["attach", "-s", "nope"]);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["code"], "usage", "attach under --json: {v}");
    assert_eq!(rc, 2, "{v}");
}

// ---------------------------------------------------------------- attention (issue 20)

/// Whether some pane line shows the session `id`'s row with `state` in it.
fn row_shows(pane: &str, id: &str, state: &str) -> bool {
    pane.lines()
        .any(|l| l.contains(&format!("│{id} ")) && l.contains(state))
}

/// The state column follows the session: busy while the agent's `sleep 2` runs, prompt
/// after it; the history pane lists the command. The dashboard's own watch of the session
/// is not an activity-log entry (it read as an agent request lasting as long as it watched).
#[test]
fn dashboard_state_column_follows_busy_then_prompt_and_watching_is_not_logged() {
    let f = fx();
    let id = f.connect("work");
    let tmux = Tmux::new();
    let dash = tmux.agentssh(&f.env, "dash", &[]);
    dash.wait_for("agent in control", "live pane title");
    assert!(
        wait_until(STATE, || f.status("work")["state"] == "prompt"),
        "the session never reached its prompt: {}",
        f.status("work")
    );
    assert!(
        wait_until(UI, || row_shows(&dash.capture(), &id, "prompt")),
        "no prompt state in the row:\n{}",
        dash.capture()
    );
    f.send_ok("work", "sleep 2\n");
    assert!(
        wait_until(UI, || row_shows(&dash.capture(), &id, "busy")),
        "the row never showed busy during sleep 2:\n{}",
        dash.capture()
    );
    assert!(
        wait_until(UI, || row_shows(&dash.capture(), &id, "prompt")),
        "the row never went back to prompt after sleep 2:\n{}",
        dash.capture()
    );
    dash.wait_for("History (", "history pane");
    assert!(
        wait_until(UI, || dash.capture().lines().any(|l| l.contains("agent")
            && l.contains("sleep 2")
            && l.contains("✓ 0"))),
        "the history pane never listed `sleep 2` with its exit status:\n{}",
        dash.capture()
    );
    // The watch request is recorded when it ends: quit the dashboard first.
    dash.keys(&["q"]);
    dash.assert_restored("q");
    let log = f.ok(&["log"]);
    let entries = log["entries"].as_array().expect("log entries");
    assert!(
        entries
            .iter()
            .any(|e| s(&e["command"]).starts_with("session send")),
        "the agent's request is logged: {log}"
    );
    let watches: Vec<&Value> = entries
        .iter()
        .filter(|e| s(&e["command"]) == "watch")
        .collect();
    assert!(watches.is_empty(), "watch entries in the log: {watches:?}");
}

/// `session ask` shows at once in the dashboard as a banner with the message and a badge on
/// the row; `d` dismisses it (the daemon clears `needs_human`) and the banner goes away.
#[test]
fn dashboard_banner_for_ask_and_d_dismisses_it() {
    let f = fx();
    let id = f.connect("work");
    let tmux = Tmux::new();
    let dash = tmux.agentssh(&f.env, "dash", &[]);
    dash.wait_for("agent in control", "live pane title");
    let r = f.ok(&[
        "session",
        "ask",
        "-s",
        "work",
        "--message",
        "approve the migration",
    ]);
    assert_eq!(s(&r["request"]), "h1", "{r}");
    dash.wait_for("work) needs a human", "banner");
    dash.wait_for("approve the migration", "banner message");
    assert!(
        wait_until(UI, || row_shows(&dash.capture(), &id, "needs human")),
        "no badge on the row:\n{}",
        dash.capture()
    );
    dash.keys(&["d"]);
    assert!(
        wait_until(STATE, || f.status("work")["needs_human"].is_null()),
        "d did not dismiss: {}",
        f.status("work")
    );
    // The activity pane may list the `session ask` request itself; the banner and the
    // badge must go.
    assert!(
        wait_until(UI, || {
            let pane = dash.capture();
            !pane.contains("needs a human") && row_shows(&pane, &id, "prompt")
        }),
        "the banner or badge stayed after d:\n{}",
        dash.capture()
    );
    dash.keys(&["q"]);
    dash.assert_restored("q");
}

/// Taking over a 120x40 session in an 80x24 dashboard fits the PTY to the terminal (less
/// the one-line bar) and shows the session full-screen; handing back restores 120x40.
#[test]
fn dashboard_takeover_fits_the_pty_and_hand_back_restores_the_agents_size() {
    let f = fx();
    f.connect_sized("work", 120, 40);
    let tmux = Tmux::new();
    let dash = tmux.start_sized("dash", &tmux.wrapper(&f.env, "dash", &[], &[]), 80, 24);
    dash.wait_for("agent in control", "live pane title");
    let size = |f: &Fx| {
        let st = f.status("work");
        (st["cols"].as_u64(), st["rows"].as_u64())
    };
    assert_eq!(size(&f), (Some(120), Some(40)));
    dash.keys(&["t"]);
    f.wait_controller("work", "human", "after `t`");
    let mut last = (None, None);
    assert!(
        wait_until(STATE, || {
            last = size(&f);
            last == (Some(80), Some(23))
        }),
        "the PTY was not fitted to the 80x24 dashboard: {last:?}"
    );
    dash.wait_for("YOU ARE TYPING", "zoomed bar");
    assert!(
        !dash.capture().contains("Sessions ("),
        "the session should fill the terminal:\n{}",
        dash.capture()
    );
    dash.type_line("stty size");
    dash.wait_for("23 80", "the shell sees the fitted size");
    dash.keys(&["C-]"]);
    dash.wait_for("you hold control", "after Ctrl-]");
    dash.keys(&["r"]);
    f.wait_controller("work", "agent", "after `r`");
    assert_eq!(size(&f), (Some(120), Some(40)), "the agent's size is back");
    let d = f.ok(&["session", "run", "-s", "work", "--", "stty", "size"]);
    assert_eq!(s(&d["output"]), "40 120\n", "{d}");
    dash.keys(&["q"]);
    dash.assert_restored("q");
}

/// Recordings (issue 17): `replay -s` in tmux draws the recorded screens through our own
/// screen model (the recorded title change never reaches the pane), follows seeks and
/// pauses, and `q` leaves the terminal sane.
#[test]
fn replay_in_tmux_shows_the_screens_and_q_restores_the_terminal() {
    let f = fx();
    f.connect("work");
    f.send_ok("work", "echo first-$((3*3))\n");
    f.send_ok(
        "work",
        "printf '\\033]0;PWNED-TITLE\\007'; clear; echo second-$((4*4))\n",
    );
    f.ok(&["session", "close", "-s", "work"]);
    let tmux = Tmux::new();
    let pane = tmux.agentssh(
        &f.env,
        "replay",
        &["replay", "-s", "work", "--idle-limit", "0.2"],
    );
    pane.wait_for("agentssh replay", "the replay's status bar");
    pane.wait_for("second-16", "the last screen");
    assert!(
        !pane.capture().contains("first-9"),
        "`clear` was replayed: the first screen must be gone:\n{}",
        pane.capture()
    );
    pane.wait_for("end", "the end of the recording");
    // Seek back to the start: the first screen again, from the model.
    pane.keys(&["Left", "Left"]);
    pane.wait_for("first-9", "after seeking back");
    assert_ne!(pane.display("#{pane_title}"), "PWNED-TITLE");
    pane.keys(&["q"]);
    let code = pane.assert_restored("replay q");
    assert_eq!(code, 0, "replay exit status after q");
}

/// Recordings (issue 17): what a human types during a takeover (a password at a no-echo
/// prompt) is recorded only as a byte count, in no file under the state dir.
#[test]
fn a_password_typed_by_a_human_is_in_no_recording() {
    let f = fx();
    f.connect("work");
    let tmux = Tmux::new();
    let pane = tmux.agentssh(&f.env, "att", &["attach", "-s", "work"]);
    pane.wait_for("you control this session", "attach");
    f.wait_controller("work", "human", "attached");
    pane.type_line("read -s -p 'Pass: ' pw; echo; echo got-${#pw}");
    pane.wait_for("Pass:", "the no-echo prompt");
    let secret = "human-Secret-77q";
    pane.type_line(secret);
    pane.wait_for_line(
        &format!("got-{}", secret.len()),
        "the shell read the password",
    );
    pane.keys(&["C-]"]);
    pane.assert_restored("detach");
    f.wait_controller("work", "agent", "after detach");
    let rec = f.ok(&["session", "export", "-s", "work", "--format", "cast"]);
    let body = s(&rec["content"]).to_string();
    assert!(body.contains("control taken by attach"), "{body}");
    assert!(body.contains("human typed 1 bytes"), "{body}");
    assert!(body.contains("control returned to the agent"), "{body}");
    f.ok(&["session", "close", "-s", "work"]);
    f.ok(&["daemon", "shutdown"]);
    let mut stack = vec![f.env.state_home.clone()];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let bytes = fs::read(&p).unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "the password is in {p:?}"
            );
            files += 1;
        }
    }
    assert!(
        files >= 2,
        "expected the daemon log and a recording, saw {files}"
    );
}
