#!/usr/bin/env bash
# Builds the cargo-fuzz targets of tests/fuzz and runs each for a bounded time (issue 13,
# "Fuzzing"). Installs what it needs first, idempotently: the nightly toolchain (libFuzzer's
# instrumentation needs it) and cargo-fuzz from crates.io. Seeds come from tests/fixtures/box
# (tests/fuzz/seed.sh); the corpus grows in target/fuzz/corpus/<target> and survives runs.
#
#   bash tools/fuzz.sh                    every target, 15 s each
#   bash tools/fuzz.sh --seconds 60       longer
#   bash tools/fuzz.sh --only created_at,setup_http
#   bash tools/fuzz.sh --build-only       build and stop (CI's cost of the fuzz build)
#   bash tools/fuzz.sh --seed 1 --runs 3000   reproducible: the same inputs every time
#                                         (CI's smoke run, so a red CI replays the same way)
#
# A crash stops the script with libFuzzer's report; the input is kept in
# target/fuzz/artifacts/<target>/ and replays with
#   cargo +nightly fuzz run <target> --fuzz-dir tests/fuzz --target-dir target/fuzz/build <file>
# Every crash becomes a regression test in the crate that owns the code (README, "Fuzzing").
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=15
seed=0   # libFuzzer: 0 = a new random seed each run
runs=-1  # libFuzzer: -1 = no limit but the time
only=""
build_only=0
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=${2:?--seconds N}; shift 2 ;;
        --only) only=${2:?--only a,b}; shift 2 ;;
        --seed) seed=${2:?--seed N}; shift 2 ;;
        --runs) runs=${2:?--runs N}; shift 2 ;;
        --build-only) build_only=1; shift ;;
        *) echo "usage: tools/fuzz.sh [--seconds N] [--seed N] [--runs N] [--only t1,t2] [--build-only]" >&2; exit 2 ;;
    esac
done

fuzz_dir=tests/fuzz
work="$PWD/target/fuzz"
# One target directory for the repository: the fuzz build lives under target/fuzz/build.
build_dir=$work/build
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# libFuzzer's instrumentation flags are unstable: nightly when it is there (or can be
# installed); otherwise the machine's stable toolchain with RUSTC_BOOTSTRAP=1, said out loud.
toolchain=+nightly
if ! rustup toolchain list | grep -q '^nightly' \
    && ! rustup toolchain install nightly --profile minimal >/dev/null 2>&1; then
    echo "fuzz: no nightly toolchain and none can be installed; using stable with RUSTC_BOOTSTRAP=1"
    toolchain=+stable
    export RUSTC_BOOTSTRAP=1
fi
if ! cargo "$toolchain" fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# Without ASan: the firmware denies unsafe code, so the findings are panics, overflows
# (debug assertions are on) and broken invariants, and a plain build is faster to build and run.
build_flags=(--fuzz-dir "$fuzz_dir" --target-dir "$build_dir" --sanitizer none --debug-assertions)

mapfile -t targets < <(cargo "$toolchain" fuzz list --fuzz-dir "$fuzz_dir")
if [ -n "$only" ]; then
    IFS=, read -r -a targets <<<"$only"
fi

started=$(date +%s)
# `cargo fuzz build` builds one target or all of them.
if [ -z "$only" ]; then
    cargo "$toolchain" fuzz build "${build_flags[@]}"
else
    for t in "${targets[@]}"; do cargo "$toolchain" fuzz build "${build_flags[@]}" "$t"; done
fi
build_s=$(( $(date +%s) - started ))
printf 'fuzz build: %ss\n' "$build_s"
if [ "$build_only" = 1 ]; then
    exit 0
fi

bash "$fuzz_dir/seed.sh" "$work/corpus"
printf '\n%-18s %12s %8s %10s %s\n' target executions seconds exec/s corpus
failed=0
for t in "${targets[@]}"; do
    mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
    log="$work/$t.log"
    t0=$(date +%s)
    if ! cargo "$toolchain" fuzz run "${build_flags[@]}" "$t" "$work/corpus/$t" -- \
        -max_total_time="$seconds" -seed="$seed" -runs="$runs" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/$t/" >"$log" 2>&1; then
        echo "$t: CRASH (log: $log)"
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -n 20 || true
        failed=1
    fi
    elapsed=$(( $(date +%s) - t0 ))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    corpus=$(find "$work/corpus/$t" -type f | wc -l)
    printf '%-18s %12s %8s %10s %s\n' "$t" "${runs:-?}" "$elapsed" "${speed:-?}" "$corpus"
done
if [ "$failed" -ne 0 ]; then
    echo "fuzzing found a crash: make its input a regression test in the owning crate and fix it"
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no crash"
