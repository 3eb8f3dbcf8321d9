#!/usr/bin/env bash
# Builds tabula-server.img: the server appliance's USB stick image, a hybrid
# ISO made by grub-mkrescue (boots BIOS and UEFI, from a stick or a CD),
# holding the kernel, the initrd and the root file system as squashfs under
# live-boot. The supervisor, libvirt, libvirt-dbus, dnsmasq and chrony are in
# it; the supervisor is the Node program of this repository, on trixie's Node.
#
# Output in $TABULA_BUILD/images/: tabula-server.img, .sha256, .manifest, .files.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/image/lib.sh"

out=${TABULA_BUILD:-$repo/build}/images
work=${TABULA_BUILD:-$repo/build}/image-work/server
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(source_date_epoch "$repo")}
mkdir -p "$out" "$work"

# (Trixie's QEMU has Spice, QXL and Spice's USB-redirection channel as loadable
# modules in qemu-system-modules-spice: without it libvirt refuses every VM.)
PACKAGES=(
	systemd systemd-sysv udev dbus polkitd
	linux-image-amd64 initramfs-tools live-boot
	iproute2 nftables conntrack e2fsprogs fdisk
	nodejs
	libvirt-daemon-system libvirt-dbus qemu-system-x86 qemu-system-modules-spice qemu-utils ovmf
	dnsmasq-base chrony openssl
)

[[ -f $repo/supervisor/dist/main.js ]] || die "the supervisor is not built (make build)"

log "supervisor's runtime packages (npm, production only)"
npm_dir=$work/npm
rm -rf "$npm_dir"; mkdir -p "$npm_dir"
cp "$repo/package.json" "$repo/package-lock.json" "$npm_dir/"
(cd "$npm_dir" && npm ci --omit=dev --no-audit --no-fund --loglevel=error >&2)
# Build products of native modules carry the build directory: keep only the module.
find "$npm_dir/node_modules" -name '*.node' -exec strip --strip-debug {} +
find "$npm_dir/node_modules" \( -name '*.md' -o -name '*.ts' -o -name '*.map' -o -name '.package-lock.json' \) -type f -delete
rm -rf "$npm_dir"/node_modules/*/build/Release/obj.target "$npm_dir"/node_modules/*/build/Release/.deps \
	"$npm_dir"/node_modules/*/build/*.mk "$npm_dir"/node_modules/*/build/Makefile "$npm_dir"/node_modules/*/build/config.gypi

root=$work/root
log "server rootfs ($IMAGE_SUITE, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
build_rootfs "$root" "${PACKAGES[@]}"

log "appliance files and the supervisor"
sup=$root/usr/lib/tabula/supervisor
mkdir -p "$sup"
cp -a "$repo/supervisor/dist" "$sup/dist"
find "$sup/dist" -name '*.map' -delete
rm -f "$sup/dist/.built"
cp -a "$npm_dir/node_modules" "$sup/node_modules"
cp "$repo/package.json" "$sup/package.json"
# (/usr/bin/tabula-supervisor comes with appliance/rootfs: it picks the admin's config.)
printf '#!/bin/sh\nexec /usr/bin/node /usr/lib/tabula/supervisor/dist/cli/tabulactl.js "$@"\n' >"$root/usr/bin/tabulactl"
chmod 755 "$root/usr/bin/tabulactl"
install -m 644 "$repo/appliance/systemd/tabula-supervisor.service" "$root/usr/lib/systemd/system/"
install -m 644 "$repo/appliance/dbus/org.tabula.Supervisor1.conf" "$root/usr/share/dbus-1/system.d/"
install -D -m 644 -t "$root/usr/share/polkit-1/actions/" "$repo"/appliance/polkit/*.policy
cp -a "$repo/appliance/rootfs/." "$root/"
install -D -m 644 "$repo/appliance/tabula/supervisor.toml" "$root/usr/share/doc/tabula/supervisor.toml.example"
echo tabula-server >"$root/etc/hostname"
systemd-sysusers --root="$root" >/dev/null
enable_preset "$root" "$repo/appliance/rootfs/usr/lib/systemd/system-preset/80-tabula-server.preset"
# The supervisor runs the chrony and dnsmasq instances the station LAN needs; Debian's own
# chrony service would hold port 123 first.
systemctl --root="$root" disable chrony.service >/dev/null 2>&1 || true
# The pool's VMs are disposable: nothing to save or resume across a reboot.
systemctl --root="$root" disable libvirt-guests.service >/dev/null 2>&1 || true
write_manifest "$root" "$out/tabula-server.manifest"
scrub_rootfs "$root"
# libvirtd resolves the host's own name.
printf '127.0.1.1\ttabula-server\n' >>"$root/etc/hosts"

kernel=$(ls "$root"/boot/vmlinuz-* | head -1)
initrd=$(ls "$root"/boot/initrd.img-* | head -1)

log "squashfs"
iso=$work/iso
rm -rf "$iso"; mkdir -p "$iso/live" "$iso/boot/grub"
make_squashfs "$root" "$iso/live/filesystem.squashfs"
cp "$kernel" "$iso/live/vmlinuz"
cp "$initrd" "$iso/live/initrd.img"
install -m 644 "$here/grub.cfg" "$iso/boot/grub/grub.cfg"
find "$iso" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

log "hybrid ISO (BIOS + UEFI)"
img=$out/tabula-server.img
rm -f "$img"
# grub-mkrescue's EFI image is a FAT file made by mformat: give it a fixed serial.
shim=$work/bin
mkdir -p "$shim"
printf '#!/bin/sh\nexec /usr/bin/mformat -N %s "$@"\n' "$(stable_uuid server-efi | tr -d - | cut -c1-8)" >"$shim/mformat"
chmod 755 "$shim/mformat"
iso_date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d%H%M%S00)
PATH=$shim:$PATH grub-mkrescue -o "$img" "$iso" -- \
	-volid TABULA \
	-volume_date c "=$SOURCE_DATE_EPOCH" -volume_date m "=$SOURCE_DATE_EPOCH" \
	-volume_date uuid "$iso_date" -volume_date all_file_dates "=$SOURCE_DATE_EPOCH" 2>"$work/grub-mkrescue.log" ||
	{ cat "$work/grub-mkrescue.log" >&2; die "grub-mkrescue failed"; }
(cd "$out" && sha256sum tabula-server.img >tabula-server.img.sha256)
list_files "$root" >"$out/tabula-server.files"
log "$(cat "$out/tabula-server.img.sha256")  ($(size_mib "$img") MiB)"
