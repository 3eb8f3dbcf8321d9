#!/usr/bin/env bash
# Checks image/flash.sh on loop devices (stand-ins for SD cards): it writes and
# reads back, and refuses what it must refuse, writing nothing then.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d /tmp/tabula-it-flash-XXXXXX)
cleanup() {
	umount "$work/mnt" 2>/dev/null
	# The loop devices backed by this test's files (made in subshells: found by file).
	for f in "$work"/*; do
		losetup -j "$f" -O NAME --noheadings 2>/dev/null | xargs -r -n1 losetup -d
	done
	rm -rf "$work"
}
trap cleanup EXIT
pass=0 fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
not_ok() { echo "not ok - $*"; fail=$((fail + 1)); }
loop() { local f=$work/$1; truncate -s "$2" "$f"; losetup --find --show "$f"; }
flash() { YES=1 bash "$here/flash.sh" "$@" 2>&1; }

head -c $((8 * 1048576)) /dev/urandom >"$work/test.img"
(cd "$work" && sha256sum test.img >test.img.sha256)
card=$(loop card 32M)

out=$(flash "$card" "$work/test.img") && cmp -s -n $((8 * 1048576)) "$work/test.img" "$card" \
	&& ok "writes the image and reads it back ($card)" || not_ok "write failed: $out"

dd if=/dev/zero of="$card" bs=1M count=8 conv=fsync status=none
echo "0000  test.img" >"$work/test.img.sha256"
out=$(flash "$card" "$work/test.img") && not_ok "a checksum mismatch was written" || {
	grep -q 'does not match' <<<"$out" && ok "refuses an image that does not match its .sha256" || not_ok "wrong refusal: $out"; }
(cd "$work" && sha256sum test.img >test.img.sha256)
cmp -s -n 1048576 /dev/zero "$card" && ok "and wrote nothing" || not_ok "something was written"

mounted=$(loop mounted 32M)
mkfs.ext4 -q "$mounted" && mkdir -p "$work/mnt" && mount "$mounted" "$work/mnt"
out=$(flash "$mounted" "$work/test.img") && not_ok "a mounted disk was written" || {
	grep -q "is mounted on $work/mnt" <<<"$out" && ok "refuses a disk with a mounted file system, naming where" || not_ok "wrong refusal: $out"; }
umount "$work/mnt"

small=$(loop small 4M)
out=$(flash "$small" "$work/test.img") && not_ok "an image larger than the disk was written" || {
	grep -q 'does not fit' <<<"$out" && ok "refuses a disk too small for the image" || not_ok "wrong refusal: $out"; }

out=$(flash /dev/null "$work/test.img") && not_ok "/dev/null was accepted" || {
	grep -q 'not a block device' <<<"$out" && ok "refuses what is not a block device" || not_ok "wrong refusal: $out"; }

out=$(printf 'nope\n' | bash "$here/flash.sh" "$card" "$work/test.img" 2>&1) && not_ok "written without confirmation" || {
	grep -q 'not confirmed' <<<"$out" && ok "without YES=1 it asks for the device name, and stops on a wrong answer" || not_ok "wrong refusal: $out"; }

echo "flash test: $pass passed, $fail failed"
((fail == 0))
