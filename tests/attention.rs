//! Attention, against a real sshd, for a bash user and a dash user: shell integration (marks
//! installed invisibly), session state (prompt, busy, input, closed) with `last_exit_status`,
//! `session history`, `session wait`, marks a command prints itself, and a REPL that the
//! state follows by heuristics.
//!
//! The human side of history (a command typed through `attach`) is in tests/dashboard.rs.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::sessions::*;
use common::*;
use serde_json::Value;

/// A session of `user` (TEST_USER: bash; BENCH_USER: /bin/sh, dash on Debian).
fn session_of(f: &Fx, user: &str, extra: &[&str]) -> String {
    let port = f.sshd.port.to_string();
    let key = f.env.key_path().display().to_string();
    let mut args = vec![
        "connect",
        "-H",
        "127.0.0.1",
        "-P",
        &port,
        "-u",
        user,
        "--private-key-path",
        &key,
    ];
    args.extend_from_slice(extra);
    let d = f.ok(&args);
    s(&d["id"]).to_string()
}

fn state(f: &Fx, id: &str) -> String {
    s(&f.status(id)["state"]).to_string()
}

/// Every read surface of a session: all its clean output, the screen and the history.
fn everything(f: &Fx, id: &str) -> String {
    let out = f.read(id, &["--offset", "0"]);
    let screen = rows_of(&f.screen(id)).join("\n");
    let history = f.ok(&["session", "history", "-s", id]).to_string();
    format!(
        "{}{}\n{screen}\n{history}",
        s(&out["output"]),
        s(&out["pending"])
    )
}

fn check_states_and_history(user: &str) {
    let f = fx();
    let id = session_of(&f, user, &[]);
    let st = f.status(&id);
    assert_eq!(st["shell_integration"], true, "{user}: {st}");
    assert_eq!(st["state"], "prompt", "{user}: {st}");
    assert_eq!(st["last_exit_status"], Value::Null, "{user}: {st}");

    // prompt -> busy -> prompt around a command.
    f.send(&id, "sleep 2\n", &["--wait-idle", "100"]);
    assert_eq!(state(&f, &id), "busy", "{user}: during sleep 2");
    f.wait_status(&id, Duration::from_secs(20), |v| v["state"] == "prompt");

    f.send(&id, "(exit 3)\n", &["--wait-idle", "100"]);
    let st = f.wait_status(&id, Duration::from_secs(20), |v| {
        v["state"] == "prompt" && v["last_exit_status"] == 3
    });
    assert!(u(&st["state_since"]) > 0, "{st}");

    // `input` for a question and for a password prompt.
    f.send(
        &id,
        "read -p 'Proceed? [y/N] ' x\n",
        &["--wait-idle", "100"],
    );
    f.wait_status(&id, Duration::from_secs(20), |v| v["state"] == "input");
    f.send(&id, "y\n", &["--wait-idle", "100"]);
    f.wait_status(&id, Duration::from_secs(20), |v| v["state"] == "prompt");
    // A no-echo password prompt that dash can do too (its `read` has no -s).
    f.send(
        &id,
        "stty -echo; printf 'Password: '; read pw; stty echo; echo\n",
        &["--wait-idle", "100"],
    );
    f.wait_status(&id, Duration::from_secs(20), |v| v["state"] == "input");
    f.send(&id, "hunter2\n", &["--wait-idle", "100"]);
    f.wait_status(&id, Duration::from_secs(20), |v| {
        v["state"] == "prompt" && v["last_exit_status"] == 0
    });
    // session run feeds the same history.
    let (d, rc) = f.run(&id, "echo via-run; (exit 4)");
    assert_eq!((d["exit_status"].clone(), rc), (4.into(), 4), "{d}");

    let h = f.ok(&["session", "history", "-s", &id]);
    let rows: Vec<(String, Value, String)> = h["commands"]
        .as_array()
        .expect("commands")
        .iter()
        .map(|c| {
            (
                s(&c["command"]).to_string(),
                c["exit_status"].clone(),
                s(&c["by"]).to_string(),
            )
        })
        .collect();
    let want = [
        ("sleep 2", 0),
        ("(exit 3)", 3),
        ("read -p 'Proceed? [y/N] ' x", 0),
        (
            "stty -echo; printf 'Password: '; read pw; stty echo; echo",
            0,
        ),
        ("echo via-run; (exit 4)", 4),
    ];
    assert_eq!(rows.len(), want.len(), "{user}: {h}");
    for ((cmd, status, by), (want_cmd, want_status)) in rows.iter().zip(want) {
        assert_eq!(
            (cmd.as_str(), status, by.as_str()),
            (want_cmd, &Value::from(want_status), "agent"),
            "{user}: {h}"
        );
    }
    let last = &h["commands"][4];
    assert!(u(&last["end_offset"]) > u(&last["start_offset"]), "{last}");
    let out = f.read(&id, &["--offset", &last["start_offset"].to_string()]);
    assert!(s(&out["output"]).starts_with("via-run\n"), "{out}");

    // The setup text never shows, anywhere.
    let all = everything(&f, &id);
    for machinery in [
        "__agentssh",
        "agentssh=",
        "133;",
        "PROMPT_COMMAND",
        "hunter2",
    ] {
        assert!(
            !all.contains(machinery),
            "{user}: '{machinery}' shows:\n{all}"
        );
    }
}

