#!/usr/bin/env bash
# Proves the test golden image with plain QEMU, no libvirt: a linked clone
# boots, reports on serial and on the agent channel, keeps its marker across a
# reboot on the same overlay, and never writes through to the golden image.
# With a NIC it gets a lease and runs the tabula.probe= URLs: once on QEMU's
# user network (slirp), once on a tap in a private network namespace with
# dnsmasq answering DHCP and DNS for one name only, like the VM network (needs
# root, /dev/net/tun, unshare/nsenter and dnsmasq; skipped and not counted
# as passed otherwise).
# TABULA_SCREENSHOT=file.png keeps a picture of the display from the first boot.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${TABULA_BUILD:-$repo/build}/test-golden
boot_timeout=${TABULA_BOOT_TIMEOUT:-60}
# After TABULA-UP: until the lease and the first probe lines.
net_timeout=${TABULA_NET_TIMEOUT:-60}
passed=0

"$here/build.sh"

# qemu-img resolves a relative backing path against the overlay's directory.
out=$(cd "$out" && pwd)
golden=$out/golden.qcow2
cmdline=$(cat "$out/cmdline")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tabula-golden-check.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
	echo "check FAILED: $*" >&2
	exit 1
}

cat >"$tmp/sock.py" <<'PY'
# Small unix-socket client: "read PATH OUT" copies the agent channel to a
# file; "monitor PATH CMD" sends one human-monitor command.
import socket, sys, time

def connect(path):
    for _ in range(400):
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            return s
        except OSError:
            time.sleep(0.025)
    sys.exit("cannot connect to " + path)

mode, path = sys.argv[1], sys.argv[2]
s = connect(path)
if mode == "read":
    with open(sys.argv[3], "ab", buffering=0) as out:
        while True:
            data = s.recv(4096)
            if not data:
                break
            out.write(data)
elif mode == "monitor":
    s.settimeout(10)
    s.sendall(sys.argv[3].encode() + b"\n")
    # screendump completes before the monitor prints its next prompt.
    buf = b""
    while buf.count(b"(qemu)") < 2:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
PY

cat >"$tmp/ppm2png.py" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
fields, pos = [], 0
while len(fields) < 4:
    while data[pos:pos + 1].isspace():
        pos += 1
    if data[pos:pos + 1] == b"#":
        pos = data.index(b"\n", pos)
        continue
    end = pos
    while not data[end:end + 1].isspace():
        end += 1
    fields.append(data[pos:end])
    pos = end
pos += 1
assert fields[0] == b"P6" and fields[3] == b"255"
w, h = int(fields[1]), int(fields[2])
pixels = data[pos:pos + w * h * 3]
raw = b"".join(b"\0" + pixels[y * w * 3:(y + 1) * w * 3] for y in range(h))
def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
open(sys.argv[2], "wb").write(png)
PY

# A tiny web server: port 0, the port it got written to PORTFILE, every
# request's Host header and path appended to LOG, one fixed body.
cat >"$tmp/web.py" <<'PY'
import http.server, os, sys
BODY = b"TABULA-CHECK-BODY\n"
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(sys.argv[3], "a") as log:
            log.write("%s %s\n" % (self.headers.get("Host"), self.path))
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer((sys.argv[1], 0), Handler)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
server.serve_forever()
PY
body_bytes=18   # len(BODY)

# http_server NAME BIND [PREFIX...]: starts one, sets http_port.
http_server() {
	local name=$1 bind=$2 t=0
	shift 2
	mkdir -p "$tmp/$name"
	: >"$tmp/$name/http.log"
	"$@" python3 "$tmp/web.py" "$bind" "$tmp/$name/http.port" "$tmp/$name/http.log" 2>"$tmp/$name/http.err" &
	pids+=("$!")
	until [[ -s $tmp/$name/http.port ]]; do
		((t++ < 100)) || { cat "$tmp/$name/http.err" >&2; fail "$name: the web server did not start"; }
		sleep 0.05
	done
	http_port=$(cat "$tmp/$name/http.port")
}

now() { echo "${EPOCHREALTIME/[,.]/}"; }   # microseconds

# Options for the next boot only: a command QEMU runs under, more QEMU
# arguments, more kernel command line, serial lines to wait for after
# TABULA-UP as "LABEL=COUNT=ERE" (until COUNT lines match; each reported with
# its time), seconds to linger after that.
qemu_prefix=() qemu_extra=() append_extra='' wait_serial=() linger=0

