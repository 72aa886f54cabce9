//! From (policy, target, action) to a decision, with the rule and the reason.
//!
//! Order for a command, within the first rule whose targets match: a `deny` entry seen
//! anywhere in the command refuses; then an `ask` entry asks; then a command with control
//! syntax gets the stricter of `ask` and the rule's default (it can never be allowed by a
//! list); then an `allow` entry allows a whole simple command; then the default applies.

use serde::Serialize;

use super::file::{Matcher, Policy, Rule, Verdict};
use super::shell::{analyze, Analysis};

/// Where an action would run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// The profile name, when the target came from one.
    pub profile: Option<String>,
    /// The host name or address.
    pub host: String,
}

/// What is about to happen on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A command line run by the remote shell.
    Command(String),
    /// A line typed into a session's PTY (by `session send`, its responses, or a detached
    /// `session exec`). Like a command, except that control keys in it (Tab, arrows,
    /// Ctrl-R, ...) make it a line whose effect cannot be known, so no allow entry matches.
    Typed(String),
    /// Reading a remote file.
    FileRead(String),
    /// Writing, editing, uploading or deleting a remote file.
    FileWrite(String),
    /// Opening a connection.
    Connect,
    /// A port forward or proxy, described.
    Forward(String),
}

/// The outcome, as `policy check` prints it and the gate will log it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// allow, ask or deny.
    pub decision: Verdict,
    /// The rule that decided (None: no policy file or no rule for this target).
    pub rule: Option<String>,
    /// Why, in one sentence.
    pub reason: String,
}

/// Shell-style glob match: `*` any run, `?` one character; everything else literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn rule_matches(rule: &Rule, target: &Target) -> bool {
    rule.targets.iter().any(|pat| {
        target
            .profile
            .as_deref()
            .is_some_and(|p| glob_match(pat, p))
            // Host names are case-insensitive.
            || glob_match(&pat.to_ascii_lowercase(), &target.host.to_ascii_lowercase())
    })
}

/// The first rule whose targets match `target`.
pub fn find_rule<'a>(policy: &'a Policy, target: &Target) -> Option<&'a Rule> {
    policy.rules.iter().find(|r| rule_matches(r, target))
}

/// Decides `action` on `target` under `policy`.
pub fn decide(policy: &Policy, target: &Target, action: &Action) -> Decision {
    if policy.source.is_none() {
        return Decision {
            decision: Verdict::Allow,
            rule: None,
            reason: "no policy file: everything is allowed".into(),
        };
    }
    let Some(rule) = find_rule(policy, target) else {
        return Decision {
            decision: Verdict::Allow,
            rule: None,
            reason: "no rule's targets match this target: allowed".into(),
        };
    };
    let by_rule = |decision: Verdict, reason: String| Decision {
        decision,
        rule: Some(rule.label()),
        reason,
    };
    let scalar = |v: Verdict, what: &str, key: &str| {
        let how = if v == rule.default {
            "the default"
        } else {
            key
        };
        by_rule(v, format!("{what}: {how} is {}", v.as_str()))
    };
    match action {
        Action::Connect => scalar(rule.connect, "connect", "connect"),
        Action::FileRead(p) => scalar(rule.files_read, &format!("read {p}"), "files_read"),
        Action::FileWrite(p) => scalar(rule.files_write, &format!("write {p}"), "files_write"),
        Action::Forward(d) => scalar(rule.forward, &format!("forward {d}"), "forward"),
        Action::Command(cmd) => {
            let (decision, reason) = command(rule, cmd, false);
            by_rule(decision, reason)
        }
        Action::Typed(line) => {
            let (decision, reason) = command(rule, line, true);
            by_rule(decision, reason)
        }
    }
}

/// Whether a `deny`/`ask` entry matches anything visible in the command.
fn seen(m: &Matcher, cmd: &str, a: &Analysis) -> bool {
    match m {
        Matcher::Program(p) => {
            let base = super::shell::basename(p);
            a.programs.iter().any(|prog| prog == base)
        }
        Matcher::Regex(r) => r.is_match(cmd) || a.segments.iter().any(|s| r.is_match(s)),
        Matcher::Exact(s) => s == cmd.trim(),
    }
}

fn command(rule: &Rule, cmd: &str, typed: bool) -> (Verdict, String) {
    let mut a = analyze(cmd);
    if typed && cmd.chars().any(|c| c.is_control() && c != '\t') {
        a.simple = None;
        a.reasons
            .push("control keys (arrows, Ctrl-…) whose effect on the line cannot be known".into());
    } else if typed && cmd.contains('\t') {
        a.simple = None;
        a.reasons
            .push("a Tab, which completes the line in ways that cannot be known".into());
    }
    if let Some(m) = rule.deny.iter().find(|m| seen(m, cmd, &a)) {
        return (Verdict::Deny, format!("matches deny `{}`", m.describe()));
    }
    if let Some(m) = rule.ask.iter().find(|m| seen(m, cmd, &a)) {
        return (Verdict::Ask, format!("matches ask `{}`", m.describe()));
    }
    // An exact entry names the whole line a human approved, control syntax and all.
    if let Some(m) = rule
        .allow
        .iter()
        .find(|m| matches!(m, Matcher::Exact(s) if s == cmd.trim()))
    {
        return (Verdict::Allow, format!("matches allow `{}`", m.describe()));
    }
    let Some(words) = &a.simple else {
        let v = Verdict::Ask.stricter(rule.default);
        return (
            v,
            format!(
                "not a whole simple command ({}), so no allow entry can match",
                a.reasons.join(", ")
            ),
        );
    };
    let program = words.first().map(String::as_str).unwrap_or("");
    let allowed = rule.allow.iter().find(|m| match m {
        // Exact: `allow = ["ls"]` must not allow `/tmp/evil/ls`.
        Matcher::Program(p) => p == program,
        Matcher::Regex(r) => r.is_match(cmd),
        Matcher::Exact(s) => s == cmd.trim(),
    });
    if let Some(m) = allowed {
        return (Verdict::Allow, format!("matches allow `{}`", m.describe()));
    }
    (
        rule.default,
        format!(
            "no list names `{program}`: the default is {}",
            rule.default.as_str()
        ),
    )
}
