#!/usr/bin/env bash
# `exec true` through one long-lived `agentssh mcp` process (issue 18) against `ssh` with a
# warm ControlMaster, on the same private sshd, in the same run.
#
#   bash bench/mcp.sh            (as root, after `bash scripts/test-setup.sh`)
#
# 1. `cargo build --release`; the binary is copied to /dev/shm (a rebuild cannot swap it).
# 2. A private sshd on a random 127.0.0.1 port (config on /dev/shm, user agentssh-bench with
#    login shell /bin/sh), isolated HOME/XDG, known_hosts pre-seeded on both sides: the same
#    setup as bench/run.sh (bench/private.sh).
# 3. Two MCP clients this project did not write drive ONE `agentssh mcp --profile b --tools
#    exec,sessions` each: the official Rust SDK's client (rmcp, in
#    examples/mcp_bench_client.rs; the budget row) and the official Python SDK's client
#    (bench/mcp_driver.py; a reference row). Each warms up, then makes $BENCH_MCP_CALLS (200)
#    sequential `exec` tool calls of `true`, timing each around `call_tool`; between its
#    chunks it runs hyperfine -N on `ssh` through a warm ControlMaster for the same number of
#    runs, in $BENCH_ROUNDS (10) rounds whose order alternates (fine-grained, so a
#    passing disturbance of the machine falls on both sides alike). Each then times as many
#    `session_list` calls (the MCP client, server and daemon hop without SSH).
# 4. Rewrites the `mcp` section of BENCHMARKS.md: medians per call and the ratio (budget
#    <= 0.4x).
#
# Knobs: BENCH_MCP_CALLS (200), BENCH_ROUNDS (10), BENCH_WARMUP (10), BENCH_MD.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
# shellcheck source=bench/private.sh
source "$ROOT/bench/private.sh"

CALLS="${BENCH_MCP_CALLS:-200}"
ROUNDS="${BENCH_ROUNDS:-10}"
WARMUP="${BENCH_WARMUP:-10}"
BENCH_USER=agentssh-bench
SSHD=/usr/sbin/sshd
SSH=/usr/bin/ssh
SSH_KEYGEN=/usr/bin/ssh-keygen
MD="${BENCH_MD:-$ROOT/BENCHMARKS.md}"

