#!/usr/bin/env bash
# Installs the Debian packages Circuito builds against (liblmdb-dev, libsodium-dev, pkg-config) when missing, and
# any other Debian packages named as arguments (scripts/test.sh: python3, which the benchmark summary's tests run).
set -euo pipefail
missing=()
for package in liblmdb-dev libsodium-dev pkg-config "$@"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo_prefix=""
  [ "$(id -u)" -eq 0 ] || sudo_prefix="sudo"
  $sudo_prefix apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_prefix apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "error: the Swift toolchain (swift) is not on PATH" >&2; exit 1; }
