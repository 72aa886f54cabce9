# Helpers shared by the bench/*.sh scripts. Source it; it defines functions only.
#
#   bench_md_section NAME [FILE]   replace the section between `<!-- bench:NAME:start -->` and
#                                  `<!-- bench:NAME:end -->` in FILE (default BENCHMARKS.md at
#                                  the repo root) with stdin; appends the section when the
#                                  markers are missing and creates FILE (with the standard
#                                  intro) when it does not exist. Serialised with flock, so
#                                  several scripts may write their sections concurrently.
#   bench_machine_notes            markdown bullet list: date, nproc, CPU, kernel, OpenSSH,
#                                  load average, git revision.

BENCH_LIB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

bench_machine_notes() {
    local cpu rev
    cpu="$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')"
    rev="$(git -C "$BENCH_LIB_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if [[ -n "$(git -C "$BENCH_LIB_ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
        rev="$rev + uncommitted changes"
    fi
    printf -- '- date: %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf -- '- CPU: %s × %s (`nproc`)\n' "${cpu:-unknown}" "$(nproc)"
    printf -- '- kernel: %s\n' "$(uname -sr)"
    printf -- '- OpenSSH: %s\n' "$(ssh -V 2>&1 | head -n1)"
    printf -- '- load average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf -- '- agentssh: git %s\n' "$rev"
}

bench_md_section() {
    local name="$1" file="${2:-$BENCH_LIB_ROOT/BENCHMARKS.md}" body lock
    body="$(cat)"
    lock="${TMPDIR:-/tmp}/agentssh-benchmarks-md.lock"
    (
        flock 9
        BENCH_SECTION_NAME="$name" BENCH_SECTION_BODY="$body" python3 - "$file" <<'PY'
import os, sys

path = sys.argv[1]
name = os.environ["BENCH_SECTION_NAME"]
body = os.environ["BENCH_SECTION_BODY"].strip("\n")
start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
block = f"{start}\n{body}\n{end}"

INTRO = """# agentssh benchmarks

Numbers measured on one machine, agentssh against OpenSSH in the same run. The budgets come
from the "Performance budgets" table in ARCHITECTURE.md. Every section below is rewritten
by the script named in its heading; nothing here is edited by hand between the
`<!-- bench:NAME:start/end -->` markers.

How to run (as root, on a machine prepared with `bash scripts/test-setup.sh`):

| script | what it measures | section |
|---|---|---|
| `bench/run.sh` | `exec` (direct and through the daemon) vs `ssh` (plain and ControlMaster), the CLI→daemon round trip, the `session send --wait-idle` echo round trip; 100 idle sessions (RSS, CPU); a 1 GiB flood into one session (RSS, other sessions' read latency); then runs `bench/criterion.sh` | `exec`, `idle`, `flood` |
| `bench/criterion.sh` | in-process criterion benches (`benches/screen.rs`, `benches/dashboard.rs`): screen/clean-log ingest, keyframes, dashboard frame time | `criterion` |
| `bench/proxy.sh` | `proxy create --local` forward vs `ssh -L` throughput, both directions | `proxy` |
| `bench/files.sh` | 1 GiB SFTP upload/download vs `sftp`, 1,000 small files vs `scp -r` | `files` |
| `bench/record.sh` | session flood throughput with recording on (64 MiB cap) vs off, and the recording's size against its cap | `record` |
| `bench/mcp.sh` | 200 `exec true` tool calls through one `agentssh mcp` (official Rust MCP SDK client; the Python SDK client as a reference) vs `ssh` with a warm ControlMaster | `mcp` |

`bench/run.sh` and `bench/criterion.sh` need nothing else: run.sh builds the release binary,
starts a private `sshd` on a random loopback port with a temporary config on `/dev/shm`, logs
in as `agentssh-bench` (login shell `/bin/sh`, so no rc files are timed), uses an isolated
HOME/XDG tree (so its agentssh daemon is private) and cleans up on exit. `bench/proxy.sh` and
`bench/files.sh` take the `PORT`, `USER` and `KEY` of a running sshd (see their headers;
use `USER=agentssh-bench`).

Environment knobs of `bench/run.sh`: `BENCH_RUNS` (default 30), `BENCH_WARMUP` (3),
`BENCH_ROUNDS` (3), `BENCH_IDLE=0` / `BENCH_FLOOD=0` / `BENCH_CRITERION=0` to skip the idle,
flood or criterion parts, `BENCH_IDLE_SESSIONS` (100), `BENCH_IDLE_SECS` (10),
`BENCH_FLOOD_BYTES` (1 GiB), `BENCH_FULL=1` for full (not `--quick`) criterion runs.
"""

text = open(path, encoding="utf-8").read() if os.path.exists(path) else INTRO
i, j = text.find(start), text.find(end)
if i != -1 and j != -1 and j > i:
    text = text[:i] + block + text[j + len(end):]
else:
    text = text.rstrip("\n") + "\n\n" + block + "\n"
tmp = path + ".tmp"
with open(tmp, "w", encoding="utf-8") as f:
    f.write(text)
os.replace(tmp, path)
PY
    ) 9>"$lock"
}
