#!/usr/bin/env bash
# check-deb.sh - builds parkgw's .deb with CPack and checks it: the file list
# (binaries, unit, example config, profiles, man pages), the control fields
# (package name, runtime Depends), the maintainer scripts (postinst copies
# the example config only when absent, enables/starts only under systemd;
# prerm stops; postrm purge keeps the database), then unpacks it into a
# scratch root and runs `parkgw check` there against the example config.
#
#   scripts/check-deb.sh                 full build in build-deb with prefix /usr
#   scripts/check-deb.sh --build-dir D   package an existing build D as
#                                        configured (CTest ops.deb_contents)
# Exit 0 when every check passes, 1 otherwise.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    *) echo "usage: $0 [--build-dir DIR]" >&2; exit 1 ;;
  esac
done
if [ -z "$build" ]; then
  build=$src/build-deb
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
  cmake --build "$build" -j"$(nproc)" >/dev/null
fi
build=$(cd "$build" && pwd)
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
if [ "$prefix" = /usr ]; then etc=/etc; else etc=$prefix/etc; fi

work=$(mktemp -d "${TMPDIR:-/tmp}/check-deb.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
fails=0
ok()   { echo "ok   $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
expect() { # expect DESCRIPTION COMMAND...: the command must succeed
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then ok "$what"; else fail "$what"; fi
}

# The install tree: `cmake --install` into a staging root (it never builds,
# so this works on a finished build while ctest runs), then CPack packs that
# tree with the project's CPack settings (control fields, scripts).
stage=$work/stage
DESTDIR=$stage cmake --install "$build" --strip >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; echo "FAIL cmake --install"; exit 1; }
(cd "$stage" && find . -mindepth 1 ! -type d | sed 's|^\.||' | sort) >"$work/tree"
for f in "$prefix/bin/parkgw" "$prefix/lib/systemd/system/parkgw.service" \
         "$etc/parkgw/parkgw.cfg.example" "$prefix/share/parkgw/profiles/generic-electricity.cfg" \
         "$prefix/share/man/man1/parkgw.1" "$prefix/share/man/man5/parkgw.cfg.5"; do
  expect "install tree has $f" grep -qx -- "$f" "$work/tree"
done
(cd "$build" && cpack -G DEB -B "$work/out" --config CPackConfig.cmake \
   -D CPACK_INSTALL_CMAKE_PROJECTS= -D "CPACK_INSTALLED_DIRECTORIES=$stage;/" \
   >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; echo "FAIL cpack"; exit 1; }
deb=$(ls "$work"/out/parkgw_*.deb)
ok "built $(basename "$deb") (prefix $prefix)"

dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$work/files"
for f in "$prefix/bin/parkgw" \
         "$prefix/lib/systemd/system/parkgw.service" \
         "$etc/parkgw/parkgw.cfg.example" \
         "$prefix/share/parkgw/profiles/generic-electricity.cfg" \
         "$prefix/share/parkgw/profiles/generic-water.cfg" \
         "$prefix/share/parkgw/profiles/generic-gas.cfg" \
         "$prefix/share/parkgw/profiles/generic-wastewater.cfg" \
         "$prefix/share/parkgw/profiles/tariffs/pf-0.90.cfg" \
         "$prefix/share/man/man1/parkgw.1" \
         "$prefix/share/man/man5/parkgw.cfg.5"; do
  expect "contains $f" grep -qx -- "$f" "$work/files"
done
# The live config belongs to the user: the package must never ship it.
if grep -qx -- "$etc/parkgw/parkgw.cfg" "$work/files"; then fail "ships $etc/parkgw/parkgw.cfg"
else ok "does not ship $etc/parkgw/parkgw.cfg"; fi

dpkg-deb -f "$deb" Package >"$work/pkg"
expect "Package: parkgw" grep -qx parkgw "$work/pkg"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libmodbus5 libpaho-mqtt1.3 libsqlite3-0 libconfig9 libsystemd0 libjansson4 libmicrohttpd12 libcurl4; do
  case ", $depends," in *", $lib,"*) ok "Depends on $lib" ;; *) fail "Depends lacks $lib ($depends)" ;; esac
