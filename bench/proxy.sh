#!/usr/bin/env bash
# Throughput of an agentssh local forward (`proxy create --local`) against OpenSSH's
# `ssh -L`, on the same sshd, in the same run.
#
# Streams SIZE_MB MiB through each tunnel, both directions:
#   up:   client → tunnel → sink   (the sink acknowledges once it has every byte)
#   down: source → tunnel → client (the source sends SIZE_MB MiB and closes)
# The tools alternate RUNS times; the script prints the median MiB/s of each and the
# ratio agentssh/ssh (> 1.0 means agentssh is faster). OpenSSH runs twice: as configured
# by default, and forced to AES-256-GCM (what agentssh prefers on CPUs with AES
# instructions) as a reference that separates the cipher from the forwarding code.
#
# The sink and source are small perl servers on 127.0.0.1 (perl-base only); the tunnels
# target them through the sshd, which must therefore run on this machine (or reach
# 127.0.0.1 ports of this machine, i.e. HOST is local).
#
# Environment:
#   PORT      sshd port (required)
#   USER      remote user (default: the current user; benchmarks use a /bin/sh user)
#   KEY       private key file for USER (required; no passphrase, no agent needed)
#   HOST      sshd address (default 127.0.0.1)
#   SIZE_MB   MiB per transfer (default 1024)
#   RUNS      alternations (default 3)
#   AGENTSSH  the agentssh binary (default: target/release/agentssh, else from PATH)
#
# Example:
#   PORT=2222 USER=agentssh-bench KEY=~/.ssh/id_ed25519 bench/proxy.sh
#
# agentssh runs with private XDG dirs (its own daemon, shut down at exit); ssh runs with
# -F /dev/null and a throwaway known_hosts, so neither touches your configuration.
set -euo pipefail

: "${PORT:?set PORT to the sshd port}"
: "${KEY:?set KEY to the private key file}"
USER="${USER:-$(id -un)}"
HOST="${HOST:-127.0.0.1}"
SIZE_MB="${SIZE_MB:-1024}"
RUNS="${RUNS:-3}"
here="$(cd "$(dirname "$0")/.." && pwd)"
if [[ -z "${AGENTSSH:-}" ]]; then
    if [[ -x "$here/target/release/agentssh" ]]; then
        AGENTSSH="$here/target/release/agentssh"
    else
        AGENTSSH="$(command -v agentssh)"
    fi
fi
SIZE=$((SIZE_MB * 1024 * 1024))

tmp="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    XDG_RUNTIME_DIR="$tmp/run" XDG_CONFIG_HOME="$tmp/config" XDG_STATE_HOME="$tmp/state" \
        "$AGENTSSH" daemon shutdown >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/run" "$tmp/config" "$tmp/state"
chmod 700 "$tmp/run"

log() { printf 'bench/proxy: %s\n' "$*" >&2; }

# --- sink and source --------------------------------------------------------------------
# Each writes its port to $tmp/MODE.port once listening, then serves connections one at a time.
start_server() { # $1 = sink|source
    perl -MIO::Socket::INET -e '
        my ($mode, $size) = @ARGV;
        $SIG{PIPE} = "IGNORE";   # a client that leaves early must not kill the server
        my $l = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0,
                                      Listen => 16, ReuseAddr => 1) or die "listen: $!";
        $| = 1; print $l->sockport, "\n";
        my $buf = "\0" x (1 << 20);
        while (my $c = $l->accept) {
            if ($mode eq "sink") {
                my $got = 0;
                while ($got < $size) {
                    my $n = sysread($c, my $chunk, 1 << 20);
                    last unless $n;
                    $got += $n;
                }
                syswrite($c, "ok\n");
            } else {
                my $left = $size;
                while ($left > 0) {
                    my $n = syswrite($c, $buf, $left < length($buf) ? $left : length($buf));
                    last unless defined $n;
                    $left -= $n;
                }
            }
            close $c;
        }' "$1" "$SIZE" >"$tmp/$1.port" &
    pids+=("$!") # not in a $(...) subshell: cleanup must see this pid
    for _ in $(seq 100); do
        [[ -s "$tmp/$1.port" ]] && return 0
        sleep 0.05
    done
    log "the $1 server did not start"
    exit 1
}
start_server sink
start_server source
SINK="$(cat "$tmp/sink.port")"
SOURCE="$(cat "$tmp/source.port")"

wait_port() { # wait until 127.0.0.1:$1 accepts
    for _ in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    log "port $1 never opened"
    return 1
}

