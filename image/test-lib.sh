# Shared by the image boot tests: results, a scratch directory, QEMU's monitor
# and serial consoles. Source it after setting `art` (the artifacts directory).

pass=0 fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
not_ok() { echo "not ok - $*"; fail=$((fail + 1)); }
# summary NAME: the last line, and the exit status.
summary() { echo "$1: $pass passed, $fail failed"; ((fail == 0)); }

# A scratch directory (not under the integration tests' tabula-it- prefix: an image
# test may run beside them) and the QEMU of the moment, both removed however it ends.
work=$(mktemp -d /tmp/tabula-image-test-XXXXXX)
qpid=
cleanup() {
	[[ -n $qpid ]] && kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# monitor COMMAND: a QEMU monitor command (the VM was started with
# -monitor unix:$work/mon.sock,server,nowait).
monitor() { echo "$1" | socat - UNIX-CONNECT:"$work/mon.sock" >/dev/null 2>&1; }
wait_socket() { local _; for _ in $(seq 100); do [[ -S $1 ]] && return 0; sleep 0.1; done; return 1; }
qemu_stop() {
	[[ -n $qpid ]] || return 0
	monitor quit || kill "$qpid" 2>/dev/null || true
	wait "$qpid" 2>/dev/null || true
	qpid=
}

# serial_chardev ID SOCKET LOG: QEMU arguments for a serial port whose output
# goes to LOG and whose input comes from writes to SOCKET.
serial_chardev() { echo "-chardev socket,id=$1,path=$2,server=on,wait=off,logfile=$3 -serial chardev:$1"; }
# serial_send SOCKET TEXT: types TEXT (printf escapes allowed) on that port. The
# socket takes one client at a time: give the last one time to go.
serial_send() { sleep 1; printf "$2" | socat - UNIX-CONNECT:"$1" >/dev/null; }
# wait_log LOG SECONDS PATTERN: until the (grep -E) pattern shows in LOG.
wait_log() {
	local log=$1 s=$2 pat=$3 t0=$SECONDS
	while ((SECONDS - t0 < s)); do
		tr -d '\r' 2>/dev/null <"$log" | grep -aqE "$pat" && return 0
		sleep 1
	done
	return 1
}
# shell_run SOCKET LOG SECONDS COMMANDS: runs COMMANDS on a root shell on that
# port (systemd.debug_shell=…, opened only by a test's kernel command line) and
# waits for their end. The end marker is computed by the shell, so the echoed
# command line never matches it; words the commands print for the test are
# quoted apart in them (TABULA-''X) for the same reason.
shell_n=0
shell_run() {
	local sock=$1 log=$2 s=$3 cmds=$4
	shell_n=$((shell_n + 1))
	wait_log "$log" 600 '#' || return 1
	sleep 1
	printf '\n%s; echo TABULA-DONE-$((%d+0))\n' "$cmds" "$shell_n" | socat - UNIX-CONNECT:"$sock" >/dev/null
	wait_log "$log" "$s" "TABULA-DONE-$shell_n\b"
}
# shell_value LOG KEY: the last KEY=value the commands printed.
shell_value() { tr -d '\r' <"$1" | grep -ao "$2=.*" | tail -1 | sed "s/^$2=//"; }
# qemu_poweroff SECONDS: a short press of the power button (ACPI); true when the
# machine shut itself down within SECONDS (else it is stopped the hard way).
qemu_poweroff() {
	[[ -n $qpid ]] || return 0
	monitor system_powerdown
	local t0=$SECONDS
	while ((SECONDS - t0 < $1)); do
		if ! kill -0 "$qpid" 2>/dev/null; then wait "$qpid" 2>/dev/null || true; qpid=; return 0; fi
		sleep 1
	done
	qemu_stop
	return 1
}

# qemu_exited SECONDS: true when QEMU (started with -no-reboot) exited by itself
# within SECONDS, i.e. the machine rebooted or powered off; then it is reaped.
qemu_exited() {
	local _
	for _ in $(seq "$1"); do kill -0 "$qpid" 2>/dev/null || break; sleep 1; done
	kill -0 "$qpid" 2>/dev/null && return 1
	wait "$qpid" 2>/dev/null || true
	qpid=
}
# screen_text FILE: a screenshot of the VM's display (kept in FILE) and what
# OCR reads on it (the VM was started with a monitor on $work/mon.sock).
screen_text() {
	monitor "screendump $work/shot.ppm"
	sleep 0.5
	convert-im6.q16 "$work/shot.ppm" "png:$1" 2>/dev/null || return 0
	convert-im6.q16 "$1" -colorspace Gray -threshold 50% -negate "png:$work/ocr.png"
	OMP_THREAD_LIMIT=1 tesseract "$work/ocr.png" stdout --psm 6 2>/dev/null || true
}
