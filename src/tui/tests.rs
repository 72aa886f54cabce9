//! Dashboard tests: pure state transitions and `TestBackend` snapshots of every pane.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use serde_json::json;

use super::app::{App, Effect, Focus, Mode, Pending};
use super::view;
use crate::protocol::{ActivityEntry, WatchEvent};

pub(super) const NOW: u64 = 1_700_000_100_000;

pub(super) fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

pub(super) fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

pub(super) fn overview(sessions: serde_json::Value) -> serde_json::Value {
    json!({
        "pid": 4242,
        "session_list": sessions,
        "connection_list": [{"id":"c1","target":"deploy@10.0.0.5:22","channels_in_use":2,"age_ms":65000,"healthy":true}],
        "proxy_list": [{"id":"p1","kind":"socks5","local":"127.0.0.1:1080","remote":"*","active_clients":1,"bytes_in":2048,"bytes_out":1024}],
    })
}

pub(super) fn session(id: &str, controller: &str) -> serde_json::Value {
    json!({"id": id, "name": null, "username": "deploy", "host": "10.0.0.5", "port": 22,
           "status": "running", "controller": controller, "output_bytes": 5120,
           "updated_at": NOW - 3000, "last_input": "make -j4", "state": "prompt",
           "state_since": NOW - 5000, "last_exit_status": 0, "needs_human": null,
           "cols": 60, "rows": 10})
}

pub(super) fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn app_with_sessions() -> App {
    let mut app = App {
        now_ms: NOW,
        ..App::default()
    };
    let fx = app.on_overview(&overview(json!([
        session("s1", "agent"),
        session("s2", "agent")
    ])));
    assert_eq!(
        fx,
        vec![
            Effect::Watch(Some("s1".into())),
            Effect::History("s1".into())
        ]
    );
    app
}

pub(super) fn render(app: &App, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| view::draw(f, app)).unwrap();
    let buf = term.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        for x in 0..w {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

#[test]
fn selecting_a_session_watches_it() {
    let mut app = app_with_sessions();
    assert_eq!(
        app.on_key(key(KeyCode::Down)),
        vec![
            Effect::Watch(Some("s2".into())),
            Effect::History("s2".into())
        ]
    );
    assert_eq!(
        app.on_key(key(KeyCode::Down)),
        vec![],
        "stays on the last row"
    );
    assert_eq!(
        app.on_key(key(KeyCode::Char('k'))),
        vec![
            Effect::Watch(Some("s1".into())),
            Effect::History("s1".into())
        ]
    );
}

#[test]
fn takeover_typing_escape_and_hand_back() {
    let mut app = app_with_sessions();
    assert_eq!(
        app.on_key(key(KeyCode::Char('t'))),
        vec![Effect::Control(true)]
    );
    assert_eq!(app.mode, Mode::Control);
    assert!(app.holding);
    // Keys now go to the PTY, including q and Ctrl-C.
    assert_eq!(
        app.on_key(key(KeyCode::Char('q'))),
        vec![Effect::Input(b"q".to_vec())]
    );
    assert_eq!(app.on_key(ctrl('c')), vec![Effect::Input(vec![3])]);
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        vec![Effect::Input(b"\r".to_vec())]
    );
    // Ctrl-] returns to the dashboard, still holding control.
    assert_eq!(app.on_key(ctrl(']')), vec![]);
    assert_eq!(app.mode, Mode::Normal);
    assert!(app.holding);
    assert_eq!(
        app.on_key(key(KeyCode::Char('r'))),
        vec![Effect::Control(false)]
    );
    assert!(!app.holding);
}

#[test]
fn moving_away_drops_control_with_the_stream() {
    let mut app = app_with_sessions();
    app.on_key(key(KeyCode::Char('t')));
    app.on_key(ctrl(']'));
    assert_eq!(
        app.on_key(key(KeyCode::Down)),
        vec![
            Effect::Watch(Some("s2".into())),
            Effect::History("s2".into())
        ]
    );
    assert!(
        !app.holding,
        "a new stream holds nothing; the daemon released the old one"
    );
}

#[test]
fn destructive_actions_ask_first() {
    let mut app = app_with_sessions();
    assert_eq!(app.on_key(key(KeyCode::Char('x'))), vec![]);
    assert_eq!(app.mode, Mode::Confirm(Pending::CloseSession("s1".into())));
    assert_eq!(
        app.on_key(key(KeyCode::Char('n'))),
        vec![],
        "anything but y cancels"
    );
    app.on_key(key(KeyCode::Char('i')));
    assert_eq!(
        app.on_key(key(KeyCode::Char('y'))),
        vec![Effect::Interrupt("s1".into())]
    );
    app.focus = Focus::Proxies;
    app.on_key(key(KeyCode::Char('x')));
    assert_eq!(
        app.on_key(key(KeyCode::Char('y'))),
        vec![Effect::CloseProxy("p1".into())]
    );
}

