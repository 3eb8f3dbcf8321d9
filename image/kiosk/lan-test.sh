#!/usr/bin/env bash
# The kiosk image on a station LAN served by a real Tabula supervisor: the
# whole visit, as a branch sees it. The kiosk (UEFI under TCG) has one NIC, a
# tap on the supervisor's station bridge, and nothing else to talk to:
#   1. it takes its address by DHCP from the supervisor's dnsmasq and learns the
#      server from the lease (option 224): the shipped station.conf names no server;
#   2. its firewall follows the lease (the path unit re-applies it), and the
#      agent's slideshow is on the screen;
#   3. a key press asks for a desktop: the supervisor hands out its VM and the
#      kiosk's remote-viewer connects through the Spice forward;
#   4. the VM recycled by staff ends the visit: the slideshow is back.
# Needs the libvirt daemons (make daemons) and the test golden image (make
# golden); runs a supervisor, so it holds the integration tests' lock.
# Artifacts in $TABULA_BUILD/image-test/kiosk-lan/.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${TABULA_BUILD:-$repo/build}
img=${1:-$build/images/tabula-kiosk.img}
golden=$build/test-golden
art=$build/image-test/kiosk-lan
rm -rf "$art"; mkdir -p "$art"
[[ -f $img ]] || { echo "lan-test: no $img (make images)" >&2; exit 1; }
[[ -f $golden/golden.qcow2 ]] || { echo "lan-test: no test golden image in $golden (make golden)" >&2; exit 1; }
exec 8>/tmp/tabula-it.lock
flock 8
. "$repo/image/test-lib.sh"

LAN=tabula-it-klan TAP=tabula-it-ktap POOL=itklan SERVER=169.254.24.1
VM=tabula-$POOL-0
tabulactl() { node "$repo/supervisor/dist/cli/tabulactl.js" "$@"; }
sup=
# QEMU runs as another user: it needs to reach the golden files in the scratch directory.
chmod 0711 "$work"
cp "$golden"/{golden.qcow2,vmlinuz,initrd.img} "$work/"
cp /usr/share/OVMF/OVMF_VARS_4M.fd "$work/vars.fd"

