# Shared by the image builds (image/kiosk/build.sh, image/server/build.sh).
# Every step is deterministic: two builds from the same commit and the same
# package set give the same bytes (see docs/images.md for each knob).
set -euo pipefail

IMAGE_SUITE=${IMAGE_SUITE:-trixie}
IMAGE_MIRROR=${IMAGE_MIRROR:-http://deb.debian.org/debian}

log() { printf 'image: %s\n' "$*" >&2; }
die() { printf 'image: %s\n' "$*" >&2; exit 1; }

# The time every file of an image carries: the commit's, so a rebuild of the
# same commit gives the same image; an uncommitted tree gets the last commit's.
source_date_epoch() {
	git -C "$1" log -1 --format=%ct 2>/dev/null || echo 1700000000
}

# A UUID derived from a name and the build's epoch: fixed for one commit,
# different between images (no two sticks share a filesystem id by accident
# when both are plugged in... unless they are the same build).
stable_uuid() {
	local h
	h=$(printf '%s:%s' "$1" "$SOURCE_DATE_EPOCH" | sha256sum | cut -c1-32)
	printf '%s-%s-4%s-8%s-%s\n' "${h:0:8}" "${h:8:4}" "${h:13:3}" "${h:17:3}" "${h:20:12}"
}

# mmdebstrap ROOT PACKAGES... [-- EXTRA-OPTIONS...]: a Debian root tree, no
# recommends, no docs/man/locales, apt lists and caches removed.
build_rootfs() {
	local root=$1; shift
	local packages=() extra=()
	while (($#)); do
		if [[ $1 == -- ]]; then shift; extra=("$@"); break; fi
		packages+=("$1"); shift
	done
	rm -rf "$root"
	mmdebstrap --variant=apt --mode=root --format=directory \
		--aptopt='APT::Install-Recommends "false"' \
		--dpkgopt='path-exclude=/usr/share/doc/*' \
		--dpkgopt='path-include=/usr/share/doc/*/copyright' \
		--dpkgopt='path-exclude=/usr/share/man/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		--dpkgopt='path-include=/usr/share/locale/locale.alias' \
		--include="$(IFS=,; echo "${packages[*]}")" \
		"${extra[@]}" \
		"$IMAGE_SUITE" "$root" "$IMAGE_MIRROR"
}

# What is in the image, exactly: no package snapshot archive is reachable, so
# the manifest is how a build is compared and audited.
write_manifest() {
	local root=$1 out=$2
	chroot "$root" dpkg-query -W -f='${Package}\t${Version}\t${Architecture}\n' | LC_ALL=C sort >"$out"
}

# Files that differ from build to build for no reason, and host leftovers.
scrub_rootfs() {
	local root=$1
	rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/log/* \
		"$root"/var/cache/ldconfig/aux-cache "$root"/var/lib/dbus/machine-id \
		"$root"/etc/ssh/ssh_host_* "$root"/tmp/* "$root"/var/tmp/* \
		"$root"/var/lib/systemd/random-seed "$root"/var/cache/debconf/*-old \
		"$root"/var/lib/dpkg/*-old
	# Each boot makes its own: on a read-only image it lives in the tmpfs overlay.
	: >"$root/etc/machine-id"
	printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
	: >"$root/etc/resolv.conf"
	# Python byte-code caches carry build times.
	find "$root" -name '__pycache__' -type d -prune -exec rm -rf {} +
}

# Enables the units a preset file lists (`enable NAME` lines); Debian's own
# presets would enable every unit installed, which an appliance does not want.
enable_preset() {
	local root=$1 preset=$2 unit
	while read -r verb unit _; do
		[[ $verb == enable ]] || continue
		systemctl --root="$root" enable "$unit" >/dev/null 2>&1 || die "cannot enable $unit"
	done <"$preset"
}

# squashfs of ROOT (without /boot), every time fixed. mksquashfs refuses
# SOURCE_DATE_EPOCH together with -mkfs-time/-all-time: run it without.
make_squashfs() {
	local root=$1 out=$2
	rm -f "$out"
	env -u SOURCE_DATE_EPOCH mksquashfs "$root" "$out" -comp zstd -noappend -quiet -no-progress ${SQUASHFS_PROCESSORS:+-processors $SQUASHFS_PROCESSORS} \
		-mkfs-time "$SOURCE_DATE_EPOCH" -all-time "$SOURCE_DATE_EPOCH" -e boot >&2
}

# A FAT file system image of SIZE_MIB with a fixed serial, filled with mtools:
# the host cannot mount vfat. Pairs "SRC DEST" follow.
make_fat() {
	local out=$1 size_mib=$2 label=$3 serial=$4; shift 4
	rm -f "$out"
	mkfs.vfat -C -F 32 -n "$label" -i "$serial" --invariant "$out" $((size_mib * 1024)) >/dev/null
	export MTOOLS_SKIP_CHECK=1
	local src dest dir
	while (($#)); do
		src=$1 dest=$2; shift 2
		dir=$(dirname "$dest")
		# mmd fails on an existing directory: make each level once.
		local path=""
		IFS=/ read -ra parts <<<"${dir#/}"
		for p in "${parts[@]}"; do
			[[ -n $p ]] || continue
			path="$path/$p"
			mdir -i "$out" "::$path" >/dev/null 2>&1 || mmd -i "$out" "::$path"
		done
		mcopy -i "$out" -m "$src" "::$dest"
	done
}

# Sizes in MiB, rounded up.
size_mib() { echo $((($(stat -c %s "$1") + 1048575) / 1048576)); }

# Every file of a tree with its digest, every link with its target, sorted.
list_files() {
	(
		cd "$1"
		find . -xdev -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
		find . -xdev -type l -printf '%p -> %l\n' | LC_ALL=C sort
	)
}
