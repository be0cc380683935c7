#!/usr/bin/env bash
# Usage: scripts/pack-install.sh DEST
#
# The one recipe that turns this source tree into an installed, production-only eclor-edge in
# the empty directory DEST (DEST/package.json, DEST/dist/, DEST/node_modules/ with production
# dependencies only, native modules compiled for this machine's Node and architecture).
# The Dockerfile's build stage, `npm run package:deb` and the packaging test all run THIS file,
# so the test checks exactly what the image and the .deb ship.
#
# Why not `npm install ./eclor-edge-X.tgz`: npm pack leaves package-lock.json out, so installing
# the tarball re-resolves every transitive dependency and would ship versions no test has seen.
# We unpack the tarball (exactly the files `npm publish` would ship, see "files" in
# package.json), put the lockfile beside it and run `npm ci --omit=dev`.
set -euo pipefail

dest=${1:?usage: scripts/pack-install.sh DEST (an empty or missing directory)}
root=$(cd "$(dirname "$0")/.." && pwd)

mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
if [ -n "$(ls -A "$dest")" ]; then
  echo "pack-install: $dest is not empty; give an empty or missing directory" >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$root"
# Build explicitly (stdout to stderr so it cannot mix with pack's JSON), then pack without
# running `prepare` a second time.
npm run --silent build >&2
tgz=$(npm pack --ignore-scripts --json --pack-destination "$work" | node -e \
  'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[0].filename))')
tar -xzf "$work/$tgz" -C "$dest" --strip-components=1 --no-same-owner
cp package-lock.json "$dest/"

cd "$dest"
# --ignore-scripts: the root package's own lifecycle scripts (prepare = tsc) must not run here,
# dev tools are not installed. Dependencies' install scripts (native modules: better-sqlite3,
# @serialport/bindings-cpp, the optional sd-notify) run in the rebuild below, under the
# allowScripts list of package.json.
npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2
npm rebuild --no-audit --no-fund --loglevel=error >&2 || {
  # sd-notify is optional (it needs libsystemd-dev + pkg-config to compile): drop it when it
  # does not build, so the agent runs without systemd notifications (Type=exec unit).
  echo "pack-install: a native module failed to build; retrying without the optional sd-notify" >&2
  rm -rf node_modules/sd-notify
  npm rebuild --no-audit --no-fund --loglevel=error >&2
}
# Build intermediates and sources of the native modules are not needed at run time (object
# files, static libraries, SQLite's amalgamation source): about 20 MB less in the image.
find node_modules -type d \( -path '*/build/Release/obj' -o -path '*/build/Release/obj.target' \
  -o -path '*/build/Release/.deps' \) -prune -exec rm -rf {} +
find node_modules -path '*/build/Release/*' \( -name '*.a' -o -name 'test_extension.node' \) -delete
rm -rf node_modules/better-sqlite3/deps node_modules/better-sqlite3/src node_modules/@serialport/bindings-cpp/src
# Prebuilt binaries for other systems (@serialport/bindings-cpp ships Windows, macOS, Android,
# other CPUs and musl builds; node-gyp-build picks prebuilds/<platform>-<arch> at run time).
plat=$(node -p 'process.platform + "-" + process.arch')
glibc=$(node -p 'process.report.getReport().header.glibcVersionRuntime ? "yes" : "no"')
find node_modules -type d -name prebuilds -prune | while read -r d; do
  find "$d" -mindepth 1 -maxdepth 1 -type d ! -name "$plat" -exec rm -rf {} +
  if [ "$glibc" = yes ]; then find "$d" -name '*.musl.node' -delete; fi
done
# Native modules without their symbol tables (debugging symbols are of no use on a gateway).
if command -v strip >/dev/null; then
  find node_modules -name '*.node' -type f -exec strip --strip-unneeded {} +
fi
# Documentation, TypeScript sources/declarations and source maps of the dependencies are not
# used at run time; licence texts stay (LICENSE.md & co).
find node_modules -type f \( -name '*.md' -o -name '*.markdown' -o -name '*.ts' -o -name '*.mts' \
  -o -name '*.cts' -o -name '*.map' \) ! -iname 'licen[cs]e*' ! -iname 'copying*' \
  ! -iname 'notice*' -delete
# Nor their development files (linters, VCS, CI, npm's own) and HTML documentation sites.
find node_modules -type f \( -name '.npmignore' -o -name '.eslintrc*' -o -name '.git*' \
  -o -name '.travis.yml' -o -name '.editorconfig' -o -name '.prettierrc*' -o -name '.jshintrc' \
  -o -name '.nycrc*' -o -name '*.html' \) -delete
# npm marks bins executable when it links them; nothing links ours here (it is the root).
node -e 'for (const f of Object.values(require("./package.json").bin ?? {})) require("fs").chmodSync(f, 0o755)'
rm -f package-lock.json
echo "$dest"
