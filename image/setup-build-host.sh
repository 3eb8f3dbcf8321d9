#!/usr/bin/env bash
# Installs what the image builds and boot tests need on the build host.
# Idempotent; when everything is present it only asks dpkg.
set -euo pipefail
PACKAGES=(
	mmdebstrap squashfs-tools mtools dosfstools fdisk e2fsprogs
	# The kiosk's boot loader, and the server's (BIOS and UEFI, hybrid ISO).
	systemd-boot-efi grub-efi-amd64-bin grub-pc-bin xorriso
	# Boot tests: QEMU with UEFI firmware, screenshots read by OCR.
	qemu-system-x86 ovmf socat imagemagick tesseract-ocr
	# The server's admin page, fetched over HTTPS through QEMU's user network.
	curl openssl
)
missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0
echo "setup-build-host: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
