#!/usr/bin/env bash
# make flash DEV=/dev/sdX IMAGE=build/images/tabula-kiosk.img
# Writes an image to a whole disk (an SD card, a USB stick) and reads it back.
# Refuses: anything but a whole disk; a disk with a mounted file system or
# active swap on it; the disk the running system lives on; an image whose
# .sha256 does not match. Asks for the device name again unless YES=1.
set -euo pipefail
dev=${1:-} image=${2:-}
die() { echo "flash: $*" >&2; exit 1; }
[[ -n $dev && -n $image ]] || die "usage: make flash DEV=/dev/sdX IMAGE=path/to/tabula-….img"
[[ -f $image ]] || die "$image: no such image"
[[ -b $dev ]] || die "$dev: not a block device"
dev=$(readlink -f "$dev")
name=$(basename "$dev")
[[ $(lsblk -dno TYPE "$dev") == disk || $(lsblk -dno TYPE "$dev") == loop ]] || die "$dev is a $(lsblk -dno TYPE "$dev"), not a whole disk"

# Every block device on it: the disk and its partitions.
mapfile -t parts < <(lsblk -lnpo NAME "$dev")
for p in "${parts[@]}"; do
	mp=$(findmnt -rno TARGET -S "$p" 2>/dev/null | head -1 || true)
	[[ -z $mp ]] || die "$p is mounted on $mp: unmount it first (is this really the card?)"
	if swapon --show=NAME --noheadings 2>/dev/null | grep -qx "$p"; then die "$p is active swap"; fi
done
# The disk under / (through any partition): never.
root_src=$(findmnt -rno SOURCE / || true)
if [[ -b $root_src ]]; then
	root_disk=$(lsblk -ndo PKNAME "$root_src" 2>/dev/null || true)
	[[ $name != "${root_disk:-$(basename "$root_src")}" ]] || die "$dev holds the running system's root file system"
fi

if [[ -f $image.sha256 ]]; then
	want=$(cut -d' ' -f1 "$image.sha256")
	have=$(sha256sum "$image" | cut -d' ' -f1)
	[[ $want == "$have" ]] || die "$image does not match $image.sha256: a broken or changed image"
fi
size=$(stat -c %s "$image")
devsize=$(blockdev --getsize64 "$dev")
((size <= devsize)) || die "$image ($((size / 1048576)) MiB) does not fit on $dev ($((devsize / 1048576)) MiB)"

if [[ ${YES:-} != 1 ]]; then
	echo "flash: this erases everything on $dev ($(lsblk -dno SIZE,MODEL "$dev" | xargs))."
	read -rp "flash: type the device name ($name) to go on: " answer
	[[ $answer == "$name" ]] || die "not confirmed; nothing written"
fi
echo "flash: writing $image to $dev"
dd if="$image" of="$dev" bs=4M conv=fsync status=none
sync
echo "flash: reading it back"
back=$(head -c "$size" "$dev" | sha256sum | cut -d' ' -f1)
[[ $back == "$(sha256sum "$image" | cut -d' ' -f1)" ]] || die "$dev does not read back as $image: a bad card?"
echo "flash: done, $dev holds $(basename "$image")"
