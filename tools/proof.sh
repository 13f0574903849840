#!/usr/bin/env bash
# Proof of zero loss: runs the test behind each scenario of RELIABILITY.md §6 (issue 13) and
# prints a table (scenario, test, result, figure) and, as its last line, one JSON object keyed
# by scenario number: {"1": {"pass": true, "figure": [...]}, ...}.
#
#   bash tools/proof.sh --quick     the fast samples (what tools/test-all.sh runs)
#   bash tools/proof.sh             also the long runs (500 kills, a compressed 24 h outage of
#                                   500,000 events, the 10-minute soak sample)
#   bash tools/proof.sh --list      the scenario → test map, nothing run
#   bash tools/proof.sh --skip-args `--skip NAME` for every quick test, so `cargo test
#                                   --workspace` need not run them a second time
#
# Figures are never written here: each test prints them itself as one line
# `PROOF {json}` on stdout (run with --nocapture); the JSON carries "figure" (words) and the
# numbers (loss, duplicates, recovery time, catch-up rate). A test that cannot run here (no
# root for a tmpfs mount, for example) passes with `PROOF {"skipped": "why"}`: the table says
# SKIP and why, and "pass" is null for that scenario; so does a test file another helper has
# not put in the tree yet (ABSENT). A test that matched nothing fails.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=quick
case "${1:-}" in
    --quick) mode=quick ;;
    "" | --full) mode=full ;;
    --list) mode=list ;;
    --skip-args) mode=skip ;;
    *) echo "usage: bash tools/proof.sh [--quick|--list|--skip-args]" >&2; exit 2 ;;
esac

