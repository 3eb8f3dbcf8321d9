#!/usr/bin/env bash
# Brings up (or down) the host services the supervisor talks to, on a machine where
# no init system starts them: system D-Bus, virtlogd, libvirtd and libvirt-dbus.
#
#   ci/daemons.sh up      start whatever is not running yet (safe to repeat)
#   ci/daemons.sh down    stop them again, in reverse order
#   ci/daemons.sh status  one line per service; non-zero exit if any is down
#   ci/daemons.sh stop libvirtd|libvirt-dbus|dbus   stop one (then `up` starts it again)
#
# Run ci/setup-host.sh first. Must run as root.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIBVIRTD_CONF=$REPO/ci/libvirt/libvirtd.conf
BUS_POLICY_DIR=$REPO/appliance/dbus
POLKIT_ACTIONS_DIR=$REPO/appliance/polkit
LOG_DIR=/var/log/tabula

DBUS_PIDFILE=/run/dbus/pid
VIRTLOGD_PIDFILE=/run/virtlogd.pid
LIBVIRTD_PIDFILE=/run/libvirtd.pid
LIBVIRT_DBUS_PIDFILE=/run/libvirt-dbus.pid

# Generous: the first libvirtd start probes QEMU's capabilities, which takes seconds.
START_TIMEOUT_S=60
STOP_TIMEOUT_S=15

URI=qemu:///system

# ---------------------------------------------------------------- helpers

now_ms() { date +%s%3N; }

say() { printf '%-13s %s\n' "$1:" "$2"; }

die() {
  echo "daemons: $*" >&2
  exit 1
}

# Prints the last lines of a log so a failure explains itself without a second command.
die_with_log() {
  local service=$1 log=$2 msg=$3
  echo "daemons: $service $msg; log: $log" >&2
  if [[ -s $log ]]; then
    echo "---- last lines of $log ----" >&2
    tail -n 15 "$log" >&2
  fi
  exit 1
}

# A daemon that has exited stays a zombie until init reaps it, which some inits do late,
# and kill -0 still succeeds on a zombie: count zombies as gone.
pid_alive() {
  local pid=$1 comm=$2 state
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/stat ]] || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]] || return 1
  state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z && $state != X ]]
}

pid_gone() { ! pid_alive "$@"; }

# Prints the pid recorded in $pidfile if that process is alive and is $comm.
pidfile_pid() {
  local pidfile=$1 comm=$2 pid
  [[ -r $pidfile ]] || return 1
  pid=$(tr -dc '0-9' <"$pidfile")
  pid_alive "$pid" "$comm" || return 1
  echo "$pid"
}

remove_stale_pidfile() {
  local pidfile=$1 comm=$2
  if [[ -e $pidfile ]] && ! pidfile_pid "$pidfile" "$comm" >/dev/null; then
    rm -f "$pidfile"
  fi
}

# Polls a probe command until it succeeds or the deadline passes.
wait_for() {
  local timeout_s=$1
  shift
  local deadline=$(($(now_ms) + timeout_s * 1000))
  until "$@"; do
    (($(now_ms) < deadline)) || return 1
    sleep 0.1
  done
}

stop_pid() {
  local name=$1 pid=$2 comm=$3
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_for "$STOP_TIMEOUT_S" pid_gone "$pid" "$comm"; then
    echo "daemons: $name (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT_S} s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait_for 5 pid_gone "$pid" "$comm" || die "$name (pid $pid) does not exit"
  fi
}

# ---------------------------------------------------------------- probes

probe_dbus() {
  timeout 5 dbus-send --system --print-reply --reply-timeout=2000 \
    --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.GetId \
    >/dev/null 2>&1
}

probe_virtlogd() {
  timeout 5 virt-admin -c virtlogd:///system version >/dev/null 2>&1
}

probe_libvirtd() {
  timeout 15 virsh -c "$URI" version >/dev/null 2>&1
}

