#!/usr/bin/env bash
# Usage: configure-root.sh ROOT — turns a Debian 13 root with eclor-edge installed into the
# gateway image's root: first-boot enrolment, hardening, logs, time, network. Run by build.sh;
# idempotent. Every file it writes is listed in packaging/image/README.md.
set -euo pipefail
root=${1:?usage: configure-root.sh ROOT}
here=$(cd "$(dirname "$0")" && pwd)

echo eclor-unprovisioned >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"

# Filesystems by label. x-systemd.growfs grows the root filesystem once systemd-repart has grown
# its partition to the whole card (repart.d below); nofail on the boot partition: a box whose FAT
# partition is damaged still boots and keeps polling.
cat >"$root/etc/fstab" <<'FSTAB'
LABEL=eclor-root  /               ext4  defaults,noatime,x-systemd.growfs  0 1
LABEL=ECLOR-BOOT  /boot/firmware  vfat  umask=0077,nofail,x-systemd.device-timeout=10s  0 2
FSTAB
mkdir -p "$root/boot/firmware" "$root/etc/repart.d"
cat >"$root/etc/repart.d/50-root.conf" <<'REPART'
# Grow the root partition to the end of the card on first boot (systemd-repart(8)).
[Partition]
Type=root
GrowFileSystem=yes
REPART

# Logs: persistent (they survive the power cuts a street cabinet sees), capped so a chatty bus
# can never fill the card.
mkdir -p "$root/var/log/journal" "$root/etc/systemd/journald.conf.d"
cat >"$root/etc/systemd/journald.conf.d/eclor-edge.conf" <<'JOURNAL'
[Journal]
Storage=persistent
SystemMaxUse=64M
SystemKeepFree=256M
RuntimeMaxUse=16M
MaxRetentionSec=3month
ForwardToConsole=no
JOURNAL

# No password logins at all: root is locked, SSH is off and, when the installer turns it on
# with a key (ssh_authorized_keys on the boot partition), accepts keys only.
chroot "$root" passwd -l root >/dev/null
mkdir -p "$root/etc/ssh/sshd_config.d"
cat >"$root/etc/ssh/sshd_config.d/eclor-edge.conf" <<'SSHD'
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
SSHD
chroot "$root" systemctl disable ssh.service ssh.socket >/dev/null 2>&1 || true

# Network: DHCP on every wired interface; the boot partition's `network` file (a
# systemd.network(5) file) replaces this default, `wifi` (a wpa_supplicant.conf) adds wlan0.
mkdir -p "$root/etc/systemd/network"
cat >"$root/etc/systemd/network/80-eclor-wired.network" <<'NET'
[Match]
Name=en* eth* usb*

[Network]
DHCP=yes
NET
chroot "$root" systemctl enable systemd-networkd.service systemd-resolved.service \
  systemd-timesyncd.service >/dev/null 2>&1
ln -sf ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"

# The agent starts once the box is enrolled: first boot enrols (or waits for a bundle) and then
# enables it; from then on it starts like any service.
install -m 0755 "$here/firstboot.sh" "$root/usr/lib/eclor-edge/image-firstboot.sh"
install -m 0644 "$here/eclor-edge-firstboot.service" "$here/eclor-edge-firstboot.path" \
  "$root/usr/lib/systemd/system/"
chroot "$root" systemctl disable eclor-edge.service >/dev/null 2>&1 || true
chroot "$root" systemctl enable eclor-edge-firstboot.service eclor-edge-firstboot.path >/dev/null

# Kernel upgrades: the ESP (boot partition) holds the kernel and initrd the loader boots; keep
# it current, and keep no second copy of the initrd on the root filesystem.
for d in /etc/kernel/postinst.d /etc/initramfs/post-update.d; do
  mkdir -p "$root$d"
  cat >"$root$d/zz-eclor-edge-esp" <<'HOOK'
#!/bin/sh
# eclor-edge image: copy the newest kernel and initrd to the boot partition (systemd-boot entry
# loader/entries/eclor.conf boots /vmlinuz and /initrd.img from it).
set -e
v=${1:-$(ls /boot/vmlinuz-* | sed 's|/boot/vmlinuz-||' | sort -V | tail -n 1)}
[ -d /boot/firmware/loader ] || exit 0
[ -f "/boot/vmlinuz-$v" ] && cp "/boot/vmlinuz-$v" /boot/firmware/vmlinuz.new && mv /boot/firmware/vmlinuz.new /boot/firmware/vmlinuz
if [ -f "/boot/initrd.img-$v" ]; then
  cp "/boot/initrd.img-$v" /boot/firmware/initrd.img.new && mv /boot/firmware/initrd.img.new /boot/firmware/initrd.img
  rm -f "/boot/initrd.img-$v"
fi
sync
HOOK
  chmod 0755 "$root$d/zz-eclor-edge-esp"
done
