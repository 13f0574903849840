#!/usr/bin/env bash
# Stage 1 of image/build: the Debian bookworm arm64 base root file system, as a directory cached
# under target/image/cache/ (keyed by a hash of its inputs, so a rebuild that
# changes only the boxidr package skips it). Downloaded .debs are cached there too.
#
#   bash image/rootfs.sh      -> prints the path of target/image/cache/base-<hash>/
#
# Needs root (mmdebstrap root mode), mmdebstrap, and binfmt_misc with qemu-aarch64 registered
# (image/build sets that up). Nothing here is boxidr-specific: the package and the appliance's
# settings are added by image/build on a copy.
set -euo pipefail
cd "$(dirname "$0")/.."

# The appliance's packages on top of minbase. No ssh server, no password tools beyond minbase.
packages=(
    systemd systemd-sysv udev dbus kmod
    linux-image-arm64 initramfs-tools raspi-firmware
    systemd-timesyncd systemd-resolved avahi-daemon
    ca-certificates iproute2 netbase
    e2fsprogs fdisk
)
mirror=http://deb.debian.org/debian
security=http://deb.debian.org/debian-security
components="main non-free-firmware"
# Documentation, manual pages, locales and kernel drivers an appliance cannot use (sound,
# video capture, Wi-Fi, InfiniBand, ISDN, discrete GPUs) are not unpacked: smaller image,
# faster build. Copyright files stay.
dpkgopts=(
    'path-exclude=/usr/share/man/*'
    'path-exclude=/usr/share/info/*'
    'path-exclude=/usr/share/locale/*'
    'path-include=/usr/share/locale/locale.alias'
    'path-exclude=/usr/share/doc/*'
    'path-include=/usr/share/doc/*/copyright'
    'path-exclude=/usr/lib/modules/*/kernel/sound/*'
    'path-exclude=/usr/lib/modules/*/kernel/drivers/media/*'
    'path-exclude=/usr/lib/modules/*/kernel/drivers/net/wireless/*'
    'path-exclude=/usr/lib/modules/*/kernel/drivers/infiniband/*'
    'path-exclude=/usr/lib/modules/*/kernel/drivers/isdn/*'
    'path-exclude=/usr/lib/modules/*/kernel/drivers/gpu/drm/amd/*'
    'path-exclude=/usr/lib/modules/*/kernel/drivers/gpu/drm/nouveau/*'
    'path-exclude=/usr/lib/modules/*/kernel/drivers/gpu/drm/radeon/*'
)

cache=target/image/cache
mkdir -p "$cache/debs"
# The cache key: everything that decides the result (a change to these lines, the package
# list, the hooks' files or the suites makes a new base).
key=$( { printf '%s\n' "${packages[@]}" "${dpkgopts[@]}" "$mirror" "$security" "$components" \
    "$(sed -n '/^args=/,/^)$/p' "$0")"; cat image/rootfs/initramfs-modules.conf \
    image/rootfs/initramfs-hook; } | sha256sum | cut -c1-16)
base="$cache/base-$key"
# --path: only print where the base for these inputs lives (built or not).
if [ "${1:-}" = --path ]; then echo "$base"; exit 0; fi
if [ -d "$base" ]; then
    echo "$base"
    exit 0
fi

args=(--mode=root --architectures=arm64 --variant=minbase --components="$components"
    --include="$(IFS=,; echo "${packages[*]}")")
for o in "${dpkgopts[@]}"; do args+=(--dpkgopt="$o"); done
args+=(
    # A short initramfs module list (see image/rootfs/initramfs-hook): without it mkinitramfs
    # under qemu-user takes most of an hour.
    --setup-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/etc/initramfs-tools/hooks"'
    --setup-hook='copy-in image/rootfs/initramfs-modules.conf /etc/initramfs-tools/conf.d/'
    --setup-hook='mv "$1/etc/initramfs-tools/conf.d/initramfs-modules.conf" "$1/etc/initramfs-tools/conf.d/boxidr.conf"'
    --setup-hook='copy-in image/rootfs/initramfs-hook /etc/initramfs-tools/hooks/'
    --setup-hook='mv "$1/etc/initramfs-tools/hooks/initramfs-hook" "$1/etc/initramfs-tools/hooks/boxidr-modules"'
    # Download cache: packages already fetched are not fetched again.
    --skip=essential/unlink --skip=download/empty
    --setup-hook='mkdir -p "$1/var/cache/apt/archives"'
    --setup-hook="sync-in $cache/debs /var/cache/apt/archives/"
    --customize-hook="sync-out /var/cache/apt/archives $cache/debs"
    --customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb'
)
echo "==> mmdebstrap bookworm arm64 -> $base" >&2
started=$(date +%s)
rm -rf "$base.tmp"
mmdebstrap "${args[@]}" bookworm "$base.tmp" \
    "deb $mirror bookworm $components" \
    "deb $mirror bookworm-updates $components" \
    "deb $security bookworm-security $components" >&2
mv "$base.tmp" "$base"
echo "mmdebstrap: $(( $(date +%s) - started ))s, $(du -sh "$base" | cut -f1)" >&2
echo "$base"
