//! Approvals pane tests (issue 16): bells for new requests, the y/a/n keys and the deny
//! reason prompt as pure state transitions, and `TestBackend` snapshots of the pane.

use crossterm::event::KeyCode;
use serde_json::{json, Value};

use super::app::{App, Effect, Focus, Mode};
use super::tests::{key, overview, render, session, NOW};

/// A pending approval row as the daemon status carries it.
fn approval(id: &str, command: &str, waiting_ms: u64) -> Value {
    json!({"id": id, "action": "exec", "target": "t: agentssh-test@127.0.0.1:2222",
           "profile": "t", "command": command, "client": "cli:4711",
           "rule": "rule 1 (t)", "reason": "not in the rule's allow list",
           "asked_ms": NOW - waiting_ms, "waiting_ms": waiting_ms, "state": "pending",
           "waited_on": true})
}

fn status(approvals: Value, policy_error: Option<&str>) -> Value {
    let mut v = overview(json!([session("s1", "agent")]));
    v["approvals"] = approvals;
    v["policy_error"] = json!(policy_error);
    v
}

fn bells(fx: &[Effect]) -> usize {
    fx.iter().filter(|e| **e == Effect::Bell).count()
}

fn app_with(approvals: Value) -> (App, Vec<Effect>) {
    let mut app = App {
        now_ms: NOW,
        term_size: (120, 30),
        ..App::default()
    };
    let fx = app.on_overview(&status(approvals, None));
    (app, fx)
}

fn two() -> Value {
    json!([
        approval("a1", "uname; touch /tmp/x/a", 12_000),
        approval("a2", "ls $(touch /tmp/x/b)", 3_000)
    ])
}

fn decide(id: &str, approve: bool, reason: Option<&str>, add_rule: bool) -> Effect {
    Effect::Decide {
        id: id.into(),
        approve,
        reason: reason.map(String::from),
        add_rule,
    }
}

#[test]
fn one_bell_per_new_approval_and_none_for_known_ones() {
    let (mut app, fx) = app_with(two());
    assert_eq!(bells(&fx), 2, "{fx:?}");
    assert_eq!(app.approvals.pending.len(), 2);
    // The same requests again: no bell.
    assert_eq!(bells(&app.on_overview(&status(two(), None))), 0);
    // One more: one bell.
    let mut three = two();
    three
        .as_array_mut()
        .unwrap()
        .push(approval("a3", "uname -r; true", 0));
    assert_eq!(bells(&app.on_overview(&status(three, None))), 1);
    // Decided ones leave; an empty queue rings nothing and hides the banner.
    assert_eq!(bells(&app.on_overview(&status(json!([]), None))), 0);
    assert!(app.approvals.banner().is_none());
}

#[test]
fn y_and_a_answer_the_oldest_and_n_asks_for_a_reason() {
    let (mut app, _) = app_with(two());
    assert_eq!(
        app.approvals.banner().unwrap(),
        "2 approvals waiting — y approve, a approve+allow, n deny (a1; Tab to the pane, ↑↓ to choose)"
    );
    assert_eq!(
        app.on_key(key(KeyCode::Char('y'))),
        vec![decide("a1", true, None, false)]
    );
    assert_eq!(
        app.on_key(key(KeyCode::Char('a'))),
        vec![decide("a1", true, None, true)]
    );
    // n opens the reason prompt (not the new-session prompt) while approvals are pending.
    assert_eq!(app.on_key(key(KeyCode::Char('n'))), vec![]);
    assert_eq!(app.mode, Mode::DenyReason("a1".into(), String::new()));
    for c in "not now".chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
    app.on_key(key(KeyCode::Backspace));
    app.on_key(key(KeyCode::Char('w')));
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        vec![decide("a1", false, Some("not now"), false)]
    );
    assert_eq!(app.mode, Mode::Normal);
    // An empty reason denies without one; Esc cancels without an effect.
    app.on_key(key(KeyCode::Char('n')));
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        vec![decide("a1", false, None, false)]
    );
    app.on_key(key(KeyCode::Char('n')));
    app.on_key(key(KeyCode::Char('x')));
    assert_eq!(app.on_key(key(KeyCode::Esc)), vec![]);
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(app.message.as_deref(), Some("deny cancelled"));
}

#[test]
fn the_pane_selects_another_request_and_keys_return_when_the_queue_empties() {
    let (mut app, _) = app_with(two());
    // Tab reaches the Approvals pane after the activity pane.
    for _ in 0..4 {
        app.on_key(key(KeyCode::Tab));
    }
    assert_eq!(app.focus, Focus::Approvals);
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Down));
    assert_eq!(
        app.on_key(key(KeyCode::Char('y'))),
        vec![decide("a2", true, None, false)]
    );
    // The selection follows its request when an older one leaves.
    let only_a2 = json!([approval("a2", "ls $(touch /tmp/x/b)", 4_000)]);
    app.on_overview(&status(only_a2, None));
    assert_eq!(app.approvals.selected().unwrap().id, "a2");
    // With nothing pending the pane leaves the Tab cycle and y/a/n are theirs again.
    app.on_overview(&status(json!([]), None));
    assert_eq!(app.focus, Focus::Sessions);
    assert_eq!(app.on_key(key(KeyCode::Char('y'))), vec![]);
    app.on_key(key(KeyCode::Char('n')));
    assert_eq!(app.mode, Mode::NewSession(String::new()));
    for _ in 0..4 {
        app.on_key(key(KeyCode::Tab));
    }
    assert_eq!(app.focus, Focus::Sessions, "no Approvals pane to Tab to");
}

#[test]
fn waits_count_on_from_the_status() {
    let (mut app, _) = app_with(two());
    let a1 = app.approvals.pending[0].clone();
    assert_eq!(app.approvals.waited_ms(&a1, NOW), 12_000);
    app.now_ms = NOW + 50_000;
    assert_eq!(app.approvals.waited_ms(&a1, app.now_ms), 62_000);
    assert!(
        render(&app, 120, 30).contains("a1   1m"),
        "{}",
        render(&app, 120, 30)
    );
}

#[test]
fn approvals_pane_snapshot() {
    let (mut app, _) = app_with(two());
    app.on_overview(&status(two(), Some("line 3: unknown key `alow`")));
    let screen = render(&app, 120, 30);
    assert!(screen.contains("Approvals (2)"), "{screen}");
    assert!(screen.contains("policy.toml is broken"), "{screen}");
    insta::assert_snapshot!("approvals_120x30", screen);
    app.on_key(key(KeyCode::Char('n')));
    for c in "use the staging host".chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
    insta::assert_snapshot!("deny_reason_100x24", render(&app, 100, 24));
}
