//! `agentssh policy check`: evaluated locally (no daemon, no sshd) with the daemon's code.

mod common;

use std::fs;

use common::*;

const POLICY: &str = r#"[[rule]]
targets = ["prod", "*.example.com"]
default = "ask"
allow = ["ls", "cat", "uname"]
deny = ["rm", "re:^shutdown"]
"#;

fn check(env: &TestEnv, target: &[&str], cmd: &str) -> serde_json::Value {
    let mut args = vec!["--json", "policy", "check"];
    args.extend_from_slice(target);
    args.extend_from_slice(&["--", cmd]);
    let (v, rc) = env.json(&args);
    assert_eq!((v["ok"].as_bool(), rc), (Some(true), 0), "{args:?}: {v}");
    v["data"].clone()
}

#[test]
fn policy_check_decides_and_explains() {
    let env = TestEnv::new();
    let h = ["-H", "db.example.com"];
    // No file: everything is allowed.
    assert_eq!(check(&env, &h, "rm -rf /")["decision"], "allow");

    let dir = env.config_home.join("agentssh");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("policy.toml"), POLICY).unwrap();
    let d = check(&env, &h, "uname -a");
    assert_eq!(d["decision"], "allow", "{d}");
    assert_eq!(d["rule"], "rule 1 (line 2)", "{d}");
    assert_eq!(check(&env, &h, "uname; rm -rf /tmp/x")["decision"], "deny");
    for c in ["ls $(sudo id)", "S=sudo; $S id", "sh -c 'touch /tmp/x'"] {
        let d = check(&env, &h, c);
        assert_eq!(d["decision"], "ask", "{c}: {d}");
        assert!(d["reason"]
            .as_str()
            .unwrap()
            .contains("not a whole simple command"));
    }
    // Another host: no rule, allowed.
    assert_eq!(check(&env, &["-H", "other"], "rm x")["decision"], "allow");
    // Text mode: one line.
    let out = env.run(&["policy", "check", "-H", "db.example.com", "--", "uname"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("allow\trule 1 (line 2)\t"), "{text}");

    // A broken file is an error naming the line; an unknown profile is profile_not_found.
    fs::write(
        dir.join("policy.toml"),
        "[[rule]]\ntargets = [\"*\"]\nallwo = []\n",
    )
    .unwrap();
    let (v, rc) = env.json(&["--json", "policy", "check", "-H", "x", "--", "ls"]);
    assert_eq!((v["code"].as_str(), rc), (Some("usage"), 2), "{v}");
    assert!(v["error"].as_str().unwrap().contains("line 3"), "{v}");
    let (v, _) = env.json(&["--json", "policy", "check", "-p", "nope", "--", "ls"]);
    assert_eq!(v["code"], "profile_not_found", "{v}");
}