#[test]
fn bash_session_reports_state_exit_status_and_history() {
    check_states_and_history(TEST_USER);
}

#[test]
fn dash_session_reports_state_exit_status_and_history() {
    check_states_and_history(BENCH_USER);
}

/// `session wait`: `--for input` returns soon after a prompt appears, `--for prompt` only
/// when a long command ends, `text:` with the match, and `--timeout` gives `timeout` (124).
#[test]
fn wait_returns_on_input_prompt_text_and_times_out() {
    let f = fx();
    let id = session_of(&f, TEST_USER, &[]);
    f.send(
        &id,
        "sleep 1; read -p 'Proceed? [y/N] ' x; echo answered-$x\n",
        &["--wait-idle", "100"],
    );
    let started = Instant::now();
    let d = f.ok(&[
        "session",
        "wait",
        "-s",
        &id,
        "--for",
        "input",
        "--timeout",
        "20000",
    ]);
    assert_eq!(d["state"], "input", "{d}");
    assert!(
        s(&d["pending"]).ends_with("Proceed? [y/N] "),
        "returns at the question: {d}"
    );
    assert!(started.elapsed() >= Duration::from_secs(1), "not before it");
    f.send(&id, "y\n", &["--wait-idle", "0"]);
    let d = f.ok(&[
        "session",
        "wait",
        "-s",
        &id,
        "--for",
        "prompt",
        "--timeout",
        "20000",
    ]);
    assert_eq!(d["state"], "prompt", "{d}");
    assert!(has_line(s(&d["output"]), "answered-y"), "{d}");

    // --for prompt during a job returns at its end, not before.
    f.send(&id, "sleep 3; echo job-done\n", &["--wait-idle", "100"]);
    let started = Instant::now();
    let d = f.ok(&[
        "session",
        "wait",
        "-s",
        &id,
        "--for",
        "prompt",
        "--timeout",
        "30000",
    ]);
    assert!(started.elapsed() >= Duration::from_secs(2), "{d}");
    assert!(has_line(s(&d["output"]), "job-done"), "{d}");
}

/// The wait for a text returns with the match once it shows; a wait that cannot be met gives
/// `timeout` with exit code 124; an unknown `--for` is a usage error.
#[test]
fn wait_for_text_matches_and_timeouts_are_reported() {
    let f = fx();
    let id = session_of(&f, TEST_USER, &[]);
    let waiter = {
        let mut cmd = f.env.cmd();
        cmd.args([
            "--json",
            "session",
            "wait",
            "-s",
            &id,
            "--for",
            "text:wo+rld",
            "--timeout",
            "20000",
        ]);
        thread::spawn(move || output_with_deadline(cmd, None, RUN_DEADLINE))
    };
    // Let the waiter start first; if it starts late it still finds the text (it searches from
    // the cursor, which nobody moves meanwhile).
    f.send(&id, "sleep 1; echo hello-woooorld\n", &["--wait-idle", "0"]);
    let (v, rc) = parse_json_output(&waiter.join().expect("waiter"), &["wait"]);
    assert_eq!(rc, 0, "{v}");
    assert_eq!(v["data"]["matched"], "woooorld", "{v}");

    let (v, rc) = f.json(&[
        "session",
        "wait",
        "-s",
        &id,
        "--for",
        "input",
        "--timeout",
        "700",
    ]);
    assert_eq!((v["code"].clone(), rc), ("timeout".into(), 124), "{v}");
    let (v, rc) = f.json(&["session", "wait", "-s", &id, "--for", "idle"]);
    assert_eq!((v["code"].clone(), rc), ("usage".into(), 2), "{v}");
}

