#!/usr/bin/env bash
# In-process benchmarks (criterion): benches/screen.rs and benches/dashboard.rs.
#
#   bash bench/criterion.sh            quick runs (`-- --quick`, about a minute once built)
#   BENCH_FULL=1 bash bench/criterion.sh   full criterion sampling
#
# Rewrites the `criterion` section of BENCHMARKS.md with the medians criterion saved under
# <target dir>/criterion/. Needs no sshd and no root. bench/run.sh calls it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
MD="${BENCH_MD:-$ROOT/BENCHMARKS.md}"

log() { printf 'bench: %s\n' "$*" >&2; }

args=()
mode="quick (\`-- --quick\`)"
if [[ ${BENCH_FULL:-0} == 0 ]]; then
    args=(--quick)
else
    mode="full sampling"
fi

log "cargo bench --bench screen --bench dashboard -- ${args[*]}"
cargo bench --bench screen --bench dashboard -- "${args[@]}" >&2

TARGET_DIR="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"

section="$(
    CRIT="$TARGET_DIR/criterion" MODE="$mode" python3 - <<'PY'
import json, os

crit = os.environ["CRIT"]

def est(bench_id):
    d = os.path.join(crit, bench_id, "new")
    median_ns = json.load(open(os.path.join(d, "estimates.json")))["median"]["point_estimate"]
    tp = json.load(open(os.path.join(d, "benchmark.json"))).get("throughput") or {}
    return median_ns, tp.get("Bytes")

def dur(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e3:.1f} µs"

def thr(ns, nbytes):
    return f"{nbytes / (ns / 1e9) / (1 << 20):.0f} MiB/s"

rows = []
def row(what, bench_id, budget_ms=None, budget_text="—"):
    ns, nbytes = est(bench_id)
    value = f"{thr(ns, nbytes)} ({dur(ns)} per MiB)" if nbytes else dur(ns)
    if budget_ms is None:
        met = "—"
    else:
        met = "yes" if ns / 1e6 <= budget_ms else "**NO (missed)**"
    rows.append((what, f"`{bench_id}`", value, budget_text, met))
    return ns

feed = row("vt100 `Screen::feed` ingest, 200×50, 1000-line scrollback, 4 KiB chunks",
           "ingest/screen_feed")
clean = row("`CleanLog::push_raw` ingest, 4 KiB chunks", "ingest/clean_log_push_raw")
kf = row("keyframe of a full 200×50 screen", "keyframe/200x50/normal")
kfa = row("keyframe with a full-screen program (alternate screen) over shell output",
          "keyframe/200x50/alternate")
frame = row("dashboard frame at 200×50 (`view::draw` on `TestBackend`), screen changing "
            "between frames", "dashboard/frame_200x50", 2.0, "≤ 2 ms")
bare = row("the same frame without a watched screen (side panes and activity only)",
           "dashboard/frame_200x50_no_screen")
feed4k = row("dashboard: `on_watch(Output)` of a 4 KiB flood chunk (base64 + filter + vt100)",
             "dashboard/feed4k")
f4k = row("dashboard: feed 4 KiB of flood + frame, both timed", "dashboard/feed4k_and_frame")
b2f = row("byte→drawn latency: `on_watch(Output)` of a 9-byte echo + frame",
          "dashboard/byte_to_frame", 20.0, "≤ 20 ms")

lines = [
    "## In-process benchmarks (`bench/criterion.sh`)",
    "",
    f"criterion, {os.environ['MODE']}, medians. Stream: 1 MiB of mixed terminal output "
    "(coloured `ls -l`, `\\r` progress bars, compiler diagnostics, log lines). "
    "Dashboard: 6 sessions, a connection, a proxy, 40 activity entries and a watched "
    "120×40 session screen.",
    "",
    "| what | bench | median | budget | met? |",
    "|---|---|---|---|---|",
]
lines += ["| " + " | ".join(r) + " |" for r in rows]
lines += [
    "",
    "Where the time goes:",
    "",
    f"- A dashboard frame takes {dur(frame)} with the watched session screen and "
    f"{dur(bare)} without it, so drawing the 120×40 session screen (tui-term copying the "
    f"vt100 cells into ratatui's buffer, then ratatui's diff) is about {dur(max(frame - bare, 0))}. "
    f"Ingesting a 4 KiB flood chunk costs {dur(feed4k)}, so during a flood a frame plus one "
    f"chunk is ≈ {dur(frame + feed4k)} (measured together: {dur(f4k)}; separate criterion "
    "runs, so they do not add up exactly). A small echo is on screen "
    f"{dur(b2f)} after it arrives, against a 20 ms budget.",
    f"- The vt100 model is the ingest bottleneck: {thr(feed, 1 << 20)} against "
    f"{thr(clean, 1 << 20)} for the clean log, so one session's 1 GiB flood costs about "
    f"{(1024 * feed / 1e9):.0f} s of CPU in the screen model alone.",
    f"- An alternate-screen keyframe ({dur(kfa)}) costs {kfa / kf:.0f}× a normal one "
    f"({dur(kf)}): it clones the whole vt100 screen, scrollback included, to redraw the "
    "normal screen underneath.",
    "",
    "Machine:",
    "",
]
print("\n".join(lines))
PY
)"
section+=$'\n\n'"$(bench_machine_notes)"
printf '%s\n' "$section" | bench_md_section criterion "$MD"
log "wrote the criterion section of $MD"
printf '%s\n' "$section"
