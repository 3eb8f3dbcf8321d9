#!/usr/bin/env bash
# Boots tabula-server.img under QEMU (TCG, no network at all) the ways a
# branch's server meets it, and reads its consoles:
#   1. from the stick through UEFI (OVMF): the supervisor active (Type=notify:
#      systemd saw READY=1), `tabulactl status` answering with the shipped pool
#      and its missing golden image, the data partition made on the stick; the
#      admin page over HTTPS on the management NIC (self-signed certificate,
#      first-use password, the missing golden image); a short press of the
#      power button shuts it down;
#   2. the same stick through BIOS (SeaBIOS): the data partition found again,
#      the admin page's certificate and password kept;
#   3. with the test golden image given to it (a second disk and a debug shell
#      on the second serial port, opened only by this test's kernel command
#      line): the pool reaches clean inside the appliance (nested TCG), the
#      boot's journal has no unexpected warning, the journal is persistent;
#   4. factory-reset.target (what the power button's long press starts): after
#      the reboot, a first boot again, golden images kept, settings and the
#      admin password gone;
#   4b. tabulactl factory-reset (the D-Bus method): the same, erasing everything;
#   5. the boot menu's "factory reset, erasing everything", chosen with the
#      keyboard: the first-boot state, golden image missing again;
#   6. the boot menu's "install to this server's disk": the installer's menu
#      over serial, a disk picked and confirmed, the copy; then
#   7. the server booted from that disk alone (BIOS): supervisor active, its
#      own data partition made.
# Artifacts in $TABULA_BUILD/image-test/server/.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${TABULA_BUILD:-$repo/build}
img=${1:-$build/images/tabula-server.img}
golden=$build/test-golden
art=$build/image-test/server
rm -rf "$art"; mkdir -p "$art"
[[ -f $img ]] || { echo "boot-test: no $img (make images)" >&2; exit 1; }
[[ -f $golden/golden.qcow2 ]] || { echo "boot-test: no test golden image in $golden (make golden)" >&2; exit 1; }
. "$repo/image/test-lib.sh"

# What a healthy boot of the appliance logs at warning or worse in this test,
# and why; any other such line fails the test.
ALLOW=(
	'kernel: mtrr: your CPUs had inconsistent'              # QEMU's emulated CPUs
	'kernel: amd_pstate: the _CPC object is not present'    # QEMU's ACPI tables
	'kernel: ata[0-9.]+: LPM support broken'                # QEMU's AHCI disk
	'kernel: hfsplus: Filesystem is marked locked'          # live-boot probing the hybrid ISO's HFS+ map (read-only)
	'kernel: platform regulatory.0: Direct firmware load'   # no wireless database: no wireless
	'kernel: hrtimer: interrupt took'                       # emulation stalls
	'kernel: tsc: Unable to calibrate against PIT'          # emulated timers
	'kernel: APIC calibration not consistent with PM-Timer' # emulated timers
	'kernel: clocksource: Long readout interval, skipping watchdog check' # emulated timers on a busy host
	'kernel: device-mapper: core: CONFIG_IMA_DISABLE_HTABLE' # Debian's kernel configuration
	# Before the test gives the appliance its golden image and config: the
	# shipped pool has no image, and its 4 GiB VMs do not fit this 3 GiB machine.
	'event=golden-image-unusable pool=desktop reason="golden image /var/lib/tabula/images/desktop.qcow2 does not exist"'
	'event=pool-waiting-for-resources pool=desktop reason="host memory low'
	# The test golden image holds the guest-agent channel open without a real agent.
	'libvirtd\[[0-9]+\]: internal error: failed to parse JSON: boolean expected'
)
allowed() { local IFS='|'; grep -vE -- "${ALLOW[*]}"; }

uefi=(-drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd -drive if=pflash,format=raw,file="$work/vars.fd")
stick=(-drive file="$work/stick.img",format=raw,if=none,id=stick -device qemu-xhci -device usb-storage,drive=stick,removable=on)
new_stick() { cp --sparse=always "$img" "$work/stick.img"; truncate -s 8G "$work/stick.img"; }
new_stick
nic=(-nic none)
# The management NIC of boots 1 and 2: QEMU's DHCP, no way out (restrict=on),
# and the appliance's HTTPS port forwarded from the host's loopback, where
# this test plays the admin's browser.
admin_port=$((20000 + RANDOM % 20000))
admin_nic=(-nic "user,restrict=on,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:$admin_port-:443")
admin_url=https://127.0.0.1:$admin_port
# The server's firmware UUID (SMBIOS): the appliance's machine ID comes from it.
SERVER_UUID=5ab1e5e7-7ab0-4a00-8000-00000000cafe
cp /usr/share/OVMF/OVMF_VARS_4M.fd "$work/vars.fd"

