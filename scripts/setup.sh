#!/usr/bin/env bash
# All set-up for the tests on a fresh Debian machine that has only Node and npm:
# the Debian packages the integration tests use, then the npm dependencies.
# Used by the README's test command and by CI (.ci/run). Needs root (or sudo) for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real broker, ptys, an independent Modbus peer and master, certificates, systemd tools,
# debootstrap and systemd-nspawn (boots the Debian root) for the package install test, lintian,
# the sd_notify build dependencies, binutils (strip) and dpkg-dev (dpkg-shlibdeps) for the .deb,
# and the filesystem tools the gateway image is built with (packaging/image/).
want=(mosquitto socat python3-pymodbus python3-serial-asyncio mbpoll openssl systemd systemd-container debootstrap lintian libsystemd-dev pkg-config dpkg-dev binutils dosfstools mtools fdisk xz-utils e2fsprogs)
need=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing Debian packages: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
