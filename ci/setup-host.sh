#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo need on the host.
# Idempotent; when everything is present it only asks dpkg and returns.
set -euo pipefail

PACKAGES=(
  qemu-system-x86
  qemu-utils
  libvirt-daemon-system
  libvirt-clients
  libvirt-dbus
  dbus
  # The supervisor asks polkit about admin calls from callers other than root.
  polkitd
  busybox-static
  cpio
  zstd
  xz-utils
  libsystemd-dev
  nftables
  conntrack
  iproute2
  python3
  # Stations in tests: a real Spice client under a virtual display, screenshots read back by OCR.
  virt-viewer
  spice-client-gtk
  xvfb
  x11-apps
  imagemagick
  tesseract-ocr
  netcat-openbsd
  socat
  # The station LAN and the VMs' network: DHCP and DNS (the binary only: the supervisor runs it), NTP.
  dnsmasq-base
  chrony
  # The kiosk's station agent: its screens (GTK through gjs), idle time on X11; tests type with xdotool.
  gjs
  gir1.2-gtk-3.0
  xprintidle
  xdotool
  fonts-dejavu-core
  # The admin web page: its self-signed certificate (openssl), and its browser test
  # (Playwright drives Debian's Chromium, headless).
  openssl
  chromium
)

if [[ $EUID -ne 0 ]]; then
  echo "setup-host: must run as root" >&2
  exit 1
fi

# One dpkg-query for all packages keeps the already-installed case well under a second.
# Unknown packages make dpkg-query exit non-zero; they simply count as missing.
declare -A installed=()
while read -r name status; do
  [[ $status == "install ok installed" ]] && installed[$name]=1
done < <(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)

missing=()
for p in "${PACKAGES[@]}"; do
  [[ -n ${installed[$p]:-} ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup-host: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

echo "setup-host: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Packages must not start their own daemons here (chrony would, and keep port 123): the
# supervisor runs the instances it needs. policy-rc.d is the Debian switch for that.
own_policy=
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  own_policy=1
fi
trap 'if [[ -n $own_policy ]]; then rm -f /usr/sbin/policy-rc.d; fi' EXIT
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
echo "setup-host: done"