/// A command that prints OSC 133 marks itself (without the session's nonce) cannot move the
/// state or fake an exit status; a mark split across writes is still read whole.
#[test]
fn marks_printed_by_a_command_are_plain_output() {
    let f = fx();
    let id = session_of(&f, TEST_USER, &[]);
    f.send(
        &id,
        "printf '\\033]133;D;77\\007\\033]133;A\\007fake\\n'; printf '\\033]133;D;78;agentssh=0000\\007'; sleep 1; (exit 9)\n",
        &["--wait-idle", "100"],
    );
    let st = f.wait_status(&id, Duration::from_secs(20), |v| {
        v["state"] == "prompt" && !v["last_exit_status"].is_null()
    });
    assert_eq!(st["last_exit_status"], 9, "{st}");
    // A command whose output splits an ESC ] 133 sequence over two writes (and so, usually,
    // two SSH packets) with the real nonce would be ours; here the nonce is unknown to the
    // command, so the test is the unit test of the scanner (marks::tests); what matters end to
    // end is that the prompt that follows is found: state is prompt again.
    let (d, _) = f.run(
        &id,
        "printf '\\033]13'; sleep 0.3; printf '3;A\\007'; echo split-done",
    );
    assert!(s(&d["output"]).contains("split-done"), "{d}");
    f.wait_status(&id, Duration::from_secs(20), |v| v["state"] == "prompt");
}

/// A REPL inside the session: the state follows it by heuristics (busy, then input at its
/// prompt), and nothing hangs.
#[test]
fn a_repl_is_busy_or_input_never_a_hang() {
    let f = fx();
    let id = session_of(&f, TEST_USER, &[]);
    f.send(&id, "python3 -q\n", &["--wait-idle", "300"]);
    let st = f.wait_status(&id, Duration::from_secs(20), |v| v["state"] == "input");
    assert_eq!(st["shell_integration"], true, "{st}");
    let d = f.send(&id, "print(6*7)\n", &["--wait-idle", "300"]);
    assert!(has_line(s(&d["output"]), "42"), "{d}");
    f.send(&id, "exit()\n", &["--wait-idle", "100"]);
    f.wait_status(&id, Duration::from_secs(20), |v| v["state"] == "prompt");
}

/// `--no-shell-integration`: nothing is installed; state comes from heuristics and commands
/// still work.
#[test]
fn without_shell_integration_state_comes_from_heuristics() {
    let f = fx();
    let id = session_of(&f, TEST_USER, &["--no-shell-integration"]);
    let st = f.wait_status(&id, Duration::from_secs(20), |v| v["state"] == "prompt");
    assert_eq!(st["shell_integration"], false, "{st}");
    assert_eq!(f.run_ok(&id, "echo plain"), "plain\n");
    f.send(&id, "read -p 'Continue? ' x\n", &["--wait-idle", "100"]);
    f.wait_status(&id, Duration::from_secs(20), |v| v["state"] == "input");
    f.send(&id, "\n", &["--wait-idle", "100"]);
    f.wait_status(&id, Duration::from_secs(20), |v| v["state"] == "prompt");
    f.ok(&["session", "close", "-s", &id]);
}

