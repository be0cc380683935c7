#!/usr/bin/env bash
# Usage: scripts/package-deb.sh [--out DIR] [--from INSTALLED_DIR]      (npm run package:deb)
#
# Builds eclor-edge_<version>_<arch>.deb with dpkg-deb for THIS machine's architecture and Node
# major version: the package contains native modules (better-sqlite3, @serialport/bindings-cpp,
# sd-notify). For arm64 gateways, run it on an arm64 machine (see docs/operations.md).
#   --out DIR    where to write the .deb (default: the repository root)
#   --from DIR   reuse a tree made by scripts/pack-install.sh instead of making one (the packaging
#                test does this to compile the native modules only once)
# Needs: node/npm, dpkg-dev (dpkg-deb, dpkg-shlibdeps, dpkg-parsechangelog), a C++ toolchain,
# binutils (strip), libsystemd-dev and pkg-config (for sd-notify).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=$root
from=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --from) from=${2:?--from needs a directory}; shift 2 ;;
    *) echo "package-deb: unknown argument '$1' (use --out DIR, --from DIR)" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)

cd "$root"
version=$(node -p 'require("./package.json").version')
arch=$(dpkg --print-architecture)
node_major=$(node -p 'process.versions.node.split(".")[0]')
# Native modules are built for one Node ABI (NODE_MODULE_VERSION, 115 for Node 20): the package
# accepts nodejs from the engines minimum (20.19, Debian 13) within the same major version only.
# Which nodejs *build* can load them is told by dpkg-shlibdeps below: modules compiled against
# Debian's nodejs link libnode.so.115 and get "libnode115", which NodeSource's nodejs does not
# provide (it would accept the version range and then fail to load better-sqlite3).
if [ "$node_major" = 20 ]; then low=20.19; else low="$node_major.0"; fi
nodejs_depends="nodejs (>= $low), nodejs (<< $((node_major + 1)))"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"
lib=$stage/usr/lib/eclor-edge

if [ -n "$from" ]; then
  mkdir -p "$(dirname "$lib")"
  cp -a "$from" "$lib"
else
  scripts/pack-install.sh "$lib" >/dev/null
fi

# The packaged unit is Type=notify with a watchdog: without the helper systemd would never see
# READY=1 and would kill the agent. Refuse to build such a package.
if ! (cd "$lib" && node -e 'require("sd-notify")') 2>/dev/null; then
  echo "package-deb: the sd-notify helper is not built (install libsystemd-dev and pkg-config," >&2
  echo "then rerun); the Type=notify unit cannot work without it." >&2
  exit 1
fi

install -d -m 0755 "$stage/usr/bin" "$stage/usr/lib/systemd/system" "$stage/etc/eclor-edge" \
  "$stage/DEBIAN" "$stage/usr/share/doc/eclor-edge"
ln -s ../lib/eclor-edge/dist/agent/main.js "$stage/usr/bin/eclor-edge"
install -m 0644 systemd/eclor-edge.service "$stage/usr/lib/systemd/system/eclor-edge.service"
install -m 0640 packaging/deb/config.yaml "$stage/etc/eclor-edge/config.yaml"
# A pristine copy: postinst does not start the service while the conffile is still the example.
install -m 0644 packaging/deb/config.yaml "$lib/config.example.yaml"
install -m 0644 packaging/deb/copyright "$stage/usr/share/doc/eclor-edge/copyright"
for s in preinst postinst prerm postrm; do install -m 0755 "packaging/deb/$s" "$stage/DEBIAN/$s"; done
install -m 0644 packaging/deb/conffiles "$stage/DEBIAN/conffiles"

# Normalise permissions (umask-independent): directories 0755, files 0644, executables 0755.
find "$stage" -path "$stage/DEBIAN" -prune -o -type d -exec chmod 0755 {} +
# Executable = a script with a #! line (npm tarballs carry stray exec bits on .js, LICENSE, C++
# sources); native modules are dlopen()ed, not executed: 0644 (lintian: shared-library-is-executable).
find "$lib" -type f -exec chmod 0644 {} +
{ find "$lib" -type f ! -name '*.node' -exec grep -lZ -m1 '^#!' {} + 2>/dev/null || true; } |
  xargs -0 -r sh -c 'for f; do [ "$(head -c 2 "$f")" != "#!" ] || chmod 0755 "$f"; done' sh
chmod 0755 "$lib/dist/agent/main.js"
chmod 0640 "$stage/etc/eclor-edge/config.yaml"

# Changelog (Debian format; a native package: changelog.gz) and the lintian overrides, each with
# its reason.
gzip -9n <packaging/deb/changelog >"$stage/usr/share/doc/eclor-edge/changelog.gz"
install -d -m 0755 "$stage/usr/share/lintian/overrides"
install -m 0644 packaging/deb/lintian-overrides "$stage/usr/share/lintian/overrides/eclor-edge"
changelog_version=$(dpkg-parsechangelog -l packaging/deb/changelog -S Version)
if [ "$changelog_version" != "$version" ]; then
  echo "package-deb: packaging/deb/changelog is at $changelog_version, package.json at $version:" >&2
  echo "add a changelog entry (dch -v $version, or by hand)" >&2
  exit 1
fi

# Shared-library dependencies of the native modules (libc6, libstdc++6, libsystemd0, libnode115
# when built with Debian's nodejs…), as debhelper's ${shlibs:Depends}. The V8/N-API symbols
# come from the node executable that loads them: not found in any library, hence --warnings=0.
mapfile -t natives < <(find "$lib" -name '*.node' -type f | LC_ALL=C sort)
shlibs=$(cd "$stage" && mkdir -p debian && : >debian/control &&
  dpkg-shlibdeps --warnings=0 -O "${natives[@]/#/-e}" | sed -n 's/^shlibs:Depends=//p')
rm -rf "$stage/debian"
[ -n "$shlibs" ] || { echo "package-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

installed_kb=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@INSTALLED_SIZE@/$installed_kb/" \
  -e "s/@NODEJS_DEPENDS@/$nodejs_depends/" -e "s/@SHLIBS_DEPENDS@/$shlibs/" packaging/deb/control.in >"$stage/DEBIAN/control"
(cd "$stage" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' |
  LC_ALL=C sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"

deb="$out/eclor-edge_${version}_${arch}.deb"
# --root-owner-group: every file root:root without fakeroot; postinst sets the few group owners.
dpkg-deb --root-owner-group -Zxz -z6 --build "$stage" "$deb" >/dev/null
echo "$deb"
