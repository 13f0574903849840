#!/usr/bin/env bash
# Builds the arm64 Debian package of boxidr: the cross-compiled release binary WITHOUT the
# simulators (no `demo` feature: no box-sim, idr-sim or axum in it), the systemd unit,
# sysusers.d, tmpfiles.d, the GPIO udev rule and the docs. Then runs lintian.
#
#   bash image/deb/build.sh            -> target/deb/boxidr_<version>_arm64.deb
#
# Environment: BOXIDR_DEB_VERSION overrides the package version (default: the workspace
# version), e.g. to build a "newer" package for an upgrade test. BOXIDR_SKIP_LINTIAN=1 skips
# lintian. Needs: cargo + the aarch64-unknown-linux-gnu target, gcc-aarch64-linux-gnu,
# dpkg-deb; lintian if not skipped (tools/test-all.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/../.."

TARGET=aarch64-unknown-linux-gnu
here=image/deb
out=target/deb
started=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# The product binary: hardware backends only. The explicit flags stay even where `hardware`
# becomes the default, so the package never picks up a default that links the simulators.
features=(--no-default-features --features hardware)
# The `product` profile (Cargo.toml): release with fat LTO, one codegen unit and opt-level "s",
# for a smaller binary (issue 12: ≤ 8 MiB stripped).
echo "==> cargo build --profile product --target $TARGET -p boxidr ${features[*]}"
t=$(date +%s.%N)
cargo build --profile product --locked --target "$TARGET" -p boxidr "${features[@]}"
build_secs=$(elapsed "$t")

echo "==> dependency tree of the packaged binary: no simulators, no axum"
tree=$(cargo tree --locked -p boxidr "${features[@]}" -e normal --target "$TARGET" --prefix none)
forbidden=$(printf '%s\n' "$tree" | awk '{print $1}' | grep -Ex 'box-sim|idr-sim|axum|axum-core' | sort -u || true)
if [ -n "$forbidden" ]; then
    echo "error: the packaged binary would link: $forbidden" >&2
    exit 1
fi
echo "ok: $(printf '%s\n' "$tree" | awk '{print $1}' | sort -u | wc -l) crates, none of box-sim, idr-sim, axum"

version=${BOXIDR_DEB_VERSION:-$(cargo metadata --locked --no-deps --format-version 1 \
    | sed -n 's/.*"name":"boxidr","version":"\([^"]*\)".*/\1/p')}
[ -n "$version" ] || { echo "error: no version for boxidr" >&2; exit 1; }
binary="target/$TARGET/product/boxidr"

# The highest glibc symbol version the binary needs (dpkg-shlibdeps cannot run for a foreign
# architecture without its libraries installed; the binary needs only libc and libgcc_s).
glibc=$(aarch64-linux-gnu-objdump -T "$binary" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' \
    | sort -uV | tail -n1)
for lib in $(aarch64-linux-gnu-objdump -p "$binary" | awk '/NEEDED/ {print $2}'); do
    case "$lib" in
        libc.so.6 | libm.so.6 | libdl.so.2 | libpthread.so.0 | ld-linux-aarch64.so.1) ;; # libc6
        libgcc_s.so.1) ;;                                                                  # libgcc-s1
        *) echo "error: unexpected shared library $lib (add it to Depends:)" >&2; exit 1 ;;
    esac
done

root="$out/boxidr_${version}_arm64"
rm -rf "$root"
install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/usr/lib/systemd/system" \
    "$root/usr/lib/sysusers.d" "$root/usr/lib/tmpfiles.d" "$root/usr/lib/udev/rules.d" \
    "$root/usr/share/doc/boxidr" "$root/usr/share/man/man1"