done
# Every shared library the binary links directly (DT_NEEDED) comes from one
# of the Depends packages (their own dependencies pull in the rest).
if command -v dpkg-query >/dev/null && command -v readelf >/dev/null; then
  needed=$(readelf -d "$build/parkgw" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
  for so in $(for n in $needed; do ldd "$build/parkgw" | awk -v n="$n" '$1 == n {print $3}'; done); do
    pkg=$(dpkg-query -S "$(readlink -f "$so")" 2>/dev/null | head -1 | cut -d: -f1) || pkg=""
    [ -z "$pkg" ] && pkg=$(dpkg-query -S "$so" 2>/dev/null | head -1 | cut -d: -f1) || true
    [ -z "$pkg" ] && continue
    case "$pkg" in lib*san[0-9]*)  # a -DWITH_ASAN=ON build, never packaged for real
      echo "note $(basename "$so") from $pkg: sanitizer build"; continue ;; esac
    case ", $depends," in *", $pkg,"*) ok "$(basename "$so") from $pkg is a dependency" ;;
      *) fail "$(basename "$so") comes from $pkg, not in Depends" ;; esac
  done
fi

mkdir -p "$work/ctl"
dpkg-deb -e "$deb" "$work/ctl"
for s in postinst prerm postrm; do
  expect "$s present and executable" test -x "$work/ctl/$s"
  expect "$s is valid sh" sh -n "$work/ctl/$s"
done
expect "conffiles lists the example" grep -qx "$etc/parkgw/parkgw.cfg.example" "$work/ctl/conffiles"
expect "postinst copies the example only when absent" \
  grep -q "if \[ ! -e \"\$CFG_DIR/parkgw.cfg\" \]" "$work/ctl/postinst"
expect "postinst acts on systemd only when it runs" grep -q "/run/systemd/system" "$work/ctl/postinst"
expect "postinst creates the group parkgw" grep -q "groupadd --system parkgw" "$work/ctl/postinst"
expect "postinst creates the user parkgw" grep -q "useradd --system --gid parkgw" "$work/ctl/postinst"
case ", $depends," in *", passwd,"*) ok "Depends on passwd (useradd in postinst)" ;;
  *) fail "Depends lacks passwd ($depends)" ;; esac
expect "postinst enables and starts" grep -q "systemctl enable parkgw.service" "$work/ctl/postinst"
expect "postinst try-restarts on upgrade" grep -q "systemctl try-restart parkgw.service" "$work/ctl/postinst"
expect "prerm stops the service" grep -q "systemctl stop parkgw.service" "$work/ctl/prerm"
expect "postrm purge removes the generated config" grep -q 'rm -f "$CFG_DIR/parkgw.cfg"' "$work/ctl/postrm"
if grep -q "rm .*/var/lib" "$work/ctl/postrm"; then fail "postrm deletes the database"
else ok "postrm keeps the database"; fi

# Run postinst against a scratch root: CFG_DIR is rewritten into it, and no
# systemd is running for it (no /run/systemd/system in the scratch root), so
# it must copy the example once and leave an edited config alone.
root=$work/root
dpkg-deb -x "$deb" "$root"
# (the user and group are the host's business: not created here)
sed -e "s|^CFG_DIR=\"|CFG_DIR=\"$root|" -e "s|/run/systemd/system|$root/run/systemd/system|" \
  -e "s|getent group parkgw|true|" -e "s|getent passwd parkgw|true|" \
  "$work/ctl/postinst" >"$work/postinst.local"
sh "$work/postinst.local" configure "" 2>/dev/null
expect "postinst installed parkgw.cfg from the example" \
  cmp "$root$etc/parkgw/parkgw.cfg" "$root$etc/parkgw/parkgw.cfg.example"
echo "# edited by the user" >>"$root$etc/parkgw/parkgw.cfg"
sh "$work/postinst.local" configure 0.0.9 2>/dev/null
expect "postinst keeps an existing parkgw.cfg on upgrade" grep -q "edited by the user" "$root$etc/parkgw/parkgw.cfg"

expect "binary looks for profiles in $prefix/share/parkgw/profiles" \
  grep -qa "$prefix/share/parkgw/profiles" "$root$prefix/bin/parkgw"
# The unpacked binary finds the unpacked profile library for @include.
if PARKGW_PROFILE_DIR="$root$prefix/share/parkgw/profiles" \
   "$root$prefix/bin/parkgw" check -c "$root$etc/parkgw/parkgw.cfg" >"$work/check.out" 2>&1; then
  ok "parkgw check passes on the example config"
else
  cat "$work/check.out"; fail "parkgw check on the example config"
fi
expect "unit in the package runs $prefix/bin/parkgw" \
  grep -q "^ExecStart=$prefix/bin/parkgw run -c $etc/parkgw/parkgw.cfg" \
  "$root$prefix/lib/systemd/system/parkgw.service"

if [ "$fails" -ne 0 ]; then echo "$fails check(s) failed"; exit 1; fi
echo "all .deb checks passed"
