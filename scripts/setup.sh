#!/usr/bin/env bash
# Installs what hoist's build, demo and tests need on Debian 12, as root. Idempotent: a package
# already present is not asked for again, so a second run costs a few dpkg look-ups.
set -euo pipefail

packages=(
  docker-registry   # the real registry the tests and the demo pull from
  apache2-utils     # htpasswd, for the private-registry tests
  runc crun         # OCI runtimes
  busybox-static    # the userland of the test and demo images
  iproute2 curl ca-certificates
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's own service for docker-registry would hold port 5000; tests start their own.
if command -v systemctl >/dev/null && systemctl is-active -q docker-registry 2>/dev/null; then
  systemctl stop docker-registry || true
fi

# The stock kubectl, for the demo and the API tests: Google's `kubectl` package puts the
# versioned clients (kubectl.1.27 ... kubectl.1.33) beside its dispatcher.
if [ ! -x /usr/lib/google-cloud-sdk/bin/kubectl.1.33 ]; then
  if ! apt-get install -y -q --no-install-recommends kubectl >/dev/null 2>&1 \
    || [ ! -x /usr/lib/google-cloud-sdk/bin/kubectl.1.33 ]; then
    echo "setup: the stock kubectl 1.27-1.33 are missing: install the \`kubectl\` package from" \
      "Google's Cloud SDK apt repository, then run this again" >&2
    exit 1
  fi
fi

if ! command -v cargo >/dev/null; then
  # Debian 12's rustc (1.63) is too old for this workspace (edition 2024).
  echo "setup: cargo not found; install Rust 1.95 or later with rustup, then run this again" >&2
  exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest"
  cargo install --locked cargo-nextest >/dev/null
fi
