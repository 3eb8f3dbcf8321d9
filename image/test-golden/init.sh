#!/bin/sh
# /init of the Tabula test guest: busybox only, PID 1, never exits.
# The printed lines and the on-disk marker are a contract with the integration
# tests (see README.md); change them only together with those tests.

PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PATH

mount -t proc proc /proc
mount -t sysfs sysfs /sys
# The kernel is built without DEVTMPFS_MOUNT, and the initramfs ships no
# device nodes, so PID 1 starts without a console until this is mounted.
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

# Kernel messages would scroll the display banner away.
dmesg -n 1

MARKER_OFFSET_SECTORS=2048   # 1 MiB, clear of any partition table at the start
DISK=/dev/vda
PORT_NAME=org.qemu.guest_agent.0

say() {
	# Both consoles: the serial one is what tests parse, the display is what a
	# person at a station sees.
	echo "$*" >/dev/ttyS0 2>/dev/null
	echo "$*" >/dev/tty0 2>/dev/null
}

wait_for() {
	# Device probing finishes asynchronously after insmod (and the port name
	# arrives from the host later still), so poll for up to ~10 s.
	i=0
	while [ $i -lt 100 ]; do
		eval "$1" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

if [ -f /lib/modules/load-order ]; then
	while read -r mod; do
		[ -n "$mod" ] || continue
		insmod "/lib/modules/$mod.ko" 2>/dev/null || say "TABULA-ERROR module $mod failed to load"
	done </lib/modules/load-order
fi

name=$(tr -d '\000\r\n' </sys/class/dmi/id/product_serial 2>/dev/null)
[ -n "$name" ] || name=unknown
session=$(cat /proc/sys/kernel/random/boot_id)
id="vm=$name session=$session"

banner() {
	w=72
	line=$(printf '%*s' $w '' | tr ' ' '=')
	blank=$(printf '%*s' $w '')
	{
		# Clear, hide the cursor, never blank the screen.
		printf '\033[0m\033[2J\033[H\033[?25l\033[9;0]'
		printf '\n\n\n'
		printf '   \033[1;37;44m+%s+\033[0m\n' "$line"
		printf '   \033[1;37;44m|%s|\033[0m\n' "$blank"
		printf '   \033[1;37;44m|   %-*.*s|\033[0m\n' $((w - 3)) $((w - 3)) "TABULA TEST GUEST"
		printf '   \033[1;37;44m|%s|\033[0m\n' "$blank"
		printf '   \033[1;37;44m|   %-*.*s|\033[0m\n' $((w - 3)) $((w - 3)) "VM       $name"
		printf '   \033[1;37;44m|%s|\033[0m\n' "$blank"
		printf '   \033[1;37;44m|   %-*.*s|\033[0m\n' $((w - 3)) $((w - 3)) "SESSION  $session"
		printf '   \033[1;37;44m|%s|\033[0m\n' "$blank"
		printf '   \033[1;37;44m+%s+\033[0m\n' "$line"
		printf '\n\n'
	} >/dev/tty0 2>/dev/null
}
banner

previous=none
if wait_for "[ -b $DISK ]"; then
	text=$(dd if=$DISK bs=512 skip=$MARKER_OFFSET_SECTORS count=1 2>/dev/null | tr -d '\000\r\n')
	[ -n "$text" ] && previous=$text
	disk_ok=1
else
	say "TABULA-ERROR $id disk $DISK not found"
	disk_ok=0
fi

say "TABULA-GUEST $id previous-marker=$previous"

if [ $disk_ok = 1 ]; then
	dd if=/dev/zero of=/marker bs=512 count=1 2>/dev/null
	printf 'TABULA-MARKER %s' "$id" | dd of=/marker conv=notrunc 2>/dev/null
	# conv=fsync reaches the virtual disk's write cache flush; a plain sync
	# does not flush a raw block device, and the host may kill QEMU hard.
	if ! dd if=/marker of=$DISK bs=512 seek=$MARKER_OFFSET_SECTORS count=1 conv=notrunc,fsync 2>/dev/null; then
		say "TABULA-ERROR $id writing the marker to $DISK failed"
	fi
	sync
fi

find_port() {
	for f in /sys/class/virtio-ports/*/name; do
		[ -f "$f" ] || continue
		if [ "$(cat "$f")" = "$PORT_NAME" ]; then
			port=/dev/${f#/sys/class/virtio-ports/}
			port=${port%/name}
			[ -c "$port" ] && return 0
		fi
	done
	return 1
}

port=
if wait_for find_port; then
	# The host sees the channel as connected only while the guest holds it
	# open, so this descriptor stays open for the guest's whole life.
	exec 3<>"$port"
	# The driver blocks writes until a host client is attached to the
	# channel; the guest is up whether or not anyone is listening yet.
	echo "TABULA-READY $id" >&3 &
	say "TABULA-UP $id"
else
	say "TABULA-ERROR $id virtio-serial port $PORT_NAME not found"
fi

while :; do
	sleep 3600
done
