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

# Networking, only when the VM has a NIC, and only now, after up: nothing
# about it may delay TABULA-UP or the READY line.
has_nic() {
	for c in /sys/bus/pci/devices/*/class; do
		# PCI class 02xxxx: network controller.
		case $(cat "$c" 2>/dev/null) in 0x02*) return 0 ;; esac
	done
	for n in /sys/class/net/*; do
		[ "${n##*/}" = lo ] || return 0
	done
	return 1
}

first_iface() {
	for n in /sys/class/net/*; do
		[ -e "$n" ] || continue
		n=${n##*/}
		[ "$n" = lo ] && continue
		iface=$n
		[ "$n" = eth0 ] && return 0
	done
	[ -n "$iface" ]
}

# The lease hook udhcpc runs: configures the interface, writes
# /etc/resolv.conf and reports the lease once per new address.
write_dhcp_script() {
	cat >/etc/udhcpc.script <<'EOS'
#!/bin/sh
say() {
	echo "$*" >/dev/ttyS0 2>/dev/null
	echo "$*" >/dev/tty0 2>/dev/null
}
case $1 in
deconfig)
	ip -4 addr flush dev "$interface"
	ip link set "$interface" up
	rm -f /run/tabula-lease
	;;
bound | renew)
	if [ "$(cat /run/tabula-lease 2>/dev/null)" != "$ip" ]; then
		ip -4 addr flush dev "$interface"
		ip addr add "$ip/${mask:-24}" ${broadcast:+broadcast "$broadcast"} dev "$interface"
		for r in $router; do
			ip route replace default via "$r" dev "$interface"
			break
		done
		{
			[ -n "$search" ] && echo "search $search"
			[ -z "$search" ] && [ -n "$domain" ] && echo "search $domain"
			for d in $dns; do echo "nameserver $d"; done
		} >/etc/resolv.conf
		echo "$ip" >/run/tabula-lease
		r=$(echo $router | tr ' ' ,)
		d=$(echo $dns | tr ' ' ,)
		say "TABULA-NET ip=$ip router=${r:-none} dns=${d:-none}"
	fi
	;;
esac
exit 0
EOS
	chmod 0755 /etc/udhcpc.script
}

# probe_dns HOST: the first IPv4 address busybox nslookup finds, or nothing.
probe_dns() {
	timeout 5 nslookup -type=a "$1" 2>/dev/null |
		sed -n 's/^Address: *\([0-9][0-9.]*\)$/\1/p' | head -n 1
}

# probe_fetch URL ADDR HOSTPORT PORT PATH: one wget by address, the name in the
# Host header, so the fetch goes where the TABULA-PROBE-DNS line says; prints
# the TABULA-PROBE line. Debian's busybox is built without wget -T (it
# segfaults: CONFIG_FEATURE_WGET_TIMEOUT is off), so timeout(1) bounds it.
probe_fetch() {
	rm -f /tmp/probe.body /tmp/probe.err
	timeout 3 wget -q -O - --header "Host: $3" "http://$2:$4$5" >/tmp/probe.body 2>/tmp/probe.err
	rc=$?
	if [ $rc = 0 ]; then
		echo "TABULA-PROBE url=$1 result=ok bytes=$(wc -c </tmp/probe.body)" >/dev/ttyS0
		return
	fi
	err=$(head -n 1 /tmp/probe.err)
	case $err in
	*"bad address"*) reason=resolve ;;
	*"can't connect"* | *refused* | *unreachable*) reason=connect ;;
	*"timed out"*) reason=timeout ;;
	*"server returned error"*)
		reason=$(echo "$err" | sed -n 's/.*HTTP\/[0-9.]* \([0-9][0-9]*\).*/http-\1/p')
		;;
	*) reason= ;;
	esac
	if [ -z "$reason" ]; then
		# busybox timeout kills with SIGTERM: 143.
		if [ $rc -ge 124 ]; then reason=timeout; else reason=error; fi
	fi
	echo "TABULA-PROBE url=$1 result=fail reason=$reason" >/dev/ttyS0
}

# tabula.probe=URL,...: after the lease, every 2 s, resolve each host once and
# fetch each URL once, one serial line per attempt (README.md).
probe_loop() {
	set -f
	urls=
	# shellcheck disable=SC2013 # one word per kernel argument
	for arg in $(cat /proc/cmdline); do
		case $arg in tabula.probe=*) urls=$(echo "${arg#tabula.probe=}" | tr , ' ') ;; esac
	done
	[ -n "$urls" ] || return 0
	while [ ! -f /run/tabula-lease ]; do sleep 0.5; done
	while :; do
		resolved=' '
		for url in $urls; do
			case $url in
			http://?*) ;;
			*)
				echo "TABULA-PROBE url=$url result=fail reason=url" >/dev/ttyS0
				continue
				;;
			esac
			rest=${url#http://}
			hostport=${rest%%/*}
			path=${rest#"$hostport"}
			[ -n "$path" ] || path=/
			host=${hostport%%:*}
			port=80
			[ "$host" = "$hostport" ] || port=${hostport#*:}
			case $host in
			*[!0-9.]*)
				# A name: resolve it once per round.
				case $resolved in
				*" $host="*) ;;
				*)
					a=$(probe_dns "$host")
					resolved="$resolved$host=${a:-none} "
					echo "TABULA-PROBE-DNS name=$host addr=${a:-none}" >/dev/ttyS0
					;;
				esac
				addr=${resolved#*" $host="}
				addr=${addr%%" "*}
				;;
			*) addr=$host ;;
			esac
			if [ "$addr" = none ]; then
				echo "TABULA-PROBE url=$url result=fail reason=resolve" >/dev/ttyS0
				continue
			fi
			probe_fetch "$url" "$addr" "$hostport" "$port" "$path"
		done
		sleep 2
	done
}

net_main() {
	has_nic || return 0
	if [ -f /lib/modules/load-order-net ]; then
		while read -r mod; do
			[ -n "$mod" ] || continue
			insmod "/lib/modules/$mod.ko" 2>/dev/null || say "TABULA-ERROR $id module $mod failed to load"
		done </lib/modules/load-order-net
	fi
	iface=
	if ! wait_for first_iface; then
		say "TABULA-ERROR $id network: no interface (a NIC without a virtio-net driver?)"
		return 0
	fi
	mkdir -p /etc /run /tmp
	ip link set lo up
	write_dhcp_script
	hostname=$(echo "$name" | tr -c 'A-Za-z0-9-\n' -)
	probe_loop &
	# Foreground udhcpc retries for good: 3 discovers 2 s apart, then a 3 s
	# pause, again and again; it renews the lease while the guest runs.
	exec udhcpc -f -i "$iface" -s /etc/udhcpc.script -t 3 -T 2 -A 3 \
		${hostname:+-x hostname:$hostname} >/tmp/udhcpc.log 2>&1
}
# Its own output goes nowhere: everything it reports, it writes to the consoles
# itself (a shell would print "Terminated" for a timed-out lookup).
net_main 3>&- </dev/null >/dev/null 2>&1 &

while :; do
	sleep 3600
done
