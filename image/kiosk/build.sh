#!/usr/bin/env bash
# Builds tabula-kiosk.img: the SD card image of a kiosk station. One FAT
# partition (the EFI system partition) holds systemd-boot, the kernel, the
# initrd and the root file system as squashfs; live-boot mounts it read-only
# with a tmpfs overlay, so nothing on the card is ever written (a physically
# write-protected card works) and a reboot forgets everything.
#
# Output in $TABULA_BUILD/images/: tabula-kiosk.img, .sha256, .manifest
# (package set), .files (what the image holds, with digests).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/image/lib.sh"

out=${TABULA_BUILD:-$repo/build}/images
work=${TABULA_BUILD:-$repo/build}/image-work/kiosk
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(source_date_epoch "$repo")}
mkdir -p "$out" "$work"

PACKAGES=(
	systemd systemd-sysv udev dbus
	linux-image-amd64 initramfs-tools live-boot
	# The station LAN: DHCP and NTP from the server (systemd-networkd, -timesyncd).
	systemd-timesyncd iproute2 nftables
	# The agent, its screen, the viewer, and the compositor they draw on.
	nodejs gjs gir1.2-gtk-3.0 virt-viewer xprintidle fonts-dejavu-core
	cage seatd xwayland libgl1-mesa-dri
)
PACKAGES=($(printf '%s\n' "${PACKAGES[@]}" | grep -v '^#'))

[[ -f $repo/kiosk-overlay/agent/dist/main.js ]] || die "the station agent is not built (make build)"

root=$work/root
log "kiosk rootfs ($IMAGE_SUITE, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
build_rootfs "$root" "${PACKAGES[@]}"

log "kiosk overlay and station agent"
cp -a "$repo/kiosk-overlay/rootfs/." "$root/"
agent=$root/usr/lib/tabula/station-agent
mkdir -p "$agent"
cp -a "$repo/kiosk-overlay/agent/dist/." "$agent/"
find "$agent" -name '*.map' -delete
rm -f "$agent/.built"
cp -a "$repo/kiosk-overlay/agent/screen" "$agent/screen"
printf '{ "type": "module" }\n' >"$agent/package.json"
echo tabula-kiosk >"$root/etc/hostname"
systemd-sysusers --root="$root" >/dev/null
enable_preset "$root" "$repo/kiosk-overlay/rootfs/usr/lib/systemd/system-preset/80-tabula-kiosk.preset"
write_manifest "$root" "$out/tabula-kiosk.manifest"
scrub_rootfs "$root"

kernel=$(ls "$root"/boot/vmlinuz-* | head -1)
initrd=$(ls "$root"/boot/initrd.img-* | head -1)
[[ -f $kernel && -f $initrd ]] || die "no kernel or initrd in the rootfs"

log "squashfs"
make_squashfs "$root" "$work/filesystem.squashfs"

log "boot partition"
cat >"$work/loader.conf" <<LOADER
default tabula.conf
timeout 0
# No editing of the kernel command line at the boot menu: a visitor at the
# keyboard must not get a shell with init=/bin/sh.
editor no
LOADER
cat >"$work/tabula.conf" <<ENTRY
title Tabula kiosk
linux /vmlinuz
initrd /initrd.img
options boot=live live-media-path=/live nopersistence noeject quiet loglevel=3 systemd.show_status=auto vt.global_cursor_default=0
ENTRY
cp "$kernel" "$work/vmlinuz"
cp "$initrd" "$work/initrd.img"
cp /usr/lib/systemd/boot/efi/systemd-bootx64.efi "$work/BOOTX64.EFI"
touch -d "@$SOURCE_DATE_EPOCH" "$work"/{loader.conf,tabula.conf,vmlinuz,initrd.img,BOOTX64.EFI,filesystem.squashfs}
payload=$(($(size_mib "$work/filesystem.squashfs") + $(size_mib "$work/vmlinuz") + $(size_mib "$work/initrd.img") + 1))
esp_mib=$((payload + payload / 20 + 16))
serial=$(stable_uuid kiosk-esp | tr -d - | cut -c1-8)
make_fat "$work/esp.img" "$esp_mib" TABULA "$serial" \
	"$work/BOOTX64.EFI" /EFI/BOOT/BOOTX64.EFI \
	"$work/loader.conf" /loader/loader.conf \
	"$work/tabula.conf" /loader/entries/tabula.conf \
	"$work/vmlinuz" /vmlinuz \
	"$work/initrd.img" /initrd.img \
	"$work/filesystem.squashfs" /live/filesystem.squashfs

log "disk image"
img=$out/tabula-kiosk.img
rm -f "$img"
# 1 MiB before the partition, the GPT backup after it.
truncate -s $(((esp_mib + 2) * 1048576)) "$img"
sfdisk --quiet "$img" <<GPT
label: gpt
label-id: $(stable_uuid kiosk-disk)
unit: sectors
first-lba: 2048
start=2048, size=$((esp_mib * 2048)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=$(stable_uuid kiosk-esp-part), name="TABULA"
GPT
dd if="$work/esp.img" of="$img" bs=1M seek=1 conv=notrunc status=none
(cd "$out" && sha256sum tabula-kiosk.img >tabula-kiosk.img.sha256)
# What the image holds, file by file: when two builds differ, this says where.
list_files "$root" >"$out/tabula-kiosk.files"
log "$(cat "$out/tabula-kiosk.img.sha256")  ($(size_mib "$img") MiB)"
