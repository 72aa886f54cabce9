//! `agentssh mcp` driven by the official Python MCP SDK (tests/mcp/client.py): tool listing,
//! exec and a session on the real sshd, a file read, structured tool errors, and a server
//! that keeps serving after malformed JSON-RPC, an unknown tool and wrong argument types.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use serde_json::Value;

use common::*;

/// Runs the Python client in `mode` against our binary; returns its JSON report.
fn client(env: &TestEnv, mode: &str, profile: &str, remote: &str, server_args: &[&str]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/client.py");
    let mut cmd = Command::new("python3");
    env.apply_env(&mut cmd);
    cmd.arg(script)
        .arg(mode)
        .arg(env!("CARGO_BIN_EXE_agentssh"))
        .arg(profile)
        .arg(remote)
        .args(server_args);
    let out = output_with_deadline(cmd, None, RUN_DEADLINE);
    assert!(
        out.status.success(),
        "client.py {mode}: {}",
        show_output(&out)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("client.py output is not JSON ({e}): {}", show_output(&out)))
}

fn setup() -> (TestEnv, Sshd) {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    env.trust_host(&sshd);
    env.add_profile("t", &sshd);
    (env, sshd)
}

#[test]
fn python_sdk_client_runs_tools_and_gets_structured_errors() {
    let (env, _sshd) = setup();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all("line one\nzwei ✓\n".as_bytes()).unwrap();
    std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let remote = file.path().to_str().unwrap();

    let r = client(&env, "sdk", "t", remote, &["--profile", "t"]);
    assert_eq!(r["server_name"], "agentssh", "{r}");
    let tools: Vec<&str> = r["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for t in [
        "exec",
        "profile_list",
        "session_open",
        "session_run",
        "file_read",
        "file_ls",
    ] {
        assert!(tools.contains(&t), "{t} missing from {tools:?}");
    }
    assert_eq!(
        r["schemas"]["exec"]["properties"]["command"]["type"], "string",
        "{r}"
    );

    let exec = &r["exec"];
    assert_eq!(exec["is_error"], false, "{exec}");
    assert_eq!(exec["structured"]["stdout"], "hi\n", "{exec}");
    assert_eq!(exec["structured"]["stderr"], "err\n", "{exec}");
    assert_eq!(exec["structured"]["exit_status"], 3, "{exec}");

    // A profile outside --profile, and inline targets without --allow-inline-targets.
    for case in ["missing_profile", "inline"] {
        assert_eq!(r[case]["is_error"], true, "{case}: {}", r[case]);
        assert_eq!(
            r[case]["structured"]["code"], "usage",
            "{case}: {}",
            r[case]
        );
        assert!(
            r[case]["structured"]["error"].as_str().unwrap().len() > 10,
            "{}",
            r[case]
        );
    }

    let opened = &r["session_open"];
    assert_eq!(opened["is_error"], false, "{opened}");
    assert_eq!(
        r["session_run"]["structured"]["output"], "ran-42\n",
        "{}",
        r["session_run"]
    );
    assert_eq!(
        r["session_run"]["structured"]["exit_status"], 0,
        "{}",
        r["session_run"]
    );
    assert_eq!(
        r["session_run2"]["structured"]["output"], "/tmp\n",
        "state carries over: {}",
        r["session_run2"]
    );
    let id = &opened["structured"]["id"];
    let listed = r["session_list"]["structured"]["sessions"]
        .as_array()
        .unwrap();
    assert!(
        listed.iter().any(|s| &s["id"] == id),
        "{}",
        r["session_list"]
    );
    assert_eq!(
        r["session_close"]["is_error"], false,
        "{}",
        r["session_close"]
    );

    assert_eq!(
        r["file_read"]["structured"]["content"], "line one\nzwei ✓\n",
        "{}",
        r["file_read"]
    );

    assert_eq!(r["wrong_type"]["is_error"], true, "{}", r["wrong_type"]);
    assert_eq!(
        r["wrong_type"]["structured"]["code"], "usage",
        "{}",
        r["wrong_type"]
    );
    assert_eq!(r["unknown_tool"]["raised"], true, "{}", r["unknown_tool"]);
    // The daemon's activity log names this face as the client that opened the session.
    let (log, _) = env.json(&["--json", "log"]);
    let entries = log["data"]["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        entries.iter().any(
            |e| e["client"].as_str().unwrap_or_default().starts_with("mcp:")
                && e["command"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("connect")
        ),
        "no connect by an mcp client in the activity log: {log}"
    );
    // Still serving after all that.
    assert_eq!(r["after"]["is_error"], false, "{}", r["after"]);
    assert_eq!(
        r["after"]["structured"]["profiles"][0]["name"], "t",
        "{}",
        r["after"]
    );
    // A daemon shut down between two calls is replaced by the next one, on a new pooled
    // SSH connection (another sshd session process is the parent of the remote shell).
    assert_eq!(r["daemon_shutdown"]["ok"], true, "{}", r["daemon_shutdown"]);
    let restart = &r["daemon_restart"];
    for side in ["before", "after"] {
        assert_eq!(restart[side]["is_error"], false, "{restart}");
        assert_eq!(restart[side]["structured"]["exit_status"], 0, "{restart}");
    }
    assert_ne!(
        restart["before"]["structured"]["stdout"], restart["after"]["structured"]["stdout"],
        "the exec after the daemon's shutdown ran on the old connection: {restart}"
    );
}

