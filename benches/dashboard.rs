//! Dashboard frame cost at 200×50 (ratatui `TestBackend`, so no terminal I/O is timed).
//!
//! The `App` holds six sessions (in mixed states, one needing a human: banner and input
//! notice drawn), a full history pane, a pool connection, a proxy, a full activity pane and a
//! watched 120×40 session screen that is being flooded with output.
//!
//! - `dashboard/frame_200x50`: one `Terminal::draw(view::draw)` with the watched screen
//!   changing between frames (a 4 KiB flood chunk is fed, untimed, before every frame).
//!   Budget: ≤ 2 ms.
//! - `dashboard/frame_200x50_no_screen`: the same frame with no watched screen (the session,
//!   connection, proxy and activity panes only).
//! - `dashboard/feed4k`: `on_watch(Output)` of one 4 KiB flood chunk (base64 decode, escape
//!   filter, vt100), no drawing.
//! - `dashboard/feed4k_and_frame`: feed 4 KiB and draw, both timed: the cost of one frame
//!   during a flood.
//! - `dashboard/byte_to_frame`: latency from a small chunk arriving (a 9-byte echo as a
//!   `WatchEvent::Output`) to it being drawn: feed + draw. Budget: ≤ 20 ms.
//!
//! Run: `cargo bench --bench dashboard` (add `-- --quick` for a short run). Results in
//! BENCHMARKS.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use agentssh::protocol::{ActivityEntry, WatchEvent};
use agentssh::tui::app::App;
use agentssh::tui::view;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use serde_json::json;

const NOW: u64 = 1_700_000_100_000;
const WIDTH: u16 = 200;
const HEIGHT: u16 = 50;
const CHUNK: usize = 4096;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn overview() -> serde_json::Value {
    let sessions: Vec<_> = (1..=6)
        .map(|i| {
            let state = ["prompt", "busy", "input"][(i % 3) as usize];
            json!({"id": format!("s{i}"), "name": if i % 2 == 0 { json!(format!("build-{i}")) } else { json!(null) },
                   "username": "deploy", "host": format!("10.0.0.{i}"), "port": 22,
                   "status": "running", "controller": if i == 3 { "human" } else { "agent" },
                   "output_bytes": 5120 * i, "updated_at": NOW - 3000 * i,
                   "last_input": "cargo build --release",
                   "state": state, "state_since": NOW - 40_000 * i,
                   "last_exit_status": 0, "shell_integration": true, "cols": 120, "rows": 40,
                   "needs_human": if i == 5 { json!({"request": "h1", "message": "type the sudo password", "since": NOW - 9000}) } else { json!(null) }})
        })
        .collect();
    json!({
        "pid": 4242,
        "session_list": sessions,
        "connection_list": [{"id":"c1","target":"deploy@10.0.0.5:22","channels_in_use":2,"age_ms":65000,"healthy":true}],
        "proxy_list": [{"id":"p1","kind":"socks5","local":"127.0.0.1:1080","remote":"*","active_clients":1,"bytes_in":2048,"bytes_out":1024}],
    })
}

/// Flood output as the daemon would stream it: 4 KiB chunks of coloured build/log lines,
/// already base64-encoded (decoding is part of `on_watch`).
fn flood_chunks() -> Vec<String> {
    let mut text = Vec::new();
    let mut i = 0u32;
    while text.len() < 64 * CHUNK {
        text.extend_from_slice(
            format!(
                "\x1b[1;32m   Compiling\x1b[0m crate-{i} v0.{}.{} (/src/crate-{i})  \x1b[33mwarn\x1b[0m line {i} of the flood, some padding text here\r\n",
                i % 17,
                i % 5
            )
            .as_bytes(),
        );
        i += 1;
    }
    text.chunks(CHUNK).map(b64).collect()
}

fn app() -> App {
    let mut app = App {
        now_ms: NOW,
        ..App::default()
    };
    let _ = app.on_overview(&overview());
    // The watched session's history pane is full (attention parts are in every frame).
    let commands: Vec<_> = (0..20)
        .map(|i| json!({"command": format!("make -j4 target-{i}"), "by": if i % 4 == 0 { "human" } else { "agent" },
                        "duration_ms": 1200 * i, "exit_status": i % 3}))
        .collect();
    app.on_history("s1", &json!({ "commands": commands }));
    for i in 0..40u64 {
        app.on_activity(ActivityEntry {
            time_ms: NOW - 1000 * i,
            client: format!("cli:{}", 1000 + i),
            target: Some(format!("s{}", 1 + i % 6)),
            command: format!("session send --input 'make -j4 target-{i}'"),
            duration_ms: 12 + i,
            outcome: if i % 9 == 0 { "timeout" } else { "ok" }.into(),
        });
    }
    app.on_watch(WatchEvent::Keyframe {
        data: b64(b"\x1b[H\x1b[2Jdeploy@host:~$ "),
        cols: 120,
        rows: 40,
    });
    app
}

fn terminal() -> Terminal<TestBackend> {
    Terminal::new(TestBackend::new(WIDTH, HEIGHT)).expect("TestBackend terminal")
}

fn frames(c: &mut Criterion) {
    let chunks = flood_chunks();
    let mut g = c.benchmark_group("dashboard");

    // Draw only; the screen changes (untimed feed) between frames.
    {
        let mut app = app();
        let mut term = terminal();
        let mut next = 0usize;
        g.bench_function("frame_200x50", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    app.on_watch(WatchEvent::Output {
                        data: chunks[next % chunks.len()].clone(),
                    });
                    next += 1;
                    let t = Instant::now();
                    term.draw(|f| view::draw(f, &app)).expect("draw");
                    total += t.elapsed();
                }
                total
            })
        });
    }

    // The same frame without a watched screen: what the panes around it cost.
    {
        let mut app = app();
        app.screen = None;
        let mut term = terminal();
        g.bench_function("frame_200x50_no_screen", |b| {
            b.iter(|| {
                term.draw(|f| view::draw(f, &app))
                    .map(|_| ())
                    .expect("draw")
            })
        });
    }

    // Feed 4 KiB of flood only (base64 decode + escape filter + vt100).
    {
        let mut app = app();
        let mut next = 0usize;
        g.bench_function("feed4k", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let data = chunks[next % chunks.len()].clone();
                    next += 1;
                    let t = Instant::now();
                    app.on_watch(WatchEvent::Output { data });
                    total += t.elapsed();
                }
                total
            })
        });
    }

    // Feed 4 KiB of flood and draw, both timed.
    {
        let mut app = app();
        let mut term = terminal();
        let mut next = 0usize;
        g.bench_function("feed4k_and_frame", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let data = chunks[next % chunks.len()].clone();
                    next += 1;
                    let t = Instant::now();
                    app.on_watch(WatchEvent::Output { data });
                    term.draw(|f| view::draw(f, &app)).expect("draw");
                    total += t.elapsed();
                }
                total
            })
        });
    }

    // A small chunk (an echoed command) arriving on a screen already full of flood output.
    {
        let mut app = app();
        let mut term = terminal();
        for c in &chunks {
            app.on_watch(WatchEvent::Output { data: c.clone() });
        }
        term.draw(|f| view::draw(f, &app)).expect("draw");
        let echo = b64(b"echo hi\r\n");
        g.bench_function("byte_to_frame", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let data = echo.clone();
                    let t = Instant::now();
                    app.on_watch(WatchEvent::Output { data });
                    term.draw(|f| view::draw(f, &app)).expect("draw");
                    total += t.elapsed();
                }
                black_box(term.backend().buffer().area);
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
