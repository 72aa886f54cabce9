//! Session output model throughput: how fast the daemon can ingest PTY output.
//!
//! - `ingest/screen_feed`: `Screen::feed` (escape pre-filter + vt100 parser) at 200×50 with
//!   the default scrollback, in 4 KiB chunks, in steady state (the scrollback is full).
//! - `ingest/clean_log_push_raw`: `CleanLog::push_raw` (escape stripping, `\r` collapsing,
//!   1 MiB trimming) on the same stream and chunking.
//! - `keyframe/*`: `Screen::keyframe()` on a full screen, on the normal and on the alternate
//!   screen (a full-screen program running on top of shell output).
//!
//! The stream mixes what real sessions print: coloured `ls --color` listings, progress bars
//! redrawn with `\r`, compiler-style coloured diagnostics and plain log text.
//! Run: `cargo bench --bench screen` (add `-- --quick` for a short run). Results in
//! BENCHMARKS.md.

use std::fmt::Write as _;
use std::hint::black_box;

use agentssh::screen::{CleanLog, Screen, DEFAULT_SCROLLBACK};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Chunk size the daemon reads PTY output in (and the bench feeds).
const CHUNK: usize = 4096;
/// Size of the generated stream.
const STREAM_BYTES: usize = 1 << 20;
const ROWS: u16 = 50;
const COLS: u16 = 200;

/// A deterministic xorshift generator (no rand dependency in benches).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "build", "target", "release", "src", "config", "deploy", "service", "request", "latency", "ok",
    "retry", "cache", "index", "worker", "session", "handler", "queue", "upstream",
];

fn ls_block(rng: &mut Rng, out: &mut String) {
    // `ls -l --color=always`: blue dirs, green executables, bold cyan symlinks.
    for i in 0..(8 + rng.below(16)) {
        let size = rng.below(10_000_000);
        let name = WORDS[rng.below(WORDS.len() as u64) as usize];
        let (perm, colour) = match rng.below(4) {
            0 => ("drwxr-xr-x", "\x1b[01;34m"),
            1 => ("-rwxr-xr-x", "\x1b[01;32m"),
            2 => ("lrwxrwxrwx", "\x1b[01;36m"),
            _ => ("-rw-r--r--", ""),
        };
        let _ = write!(
            out,
            "{perm} 1 deploy deploy {size:>9} Nov 25 11:{:02} ",
            i % 60
        );
        if colour.is_empty() {
            let _ = write!(out, "{name}_{i}.txt\r\n");
        } else {
            let _ = write!(out, "{colour}{name}_{i}\x1b[0m\r\n");
        }
    }
}

fn progress_block(rng: &mut Rng, out: &mut String) {
    // A progress bar redrawn in place with `\r` and an erase-line, then finished.
    let steps = 10 + rng.below(30);
    for s in 0..=steps {
        let pct = s * 100 / steps;
        let filled = (pct / 2) as usize;
        let _ = write!(
            out,
            "\r\x1b[2K\x1b[32m[{}{}]\x1b[0m {pct:>3}% {} MiB/s",
            "#".repeat(filled),
            " ".repeat(50 - filled),
            rng.below(900) + 10
        );
    }
    out.push_str("\r\n");
}

fn diagnostics_block(rng: &mut Rng, out: &mut String) {
    // cargo/gcc-style coloured diagnostics.
    let line = rng.below(900) + 1;
    let _ = write!(
        out,
        "\x1b[0m\x1b[1m\x1b[33mwarning\x1b[0m\x1b[1m: unused variable: `{}`\x1b[0m\r\n\
         \x1b[0m  \x1b[1m\x1b[38;5;12m--> \x1b[0msrc/{}.rs:{line}:9\r\n\
         \x1b[0m   \x1b[1m\x1b[38;5;12m|\x1b[0m\r\n",
        WORDS[rng.below(WORDS.len() as u64) as usize],
        WORDS[rng.below(WORDS.len() as u64) as usize],
    );
}

fn plain_block(rng: &mut Rng, out: &mut String) {
    // Log lines of varying length, some wider than the screen (they wrap).
    for _ in 0..(4 + rng.below(12)) {
        let _ = write!(out, "2026-11-25T11:{:02}:00Z INFO", rng.below(60));
        for _ in 0..(3 + rng.below(40)) {
            out.push(' ');
            out.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
        }
        out.push_str("\r\n");
    }
}

/// About `STREAM_BYTES` of mixed terminal output.
fn mixed_stream() -> Vec<u8> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = String::with_capacity(STREAM_BYTES + 4096);
    while out.len() < STREAM_BYTES {
        match rng.below(4) {
            0 => ls_block(&mut rng, &mut out),
            1 => progress_block(&mut rng, &mut out),
            2 => diagnostics_block(&mut rng, &mut out),
            _ => plain_block(&mut rng, &mut out),
        }
    }
    out.truncate(STREAM_BYTES);
    out.into_bytes()
}

/// A `top`-like full-screen frame for the alternate-screen keyframe.
fn full_screen_frame() -> Vec<u8> {
    let mut out = String::from("\x1b[?1049h\x1b[H\x1b[2J");
    let _ = write!(
        out,
        "\x1b[7mtop - 11:55:00 up 3 days,  load average: 0.52, 0.58, 0.59{}\x1b[0m\r\n",
        " ".repeat(140)
    );
    for r in 1..ROWS {
        let _ = write!(
            out,
            "\x1b[{};1H{:>7} deploy    20   0 {:>8} {:>6} S  \x1b[1;31m{:>4}.{}\x1b[0m  0.{} worker-{r}",
            r + 1,
            1000 + u32::from(r),
            u32::from(r) * 1373,
            u32::from(r) * 97,
            u32::from(r) % 13,
            r % 10,
            r % 7
        );
    }
    out.into_bytes()
}

fn ingest(c: &mut Criterion) {
    let stream = mixed_stream();
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Bytes(stream.len() as u64));

    let mut screen = Screen::new(ROWS, COLS, DEFAULT_SCROLLBACK);
    // Warm to steady state: scrollback full.
    for chunk in stream.chunks(CHUNK) {
        screen.feed(chunk);
    }
    g.bench_function("screen_feed", |b| {
        b.iter(|| {
            for chunk in stream.chunks(CHUNK) {
                screen.feed(black_box(chunk));
            }
        })
    });

    let mut log = CleanLog::new();
    for chunk in stream.chunks(CHUNK) {
        log.push_raw(chunk);
    }
    g.bench_function("clean_log_push_raw", |b| {
        b.iter(|| {
            for chunk in stream.chunks(CHUNK) {
                log.push_raw(black_box(chunk));
            }
        })
    });
    g.finish();
    black_box((screen.size(), log.end_offset()));
}

fn keyframe(c: &mut Criterion) {
    let stream = mixed_stream();
    let mut g = c.benchmark_group("keyframe");

    let mut normal = Screen::new(ROWS, COLS, DEFAULT_SCROLLBACK);
    normal.feed(&stream);
    let mut alternate = Screen::new(ROWS, COLS, DEFAULT_SCROLLBACK);
    alternate.feed(&stream);
    alternate.feed(&full_screen_frame());

    for (name, screen) in [("normal", &normal), ("alternate", &alternate)] {
        g.bench_with_input(
            BenchmarkId::new(format!("{COLS}x{ROWS}"), name),
            screen,
            |b, s| b.iter(|| black_box(s.keyframe())),
        );
    }
    g.finish();
}

criterion_group!(benches, ingest, keyframe);
criterion_main!(benches);
