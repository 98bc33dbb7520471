#!/usr/bin/env bash
# What the compose test needs on a Debian machine without Docker (see ../shared/containers.md):
# rootful podman with runc, netavark (which needs iptables) and debootstrap for the stand-in base
# images, and podman-compose in its own venv, pinned with hashes. Idempotent; run as root (or with sudo).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${ATRIUM_PODMAN_COMPOSE_VENV:-$HOME/.cache/atrium/podman-compose}"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

packages=(podman runc fuse-overlayfs slirp4netns uidmap debootstrap netavark aardvark-dns iptables)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "compose-test: installing ${missing[*]}" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! "$VENV/bin/podman-compose" --version >/dev/null 2>&1 ||
   [ "$HERE/podman-compose.txt" -nt "$VENV/bin/podman-compose" ]; then
  echo "compose-test: installing podman-compose into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -qq --disable-pip-version-check --require-hashes -r "$HERE/podman-compose.txt"
  touch "$VENV/bin/podman-compose"
fi
