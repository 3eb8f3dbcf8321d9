#!/usr/bin/env bash
# Prints each image's build time and size (and its squashfs), from a clean build.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
build=${TABULA_BUILD:-$repo/build}
for kind in kiosk server; do
	start=$(date +%s)
	bash "$here/$kind/build.sh" >"$build/bench-image-$kind.log" 2>&1 || { tail -20 "$build/bench-image-$kind.log"; exit 1; }
	secs=$(($(date +%s) - start))
	img=$build/images/tabula-$kind.img
	sq=$build/image-work/$kind/filesystem.squashfs
	[[ -f $sq ]] || sq=$build/image-work/$kind/iso/live/filesystem.squashfs
	printf 'image %-6s build %4d s   image %5d MiB   squashfs %5d MiB   packages %4d\n' "$kind" "$secs" \
		$(($(stat -c %s "$img") / 1048576)) $(($(stat -c %s "$sq") / 1048576)) "$(wc -l <"$build/images/tabula-$kind.manifest")"
done