#[test]
fn tool_groups_limit_the_list_and_a_missing_profile_is_a_tool_error() {
    let (env, _sshd) = setup();
    let r = client(&env, "raw", "t", "/", &["--tools", "files"]);
    let replies = r["replies"].as_array().unwrap();
    let list = replies.last().unwrap();
    assert_eq!(
        list["id"], 2,
        "the server answered after the malformed line: {r}"
    );
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        !names.is_empty() && names.iter().all(|n| n.starts_with("file_")),
        "{names:?}"
    );
    // The malformed line got a JSON-RPC error (or was skipped), never a result.
    for reply in &replies[..replies.len() - 1] {
        assert!(reply["error"].is_object(), "{reply}");
    }
    let big = &r["big"];
    assert_eq!(big["id"], 3, "{big}");
    assert_eq!(big["result"]["isError"], true, "{big}");
    assert_eq!(big["result"]["structuredContent"]["code"], "usage", "{big}");
    assert!(
        big["result"]["structuredContent"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("limit"),
        "{big}"
    );
    assert!(
        !std::path::Path::new("/tmp/never-written").exists(),
        "an oversized call must do nothing"
    );
    let after = r["after_huge"].as_array().unwrap();
    assert_eq!(after.last().unwrap()["id"], 5, "still serving: {after:?}");
    assert!(
        after.iter().all(|a| a["id"] != 4),
        "the 40 MiB line got an answer: {after:?}"
    );
    assert_eq!(r["exit"], 0, "stdin closed: a clean exit: {r}");
}

