#!/usr/bin/env bash
# Prepare this machine for the agentssh test suite (Debian/Ubuntu).
#
# - installs openssh-server, openssh-client, tmux, hyperfine, procps, curl, man-db and
#   groff-base (tests: `agentssh man | man -l -`), zsh (shell integration in zsh), and
#   tcpdump (bench/run.sh's on-the-wire server time) when missing (runs `apt-get update`
#   only if something is missing);
# - creates /run/sshd (sshd's privilege-separation directory; it lives on tmpfs, so it is
#   gone after a reboot);
# - creates the local test users `agentssh-test` (/bin/bash) and `agentssh-bench` (/bin/sh)
#   with home directories and the password `agentssh-test-pw`, unlocked so that an sshd
#   running with `UsePAM no` accepts them; users that already exist get that shell, home
#   (/home/USER, existing and theirs), password and unlocked state too.
#
# Idempotent, and safe to run concurrently (the work is serialised with flock).
# Needs root, or passwordless sudo. Prints one line per action taken.
set -euo pipefail

PACKAGES=(openssh-server openssh-client tmux hyperfine procps curl tcpdump man-db groff-base zsh)
USERS=("agentssh-test:/bin/bash" "agentssh-bench:/bin/sh")
PASSWORD="agentssh-test-pw"
LOCK=/run/lock/agentssh-test-setup.lock

log() { printf 'test-setup: %s\n' "$*"; }

if [[ $EUID -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        log "re-running as root via sudo"
        exec sudo -n -- bash "$0" "$@"
    fi
    log "error: must run as root (or with passwordless sudo)" >&2
    exit 1
fi

mkdir -p "$(dirname "$LOCK")"
exec 9>"$LOCK"
if ! flock -n 9; then
    log "another test-setup is running; waiting for it"
    flock 9
fi

# --- packages -------------------------------------------------------------
installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}
missing=()
for p in "${PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    log "apt-get update (missing: ${missing[*]})"
    apt-get update -q >/dev/null
    log "apt-get install ${missing[*]}"
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
else
    log "packages already installed: ${PACKAGES[*]}"
fi

# --- the official Python MCP SDK (tests/mcp.rs drives `agentssh mcp` with it) ----
if python3 -c 'import mcp' 2>/dev/null; then
    log "python mcp SDK already installed"
elif command -v pip3 >/dev/null || python3 -m pip --version >/dev/null 2>&1; then
    log "pip install mcp"
    python3 -m pip install -q mcp >/dev/null 2>&1 \
        || python3 -m pip install -q --break-system-packages mcp >/dev/null
else
    log "no pip for python3: install python3-pip, then re-run (tests/mcp.rs needs the mcp SDK)"
    exit 1
fi

# --- sshd privilege-separation directory ----------------------------------
if [[ ! -d /run/sshd ]]; then
    mkdir -p /run/sshd
    log "created /run/sshd"
fi
# sshd refuses a privsep dir that is not root-owned or is group/world-writable.
chown root:root /run/sshd
chmod 0755 /run/sshd

# --- test users -----------------------------------------------------------
# A user that already exists (made by hand, by an older version of this script, or by
# something else) is brought to what the tests assume: login shell, home /home/USER that
# exists and belongs to the user, the known password, unlocked, no ageing.
for entry in "${USERS[@]}"; do
    user="${entry%%:*}"
    shell="${entry#*:}"
    want_home="/home/$user"
    if ! getent passwd "$user" >/dev/null; then
        useradd --create-home --home-dir "$want_home" --shell "$shell" "$user"
        log "created user $user (shell $shell, home $want_home)"
    fi
    current_shell="$(getent passwd "$user" | cut -d: -f7)"
    if [[ "$current_shell" != "$shell" ]]; then
        usermod --shell "$shell" "$user"
        log "changed the shell of $user from '${current_shell}' to $shell"
    fi
    current_home="$(getent passwd "$user" | cut -d: -f6)"
    if [[ "$current_home" != "$want_home" ]]; then
        # Never --move-home: the old one may be / or another user's directory.
        usermod --home "$want_home" "$user"
        log "changed the home of $user from '${current_home}' to $want_home"
    fi
    if [[ ! -d "$want_home" ]]; then
        mkdir -p "$want_home"
        cp -rT /etc/skel "$want_home" 2>/dev/null || true
        chmod 0755 "$want_home"
        log "created home $want_home for $user"
    fi
    # The home is named after the test user, so taking all of it over is safe.
    if [[ -n "$(find "$want_home" ! -user "$user" -print -quit)" ]]; then
        chown -R "$user:" "$want_home"
        log "gave $want_home (and everything in it) to $user"
    fi
    # Always (re)set the password: cheap, and it also unlocks an account created with
    # a locked ('!') password, which sshd with `UsePAM no` would refuse even for keys.
    echo "$user:$PASSWORD" | chpasswd
    usermod --unlock "$user" >/dev/null 2>&1 || true
    # No password ageing: an expired password would make sshd demand a change.
    chage --mindays 0 --maxdays -1 --inactive -1 --expiredate -1 "$user"
    log "set password and unlocked $user ($(passwd -S "$user" | cut -d' ' -f2))"
done

# --- asciinema (the third-party player the recording tests check against) ---
if ! command -v asciinema >/dev/null 2>&1; then
    if command -v pipx >/dev/null 2>&1; then
        pipx install asciinema
    else
        python3 -m pip install asciinema
    fi
    log "installed asciinema ($(asciinema --version))"
fi

log "done"