install -m 0755 "$binary" "$root/usr/bin/boxidr"
install -m 0644 image/systemd/boxidr.service "$root/usr/lib/systemd/system/boxidr.service"
install -m 0644 "$here/sysusers.conf" "$root/usr/lib/sysusers.d/boxidr.conf"
install -m 0644 "$here/tmpfiles.conf" "$root/usr/lib/tmpfiles.d/boxidr.conf"
install -m 0644 "$here/60-boxidr-gpio.rules" "$root/usr/lib/udev/rules.d/60-boxidr-gpio.rules"
install -m 0644 README.md "$root/usr/share/doc/boxidr/README.md"
gzip -9n < "$here/boxidr.1" > "$root/usr/share/man/man1/boxidr.1.gz"
chmod 0644 "$root/usr/share/man/man1/boxidr.1.gz"
install -m 0644 "$here/copyright" "$root/usr/share/doc/boxidr/copyright"
# A native package's changelog (Debian policy 12.7), dated by the last commit so that two
# builds of one commit are identical.
when=$(git log -1 --format=%cD 2>/dev/null || date -R)
printf 'boxidr (%s) bookworm; urgency=medium\n\n  * Built from commit %s.\n\n -- %s  %s\n' \
    "$version" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    "boxidr engineers <boxidr@example.invalid>" "$when" \
    | gzip -9n > "$root/usr/share/doc/boxidr/changelog.gz"
chmod 0644 "$root/usr/share/doc/boxidr/changelog.gz"
install -m 0755 "$here/postinst" "$here/prerm" "$here/postrm" "$root/DEBIAN/"

installed_kib=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<EOF
Package: boxidr
Version: $version
Architecture: arm64
Maintainer: boxidr engineers <boxidr@example.invalid>
Installed-Size: $installed_kib
Depends: libc6 (>= $glibc), libgcc-s1 (>= 4.2), ca-certificates, systemd (>= 252), init-system-helpers (>= 1.54)
Section: net
Priority: optional
Homepage: https://example.invalid/boxidr
Description: Box enterprise events and users into Rapid7 InsightIDR
 boxidr is the firmware of a small collector appliance. It pulls Box
 enterprise events and users through the Box API, keeps them in a local
 queue that survives crashes and power cuts, and delivers them to Rapid7
 InsightIDR: logins as Universal Event Format ingress events to a Collector,
 every event to Log Search.
 .
 This package holds the service (boxidr.service, user boxidr), its local
 HTTPS setup page on port 443 and the status LED drivers (Raspberry Pi kernel
 and GPIO character device).
EOF
(cd "$root" && find usr -type f -print0 | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

deb="$out/boxidr_${version}_arm64.deb"
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s) \
    dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "==> built $deb"

if [ "${BOXIDR_SKIP_LINTIAN:-0}" != 1 ]; then
    echo "==> lintian (accepted findings and their reasons: image/README.md)"
    # Overrides of findings we keep on purpose live in the README, not in the package:
    # print everything, fail only on errors not listed in $here/lintian-accepted.
    findings=$(lintian --tag-display-limit 0 --suppress-tags-from-file "$here/lintian-accepted" "$deb" 2>&1 || true)
    printf '%s\n' "${findings:-lintian: no findings}"
    if printf '%s\n' "$findings" | grep -q '^E: '; then
        echo "error: lintian errors (fix them, or accept them with a reason)" >&2
        exit 1
    fi
    echo "accepted (suppressed) tags: $(grep -v '^#' "$here/lintian-accepted" | tr '\n' ' ')"
fi

bin_size=$(stat -c %s "$root/usr/bin/boxidr")
printf 'packaged aarch64 boxidr binary (stripped): %s bytes (%s MiB)\n' "$bin_size" \
    "$(awk -v b="$bin_size" 'BEGIN { printf "%.1f", b / 1048576 }')"
printf 'package %s: %s bytes, installed size %s KiB\n' "$deb" "$(stat -c %s "$deb")" "$installed_kib"
printf 'cargo build: %ss; total: %ss\n' "$build_secs" "$(elapsed "$started")"
