#!/usr/bin/env bash
# Two clean builds of one image from the same commit must be byte-identical;
# when they are not, this says which file differs (from each build's .files).
# usage: image/repro-check.sh kiosk
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
kind=$1
base=${TABULA_BUILD:-$repo/build}/repro
rm -rf "$base"; mkdir -p "$base"
for run in a b; do
	echo "repro-check: build $run of tabula-$kind.img" >&2
	TABULA_BUILD=$base/$run bash "$here/$kind/build.sh" >"$base-$run.log" 2>&1 || { tail -20 "$base-$run.log" >&2; exit 1; }
done
a=$base/a/images/tabula-$kind.img b=$base/b/images/tabula-$kind.img
if cmp -s "$a" "$b"; then
	echo "ok - two clean builds of tabula-$kind.img are byte-identical ($(cut -d' ' -f1 "$a.sha256"))"
	exit 0
fi
echo "not ok - the two builds of tabula-$kind.img differ"
diff <(cat "$base/a/images/tabula-$kind.manifest") <(cat "$base/b/images/tabula-$kind.manifest") | head -20 | sed 's/^/  package /'
diff "$base/a/images/tabula-$kind.files" "$base/b/images/tabula-$kind.files" | grep '^[<>]' | head -40 | sed 's/^/  file /'
cmp "$a" "$b" | head -1 | sed 's/^/  first difference: /'
exit 1