libvirt_dbus_has_owner() {
  timeout 5 dbus-send --system --print-reply --reply-timeout=2000 \
    --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner \
    string:org.libvirt 2>/dev/null | grep -q 'boolean true'
}

# The name check comes first and the call must not auto-start: otherwise the probe itself
# would make the bus activate a second libvirt-dbus behind our back.
probe_libvirt_dbus() {
  libvirt_dbus_has_owner &&
    timeout 10 busctl --system --auto-start=no call org.libvirt /org/libvirt/QEMU \
      org.libvirt.Connect ListDomains u 0 >/dev/null 2>&1
}

libvirt_dbus_owner_pid() {
  timeout 5 dbus-send --system --print-reply --reply-timeout=2000 \
    --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.GetConnectionUnixProcessID string:org.libvirt 2>/dev/null |
    awk '/uint32/ { print $2 }'
}

kvm_ok() {
  [[ ! -e /dev/kvm ]] ||
    [[ $(stat -c '%G %a' /dev/kvm) == "kvm 660" ]]
}

# ---------------------------------------------------------------- up steps

restart_libvirtd=0
restart_libvirt_dbus=0

# libvirt checks that its QEMU user (group kvm) can open /dev/kvm. If not, it decides KVM
# "was available when probed but is not now" and re-probes QEMU on every lookup, which
# makes each call take ~30 s. libvirtd re-checks after the device changes, but restarting
# it is cheap (capabilities are cached on disk) and drops whatever it concluded meanwhile.
up_kvm() {
  local t0 before kvm_changed_ns libvirtd_started_ns
  t0=$(now_ms)
  if [[ ! -e /dev/kvm ]]; then
    say kvm "no /dev/kvm (guests run under TCG anyway)"
    return
  fi
  before=$(stat -c '%U:%G %a' /dev/kvm)
  if kvm_ok; then
    say kvm "/dev/kvm already root:kvm 0660 ($(($(now_ms) - t0)) ms)"
  else
    chgrp kvm /dev/kvm
    chmod 0660 /dev/kvm
    say kvm "/dev/kvm fixed (was $before, now root:kvm 0660) ($(($(now_ms) - t0)) ms)"
  fi
  # Comparing /dev/kvm's change time with the pidfile libvirtd writes at startup also
  # catches a fix made by someone else after libvirtd had started. Nanoseconds, because
  # a fix and the restart it triggers usually fall within the same second.
  if pidfile_pid "$LIBVIRTD_PIDFILE" libvirtd >/dev/null; then
    kvm_changed_ns=$(stat -c %.9Z /dev/kvm | tr -d .)
    libvirtd_started_ns=$(stat -c %.9Y "$LIBVIRTD_PIDFILE" | tr -d .)
    if ((kvm_changed_ns > libvirtd_started_ns)); then
      restart_libvirtd=1
    fi
  fi
}

