#!/usr/bin/env bash
# Runs every libFuzzer harness of fuzz-sandboxd for FUZZ_SECONDS each (make fuzz; CI runs a short smoke).
# Fails on any crash, leak, timeout or out-of-memory; new crashers are left in $SCRATCH/crashes/<harness>/
# (copy them to Tests/Fixtures/fuzz/<harness>/ to keep them as regression tests). Prints execs per harness.
set -uo pipefail
cd "$(dirname "$0")/.."
SCRATCH="${FUZZ_SCRATCH:-.build-fuzz}"
SECONDS_EACH="${FUZZ_SECONDS:-60}"
HARNESSES="${FUZZ_HARNESSES:-cbor rhp-host rhp-guest http config elf}"
# Bounded: a hostile claimed count must not be able to take the machine (the CBOR allocation fix is
# the runtime-facing half's; an OOM here is reported, not hidden).
FLAGS="${FUZZ_FLAGS:--rss_limit_mb=2048 -max_len=65536 -timeout=10 -malloc_limit_mb=1024}"
BIN="$SCRATCH/debug/fuzz-sandboxd"
[ -x "$BIN" ] || { echo "fuzz: $BIN missing; run make fuzz-build" >&2; exit 2; }

python3 scripts/fuzz-seeds.py "$SCRATCH/seeds" >/dev/null
status=0
summary=""
for harness in $HARNESSES; do
    corpus="$SCRATCH/corpus/$harness"
    crashes="$SCRATCH/crashes/$harness"
    mkdir -p "$corpus" "$crashes" "Tests/Fixtures/fuzz/$harness"
    log="$SCRATCH/fuzz-$harness.log"
    # New interesting inputs go to the first directory only; seeds and kept crashers are read-only.
    SANDBOXD_FUZZ_HARNESS="$harness" ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}" \
        LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan.supp:print_suppressions=0}" \
        "$BIN" $FLAGS -max_total_time="$SECONDS_EACH" -print_final_stats=1 -artifact_prefix="$crashes/" \
        "$corpus" "$SCRATCH/seeds/$harness" "Tests/Fixtures/fuzz/$harness" >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
    verdict=ok
    if [ $rc -ne 0 ]; then
        verdict="FAILED (exit $rc)"
        status=1
        echo "=== fuzz $harness failed; last lines of $log:" >&2
        grep -E 'ERROR|SUMMARY|Fatal error|Test unit written|==[0-9]+==' "$log" | head -20 >&2
        tail -5 "$log" >&2
    fi
    summary+=$(printf '%-10s %10s execs %7s/s  cov %6s  %s' "$harness" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$verdict")$'\n'
done
echo "fuzz: ${SECONDS_EACH}s per harness"
printf '%s' "$summary"
exit $status