#[test]
fn new_session_prompt_and_filter() {
    let mut app = app_with_sessions();
    app.on_key(key(KeyCode::Char('n')));
    for c in "prod".chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        vec![Effect::Connect("prod".into())]
    );
    for (i, cmd) in ["exec uptime", "session send make"].iter().enumerate() {
        app.on_activity(ActivityEntry {
            time_ms: NOW - 1000 * i as u64,
            client: "cli:1".into(),
            target: Some("deploy@10.0.0.5:22".into()),
            command: cmd.to_string(),
            duration_ms: 12,
            outcome: "ok".into(),
        });
    }
    app.on_key(key(KeyCode::Char('/')));
    for c in "make".chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.filtered_activity().len(), 1);
    assert_eq!(app.on_key(key(KeyCode::Char('q'))), vec![Effect::Quit]);
}

#[test]
fn snapshot_empty_daemon_shows_how_to_start() {
    let mut app = App {
        now_ms: NOW,
        ..App::default()
    };
    app.on_overview(
        &json!({"pid": 1, "session_list": [], "connection_list": [], "proxy_list": []}),
    );
    let screen = render(&app, 80, 24);
    assert!(screen.contains("agentssh connect -p PROFILE"), "{screen}");
    insta::assert_snapshot!("empty_80x24", screen);
}

#[test]
fn snapshot_coloured_session_and_panes() {
    let mut app = app_with_sessions();
    app.on_watch(WatchEvent::Keyframe {
        data: b64(b"\x1b[1;31mred\x1b[0m \x1b[32mgreen\x1b[0m\r\n$ make\r\nok\r\n"),
        cols: 60,
        rows: 10,
    });
    app.on_watch(WatchEvent::Output { data: b64(b"$ ") });
    let screen = render(&app, 120, 30);
    assert!(screen.contains("red green"), "{screen}");
    insta::assert_snapshot!("sessions_120x30", screen);
    // The colour reaches the cell, not the text.
    let mut term = Terminal::new(TestBackend::new(120, 30)).unwrap();
    term.draw(|f| view::draw(f, &app)).unwrap();
    let buf = term.backend().buffer().clone();
    let red = (0..120u16)
        .flat_map(|x| (0..30u16).map(move |y| (x, y)))
        .find(|&(x, y)| {
            buf[(x, y)].symbol() == "r"
                && buf[(x + 1, y)].symbol() == "e"
                && buf[(x + 2, y)].symbol() == "d"
        })
        .expect("red text drawn");
    assert_eq!(
        buf[red].fg,
        ratatui::style::Color::Indexed(1),
        "ANSI red (SGR 31) is palette index 1"
    );
}

#[test]
fn snapshot_full_screen_program_and_takeover_banner() {
    let mut app = app_with_sessions();
    let mut frame = b"\x1b[?1049h\x1b[H\x1b[2J".to_vec();
    frame.extend_from_slice(b"top - 10:00:00 up 1 day\r\nTasks: 100 total\r\n\r\n  PID USER      %CPU COMMAND\r\n    1 root       0.0 init");
    app.on_watch(WatchEvent::Keyframe {
        data: b64(&frame),
        cols: 60,
        rows: 12,
    });
    app.on_key(key(KeyCode::Char('t')));
    let screen = render(&app, 100, 30);
    assert!(screen.contains("YOU ARE TYPING"), "{screen}");
    assert!(screen.contains("PID USER"), "{screen}");
    insta::assert_snapshot!("takeover_100x30", screen);
}

#[test]
fn hostile_output_renders_as_cells_only() {
    let mut app = app_with_sessions();
    let hostile = b"\x1b]52;c;ZXZpbA==\x07\x1b]0;pwned title\x07\x1b[999999999;9999999Hsafe\x1bP+q\x1b\\done\r\n";
    app.on_watch(WatchEvent::Keyframe {
        data: b64(b""),
        cols: 60,
        rows: 10,
    });
    app.on_watch(WatchEvent::Output { data: b64(hostile) });
    let screen = render(&app, 100, 30);
    assert!(
        !screen.contains("ZXZpbA"),
        "clipboard payload must not be drawn"
    );
    assert!(!screen.contains('\u{1b}'), "no escape byte reaches a cell");
    assert!(screen.contains("done"));
}

