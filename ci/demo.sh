#!/usr/bin/env bash
# make demo: the supervisor keeping a pool of 2 disposable VMs of the test
# golden image, on this machine, until Ctrl-C; then everything is removed.
# TABULA_DEMO_SECONDS=N stops it by itself after N seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${TABULA_BUILD:-$PWD/build}
DEMO=$BUILD/demo
GOLDEN=$BUILD/test-golden
POOL=demo
# The demo station LAN: the server side on a bridge, one station in a namespace.
LAN=tabula-demo-lan
STATION=tabula-st1

if pgrep -f 'supervisor/dist/main.js' >/dev/null; then
  echo "demo: a Tabula supervisor is already running (pgrep -af supervisor/dist/main.js); stop it first" >&2
  exit 1
fi

rm -rf "$DEMO"
mkdir -p "$DEMO"
chmod 0711 "$DEMO"
# QEMU runs as another user: give it copies it may read, leaving the build alone.
cp "$GOLDEN"/{golden.qcow2,vmlinuz,initrd.img} "$DEMO/"

lan_up() {
  ip link add "$LAN" type bridge 2>/dev/null || true
  ip addr replace 169.254.24.1/24 dev "$LAN"
  ip link set "$LAN" up
  ip netns add "$STATION" 2>/dev/null || true
  if ! ip -n "$STATION" link show eth0 >/dev/null 2>&1; then
    ip link add tabula-st1-veth type veth peer name eth0 netns "$STATION"
    ip link set tabula-st1-veth master "$LAN" up
    ip -n "$STATION" addr add 169.254.24.10/24 dev eth0
    ip -n "$STATION" link set eth0 up
    ip -n "$STATION" link set lo up
  fi
}

lan_down() {
  for pid in $(ip netns pids "$STATION" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
  ip netns del "$STATION" 2>/dev/null || true
  ip link del tabula-st1-veth 2>/dev/null || true
  ip link del "$LAN" 2>/dev/null || true
  nft delete table inet tabula 2>/dev/null || true
  nft delete table inet tabula_admin 2>/dev/null || true
  ip link del tabula-console 2>/dev/null || true
}

write_config() { # $1 = pool size (0: no pool)
  {
    echo '[supervisor]'
    echo "state_dir = \"$DEMO/state\""
    echo 'hypervisor = "qemu"'
    echo
    echo '[stations]'
    echo "interface = \"$LAN\""
    echo
    # The admin page, on this machine only: the first visit sets its password.
    echo '[admin]'
    echo 'listen = ["127.0.0.1"]'
    echo 'https_port = 8443'
    echo 'http_loopback_port = 8080'
    if [[ $1 -gt 0 ]]; then
      cat <<TOML

[[pool]]
name = "$POOL"
golden_image = "$DEMO/golden.qcow2"
size = $1
vcpus = 1
memory = 256
video = "vga"
spice_port_base = 5920
console_tickets = false
kernel = "$DEMO/vmlinuz"
initrd = "$DEMO/initrd.img"
cmdline = "$(cat "$GOLDEN/cmdline")"
TOML
    fi
  } >"$DEMO/supervisor.toml"
}
lan_up
write_config 2

node supervisor/dist/main.js --config "$DEMO/supervisor.toml" >"$DEMO/supervisor.log" 2>&1 &
SUP=$!

cleanup() {
  trap - INT TERM EXIT
  echo
  echo "demo: removing the pool (the supervisor destroys its VMs and deletes their disks)..."
  if kill -0 "$SUP" 2>/dev/null; then
    write_config 0
    kill -HUP "$SUP"
    for _ in $(seq 60); do
      virsh -c qemu:///system list --all --name | grep -q "^tabula-$POOL-" || break
      sleep 0.5
    done
    kill -TERM "$SUP" 2>/dev/null || true
    wait "$SUP" 2>/dev/null || true
  fi
  # Whatever the supervisor could not remove (it died, or was too slow):
  for d in $(virsh -c qemu:///system list --all --name | grep "^tabula-$POOL-" || true); do
    virsh -c qemu:///system destroy "$d" >/dev/null 2>&1 || true
    virsh -c qemu:///system undefine "$d" >/dev/null 2>&1 || true
  done
  rm -rf "$DEMO/state"
  lan_down
  echo "demo: done; the supervisor's log is in $DEMO/supervisor.log"
}
trap cleanup INT TERM EXIT

cat <<MSG
Tabula demo: a pool of 2 disposable VMs of the test golden image (software emulation).

  Pool status:      supervisor/bin/tabulactl status         (add --json for scripts)
  Recycle a VM:     supervisor/bin/tabulactl recycle tabula-$POOL-0
  Drain, resize:    supervisor/bin/tabulactl drain $POOL; supervisor/bin/tabulactl resize $POOL 3
  Every command:    supervisor/bin/tabulactl --help
  libvirt's view:   virsh -c qemu:///system list --all
  A guest console:  cat $DEMO/state/pools/$POOL/tabula-$POOL-0.console.log
  Supervisor log:   $DEMO/supervisor.log   (shown below)
  D-Bus API:        busctl --system tree org.tabula.Supervisor1
  Admin page:       http://127.0.0.1:8080/  (or https://127.0.0.1:8443/; set its password on the first visit)

A station LAN: the server at 169.254.24.1 (signal port 5905, Spice 5906) on bridge $LAN,
and a station in namespace $STATION at 169.254.24.10. Try a station by hand, as the
original kiosks did (needs an X display for remote-viewer, e.g. xvfb-run or your own):

  ip netns exec $STATION nc 169.254.24.1 5905        # prints RULE ADDED, CONNECT NOW
  ip netns exec $STATION remote-viewer spice://169.254.24.1:5906   # within 10 s of that line
  nft list table inet tabula                          # the forward, for 169.254.24.10 only

Ctrl-C stops the demo and removes its VMs and disks.

MSG

tail -n +1 -f "$DEMO/supervisor.log" --pid "$SUP" &
TAIL=$!
if [[ -n "${TABULA_DEMO_SECONDS:-}" ]]; then
  sleep "$TABULA_DEMO_SECONDS"
  supervisor/bin/tabulactl status || true
else
  wait "$SUP" || true
fi
kill "$TAIL" 2>/dev/null || true
