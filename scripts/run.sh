#!/usr/bin/env bash
# The README's run command: set up, then `starling run` (stack, topics and schema, worker, API,
# demo workload) and print what to try. Everything keeps running; `.venv/bin/starling stack down`
# stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/starling run