#[test]
fn small_and_large_terminals_render() {
    let app = app_with_sessions();
    for (w, h) in [(80, 24), (250, 70), (20, 5)] {
        let s = render(&app, w, h);
        assert_eq!(s.lines().count(), usize::from(h));
    }
    insta::assert_snapshot!("sessions_80x24", render(&app, 80, 24));
}

fn closed(id: &str, created_at: u64) -> serde_json::Value {
    json!({"session_id": id, "name": "old", "created_at": created_at, "bytes": 2048,
           "path": format!("/state/recordings/{created_at}-{id}-old.cast"), "live": false})
}

fn recording() -> crate::cast::Cast {
    use crate::cast::{Cast, CastEvent, Header, Kind};
    let out = |time, s: &str| CastEvent {
        time,
        kind: Kind::Output(s.into()),
    };
    Cast {
        header: Header {
            version: 2,
            width: 40,
            height: 6,
            timestamp: 0,
            title: None,
            idle_time_limit: None,
        },
        events: vec![
            out(0.5, "$ echo first\r\nfirst\r\n"),
            out(60.0, "\x1b[H\x1b[2J$ echo second\r\nsecond\r\n"),
        ],
    }
}

#[test]
fn closed_sessions_stay_listed_and_replay_in_the_screen_pane() {
    let mut app = App {
        now_ms: NOW,
        ..App::default()
    };
    let mut v = overview(json!([session("s1", "agent")]));
    v["closed_sessions"] = json!([closed("s7", NOW - 60_000)]);
    assert_eq!(
        app.on_overview(&v),
        vec![
            Effect::Watch(Some("s1".into())),
            Effect::History("s1".into())
        ]
    );
    assert_eq!(app.sessions.len(), 2);
    assert!(app.sessions[1].archived() && !app.sessions[0].archived());
    // Selecting the closed one stops watching: nothing live to watch; x and i do nothing.
    assert_eq!(app.on_key(key(KeyCode::Down)), vec![Effect::Watch(None)]);
    app.on_key(key(KeyCode::Char('x')));
    assert_eq!(
        app.mode,
        Mode::Normal,
        "a closed session cannot be closed again"
    );
    assert_eq!(
        app.on_key(key(KeyCode::Char('p'))),
        vec![Effect::Replay {
            session: "s7".into(),
            path: Some(format!("/state/recordings/{}-s7-old.cast", NOW - 60_000)),
        }]
    );
    // The runtime loads it; it plays from the start with the player's keys.
    app.start_replay(
        "s7".into(),
        super::replay::Player::new(recording(), 1.0, Some(2.0)),
    );
    assert_eq!(app.mode, Mode::Replay);
    app.tick_replay(std::time::Duration::from_secs(1));
    let screen = render(&app, 100, 24);
    assert!(
        screen.contains("first") && !screen.contains("second"),
        "{screen}"
    );
    assert!(screen.contains("REPLAY"), "{screen}");
    insta::assert_snapshot!("replay_100x24", screen);
    // Idle gaps are cut to 2 s in the dashboard; → seeks on.
    app.on_key(key(KeyCode::Right));
    let screen = render(&app, 100, 24);
    assert!(
        screen.contains("second") && !screen.contains("first"),
        "{screen}"
    );
    // q leaves the replay, not the dashboard.
    assert_eq!(app.on_key(key(KeyCode::Char('q'))), vec![]);
    assert_eq!(app.mode, Mode::Normal);
    assert!(app.replay.is_none());
    assert_eq!(app.on_key(key(KeyCode::Char('q'))), vec![Effect::Quit]);
}

#[test]
fn a_closed_session_still_in_the_registry_is_listed_once() {
    let mut app = App::default();
    let mut live = session("s1", "agent");
    live["created_at"] = json!(1000);
    live["status"] = json!("closed");
    let mut v = overview(json!([live]));
    v["closed_sessions"] = json!([closed("s1", 1000), closed("s1", 500)]);
    app.on_overview(&v);
    // The same session (id and start) once; an older s1 (an earlier daemon's) kept.
    assert_eq!(app.sessions.len(), 2, "{:?}", app.sessions);
    assert_eq!(app.sessions[1].created_at, 500);
}

#[test]
fn a_watched_session_that_closes_is_not_followed_into_its_recording_row() {
    let mut app = app_with_sessions();
    // s1 (watched, first row) closes; its recording row is listed after the live s2.
    let mut v = overview(json!([session("s2", "agent")]));
    v["closed_sessions"] = json!([closed("s1", NOW - 1000)]);
    assert_eq!(
        app.on_overview(&v),
        vec![
            Effect::Watch(Some("s2".into())),
            Effect::History("s2".into())
        ]
    );
    assert_eq!(app.selected_session().unwrap().id, "s2");
}
