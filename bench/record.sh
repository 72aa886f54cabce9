#!/usr/bin/env bash
# Session throughput with recording on (per-session cap CAP) against recording off
# (AGENTSSH_RECORD=0), on the same sshd, in the same run, plus the recording's size against
# its cap.
#
# Each run floods one fresh PTY session with SIZE_MB MiB of base64 text (`session run` of
# `head -c … /dev/zero | base64 -w 200`, about 4/3 × SIZE_MB MiB of PTY output) and times
# the CLI call until the command's end marker is back. The two modes alternate RUNS times,
# each with its own daemon (recording settings are read when a daemon starts); the script
# prints the median MiB/s of each and the ratio on/off (1.0 = no cost).
#
# Environment:
#   PORT      sshd port (required)
#   USER      remote user (default: the current user; benchmarks use a /bin/sh user)
#   KEY       private key file for USER (required; no passphrase, no agent needed)
#   HOST      sshd address (default 127.0.0.1)
#   SIZE_MB   MiB of input to base64 per run (default 768, about 1 GiB of output)
#   RUNS      alternations (default 3)
#   CAP       per-session recording cap (default 64M)
#   AGENTSSH  the agentssh binary (default: target/release/agentssh, else from PATH)
#   MD        markdown file for the `record` section (default BENCHMARKS.md; MD=- skips it)
#
# Example:
#   PORT=2222 USER=agentssh-bench KEY=~/.ssh/id_ed25519 bench/record.sh
set -euo pipefail

: "${PORT:?set PORT to the sshd port}"
: "${KEY:?set KEY to the private key file}"
USER="${USER:-$(id -un)}"
HOST="${HOST:-127.0.0.1}"
SIZE_MB="${SIZE_MB:-768}"
RUNS="${RUNS:-3}"
CAP="${CAP:-64M}"
here="$(cd "$(dirname "$0")/.." && pwd)"
MD="${MD:-$here/BENCHMARKS.md}"
if [[ -z "${AGENTSSH:-}" ]]; then
    if [[ -x "$here/target/release/agentssh" ]]; then
        AGENTSSH="$here/target/release/agentssh"
    else
        AGENTSSH="$(command -v agentssh)"
    fi
fi
# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"

tmp="$(mktemp -d /dev/shm/agentssh-record.XXXXXX 2>/dev/null || mktemp -d)"
log() { printf 'bench/record: %s\n' "$*" >&2; }

# One private XDG tree (and daemon) per mode.
a() { # MODE ARGS...
    local mode="$1"
    shift
    local rec=1
    [[ $mode == off ]] && rec=0
    XDG_RUNTIME_DIR="$tmp/$mode/run" XDG_CONFIG_HOME="$tmp/$mode/config" \
        XDG_STATE_HOME="$tmp/$mode/state" AGENTSSH_RECORD="$rec" \
        AGENTSSH_RECORD_SESSION_CAP="$CAP" "$AGENTSSH" "$@"
}
cleanup() {
    for m in on off; do a "$m" daemon shutdown >/dev/null 2>&1 || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
for m in on off; do
    mkdir -p "$tmp/$m/run" "$tmp/$m/config" "$tmp/$m/state"
    chmod 700 "$tmp/$m/run"
done

flood() { # MODE → prints seconds
    local mode="$1" out id t0 t1
    out="$(a "$mode" --json connect -H "$HOST" -P "$PORT" -u "$USER" --private-key-path "$KEY" \
        --strict-host-key-checking accept-new)"
    [[ "$out" == *'"ok":true'* ]] || { log "connect failed: $out"; exit 1; }
    id="$(sed -E 's/.*"id":"(s[0-9]+)".*/\1/' <<<"$out")"
    t0="$(date +%s%N)"
    out="$(a "$mode" --json session run -s "$id" --timeout 3600000 --limit 100 -- \
        "head -c $((SIZE_MB * 1024 * 1024)) /dev/zero | base64 -w 200; echo flood-end")"
    t1="$(date +%s%N)"
    [[ "$out" == *flood-end* ]] || { log "flood failed: $out"; exit 1; }
    a "$mode" --json session close -s "$id" >/dev/null
    echo "scale=3; ($t1 - $t0) / 1000000000" | bc
}

declare -a on_s=() off_s=()
for r in $(seq "$RUNS"); do
    # Alternate which mode goes first.
    if ((r % 2)); then order=(on off); else order=(off on); fi
    for m in "${order[@]}"; do
        s="$(flood "$m")"
        log "run $r $m: ${s}s"
        if [[ $m == on ]]; then on_s+=("$s"); else off_s+=("$s"); fi
    done
done
# The recordings of the on-runs: sizes against the cap (finished: their sessions closed).
a on --json daemon shutdown >/dev/null
sizes="$(find "$tmp/on/state/agentssh/recordings" -name '*.cast' -printf '%s\n' | sort -n)"

md="$(python3 - "$SIZE_MB" "$CAP" "${on_s[*]}" "${off_s[*]}" "$sizes" "$AGENTSSH" <<'PY'
import statistics, sys
size_mb, cap, on, off, sizes, binary = sys.argv[1:7]
on = [float(x) for x in on.split()]
off = [float(x) for x in off.split()]
sizes = [int(x) for x in sizes.split()]
unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
capb = int(cap[:-1]) * unit[cap[-1].upper()] if cap[-1].isalpha() else int(cap)
out_mib = int(size_mb) * 4 / 3  # base64 output, newlines aside
mon, moff = statistics.median(on), statistics.median(off)
ratio = (out_mib / mon) / (out_mib / moff)
print("## Recording cost (`bench/record.sh`)\n")
print(f"One PTY session flooded with ~{out_mib:.0f} MiB of base64 text (`session run`), "
      f"recording on (cap {cap}) and off alternating, {len(on)} runs each; medians. "
      f"Binary: `{binary}`.\n")
print("| what | value | budget | met? |")
print("|---|---|---|---|")
print(f"| throughput, recording off | {out_mib / moff:.1f} MiB/s | — | — |")
print(f"| throughput, recording on | {out_mib / mon:.1f} MiB/s | — | — |")
ok = "yes" if ratio >= 0.9 else "**NO (missed)**"
print(f"| on / off | {ratio:.2f}× | ≥ 0.90× | {ok} |")
worst = max(sizes) if sizes else 0
ok = "yes" if sizes and worst <= capb + 16384 else "**NO**"
print(f"| largest recording vs cap | {worst} bytes vs {capb} | ≤ cap + 16 KiB | {ok} |")
PY
)"
printf '%s\n' "$md"
if [[ $MD != - ]]; then
    { printf '%s\n\n' "$md"; bench_machine_notes; } | bench_md_section record "$MD"
fi