# start NAME QEMU-ARGS…: the server (q35, 2 CPUs, 3 GiB, the NIC in $nic), its first serial
# port (status console, GRUB, the installer) in $art/NAME-serial.log, input via $work/s0.sock.
start() {
	local name=$1; shift
	rm -f "$work/mon.sock" "$work/s0.sock" "$work/s1.sock"
	# shellcheck disable=SC2046
	qemu-system-x86_64 -machine q35 -accel tcg -m 3072 -smp 2 -uuid "$SERVER_UUID" "${nic[@]}" -display none \
		-monitor unix:"$work/mon.sock",server,nowait \
		$(serial_chardev s0 "$work/s0.sock" "$art/$name-serial.log") "$@" >"$art/$name-qemu.log" 2>&1 &
	qpid=$!
	wait_socket "$work/mon.sock"
}
# status_seen NAME SECONDS: the status console shows an active supervisor and tabulactl's answer.
status_seen() {
	wait_log "$art/$1-serial.log" "$2" 'supervisor: active' && wait_log "$art/$1-serial.log" 300 'TABULA-STATUS Tabula supervisor'
}
# status NAME: the last status tabulactl printed on the console.
status() { tr -d '\r' <"$art/$1-serial.log" | grep -a 'TABULA-STATUS' | tail -12 | sed 's/^.*TABULA-STATUS //'; }
data_line() { tr -d '\r' <"$art/$1-serial.log" | grep -ao 'data: .*' | tail -1; }
check_data() { # NAME BOOT-N DISK
	local d; d=$(data_line "$1")
	[[ $d == "data: $3, boot $2 of it" ]] && ok "$1: /var/lib/tabula is the data partition $3, boot $2 of it" ||
		not_ok "$1: expected the data partition $3 at boot $2, got: ${d:-nothing}"
}
# menu_pick NAME N: GRUB's menu (seen on the serial port), picked with the
# keyboard: N times down, then Enter.
menu_pick() {
	local i t0=$SECONDS
	# At once: GRUB boots the default entry 5 s after showing its menu.
	until grep -aq "install to this server" "$art/$1-serial.log" 2>/dev/null; do
		((SECONDS - t0 < 180)) || { not_ok "$1: no boot menu on the serial port"; return 1; }
		sleep 0.2
	done
	for ((i = 0; i < $2; i++)); do monitor 'sendkey down'; done
	monitor 'sendkey ret'
}
# admin_get NAME PATH [CURL-ARGS…]: the admin page over HTTPS (its certificate is self-signed: -k).
admin_get() { local name=$1 path=$2; shift 2; curl -sS -k --max-time 30 -b "$work/cookies" -c "$work/cookies" "$@" "$admin_url$path" 2>>"$art/$name-admin.log"; }
# admin_fingerprint: the SHA-256 fingerprint of the certificate the admin page presents.
admin_fingerprint() { openssl s_client -connect "127.0.0.1:$admin_port" </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/^.*=//'; }
# admin_up NAME SECONDS: the admin page answers (the supervisor makes its certificate first).
admin_up() {
	local t0=$SECONDS
	until admin_get "$1" /api/session >/dev/null; do ((SECONDS - t0 < $2)) || return 1; sleep 5; done
}
ready_or_fail() { # NAME SECONDS
	local t0=$SECONDS
	if status_seen "$1" "$2"; then ok "$1: the supervisor is active (READY=1 reached systemd), seen $((SECONDS - t0)) s after power-on"; sleep 6; return 0; fi
	not_ok "$1: no active supervisor on the status console after $((SECONDS - t0)) s (see $art/$1-serial.log)"
	return 1
}

echo "# 1, 2: first boot from the stick (UEFI), then again (BIOS)"
nic=("${admin_nic[@]}")
start uefi "${uefi[@]}" "${stick[@]}"
if ready_or_fail uefi 600; then
	st=$(status uefi); printf '%s\n' "$st" >"$art/uefi-status.txt"
	grep -q 'desktop' <<<"$st" && ok "uefi: tabulactl status answers, with the shipped pool" || not_ok "uefi: tabulactl status: $st"
	grep -q 'golden image .* does not exist' <<<"$st" && ok "uefi: it says the golden image is missing" || not_ok "uefi: no word of the missing golden image: $st"
	check_data uefi 1 /dev/sda5
	echo "# 1: the admin page on the management network"
	wait_log "$art/uefi-serial.log" 60 'admin page: https://10\.0\.2\.15/' && ok "uefi: the console says where the admin page is (https://10.0.2.15/)" ||
		not_ok "uefi: the console names no admin page: $(tr -d '\r' <"$art/uefi-serial.log" | grep -a 'admin page' | tail -1)"
	if admin_up uefi 300; then
		fp1=$(admin_fingerprint)
		curl -sS --max-time 30 "$admin_url/" >/dev/null 2>"$art/uefi-admin-verify.log" && not_ok "uefi: the admin page's certificate passed verification: not self-signed?" ||
			{ [[ -n $fp1 ]] && ok "uefi: the admin page answers over HTTPS with a self-signed certificate ($fp1)" || not_ok "uefi: no certificate from the admin page"; }
		admin_get uefi / >"$art/uefi-admin.html"
		grep -q '<title>.*Tabula' "$art/uefi-admin.html" && ok "uefi: the admin page is served" || not_ok "uefi: not the admin page: $(head -c 300 "$art/uefi-admin.html")"
		admin_get uefi /api/session >"$art/uefi-admin-session.json"
		grep -q '"passwordSet":false' "$art/uefi-admin-session.json" && ok "uefi: first use: the page asks for an admin password" || not_ok "uefi: first use: $(cat "$art/uefi-admin-session.json")"
		admin_get uefi /api/setup -H 'Content-Type: application/json' -d '{"password":"kiosk-branch-42","repeat":"kiosk-branch-42"}' >"$art/uefi-admin-setup.json"
		csrf=$(sed -n 's/.*"csrf":"\([^"]*\)".*/\1/p' "$art/uefi-admin-setup.json")
		[[ -n $csrf ]] && ok "uefi: the admin password is set, and the admin logged in" || not_ok "uefi: setting the password: $(cat "$art/uefi-admin-setup.json")"
		admin_get uefi /api/overview >"$art/uefi-admin-overview.json"
		grep -q 'golden image /var/lib/tabula/images/desktop.qcow2 does not exist' "$art/uefi-admin-overview.json" && ok "uefi: the admin page says the golden image is missing" ||
			not_ok "uefi: the admin page's overview: $(head -c 400 "$art/uefi-admin-overview.json")"
	else not_ok "uefi: no admin page on $admin_url after 300 s (see $art/uefi-admin.log)"; fi
fi
# A short press of the power button (ACPI): logind powers the appliance off cleanly.
qemu_poweroff 180 && ok "uefi: a short press of the power button shuts it down" || not_ok "uefi: still running 180 s after the power button"
rm -f "$work/cookies"
start bios "${stick[@]}"
if ready_or_fail bios 600; then
	check_data bios 2 /dev/sda5
	if admin_up bios 300; then
		fp2=$(admin_fingerprint)
		[[ -n $fp2 && $fp2 == "${fp1:-}" ]] && ok "bios: the admin page kept its certificate across the reboot" || not_ok "bios: certificate ${fp2:-none}, the first boot's ${fp1:-none}"
		admin_get bios /api/login -H 'Content-Type: application/json' -d '{"password":"kiosk-branch-42"}' >"$art/bios-admin-login.json"
		grep -q '"loggedIn":true' "$art/bios-admin-login.json" && ok "bios: the admin password set at the first boot logs in" || not_ok "bios: login: $(cat "$art/bios-admin-login.json")"
	else not_ok "bios: no admin page on $admin_url after 300 s"; fi
fi
nic=(-nic none)
qemu_poweroff 180 || not_ok "bios: still running 180 s after the power button"

echo "# 3: the test golden image in the appliance; the pool reaches clean"
# The kernel and initrd from the stick, booted directly so that the test adds
# a debug shell on the second serial port.
osirrox -indev "$img" -extract /live/vmlinuz "$work/vmlinuz" -extract /live/initrd.img "$work/initrd.img" >/dev/null 2>&1
chmod 644 "$work/vmlinuz" "$work/initrd.img"
append=$(sed -n '/menuentry "Tabula server" {/,/}/s/^\s*linux \/live\/vmlinuz //p' "$here/grub.cfg")
# What an admin would bring: the image, its kernel and initrd (direct kernel
# boot), and the settings that use them; hypervisor qemu: no KVM in this VM.
seed=$work/seed
mkdir -p "$seed"
cp "$golden/golden.qcow2" "$seed/desktop.qcow2"; cp "$golden/vmlinuz" "$seed/desktop-vmlinuz"; cp "$golden/initrd.img" "$seed/desktop-initrd.img"
cat >"$seed/supervisor.toml" <<TOML
[supervisor]
state_dir = "/var/lib/tabula"
hypervisor = "qemu"

[[pool]]
name = "desktop"
golden_image = "/var/lib/tabula/images/desktop.qcow2"
size = 1
vcpus = 1
memory = 256
# QEMU inside QEMU, both emulating: the tiny guest takes minutes, not seconds, to come up.
boot_timeout = 1500
video = "vga"
console_tickets = false
spice_port_base = 5920
kernel = "/var/lib/tabula/images/desktop-vmlinuz"
initrd = "/var/lib/tabula/images/desktop-initrd.img"
cmdline = "$(cat "$golden/cmdline")"
TOML
mkfs.ext4 -q -L TABULA-SEED -d "$seed" "$work/seed.img" 64M
debug() { # NAME: a direct boot (BIOS) with a debug shell on ttyS1; QEMU exits when the appliance reboots
	start "$1" -kernel "$work/vmlinuz" -initrd "$work/initrd.img" -append "$append systemd.debug_shell=ttyS1" -no-reboot \
		"${stick[@]}" -drive file="$work/seed.img",format=raw,if=virtio,readonly=on \
		$(serial_chardev s1 "$work/s1.sock" "$art/$1-shell.log")
}
sh_run() { shell_run "$work/s1.sock" "$art/$1-shell.log" "$2" "$3"; }
# A NIC whose DHCP server is QEMU's own, with no way out (restrict=on): the
# management network's DHCP.
nic=(-nic user,restrict=on,model=virtio-net-pci)
debug golden
nic=(-nic none)
t0=$SECONDS
if ready_or_fail golden 600 && sh_run golden 120 "mount -o ro /dev/vda /mnt && cp /mnt/desktop* /var/lib/tabula/images/ && cp /mnt/supervisor.toml /var/lib/tabula/config/ && umount /mnt && systemctl restart tabula-supervisor; echo TABULA-''COPIED=\$?"; then
	[[ $(shell_value "$art/golden-shell.log" TABULA-COPIED) == 0 ]] && ok "golden: the golden image and the admin's config are on the data partition" || not_ok "golden: could not copy the seed (see $art/golden-shell.log)"
	if wait_log "$art/golden-serial.log" 1800 'TABULA-STATUS .*\bdesktop +[0-9]+ +clean\b'; then
		ok "golden: the pool reaches clean inside the appliance (nested TCG), $((SECONDS - t0)) s after power-on"
		status golden >"$art/golden-status.txt"
	else not_ok "golden: the pool did not reach clean in 1800 s: $(status golden | head -3)"; fi
	wait_log "$art/golden-serial.log" 10 'address: en[a-z0-9]+ +UP +10\.0\.2\.15/24' && ok "golden: the management interface got its address by DHCP" ||
		not_ok "golden: no DHCP address on the management interface: $(tr -d '\r' <"$art/golden-serial.log" | grep -a 'address:' | tail -1)"
	# The journal of this boot at warning or worse, less what the allowlist expects.
	sh_run golden 60 "logger -t tabula-test TABULA-''MARK-GOLDEN; journalctl --sync; journalctl -b -p warning -o short-monotonic --no-pager >/run/warn.txt; journalctl --list-boots --no-pager | grep -c . | sed 's/^/TABULA-''BOOTS=/'; systemd-analyze cat-config systemd/logind.conf | grep -c '^HandlePowerKeyLongPress=factory-reset' | sed 's/^/TABULA-''LONGPRESS=/'; cat /run/warn.txt | sed 's/^/TABULA-''WARN /'"
	tr -d '\r' <"$art/golden-shell.log" | grep -a '^TABULA-WARN ' | sed 's/^TABULA-WARN //' >"$art/golden-journal-warnings.txt" || true
	unexpected=$(allowed <"$art/golden-journal-warnings.txt" | grep -v '^-- ' || true)
	[[ -z $unexpected ]] && ok "golden: no unexpected warning in the boot's journal ($(wc -l <"$art/golden-journal-warnings.txt") lines, all allowed)" ||
		not_ok "golden: unexpected journal lines: $(head -20 <<<"$unexpected")"
	boots=$(shell_value "$art/golden-shell.log" TABULA-BOOTS)
	[[ ${boots:-0} -ge 3 ]] && ok "golden: the journal is persistent ($boots boots of this stick in it)" ||
		not_ok "golden: journal boots: ${boots:-none}, expected the 3 boots of this stick"
	[[ $(shell_value "$art/golden-shell.log" TABULA-LONGPRESS) == 1 ]] && ok "golden: logind starts factory-reset.target on a long press of the power button" ||
		not_ok "golden: logind's long press is not factory-reset"

	echo "# 4: factory-reset.target (the power button's long press)"
	sh_run golden 30 "systemctl start factory-reset.target; echo TABULA-''RESET=\$?" || true
	qemu_exited 120 && ok "reset: the appliance rebooted after factory-reset.target" || not_ok "reset: no reboot 120 s after factory-reset.target"
	qemu_stop
	debug reset
	if ready_or_fail reset 600; then
		check_data reset 1 /dev/sda5
		wait_log "$art/reset-serial.log" 10 'factory reset at this boot \(keep-images\)' && ok "reset: the console says a factory reset (keep-images) was done at this boot" || not_ok "reset: no word of the factory reset on the console"
		sh_run reset 60 "ls /var/lib/tabula/images | tr '\\n' ' ' | sed 's/^/TABULA-''IMAGES=/'; echo; ls /var/lib/tabula/config | wc -l | sed 's/^/TABULA-''CONFIGS=/'; journalctl --no-pager | grep -c 'TABULA-MARK-GOLDEN' | sed 's/^/TABULA-''MARKS=/'; test -e /var/lib/tabula/admin/password; echo TABULA-''PASSWORD=\$?"
		[[ $(shell_value "$art/reset-shell.log" TABULA-IMAGES) == *desktop.qcow2* ]] && ok "reset: the golden images are kept" || not_ok "reset: images left: $(shell_value "$art/reset-shell.log" TABULA-IMAGES)"
		[[ $(shell_value "$art/reset-shell.log" TABULA-CONFIGS) == 0 ]] && ok "reset: the admin's config is gone" || not_ok "reset: config files left: $(shell_value "$art/reset-shell.log" TABULA-CONFIGS)"
		[[ $(shell_value "$art/reset-shell.log" TABULA-PASSWORD) == 1 ]] && ok "reset: the admin password is gone (the page asks for a new one)" || not_ok "reset: the admin password file is still there"
		[[ $(shell_value "$art/reset-shell.log" TABULA-MARKS) == 0 ]] && ok "reset: the logs are erased (the line logged before the reset is gone)" || not_ok "reset: the journal still holds the line logged before the reset ($(shell_value "$art/reset-shell.log" TABULA-MARKS) times)"

		echo "# 4b: tabulactl factory-reset (D-Bus FactoryReset: the supervisor runs the appliance's script)"
		sh_run reset 120 "echo admin-setting >/var/lib/tabula/config/supervisor.toml.note; tabulactl factory-reset --yes; echo TABULA-''CTL=\$?" || true
		[[ $(shell_value "$art/reset-shell.log" TABULA-CTL) == 0 ]] && ok "ctlreset: tabulactl factory-reset --yes succeeded" || not_ok "ctlreset: tabulactl factory-reset exited $(shell_value "$art/reset-shell.log" TABULA-CTL)"
		qemu_exited 120 && ok "ctlreset: the appliance rebooted" || not_ok "ctlreset: no reboot after tabulactl factory-reset"
		qemu_stop
		debug ctlreset
		if ready_or_fail ctlreset 600; then
			check_data ctlreset 1 /dev/sda5
			wait_log "$art/ctlreset-serial.log" 10 'factory reset at this boot \(erase-all\)' && ok "ctlreset: without --keep-images everything was erased" || not_ok "ctlreset: no word of the erase-all reset on the console"
			sh_run ctlreset 60 "find /var/lib/tabula/images /var/lib/tabula/config -mindepth 1 | wc -l | sed 's/^/TABULA-''LEFT=/'"
			[[ $(shell_value "$art/ctlreset-shell.log" TABULA-LEFT) == 0 ]] && ok "ctlreset: no image and no setting left" || not_ok "ctlreset: files left: $(shell_value "$art/ctlreset-shell.log" TABULA-LEFT)"
		fi
	fi
	qemu_stop
else
	qemu_stop
fi

echo "# 5: factory reset from the boot menu, erasing everything"
# The NIC of boot 1 again: the firmware's boot entries (NVRAM, $work/vars.fd)
# name the stick by its PCI path, which another set of devices would move.
nic=("${admin_nic[@]}")
start menureset "${uefi[@]}" "${stick[@]}"
if menu_pick menureset 3 && ready_or_fail menureset 600; then
	check_data menureset 1 /dev/sda5
	wait_log "$art/menureset-serial.log" 10 'factory reset at this boot \(erase-all\)' && ok "menureset: the console says everything was erased at this boot" || not_ok "menureset: no word of the factory reset on the console"
	st=$(status menureset)
	grep -q 'golden image .* does not exist' <<<"$st" && ok "menureset: the first-boot state: no golden image, as the stick shipped" || not_ok "menureset: status: $st"
fi
qemu_stop

echo "# 6, 7: install to the server's disk, then boot from it"
new_stick
truncate -s 12G "$work/disk.img"
disk=(-drive file="$work/disk.img",format=raw,if=none,id=disk -device ide-hd,drive=disk,bus=ide.0)
start install "${uefi[@]}" "${stick[@]}" "${disk[@]}" -no-reboot
log=$art/install-serial.log
if menu_pick install 1 && wait_log "$log" 600 'Choice \[1-2\]'; then
	ok "install: the installer's menu is on the serial console"
	serial_send "$work/s0.sock" '1\r'
	if wait_log "$log" 60 'Install to which disk'; then
		n=$(tr -d '\r' <"$log" | grep -aoE '^ +[0-9]+\) /dev/[a-z]+ 12G' | tail -1 | sed -E 's/^ +([0-9]+)\).*/\1/')
		dev=$(tr -d '\r' <"$log" | grep -aoE '^ +[0-9]+\) /dev/[a-z]+ 12G' | tail -1 | sed -E 's/.*(\/dev\/[a-z]+).*/\1/')
		stick_offered=$(tr -d '\r' <"$log" | grep -aE '^ +[0-9]+\) /dev/[a-z]+ 8G' || true)
		[[ -z $stick_offered ]] || not_ok "install: it offers the stick it runs from: $stick_offered"
		if [[ -n $n && -z $stick_offered ]]; then
			ok "install: it offers the 12 GiB disk ($dev) and not the stick"
			serial_send "$work/s0.sock" "$n\\r"
			wait_log "$log" 30 "Type the disk's name" && serial_send "$work/s0.sock" "${dev#/dev/}\\r"
			if wait_log "$log" 900 'Tabula is installed on'; then ok "install: copied and checked ($(grep -ao 'Tabula is installed on [^.]*' "$log" | tail -1))"
			else not_ok "install: no end of the installation (see $log)"; fi
		else not_ok "install: no 12 GiB disk offered (see $log)"; fi
	else not_ok "install: no disk menu"; fi
else not_ok "install: no installer menu on the serial console (see $log)"; fi
qemu_exited 60 && ok "install: the server restarts after the installation" || not_ok "install: no reboot after the installation"
qemu_stop
start disk "${disk[@]}"
ready_or_fail disk 600 && check_data disk 1 /dev/sda5
qemu_stop

summary "server boot test"