write_config() { # $1 = pool size (0: no pool)
	{
		printf '[supervisor]\nstate_dir = "%s"\nhypervisor = "qemu"\n\n[stations]\ninterface = "%s"\naddress = "%s"\n' "$work/state" "$LAN" "$SERVER"
		((${1} == 0)) || cat <<TOML

[[pool]]
name = "$POOL"
golden_image = "$work/golden.qcow2"
size = $1
vcpus = 1
memory = 256
video = "vga"
spice_port_base = 5920
kernel = "$work/vmlinuz"
initrd = "$work/initrd.img"
cmdline = "$(cat "$golden/cmdline")"
TOML
	} >"$work/supervisor.toml"
}
lan_down() {
	ip link del "$TAP" 2>/dev/null || true
	ip link del "$LAN" 2>/dev/null || true
	nft delete table inet tabula 2>/dev/null || true
	ip link del tabula-console 2>/dev/null || true
}
stop_all() {
	qemu_stop
	if [[ -n $sup ]] && kill -0 "$sup" 2>/dev/null; then
		# The supervisor removes its VMs and disks when its pool goes away.
		write_config 0
		kill -HUP "$sup"
		for _ in $(seq 120); do virsh -c qemu:///system list --all --name | grep -q "^tabula-$POOL-" || break; sleep 0.5; done
		kill -TERM "$sup" 2>/dev/null || true
		wait "$sup" 2>/dev/null || true
	fi
	sup=
	for d in $(virsh -c qemu:///system list --all --name | grep "^tabula-$POOL-" || true); do
		virsh -c qemu:///system destroy "$d" >/dev/null 2>&1 || true
		virsh -c qemu:///system undefine --nvram "$d" >/dev/null 2>&1 || true
	done
	lan_down
}
trap 'stop_all; cleanup' EXIT

lan_down
ip link add "$LAN" type bridge
ip addr add "$SERVER/24" dev "$LAN"
ip link set "$LAN" up
ip tuntap add "$TAP" mode tap
ip link set "$TAP" master "$LAN" up
write_config 1
# (Without the lock's descriptor: the lock is the test's, not the supervisor's.)
node "$repo/supervisor/dist/main.js" --config "$work/supervisor.toml" >"$art/supervisor.log" 2>&1 8>&- &
sup=$!
wait_log "$art/supervisor.log" 300 "event=vm-clean" && ok "the supervisor's pool is clean" || not_ok "the pool did not reach clean (see $art/supervisor.log)"

# The kiosk: the card image, UEFI, a virtio GPU, one NIC on the station bridge.
# Its kernel and initrd are taken from the card and booted directly, so that
# the test adds a debug shell on the serial port (to read the kiosk's journal
# and firewall); the boot through systemd-boot is boot-test.sh's part.
esp_offset=$((2048 * 512))
MTOOLS_SKIP_CHECK=1 mcopy -i "$img@@$esp_offset" ::/vmlinuz "$work/vmlinuz-kiosk"
MTOOLS_SKIP_CHECK=1 mcopy -i "$img@@$esp_offset" ::/initrd.img "$work/initrd-kiosk.img"
options=$(MTOOLS_SKIP_CHECK=1 mtype -i "$img@@$esp_offset" ::/loader/entries/tabula.conf | sed -n 's/^options //p')
rm -f "$work/mon.sock" "$work/serial.sock"
# shellcheck disable=SC2046
qemu-system-x86_64 -machine q35 -accel tcg -m 1536 -smp 2 \
	-drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
	-drive if=pflash,format=raw,file="$work/vars.fd" \
	-drive file="$img",format=raw,if=virtio,readonly=on \
	-vga none -device virtio-vga -display none \
	-netdev tap,id=lan,ifname="$TAP",script=no,downscript=no -device virtio-net-pci,netdev=lan,mac=52:54:00:4b:10:01 \
	-kernel "$work/vmlinuz-kiosk" -initrd "$work/initrd-kiosk.img" \
	-append "$options console=ttyS0 systemd.debug_shell=ttyS0 systemd.mask=serial-getty@ttyS0.service" \
	-monitor unix:"$work/mon.sock",server,nowait \
	$(serial_chardev ser "$work/serial.sock" "$art/kiosk-serial.log") &
qpid=$!
wait_socket "$work/mon.sock"
wait_screen() { # FILE SECONDS PATTERN
	local t0=$SECONDS text=
	while ((SECONDS - t0 < $2)); do
		sleep 5
		text=$(screen_text "$1")
		grep -qiE "$3" <<<"$text" && return 0
	done
	echo "# last screen: $(tr '\n' ' ' <<<"$text")"
	return 1
}

t0=$SECONDS
wait_screen "$art/slideshow.png" 400 'touch the screen' && ok "the kiosk boots to the slideshow in $((SECONDS - t0)) s" || not_ok "no slideshow (see $art/slideshow.png)"
lease=$(grep -i '52:54:00:4b:10:01' "$work/state/lan/dhcp/dnsmasq.leases" 2>/dev/null || true)
[[ -n $lease ]] && ok "the kiosk took its address from the supervisor's DHCP ($lease)" || not_ok "no DHCP lease for the kiosk's MAC in the supervisor's dnsmasq"
kshell() { shell_run "$work/serial.sock" "$art/kiosk-serial.log" "$@"; }
kshell 60 "nft list table inet tabula_station | grep -c '$SERVER' | sed 's/^/TABULA-''RULES=/'" || true
rules=$(shell_value "$art/kiosk-serial.log" TABULA-RULES)
[[ ${rules:-0} -gt 0 ]] && ok "the kiosk's firewall follows the lease: $rules rules name the server" || not_ok "the kiosk's firewall does not name the server $SERVER"

echo "# a visit: a key press, the VM on the kiosk's screen"
monitor 'sendkey spc'
if wait_log "$art/supervisor.log" 120 "event=vm-handed-out.*$VM|$VM.*event=vm-handed-out"; then
	ok "the supervisor handed $VM to the kiosk"
	if wait_log "$art/supervisor.log" 180 'event=session-connected'; then ok "the kiosk's remote-viewer connected through the Spice forward"
	else not_ok "no Spice connection from the kiosk (see $art/supervisor.log)"; fi
	sleep 10
	screen_text "$art/desktop.png" >"$art/desktop.txt"
else not_ok "no hand-off after the key press (see $art/supervisor.log, $art/kiosk-serial.log)"; fi

echo "# staff recycle the VM: the visit ends, the slideshow is back"
tabulactl recycle "$VM" >/dev/null 2>&1 || true
wait_screen "$art/after.png" 180 'touch the screen' && ok "after the visit the kiosk shows the slideshow again" || not_ok "no slideshow after the visit (see $art/after.png)"
# The kiosk's own account of the visit, for whoever reads the artifacts.
kshell 60 "journalctl -b --no-pager -o short-monotonic -u tabula-station -u tabula-kiosk-display -u 'tabula-station-firewall*' | sed 's/^/TABULA-''J /'" || true
tr -d '\r' <"$art/kiosk-serial.log" | grep -a '^TABULA-J ' | sed 's/^TABULA-J //' >"$art/kiosk-journal.txt" || true
stop_all
trap cleanup EXIT
summary "kiosk LAN test"
