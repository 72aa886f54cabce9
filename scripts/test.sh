#!/usr/bin/env bash
# Run the whole agentssh test suite on a fresh machine:
#   scripts/test.sh [extra args passed to the test binaries, e.g. a name filter]
# Prepares the machine (scripts/test-setup.sh: sshd, test users, tmux, ...), then runs
# `cargo test` on the library, binaries and tests, then every bench once in test mode. Exits with cargo's status.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/test-setup.sh

# Tests start real sshd processes and agentssh daemons; 4 threads keeps a 2-core
# machine busy without starving the time-sensitive ones. Override with TEST_THREADS.
threads="${TEST_THREADS:-4}"

set +e
cargo test --lib --bins --tests -- --test-threads="$threads" "$@"
status=$?
if [ "$status" -eq 0 ] && [ "$#" -eq 0 ]; then
    # Criterion benches run once each in test mode (they take no libtest flags).
    cargo test --benches
    status=$?
fi
exit "$status"
