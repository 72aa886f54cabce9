//! Tests for the tokenizer, the policy file and decisions: the advisories' bypasses and more.

use std::path::Path;

use proptest::prelude::*;

use super::file::{parse, Loader, Verdict};
use super::shell::analyze;
use super::{decide, Action, Policy, Target};

const POLICY: &str = r#"
[[rule]]
targets = ["prod", "*.example.com"]
default = "ask"
allow = ["ls", "cat", "uname", "re:^git status$"]
ask = ["reboot"]
deny = ["rm", "re:^shutdown"]
files_read = "allow"

[[rule]]
targets = ["*"]
default = "deny"
allow = ["id"]
"#;

fn policy() -> Policy {
    parse(POLICY, Path::new("policy.toml")).unwrap()
}

fn prod() -> Target {
    Target {
        profile: Some("prod".into()),
        host: "10.0.0.1".into(),
    }
}

fn cmd(c: &str) -> Verdict {
    decide(&policy(), &prod(), &Action::Command(c.into())).decision
}

#[test]
fn whole_simple_commands_are_split_and_allowed() {
    assert_eq!(
        analyze("uname -a").simple,
        Some(vec!["uname".into(), "-a".into()])
    );
    assert_eq!(
        analyze("cat 'my file' \"b c\" d\\ e").simple,
        Some(vec![
            "cat".into(),
            "my file".into(),
            "b c".into(),
            "d e".into()
        ])
    );
    assert_eq!(cmd("uname -a"), Verdict::Allow);
    assert_eq!(cmd("  ls\t-la   /tmp "), Verdict::Allow);
    assert_eq!(cmd("cat '/etc/os-release'"), Verdict::Allow);
    assert_eq!(cmd("ls *.txt"), Verdict::Allow);
    assert_eq!(cmd("git status"), Verdict::Allow);
}

#[test]
fn advisory_bypasses_never_allow() {
    assert_eq!(cmd("uname; rm -rf /tmp/x"), Verdict::Deny);
    assert_eq!(cmd("ls $(sudo id)"), Verdict::Ask);
    assert_eq!(cmd("S=sudo; $S id"), Verdict::Ask);
    assert_eq!(cmd("sh -c 'touch /tmp/x'"), Verdict::Ask);
}

#[test]
fn control_syntax_falls_to_ask() {
    let cases = [
        "ls && id",
        "ls || id",
        "ls | id",
        "ls & id",
        "ls\nid",
        "ls `id`",
        "ls ${HOME}",
        "$CMD",
        "ls > /etc/passwd",
        "ls < /etc/passwd",
        "ls >> /tmp/x",
        "ls 2> /tmp/x",
        "cat <<EOF",
        "cat <(id)",
        "(ls)",
        "{ ls; }",
        "ls # comment",
        "FOO=1 ls",
        "bash -c ls",
        "eval ls",
        "exec ls",
        "xargs ls",
        "env ls",
        "sudo ls",
        "doas ls",
        "su -c ls",
        "nohup ls",
        "timeout 5 ls",
        "nice ls",
        "command ls",
        "builtin ls",
        "time ls",
        "busybox ls",
        "l's'",
        "\"ls\"x",
        "\\ls",
        "l\\s",
        "ls 'unterminated",
        "ls \"unterminated",
        "/bin/l?",
        "{ls,-la}",
        "~/ls",
        "!!",
        "ls $'\\x41'",
        "ls\r",
        "if ls; then id; fi",
        "ls $((1+1))",
        "git status; id",
        "",
    ];
    for c in cases {
        let a = analyze(c);
        assert!(a.simple.is_none(), "{c:?} was taken as simple: {a:?}");
        assert_eq!(cmd(c), Verdict::Ask, "{c:?}: {a:?}");
    }
}

#[test]
fn deny_sees_programs_anywhere() {
    for c in [
        "rm -rf /",
        "/bin/rm x",
        "uname && rm x",
        "ls | xargs rm",
        "sudo rm -rf /",
        "sh -c 'rm -rf /'",
        "bash -c \"ls; rm x\"",
        "ls $(rm x)",
        "ls `rm x`",
        "echo ${x:-$(rm y)}",
        "cat <(rm x)",
        "env FOO=1 rm x",
        "timeout 5 sudo rm x",
        "shutdown -h now",
        "sudo shutdown now",
    ] {
        assert_eq!(cmd(c), Verdict::Deny, "{c:?}: {:?}", analyze(c));
    }
}

#[test]
fn allow_is_exact_and_lists_order() {
    // A path to a program is not the allowed word.
    assert_eq!(cmd("/tmp/evil/ls"), Verdict::Ask);
    assert_eq!(cmd("reboot"), Verdict::Ask);
    // An allow regex only sees whole simple commands.
    assert_eq!(cmd("git status; rm x"), Verdict::Deny);
    assert_eq!(cmd("whoami"), Verdict::Ask);
}

