#!/usr/bin/env bash
# Runs every check and test of boxidr, exactly as CI does (`.ci/run` calls this file).
# On a fresh Debian 12 machine with rustup's stable toolchain it first installs what it
# needs (cross compiler, qemu-user, the aarch64 Rust target), idempotently and quietly.
#
#   bash tools/test-all.sh            everything
#   BOXIDR_SKIP_CROSS=1 bash tools/test-all.sh   host checks only (quick local loop)
#   BOXIDR_SKIP_PACKAGE=1 bash tools/test-all.sh  everything but the package check
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_INCREMENTAL=0
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE=1
TARGET=aarch64-unknown-linux-gnu
started=$(date +%s)

step() { printf '\n==> %s (%ss)\n' "$*" "$(( $(date +%s) - started ))"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

step "Installing build prerequisites"
need_apt=()
command -v aarch64-linux-gnu-gcc >/dev/null || need_apt+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64-static >/dev/null || need_apt+=(qemu-user-static)
command -v update-binfmts >/dev/null || need_apt+=(binfmt-support)
# The setup page is tested in a real headless browser (firmware/boxidr/tests/browser.rs).
command -v chromium >/dev/null || need_apt+=(chromium fonts-liberation)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
# The outbound-proxy tests start a real proxy on loopback (firmware/boxapi/tests/proxy.rs).
command -v tinyproxy >/dev/null || need_apt+=(tinyproxy)
# The benchmark counts the product's fsyncs with strace (tools/bench).
command -v strace >/dev/null || need_apt+=(strace)
# The package check (image/package-check): lintian and an arm64 root file system.
command -v lintian >/dev/null || need_apt+=(lintian)
command -v mmdebstrap >/dev/null || need_apt+=(mmdebstrap)
command -v arch-test >/dev/null || need_apt+=(arch-test)
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "apt: installing ${need_apt[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${need_apt[@]}" >/dev/null
fi
rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"
for component in rustfmt clippy; do
    rustup component list --installed | grep -q "^$component" || rustup component add "$component"
done
# Tests that spawn an aarch64 binary go through binfmt_misc (shared/EMBEDDED.md §1).
if [ -d /proc/sys/fs/binfmt_misc ] && [ "$(id -u)" -eq 0 ]; then
    mountpoint -q /proc/sys/fs/binfmt_misc \
        || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
    update-binfmts --enable qemu-aarch64 2>/dev/null || true
fi

step "Formatting"
cargo fmt --all -- --check

step "Dependency rules"
bash tools/check-deps.sh

step "Clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Tests (host)"
# The scenario tests of tools/proof.sh run in the next step, with their figures; skip them here
# so they do not run twice.
# shellcheck disable=SC2046 # one word per argument, by design
cargo test --workspace --locked -- --exact $(bash tools/proof.sh --skip-args)

# RELIABILITY.md §6: each scenario's test with its figure (loss, duplicates, recovery time,
# catch-up rate), a table and one JSON line. The long runs are `bash tools/proof.sh`.
step "Proof of zero loss (tools/proof.sh --quick)"
bash tools/proof.sh --quick

# The end-to-end benchmark's short run, as a smoke test: it must lose nothing. Its speeds are
# never checked (a debug build on a shared machine); the full run is a documented command.
step "Benchmark smoke run (boxidr-bench --quick)"
bench_last=$(cargo run --locked -q -p boxidr-bench -- --quick --json --boxidr target/debug/boxidr | tail -n 1)
echo "$bench_last"
case "$bench_last" in
    *'"lost":0,'* | *'"lost":0}'*) ;;
    *) echo "boxidr-bench --quick: events were lost"; exit 1 ;;
esac

# Every cargo-fuzz target for a few seconds (tests/fuzz; nightly + cargo-fuzz are installed by
# the script). Its cold build costs about 10 CPU-minutes (README "Fuzzing");
# BOXIDR_SKIP_FUZZ=1 leaves it out. Longer runs: bash tools/fuzz.sh --seconds 600.
if [ "${BOXIDR_SKIP_FUZZ:-0}" = 1 ]; then
    step "Skipping the fuzz smoke run (BOXIDR_SKIP_FUZZ=1)"
else
    step "Fuzz smoke run (tools/fuzz.sh)"
    # A fixed seed and a fixed number of inputs per target: the same inputs on every CI run, so a
    # red run replays exactly and a green one is not luck (the time limit is only a safety net).
    bash tools/fuzz.sh --seed 1 --runs "${BOXIDR_FUZZ_RUNS:-3000}" --seconds "${BOXIDR_FUZZ_SECONDS:-60}"
fi

if [ "${BOXIDR_SKIP_CROSS:-0}" = 1 ]; then
    step "Skipping the aarch64 build and tests (BOXIDR_SKIP_CROSS=1)"
    exit 0
fi

step "Product build for $TARGET (profile product: what the package ships)"
cargo build --profile product --locked --target "$TARGET" -p boxidr

step "Firmware unit tests for $TARGET under qemu-user"
firmware_crates=()
for manifest in firmware/*/Cargo.toml board/Cargo.toml; do
    firmware_crates+=(-p "$(sed -n 's/^name = "\(.*\)"/\1/p' "$manifest" | head -n1)")
done
# The browser test drives the host's Chromium; it ran in the host step above.
BOXIDR_SKIP_BROWSER=1 cargo test --locked --target "$TARGET" "${firmware_crates[@]}"

# The arm64 package in an arm64 Debian root file system under qemu-user: install, unit
# verification, upgrade, remove, purge (image/package-check; it prints the packaged binary's
# stripped size). The full image build and emulated boot test are separate commands
# (image/build, image/boot-test): see README "Deploy" for why and their timings.
if [ "${BOXIDR_SKIP_PACKAGE:-0}" = 1 ]; then
    step "Skipping the package check (BOXIDR_SKIP_PACKAGE=1)"
else
    step "Package (arm64 .deb): build, lintian, install in an arm64 root file system"
    as_root bash image/package-check
fi

step "Done"
binary="target/$TARGET/product/boxidr"
size=$(stat -c %s "$binary")
printf 'aarch64 boxidr binary (stripped): %s bytes (%s KiB)\n' "$size" "$(( size / 1024 ))"
printf 'total time: %ss\n' "$(( $(date +%s) - started ))"
