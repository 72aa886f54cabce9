# The private world bench/run.sh and bench/mcp.sh time in: a scratch dir on /dev/shm, an
# isolated client HOME/XDG tree (so the agentssh daemon autostarted there is private), a fresh
# client key, and a private sshd on a random 127.0.0.1 port that lets only $BENCH_USER in
# with that key, with known_hosts pre-seeded for both ssh and agentssh. Source it after
# lib.sh; it defines functions only.
#
# The caller sets BENCH_USER, SSHD, SSH, SSH_KEYGEN and defines log and die, then:
#
#   bench_private_init PREFIX      WORK (/dev/shm/PREFIX.XXXXXX), RUN_ID; empty SSHD_PID,
#                                  DAEMON_STARTED
#   trap bench_private_cleanup EXIT  (or a cleanup of its own that calls it last)
#   bench_private_client           C, CLIENT_ENV, KEY; in_env runs a command in that env
#   bench_private_sshd             S, SSHD_PID, PORT, HOST_PUB, KH (known_hosts seeded)
#
# bench_private_cleanup stops everything the run started: the daemon (`daemon shutdown`
# when DAEMON_STARTED is set, then any process marked with AGENTSSH_BENCH_ID=$RUN_ID), the
# ssh ControlMaster at $WORK/cm, sshd and its per-connection children; then removes WORK.

bench_private_init() { # PREFIX
    WORK="$(mktemp -d "/dev/shm/$1.XXXXXX")"
    chmod 0755 "$WORK" # sshd reads authorized_keys as the bench user
    RUN_ID="$1-$$-$(basename "$WORK")"
    SSHD_PID=""
    DAEMON_STARTED=""
}

# Runs a command with exactly the client environment.
in_env() { env -i "${CLIENT_ENV[@]}" "$@"; }

# Pids of processes this run started that may have outlived it (the autostarted daemon and
# its children), recognised by the AGENTSSH_BENCH_ID marker in their environment.
marked_pids() {
    local p
    for p in /proc/[0-9]*; do
        [[ ${p#/proc/} == "$$" ]] && continue
        if { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qx "AGENTSSH_BENCH_ID=$RUN_ID"; then
            echo "${p#/proc/}"
        fi
    done
}

# All descendants of a pid (sshd's per-connection processes).
descendants() {
    local kid
    for kid in $(pgrep -P "$1" 2>/dev/null); do
        echo "$kid"
        descendants "$kid"
    done
}

# Waits (up to 10 s) until FILE contains PATTERN, or PID has exited; true iff it does.
wait_for_log() { # FILE PATTERN PID
    local _
    for _ in $(seq 100); do
        grep -q "$2" "$1" && return 0
        kill -0 "$3" 2>/dev/null || break
        sleep 0.1
    done
    grep -q "$2" "$1"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# TCP connections sshd has accepted so far.
connections() { grep -c "Connection from " "$S/sshd.log" || true; }

bench_private_cleanup() {
    set +e
    [[ -n ${WORK:-} ]] || return 0
    if [[ -n ${DAEMON_STARTED:-} ]]; then
        in_env "$WORK/agentssh" --json daemon shutdown >/dev/null 2>&1
    fi
    if [[ -S $WORK/cm ]]; then
        "$SSH" -o ControlPath="$WORK/cm" -O exit "$BENCH_USER@127.0.0.1" >/dev/null 2>&1
    fi
    local left
    left="$(marked_pids)"
    if [[ -n $left ]]; then
        # shellcheck disable=SC2086
        kill $left 2>/dev/null
    fi
    if [[ -n ${SSHD_PID:-} ]]; then
        # shellcheck disable=SC2046
        kill $(descendants "$SSHD_PID") "$SSHD_PID" 2>/dev/null
        wait "$SSHD_PID" 2>/dev/null
    fi
    rm -rf "$WORK"
}

bench_private_client() {
    C="$WORK/c"
    local d
    for d in home home/.ssh config config/agentssh state data cache run; do
        mkdir -p "$C/$d"
        chmod 0700 "$C/$d"
    done
    CLIENT_ENV=(
        "PATH=$PATH" "HOME=$C/home" "XDG_CONFIG_HOME=$C/config" "XDG_STATE_HOME=$C/state"
        "XDG_DATA_HOME=$C/data" "XDG_CACHE_HOME=$C/cache" "XDG_RUNTIME_DIR=$C/run"
        "USER=$(id -un)" "LOGNAME=$(id -un)" "LANG=C.UTF-8" "AGENTSSH_BENCH_ID=$RUN_ID"
    )
    KEY="$C/home/.ssh/id_ed25519"
    "$SSH_KEYGEN" -q -t ed25519 -N '' -C agentssh-bench-client -f "$KEY"
}

_bench_sshd_config() { # PORT WITH_PENALTIES
    cat >"$S/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $1
HostKey $S/host_ed25519
PidFile $S/sshd.pid
AuthorizedKeysFile $S/authorized_keys
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
AllowUsers $BENCH_USER
Subsystem sftp internal-sftp
LogLevel VERBOSE
MaxStartups 100:30:200
ClientAliveInterval 0
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding yes
EOF
    # OpenSSH >= 9.8 would penalise 127.0.0.1 after failed or aborted connections.
    if [[ $2 == yes ]]; then
        echo "PerSourcePenalties no" >>"$S/sshd_config"
    fi
}

bench_private_sshd() {
    S="$WORK/sshd"
    mkdir -p "$S"
    chmod 0755 "$S"
    "$SSH_KEYGEN" -q -t ed25519 -N '' -C agentssh-bench-host -f "$S/host_ed25519"
    cut -d' ' -f1,2 "$KEY.pub" >"$S/authorized_keys"
    chmod 0644 "$S/authorized_keys"

    local penalties=yes port _attempt
    _bench_sshd_config 22 yes
    if ! "$SSHD" -t -f "$S/sshd_config" 2>/dev/null; then
        penalties=no
        _bench_sshd_config 22 no
        "$SSHD" -t -f "$S/sshd_config" || die "sshd -t rejected the generated config"
    fi
    PORT=""
    for _attempt in 1 2 3 4 5; do
        port="$(free_port)"
        _bench_sshd_config "$port" "$penalties"
        : >"$S/sshd.log"
        "$SSHD" -D -e -f "$S/sshd_config" -E "$S/sshd.log" </dev/null >/dev/null 2>"$S/sshd.stderr" &
        SSHD_PID=$!
        if wait_for_log "$S/sshd.log" "Server listening on 127.0.0.1 port $port\." "$SSHD_PID"; then
            PORT="$port"
            break
        fi
        kill "$SSHD_PID" 2>/dev/null || true
        wait "$SSHD_PID" 2>/dev/null || true
        SSHD_PID=""
    done
    [[ -n $PORT ]] || die "sshd did not start: $(cat "$S/sshd.log" "$S/sshd.stderr")"
    log "sshd pid $SSHD_PID on 127.0.0.1:$PORT"

    # Pre-seed known_hosts for OpenSSH and agentssh (~/.ssh/known_hosts and agentssh's own).
    HOST_PUB="$(cut -d' ' -f1,2 "$S/host_ed25519.pub")"
    KH="$C/home/.ssh/known_hosts"
    echo "[127.0.0.1]:$PORT $HOST_PUB" >"$KH"
    cp "$KH" "$C/config/agentssh/known_hosts"
    chmod 0600 "$KH" "$C/config/agentssh/known_hosts"
}