#[test]
fn rules_match_targets_first_wins() {
    let p = policy();
    let host = |h: &str| Target {
        profile: None,
        host: h.into(),
    };
    let d = decide(&p, &host("db.EXAMPLE.com"), &Action::Command("ls".into()));
    assert_eq!(
        (d.decision, d.rule.as_deref()),
        (Verdict::Allow, Some("rule 1 (line 3)"))
    );
    let d = decide(&p, &host("other"), &Action::Command("ls".into()));
    assert_eq!(
        (d.decision, d.rule.as_deref()),
        (Verdict::Deny, Some("rule 2 (line 11)"))
    );
    assert_eq!(
        decide(&p, &host("other"), &Action::Command("id".into())).decision,
        Verdict::Allow
    );
    // Control syntax under a deny default stays deny.
    assert_eq!(
        decide(&p, &host("other"), &Action::Command("id; id".into())).decision,
        Verdict::Deny
    );
    let t = prod();
    assert_eq!(
        decide(&p, &t, &Action::FileRead("/etc/x".into())).decision,
        Verdict::Allow
    );
    assert_eq!(
        decide(&p, &t, &Action::FileWrite("/etc/x".into())).decision,
        Verdict::Ask
    );
    assert_eq!(decide(&p, &t, &Action::Connect).decision, Verdict::Ask);
    assert_eq!(
        decide(&p, &t, &Action::Forward("L:8080".into())).decision,
        Verdict::Ask
    );
}

#[test]
fn no_file_allows_everything() {
    let d = decide(
        &Policy::default(),
        &prod(),
        &Action::Command("rm -rf /".into()),
    );
    assert_eq!(d.decision, Verdict::Allow);
    assert!(d.rule.is_none());
}

#[test]
fn bad_files_name_the_line() {
    let bad = [
        (
            "[[rule]]\ntargets = [\"*\"]\ndefault = \"maybe\"\n",
            "line 3",
        ),
        ("[[rule]]\ntargets = [\"*\"]\nallwo = [\"ls\"]\n", "line 3"),
        ("[[rule]]\ntargets = []\n", "line 2"),
        ("[[rule]]\ntargets = [\"*\"]\ndeny = [\"re:(\"]\n", "line 3"),
        (
            "[[rule]]\ntargets = [\"*\"]\nallow = [\"ls -la\"]\n",
            "line 3",
        ),
        ("[[rule]]\ntargets = [\"*\"]\nconnect = 1\n", "line 3"),
        ("oops = 1\n", "line 1"),
    ];
    for (text, line) in bad {
        let e = parse(text, Path::new("p.toml")).unwrap_err();
        assert!(e.message.contains(line), "{text:?}: {e}");
    }
}

#[test]
fn loader_follows_the_file_and_keeps_the_last_good() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    let loader = Loader::new(path.clone());
    let rm = Action::Command("rm x".into());
    let verdict = |l: &Loader| decide(&l.current().policy, &prod(), &rm).decision;
    assert_eq!(verdict(&loader), Verdict::Allow);
    std::fs::write(&path, POLICY).unwrap();
    assert_eq!(verdict(&loader), Verdict::Deny);
    std::fs::write(&path, "[[rule]]\ntargets = [\"*\"]\nbogus = 1\n").unwrap();
    assert_eq!(verdict(&loader), Verdict::Deny);
    let err = loader.current().error.unwrap();
    assert!(err.message.contains("line 3"), "{err}");
    std::fs::remove_file(&path).unwrap();
    assert_eq!(verdict(&loader), Verdict::Allow);
    assert!(loader.current().error.is_none());
    // Broken before any good version: ask, never allow.
    std::fs::write(&path, "nonsense").unwrap();
    let fresh = Loader::new(path);
    assert_eq!(verdict(&fresh), Verdict::Ask);
}

fn ws() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec![" ", "\t", "  "]), 0..3)
        .prop_map(|v| v.concat())
}

fn quoted(word: &'static str) -> impl Strategy<Value = String> {
    prop::sample::select(vec![0u8, 1, 2, 3]).prop_map(move |q| match q {
        0 => word.to_string(),
        1 => format!("'{word}'"),
        2 => format!("\"{word}\""),
        _ => format!("{}'{}'", &word[..1], &word[1..]),
    })
}

proptest! {
    #[test]
    fn control_syntax_never_allows(
        a in ws(), b in ws(), c in ws(),
        w1 in quoted("ls"), w2 in quoted("id"),
        op in prop::sample::select(vec![";", "&&", "||", "|", "&", "\n", "$(", "`", ">", "<", "(", "; { "]),
    ) {
        let line = format!("{a}{w1}{b}{op}{c}{w2}");
        prop_assert_ne!(cmd(&line), Verdict::Allow, "{:?}", line);
    }

    #[test]
    fn deny_wins_in_any_quoting(a in ws(), b in ws(), w in quoted("rm"),
        op in prop::sample::select(vec!["; ", "&& ", "| ", "$(", "; sudo ", "&& sh -c "])) {
        let line = format!("ls{a}{op}{b}{w} x");
        prop_assert_eq!(cmd(&line), Verdict::Deny, "{:?}", line);
    }
}
