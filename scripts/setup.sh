#!/usr/bin/env bash
# Installs what Starling needs on a bare Debian machine, idempotently:
#   system: JDK 17 (Cassandra 5 runs on nothing newer), Maven (fetches Kafka and Cassandra jars
#           from Maven Central), redis-server; Python 3.11+ venv in .venv with the project.
# A second run installs nothing. Jars are fetched later, by `starling stack up`.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
ls /usr/lib/jvm/*17*/bin/java >/dev/null 2>&1 || need+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || need+=(redis-server)
# kcat: the documented way to produce events by hand (docs/EVENTS.md); the tests run those examples.
command -v kcat >/dev/null 2>&1 || need+=(kcat)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: missing ${need[*]}; install them (Debian: apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "setup: installing ${need[*]} from Debian's packages" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian may start its own redis-server on 6379; the local stack runs its own instance.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
    systemctl stop redis-server && systemctl disable redis-server >/dev/null 2>&1 || true
  fi
fi

PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "setup: Python 3.11+ is required (found $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.starling-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python dependencies into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[test]'
  echo "$want" > "$stamp"
fi
