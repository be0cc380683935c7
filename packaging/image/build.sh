#!/usr/bin/env bash
# Usage: packaging/image/build.sh [--deb FILE] [--out DIR] [--arch amd64] [--keep-root DIR]
#
# Builds the flashable gateway image: a raw GPT disk with
#   p1  ECLOR-BOOT  FAT32, EFI system partition — systemd-boot, the kernel and initrd, and the
#                   eclor-edge/ folder where the installer drops bundle.yaml (and optionally
#                   network, wifi, ssh_authorized_keys); mounted at /boot/firmware
#   p2  eclor-root  ext4 — a minimal Debian 13 with the eclor-edge .deb of this tree installed,
#                   systemd-timesyncd, persistent size-capped journald, no password logins, SSH
#                   off, the agent enabled behind the first-boot enrolment unit
# and prints one JSON line with its sizes and build time. Needs root, debootstrap, e2fsprogs
# (mke2fs -d), dosfstools, mtools, fdisk (sfdisk), xz-utils. No loop device and no mount is used:
# both filesystems are made from directories, so it builds in a container too.
#   --deb FILE        the package to install (default: build one with scripts/package-deb.sh)
#   --out DIR         where eclor-edge-<version>-<arch>.img(.xz) go (default: ./dist-image)
#   --arch ARCH       amd64 (the default; this machine). arm64 is built on demand on an arm64
#                     machine (see README.md): the package's native modules are per architecture.
#   --keep-root DIR   also leave the root tree there (for inspection)
#   --no-xz           skip the compressed copy
# The Debian mirror is the machine's own (first URIs: line of /etc/apt/sources.list.d/*.sources,
# else the first deb line of /etc/apt/sources.list), never an address written here.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
deb=""
out=$repo/dist-image
arch=$(dpkg --print-architecture)
keep=""
xz=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --deb) deb=${2:?--deb needs a file}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --arch) arch=${2:?--arch needs amd64 or arm64}; shift 2 ;;
    --keep-root) keep=${2:?--keep-root needs a directory}; shift 2 ;;
    --no-xz) xz=no; shift ;;
    *) echo "image: unknown argument '$1' (see the header of $0)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "image: run as root (debootstrap, file ownership in the image)" >&2; exit 2; }
if [ "$arch" != "$(dpkg --print-architecture)" ]; then
  echo "image: --arch $arch differs from this machine ($(dpkg --print-architecture)); the .deb's native" >&2
  echo "modules are built per architecture: build on a $arch machine (packaging/image/README.md)." >&2
  exit 2
fi
for t in debootstrap mke2fs mkfs.vfat mcopy sfdisk; do
  command -v "$t" >/dev/null || { echo "image: $t is missing (apt-get install debootstrap e2fsprogs dosfstools mtools fdisk)" >&2; exit 2; }
done

mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || { echo "image: no Debian mirror in this machine's apt sources" >&2; exit 1; }

start=$(date +%s)
work=$(mktemp -d /var/tmp/eclor-image.XXXXXX)
cleanup() { for m in proc sys dev/pts dev; do umount -l "$work/root/$m" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ -z "$deb" ]; then
  bash "$repo/scripts/package-deb.sh" --out "$work/deb" >&2
  deb=$(ls "$work"/deb/eclor-edge_*.deb)
fi
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")
version=$(dpkg-deb -f "$deb" Version)

root=$work/root
# Debian 13 minimal root. The kernel is Debian's generic one (every amd64 box boots it);
# systemd-boot rather than GRUB: a FAT ESP is all it needs, and the same partition is the one
# installers can write to from any laptop.
pkgs=systemd,systemd-sysv,systemd-timesyncd,systemd-boot-efi,udev,dbus,kmod,iproute2,ca-certificates
pkgs=$pkgs,systemd-resolved,nodejs,linux-image-$arch,initramfs-tools,openssh-server,wpasupplicant,e2fsprogs
echo "image: debootstrap trixie ($arch)" >&2
debootstrap --variant=minbase --arch="$arch" --include="$pkgs" trixie "$root" "$mirror" >&2

# Nothing starts inside the build root.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
cp "$deb" "$root/tmp/eclor-edge.deb"
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
  -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef /tmp/eclor-edge.deb >&2
rm -f "$root/tmp/eclor-edge.deb"

bash "$here/configure-root.sh" "$root"

