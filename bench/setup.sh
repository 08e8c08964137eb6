#!/usr/bin/env bash
# Installs the peers the benchmarks measure against and the tools that build the bench image,
# from Debian's packages. Idempotent; as root.
set -euo pipefail
# catatonit: podman 4.3 builds the infra ("pause") image of `kube play` from it, and it is only a
# Recommends of podman (without it: "finding pause binary: exec: catatonit not found", exit 125).
# containernetworking-plugins and iptables: the CNI bridge of podman's default network.
packages=(containerd podman skopeo catatonit containernetworking-plugins iptables uidmap
  fuse-overlayfs slirp4netns pigz debootstrap rsync jq curl python3 time docker-registry
  busybox-static runc file procps)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
