#!/usr/bin/env bash
# Boots tabula-server.img under QEMU (TCG, no network at all), once through
# UEFI (OVMF) and once through BIOS (SeaBIOS), from the image as a USB stick,
# and reads the appliance's status console on the serial port: the supervisor
# is active (Type=notify: systemd saw READY=1) and answers `tabulactl status`;
# the first boot made the data partition on the stick, the second mounts it again.
# Artifacts in $TABULA_BUILD/image-test/server/.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${TABULA_BUILD:-$repo/build}
img=${1:-$build/images/tabula-server.img}
art=$build/image-test/server
rm -rf "$art"; mkdir -p "$art"
[[ -f $img ]] || { echo "boot-test: no $img (make images)" >&2; exit 1; }

pass=0 fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
not_ok() { echo "not ok - $*"; fail=$((fail + 1)); }
work=$(mktemp -d /tmp/tabula-it-serverboot-XXXXXX)
qpid=
cleanup() { [[ -n $qpid ]] && kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# boot NAME FIRMWARE(uefi|bios) DATA-BOOT: the stick is a copy of the image on an 8 GiB
# "USB stick", made fresh for data boot 1 and kept for the next boot.
boot() {
	local name=$1 fw=$2 data_boot=$3 fwargs=()
	if ((data_boot == 1)); then
		cp --sparse=always "$img" "$work/stick.img"
		truncate -s 8G "$work/stick.img"
	fi
	if [[ $fw == uefi ]]; then
		cp /usr/share/OVMF/OVMF_VARS_4M.fd "$work/vars.fd"
		fwargs=(-drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd -drive if=pflash,format=raw,file="$work/vars.fd")
	fi
	qemu-system-x86_64 -machine q35 -accel tcg -m 3072 -smp 2 "${fwargs[@]}" \
		-drive file="$work/stick.img",format=raw,if=none,id=stick -device qemu-xhci -device usb-storage,drive=stick,removable=on \
		-nic none -display none -serial file:"$art/$name-serial.log" &
	qpid=$!
	local t0=$SECONDS
	while ((SECONDS - t0 < 600)); do
		sleep 5
		if grep -aq 'supervisor: active' "$art/$name-serial.log" && grep -aq 'TABULA-STATUS' "$art/$name-serial.log"; then
			ok "$name: the supervisor is active (READY=1 reached systemd) $((SECONDS - t0)) s after power-on"
			sleep 6
			local status
			status=$(grep -a 'TABULA-STATUS' "$art/$name-serial.log" | tail -20 | sed 's/^.*TABULA-STATUS //')
			printf '%s\n' "$status" >"$art/$name-status.txt"
			grep -q 'desktop' <<<"$status" && ok "$name: tabulactl status answers, with the example pool" || not_ok "$name: tabulactl status: $status"
			grep -qi 'golden' <<<"$status" && ok "$name: it says the golden image is missing" || not_ok "$name: no word of the missing golden image: $status"
			local data
			data=$(tr -d '\r' <"$art/$name-serial.log" | grep -ao 'data: .*' | tail -1)
			[[ $data == "data: /dev/sda5, boot $data_boot of it" ]] &&
				ok "$name: /var/lib/tabula is the stick's data partition, boot $data_boot of it ($data)" ||
				not_ok "$name: expected the data partition at boot $data_boot, got: ${data:-nothing}"
			kill "$qpid"; wait "$qpid" 2>/dev/null || true; qpid=
			return 0
		fi
		kill -0 "$qpid" 2>/dev/null || break
	done
	not_ok "$name: no active supervisor on the status console after $((SECONDS - t0)) s (see $art/$name-serial.log)"
	kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null || true; qpid=
}

# The first boot makes the data partition; the second (through the other firmware) finds it again.
boot uefi uefi 1
boot bios bios 2
echo "server boot test: $pass passed, $fail failed"
((fail == 0))
