#!/usr/bin/env bash
# Installs what test/cluster/image.test.ts needs to run the bridge's image as a container: Debian's
# podman with runc (crun, podman's first choice, refuses the cgroup setup of some sandboxes; runc runs
# there) and skopeo (reads the archive as a registry client would, and pushes it). Only as root
# with apt-get (CI: a Debian machine); anywhere else it says why it installs nothing and exits 0,
# and the test skips the podman run with that reason (the root-filesystem run needs no extra package).
#
# Usage: bash scripts/image/container-tools.sh [--check]
#   --check  install nothing: exit 0 when the tools are there, 1 (with what is missing) when not.
set -euo pipefail

PACKAGES=(podman runc skopeo)
missing=()
for tool in "${PACKAGES[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "[container-tools] podman, runc and skopeo are installed ($(podman --version))"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "[container-tools] missing: ${missing[*]}" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "[container-tools] not installing ${missing[*]}: needs root and apt-get (Debian/Ubuntu)." \
    "The image tests will skip the podman run and say why; install them by hand to have it." >&2
  exit 0
fi

echo "[container-tools] installing ${missing[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
# --no-install-recommends: no crun (see above), fuse-overlayfs or slirp4netns; the test runs podman
# as root with host networking and the kernel's overlayfs.
# The lock timeout: wait for another apt or dpkg run on the machine rather than fail on its lock.
apt_get() { apt-get -o DPkg::Lock::Timeout=300 "$@"; }
install() { apt_get install -y -q --no-install-recommends "${PACKAGES[@]}"; }
# A fresh machine has no package lists yet; an old list may name versions the mirror no longer has.
if ! install; then
  apt_get update -q
  install
fi
echo "[container-tools] $(podman --version), $(runc --version | head -n 1), $(skopeo --version)"
