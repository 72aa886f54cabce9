//! The `--json` guarantee: whatever goes wrong (clap errors, missing profiles, missing
//! commands, panics), stdout holds exactly one line, one JSON envelope, and the exit code
//! follows the error code. In text mode errors go to stderr and stdout stays empty.

mod common;

use std::process::Output;

use serde_json::Value;

use common::*;

/// Stdout must be exactly one newline-terminated line holding one JSON document.
fn one_line_json(out: &Output, what: &str) -> (Value, i32) {
    let stdout = String::from_utf8(out.stdout.clone())
        .unwrap_or_else(|_| panic!("{what}: stdout is not UTF-8\n{}", show_output(out)));
    assert!(
        stdout.ends_with('\n') && stdout.trim_end_matches('\n').lines().count() == 1,
        "{what}: stdout must be exactly one line\n{}",
        show_output(out)
    );
    assert_eq!(
        stdout.matches('\n').count(),
        1,
        "{what}: stdout must be exactly one line\n{}",
        show_output(out)
    );
    let v: Value = serde_json::from_str(stdout.trim_end())
        .unwrap_or_else(|e| panic!("{what}: not JSON ({e})\n{}", show_output(out)));
    let rc = out
        .status
        .code()
        .unwrap_or_else(|| panic!("{what}: killed by a signal\n{}", show_output(out)));
    (v, rc)
}

fn expect_error(env: &TestEnv, args: &[&str], code: &str, rc: i32) -> Value {
    let out = env.run(args);
    let (v, got_rc) = one_line_json(&out, &format!("{args:?}"));
    assert_eq!(v["ok"], false, "{args:?}: {v}");
    assert_eq!(v["code"], code, "{args:?}: {v}");
    assert!(
        v["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{args:?}: no error sentence in {v}"
    );
    assert_eq!(got_rc, rc, "{args:?}: exit code for {v}");
    v
}

#[test]
fn bad_flag_is_a_usage_envelope() {
    let env = TestEnv::new();
    expect_error(&env, &["--json", "exec", "--bogus"], "usage", 2);
    expect_error(
        &env,
        &["--json", "exec", "--bogus", "--", "true"],
        "usage",
        2,
    );
    expect_error(&env, &["--json", "no-such-command"], "usage", 2);
    expect_error(
        &env,
        &["--json", "exec", "-P", "notaport", "--", "true"],
        "usage",
        2,
    );
}

#[test]
fn missing_profile_is_profile_not_found() {
    let env = TestEnv::new();
    expect_error(
        &env,
        &["--json", "exec", "-p", "nope", "--", "true"],
        "profile_not_found",
        1,
    );
}

#[test]
fn missing_command_is_usage() {
    let env = TestEnv::new();
    expect_error(
        &env,
        &["--json", "exec", "-H", "127.0.0.1", "-u", "x"],
        "usage",
        2,
    );
    expect_error(
        &env,
        &["--json", "exec", "-H", "127.0.0.1", "-u", "x", "--"],
        "usage",
        2,
    );
}

#[test]
fn no_target_is_usage() {
    let env = TestEnv::new();
    expect_error(&env, &["--json", "exec", "--", "true"], "usage", 2);
}

#[test]
fn forced_panic_is_an_internal_envelope() {
    let env = TestEnv::new();
    for args in [
        &["--json", "exec", "-H", "127.0.0.1", "--", "true"][..],
        &["--json", "profile", "list"][..],
        &["profile", "list", "--output", "json"][..],
    ] {
        let mut cmd = env.cmd();
        cmd.env("AGENTSSH_DEBUG_PANIC", "1").args(args);
        let out = output_with_deadline(cmd, None, RUN_DEADLINE);
        let (v, rc) = one_line_json(&out, "forced panic");
        assert_eq!(v["ok"], false, "{v}");
        assert_eq!(v["code"], "internal", "{v}");
        assert_eq!(rc, 1, "{v}");
    }
}

#[test]
fn output_json_after_the_subcommand() {
    let env = TestEnv::new();
    expect_error(
        &env,
        &["exec", "-p", "nope", "--output", "json", "--", "true"],
        "profile_not_found",
        1,
    );
    expect_error(
        &env,
        &["exec", "-p", "nope", "--output=json", "--", "true"],
        "profile_not_found",
        1,
    );
    expect_error(&env, &["exec", "--bogus", "--output", "json"], "usage", 2);
    expect_error(&env, &["exec", "--json", "--bogus"], "usage", 2);
    // A success too.
    let out = env.run(&["profile", "list", "--output", "json"]);
    let (v, rc) = one_line_json(&out, "profile list --output json");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(rc, 0);
    assert!(v["data"]["profiles"].is_array(), "{v}");
}

#[test]
fn json_after_double_dash_belongs_to_the_remote_command() {
    let env = TestEnv::new();
    // `--json` after `--` is a word of the remote command, not ours: text-mode error.
    let out = env.run(&["exec", "-p", "nope", "--", "echo", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", show_output(&out));
    assert!(out.stdout.is_empty(), "{}", show_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nope"),
        "{}",
        show_output(&out)
    );
}

#[test]
fn help_under_json_is_a_success_envelope() {
    let env = TestEnv::new();
    for args in [
        &["--json", "--help"][..],
        &["--json", "exec", "--help"][..],
        &["exec", "--help", "--output", "json"][..],
    ] {
        let out = env.run(args);
        let (v, rc) = one_line_json(&out, &format!("{args:?}"));
        assert_eq!(v["ok"], true, "{args:?}: {v}");
        assert_eq!(rc, 0, "{args:?}: {v}");
        assert!(
            v["data"].to_string().contains("exec"),
            "help text should be in data: {v}"
        );
    }
}

#[test]
fn text_mode_errors_go_to_stderr() {
    let env = TestEnv::new();
    let cases: [(&[&str], i32, &str); 3] = [
        (&["exec", "--bogus"], 2, "--bogus"),
        (&["exec", "-p", "nope", "--", "true"], 1, "nope"),
        (&["exec", "-H", "127.0.0.1", "-u", "x"], 2, "command"),
    ];
    for (args, rc, needle) in cases {
        let out = env.run(args);
        assert_eq!(
            out.status.code(),
            Some(rc),
            "{args:?}\n{}",
            show_output(&out)
        );
        assert!(
            out.stdout.is_empty(),
            "{args:?}: stdout must stay empty\n{}",
            show_output(&out)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{args:?}: stderr should mention {needle:?}\n{}",
            show_output(&out)
        );
    }

    // A panic in text mode: a message on stderr, nothing on stdout.
    let mut cmd = env.cmd();
    cmd.env("AGENTSSH_DEBUG_PANIC", "1")
        .args(["profile", "list"]);
    let out = output_with_deadline(cmd, None, RUN_DEADLINE);
    assert_eq!(out.status.code(), Some(1), "{}", show_output(&out));
    assert!(out.stdout.is_empty(), "{}", show_output(&out));
    assert!(!out.stderr.is_empty(), "{}", show_output(&out));
}