# --- agentssh tunnels -------------------------------------------------------------------
agentssh() {
    XDG_RUNTIME_DIR="$tmp/run" XDG_CONFIG_HOME="$tmp/config" XDG_STATE_HOME="$tmp/state" \
        "$AGENTSSH" "$@"
}
a_forward() { # $1 = target port; prints the local port
    local out
    out="$(agentssh --json proxy create -H "$HOST" -P "$PORT" -u "$USER" \
        --private-key-path "$KEY" --local 127.0.0.1:0 --remote "127.0.0.1:$1")"
    [[ "$out" == *'"ok":true'* ]] || { log "agentssh proxy create failed: $out"; exit 1; }
    sed -E 's/.*"local":"127\.0\.0\.1:([0-9]+)".*/\1/' <<<"$out"
}
A_UP="$(a_forward "$SINK")"
A_DOWN="$(a_forward "$SOURCE")"

# --- ssh -L tunnels -----------------------------------------------------------------------
free_port() {
    perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(LocalAddr=>"127.0.0.1",LocalPort=>0,Listen=>1)->sockport'
}
# ssh_forward UP_PORT DOWN_PORT [ssh options...]: one `ssh -N` carrying both tunnels.
ssh_forward() {
    local up="$1" down="$2"
    shift 2
    ssh -N -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -i "$KEY" \
        -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile="$tmp/known_hosts" \
        -o ExitOnForwardFailure=yes -o LogLevel=ERROR -p "$PORT" "$@" \
        -L "127.0.0.1:$up:127.0.0.1:$SINK" -L "127.0.0.1:$down:127.0.0.1:$SOURCE" \
        "$USER@$HOST" &
    pids+=("$!")
    wait_port "$up"
    wait_port "$down"
}
# OpenSSH as configured by default (ChaCha20-Poly1305 first)...
S_UP="$(free_port)"
S_DOWN="$(free_port)"
ssh_forward "$S_UP" "$S_DOWN"
# ...and, for reference, forced to the cipher agentssh prefers on CPUs with AES
# instructions, so the table can tell the cipher's share from the forwarding code's.
G_UP="$(free_port)"
G_DOWN="$(free_port)"
ssh_forward "$G_UP" "$G_DOWN" -c aes256-gcm@openssh.com

# --- measurements -----------------------------------------------------------------------
now_ns() { date +%s%N; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }'; }
up() { # $1 = tunnel port; prints seconds
    local t0 t1 ack
    t0="$(now_ns)"
    exec 3<>"/dev/tcp/127.0.0.1/$1"
    dd if=/dev/zero bs=1M count="$SIZE_MB" status=none >&3
    read -r ack <&3
    exec 3>&-
    t1="$(now_ns)"
    [[ "$ack" == ok ]] || { log "sink did not acknowledge through port $1"; exit 1; }
    seconds "$t0" "$t1"
}
down() { # $1 = tunnel port; prints seconds
    local t0 t1 got
    t0="$(now_ns)"
    got="$(wc -c <"/dev/tcp/127.0.0.1/$1")"
    t1="$(now_ns)"
    [[ "$got" == "$SIZE" ]] || { log "got $got of $SIZE bytes through port $1"; exit 1; }
    seconds "$t0" "$t1"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

: >"$tmp/a_up"; : >"$tmp/s_up"; : >"$tmp/g_up"; : >"$tmp/a_down"; : >"$tmp/s_down"; : >"$tmp/g_down"
log "streaming $SIZE_MB MiB each way, $RUNS alternations (agentssh vs ssh -L, sshd $HOST:$PORT)"
for i in $(seq "$RUNS"); do
    up "$A_UP" >>"$tmp/a_up"
    up "$S_UP" >>"$tmp/s_up"
    up "$G_UP" >>"$tmp/g_up"
    down "$A_DOWN" >>"$tmp/a_down"
    down "$S_DOWN" >>"$tmp/s_down"
    down "$G_DOWN" >>"$tmp/g_down"
    log "run $i done"
done

report() { # $1 = direction
    local a s g
    a="$(median <"$tmp/a_$1")"
    s="$(median <"$tmp/s_$1")"
    g="$(median <"$tmp/g_$1")"
    awk -v d="$1" -v a="$a" -v s="$s" -v g="$g" -v mb="$SIZE_MB" 'BEGIN {
        printf "%-5s agentssh %7.1f MiB/s   ssh -L %7.1f MiB/s   ratio %.2f   ssh -L -c aes256-gcm %7.1f MiB/s   ratio %.2f\n",
            d, mb / a, mb / s, s / a, mb / g, g / a }'
}
report up
report down
