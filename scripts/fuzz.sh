#!/usr/bin/env bash
# Fuzzes every file parser with libFuzzer and the address sanitizer.
#
#   scripts/fuzz.sh [SECONDS] [HARNESS...]     (default: 30 seconds each, every harness)
#
# Builds `mmkd-fuzz` with -sanitize=fuzzer,address into .build/fuzz, then runs each harness for
# SECONDS from its committed seeds (Fuzz/Corpus/HARNESS, read only) and the inputs it found before
# (.build/fuzz-corpus/HARNESS). A trap, an out-of-bounds access, a leak, an input that takes over 10 s
# or needs over 4 GB is a finding: the input is saved as .build/fuzz-findings/HARNESS-*, and the
# script fails. Replay one with `.build/release/mmkd-fuzz replay HARNESS FILE`; once fixed, copy it
# to Fuzz/Regressions/HARNESS/ so that the test suite keeps it fixed. Ends with a table of
# executions per harness.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
case "$seconds" in ''|*[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, got '$seconds'" >&2; exit 2 ;; esac
swift build -c release --product mmkd-fuzz --build-path .build/fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DLIBFUZZER -Xswiftc -use-ld=lld 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]' || true
binary=.build/fuzz/release/mmkd-fuzz
[ -x "$binary" ] || { echo "fuzz.sh: the fuzzing build failed" >&2; exit 1; }
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || mapfile -t harnesses < <(ls Fuzz/Corpus)
mkdir -p .build/fuzz-findings
summary=$(mktemp); trap 'rm -f "$summary"' EXIT
status=0
for h in "${harnesses[@]}"; do
    [ -d "Fuzz/Corpus/$h" ] || { echo "fuzz.sh: no seeds for '$h' (Fuzz/Corpus/$h)" >&2; exit 2; }
    mkdir -p ".build/fuzz-corpus/$h"
    log=".build/fuzz-findings/$h.log"
    echo "fuzz.sh: $h for ${seconds}s"
    rc=0
    MMKD_FUZZ_TARGET=$h ASAN_OPTIONS=detect_leaks=1 "$binary" ".build/fuzz-corpus/$h" "Fuzz/Corpus/$h" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -malloc_limit_mb=4096 \
        -artifact_prefix=".build/fuzz-findings/$h-" -print_final_stats=1 >"$log" 2>&1 || rc=$?
    runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -n 1)
    corpus=$(ls ".build/fuzz-corpus/$h" | wc -l)
    if [ "$rc" -ne 0 ]; then
        status=1
        echo "fuzz.sh: $h FOUND A PROBLEM (exit $rc); log $log:"
        grep -E 'ERROR|SUMMARY|Fatal error|Test unit written|^    #[0-9]+ ' "$log" | head -n 30
        printf '%-14s %12s %8s  %s\n' "$h" "${runs:-?}" "$corpus" "FAILED" >>"$summary"
    else
        printf '%-14s %12s %8s  %s\n' "$h" "${runs:-?}" "$corpus" "ok" >>"$summary"
    fi
done
printf '%-14s %12s %8s  %s\n' "harness" "executions" "corpus" "result (${seconds}s each)"
cat "$summary"
exit "$status"
