#!/usr/bin/env bash
# check-group-access.sh - the parkgw group on the installed layout, in a
# chroot: the build is installed (cmake --install) into a scratch root with
# the libraries its binary needs, the example config installed as
# /etc/parkgw/parkgw.cfg (as postinst does), users parkgw (the service),
# alice (member of the group parkgw) and bob (not a member) in the root's
# own /etc/passwd and /etc/group, and /var/lib/parkgw made as the unit's
# StateDirectory= makes it (StateDirectoryMode=, owned by parkgw:parkgw).
# The service user fills the database with the unit's UMask= (`parkgw
# import`); then, inside the chroot and without root, alice runs `parkgw
# bill`, `query` and `status` (they must work) and bob runs `bill` (refused).
# The host's users are not touched.
#
#   scripts/check-group-access.sh --build-dir D      (CTest ops.group_access)
# Needs root (chroot). Exit 0 when every check passes, 1 when one fails, 77
# when it cannot run here.
set -euo pipefail
build=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    *) echo "usage: $0 --build-dir DIR" >&2; exit 1 ;;
  esac
done
[ -n "$build" ] || { echo "usage: $0 --build-dir DIR" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (chroot)"; exit 77; }
for t in chroot ldd; do
  command -v "$t" >/dev/null || { echo "SKIP: $t missing"; exit 77; }
done
build=$(cd "$build" && pwd)
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
if [ "$prefix" = /usr ]; then etc=/etc; else etc=$prefix/etc; fi

fails=0
ok()   { echo "ok   $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

work=$(mktemp -d "${TMPDIR:-/tmp}/check-group.XXXXXX")
trap 'umount "$work/root/proc" 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
root=$work/root
DESTDIR=$root cmake --install "$build" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; echo "FAIL cmake --install"; exit 1; }
chmod 0755 "$work" "$root"
bin=$prefix/bin/parkgw
unit=$root$prefix/lib/systemd/system/parkgw.service
key() { sed -n "s/^$1=//p" "$unit" | tail -1; }
[ "$(key User)" = parkgw ] && ok "unit runs as User=parkgw" || fail "unit User=$(key User)"
[ "$(key Group)" = parkgw ] && ok "unit has Group=parkgw" || fail "unit Group=$(key Group)"
umask_unit=$(key UMask); mode=$(key StateDirectoryMode)
case "$umask_unit" in 00[0-7]7) ok "UMask=$umask_unit: nothing for others" ;;
  *) fail "UMask=$umask_unit lets others read" ;; esac
case "$mode" in 07[0-7]0) ok "StateDirectoryMode=$mode" ;; *) fail "StateDirectoryMode=$mode" ;; esac

# The binary's libraries (and the loader) at their paths inside the root.
for lib in $(ldd "$build/parkgw" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
# An ASan build reads its options and runs LeakSanitizer through /proc.
if ldd "$build/parkgw" | grep -q libasan; then
  mkdir -p "$root/proc" && mount -t proc proc "$root/proc" ||
    { echo "FAIL cannot mount /proc in the root for the ASan build"; exit 1; }
fi
[ -e /usr/share/zoneinfo/Asia/Shanghai ] &&
  { mkdir -p "$root/usr/share/zoneinfo/Asia"; cp /usr/share/zoneinfo/Asia/Shanghai "$root/usr/share/zoneinfo/Asia/"; }
mkdir -p "$root/etc" "$root/tmp" "$root/var/lib"
chmod 1777 "$root/tmp"
printf '%s\n' "root:x:0:0:root:/root:/bin/sh" "parkgw:x:2001:2001::/var/lib/parkgw:/usr/sbin/nologin" \
  "alice:x:2002:2002::/tmp:/bin/sh" "bob:x:2003:2003::/tmp:/bin/sh" >"$root/etc/passwd"
printf '%s\n' "root:x:0:" "parkgw:x:2001:alice" "alice:x:2002:" "bob:x:2003:" >"$root/etc/group"
cp "$root$etc/parkgw/parkgw.cfg.example" "$root$etc/parkgw/parkgw.cfg"   # what postinst does
chmod 0644 "$root$etc/parkgw/parkgw.cfg"
# The example's database path is /var/lib/parkgw/parkgw.db.
grep -q 'path = "/var/lib/parkgw/parkgw.db"' "$root$etc/parkgw/parkgw.cfg" &&
  ok "the example config keeps its database in /var/lib/parkgw" || fail "example storage path"
mkdir -p "$root/var/lib/parkgw"
chown 2001:2001 "$root/var/lib/parkgw"
chmod "$mode" "$root/var/lib/parkgw"
printf '%s\n' "chengtong-plastics,w1,total_m3,2026-11-01T00:00:00+08:00,100" \
  "chengtong-plastics,w1,total_m3,2026-11-15T00:00:00+08:00,130" >"$root/tmp/r.csv"
chmod 0644 "$root/tmp/r.csv"

cfg=$etc/parkgw/parkgw.cfg
in_root() { # in_root UID GID GROUPS CMD...: run CMD inside the root as that user
  local u=$1 g=$2 gs=$3; shift 3
  (cd "$root" && chroot --userspec="$u:$g" ${gs:+--groups="$gs"} "$root" "$@")
}
if (umask "$umask_unit"; in_root 2001 2001 "" "$bin" import -c "$cfg" --csv /tmp/r.csv) \
     >"$work/import.out" 2>&1; then
  ok "the service user wrote /var/lib/parkgw/parkgw.db"
else
  cat "$work/import.out"; fail "import as the service user"
fi
dbmode=$(stat -c %a "$root/var/lib/parkgw/parkgw.db" 2>/dev/null || echo none)
[ "$dbmode" = 640 ] && ok "the database is mode 640 (group parkgw may read)" || fail "database mode $dbmode"

if in_root 2002 2002 2001 "$bin" bill -c "$cfg" --from 2026-11-01T00:00+08:00 --to 2026-12-01T00:00+08:00 \
     --enterprise 湖南城通塑业有限公司 --format csv >"$work/bill.out" 2>&1 &&
   grep -q "^chengtong-plastics,w1,water,m3,.*,30\.000," "$work/bill.out"; then
  ok "alice (uid 2002, group parkgw, not root) runs bill in the chroot: 30 m3"
else
  cat "$work/bill.out"; fail "bill as a member of the group"
fi
if in_root 2002 2002 2001 "$bin" query -c "$cfg" chengtong-plastics/w1/total_m3 \
     --from 2026-11-01T00:00+08:00 --to 2026-12-01T00:00+08:00 >"$work/query.out" 2>&1 &&
   grep -q "total_m3" "$work/query.out"; then
  ok "alice runs query"
else
  cat "$work/query.out"; fail "query as a member"
fi
if in_root 2002 2002 2001 "$bin" status -c "$cfg" >"$work/status.out" 2>&1; then
  ok "alice runs status"
else
  cat "$work/status.out"; fail "status as a member"
fi
if in_root 2003 2003 "" "$bin" bill -c "$cfg" --from 2026-11-01T00:00+08:00 \
     --to 2026-12-01T00:00+08:00 >"$work/out.out" 2>&1; then
  fail "bob (not in the group) read the database"
elif grep -q "Permission denied" "$work/out.out"; then
  ok "bob (not in the group) is refused: Permission denied"
else
  cat "$work/out.out"; fail "bob refused for another reason"
fi
if [ "$fails" -ne 0 ]; then echo "$fails check(s) failed"; exit 1; fi
echo "all group access checks passed"
