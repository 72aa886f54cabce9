//! `agentssh profile add|list|read|delete` through the CLI, the file it writes, secrets
//! handling, and `exec -p NAME` with inline overrides.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use serde_json::Value;

use common::*;

fn profiles_path(env: &TestEnv) -> PathBuf {
    env.config_home.join("agentssh").join("profiles.json")
}

fn ok(env: &TestEnv, args: &[&str]) -> Value {
    let (v, rc) = env.json(args);
    assert_eq!(v["ok"], true, "{args:?}: {v}");
    assert_eq!(rc, 0, "{args:?}: {v}");
    v["data"].clone()
}

fn err(env: &TestEnv, args: &[&str], code: &str, rc: i32) -> Value {
    let (v, got) = env.json(args);
    assert_eq!(v["ok"], false, "{args:?}: {v}");
    assert_eq!(v["code"], code, "{args:?}: {v}");
    assert_eq!(got, rc, "{args:?}: {v}");
    v
}

fn names(list: &Value) -> Vec<String> {
    list["profiles"]
        .as_array()
        .unwrap_or_else(|| panic!("no profiles array in {list}"))
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn add_list_read_delete() {
    let env = TestEnv::new();
    assert!(names(&ok(&env, &["--json", "profile", "list"])).is_empty());

    let added = ok(
        &env,
        &[
            "--json",
            "profile",
            "add",
            "web-1",
            "--host",
            "web.example.com",
            "--port",
            "2222",
            "--username",
            "deploy",
            "--private-key-path",
            "/keys/id_web",
        ],
    );
    assert_eq!(added["name"], "web-1", "{added}");
    assert_eq!(added["host"], "web.example.com", "{added}");
    ok(
        &env,
        &["--json", "profile", "add", "db", "--host", "db.internal"],
    );

    let list = ok(&env, &["--json", "profile", "list"]);
    let mut got = names(&list);
    got.sort();
    assert_eq!(got, ["db", "web-1"], "{list}");

    let p = ok(&env, &["--json", "profile", "read", "web-1"]);
    assert_eq!(p["name"], "web-1", "{p}");
    assert_eq!(p["host"], "web.example.com", "{p}");
    assert_eq!(p["port"], 2222, "{p}");
    assert_eq!(p["username"], "deploy", "{p}");
    assert_eq!(p["private_key_path"], "/keys/id_web", "{p}");
    assert!(p.get("password").is_none(), "{p}");

    // Text mode shows it too.
    let out = env.run(&["profile", "list"]);
    assert!(out.status.success(), "{}", show_output(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("web-1") && text.contains("db"),
        "{}",
        show_output(&out)
    );

    // Replacing keeps one entry.
    let replaced = ok(
        &env,
        &["--json", "profile", "add", "db", "--host", "db2.internal"],
    );
    assert_eq!(replaced["host"], "db2.internal");
    assert_eq!(names(&ok(&env, &["--json", "profile", "list"])).len(), 2);

    let del = ok(&env, &["--json", "profile", "delete", "web-1"]);
    assert_eq!(del["name"], "web-1", "{del}");
    assert_eq!(
        names(&ok(&env, &["--json", "profile", "list"])),
        ["db"],
        "web-1 should be gone"
    );
    err(
        &env,
        &["--json", "profile", "read", "web-1"],
        "profile_not_found",
        1,
    );
    err(
        &env,
        &["--json", "profile", "delete", "web-1"],
        "profile_not_found",
        1,
    );
}

#[test]
fn file_is_private() {
    let env = TestEnv::new();
    ok(
        &env,
        &["--json", "profile", "add", "p", "--host", "h.example"],
    );
    let path = profiles_path(&env);
    let mode = fs::metadata(&path)
        .unwrap_or_else(|e| panic!("{path:?}: {e}"))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{path:?} has mode {:o}", mode & 0o777);
    // Still 0600 after a rewrite.
    ok(
        &env,
        &["--json", "profile", "add", "q", "--host", "h2.example"],
    );
    ok(&env, &["--json", "profile", "delete", "p"]);
    let mode = fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // No temp files left beside it.
    let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("profiles.json") && n != "profiles.json")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn password_env_stores_only_the_variable_name() {
    let env = TestEnv::new();
    let secret = format!("s3cret-{}-{}", std::process::id(), env.id.len());
    let mut cmd = env.cmd();
    cmd.env("AGENTSSH_TEST_SECRET_PW", &secret).args([
        "--json",
        "profile",
        "add",
        "ci",
        "--host",
        "127.0.0.1",
        "--password-env",
        "AGENTSSH_TEST_SECRET_PW",
    ]);
    let out = output_with_deadline(cmd, None, RUN_DEADLINE);
    let (v, rc) = parse_json_output(&out, &["profile add --password-env"]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(rc, 0);
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&secret));
    let file = fs::read_to_string(profiles_path(&env)).unwrap();
    assert!(file.contains("AGENTSSH_TEST_SECRET_PW"), "{file}");
    assert!(
        !file.contains(&secret),
        "profiles.json holds the value of the environment variable:\n{file}"
    );
    let p = ok(&env, &["--json", "profile", "read", "ci"]);
    assert_eq!(p["password_env"], "AGENTSSH_TEST_SECRET_PW", "{p}");
    assert!(p.get("password").is_none(), "{p}");
}

#[test]
fn literal_password_is_stored_but_never_shown() {
    let env = TestEnv::new();
    let literal = format!("literal-pw-{}", std::process::id());
    let out = env.run(&[
        "--json",
        "profile",
        "add",
        "lit",
        "--host",
        "127.0.0.1",
        "--password",
        &literal,
    ]);
    let (v, rc) = parse_json_output(&out, &["profile add --password"]);
    assert_eq!((v["ok"].clone(), rc), (Value::Bool(true), 0), "{v}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(&literal),
        "profile add printed the password: {}",
        show_output(&out)
    );
    let file = fs::read_to_string(profiles_path(&env)).unwrap();
    assert!(
        file.contains(&literal),
        "the literal password the user passed should be stored:\n{file}"
    );

    let p = ok(&env, &["--json", "profile", "read", "lit"]);
    assert_eq!(p["password"], "<set>", "{p}");
    let list = ok(&env, &["--json", "profile", "list"]);
    assert_eq!(list["profiles"][0]["password"], "<set>", "{list}");
    for args in [
        &["--json", "profile", "read", "lit"][..],
        &["--json", "profile", "list"][..],
        &["profile", "read", "lit"][..],
        &["profile", "list"][..],
    ] {
        let out = env.run(args);
        assert!(out.status.success(), "{args:?}: {}", show_output(&out));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !all.contains(&literal),
            "{args:?} printed the password: {all}"
        );
    }
}

