//! Dashboard attention tests (issue 20): the state column, attention-first ordering, requests
//! for a human (badge, banner, one bell per request, jump, dismiss), the input notice, the
//! history pane and the take-over zoom, as pure state transitions and `TestBackend` snapshots.

use crossterm::event::KeyCode;
use serde_json::{json, Value};

use super::app::{App, Effect, Mode};
use super::attention::{HistoryRow, NoticeKind, INPUT_NOTICE_MS};
use super::tests::{b64, ctrl, key, overview, render, session, NOW};
use crate::protocol::WatchEvent;

/// A session row in `state` since `ago` ms, optionally with an open request for a human.
fn row(id: &str, state: &str, ago: u64, ask: Option<(&str, &str, u64)>) -> Value {
    let mut v = session(id, "agent");
    v["state"] = json!(state);
    v["state_since"] = json!(NOW - ago);
    if let Some((req, msg, since_ago)) = ask {
        v["needs_human"] = json!({"request": req, "message": msg, "since": NOW - since_ago});
    }
    v
}

fn app_with(rows: Value) -> (App, Vec<Effect>) {
    let mut app = App {
        now_ms: NOW,
        term_size: (80, 24),
        ..App::default()
    };
    let fx = app.on_overview(&overview(rows));
    (app, fx)
}

fn ids(app: &App) -> Vec<&str> {
    app.sessions.iter().map(|s| s.id.as_str()).collect()
}

fn four() -> Value {
    json!([
        row("s1", "prompt", 9_000, None),
        row("s2", "busy", 4_000, None),
        row("s3", "input", 2_000, None),
        row(
            "s4",
            "busy",
            8_000,
            Some(("h1", "type the sudo password", 1_000))
        ),
        row("s5", "busy", 6_000, None),
    ])
}

#[test]
fn attention_first_ordering_toggles_and_keeps_the_selection() {
    let (mut app, _) = app_with(four());
    assert_eq!(ids(&app), ["s1", "s2", "s3", "s4", "s5"], "daemon order");
    app.on_key(key(KeyCode::Down)); // s2 watched
    assert_eq!(app.on_key(key(KeyCode::Char('o'))), vec![]);
    assert!(app.attention_first);
    // Needs human, input, busy (oldest first: s5 since 6 s, s2 since 4 s), prompt.
    assert_eq!(ids(&app), ["s4", "s3", "s5", "s2", "s1"]);
    assert_eq!(app.selected_session().map(|s| s.id.as_str()), Some("s2"));
    // A state change reorders: s1 becomes busy (now the oldest busy row).
    let mut s1 = row("s1", "busy", 7_000, None);
    s1["id"] = json!("s1");
    app.on_overview(&overview(json!([
        s1,
        row("s2", "busy", 4_000, None),
        row("s3", "input", 2_000, None),
        row(
            "s4",
            "busy",
            8_000,
            Some(("h1", "type the sudo password", 1_000))
        ),
        row("s5", "busy", 6_000, None),
    ])));
    assert_eq!(ids(&app), ["s4", "s3", "s1", "s5", "s2"]);
    assert_eq!(app.selected_session().map(|s| s.id.as_str()), Some("s2"));
    app.on_key(key(KeyCode::Char('o')));
    assert_eq!(ids(&app), ["s1", "s2", "s3", "s4", "s5"], "back to by id");
    assert_eq!(app.selected_session().map(|s| s.id.as_str()), Some("s2"));
}

#[test]
fn one_bell_per_request_id() {
    let (mut app, fx) = app_with(four());
    assert_eq!(
        fx.iter().filter(|e| **e == Effect::Bell).count(),
        1,
        "the open request rings once: {fx:?}"
    );
    // The same request in later snapshots and info events: silent.
    let fx = app.on_overview(&overview(four()));
    assert!(!fx.contains(&Effect::Bell), "{fx:?}");
    let info = row(
        "s4",
        "busy",
        8_000,
        Some(("h1", "type the sudo password", 1_000)),
    );
    assert!(!app.on_watch(WatchEvent::Info(info)).contains(&Effect::Bell));
    // Resolved, then a new request on the same session: a new bell, once.
    let fx = app.on_overview(&overview(json!([row("s4", "prompt", 1, None)])));
    assert!(!fx.contains(&Effect::Bell));
    assert!(app.belled.is_empty(), "resolved requests are forgotten");
    let again = json!([row("s4", "busy", 1, Some(("h2", "again", 0)))]);
    let fx = app.on_overview(&overview(again.clone()));
    assert_eq!(fx.iter().filter(|e| **e == Effect::Bell).count(), 1);
    let fx = app.on_overview(&overview(again));
    assert!(!fx.contains(&Effect::Bell));
}

