#!/usr/bin/env bash
# Boots tabula-kiosk.img under QEMU (TCG, UEFI through OVMF, no network at all)
# and checks what a kiosk must do:
#   1. firmware → systemd-boot → live-boot → cage → the station agent's
#      slideshow on the screen (read from QEMU's display by OCR; screenshot kept);
#   2. a file written anywhere (through a debug shell on the serial port, which
#      only this test's kernel command line opens) is gone after a reboot;
#   3. the card itself is never written: the image's digest is unchanged.
# Artifacts in $TABULA_BUILD/image-test/kiosk/.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${TABULA_BUILD:-$repo/build}
img=${1:-$build/images/tabula-kiosk.img}
art=$build/image-test/kiosk
rm -rf "$art"; mkdir -p "$art"
[[ -f $img ]] || { echo "boot-test: no $img (make images)" >&2; exit 1; }

. "$repo/image/test-lib.sh"

before=$(sha256sum <"$img")
cp /usr/share/OVMF/OVMF_VARS_4M.fd "$work/vars.fd"

# qemu_start NAME [extra args…]: the kiosk's hardware: UEFI, 2 CPUs, a virtio GPU, the card, no NIC.
qemu_start() {
	local name=$1; shift
	rm -f "$work/mon.sock" "$work/serial.sock"
	# shellcheck disable=SC2046
	qemu-system-x86_64 -machine q35 -accel tcg -m 1536 -smp 2 \
		-drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
		-drive if=pflash,format=raw,file="$work/vars.fd" \
		-drive file="$img",format=raw,if=virtio \
		-vga none -device virtio-vga -nic none -display none \
		-monitor unix:"$work/mon.sock",server,nowait \
		$(serial_chardev ser "$work/serial.sock" "$art/$name-serial.log") "$@" &
	qpid=$!
	wait_socket "$work/mon.sock"
}

echo "# boot 1: firmware, systemd-boot, the slideshow"
start=$SECONDS
qemu_start boot1
seen=
while ((SECONDS - start < 300)); do
	sleep 5
	text=$(screen_text "$art/slideshow.png")
	if grep -qi 'touch the screen' <<<"$text"; then seen=1; break; fi
done
if [[ -n $seen ]]; then ok "the kiosk boots to the station agent's slideshow in $((SECONDS - start)) s ($art/slideshow.png)"
else not_ok "no slideshow after 300 s; last screen: $art/slideshow.png: $(tr '\n' ' ' <<<"$text")"; fi
qemu_stop

echo "# boots 2 and 3: write everywhere, reboot, nothing is left"
# The kernel and initrd from the card, booted directly so the test can add a
# debug shell on the serial port (systemd-boot on the card allows no editing).
esp_offset=$((2048 * 512))
MTOOLS_SKIP_CHECK=1 mcopy -i "$img@@$esp_offset" ::/vmlinuz "$work/vmlinuz"
MTOOLS_SKIP_CHECK=1 mcopy -i "$img@@$esp_offset" ::/initrd.img "$work/initrd.img"
options=$(MTOOLS_SKIP_CHECK=1 mtype -i "$img@@$esp_offset" ::/loader/entries/tabula.conf | sed -n 's/^options //p')
serial_run() { shell_run "$work/serial.sock" "$art/$1-serial.log" "$2" "$3"; }
boot_direct() {
	qemu_start "$1" -kernel "$work/vmlinuz" -initrd "$work/initrd.img" -append "$options console=ttyS0 systemd.debug_shell=ttyS0 systemd.mask=serial-getty@ttyS0.service"
}
boot_direct boot2
marks='/root/tabula-mark /etc/tabula-mark /var/lib/tabula-mark /tmp/tabula-mark /usr/local/tabula-mark'
# The debug shell comes early in the boot: wait for the boot to finish first.
serial_run boot2 400 "systemctl is-system-running --wait | sed 's/^/TABULA-''STATE=/'" || not_ok "the boot did not finish in 400 s (see $art/boot2-serial.log)"
if serial_run boot2 60 "for f in $marks; do echo visitor >\$f; done; sync; ls $marks | wc -l | sed 's/^/TABULA-''WRITTEN=/'"; then
	grep -q 'TABULA-WRITTEN=5' "$art/boot2-serial.log" && ok "files written in /root, /etc, /var/lib, /tmp, /usr/local" || not_ok "the files could not be written (see boot2-serial.log)"
else not_ok "no debug shell on the serial port (see $art/boot2-serial.log)"; fi
# What ran, from inside: the kiosk's own units up, nothing failed, the firewall loaded.
if serial_run boot2 60 "systemctl is-active tabula-station-firewall tabula-kiosk-display tabula-station | tr '\\n' ' ' | sed 's/^/TABULA-''ACTIVE=/'; echo; systemctl --failed --no-legend --plain | sed 's/^/TABULA-''FAILED /'; nft list tables | sed 's/^/TABULA-''NFT /'"; then
	# (Quoted apart in the commands, these words only appear in their output.)
	active=$(grep -ao 'TABULA-ACTIVE=[a-z ]*' "$art/boot2-serial.log" | tail -1 || true)
	[[ $active == *"active active active"* ]] && ok "the firewall, the display and the agent are active" || not_ok "kiosk units: $active"
	failed=$(grep -ao 'TABULA-FAILED .*' "$art/boot2-serial.log" | sed 's/^TABULA-FAILED //' | tr -d '\r' || true)
	[[ -z $failed ]] && ok "no unit failed" || not_ok "failed units: $(tr '\n' ';' <<<"$failed")"
	grep -aq 'TABULA-NFT table inet tabula_station' "$art/boot2-serial.log" && ok "the station firewall's table is loaded" || not_ok "no tabula_station table"
else not_ok "no answer from the debug shell for the unit checks"; fi
qemu_stop
boot_direct boot3
serial_run boot3 400 "systemctl is-system-running --wait | sed 's/^/TABULA-''STATE=/'" || not_ok "the second boot did not finish in 400 s"
if serial_run boot3 60 "ls $marks 2>/dev/null | wc -l | sed 's/^/TABULA-''LEFT=/'"; then
	grep -q 'TABULA-LEFT=0' "$art/boot3-serial.log" && ok "after a reboot none of them is left" || not_ok "files survived the reboot: $(grep TABULA-LEFT "$art/boot3-serial.log")"
else not_ok "no debug shell on the serial port after the reboot (see $art/boot3-serial.log)"; fi
qemu_stop

after=$(sha256sum <"$img")
[[ $before == "$after" ]] && ok "the card image is unchanged after three boots (nothing is written to it)" || not_ok "the image changed while booting"
summary "kiosk boot test"
