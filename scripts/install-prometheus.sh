#!/usr/bin/env bash
# Installs promtool (from Debian/Ubuntu's `prometheus` package) so that
# `promtool check rules` / `promtool test rules` and the grafana-* vitest cases can run.
# Idempotent: does nothing but print the version when promtool is already on PATH.
#
# Usage: scripts/install-prometheus.sh        (as root, or with sudo available)
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
  echo "promtool already installed: $(command -v promtool)"
  promtool --version
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "promtool is not on PATH and apt-get is not available." >&2
  echo "Install it from https://prometheus.io/download/ (it ships in the prometheus tarball)." >&2
  exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "Need root (or sudo) to install the prometheus package." >&2
    exit 1
  fi
fi

${SUDO[@]+"${SUDO[@]}"} apt-get update

# Capture first: `grep -q` exits early, which would SIGPIPE apt-cache under pipefail.
policy="$(apt-cache policy prometheus)"
if ! grep -Eq 'Candidate: [0-9]' <<<"$policy"; then
  echo "No installable 'prometheus' package in the configured apt sources:" >&2
  echo "$policy" >&2
  exit 1
fi

# The package also ships the Prometheus server. Where systemd runs, Debian enables and
# starts prometheus.service; run `systemctl disable --now prometheus` if only promtool is wanted.
${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends prometheus

if ! command -v promtool >/dev/null 2>&1; then
  echo "The prometheus package installed, but promtool is still not on PATH." >&2
  exit 1
fi
promtool --version
