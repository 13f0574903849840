#!/usr/bin/env bash
# Enforces the dependency direction of shared/ARCHITECTURE.md:
# - pure crates carry no tokio, reqwest, redb, tiny_http or rppal (not even transitively);
# - only the board crate may depend on rppal;
# - each of our crates uses only the crates of its row in README "Layout";
# - the boxidr product (normal dependencies, default features) holds no box-sim, idr-sim,
#   fault-proxy, demo, bench or axum;
# - one TLS crypto provider (ring): aws-lc-sys must not be in the tree for any target.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
io_crates='^(tokio|reqwest|redb|tiny_http|rppal|hyper|axum) '
for pure in boxidr-model boxidr-config boxidr-normalize boxidr-health; do
    found=$(cargo tree --locked -p "$pure" -e normal --prefix none --target all 2>/dev/null \
        | grep -E "$io_crates" | sort -u || true)
    if [ -n "$found" ]; then
        echo "pure crate $pure depends on I/O crates:"; echo "$found"; fail=1
    fi
done

# Which of our crates each crate may use (README "Layout", last column). A crate not listed
# here (boxidr, the tools) may use any of them.
declare -A allowed=(
    [boxidr-model]=""
    [boxidr-config]="boxidr-model"
    [boxidr-normalize]="boxidr-model boxidr-config"
    [boxidr-health]="boxidr-model"
    [boxidr-store]="boxidr-model"
    [boxidr-board]="boxidr-model"
    [boxidr-boxapi]="boxidr-model boxidr-config boxidr-store"
    [boxidr-forward]="boxidr-model boxidr-config boxidr-store"
    [boxidr-setup]="boxidr-model boxidr-config boxidr-store boxidr-boxapi boxidr-normalize boxidr-forward boxidr-health"
)
for crate in "${!allowed[@]}"; do
    uses=$(cargo tree --locked -p "$crate" -e normal --depth 1 --prefix none --target all 2>/dev/null \
        | tail -n +2 | awk '{print $1}' | grep -E '^boxidr' | sort -u || true)
    for dep in $uses; do
        if ! [[ " ${allowed[$crate]} " == *" $dep "* ]]; then
            echo "$crate may not depend on $dep (README Layout: ${allowed[$crate]:-none of our crates})"; fail=1
        fi
    done
done

# The product binary links no simulator and no axum (the demo and the benchmark live in tools/).
for target in "" "aarch64-unknown-linux-gnu"; do
    found=$(cargo tree --locked -p boxidr -e normal --prefix none ${target:+--target "$target"} 2>/dev/null \
        | grep -E '^(box-sim|idr-sim|fault-proxy|boxidr-demo|boxidr-bench|axum) ' | sort -u || true)
    if [ -n "$found" ]; then
        echo "the boxidr product depends on simulator crates (${target:-host}):"; echo "$found"; fail=1
    fi
done
if ! cargo tree --locked -p boxidr -e normal --prefix none >/dev/null 2>&1; then
    echo "cargo tree -p boxidr failed"; fail=1
fi

# The product itself and what embeds it (demo, bench, system tests) reach rppal through boxidr-board.
rppal_users=$(cargo tree --locked --workspace -i rppal -e normal --prefix none --target all 2>/dev/null \
    | grep -E '^boxidr' | grep -vE '^(boxidr-board|boxidr|boxidr-demo|boxidr-bench|boxidr-system-tests) ' | sort -u || true)
if [ -n "$rppal_users" ]; then
    echo "only boxidr-board may depend on rppal, found:"; echo "$rppal_users"; fail=1
fi

if cargo tree --locked --workspace -i aws-lc-sys --target all >/dev/null 2>&1; then
    echo "aws-lc-sys is in the dependency tree; boxidr uses ring only:"
    cargo tree --locked --workspace -i aws-lc-sys --target all | head -20
    fail=1
fi

if [ "$fail" -ne 0 ]; then exit 1; fi
echo "dependency rules hold"