# boot NAME OVERLAY [SCREENSHOT]: boots until TABULA-UP and the READY line
# (and the wait_serial lines), then kills QEMU hard, as a host destroying a VM
# would. Sets boot_serial and boot_ready to the captured outputs.
boot() {
	local name=$1 overlay=$2 shot=${3:-} dir=$tmp/$1 qpid rpid start t w label count
	mkdir -p "$dir"
	: >"$dir/ready"
	start=$(now)
	"${qemu_prefix[@]}" qemu-system-x86_64 -accel tcg -m 256 -nic none -display none -no-reboot \
		-smbios type=1,serial=check-vm "${qemu_extra[@]}" \
		-kernel "$out/vmlinuz" -initrd "$out/initrd.img" -append "$cmdline${append_extra:+ $append_extra}" \
		-drive "file=$overlay,if=virtio,format=qcow2" \
		-device virtio-serial-pci \
		-chardev "socket,id=agent,path=$dir/agent.sock,server=on,wait=off" \
		-device virtserialport,chardev=agent,name=org.qemu.guest_agent.0 \
		-serial "file:$dir/serial.log" \
		-monitor "unix:$dir/monitor.sock,server=on,wait=off" \
		>"$dir/qemu.log" 2>&1 &
	qpid=$!
	pids+=("$qpid")
	python3 "$tmp/sock.py" read "$dir/agent.sock" "$dir/ready" &
	rpid=$!
	pids+=("$rpid")

	t=0
	until grep -q '^TABULA-UP ' "$dir/serial.log" 2>/dev/null && grep -q '^TABULA-READY ' "$dir/ready"; do
		kill -0 "$qpid" 2>/dev/null || { cat "$dir/qemu.log" >&2; fail "$name: QEMU exited before TABULA-UP"; }
		if ((t >= boot_timeout * 10)); then
			sed 's/^/  serial: /' "$dir/serial.log" >&2 || true
			fail "$name: no TABULA-UP and TABULA-READY within ${boot_timeout}s"
		fi
		sleep 0.1
		t=$((t + 1))
	done
	printf '%s: TABULA-UP after %d ms\n' "$name" $((($(now) - start) / 1000))

	t=0
	for w in "${wait_serial[@]}"; do
		label=${w%%=*} w=${w#*=}
		count=${w%%=*} w=${w#*=}
		until (($(grep -cE "$w" "$dir/serial.log") >= count)); do
			kill -0 "$qpid" 2>/dev/null || { cat "$dir/qemu.log" >&2; fail "$name: QEMU exited before $label"; }
			if ((t >= net_timeout * 10)); then
				sed 's/^/  serial: /' "$dir/serial.log" >&2 || true
				fail "$name: no $label within ${net_timeout}s of TABULA-UP"
			fi
			sleep 0.1
			t=$((t + 1))
		done
		printf '%s: %s after %d ms\n' "$name" "$label" $((($(now) - start) / 1000))
	done
	sleep "$linger"

	if [[ -n $shot ]]; then
		python3 "$tmp/sock.py" monitor "$dir/monitor.sock" "screendump $dir/screen.ppm"
		python3 "$tmp/ppm2png.py" "$dir/screen.ppm" "$shot"
		echo "$name: screenshot in $shot"
	fi

	kill -KILL "$qpid" 2>/dev/null || true
	wait "$qpid" 2>/dev/null || true
	wait "$rpid" 2>/dev/null || true
	boot_serial=$(tr -d '\r' <"$dir/serial.log")
	boot_ready=$(tr -d '\r' <"$dir/ready")
	qemu_prefix=() qemu_extra=() append_extra='' wait_serial=() linger=0
}

# expect NAME LINE: LINE is one of the serial lines of the last boot.
expect() {
	grep -qxF "$2" <<<"$boot_serial" || {
		sed 's/^/  serial: /' <<<"$boot_serial" >&2
		fail "$1: no line \"$2\""
	}
}

# expect_up NAME: the last boot reported up, on serial and the agent channel,
# and no errors.
expect_up() {
	local s
	s=$(session_of "$boot_serial" TABULA-GUEST)
	[[ -n $s ]] || fail "$1: no TABULA-GUEST line with vm=check-vm"
	expect "$1" "TABULA-UP vm=check-vm session=$s"
	grep -qxF "TABULA-READY vm=check-vm session=$s" <<<"$boot_ready" || fail "$1: agent channel did not carry TABULA-READY"
	! grep -q TABULA-ERROR <<<"$boot_serial" || fail "$1: $(grep TABULA-ERROR <<<"$boot_serial")"
}

# session_of TEXT PREFIX: the session id on the first line starting with PREFIX.
session_of() {
	sed -n "s/^$2 vm=check-vm session=\([0-9a-f-]\{36\}\)\( .*\)\{0,1\}\$/\1/p" <<<"$1" | head -n 1
}

golden_sum=$(sha256sum <"$golden")
qemu-img create -q -f qcow2 -F qcow2 -b "$golden" "$tmp/overlay1.qcow2"
qemu-img create -q -f qcow2 -F qcow2 -b "$golden" "$tmp/overlay2.qcow2"

boot boot1 "$tmp/overlay1.qcow2" "${TABULA_SCREENSHOT:-}"
s1=$(session_of "$boot_serial" TABULA-GUEST)
[[ -n $s1 ]] || fail "boot1: no TABULA-GUEST line with vm=check-vm"
grep -qxF "TABULA-GUEST vm=check-vm session=$s1 previous-marker=none" <<<"$boot_serial" ||
	fail "boot1: expected previous-marker=none: $(grep TABULA-GUEST <<<"$boot_serial")"
grep -qxF "TABULA-UP vm=check-vm session=$s1" <<<"$boot_serial" || fail "boot1: TABULA-UP does not match"
grep -qxF "TABULA-READY vm=check-vm session=$s1" <<<"$boot_ready" || fail "boot1: agent channel did not carry TABULA-READY"
grep -q TABULA-ERROR <<<"$boot_serial" && fail "boot1: $(grep TABULA-ERROR <<<"$boot_serial")"
echo "boot1: ok, session $s1"
passed=$((passed + 1))

boot boot2 "$tmp/overlay1.qcow2"
s2=$(session_of "$boot_serial" TABULA-GUEST)
[[ -n $s2 && $s2 != "$s1" ]] || fail "boot2: missing or repeated session id"
grep -qxF "TABULA-GUEST vm=check-vm session=$s2 previous-marker=TABULA-MARKER vm=check-vm session=$s1" <<<"$boot_serial" ||
	fail "boot2: expected boot1's marker: $(grep TABULA-GUEST <<<"$boot_serial")"
grep -qxF "TABULA-READY vm=check-vm session=$s2" <<<"$boot_ready" || fail "boot2: agent channel did not carry TABULA-READY"
echo "boot2: ok, saw boot1's marker"
passed=$((passed + 1))

# Without a NIC a probe on the command line changes nothing: no network lines.
append_extra="tabula.probe=http://10.0.2.2:1/" linger=3
boot boot3 "$tmp/overlay2.qcow2"
s3=$(session_of "$boot_serial" TABULA-GUEST)
grep -qxF "TABULA-GUEST vm=check-vm session=$s3 previous-marker=none" <<<"$boot_serial" ||
	fail "fresh overlay: expected previous-marker=none: $(grep TABULA-GUEST <<<"$boot_serial")"
! grep -E '^TABULA-(NET|PROBE|ERROR)' <<<"$boot_serial" || fail "boot3: network lines without a NIC"
echo "boot3: ok, fresh overlay starts clean, no network lines without a NIC"
passed=$((passed + 1))

# QEMU's user network: its DHCP server, its DNS proxy at 10.0.2.3 (which asks
# the host's resolver: .invalid never resolves), the host as 10.0.2.2.
http_server net 127.0.0.1
ok_url=http://10.0.2.2:$http_port/net
bad_url=http://nonexistent.invalid/
qemu_extra=(-netdev 'user,id=net0' -device 'virtio-net-pci,netdev=net0')
append_extra="tabula.probe=$ok_url,$bad_url"
wait_serial=(
	"TABULA-NET=1=^TABULA-NET "
	"probe ok=1=^TABULA-PROBE url=$ok_url "
	"probe of an unknown name=1=^TABULA-PROBE url=$bad_url "
)
qemu-img create -q -f qcow2 -F qcow2 -b "$golden" "$tmp/overlay3.qcow2"
boot net "$tmp/overlay3.qcow2"
expect_up net
expect net "TABULA-NET ip=10.0.2.15 router=10.0.2.2 dns=10.0.2.3"
expect net "TABULA-PROBE url=$ok_url result=ok bytes=$body_bytes"
expect net "TABULA-PROBE-DNS name=nonexistent.invalid addr=none"
expect net "TABULA-PROBE url=$bad_url result=fail reason=resolve"
grep -qxF "10.0.2.2:$http_port /net" "$tmp/net/http.log" || fail "net: the web server saw no request for /net: $(cat "$tmp/net/http.log")"
echo "net: ok, lease from QEMU's DHCP, fetched $ok_url, $bad_url did not resolve"
passed=$((passed + 1))

# A tap in a private network namespace; dnsmasq as on the VM network: DHCP,
# DNS for allowed.test only (everything else NXDOMAIN), no upstream.
lan_ok() {
	[[ $EUID == 0 && -c /dev/net/tun ]] && command -v dnsmasq && command -v unshare && command -v nsenter
} >/dev/null
if lan_ok; then
	unshare -n sleep 600 &
	holder=$!
	pids+=("$holder")
	t=0
	while [[ $(readlink "/proc/$holder/ns/net") == "$(readlink /proc/self/ns/net)" ]]; do
		((t++ < 100)) || fail "lan: no network namespace"
		sleep 0.02
	done
	in_ns=(nsenter -t "$holder" -n)
	"${in_ns[@]}" ip link set lo up
	"${in_ns[@]}" ip tuntap add dev tap0 mode tap
	"${in_ns[@]}" ip addr add 10.0.3.1/24 dev tap0
	"${in_ns[@]}" ip link set tap0 up
	mkdir -p "$tmp/lan"
	"${in_ns[@]}" dnsmasq --keep-in-foreground --conf-file=/dev/null --pid-file= --user=root \
		--interface=tap0 --bind-interfaces --no-resolv --no-hosts --server=/#/ \
		--address=/allowed.test/10.0.3.1 \
		--dhcp-range=10.0.3.50,10.0.3.99,255.255.255.0,600 --dhcp-authoritative --no-ping \
		--dhcp-leasefile="$tmp/lan/leases" --log-queries --log-dhcp --log-facility="$tmp/lan/dnsmasq.log" &
	pids+=("$!")
	http_server lan 10.0.3.1 "${in_ns[@]}"
	ok_url=http://allowed.test:$http_port/lan
	closed_url=http://allowed.test:1/
	bad_url=http://blocked.test:$http_port/
	qemu_prefix=("${in_ns[@]}")
	qemu_extra=(-netdev 'tap,id=net0,ifname=tap0,script=no,downscript=no' -device 'virtio-net-pci,netdev=net0')
	append_extra="tabula.probe=$ok_url,$bad_url,$closed_url"
	wait_serial=(
		"TABULA-NET=1=^TABULA-NET "
		"probe ok=1=^TABULA-PROBE url=$ok_url "
		"probe of a closed port=1=^TABULA-PROBE url=$closed_url "
		"second round=2=^TABULA-PROBE url=$ok_url "
	)
	qemu-img create -q -f qcow2 -F qcow2 -b "$golden" "$tmp/overlay4.qcow2"
	boot lan "$tmp/overlay4.qcow2"
	expect_up lan
	lease=$(grep -E '^TABULA-NET ' <<<"$boot_serial" | head -n 1)
	if ! [[ $lease =~ ^TABULA-NET\ ip=10\.0\.3\.([0-9]+)\ router=10\.0\.3\.1\ dns=10\.0\.3\.1$ ]] ||
		((BASH_REMATCH[1] < 50 || BASH_REMATCH[1] > 99)); then
		fail "lan: unexpected lease line: $lease"
	fi
	expect lan "TABULA-PROBE-DNS name=allowed.test addr=10.0.3.1"
	expect lan "TABULA-PROBE url=$ok_url result=ok bytes=$body_bytes"
	expect lan "TABULA-PROBE-DNS name=blocked.test addr=none"
	expect lan "TABULA-PROBE url=$bad_url result=fail reason=resolve"
	expect lan "TABULA-PROBE url=$closed_url result=fail reason=connect"
	grep -qxF "allowed.test:$http_port /lan" "$tmp/lan/http.log" ||
		fail "lan: the web server saw no request with Host allowed.test: $(cat "$tmp/lan/http.log")"
	echo "lan: ok, ${lease#TABULA-NET } from dnsmasq, fetched $ok_url, blocked.test did not resolve, port 1 refused"
	passed=$((passed + 1))
else
	echo "lan: SKIPPED, needs root, /dev/net/tun, unshare, nsenter and dnsmasq"
fi

[[ $(sha256sum <"$golden") == "$golden_sum" ]] || fail "golden image changed"
echo "golden: unchanged"
passed=$((passed + 1))
echo "test-golden check: $passed passed, 0 failed"
