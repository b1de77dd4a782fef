#!/usr/bin/env bash
# package.sh - builds parkgw's Debian package and leaves it in dist/:
#   scripts/package.sh            -> dist/parkgw_<version>_<arch>.deb
#   scripts/package.sh --out DIR  -> DIR/parkgw_<version>_<arch>.deb
#   scripts/package.sh --build-dir D  packs an existing build D as configured
#                                 (CTest ops.package; a real package needs
#                                 prefix /usr, which the default build has)
# A release build (RelWithDebInfo, -Werror) with prefix /usr in build-deb/,
# packed by CPack with the project's control fields and maintainer scripts
# (CMakeLists.txt, systemd/deb/). Prints the .deb's path on its last line.
# Install it with: apt install ./dist/parkgw_<version>_<arch>.deb
# (docs/OPERATIONS.md). Exit 0 with the .deb written, 1 otherwise.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out=$src/dist
build=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    *) echo "usage: $0 [--out DIR] [--build-dir DIR]" >&2; exit 1 ;;
  esac
done
command -v cpack >/dev/null || { echo "$0: cpack missing (apt-get install cmake)" >&2; exit 1; }
command -v dpkg-deb >/dev/null || { echo "$0: dpkg-deb missing" >&2; exit 1; }
if [ -z "$build" ]; then
  build=$src/build-deb
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWERROR=ON \
    -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
  cmake --build "$build" -j"$(nproc)" --target parkgw parkgw-sim >/dev/null
fi
build=$(cd "$build" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/package.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Stage the install tree (stripped), then let CPack pack exactly that tree.
DESTDIR=$work/stage cmake --install "$build" --strip >"$work/install.log" 2>&1 ||
  { cat "$work/install.log" >&2; echo "$0: cmake --install failed" >&2; exit 1; }
(cd "$build" && cpack -G DEB -B "$work/out" --config CPackConfig.cmake \
   -D CPACK_INSTALL_CMAKE_PROJECTS= -D "CPACK_INSTALLED_DIRECTORIES=$work/stage;/" \
   >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log" >&2; echo "$0: cpack failed" >&2; exit 1; }
deb=$(ls "$work"/out/parkgw_*.deb)
mkdir -p "$out"
cp "$deb" "$out/"
dpkg-deb -f "$out/$(basename "$deb")" Package Version Architecture | sed 's/^/  /'
echo "$out/$(basename "$deb")"