# scenario | group | package | test file (its name is the test target) | test name ("*": every
# test of the file) | when (quick: every run; long: full runs only, with the environment given)
MAP='
1|kill -9|boxidr|firmware/boxidr/tests/service.rs|kill_9_loses_nothing|quick
1|kill -9|boxidr|firmware/boxidr/tests/service.rs|kill_9_loses_nothing|long BOXIDR_KILL_ROUNDS=500
1|token rotation|boxidr|firmware/boxidr/tests/rotation.rs|kill_9_during_token_rotation|quick
1|token rotation|boxidr|firmware/boxidr/tests/rotation.rs|kill_9_during_token_rotation|long BOXIDR_ROTATION_ROUNDS=300
2|store crash|boxidr-store|firmware/store/tests/crash.rs|commit_page_crash_at_every_op_is_atomic|quick
2|store crash|boxidr-store|firmware/store/tests/crash.rs|ack_crash_at_every_op_is_atomic|quick
2|store crash|boxidr-store|firmware/store/tests/crash.rs|group_commit_crash_at_every_op_is_a_prefix|quick
3|power loss|boxidr-system-tests|tests/tests/power_loss.rs|power_loss_on_fuse_loses_nothing|quick
3|power loss|boxidr-system-tests|tests/tests/power_loss.rs|power_loss_on_fuse_many_cuts|long
4|store crash|boxidr-store|firmware/store/tests/crash.rs|commit_page_power_loss_at_every_sync_is_atomic|quick
4|store crash|boxidr-store|firmware/store/tests/crash.rs|ack_power_loss_at_every_sync_is_atomic|quick
4|store crash|boxidr-store|firmware/store/tests/crash.rs|group_commit_power_loss_at_every_sync_is_a_prefix|quick
5|double crash|boxidr|firmware/boxidr/tests/recovery.rs|double_crash_and_recovery_at_quota|quick
5|double crash|boxidr|firmware/boxidr/tests/recovery.rs|double_crash_and_recovery_at_quota|long BOXIDR_DOUBLE_CRASHES=50
6|recovery time|boxidr|firmware/boxidr/tests/recovery.rs|double_crash_and_recovery_at_quota|quick
12|disk full|boxidr-store|firmware/store/tests/store.rs|quota_refill_after_a_drain_compacts_again|quick
7|store crash|boxidr-store|firmware/store/tests/crash.rs|handle_reopens_after_commit_error|quick
7|store crash|boxidr-store|firmware/store/tests/crash.rs|transient_error_then_retry_converges_at_every_op|quick
7|disk full|boxidr-system-tests|tests/tests/disk_full.rs|real_enospc_backpressure_and_drain|long
8|network|boxidr-forward|firmware/forward/tests/collector.rs|outage_then_recovery|quick
8|network|boxidr-system-tests|tests/tests/network.rs|outage_then_recovery_loses_nothing|quick
8|network|boxidr-system-tests|tests/tests/network.rs|long_outage_backlog_catches_up|quick
8|network|boxidr-system-tests|tests/tests/network.rs|long_outage_backlog_catches_up|long BOXIDR_OUTAGE_EVENTS=500000
9|network|boxidr-system-tests|tests/tests/network.rs|resets_mid_batch_lose_nothing|quick
10|network|boxidr-system-tests|tests/tests/network.rs|stall_and_half_open_are_noticed|quick
10|network|boxidr-forward|firmware/forward/tests/stall.rs|stalled_log_search_is_noticed_and_stays_retrying|quick
8|network|boxidr-forward|firmware/forward/tests/stall.rs|a_retry_is_one_request_until_it_is_answered|quick
11|box faults|boxidr-system-tests|tests/tests/network.rs|retry_after_is_honoured_end_to_end|quick
9|network|boxidr-forward|firmware/forward/tests/collector.rs|reset_resends_every_unconfirmed_batch|quick
9|network|boxidr-forward|firmware/forward/tests/window.rs|http2_window_and_no_duplicates_in_a_503_storm|quick
10|network|boxidr-forward|firmware/forward/tests/collector.rs|stalled_collector_is_abandoned|quick
10|network|boxidr-forward|firmware/forward/tests/collector.rs|half_closed_peer_is_noticed|quick
11|box faults|boxidr-boxapi|firmware/boxapi/tests/poller_pipeline.rs|faults_do_not_lose_events|quick
11|box faults|boxidr-boxapi|firmware/boxapi/tests/collect_pipeline.rs|always_unreadable_stream_page_is_given_up_and_caught_up|quick
11|box faults|boxidr-forward|firmware/forward/tests/logsearch.rs|retry_after_is_honoured|quick
11|box faults|boxidr-forward|firmware/forward/tests/logsearch.rs|oversized_record_becomes_a_dead_letter_not_a_wedge|quick
11|box faults|boxidr-store|firmware/store/tests/dead_letters.rs|at_the_bound_the_sink_holds_instead_of_dropping|quick
12|disk full|boxidr-store|firmware/store/tests/store.rs|quota_backpressure_and_recovery|quick
12|disk full|boxidr-system-tests|tests/tests/disk_full.rs|real_enospc_backpressure_and_drain|long
13|disk full|boxidr-system-tests|tests/tests/disk_full.rs|quota_fill_and_drain_file_size|long
14|soak|boxidr|firmware/boxidr/tests/soak.rs|soak_with_faults_plateaus_and_loses_nothing|quick
14|soak|boxidr|firmware/boxidr/tests/soak.rs|soak_with_faults_plateaus_and_loses_nothing|long BOXIDR_SOAK_SECS=600
16|self-test|boxidr-health|firmware/health/tests/health.rs|storage_self_test_and_reopen_need_a_person|quick
17|clock|boxidr-system-tests|tests/tests/no_rtc.rs|no_rtc_waits_for_the_clock|quick
17|clock|boxidr-forward|firmware/forward/tests/collector.rs|tls_handshake_failures_are_retried_never_trusted|quick
18|security|boxidr-setup|firmware/setup/tests/setup_page.rs|first_boot_code_works_once|quick
19|security|boxidr-setup|firmware/setup/tests/routes.rs|every_route_is_gated_by_claim_login_csrf_and_origin|quick
20|security|boxidr-setup|firmware/setup/tests/routes.rs|every_route_is_gated_by_claim_login_csrf_and_origin|quick
20|security|boxidr-setup|firmware/setup/tests/setup_page.rs|csrf_and_origin_are_enforced|quick
21|security|boxidr-setup|firmware/setup/tests/setup_page.rs|oauth_state_abuse_is_refused|quick
22|token rotation|boxidr|firmware/boxidr/tests/rotation.rs|kill_9_during_token_rotation|quick
23|security|boxidr-setup|firmware/setup/tests/features.rs|metrics_export_and_bundle_hold_no_secret|quick
24|hostile input|boxidr-setup|firmware/setup/tests/setup_page.rs|hostile_strings_are_inert|quick
24|hostile input|boxidr-system-tests|tests/tests/hostile.rs|hostile_strings_end_to_end|quick
25|security|boxidr-setup|firmware/setup/tests/setup_page.rs|login_rotates_session_and_logout_ends_it|quick
25|security|boxidr-setup|firmware/setup/tests/setup_page.rs|idle_and_absolute_timeouts|quick
25|security|boxidr-setup|firmware/setup/tests/setup_page.rs|failed_logins_are_throttled|quick
27|security|boxidr-setup|firmware/setup/tests/setup_page.rs|factory_reset_returns_to_first_boot|quick
27|security|boxidr|firmware/boxidr/tests/cli.rs|setup_code_and_factory_reset_through_the_running_service|quick
27|security|boxidr-setup|firmware/setup/tests/factory_reset.rs|old_session_stops_after_factory_reset|quick
'
# Scenarios proved by a command outside this script (figures printed there).
DOCUMENTED='
15|cargo run --release -p boxidr-bench (commit budget, fsyncs, events/s; see README "Benchmarks")
26|image/README.md: the emulated boot smoke test checks file modes and the service user
'

