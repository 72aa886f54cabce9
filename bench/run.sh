#!/usr/bin/env bash
# End-to-end latency benchmarks: agentssh against OpenSSH on this machine, same run.
#
#   bash bench/run.sh            (as root, after `bash scripts/test-setup.sh`)
#
# 1. `cargo build --release`, and copies the binary to /dev/shm (a concurrent rebuild cannot
#    swap it mid-run).
# 2. Starts a private sshd on a random 127.0.0.1 port: temp dir on /dev/shm with a host key,
#    authorized_keys holding a fresh client key, `UsePAM no`, `StrictModes no`,
#    `AllowUsers agentssh-bench` (login shell /bin/sh), internal-sftp, PidFile.
# 3. Isolated HOME/XDG dirs, so the agentssh daemon autostarted here is private; known_hosts
#    pre-seeded for both ssh and agentssh (strict checking on both sides).
# 4. hyperfine (`-N`, warmup 3, 30 runs per command in $BENCH_ROUNDS rounds whose order
#    rotates, so both commands see the same machine conditions), medians from the JSON:
#      a. `agentssh exec --direct -- true`  vs  `ssh -o BatchMode=yes host true` (and, for
#         reference, vs ssh forced to curve25519-sha256, the key exchange russh negotiates)
#      b. `agentssh exec -- true` (warm daemon) vs `ssh` with a warm ControlMaster; with
#         tcpdump installed, also sshd's own time per pooled exec on the wire (bench/wire.py)
#      c. `agentssh --json daemon status` (CLI→daemon round trip), and process-start floors
#         (`agentssh --version`, `ssh -V`, `/bin/sh -c true`) for the analysis
#      d. `session send --wait-idle 50 --input $'echo hi\n'` (echo round trip)
# 5. Rewrites the `exec` section of BENCHMARKS.md; then, unless switched off, the `idle`
#    section (BENCH_IDLE_SESSIONS sessions, 100, left alone for BENCH_IDLE_SECS, 10: daemon
#    RSS per session and CPU), the `flood` section (BENCH_FLOOD_BYTES, 1 GiB, into one
#    session while another is read) and bench/criterion.sh (its own section).
# Everything it started (sshd, the ssh master, the agentssh daemon) is stopped on exit.
#
# Knobs: BENCH_RUNS (30), BENCH_WARMUP (3), BENCH_ROUNDS (3), BENCH_IDLE (1), BENCH_FLOOD (1),
# BENCH_CRITERION (1),
# BENCH_FULL (0, passed on to bench/criterion.sh), BENCH_MD (path of BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
# shellcheck source=bench/private.sh
source "$ROOT/bench/private.sh"

RUNS="${BENCH_RUNS:-30}"
WARMUP="${BENCH_WARMUP:-3}"
ROUNDS="${BENCH_ROUNDS:-3}"
IDLE_MS=50
BENCH_USER=agentssh-bench
SSHD=/usr/sbin/sshd
SSH=/usr/bin/ssh
SSH_KEYGEN=/usr/bin/ssh-keygen
MD="${BENCH_MD:-$ROOT/BENCHMARKS.md}"

log() { printf 'bench: %s\n' "$*" >&2; }
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
getent passwd "$BENCH_USER" >/dev/null || die "user $BENCH_USER does not exist; $HINT"
bench_shell="$(getent passwd "$BENCH_USER" | cut -d: -f7)"
[[ $bench_shell == /bin/sh ]] || log "warning: $BENCH_USER's shell is $bench_shell, not /bin/sh"
[[ -d /dev/shm && -w /dev/shm ]] || die "/dev/shm is not writable"
if [[ ! -d /run/sshd ]]; then
    mkdir -p /run/sshd && chmod 0755 /run/sshd
fi
((RUNS >= ROUNDS && ROUNDS >= 1)) || die "need BENCH_RUNS >= BENCH_ROUNDS >= 1"
PER_ROUND=$(((RUNS + ROUNDS - 1) / ROUNDS))

# --- build ----------------------------------------------------------------------------------
log "cargo build --release"
cargo build --release --bin agentssh
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"

