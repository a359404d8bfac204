#!/usr/bin/env bash
# Install the system packages regpeek's tests, demo and benchmarks use (Debian/Ubuntu), if missing:
# python3-venv (what `python3 -m venv` needs on a bare Debian/Ubuntu), the CNCF distribution registry,
# skopeo and umoci (independent oracles), htpasswd, GNU time, and for Singularity/Apptainer images the
# squashfs tools (mksquashfs, tar2sqfs) and siftool (the reference SIF tool).
# `install-deps.sh demo` installs only what `make demo` needs.
set -euo pipefail
if [ "${1:-}" = "demo" ]; then
    packages=(python3-venv docker-registry siftool squashfs-tools squashfs-tools-ng)
else
    packages=(python3-venv docker-registry skopeo umoci apache2-utils time siftool squashfs-tools squashfs-tools-ng)
fi
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
echo "installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian package may start a registry service on :5000; the tests start their own.
if command -v systemctl >/dev/null 2>&1; then $sudo systemctl disable --now docker-registry >/dev/null 2>&1 || true; fi
