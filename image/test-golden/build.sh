#!/usr/bin/env bash
# Builds the test golden image: a Debian cloud kernel, a busybox initramfs whose
# /init is init.sh, and a tiny qcow2 disk that linked clones are made from.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${TABULA_BUILD:-$repo/build}/test-golden
init_src=$here/init.sh

# Everything inside the initramfs carries this time, so two builds from the
# same kernel package give the same bytes.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}

# Kernel modules the guest needs, the ones not built into the cloud kernel;
# their dependencies are added from the modules' own metadata. init loads the
# first list before anything else, the network list only when the VM has a NIC,
# after it reports up.
wanted_modules=(virtio_pci virtio_blk virtio_console)
wanted_net_modules=(virtio_net)

# VGA text console plus serial; the last console= becomes /dev/console.
cmdline="console=tty0 console=ttyS0 quiet loglevel=3 consoleblank=0"

outputs=(vmlinuz initrd.img golden.qcow2 cmdline manifest)

# What goes into the image besides the kernel package: this script (module
# lists, command line), init.sh and the host's busybox. The manifest, written
# last, records their digest; a build is skipped only when it still matches.
inputs_digest() {
	{
		sha256sum "${BASH_SOURCE[0]}" "$init_src" | cut -d' ' -f1
		if [[ -f /bin/busybox ]]; then sha256sum </bin/busybox; else echo no-busybox; fi
	} | sha256sum | cut -d' ' -f1
}

up_to_date() {
	local f
	for f in "${outputs[@]}"; do
		[[ -f $out/$f && $out/$f -nt ${BASH_SOURCE[0]} && $out/$f -nt $init_src ]] || return 1
	done
	grep -qxF "inputs $(inputs_digest)" "$out/manifest"
}

if up_to_date; then
	echo "test-golden: up to date in $out"
	exit 0
fi

installed() {
	dpkg-query -W -f '${Status}' "$1" 2>/dev/null | grep -q 'ok installed'
}
# busybox-static, not busybox: the initramfs has no libraries for it to load.
missing=()
for p in busybox-static cpio qemu-utils; do
	installed "$p" || missing+=("$p")
done
if ((${#missing[@]})); then
	apt-get install -y --no-install-recommends "${missing[@]}" ||
		{ apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; }
fi

mkdir -p "$out/cache"
out=$(cd "$out" && pwd)
work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The metapackage only points at the current ABI's package; download that one
# so the cache file name says exactly which kernel went in.
resolve_kernel_pkg() {
	apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9].*-cloud-amd64$/ { print $2; exit }'
}
pkg=$(resolve_kernel_pkg || true)
if [[ -z $pkg ]]; then
	apt-get update >/dev/null
	pkg=$(resolve_kernel_pkg || true)
fi
deb=
if [[ -n $pkg ]]; then
	deb=$(find "$out/cache" -maxdepth 1 -name "${pkg}_*_amd64.deb" | sort | tail -n 1)
	if [[ -z $deb ]]; then
		# apt's download sandbox user cannot write to root-owned build dirs.
		(cd "$work" && apt-get download -o APT::Sandbox::User=root "$pkg")
		mv "$work"/"${pkg}"_*_amd64.deb "$out/cache/"
		deb=$(find "$out/cache" -maxdepth 1 -name "${pkg}_*_amd64.deb" | sort | tail -n 1)
	fi
else
	# No package index reachable: a previously cached kernel still builds.
	deb=$(find "$out/cache" -maxdepth 1 -name 'linux-image-*-cloud-amd64_*_amd64.deb' | sort | tail -n 1)
fi
[[ -n $deb && -f $deb ]] || { echo "test-golden: no cloud kernel package available" >&2; exit 1; }
echo "test-golden: kernel package $(basename "$deb")"

dpkg-deb -x "$deb" "$work/kernel"
kver=$(basename "$(find "$work/kernel/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n 1)")
moddir=$work/kernel/lib/modules/$kver
cp "$work/kernel/boot/vmlinuz-$kver" "$work/vmlinuz"

root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,lib/modules}

# Packages may ship modules compressed; busybox insmod wants them plain.
module_file() {
	find "$moddir/kernel" -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" -o -name "$1.ko.gz" | head -n 1
}
module_plain() {
	local src=$1 dst=$2
	case $src in
	*.ko.xz) xz -dc "$src" >"$dst" ;;
	*.ko.zst) zstd -qdc "$src" >"$dst" ;;
	*.ko.gz) gzip -dc "$src" >"$dst" ;;
	*) cp "$src" "$dst" ;;
	esac
}
module_deps() {
	tr '\0' '\n' <"$1" | sed -n 's/^depends=//p' | head -n 1 | tr ',' ' '
}
builtin_module() {
	grep -q "/$1.ko\$" "$moddir/modules.builtin" 2>/dev/null
}
declare -A seen=()
order=()
add_module() {
	local name=${1//-/_} src dep
	[[ -n ${seen[$name]:-} ]] && return 0
	seen[$name]=1
	if builtin_module "$name"; then
		return 0
	fi
	src=$(module_file "$name")
	[[ -n $src ]] || { echo "test-golden: module $name not in $kver" >&2; exit 1; }
	module_plain "$src" "$root/lib/modules/$name.ko"
	for dep in $(module_deps "$root/lib/modules/$name.ko"); do
		add_module "$dep"
	done
	order+=("$name")
}
for m in "${wanted_modules[@]}"; do
	add_module "$m"
done
printf '%s\n' "${order[@]}" >"$root/lib/modules/load-order"
echo "test-golden: modules ${order[*]}"
base_order=("${order[@]}")
# Only what the first list does not already load; empty if built in.
order=()
for m in "${wanted_net_modules[@]}"; do
	add_module "$m"
done
printf '%s\n' "${order[@]}" | sed '/^$/d' >"$root/lib/modules/load-order-net"
echo "test-golden: network modules ${order[*]:-(built in)}"
net_order=("${order[@]}")

cp /bin/busybox "$root/bin/busybox"
busybox --list-full | LC_ALL=C sort | while read -r applet; do
	[[ $applet == bin/busybox ]] && continue
	mkdir -p "$root/$(dirname "$applet")"
	ln -sf /bin/busybox "$root/$applet"
done
install -m 0755 "$init_src" "$root/init"

find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$root" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
	cpio --quiet -o -H newc --null --reproducible --owner=0:0) |
	gzip -9 -n >"$work/initrd.img"

# Recognisable first sector: a test can tell the golden content from a blank
# or foreign disk; the marker area at 1 MiB starts zeroed.
truncate -s 64M "$work/golden.raw"
printf 'TABULA-GOLDEN v1\n' | dd of="$work/golden.raw" conv=notrunc status=none
qemu-img convert -f raw -O qcow2 "$work/golden.raw" "$work/golden.qcow2"

echo "$cmdline" >"$work/cmdline"

{
	echo "kernel-package $(basename "$deb")"
	echo "kernel-release $kver"
	echo "modules ${base_order[*]}"
	echo "network-modules ${net_order[*]}"
	echo "inputs $(inputs_digest)"
	(cd "$work" && sha256sum vmlinuz initrd.img golden.qcow2 cmdline)
} >"$work/manifest"
# The manifest goes last: an interrupted install leaves no matching one.
rm -f "$out/manifest"
for f in vmlinuz initrd.img golden.qcow2 cmdline manifest; do
	mv -f "$work/$f" "$out/$f"
done
echo "test-golden: built in $out"