rows() { printf '%s\n' "$MAP" | sed '/^$/d'; }

if [ "$mode" = list ]; then
    rows | awk -F'|' '{printf "%-3s %-14s %-40s %-58s %s\n", $1, $2, $4, $5, $6}'
    printf '%s\n' "$DOCUMENTED" | sed '/^$/d' | awk -F'|' '{printf "%-3s documented: %s\n", $1, $2}'
    exit 0
fi
if [ "$mode" = skip ]; then
    # Unique quick test names (a skip matches exactly with --exact).
    rows | awk -F'|' '$6 == "quick" && $5 != "*" {print $5}' | sort -u | sed 's/^/--skip /' | tr '\n' ' '
    echo
    exit 0
fi

export CARGO_TERM_COLOR=never
logdir=target/proof
mkdir -p "$logdir"
declare -A seen_run=() result=() figure=() text=() group_secs=()
order=()
started=$(date +%s)

# Runs one test (or a whole target with "*"), records its result and PROOF lines.
run_one() {
    local scenario=$1 group=$2 package=$3 file=$4 name=$5 env_assign=$6 long=$7
    local target
    target=$(basename "$file" .rs)
    local key="$package/$target/$name/$long/$env_assign"
    local log="$logdir/$(printf '%s' "$key" | tr '/ =' '___').log"
    if [ -z "${seen_run[$key]:-}" ]; then
        local t0 rc=0
        t0=$(date +%s)
        local filter=(--exact "$name")
        [ "$name" = "*" ] && filter=()
        local extra=()
        [ "$long" = long ] && extra=(--include-ignored)
        if [ ! -f "$file" ]; then
            echo "proof.sh: $file is not in the tree" >"$log"
            rc=-1
        else
            # --workspace (not -p): the same feature set as `cargo test --workspace`, so the
            # test binaries that step built are reused instead of rebuilt.
            env $env_assign cargo test --locked -q --workspace --test "$target" -- \
                "${filter[@]}" "${extra[@]}" --nocapture --test-threads=1 >"$log" 2>&1 || rc=$?
        fi
        local secs=$(( $(date +%s) - t0 ))
        group_secs[$group]=$(( ${group_secs[$group]:-0} + secs ))
        local outcome
        if [ "$rc" -eq -1 ]; then
            outcome=ABSENT
        elif [ "$rc" -ne 0 ]; then
            outcome=FAIL
        elif ! grep -Eq 'test result: ok\. [1-9][0-9]* passed' "$log"; then
            outcome=FAIL
            echo "proof.sh: no test matched" >>"$log"
        elif grep -q 'PROOF {"skipped"' "$log"; then
            outcome=SKIP
        else
            outcome=PASS
        fi
        seen_run[$key]="$outcome|${secs}s"
    fi
    local outcome=${seen_run[$key]%%|*} secs=${seen_run[$key]#*|}
    local proofs
    proofs=$(grep -o 'PROOF {.*' "$log" | sed 's/^PROOF //' || true)
    local words
    words=$(printf '%s\n' "$proofs" | sed -n 's/.*"\(figure\|skipped\)":"\(\([^"\\]\|\\.\)*\)".*/\2/p' | paste -sd ';' -)
    [ -z "$words" ] && words="(no figure printed)"
    [ "$outcome" = FAIL ] && words="see $log"
    [ "$outcome" = ABSENT ] && words="$file is not in the tree yet: not proved here"
    local label="$target::$name"
    [ "$long" = long ] && label="$label [long${env_assign:+ $env_assign}]"
    printf '%-3s %-5s %-72s %s  (%s)\n' "$scenario" "$outcome" "$label" "$words" "$secs"
    # Per scenario: FAIL beats SKIP beats PASS.
    case "${result[$scenario]:-}:$outcome" in
        FAIL:*) ;;
        *:FAIL) result[$scenario]=FAIL ;;
        SKIP:* | ABSENT:*) ;;
        *:SKIP | *:ABSENT) result[$scenario]=SKIP ;;
        *) result[$scenario]=PASS ;;
    esac
    if [ -n "$proofs" ]; then
        local joined
        joined=$(printf '%s\n' "$proofs" | paste -sd ',' -)
        figure[$scenario]="${figure[$scenario]:+${figure[$scenario]},}$joined"
    fi
    [[ " ${order[*]} " == *" $scenario "* ]] || order+=("$scenario")
}