# Size (goal: raw image ≤ 600 MiB). A headless gateway needs no man pages, no translations but
# French, no documentation but the licences, and no GPU, camera, sound or InfiniBand drivers;
# the dpkg excludes keep it so after upgrades.
cat >"$root/etc/dpkg/dpkg.cfg.d/01-eclor-edge-slim" <<'SLIM'
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/fr/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
SLIM
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name fr ! -name locale.alias -exec rm -rf {} +
find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
for m in "$root"/usr/lib/modules/*; do
  rm -rf "$m/kernel/drivers/gpu" "$m/kernel/drivers/media" "$m/kernel/drivers/infiniband" "$m/kernel/sound"
  chroot "$root" depmod -a "$(basename "$m")"
done

umount -l "$root/proc"
rm -f "$root/usr/sbin/policy-rc.d"
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/debconf/*-old "$root"/var/log/*.log \
  "$root"/tmp/* "$root"/root/.bash_history
# Each box gets its own machine id and SSH host keys on first boot (never the same on 40 boxes).
: >"$root/etc/machine-id"
rm -f "$root"/etc/ssh/ssh_host_*

# The ESP / boot partition: systemd-boot as the removable-media loader, kernel, initrd, entry.
esp=$work/esp
kver=$(basename "$(ls -d "$root"/lib/modules/* | sort -V | tail -n 1)")
efiarch=x64; [ "$arch" = arm64 ] && efiarch=aa64
mkdir -p "$esp/EFI/BOOT" "$esp/loader/entries" "$esp/eclor-edge"
cp "$root/usr/lib/systemd/boot/efi/systemd-boot$efiarch.efi" "$esp/EFI/BOOT/BOOT${efiarch^^}.EFI"
cp "$root/boot/vmlinuz-$kver" "$esp/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$esp/initrd.img"
# The boot loader reads the initrd from the ESP only: no second copy on the root filesystem
# (the kernel hook installed by configure-root.sh keeps the ESP current on kernel upgrades).
rm -f "$root/boot/initrd.img-$kver"
printf 'default eclor.conf\ntimeout 0\n' >"$esp/loader/loader.conf"
cat >"$esp/loader/entries/eclor.conf" <<ENTRY
title   eclor-edge gateway ($version, Debian 13, $kver)
linux   /vmlinuz
initrd  /initrd.img
options root=LABEL=eclor-root ro rootwait console=tty0 console=ttyS0,115200
ENTRY
cp "$here/boot-README.txt" "$esp/eclor-edge/README.txt"

# Sizes: the root filesystem is made with room to spare, shrunk to its minimum, then given
# 32 MiB of free space; it grows to the whole card on first boot (systemd-repart +
# x-systemd.growfs, see configure-root.sh), so the image itself carries no empty space.
esp_mib=96
mkfs.vfat -C -F 32 -n ECLOR-BOOT "$work/esp.img" $((esp_mib * 1024)) >/dev/null
mcopy -s -i "$work/esp.img" "$esp"/* ::/
# Inodes for twice the files it holds (the default ratio would spend ~60 MiB on inode tables).
inodes=$(( $(find "$root" -xdev | wc -l) * 2 + 10000 ))
mke2fs -q -t ext4 -L eclor-root -N "$inodes" -m 1 -J size=16 -d "$root" "$work/root.img" \
  "$(( $(du -sm "$root" | cut -f1) * 3 / 2 + 128 ))M" >&2
e2fsck -fy "$work/root.img" >&2 || [ $? -le 1 ]
resize2fs -M "$work/root.img" >&2
min_blocks=$(dumpe2fs -h "$work/root.img" 2>/dev/null | awk -F: '/^Block count/{gsub(/ /,"",$2); print $2}')
block_size=$(dumpe2fs -h "$work/root.img" 2>/dev/null | awk -F: '/^Block size/{gsub(/ /,"",$2); print $2}')
root_mib=$(( (min_blocks * block_size + 1048575) / 1048576 + 32 ))
resize2fs "$work/root.img" "${root_mib}M" >&2
truncate -s "${root_mib}M" "$work/root.img"
[ -n "$keep" ] && { rm -rf "$keep"; cp -a "$root" "$keep"; }

img=$out/eclor-edge-$version-$arch.img
total_mib=$((1 + esp_mib + root_mib + 1))
rm -f "$img"
truncate -s "${total_mib}M" "$img"
# GPT, discoverable partition types (UAPI group's Discoverable Partitions Specification).
roottype=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709
[ "$arch" = arm64 ] && roottype=B921B045-1DF0-41C3-AF44-4C6F280D3FAE
sfdisk -q "$img" >/dev/null <<PARTS
label: gpt
start=1MiB, size=${esp_mib}MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="ECLOR-BOOT"
start=$((1 + esp_mib))MiB, size=${root_mib}MiB, type=$roottype, name="eclor-root"
PARTS
dd if="$work/esp.img" of="$img" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$work/root.img" of="$img" bs=1M seek=$((1 + esp_mib)) conv=notrunc,sparse status=none

xz_bytes=null
if [ "$xz" = yes ]; then
  xz -T0 -6 -k -f "$img"
  xz_bytes=$(stat -c %s "$img.xz")
fi
end=$(date +%s)
printf '{"image":"%s","raw_bytes":%s,"xz_bytes":%s,"build_s":%s,"kernel":"%s","goal_raw_bytes":629145600,"goal_xz_bytes":209715200}\n' \
  "$img" "$(stat -c %s "$img")" "$xz_bytes" "$((end - start))" "$kver"