/// `session run --detach` returns a job id at once; the CLI that started it is gone when
/// `session job` collects the state, output and exit status; `--wait` waits for the end; an
/// interrupted job frees the session; an unknown job is `not_found`.
#[test]
fn detached_jobs_report_their_status_after_the_starting_cli_exited() {
    let f = fx();
    let id = session_of(&f, TEST_USER, &[]);
    let started = Instant::now();
    let d = f.ok(&[
        "session",
        "run",
        "-s",
        &id,
        "--detach",
        "--",
        "echo job-start; sleep 2; echo job-end; (exit 6)",
    ]);
    // Returned at once, while the job still runs (the starting CLI has exited now).
    assert!(started.elapsed() < Duration::from_secs(2), "{d}");
    let job = s(&d["job"]).to_string();
    assert!(!job.is_empty(), "{d}");
    let (v, _) = f.json(&["session", "send", "-s", &id, "--input", "x"]);
    assert_eq!(v["code"], "session_busy", "the job holds the shell: {v}");
    let d = f.ok(&["session", "job", "-s", &id, "--job", &job]);
    assert_eq!(d["state"], "running", "{d}");

    let (v, rc) = f.json(&[
        "session",
        "job",
        "-s",
        &id,
        "--job",
        &job,
        "--wait",
        "--timeout",
        "20000",
    ]);
    assert_eq!(rc, 6, "the CLI exits with the job's status: {v}");
    let d = &v["data"];
    assert_eq!(
        (d["state"].clone(), d["exit_status"].clone()),
        ("done".into(), 6.into()),
        "{d}"
    );
    assert_eq!(d["output"], "job-start\njob-end\n", "{d}");
    let h = f.ok(&["session", "history", "-s", &id]);
    assert_eq!(
        h["commands"][0]["command"], "echo job-start; sleep 2; echo job-end; (exit 6)",
        "{h}"
    );

    // Interrupted: the next prompt frees the session and the job reads as done.
    let d = f.ok(&["session", "run", "-s", &id, "--detach", "--", "sleep 60"]);
    let job2 = s(&d["job"]).to_string();
    f.ok(&["session", "signal", "-s", &id, "--signal", "INT"]);
    let d = f.ok(&[
        "session",
        "job",
        "-s",
        &id,
        "--job",
        &job2,
        "--wait",
        "--timeout",
        "20000",
    ]);
    assert_eq!(d["state"], "done", "{d}");
    assert_eq!(f.run_ok(&id, "echo free"), "free\n");

    let (v, rc) = f.json(&["session", "job", "-s", &id, "--job", "jnosuch"]);
    assert_eq!((v["code"].clone(), rc), ("not_found".into(), 1), "{v}");
}

/// A new shell started inside the session (`exec dash`, `exec bash`, `exec zsh`) prints its prompt
/// without marks: the daemon installs the hooks there too, still invisibly, so the state,
/// exit statuses and history go on.
#[test]
fn a_shell_started_inside_the_session_gets_the_marks_too() {
    let f = fx();
    let id = session_of(&f, TEST_USER, &[]);
    // zsh -f: no rc files (a new user's zsh would start its set-up menu).
    for (shell, flags, status) in [("dash", "", 5), ("bash", "", 7), ("zsh", " -f", 9)] {
        f.send(
            &id,
            &format!("exec {shell}{flags}\n"),
            &["--wait-idle", "100"],
        );
        f.wait_status(&id, Duration::from_secs(20), |v| v["state"] == "prompt");
        f.send(&id, &format!("(exit {status})\n"), &["--wait-idle", "100"]);
        let st = f.wait_status(&id, Duration::from_secs(20), |v| {
            v["state"] == "prompt" && v["last_exit_status"] == status
        });
        assert_eq!(st["shell_integration"], true, "{shell}: {st}");
        assert_eq!(f.run_ok(&id, "echo in-$0"), format!("in-{shell}\n"));
    }
    let all = everything(&f, &id);
    for machinery in ["__agentssh", "agentssh=", "133;"] {
        assert!(!all.contains(machinery), "'{machinery}' shows:\n{all}");
    }
    let h = f.ok(&["session", "history", "-s", &id]);
    let statuses: Vec<Value> = h["commands"]
        .as_array()
        .expect("commands")
        .iter()
        .map(|c| c["exit_status"].clone())
        .collect();
    for status in [5, 7, 9] {
        assert!(statuses.contains(&status.into()), "{status}: {h}");
    }
}
