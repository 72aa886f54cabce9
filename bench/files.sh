#!/usr/bin/env bash
# File-transfer benchmark: agentssh vs OpenSSH on the same server, same cipher.
#
#   1. 1 GiB upload    : agentssh file upload    vs  sftp put
#   2. 1 GiB download  : agentssh file download  vs  sftp get
#   3. 1,000 x 4 KiB   : agentssh file upload --recursive  vs  scp -r
#
# Prints median times (hyperfine, commands alternated run by run), throughputs and ratios
# (> 1.0 means agentssh is faster). Budgets (ARCHITECTURE.md): 1 and 2 >= 1.0x, 3 >= 3x.
# Not run by the tests.
#
# Environment:
#   PORT        sshd port (required)
#   USER        remote user (required in practice: your shell sets USER to *your* name;
#               pass e.g. USER=agentssh-bench, whose login shell is /bin/sh)
#   KEY         private key file authorised for USER (required, unencrypted)
#   HOST        server address (default 127.0.0.1)
#   AGENTSSH    agentssh binary (default: target/release/agentssh beside this script)
#   CIPHER      cipher for the OpenSSH clients (default: what agentssh negotiates with
#               OpenSSH on this CPU: aes256-gcm@openssh.com with AES and carry-less
#               multiply instructions, else chacha20-poly1305@openssh.com)
#   LOCAL_DIR   local scratch dir (default /dev/shm/agentssh-bench-local)
#   REMOTE_DIR  remote scratch dir, created/wiped over ssh (default
#               /dev/shm/agentssh-bench-remote)
#   RUNS        hyperfine runs per command (default 5)
#   SIZE        big-file size for head -c (default 1G)
#   KEEP_DATA   1 keeps the scratch data (about 3 GiB on each side) after the run; by
#               default it is removed on exit (locally, only the files this script made)
#
# Example:
#   cargo build --release
#   PORT=2222 USER=agentssh-bench KEY=~/.ssh/bench_ed25519 bench/files.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
: "${PORT:?set PORT to the sshd port}"
: "${USER:?set USER to the remote user}"
: "${KEY:?set KEY to the private key path}"
HOST=${HOST:-127.0.0.1}
AGENTSSH=${AGENTSSH:-$here/../target/release/agentssh}
# The same test as agentssh's cipher_order (src/ssh/client.rs), read from /proc/cpuinfo.
if grep -qw aes /proc/cpuinfo && grep -qwE 'pclmulqdq|pmull' /proc/cpuinfo; then
    CIPHER=${CIPHER:-aes256-gcm@openssh.com}
else
    CIPHER=${CIPHER:-chacha20-poly1305@openssh.com}
fi
LOCAL_DIR=${LOCAL_DIR:-/dev/shm/agentssh-bench-local}
REMOTE_DIR=${REMOTE_DIR:-/dev/shm/agentssh-bench-remote}
RUNS=${RUNS:-5}
SIZE=${SIZE:-1G}

for tool in hyperfine jq ssh sftp scp; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
done
[[ -x $AGENTSSH ]] || { echo "bench: $AGENTSSH not found (cargo build --release)" >&2; exit 1; }

mkdir -p "$LOCAL_DIR"
known="$LOCAL_DIR/known_hosts"
ssh_opts=(-o BatchMode=yes -o IdentitiesOnly=yes -i "$KEY" -c "$CIPHER"
          -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile="$known" -o LogLevel=ERROR)
conn=(-H "$HOST" -P "$PORT" -u "$USER" --private-key-path "$KEY")
q() { printf '%q' "$1"; }
remote() { ssh "${ssh_opts[@]}" -p "$PORT" "$USER@$HOST" "$@"; }

# The scratch data is several GiB, on /dev/shm by default (memory): remove it on exit,
# however the run ends, unless asked to keep it. Locally only the files this script creates
# go (LOCAL_DIR may be a directory of the user's), then the directory if that empties it;
# REMOTE_DIR is this script's own (it is wiped at the start too).
cleanup() {
    [[ ${KEEP_DATA:-0} == 1 ]] && return
    remote "rm -rf $(q "$REMOTE_DIR")" || echo "bench: could not remove $HOST:$REMOTE_DIR" >&2
    # Last: known_hosts is the file remote() uses.
    rm -rf "$LOCAL_DIR/small"
    rm -f "$LOCAL_DIR"/{big,big.down,big.sftp,sftp.batch.put,sftp.batch.get,known_hosts} \
        "$LOCAL_DIR"/{upload-1GiB,download-1GiB,1000x4KiB-recursive-upload}.json
    rmdir "$LOCAL_DIR" 2>/dev/null || true
}
trap cleanup EXIT