#[test]
fn jump_to_the_oldest_request_and_dismiss_it() {
    let (mut app, _) = app_with(json!([
        row("s1", "prompt", 9_000, None),
        row("s2", "busy", 9_000, Some(("h1", "newer", 1_000))),
        row("s3", "busy", 9_000, Some(("h4", "older", 5_000))),
    ]));
    assert_eq!(app.on_key(key(KeyCode::Char('d'))), vec![]);
    assert_eq!(
        app.message.as_deref(),
        Some("s1 has no open request for a human")
    );
    let fx = app.on_key(key(KeyCode::Char('g')));
    assert_eq!(fx[0], Effect::Watch(Some("s3".into())), "{fx:?}");
    assert_eq!(
        app.on_key(key(KeyCode::Char('d'))),
        vec![Effect::Dismiss("s3".into())]
    );
    let (mut none, _) = app_with(json!([row("s1", "prompt", 9_000, None)]));
    assert_eq!(none.on_key(key(KeyCode::Char('g'))), vec![]);
    assert_eq!(none.message.as_deref(), Some("no session needs a human"));
}

#[test]
fn input_notice_after_the_threshold_only() {
    let (app, _) = app_with(json!([row("s1", "input", INPUT_NOTICE_MS - 1, None)]));
    assert!(app.notices().is_empty(), "{:?}", app.notices());
    let (app, _) = app_with(json!([
        row("s1", "input", INPUT_NOTICE_MS + 5_000, None),
        row("s2", "input", INPUT_NOTICE_MS + 15_000, None),
    ]));
    let n = app.notices();
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].0, NoticeKind::Input);
    assert!(n[0].1.contains("s2 has waited for input for 45s"), "{n:?}");
}

#[test]
fn history_is_fetched_on_selection_and_state_changes_only() {
    let (mut app, fx) = app_with(four());
    assert!(fx.contains(&Effect::History("s1".into())), "{fx:?}");
    // Output alone (updated_at, bytes) does not refetch.
    let mut v = row("s1", "prompt", 9_000, None);
    v["output_bytes"] = json!(99_999);
    v["updated_at"] = json!(NOW);
    assert_eq!(app.on_watch(WatchEvent::Info(v)), vec![]);
    // A command starting does.
    let v = row("s1", "busy", 0, None);
    assert_eq!(
        app.on_watch(WatchEvent::Info(v)),
        vec![Effect::History("s1".into())]
    );
    let fx = app.on_key(key(KeyCode::Down));
    assert_eq!(
        fx,
        vec![
            Effect::Watch(Some("s2".into())),
            Effect::History("s2".into())
        ]
    );
    // A late answer for the old selection is ignored; the bounded tail of the new one kept.
    app.on_history(
        "s1",
        &json!({"commands": [{"command": "ls", "by": "agent"}]}),
    );
    assert!(app.history.is_empty());
    let many: Vec<Value> = (0..30)
        .map(|i| json!({"command": format!("echo {i}"), "by": "agent", "duration_ms": 5, "exit_status": 0}))
        .collect();
    app.on_history("s2", &json!({ "commands": many }));
    assert_eq!(app.history.len(), 20);
    assert_eq!(app.history[19].command, "echo 29", "newest last");
}

fn attention_app() -> App {
    let (mut app, _) = app_with(four());
    app.on_watch(WatchEvent::Keyframe {
        data: b64(b"$ sleep 2\r\n$ "),
        cols: 60,
        rows: 10,
    });
    app.on_history(
        "s1",
        &json!({"commands": [
            {"command": "cd /srv/app", "by": "agent", "duration_ms": 3, "exit_status": 0},
            {"command": "make test", "by": "agent", "duration_ms": 12_400, "exit_status": 2},
            {"command": "sudo systemctl restart app", "by": "human", "duration_ms": 900, "exit_status": 0},
            {"command": "sleep 2", "by": "agent", "duration_ms": null, "exit_status": null},
        ]}),
    );
    app
}