# --- scratch dir, client environment, private sshd (bench/private.sh) ----------------------
TCPDUMP_PID=""
cleanup() {
    set +e
    if [[ -n $TCPDUMP_PID ]]; then
        kill "$TCPDUMP_PID" 2>/dev/null
        wait "$TCPDUMP_PID" 2>/dev/null
    fi
    bench_private_cleanup
}
bench_private_init asb
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
AS="$WORK/agentssh"
cp "$TARGET_DIR/release/agentssh" "$AS"
bench_private_client
bench_private_sshd

# --- the commands ------------------------------------------------------------------------
TARGET="-H 127.0.0.1 -P $PORT -u $BENCH_USER --private-key-path $KEY --strict-host-key-checking yes"
AS_DIRECT="$AS --json exec $TARGET --direct -- true"
AS_POOLED="$AS --json exec $TARGET -- true"
AS_STATUS="$AS --json daemon status"
AS_VERSION="$AS --version"
SSH_OPTS="-F /dev/null -o UserKnownHostsFile=$KH -o GlobalKnownHostsFile=/dev/null"
SSH_OPTS+=" -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes"
SSH_OPTS+=" -o LogLevel=ERROR -i $KEY -p $PORT"
SSH_PLAIN="$SSH $SSH_OPTS $BENCH_USER@127.0.0.1 true"
# Reference only: the key exchange agentssh (russh) negotiates with this sshd.
SSH_CURVE="$SSH $SSH_OPTS -o KexAlgorithms=curve25519-sha256 $BENCH_USER@127.0.0.1 true"
SSH_MUX="$SSH $SSH_OPTS -o ControlPath=$WORK/cm -o ControlMaster=auto -o ControlPersist=60"
SSH_MUX+=" $BENCH_USER@127.0.0.1 true"

# Run a command string once in the client env (word-split like hyperfine -N does; no paths
# here contain spaces) and require success.
once() { # DESC CMD
    local out
    # shellcheck disable=SC2086
    if ! out="$(in_env $2 2>&1 </dev/null)"; then
        die "$1 failed: $out"
    fi
    printf '%s' "$out"
}

# Exit 0 iff the JSON document on stdin satisfies the Python expression (v: the document;
# strs(x): every string inside x).
json_check() { # EXPR
    python3 -c '
import json, sys
def strs(x):
    if isinstance(x, str):
        yield x
    elif isinstance(x, dict):
        for y in x.values():
            yield from strs(y)
    elif isinstance(x, list):
        for y in x:
            yield from strs(y)
v = json.load(sys.stdin)
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1"
}