/// A directory on this machine the remote user may write in (the sshd runs on loopback).
fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("agentssh-mcp-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

#[test]
fn file_and_proxy_tools_work_on_the_real_sshd() {
    let (env, _sshd) = setup();
    let dir = shared_dir();
    let work = dir.path().to_str().unwrap();
    let r = client(&env, "tools", "t", work, &["--profile", "t"]);

    assert_eq!(r["write"]["is_error"], false, "{}", r["write"]);
    assert_eq!(r["edit"]["structured"]["replacements"], 1, "{}", r["edit"]);
    assert_eq!(
        r["edit_regex_all"]["structured"]["replacements"], 2,
        "{}",
        r["edit_regex_all"]
    );
    assert_eq!(
        r["edit_miss"]["structured"]["code"], "not_found",
        "{}",
        r["edit_miss"]
    );
    assert_eq!(
        r["after_edit"]["structured"]["content"], "port: 9090\nhost: a\n",
        "{}",
        r["after_edit"]
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("conf.ini")).unwrap(),
        "port: 9090\nhost: a\n"
    );

    assert_eq!(r["upload"]["is_error"], false, "{}", r["upload"]);
    assert_eq!(
        r["upload"]["structured"]["bytes"],
        300 * 1024,
        "{}",
        r["upload"]
    );
    assert_eq!(r["download"]["is_error"], false, "{}", r["download"]);
    let rt = &r["round_trip"];
    assert!(rt["src"].is_string() && rt["src"] == rt["back"], "{rt}");
    assert_eq!(r["delete"]["is_error"], false, "{}", r["delete"]);
    assert_eq!(r["deleted_exists"], false, "{r}");
    assert_eq!(
        r["delete_again"]["structured"]["code"], "not_found",
        "{}",
        r["delete_again"]
    );

    let created = &r["proxy_create"];
    assert_eq!(created["is_error"], false, "{created}");
    assert_eq!(created["structured"]["proxy_id"], "mcp-echo", "{created}");
    assert_eq!(r["through_proxy"], "echo:ping", "{r}");
    let listed: Vec<&Value> = r["proxy_list"]["structured"]["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["id"] == "mcp-echo")
        .collect();
    assert_eq!(listed.len(), 1, "{}", r["proxy_list"]);
    assert_eq!(listed[0]["kind"], "local", "{}", r["proxy_list"]);
    assert_eq!(
        r["proxy_bad"]["structured"]["code"], "usage",
        "local without remote: {}",
        r["proxy_bad"]
    );
    assert_eq!(
        r["proxy_close"]["structured"]["closed"][0], "mcp-echo",
        "{}",
        r["proxy_close"]
    );
    assert_ne!(r["after_close"], "echo:ping", "closed: {r}");
    assert_eq!(
        r["proxy_list_after"]["structured"]["proxies"]
            .as_array()
            .map(Vec::len),
        Some(0),
        "{}",
        r["proxy_list_after"]
    );

    // Sessions record which kind of client opened them: `mcp` here, `cli` from the CLI.
    assert_eq!(
        r["session_open"]["structured"]["client"], "mcp",
        "{}",
        r["session_open"]
    );
    let (v, rc) = env.json(&["-p", "t", "--json", "connect", "--name", "from-cli"]);
    assert_eq!(rc, 0, "{v}");
    let list = env.json(&["--json", "session", "list"]).0;
    let kind = |name: &str| {
        list["data"]["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["client"].clone())
    };
    assert_eq!(kind("from-mcp"), Some("mcp".into()), "{list}");
    assert_eq!(kind("from-cli"), Some("cli".into()), "{list}");
}

#[test]
fn long_exec_reports_progress_and_a_cancelled_exec_stops_the_remote_command() {
    let (env, _sshd) = setup();
    let dir = shared_dir();
    let work = dir.path().to_str().unwrap();
    let r = client(&env, "long", "t", work, &["--profile", "t"]);

    assert_eq!(
        r["exec"]["structured"]["stdout"], "slept\n",
        "{}",
        r["exec"]
    );
    let progress: Vec<f64> = r["progress"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["progress"].as_f64())
        .collect();
    assert!(
        progress.len() >= 2 && progress.windows(2).all(|w| w[0] < w[1]),
        "a 3 s exec should report rising progress about every second: {}",
        r["progress"]
    );
    assert!(
        r["progress"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("exec: running"),
        "{}",
        r["progress"]
    );

    // The remote `sleep 317` ran, the client cancelled the call, and it stopped while the
    // MCP server kept running (its end would also close the daemon connection).
    assert!(r["pid"].is_u64(), "{r}");
    assert_eq!(r["alive_before_cancel"], true, "{r}");
    assert_eq!(r["cancel"], "cancelled", "{r}");
    assert_eq!(
        r["gone"], true,
        "the remote command outlived the cancel: {r}"
    );
    assert_eq!(
        r["after"]["structured"]["stdout"], "still-here\n",
        "{}",
        r["after"]
    );
}