echo "== preparing data in $LOCAL_DIR and $HOST:$REMOTE_DIR"
remote "rm -rf $(q "$REMOTE_DIR") && mkdir -p $(q "$REMOTE_DIR")"
if [[ ! -f $LOCAL_DIR/big ]] || [[ $(stat -c %s "$LOCAL_DIR/big") -ne $(numfmt --from=iec "$SIZE") ]]; then
    head -c "$SIZE" /dev/urandom >"$LOCAL_DIR/big"
fi
bytes=$(stat -c %s "$LOCAL_DIR/big")
rm -rf "$LOCAL_DIR/small" && mkdir -p "$LOCAL_DIR/small"
for i in $(seq -w 1 1000); do head -c 4096 /dev/urandom >"$LOCAL_DIR/small/f$i"; done
# Warm the daemon and its pooled connection (agentssh's normal state).
"$AGENTSSH" exec "${conn[@]}" -- true
# The server's copy for downloads.
"$AGENTSSH" file upload "${conn[@]}" --local "$LOCAL_DIR/big" --remote "$REMOTE_DIR/big.src" >/dev/null

batch="$LOCAL_DIR/sftp.batch"
sftp_cmd() { # sftp with one batch command
    printf '%s\n' "$1" >"$batch.$2"
    echo "sftp -q -b $(q "$batch.$2") -P $PORT ${ssh_opts[*]} $USER@$HOST >/dev/null"
}

median() { jq -r ".results[$2].median" "$1"; }

run() { # name, agentssh command, openssh command, prepare command
    local name=$1 ours=$2 theirs=$3 prep=$4 out="$LOCAL_DIR/$1.json"
    echo
    echo "== $name"
    hyperfine --runs "$RUNS" --warmup 1 --prepare "$prep" --export-json "$out" \
        -n agentssh "$ours" -n openssh "$theirs" >/dev/null
    local a o
    a=$(median "$out" 0)
    o=$(median "$out" 1)
    printf '  agentssh  median %8.3f s\n  openssh   median %8.3f s\n  ratio (openssh/agentssh) %.2fx\n' \
        "$a" "$o" "$(jq -n "$o / $a")"
    if [[ $5 == bytes ]]; then
        printf '  throughput: agentssh %.0f MiB/s, openssh %.0f MiB/s\n' \
            "$(jq -n "$bytes / $a / 1048576")" "$(jq -n "$bytes / $o / 1048576")"
    fi
}

noop=true
run "upload-1GiB" \
    "$AGENTSSH file upload ${conn[*]} --local $LOCAL_DIR/big --remote $REMOTE_DIR/big.up >/dev/null" \
    "$(sftp_cmd "put $LOCAL_DIR/big $REMOTE_DIR/big.sftp" put)" \
    "$noop" bytes
run "download-1GiB" \
    "$AGENTSSH file download ${conn[*]} --remote $REMOTE_DIR/big.src --local $LOCAL_DIR/big.down >/dev/null" \
    "$(sftp_cmd "get $REMOTE_DIR/big.src $LOCAL_DIR/big.sftp" get)" \
    "$noop" bytes
clean="ssh ${ssh_opts[*]} -p $PORT $USER@$HOST rm -rf $REMOTE_DIR/small.a $REMOTE_DIR/small.s"
run "1000x4KiB-recursive-upload" \
    "$AGENTSSH file upload ${conn[*]} --recursive --local $LOCAL_DIR/small --remote $REMOTE_DIR/small.a >/dev/null" \
    "scp -q -r -P $PORT ${ssh_opts[*]} $LOCAL_DIR/small $USER@$HOST:$REMOTE_DIR/small.s" \
    "$clean" files

echo
if [[ ${KEEP_DATA:-0} == 1 ]]; then
    echo "== done; scratch data left in $LOCAL_DIR and $HOST:$REMOTE_DIR"
else
    echo "== done; removing the scratch data"
fi
