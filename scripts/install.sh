#!/usr/bin/env bash
# Puts the packaged extension (target/package, from `cargo pgrx package`) and the precompiled guest
# in place, each file under a new name first and then renamed over the old one: a running backend
# keeps the files it mapped (a file overwritten in place would change code under it), and a new
# one finds the old version or the new, never none.
#   install.sh PG_CONFIG
set -euo pipefail
cd "$(dirname "$0")/.."
pg_config=$1
package=target/package
put() { install -D -m "$3" "$1" "$2.new" && mv -f "$2.new" "$2"; }
put target/plpywasm_guest.cwasm "$("$pg_config" --pkglibdir)/plpywasm_guest.cwasm" 644
while IFS= read -r -d '' file; do
  dest=${file#"$package"}
  case "$dest" in *.so) mode=755 ;; *) mode=644 ;; esac
  put "$file" "$dest" "$mode"
done < <(find "$package" -type f -print0)
