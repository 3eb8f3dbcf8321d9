#!/usr/bin/env bash
# Proves the test golden image with plain QEMU, no libvirt: a linked clone
# boots, reports on serial and on the agent channel, keeps its marker across a
# reboot on the same overlay, and never writes through to the golden image.
# TABULA_SCREENSHOT=file.png keeps a picture of the display from the first boot.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${TABULA_BUILD:-$repo/build}/test-golden
boot_timeout=${TABULA_BOOT_TIMEOUT:-60}

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

now() { echo "${EPOCHREALTIME/[,.]/}"; }   # microseconds

# boot NAME OVERLAY [SCREENSHOT]: boots until TABULA-UP and the READY line,
# then kills QEMU hard, as a host destroying a VM would. Sets boot_serial and
# boot_ready to the captured outputs.
boot() {
	local name=$1 overlay=$2 shot=${3:-} dir=$tmp/$1 qpid rpid start t
	mkdir -p "$dir"
	: >"$dir/ready"
	start=$(now)
	qemu-system-x86_64 -accel tcg -m 256 -nic none -display none -no-reboot \
		-smbios type=1,serial=check-vm \
		-kernel "$out/vmlinuz" -initrd "$out/initrd.img" -append "$cmdline" \
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

boot boot2 "$tmp/overlay1.qcow2"
s2=$(session_of "$boot_serial" TABULA-GUEST)
[[ -n $s2 && $s2 != "$s1" ]] || fail "boot2: missing or repeated session id"
grep -qxF "TABULA-GUEST vm=check-vm session=$s2 previous-marker=TABULA-MARKER vm=check-vm session=$s1" <<<"$boot_serial" ||
	fail "boot2: expected boot1's marker: $(grep TABULA-GUEST <<<"$boot_serial")"
grep -qxF "TABULA-READY vm=check-vm session=$s2" <<<"$boot_ready" || fail "boot2: agent channel did not carry TABULA-READY"
echo "boot2: ok, saw boot1's marker"

boot boot3 "$tmp/overlay2.qcow2"
s3=$(session_of "$boot_serial" TABULA-GUEST)
grep -qxF "TABULA-GUEST vm=check-vm session=$s3 previous-marker=none" <<<"$boot_serial" ||
	fail "fresh overlay: expected previous-marker=none: $(grep TABULA-GUEST <<<"$boot_serial")"
echo "boot3: ok, fresh overlay starts clean"

[[ $(sha256sum <"$golden") == "$golden_sum" ]] || fail "golden image changed"
echo "golden: unchanged"
echo "test-golden check: 4 passed, 0 failed"