printf '%-3s %-5s %-72s %s\n' "#" "RESULT" "TEST" "FIGURE"
while IFS='|' read -r scenario group package file name when; do
    env_assign="" long=quick
    case "$when" in
        quick) ;;
        long*)
            [ "$mode" = full ] || continue
            long=long
            env_assign=${when#long}
            env_assign=${env_assign# }
            ;;
    esac
    run_one "$scenario" "$group" "$package" "$file" "$name" "$env_assign" "$long"
done < <(rows)
while IFS='|' read -r scenario command; do
    printf '%-3s %-5s %s\n' "$scenario" "DOC" "$command"
    text[$scenario]=$command
    order+=("$scenario")
done < <(printf '%s\n' "$DOCUMENTED" | sed '/^$/d')

echo
echo "time per group:"
for group in "${!group_secs[@]}"; do
    printf '  %-14s %ss\n' "$group" "${group_secs[$group]}"
done | sort
printf '  %-14s %ss\n' "total" "$(( $(date +%s) - started ))"

failed=0
json="{"
first=1
for scenario in $(printf '%s\n' "${order[@]}" | sort -n -u); do
    case "${result[$scenario]:-DOC}" in
        PASS) pass=true ;;
        FAIL) pass=false; failed=1 ;;
        *) pass=null ;;
    esac
    if [ -n "${figure[$scenario]:-}" ]; then
        fig="[${figure[$scenario]}]"
    elif [ -n "${text[$scenario]:-}" ]; then
        fig="\"documented: $(printf '%s' "${text[$scenario]}" | sed 's/\\/\\\\/g; s/"/\\"/g')\""
    else
        fig=null
    fi
    [ $first = 1 ] || json+=","
    first=0
    json+="\"$scenario\":{\"pass\":$pass,\"figure\":$fig}"
done
json+="}"
echo "$json"
exit $failed