up_accounts() {
  local t0 changes=()
  t0=$(now_ms)
  getent group libvirt >/dev/null || die "group libvirt missing; run ci/setup-host.sh"
  getent passwd libvirtdbus >/dev/null || die "user libvirtdbus missing; run ci/setup-host.sh"
  if ! id -nG libvirtdbus | tr ' ' '\n' | grep -qx libvirt; then
    usermod -aG libvirt libvirtdbus
    changes+=("libvirtdbus added to group libvirt")
    # A running libvirt-dbus keeps the groups it started with.
    restart_libvirt_dbus=1
  fi
  if ! getent group tabula >/dev/null; then
    groupadd -f tabula
    changes+=("group tabula created")
  fi
  if ((${#changes[@]})); then
    say accounts "$(printf '%s; ' "${changes[@]}")($(($(now_ms) - t0)) ms)"
  else
    say accounts "already set up ($(($(now_ms) - t0)) ms)"
  fi
}

# Copies the project's bus policies; prints "changed" if any file was new or different.
install_bus_policies() {
  local f dest changed=0
  shopt -s nullglob
  for f in "$BUS_POLICY_DIR"/*.conf; do
    dest=/etc/dbus-1/system.d/$(basename "$f")
    if ! cmp -s "$f" "$dest"; then
      install -m 0644 "$f" "$dest"
      changed=1
    fi
  done
  shopt -u nullglob
  ((changed)) && echo changed
  return 0
}

# The supervisor's polkit actions, where polkitd (bus-activated on first use) finds them.
up_polkit_actions() {
  local f dest t0 changed=0
  t0=$(now_ms)
  shopt -s nullglob
  for f in "$POLKIT_ACTIONS_DIR"/*.policy; do
    dest=/usr/share/polkit-1/actions/$(basename "$f")
    if ! cmp -s "$f" "$dest"; then
      install -D -m 0644 "$f" "$dest"
      changed=1
    fi
  done
  shopt -u nullglob
  if ((changed)); then
    say polkit "actions installed ($(($(now_ms) - t0)) ms)"
  else
    say polkit "actions already installed ($(($(now_ms) - t0)) ms)"
  fi
}

up_dbus() {
  local t0 pid policies log=$LOG_DIR/dbus-daemon.log
  t0=$(now_ms)
  policies=$(install_bus_policies)
  if pid=$(pidfile_pid "$DBUS_PIDFILE" dbus-daemon) || probe_dbus; then
    wait_for 10 probe_dbus || die_with_log dbus-daemon "$log" "is running (pid ${pid:-?}) but does not answer"
    if [[ $policies == changed ]]; then
      dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.ReloadConfig >/dev/null ||
        die "dbus-daemon did not accept ReloadConfig"
      say dbus-daemon "already running (pid ${pid:-?}); bus policy reloaded ($(($(now_ms) - t0)) ms)"
    else
      say dbus-daemon "already running (pid ${pid:-?}) ($(($(now_ms) - t0)) ms)"
    fi
    return
  fi
  # dbus-daemon refuses to start while its pidfile exists, even a stale one.
  rm -f "$DBUS_PIDFILE"
  mkdir -p /run/dbus
  # DBUS_DEBUG_OUTPUT keeps stderr open across --fork, and --nosyslog sends warnings
  # there: with no syslog daemon they would otherwise be lost.
  DBUS_DEBUG_OUTPUT=1 dbus-daemon --system --fork --nosyslog </dev/null >>"$log" 2>&1 ||
    die_with_log dbus-daemon "$log" "failed to start"
  wait_for "$START_TIMEOUT_S" probe_dbus || die_with_log dbus-daemon "$log" "did not come up"
  pid=$(pidfile_pid "$DBUS_PIDFILE" dbus-daemon || echo '?')
  say dbus-daemon "started (pid $pid) ($(($(now_ms) - t0)) ms)"
}

up_virtlogd() {
  local t0 pid log=$LOG_DIR/virtlogd.log
  t0=$(now_ms)
  if pid=$(pidfile_pid "$VIRTLOGD_PIDFILE" virtlogd) || probe_virtlogd; then
    wait_for 10 probe_virtlogd || die_with_log virtlogd "$log" "is running (pid ${pid:-?}) but does not answer"
    say virtlogd "already running (pid ${pid:-?}) ($(($(now_ms) - t0)) ms)"
    return
  fi
  remove_stale_pidfile "$VIRTLOGD_PIDFILE" virtlogd
  LIBVIRT_LOG_OUTPUTS="3:file:$log" virtlogd --daemon </dev/null >>"$log" 2>&1 ||
    die_with_log virtlogd "$log" "failed to start"
  wait_for "$START_TIMEOUT_S" probe_virtlogd || die_with_log virtlogd "$log" "did not come up"
  pid=$(pidfile_pid "$VIRTLOGD_PIDFILE" virtlogd || echo '?')
  say virtlogd "started (pid $pid) ($(($(now_ms) - t0)) ms)"
}

start_libvirtd() {
  local log=$1
  remove_stale_pidfile "$LIBVIRTD_PIDFILE" libvirtd
  LIBVIRT_LOG_OUTPUTS="3:file:$log" libvirtd --daemon --config "$LIBVIRTD_CONF" \
    </dev/null >>"$log" 2>&1 || die_with_log libvirtd "$log" "failed to start"
  wait_for "$START_TIMEOUT_S" probe_libvirtd || die_with_log libvirtd "$log" "did not come up"
}

up_libvirtd() {
  local t0 pid log=$LOG_DIR/libvirtd.log
  t0=$(now_ms)
  [[ -r $LIBVIRTD_CONF ]] || die "missing $LIBVIRTD_CONF"
  if pid=$(pidfile_pid "$LIBVIRTD_PIDFILE" libvirtd); then
    if ((restart_libvirtd)); then
      stop_pid libvirtd "$pid" libvirtd
      start_libvirtd "$log"
      # libvirt-dbus reconnects only on its next method call and emits no domain events
      # until then; a fresh one subscribes at once.
      restart_libvirt_dbus=1
      pid=$(pidfile_pid "$LIBVIRTD_PIDFILE" libvirtd || echo '?')
      say libvirtd "restarted because /dev/kvm changed after it started (pid $pid) ($(($(now_ms) - t0)) ms)"
      return
    fi
    wait_for 30 probe_libvirtd || die_with_log libvirtd "$log" "is running (pid $pid) but does not answer"
    say libvirtd "already running (pid $pid) ($(($(now_ms) - t0)) ms)"
    return
  fi
  if probe_libvirtd; then
    say libvirtd "already running (no pidfile at $LIBVIRTD_PIDFILE) ($(($(now_ms) - t0)) ms)"
    return
  fi
  start_libvirtd "$log"
  pid=$(pidfile_pid "$LIBVIRTD_PIDFILE" libvirtd || echo '?')
  say libvirtd "started (pid $pid) ($(($(now_ms) - t0)) ms)"
}

# The bus may have activated libvirt-dbus on its own (org.libvirt.service); record whoever
# owns the name so that "down" can stop it.
record_libvirt_dbus_pid() {
  local pid
  pid=$(libvirt_dbus_owner_pid)
  if pid_alive "$pid" libvirt-dbus; then
    echo "$pid" >"$LIBVIRT_DBUS_PIDFILE"
    echo "$pid"
  else
    echo '?'
  fi
}

up_libvirt_dbus() {
  local t0 pid log=$LOG_DIR/libvirt-dbus.log what=started
  t0=$(now_ms)
  if pid=$(pidfile_pid "$LIBVIRT_DBUS_PIDFILE" libvirt-dbus) || libvirt_dbus_has_owner; then
    if ((restart_libvirt_dbus)); then
      pid=${pid:-$(record_libvirt_dbus_pid)}
      [[ $pid == '?' ]] || stop_pid libvirt-dbus "$pid" libvirt-dbus
      what=restarted
    else
      wait_for 30 probe_libvirt_dbus ||
        die_with_log libvirt-dbus "$log" "is running (pid ${pid:-?}) but org.libvirt does not answer"
      pid=$(record_libvirt_dbus_pid)
      say libvirt-dbus "already running (pid $pid) ($(($(now_ms) - t0)) ms)"
      return
    fi
  fi
  rm -f "$LIBVIRT_DBUS_PIDFILE"
  # setpriv execs in place, so $! is libvirt-dbus itself; --init-groups picks up the
  # libvirt group that grants access to libvirtd's socket.
  setsid setpriv --reuid=libvirtdbus --regid=libvirtdbus --init-groups \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    /usr/sbin/libvirt-dbus --system </dev/null >>"$log" 2>&1 &
  echo $! >"$LIBVIRT_DBUS_PIDFILE"
  wait_for "$START_TIMEOUT_S" probe_libvirt_dbus ||
    die_with_log libvirt-dbus "$log" "did not come up (org.libvirt does not answer on the system bus)"
  pid=$(record_libvirt_dbus_pid)
  say libvirt-dbus "$what (pid $pid) ($(($(now_ms) - t0)) ms)"
}

cmd_up() {
  local t0
  t0=$(now_ms)
  mkdir -p "$LOG_DIR"
  up_kvm
  up_accounts
  up_polkit_actions
  up_dbus
  up_virtlogd
  up_libvirtd
  up_libvirt_dbus
  say total "$(($(now_ms) - t0)) ms; logs in $LOG_DIR"
}

# ---------------------------------------------------------------- down

down_one() {
  local name=$1 pidfile=$2 comm=$3 t0 pid
  t0=$(now_ms)
  if pid=$(pidfile_pid "$pidfile" "$comm"); then
    stop_pid "$name" "$pid" "$comm"
    rm -f "$pidfile"
    say "$name" "stopped (pid $pid) ($(($(now_ms) - t0)) ms)"
  else
    rm -f "$pidfile"
    say "$name" "not running"
  fi
}

cmd_down() {
  # Bus-activated instances have no pidfile of ours yet.
  if [[ ! -e $LIBVIRT_DBUS_PIDFILE ]] && probe_dbus && libvirt_dbus_has_owner; then
    record_libvirt_dbus_pid >/dev/null
  fi
  down_one libvirt-dbus "$LIBVIRT_DBUS_PIDFILE" libvirt-dbus
  down_one libvirtd "$LIBVIRTD_PIDFILE" libvirtd
  down_one virtlogd "$VIRTLOGD_PIDFILE" virtlogd
  down_one dbus-daemon "$DBUS_PIDFILE" dbus-daemon
}

# Stops one service and starts it again (tests of the supervisor riding out a restart).
cmd_stop() {
  case ${1:-} in
    libvirtd) down_one libvirtd "$LIBVIRTD_PIDFILE" libvirtd ;;
    libvirt-dbus)
      if [[ ! -e $LIBVIRT_DBUS_PIDFILE ]] && probe_dbus && libvirt_dbus_has_owner; then record_libvirt_dbus_pid >/dev/null; fi
      down_one libvirt-dbus "$LIBVIRT_DBUS_PIDFILE" libvirt-dbus
      ;;
    dbus) down_one dbus-daemon "$DBUS_PIDFILE" dbus-daemon ;;
    *) die "stop: expected libvirtd, libvirt-dbus or dbus, not '${1:-}'" ;;
  esac
}

# ---------------------------------------------------------------- status

status_one() {
  local name=$1 pidfile=$2 comm=$3 probe=$4 pid
  if pid=$(pidfile_pid "$pidfile" "$comm"); then
    if $probe; then
      say "$name" "running (pid $pid)"
    else
      say "$name" "NOT ANSWERING (pid $pid)"
      return 1
    fi
  elif $probe; then
    say "$name" "running (no pidfile at $pidfile)"
  else
    say "$name" "DOWN"
    return 1
  fi
}

cmd_status() {
  local rc=0
  if kvm_ok; then
    say kvm "ok ($( [[ -e /dev/kvm ]] && stat -c '%U:%G %a' /dev/kvm || echo 'no /dev/kvm'))"
  else
    say kvm "WRONG: /dev/kvm is $(stat -c '%U:%G %a' /dev/kvm), needs root:kvm 0660"
    rc=1
  fi
  status_one dbus-daemon "$DBUS_PIDFILE" dbus-daemon probe_dbus || rc=1
  status_one virtlogd "$VIRTLOGD_PIDFILE" virtlogd probe_virtlogd || rc=1
  status_one libvirtd "$LIBVIRTD_PIDFILE" libvirtd probe_libvirtd || rc=1
  status_one libvirt-dbus "$LIBVIRT_DBUS_PIDFILE" libvirt-dbus probe_libvirt_dbus || rc=1
  return $rc
}

# ---------------------------------------------------------------- main

[[ $EUID -eq 0 ]] || die "must run as root"

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  stop) cmd_stop "${2:-}" ;;
  *)
    echo "usage: $0 up|down|status|stop libvirtd|libvirt-dbus|dbus" >&2
    exit 2
    ;;
esac
