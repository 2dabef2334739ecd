#!/usr/bin/env bash
# Installs kubectl from Debian's packages, so that `kubectl kustomize deploy/kubernetes`
# (test/kubernetes.test.ts) can render the manifests. Debian 12 ships it as
# `kubernetes-client` (kubectl 1.20, kustomize 2.0); a `kubectl` package is used where
# the configured sources have one. Nothing talks to a cluster: only `kustomize` is used.
# Idempotent and quiet: does nothing but print the version when kubectl is on PATH.
#
# Usage: scripts/install-kubectl.sh        (as root, or with sudo available)
set -euo pipefail

if command -v kubectl >/dev/null 2>&1; then
  echo "kubectl already installed: $(command -v kubectl) ($(kubectl version --client 2>/dev/null | head -1))"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "kubectl is not on PATH and apt-get is not available: install kubectl by hand." >&2
  exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "Need root (or sudo) to install kubectl." >&2
    exit 1
  fi
fi

${SUDO[@]+"${SUDO[@]}"} apt-get update -qq

package=""
for candidate in kubernetes-client kubectl; do
  # Capture first: `grep -q` exits early, which would SIGPIPE apt-cache under pipefail.
  policy="$(apt-cache policy "$candidate" 2>/dev/null)"
  if grep -Eq 'Candidate: [0-9]' <<<"$policy"; then
    package="$candidate"
    break
  fi
done
if [ -z "$package" ]; then
  echo "No installable kubectl package (kubernetes-client or kubectl) in the configured apt sources." >&2
  exit 1
fi

${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "$package" >/dev/null

if ! command -v kubectl >/dev/null 2>&1; then
  echo "The $package package installed, but kubectl is still not on PATH." >&2
  exit 1
fi
echo "installed $package: $(kubectl version --client 2>/dev/null | head -1)"
