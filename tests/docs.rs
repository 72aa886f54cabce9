//! Docs are tests: every `agentssh …` line in the code blocks of README.md and SKILL.md parses
//! with the real CLI definition; the completion scripts load in their shells; the man page
//! renders.

mod common;

use std::process::{Command, Stdio};

use agentssh::cli::docs::{command_words, parses};
use common::*;

/// The lines inside ``` fenced blocks of `file` (continuation lines joined).
fn code_lines(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_owned() + file)
        .unwrap_or_else(|e| panic!("read {file}: {e}"));
    let mut out = Vec::new();
    let mut inside = false;
    let mut pending = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside;
            continue;
        }
        if !inside {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(line);
        out.push(std::mem::take(&mut pending));
    }
    out
}

/// Every `agentssh …` command in `file`'s code blocks parses; returns how many there were.
fn check_file(file: &str) -> usize {
    let mut n = 0;
    for line in code_lines(file) {
        let Some(words) = command_words(&line) else {
            continue;
        };
        n += 1;
        if let Err(e) = parses(&words) {
            panic!("{file}: `{line}` does not parse with the real CLI: {e}");
        }
    }
    n
}

#[test]
fn readme_and_skill_commands_parse() {
    let readme = check_file("README.md");
    let skill = check_file("SKILL.md");
    assert!(
        readme >= 8,
        "only {readme} agentssh lines in README.md code blocks"
    );
    assert!(
        skill >= 5,
        "only {skill} agentssh lines in SKILL.md code blocks"
    );
}

#[test]
fn a_removed_flag_fails_the_docs_check() {
    // The check itself must be able to fail: a flag the CLI does not have is rejected.
    let words = command_words("agentssh --json session send -s s1 --no-such-flag x").unwrap();
    assert!(parses(&words).is_err());
    let words = command_words("agentssh --json session send -s s1 --input $'ls\\n'").unwrap();
    assert!(parses(&words).is_ok(), "{words:?}");
}

fn agentssh(env: &TestEnv, args: &[&str]) -> Vec<u8> {
    let out = env.run(args);
    assert!(out.status.success(), "{}", show_output(&out));
    out.stdout
}

#[test]
fn bash_completion_loads() {
    let env = TestEnv::new();
    let script = env.dir.path().join("agentssh.bash");
    std::fs::write(&script, agentssh(&env, &["completions", "bash"])).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p agentssh",
            script.display()
        ))
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    assert!(out.status.success(), "{}", show_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("agentssh"),
        "{}",
        show_output(&out)
    );
    // The real pipeline from the README: process substitution.
    let bin = env!("CARGO_BIN_EXE_agentssh");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source <('{bin}' completions bash) && complete -p agentssh"
        ))
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    assert!(out.status.success(), "{}", show_output(&out));
    for shell in ["zsh", "fish"] {
        let s = String::from_utf8(agentssh(&env, &["completions", shell])).unwrap();
        assert!(
            s.contains("agentssh") && s.contains("session"),
            "{shell}: {s}"
        );
    }
    let (v, rc) = env.json(&["--json", "completions", "fish"]);
    assert_eq!(
        (v["ok"].clone(), rc),
        (serde_json::Value::Bool(true), 0),
        "{v}"
    );
}

#[test]
fn man_page_renders() {
    let env = TestEnv::new();
    let roff = agentssh(&env, &["man"]);
    let text = String::from_utf8_lossy(&roff).into_owned();
    assert!(text.starts_with(".TH") || text.contains("\n.TH "), "{text}");
    // groff parses it without warnings and renders every command's section.
    let mut child = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("groff (scripts/test-setup.sh installs groff-base)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &roff).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        show_output(&out)
    );
    let mut child = Command::new("man")
        .args(["-l", "-"])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("man (scripts/test-setup.sh installs man-db)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &roff).unwrap();
    let out = child.wait_with_output().unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", show_output(&out));
    for want in [
        "AGENTSSH SESSION SEND",
        "--wait-idle",
        "AGENTSSH DEMO",
        "Examples:",
    ] {
        assert!(
            page.contains(want),
            "the rendered man page lacks {want:?}:\n{page}"
        );
    }
}

/// The lines of the first code block after the heading `heading` in `file`.
fn block_after(file: &str, heading: &str) -> Vec<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_owned() + file)
        .unwrap();
    let rest = &text[text
        .find(heading)
        .unwrap_or_else(|| panic!("{file}: no {heading:?}"))..];
    let start = rest.find("```").unwrap();
    let body = &rest[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()]
        .lines()
        .map(String::from)
        .collect()
}

/// The README's quick start for agents, run line by line against the demo server (profile
/// `prod` points at it): every line runs and answers with one envelope, never `usage` or
/// `internal`. Paths like /srv may not exist there, so file errors are fine.
#[test]
fn readme_quick_start_runs_against_the_demo_server() {
    use agentssh::demo::server::{DemoServer, Options};
    let env = TestEnv::new();
    let key = russh::keys::PublicKey::from_openssh(&env.client_pubkey()).unwrap();
    let mut server = DemoServer::start(Options {
        home: env.home.clone(),
        shell: "/bin/sh".into(),
        env: vec![("AGENTSSH_DOCS_TEST".into(), env.id.clone())],
        client_key: key,
    })
    .unwrap();
    env.trust_known_hosts_line(&format!("[127.0.0.1]:{} {}", server.port, server.host_key));
    let port = server.port.to_string();
    let key_path = env.key_path();
    let (v, rc) = env.json(&[
        "--json",
        "profile",
        "add",
        "prod",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--username",
        "demo",
        "--private-key-path",
        key_path.to_str().unwrap(),
    ]);
    assert_eq!(rc, 0, "{v}");
    let mut ran = 0;
    for line in block_after("README.md", "## Quick start for agents") {
        let Some(words) = command_words(&line) else {
            continue;
        };
        if words.get(1).map(String::as_str) == Some("profile") {
            continue; // the example profile's host is made up; `prod` is ours
        }
        let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        let out = env.run(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let v: serde_json::Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("`{line}`: not one envelope ({e})\n{}", show_output(&out)));
        let code = v["code"].as_str().unwrap_or("");
        assert!(
            !matches!(
                code,
                "usage" | "internal" | "connect_failed" | "auth_failed"
            ),
            "`{line}`: {v}"
        );
        ran += 1;
    }
    assert!(ran >= 7, "only {ran} quick-start lines ran");
    let (v, _) = env.json(&["--json", "daemon", "shutdown"]);
    assert_eq!(v["ok"], true, "{v}");
    server.stop();
}

/// Every relative link in README.md and SKILL.md points at a file of the repository.
#[test]
fn local_links_exist() {
    for file in ["README.md", "SKILL.md"] {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_owned() + file)
                .unwrap();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("](") {
            let tail = &rest[i + 2..];
            let end = tail.find(')').unwrap_or(tail.len());
            let target = &tail[..end];
            if !target.contains("://") && !target.starts_with('#') && !target.starts_with("../") {
                let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(target);
                assert!(path.exists(), "{file} links {target}, which does not exist");
            }
            rest = &tail[end..];
        }
    }
}