log() { printf 'bench/mcp: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# --- preflight ----------------------------------------------------------------------------
HINT="run: bash scripts/test-setup.sh"
[[ $EUID -eq 0 ]] || die "must run as root (sshd has to switch to $BENCH_USER)"
for tool in "$SSHD" "$SSH" "$SSH_KEYGEN"; do
    [[ -x $tool ]] || die "$tool not found; $HINT"
done
for tool in hyperfine python3 cargo flock; do
    command -v "$tool" >/dev/null || die "$tool not found; $HINT"
done
python3 -c 'import mcp' 2>/dev/null || die "the Python MCP SDK is missing (pip install mcp)"
getent passwd "$BENCH_USER" >/dev/null || die "user $BENCH_USER does not exist; $HINT"
if [[ ! -d /run/sshd ]]; then
    mkdir -p /run/sshd && chmod 0755 /run/sshd
fi

# --- build ----------------------------------------------------------------------------------
log "cargo build --release"
cargo build --release --bin agentssh --example mcp_bench_client
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"

# --- scratch dir, client environment, private sshd (bench/private.sh) ----------------------
bench_private_init asm
trap bench_private_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
AS="$WORK/agentssh"
cp "$TARGET_DIR/release/agentssh" "$AS"
RUST_DRIVER="$WORK/mcp_bench_client"
cp "$TARGET_DIR/release/examples/mcp_bench_client" "$RUST_DRIVER"
bench_private_client
bench_private_sshd

# --- the run -----------------------------------------------------------------------------
SSH_OPTS="-F /dev/null -o UserKnownHostsFile=$KH -o GlobalKnownHostsFile=/dev/null"
SSH_OPTS+=" -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes"
SSH_OPTS+=" -o LogLevel=ERROR -i $KEY -p $PORT"
SSH_MUX="$SSH $SSH_OPTS -o ControlPath=$WORK/cm -o ControlMaster=auto -o ControlPersist=60"
SSH_MUX+=" $BENCH_USER@127.0.0.1 true"

in_env "$AS" --json profile add b -H 127.0.0.1 -P "$PORT" -u "$BENCH_USER" \
    --private-key-path "$KEY" >/dev/null || die "profile add failed"
DAEMON_STARTED=1
in_env "$AS" --json exec -p b -- true | grep -q '"ok":true' ||
    die "agentssh exec through the daemon did not succeed"
# The background master keeps stdout open; do not capture it.
# shellcheck disable=SC2086
in_env $SSH_MUX </dev/null >/dev/null 2>&1 || die "ssh ControlMaster warm-up failed"
[[ -S $WORK/cm ]] || die "ssh did not create the ControlMaster socket"
conn_before="$(connections)"

log "$CALLS exec tool calls through one agentssh mcp (Rust SDK client) vs ssh, $ROUNDS rounds"
# shellcheck disable=SC2086
rust_result="$(in_env "$RUST_DRIVER" "$AS" b "$CALLS" "$ROUNDS" "$WARMUP" "$WORK" -- $SSH_MUX)"
new_conns=$(($(connections) - conn_before))
log "rust client: $rust_result"
log "$CALLS exec tool calls through one agentssh mcp (Python SDK client) vs ssh, $ROUNDS rounds"
# shellcheck disable=SC2086
py_result="$(in_env python3 "$ROOT/bench/mcp_driver.py" "$AS" b "$CALLS" "$ROUNDS" "$WARMUP" \
    "$WORK" -- $SSH_MUX)"
log "python client: $py_result"

RUST="$rust_result" PY="$py_result" NEW_CONNS="$new_conns" CALLS="$CALLS" ROUNDS="$ROUNDS" \
    WARMUP="$WARMUP" python3 - <<'PY' >"$WORK/section.md"
import json, os
rust = json.loads(os.environ["RUST"])
py = json.loads(os.environ["PY"])

def row(what, r, budget):
    m, s = r["mcp_median_ms"], r["ssh_median_ms"]
    ratio = m / s
    met = ("yes" if ratio <= 0.4 else "**NO (missed)**") if budget else "—"
    return (f"| {what} | {m:.2f} ms ({r['mcp_p90_ms']:.2f}) | {s:.2f} ms ({r['ssh_p90_ms']:.2f}) | "
            f"{ratio:.2f}× | {'≤ 0.4×' if budget else 'reference'} | {met} |")

print("## MCP: `exec true` tool calls through one `agentssh mcp` (`bench/mcp.sh`, release build)")
print()
print(f"{rust['calls']} sequential `exec` tool calls (`command: \"true\"`) through one `agentssh mcp --profile b "
      f"--tools exec,sessions` process, timed around `call_tool` (so the client's own JSON-RPC work counts), against "
      f"as many runs of `ssh host true` through a warm ControlMaster (hyperfine `-N`), interleaved in "
      f"{os.environ['ROUNDS']} rounds after {os.environ['WARMUP']} warm-up calls each; same private sshd, remote user "
      f"`agentssh-bench` (`/bin/sh`). The budget row uses the official Rust MCP SDK's client (`rmcp`, "
      f"`examples/mcp_bench_client.rs`); the reference row repeats the run with the official Python SDK's client "
      f"(`bench/mcp_driver.py`), a second process each, measured separately. Failed calls: "
      f"{rust['errors']} (Rust), {py['errors']} (Python). New TCP connections to sshd during the Rust client's timed "
      f"part: {os.environ['NEW_CONNS']} (0 = both reused their warm connection).")
print()
print("| what | agentssh mcp median (p90) | OpenSSH median (p90) | ratio | budget | met? |")
print("|---|---|---|---|---|---|")
print(row("`exec true` per call, Rust SDK client, one MCP process vs `ssh` + warm ControlMaster", rust, True))
print(row("`exec true` per call, Python SDK client (reference)", py, False))
fr, fp = rust["floor_median_ms"], py["floor_median_ms"]
print(f"| `session_list` per call, no SSH: Rust client / Python client | {fr:.2f} ms / {fp:.2f} ms | — | — | — | — |")
print()
m, s = rust["mcp_median_ms"], rust["ssh_median_ms"]
print(f"Where the time goes: of the {m:.2f} ms per `exec` call with the Rust client, {fr:.2f} ms is the MCP path "
      f"without SSH (the client's JSON-RPC work, the server, one request on the daemon connection the server keeps "
      f"between calls); the other {m - fr:.2f} ms is the daemon's pooled exec, most of it sshd's own work per "
      f"command (fork, exec `/bin/sh -c true`, exit status, close; measured on the wire in the `exec` section, "
      f"row b″). The Python client's row is slower by {py['mcp_median_ms'] - m:.2f} ms per call on the same server "
      f"({fp - fr:.2f} ms of it visible without SSH): its interpreter and asyncio loop.")
PY
{
    cat "$WORK/section.md"
    echo
    echo "Machine:"
    echo
    bench_machine_notes
} | bench_md_section mcp "$MD"
log "wrote the mcp section of $MD"
cat "$WORK/section.md" >&2
