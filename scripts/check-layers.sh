#!/usr/bin/env bash
# The layers' include rule (README "Architecture"): a file in a layer's folder
# includes headers of its own layer or of the layers below it, never above
# and never a sibling's. CMake's layer_check_* links catch upward calls; this
# catches upward includes (types, inline functions) too. Exit 1 on a breach.
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A allowed=(
  [common]="common"
  [config]="config common"
  [protocols]="protocols config common"
  [storage]="storage config common"
  [engine]="engine storage protocols config common"
  [daemon]="daemon engine storage protocols config common"
  [cli]="cli daemon engine storage protocols config common"
)
bad=0
for layer in "${!allowed[@]}"; do
  for f in "$layer"/*.[ch]; do
    [ -e "$f" ] || continue
    while IFS= read -r inc; do
      dir=${inc%%/*}
      [ "$dir" = "$inc" ] && continue          # version.h and the like
      [ -n "${allowed[$dir]+x}" ] || continue  # not a layer folder
      case " ${allowed[$layer]} " in
        *" $dir "*) ;;
        *) echo "$f: includes \"$inc\": layer $layer may use only: ${allowed[$layer]}"; bad=1 ;;
      esac
    done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
  done
done
[ $bad = 0 ] && echo "check-layers: every include goes down"
exit $bad
