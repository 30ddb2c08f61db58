#!/usr/bin/env bash
# The README's test command: set up, start the real local stack (Kafka, Cassandra, Redis), run
# every test against it. Extra arguments go to pytest. A stack this script started is stopped at
# the end; one that was already running is left running.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
./scripts/setup.sh
was_up=0
.venv/bin/starling stack status >/dev/null 2>&1 && was_up=1
t1=$(date +%s)
.venv/bin/starling stack up
t2=$(date +%s)
status=0
.venv/bin/python -m pytest "$@" || status=$?
t3=$(date +%s)
if [ "$was_up" = 0 ] && [ -z "${STARLING_KEEP_STACK:-}" ]; then
  .venv/bin/starling stack down >/dev/null 2>&1 || true
fi
echo "test.sh: setup $((t1 - t0))s, stack up $((t2 - t1))s, pytest $((t3 - t2))s, exit $status" >&2
# pytest's own exit code, unmasked: 5 (no tests collected) fails like any other.
exit "$status"
