#!/usr/bin/env bash
# Run the whole agentssh test suite on a fresh machine:
#   scripts/test.sh [extra args passed to the test binaries, e.g. a name filter]
# Prepares the machine (scripts/test-setup.sh: sshd, test users, tmux, ...), then runs
# `cargo test --all-targets`. Exits with cargo's status.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/test-setup.sh

# Tests start real sshd processes and agentssh daemons; 4 threads keeps a 2-core
# machine busy without starving the time-sensitive ones. Override with TEST_THREADS.
threads="${TEST_THREADS:-4}"

set +e
cargo test --all-targets -- --test-threads="$threads" "$@"
status=$?
exit "$status"