#[test]
fn snapshot_state_column_badge_banner_and_history() {
    let app = attention_app();
    let screen = render(&app, 120, 30);
    assert!(screen.contains("needs human"), "{screen}");
    assert!(
        screen.contains("s4 needs a human, waiting 1s: type the sudo password"),
        "{screen}"
    );
    assert!(screen.contains("make test"), "{screen}");
    insta::assert_snapshot!("attention_120x30", screen);
    // Colours: the badge is white on red; each state has its own colour.
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 30)).unwrap();
    term.draw(|f| super::view::draw(f, &app)).unwrap();
    let buf = term.backend().buffer().clone();
    let find = |text: &str| {
        (0..30u16)
            .flat_map(|y| (0..120u16).map(move |x| (x, y)))
            .find(|&(x, y)| {
                text.chars().enumerate().all(|(i, c)| {
                    x + (i as u16) < 120 && buf[(x + i as u16, y)].symbol() == c.to_string()
                })
            })
            .unwrap_or_else(|| panic!("{text} not drawn"))
    };
    use ratatui::style::Color;
    let badge = find("needs human");
    assert_eq!(buf[badge].bg, Color::Red);
    assert_eq!(buf[find("input ")].fg, Color::LightMagenta);
    assert_eq!(buf[find("prompt ")].fg, Color::LightGreen);
}

#[test]
fn snapshot_input_notice_at_80x24() {
    let (app, _) = app_with(json!([
        row("s1", "input", 75_000, None),
        row("s2", "busy", 1_000, None),
    ]));
    let screen = render(&app, 80, 24);
    assert!(
        screen.contains("s1 has waited for input for 1m"),
        "{screen}"
    );
    insta::assert_snapshot!("input_notice_80x24", screen);
}

#[test]
fn takeover_zooms_and_fits_the_pty_then_restores_the_agents_size() {
    let (mut app, _) = app_with(four());
    app.on_watch(WatchEvent::Keyframe {
        data: b64(b"top - 10:00:00\r\nPID USER\r\n"),
        cols: 120,
        rows: 40,
    });
    assert_eq!(
        app.on_key(key(KeyCode::Char('t'))),
        vec![
            Effect::Control(true),
            Effect::Resize {
                session: "s1".into(),
                cols: 80,
                rows: 23
            }
        ]
    );
    assert!(app.zoomed());
    app.on_watch(WatchEvent::Resized { cols: 80, rows: 23 });
    let screen = render(&app, 80, 24);
    assert!(screen.starts_with(" s1 · YOU ARE TYPING"), "{screen}");
    assert!(screen.contains("PID USER"), "{screen}");
    assert!(!screen.contains("Sessions ("), "zoomed: no panes\n{screen}");
    insta::assert_snapshot!("zoomed_80x24", screen);
    // The terminal grows: the PTY follows.
    assert_eq!(
        app.on_term_resize(100, 30),
        vec![Effect::Resize {
            session: "s1".into(),
            cols: 100,
            rows: 29
        }]
    );
    // Ctrl-] shows the dashboard again; hand-back restores 120x40 before releasing control.
    app.on_key(ctrl(']'));
    assert_eq!(app.mode, Mode::Normal);
    assert!(!app.zoomed());
    assert_eq!(
        app.on_key(key(KeyCode::Char('r'))),
        vec![
            Effect::Resize {
                session: "s1".into(),
                cols: 120,
                rows: 40
            },
            Effect::Control(false)
        ]
    );
    // The daemon reports the restored size on the watch stream.
    app.on_watch(WatchEvent::Resized {
        cols: 120,
        rows: 40,
    });
    // Quitting or moving away while holding also gives the size back.
    app.on_key(key(KeyCode::Char('t')));
    app.on_key(ctrl(']'));
    let fx = app.on_key(key(KeyCode::Char('q')));
    assert_eq!(fx.last(), Some(&Effect::Quit));
    assert!(
        matches!(
            &fx[0],
            Effect::Resize {
                cols: 120,
                rows: 40,
                ..
            }
        ),
        "{fx:?}"
    );
    app.on_key(key(KeyCode::Char('t')));
    app.on_key(ctrl(']'));
    let fx = app.on_key(key(KeyCode::Down));
    assert!(
        matches!(
            &fx[0],
            Effect::Resize {
                cols: 120,
                rows: 40,
                ..
            }
        ),
        "{fx:?}"
    );
    assert_eq!(fx[1], Effect::Watch(Some("s2".into())));
}

#[test]
fn history_rows_are_plain_data() {
    let app = attention_app();
    assert_eq!(
        app.history[3],
        HistoryRow {
            command: "sleep 2".into(),
            by: "agent".into(),
            duration_ms: None,
            exit_status: None
        }
    );
}
