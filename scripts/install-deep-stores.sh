#!/usr/bin/env bash
# Installs the stores deep mode reads, so that its tests run against real servers:
# Debian's `redis-server` (stands in for Kvrocks and the in-memory Redis: same protocol,
# same commands) and PostgreSQL's server binaries (`initdb`, `pg_ctl`, `postgres`; the tests
# start throw-away clusters in temp dirs on random ports, never the package's own cluster).
# Idempotent and quiet: prints one line per tool when both are already there.
#
# Usage: scripts/install-deep-stores.sh        (as root, or with sudo available)
set -euo pipefail

pg_bin() {
  # Debian keeps initdb/pg_ctl off PATH (in /usr/lib/postgresql/<major>/bin).
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return 0; fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  return 1
}

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
pg_bin >/dev/null || need+=(postgresql)

if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "Missing ${need[*]} and apt-get is not available: install them with your package manager." >&2
    exit 1
  fi
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
      echo "Need root (or sudo) to install ${need[*]}." >&2
      exit 1
    fi
  fi
  ${SUDO[@]+"${SUDO[@]}"} apt-get update -qq
  # policy-rc.d-less containers: the packages' own services may fail to start; the tests
  # never use them (they start their own servers), so that is harmless.
  ${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

command -v redis-server >/dev/null 2>&1 || { echo "redis-server still not on PATH" >&2; exit 1; }
bin="$(pg_bin)" || { echo "PostgreSQL's initdb/pg_ctl still not found" >&2; exit 1; }
echo "redis-server: $(redis-server --version | awk '{print $3}')"
echo "postgresql: $("$bin/initdb" --version) ($bin)"
