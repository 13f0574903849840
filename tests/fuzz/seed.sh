#!/usr/bin/env bash
# Writes the fuzz targets' seed corpora into DIR/<target>/ from the Box samples in
# tests/fixtures/box/samples (the repository keeps no binary corpus). Idempotent: seeds are
# named by content, so rerunning adds nothing twice and never removes what the fuzzer found.
#
#   bash tests/fuzz/seed.sh DIR
set -euo pipefail
out=${1:?usage: seed.sh DIR}
samples="$(cd "$(dirname "$0")/../fixtures/box/samples" && pwd)"

# seed TARGET: stdin becomes one seed file named by its SHA-256.
seed() {
    local dir="$out/$1" tmp
    mkdir -p "$dir"
    tmp=$(mktemp "$dir/.seed.XXXXXX")
    cat >"$tmp"
    mv "$tmp" "$dir/seed-$(sha256sum "$tmp" | cut -c1-16)"
}

events=("$samples"/event-*.json "$samples"/elastic-*.json)

# Box event pages: the sample pages as they are, and each sample event alone in a page.
for page in "$samples"/events-page-*.json; do seed box_events_page <"$page"; done
for event in "${events[@]}"; do
    { printf '{"chunk_size":1,"next_stream_position":"1152922986252290886","entries":['
      cat "$event"; printf ']}'; } | seed box_events_page
done
printf '{"chunk_size":1,"next_stream_position":0,"entries":[{"event_id":"x","created_at":"9999-12-31T23:30:00-01:00"},7,{"event_id":""}]}' \
    | seed box_events_page

# Stream positions: the samples' cursors as JSON (string and integer) and as bare text.
grep -rhoE '"next_stream_position": *("[^"]*"|[0-9]+)' "$samples" | sed 's/^[^:]*: *//' | sort -u \
    | while read -r position; do
        printf '%s' "$position" | seed stream_position
        printf '%s' "${position//\"/}" | seed stream_position
    done
for position in '0' '"0"' '1.5e3' '"now"' '-1'; do printf '%s' "$position" | seed stream_position; done

# created_at: every timestamp in the samples, plus the edges of the representable range.
grep -rhoE '"(created_at|recorded_at)": *"[^"]*"' "$samples" | sed 's/^[^:]*: *"//; s/"$//' | sort -u \
    | while read -r t; do printf '%s' "$t" | seed created_at; done
for t in '9999-12-31T23:30:00-01:00' '0000-01-01T00:00:00+01:00' '2015-12-02T09:41:31.123456-08:00' \
    '2024-02-29T23:59:60Z' '2024-03-05T16:14:22.000Z'; do
    printf '%s' "$t" | seed created_at
done
printf '#\x00\x90\x1f\x12\x9e\x01\x00\x00' | seed created_at

# Queued records: each sample event, with the settings flags all off and all on.
for event in "${events[@]}"; do
    { printf '\x00'; cat "$event"; } | seed normalize_record
    { printf '\x1f'; cat "$event"; } | seed normalize_record
done

# Setup forms: 'c' + a scope CSV, 'u' + path index + an urlencoded settings form,
# 'm' + boundary LF multipart body.
printf 'cEmail,Group Name\r\nalice@example.com,Security\r\nbob@example.com,\r\n' | seed setup_forms
printf 'c\xef\xbb\xbfEmail Address\nALICE@Example.COM\n' | seed setup_forms
printf 'u\x01default_domain=CORP&account_format=upn&authentication_target=Box&send_unparsed=on' | seed setup_forms
printf 'u\x00collector_enabled=on&collector_host=10.0.0.5&collector_port=6514&log_search_enabled=on&region=us' | seed setup_forms
printf 'u\x02stream_type=admin_logs_streaming&include_types=LOGIN%%0AFAILED_LOGIN&completeness_sweep=on' | seed setup_forms
printf 'mXyZ\n--XyZ\r\nContent-Disposition: form-data; name="csrf"\r\n\r\nabc\r\n--XyZ\r\nContent-Disposition: form-data; name="scope_file"; filename="s.csv"\r\nContent-Type: text/csv\r\n\r\nEmail\r\na@example.com\r\n--XyZ--\r\n' \
    | seed setup_forms

# The setup server: 'r' + raw bytes over HTTPS, 'p' + raw bytes to the HTTP redirect listener.
printf 'rGET /claim HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' | seed setup_http
printf 'rPOST /claim HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: null\r\nSec-Fetch-Site: same-origin\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 27\r\nConnection: close\r\n\r\ncode=AAAA&password=x&csrf=y' | seed setup_http
printf 'pGET /status?x=1 HTTP/1.1\r\nHost: box.lan:80\r\n\r\n' | seed setup_http
printf 'pGET //evil.example/ HTTP/1.1\r\nHost: box.lan\r\n\r\n' | seed setup_http

# The control socket.
for command in 'status' 'setup-code' 'factory-reset' ' status ' 'STATUS'; do
    printf '%s\n' "$command" | seed control_socket
done
printf 'status\r\nfactory-reset\n' | seed control_socket

# UEF lines (flags byte first): the contract's example login, and one with an offset.
printf '\x00{"version":"v1","event_type":"INGRESS_AUTHENTICATION","time":"2024-03-05T16:14:22.000Z","account":"alice","account_domain":"CORP","source_ip":"81.2.69.144","authentication_result":"SUCCESS","authentication_target":"Box","custom_data":{"box_event_id":"0b1e6c3e-6a43-4d0b-9a43-5a7c1a2f9d10"}}' \
    | seed uef_validator
printf '\x01{"version":"v1","event_type":"INGRESS_AUTHENTICATION","time":"9999-12-31T23:30:00.000-01:00","account":"a","source_ip":"::ffff:10.0.0.1","authentication_result":"FAILURE"}' \
    | seed uef_validator
