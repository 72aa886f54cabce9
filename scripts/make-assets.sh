#!/usr/bin/env bash
# Regenerate assets/ from a real run of `agentssh demo`:
#   assets/demo.cast      the terminal recording (asciinema v2)
#   assets/demo.svg       the recording as an animated SVG (svg-term-cli, from npm)
#   assets/dashboard.svg  a still of the dashboard, the deploy session taken over and answered
#
# It runs the demo inside a private tmux server under `asciinema rec`, plays the human
# (select deploy, take over with t, type y, Ctrl-], hand back with r, q), and converts.
# Needs: tmux, python3, node/npx; installs asciinema from PyPI (pip --user) when missing.
# Binary: $AGENTSSH_BIN, else target/release/agentssh (built with cargo when missing).
# Usage: bash scripts/make-assets.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=${AGENTSSH_BIN:-$root/target/release/agentssh}
if [[ ! -x $bin ]]; then
    cargo build --release --quiet
fi
if ! command -v asciinema >/dev/null; then
    python3 -m pip install --user --quiet asciinema
    export PATH="$HOME/.local/bin:$PATH"
fi
mkdir -p assets
work=$(mktemp -d /tmp/asassets-XXXXXX)
sock=$work/tmux.sock
tm() { tmux -f /dev/null -S "$sock" "$@"; }
cleanup() { tm kill-server 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# Waits up to $2 seconds for the pane to show $1.
wait_for() {
    local deadline=$((SECONDS + ${2:-30}))
    until tm capture-pane -p -t demo | grep -qF -- "$1"; do
        if ((SECONDS > deadline)); then
            echo "make-assets: the demo never showed '$1':" >&2
            tm capture-pane -p -t demo >&2
            exit 1
        fi
        sleep 0.2
    done
}

cols=130 rows=36
tm new-session -d -s demo -x $cols -y $rows \
    "cd '$work' && asciinema rec --overwrite -q --cols $cols --rows $rows -c '$bin demo' '$work/demo.cast'; touch '$work/done'; sleep 600"
wait_for "Sessions (3)" 60
sleep 2 # let the build session print and top redraw once, for the recording
tm send-keys -t demo j j
wait_for "Proceed? [y/N]" 30
sleep 1
tm send-keys -t demo t
wait_for "YOU ARE TYPING" 10
sleep 1
tm send-keys -t demo y
sleep 0.5
tm send-keys -t demo Enter
wait_for "Deploy complete" 20
sleep 1
tm capture-pane -e -p -t demo >"$work/dashboard.ansi"
tm send-keys -t demo C-]
wait_for "you hold control" 10
sleep 1
tm send-keys -t demo r
sleep 2
tm send-keys -t demo q
deadline=$((SECONDS + 30))
until [[ -e $work/done ]]; do
    ((SECONDS < deadline)) || { echo "make-assets: the demo did not exit" >&2; exit 1; }
    sleep 0.2
done

# The recording shows the temp paths of this run; keep them, they are gone anyway.
cp "$work/demo.cast" assets/demo.cast
python3 scripts/ansi2svg.py "$work/dashboard.ansi" $cols $rows >assets/dashboard.svg
npx --yes svg-term-cli@2 --in assets/demo.cast --out assets/demo.svg --window --no-cursor
ls -l assets/
