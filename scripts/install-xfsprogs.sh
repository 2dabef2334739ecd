#!/usr/bin/env bash
# Installs mkfs.xfs (Debian/Ubuntu's `xfsprogs`) so test/vault-reflink.test.ts can make a
# reflink-capable XFS loop mount and test `--vault-mode reflink` for real.
# Idempotent: does nothing when mkfs.xfs is already there. Never fatal: without it the
# reflink test skips (it fails only under CI=true when mkfs.xfs is still missing).
set -uo pipefail
if command -v mkfs.xfs >/dev/null 2>&1; then
  echo "mkfs.xfs already installed: $(command -v mkfs.xfs)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" -ne 0 ]; then
  echo "mkfs.xfs missing and cannot install it here (needs root and apt-get)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends xfsprogs >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends xfsprogs >/dev/null 2>&1; } || echo "xfsprogs could not be installed" >&2
command -v mkfs.xfs || true