# hyperfine in ROUNDS rounds; the command order rotates from round to round, so every
# command runs early and late under the same machine conditions.
# bench NAME LABEL1 CMD1 [LABEL2 CMD2 ...]   -> $WORK/NAME-rN.json
bench() {
    local name="$1" r i k n args
    shift
    local pairs=("$@")
    n=$((${#pairs[@]} / 2))
    for ((r = 0; r < ROUNDS; r++)); do
        args=()
        for ((i = 0; i < n; i++)); do
            k=$(((i + r) % n))
            args+=(-n "${pairs[2 * k]}" "${pairs[2 * k + 1]}")
        done
        log "$name: round $((r + 1))/$ROUNDS"
        in_env hyperfine -N --style basic --warmup "$WARMUP" --runs "$PER_ROUND" \
            --export-json "$WORK/$name-r$r.json" "${args[@]}" >&2
    done
}

# a. one new connection per command ------------------------------------------------------
once "agentssh exec --direct" "$AS_DIRECT" | json_check 'v["ok"] is True' ||
    die "agentssh exec --direct did not succeed"
once "ssh" "$SSH_PLAIN" >/dev/null
once "ssh (curve25519)" "$SSH_CURVE" >/dev/null
bench direct agentssh "$AS_DIRECT" openssh "$SSH_PLAIN" openssh-curve25519 "$SSH_CURVE"

# b. warm daemon vs warm ControlMaster ------------------------------------------------
DAEMON_STARTED=1
once "agentssh exec (autostarts the daemon)" "$AS_POOLED" | json_check 'v["ok"] is True' ||
    die "agentssh exec through the daemon did not succeed"
# The background master keeps stdout open; do not capture it.
# shellcheck disable=SC2086
in_env $SSH_MUX </dev/null >/dev/null 2>&1 || die "ssh ControlMaster warm-up failed"
[[ -S $WORK/cm ]] || die "ssh did not create the ControlMaster socket"
conn_before="$(connections)"
# Reference: ssh's mux client asking the master a question that opens no session, so the
# session's own cost (mostly sshd's) is the difference to SSH_MUX.
SSH_CHECK="$SSH $SSH_OPTS -o ControlPath=$WORK/cm -O check $BENCH_USER@127.0.0.1"
once "ssh -O check" "$SSH_CHECK" >/dev/null
bench pooled agentssh "$AS_POOLED" openssh "$SSH_MUX" openssh-check "$SSH_CHECK"
pooled_new_conns=$(($(connections) - conn_before))

# b″. sshd's own time per pooled exec, on the wire: from the exec request leaving the daemon
# to the server's last packet (exit status, EOF, close), so the analysis can separate what
# sshd spends from what the client side spends. Needs tcpdump; skipped without it.
WIRE="nan 0"
if command -v tcpdump >/dev/null; then
    log "wire: 50 pooled execs under tcpdump"
    tcpdump -i lo -n -s 128 -U --immediate-mode -w "$WORK/wire.pcap" "tcp port $PORT" 2>"$WORK/tcpdump.err" &
    TCPDUMP_PID=$!
    if wait_for_log "$WORK/tcpdump.err" "listening on" "$TCPDUMP_PID"; then
        for ((i = 0; i < 50; i++)); do
            once "agentssh exec (wire)" "$AS_POOLED" >/dev/null
        done
        kill -INT "$TCPDUMP_PID"
        wait "$TCPDUMP_PID" || true
        TCPDUMP_PID=""
        WIRE="$(python3 "$ROOT/bench/wire.py" "$WORK/wire.pcap" "$PORT")" ||
            { log "bench/wire.py failed; sshd's on-the-wire time not measured"; WIRE="nan 0"; }
    else
        # E.g. root without CAP_NET_RAW in a container: the rest of the run still counts.
        log "tcpdump cannot capture here ($(tr '\n' ' ' <"$WORK/tcpdump.err")); skipping sshd's on-the-wire time"
        kill "$TCPDUMP_PID" 2>/dev/null || true
        wait "$TCPDUMP_PID" 2>/dev/null || true
        TCPDUMP_PID=""
    fi
else
    log "tcpdump not found: skipping sshd's on-the-wire time (apt-get install tcpdump)"
fi

# c. CLI→daemon round trip, and the process-start floors -------------------------------
once "agentssh daemon status" "$AS_STATUS" | json_check 'v["data"]["running"] is True' ||
    die "agentssh daemon status: daemon not running"
bench status agentssh "$AS_STATUS"
bench floor agentssh "$AS_VERSION" ssh "$SSH -V" sh "/bin/sh -c true"

# d. session send echo round trip ----------------------------------------------------------
session_json="$(once "agentssh connect" "$AS --json connect $TARGET --wait-ms 500")"
SESSION_ID="$(printf '%s' "$session_json" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["id"])')" ||
    die "agentssh connect: no session id in $session_json"
AS_SEND="$AS --json session send -s $SESSION_ID --wait-idle $IDLE_MS --input 'echo hi
'"
in_env "$AS" --json session send -s "$SESSION_ID" --wait-idle "$IDLE_MS" --input $'echo hi\n' |
    json_check 'v["ok"] is True and any(l.strip() == "hi" for s in strs(v["data"]) for l in s.splitlines())' ||
    die "session send did not echo hi"
bench send agentssh "$AS_SEND"
# Closed now, so the idle section's sessions are the only ones (its connection count then
# reads as sessions per connection).
in_env "$AS" --json session close -s "$SESSION_ID" >/dev/null || die "session close failed"

# --- report ----------------------------------------------------------------------------------
export WORK ROUNDS RUNS WARMUP IDLE_MS pooled_new_conns WIRE
section="$(
    python3 - <<'PY'
import glob, json, os, statistics

work = os.environ["WORK"]

def times(name):
    """All run times (ms) per command label, merged over the rounds."""
    out = {}
    for path in sorted(glob.glob(f"{work}/{name}-r*.json")):
        for res in json.load(open(path))["results"]:
            out.setdefault(res["command"], []).extend(t * 1000 for t in res["times"])
    return out

def med(name, label):
    return statistics.median(times(name)[label])

def ms(x):
    return f"{x:.2f} ms"

def yes(ok):
    return "yes" if ok else "**NO (missed)**"

idle = int(os.environ["IDLE_MS"])
d_as, d_ssh, d_curve = (med("direct", l) for l in ("agentssh", "openssh", "openssh-curve25519"))
p_as, p_ssh = med("pooled", "agentssh"), med("pooled", "openssh")
p_check = med("pooled", "openssh-check")
st = med("status", "agentssh")
f_as, f_ssh, f_sh = (med("floor", l) for l in ("agentssh", "ssh", "sh"))
send = med("send", "agentssh")
wire_ms, wire_n = os.environ["WIRE"].split()
wire, wire_n = float(wire_ms), int(wire_n)
have_wire = wire_n > 0

rows = [
    ("a. `exec --direct -- true` (new connection) vs `ssh -o BatchMode=yes host true`",
     ms(d_as), ms(d_ssh), f"{d_as / d_ssh:.2f}×", "≤ 0.5×", yes(d_as / d_ssh <= 0.5)),
    ("a′. same, OpenSSH forced to agentssh's key exchange (`-o KexAlgorithms=curve25519-sha256`)",
     ms(d_as), ms(d_curve), f"{d_as / d_curve:.2f}×", "— (reference)", "—"),
    ("b. `exec -- true` via warm daemon vs `ssh` with warm ControlMaster",
     ms(p_as), ms(p_ssh), f"{p_as / p_ssh:.2f}×", "≤ 0.5×", yes(p_as / p_ssh <= 0.5)),
    ("b′. `ssh -O check` through the same ControlMaster (mux round trip, no session)",
     "—", ms(p_check), "—", "— (reference)", "—"),
    (f"b″. sshd's own time per pooled `exec -- true`: exec request out → its last packet "
     f"(exit status, EOF, close), on the wire (tcpdump, {wire_n} commands)",
     ms(wire) if have_wire else "not measured (see the run's log)", "—", "—", "— (reference)", "—"),
    ("c. CLI→daemon round trip: `agentssh --json daemon status`",
     ms(st), "—", "—", "≤ 2 ms", yes(st <= 2.0)),
    (f"d. `session send --wait-idle {idle} --input 'echo hi\\n'`, minus the {idle} ms idle window",
     f"{ms(send)} − {idle} = {ms(send - idle)}", "—", "—", "≤ 5 ms over the window",
     yes(send - idle <= 5.0)),
    ("floor: process start and exit, `agentssh --version` vs `ssh -V` (`/bin/sh -c true`: "
     f"{ms(f_sh)})", ms(f_as), ms(f_ssh), f"{f_as / f_ssh:.2f}×", "— (reference)", "—"),
]

n = len(times("direct")["agentssh"])
session = max(p_ssh - p_check, 0.0)
# sshd's time per pooled exec: measured on the wire when tcpdump was there, else estimated
# from ssh's session cost (which also includes a channel-open round trip).
server = wire if have_wire else session
ipc = max(st - f_as, 0.0)
server_src = (" (b″, on agentssh's connection)" if have_wire
              else " (estimated as ssh's session cost: b″ was not measured)")
nc = int(os.environ["pooled_new_conns"])
lines = [
    "## End-to-end latency (`bench/run.sh`)",
    "",
    f"hyperfine `-N`, {os.environ['WARMUP']} warmup runs per round, {n} timed runs per command "
    f"in {os.environ['ROUNDS']} rounds whose command order rotates; medians. Remote user "
    "`agentssh-bench` (`/bin/sh`), private sshd on 127.0.0.1, ed25519 keys, strict host-key "
    "checking on both sides, everything on `/dev/shm`.",
    "",
    "| what | agentssh median | OpenSSH median | ratio | budget | met? |",
    "|---|---|---|---|---|---|",
]
lines += ["| " + " | ".join(r) + " |" for r in rows]
lines += [
    "",
    "Where the time goes:",
    "",
    f"- a.: most of OpenSSH's {ms(d_ssh)} is its default post-quantum key exchange "
    f"(sntrup761x25519, on both ends); with curve25519, which russh negotiates, `ssh` takes "
    f"{ms(d_curve)} and the ratio is {d_as / d_curve:.2f}×. What remains is common to both "
    "clients: sshd's fork and re-exec of a per-connection process, key exchange, public-key "
    "auth and the session (fork, exec `/bin/sh -c true`).",
    f"- b.: sshd itself spends {ms(server)} per command{server_src}: fork a child, exec "
    "`/bin/sh -c true`, reap it, send exit status, EOF and close. Through ssh's master a "
    f"session costs {ms(session)} beyond the mux round trip alone (b′). agentssh's "
    f"{ms(p_as)} is that server time, its own process start and exit ({ms(f_as)}, the floor "
    f"row) and, the remainder, ≈{ms(max(p_as - f_as - server, 0))} for the daemon hop "
    "(unix-socket connect, request, pool, SSH packets out and back, reply). The budget is "
    f"{ms(0.5 * p_ssh)}; start-up, sshd's time and the bare round trip to the daemon (c. "
    f"minus the floor, {ms(ipc)}) come to {ms(f_as + server + ipc)}, "
    f"{(f_as + server + ipc) / p_ssh:.2f}× of ssh's time"
    + (", the budget or more before the daemon does any work for the command. "
       if f_as + server + ipc >= 0.5 * p_ssh else ". ")
    + f"A client that cost no more than `/bin/sh -c true` ({ms(f_sh)}) would need "
    f"≈{ms(f_sh + server)} ({(f_sh + server) / p_ssh:.2f}×) plus its own hop. "
    f"{nc} new TCP connection(s) reached sshd during the pooled runs (0 = both tools "
    "reused their warm connection).",
    f"- c.: {ms(f_as)} of it is starting and exiting the binary (`--version` does no I/O; "
    f"`/bin/sh -c true` takes {ms(f_sh)} on this machine), {ms(max(st - f_as, 0))} is the "
    "unix-socket connect, handshake, request and reply.",
    f"- d.: the {ms(send - idle)} over the idle window is process start ({ms(f_as)}), the "
    "daemon round trip, the PTY echo over SSH (the shell echoes the line, runs `echo`, "
    "prints its prompt; every piece of output restarts the idle timer) and the reply.",
    "",
    "Machine:",
    "",
]
print("\n".join(lines))
PY
)"
section+=$'\n\n'"$(bench_machine_notes)"
printf '%s\n' "$section" | bench_md_section exec "$MD"
log "wrote the exec section of $MD"
printf '%s\n' "$section"

# --- idle: many open sessions doing nothing --------------------------------------------------
# Budget: 100 idle sessions ≤ 2 MiB RSS each, ~0 % CPU. Measured before the flood, whose
# buffers the allocator keeps (up to its trim threshold) and later sessions would reuse.
if [[ ${BENCH_IDLE:-1} != 0 ]]; then
    IDLE_N=${BENCH_IDLE_SESSIONS:-100}
    IDLE_SECS=${BENCH_IDLE_SECS:-10}
    log "idle: $IDLE_N sessions"
    DPID="$(in_env "$AS" --json daemon status | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["pid"])')"
    rss() { awk '/VmRSS/ {print $2}' "/proc/$DPID/status"; }
    cpu_ticks() { awk '{print $14 + $15}' "/proc/$DPID/stat"; }
    rss_before=$(rss)
    for ((i = 0; i < IDLE_N; i++)); do
        # --wait-ms: connect returns once the prompt has arrived and gone quiet, so every
        # session is settled (its screen, log and buffers as an idle session keeps them).
        # shellcheck disable=SC2086
        in_env "$AS" --json connect $TARGET --name "idle$i" --wait-ms 200 >/dev/null ||
            die "idle: connect $i failed"
    done
    rss_after=$(rss)
    t0=$(cpu_ticks)
    sleep "$IDLE_SECS" # the measurement window itself, not a wait for anything
    t1=$(cpu_ticks)
    hz=$(getconf CLK_TCK)
    conns="$(in_env "$AS" --json daemon status | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["connections"])')"
    idle_md="$(python3 - "$rss_before" "$rss_after" "$IDLE_N" "$t0" "$t1" "$hz" "$IDLE_SECS" "$conns" <<'PY'
import sys
before, after, n, t0, t1, hz, secs, conns = (int(x) for x in sys.argv[1:])
per = (after - before) / n / 1024
cpu = (t1 - t0) / hz / secs * 100
ok = lambda b: "yes" if b else "**NO (missed)**"
print("## Idle sessions (`bench/run.sh`, release build)\n")
print(f"{n} PTY sessions opened with `connect --wait-ms 200` (a `/bin/sh` prompt each, "
      f"{conns} pooled SSH connection(s)), then left alone for {secs} s. RSS is the daemon's "
      f"VmRSS before the first and after the last connect; CPU is the daemon's user+system "
      f"time over the idle window.\n")
print("| what | measured | budget | met? |")
print("|---|---|---|---|")
print(f"| daemon RSS per idle session ({before / 1024:.1f} → {after / 1024:.1f} MiB) | {per:.2f} MiB | ≤ 2 MiB | {ok(per <= 2)} |")
print(f"| daemon CPU with {n} idle sessions | {cpu:.2f} % | ~0 % | {ok(cpu < 1)} |")
PY
)"
    printf '%s\n' "$idle_md" | bench_md_section idle "$MD"
    printf '%s\n' "$idle_md"
    in_env "$AS" --json session close --all >/dev/null
fi

# --- flood: 1 GiB into one session while another is read ------------------------------------
# Budget: daemon RSS ≤ 64 MiB during a 1 GiB flood, other sessions' p99 read < 50 ms.
if [[ ${BENCH_FLOOD:-1} != 0 ]]; then
    FLOOD_BYTES=${BENCH_FLOOD_BYTES:-1073741824}
    log "flood: $FLOOD_BYTES bytes of yes into one session"
    # shellcheck disable=SC2086
    in_env "$AS" --json connect $TARGET --name flood >/dev/null || die "flood: connect failed"
    # shellcheck disable=SC2086
    in_env "$AS" --json connect $TARGET --name quiet >/dev/null || die "flood: second connect failed"
    DPID="$(in_env "$AS" --json daemon status | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["pid"])')"
    in_env "$AS" --json session send -s flood --wait-idle 0 \
        --input "yes | head -c $FLOOD_BYTES; echo FLOOD-\$((6*7))-DONE"$'\n' >/dev/null
    peak=0
    lat="$WORK/flood_lat.txt"
    : >"$lat"
    started=$(date +%s)
    while :; do
        rss=$(awk '/VmRSS/ {print $2}' "/proc/$DPID/status")
        ((rss > peak)) && peak=$rss
        t0=$(date +%s%N)
        in_env "$AS" --json session read -s quiet >/dev/null
        echo $((($(date +%s%N) - t0) / 1000)) >>"$lat"
        if in_env "$AS" --json session read -s flood --limit 65536 | grep -q FLOOD-42-DONE; then
            break
        fi
        (($(date +%s) - started > 1800)) && die "flood did not finish in 30 min"
    done
    secs=$(($(date +%s) - started))
    flood_md="$(python3 - "$lat" "$peak" "$secs" "$FLOOD_BYTES" <<'PY'
import statistics, sys
lat = sorted(int(x) / 1000 for x in open(sys.argv[1]) if x.strip())
peak_mib = int(sys.argv[2]) / 1024
secs, size = int(sys.argv[3]), int(sys.argv[4])
p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
ok = lambda b: "yes" if b else "**NO (missed)**"
print("## Flood (`bench/run.sh`, release build)\n")
print(f"`yes | head -c {size}` into one session while a second session is read in a loop "
      f"({len(lat)} reads, each a whole CLI invocation). The flood took {secs} s "
      f"({size / max(secs, 1) / 2**20:.0f} MiB/s through PTY, clean log and vt100 screen).\n")
print("| what | measured | budget | met? |")
print("|---|---|---|---|")
print(f"| daemon peak RSS during the flood | {peak_mib:.1f} MiB | ≤ 64 MiB | {ok(peak_mib <= 64)} |")
print(f"| other session's `session read`, p99 (median {statistics.median(lat):.1f} ms) | {p99:.1f} ms | < 50 ms | {ok(p99 < 50)} |")
PY
)"
    printf '%s\n' "$flood_md" | bench_md_section flood "$MD"
    printf '%s\n' "$flood_md"
    in_env "$AS" --json session close --all >/dev/null
fi

# --- criterion ----------------------------------------------------------------------------
if [[ ${BENCH_CRITERION:-1} != 0 ]]; then
    bash "$ROOT/bench/criterion.sh"
fi