#[test]
fn exec_uses_the_profile_and_inline_flags_win() {
    let env = TestEnv::new();
    let sshd = Sshd::start(&[env.client_pubkey()]);
    let port = sshd.port.to_string();
    let key = env.key_path().display().to_string();
    ok(
        &env,
        &[
            "--json",
            "profile",
            "add",
            "good",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--username",
            TEST_USER,
            "--private-key-path",
            &key,
        ],
    );
    let (v, rc) = env.json(&["--json", "exec", "-p", "good", "--", "whoami"]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(rc, 0);
    assert_eq!(v["data"]["stdout"], format!("{TEST_USER}\n"), "{v}");
    let (v, rc) = env.json(&["--json", "exec", "-p", "good", "--direct", "--", "whoami"]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(rc, 0);

    // A profile with the wrong port and user: inline -P and -u override it.
    let closed = free_port().to_string();
    ok(
        &env,
        &[
            "--json",
            "profile",
            "add",
            "stale",
            "--host",
            "127.0.0.1",
            "--port",
            &closed,
            "--username",
            "nobody-here",
        ],
    );
    let (v, rc) = env.json(&["--json", "exec", "-p", "stale", "--", "whoami"]);
    assert_eq!(v["ok"], false, "the stale profile alone must fail: {v}");
    assert_eq!(v["code"], "connect_failed", "{v}");
    assert_eq!(rc, 255);
    for via in [&[][..], &["--direct"][..]] {
        let mut args = vec![
            "--json", "exec", "-p", "stale", "-P", &port, "-u", TEST_USER,
        ];
        args.extend_from_slice(via);
        args.extend(["--", "whoami"]);
        let (v, rc) = env.json(&args);
        assert_eq!(v["ok"], true, "{args:?}: {v}");
        assert_eq!(rc, 0);
        assert_eq!(v["data"]["stdout"], format!("{TEST_USER}\n"), "{v}");
    }
}

#[test]
fn exec_with_a_password_env_profile() {
    let env = TestEnv::new();
    // No key authorized: only the password from the profile's variable works.
    let sshd = Sshd::start(&[]);
    let port = sshd.port.to_string();
    ok(
        &env,
        &[
            "--json",
            "profile",
            "add",
            "pw",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--username",
            TEST_USER,
            "--password-env",
            "AGENTSSH_TEST_PROFILE_PW",
        ],
    );
    let mut cmd = env.cmd();
    cmd.env("AGENTSSH_TEST_PROFILE_PW", TEST_PASSWORD)
        .args(["--json", "exec", "-p", "pw", "--", "whoami"]);
    let out = output_with_deadline(cmd, None, RUN_DEADLINE);
    let (v, rc) = parse_json_output(&out, &["exec -p pw"]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(rc, 0);
    assert_eq!(v["data"]["stdout"], format!("{TEST_USER}\n"), "{v}");
}

#[test]
fn missing_profile_points_to_profile_list() {
    let env = TestEnv::new();
    let v = err(
        &env,
        &["--json", "profile", "read", "ghost"],
        "profile_not_found",
        1,
    );
    let msg = v["error"].as_str().unwrap();
    assert!(msg.contains("ghost"), "{msg}");
    assert!(msg.contains("profile list"), "{msg}");
    let v = err(
        &env,
        &["--json", "exec", "-p", "ghost", "--", "true"],
        "profile_not_found",
        1,
    );
    assert!(v["error"].as_str().unwrap().contains("profile list"), "{v}");
}

#[test]
fn invalid_names_are_usage_errors() {
    let env = TestEnv::new();
    for name in ["a/b", "x y", "../evil", "", "semi;colon", "new\nline"] {
        err(
            &env,
            &["--json", "profile", "add", name, "--host", "h.example"],
            "usage",
            2,
        );
    }
    assert!(
        !profiles_path(&env).exists(),
        "no file should be written for invalid names"
    );
    // Missing --host is a usage error too.
    err(&env, &["--json", "profile", "add", "nohost"], "usage", 2);
}
