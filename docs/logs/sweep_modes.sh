#!/bin/bash
# The sweep of benches/sweep.rs (docs/logs/sweep_bench_manifest.json: 4 runs) through the
# command line in three modes, timed: one run at a time on one thread, one at a time with all
# threads, and side by side (one per core).
set -e
M=docs/logs/sweep_bench_manifest.json
S=target/release/septuple
for mode in "1 1" "1 auto" "auto auto"; do
    set -- $mode
    jobs=$1; threads=$2
    out=$(mktemp -d)
    if [ "$threads" = 1 ]; then export RAYON_NUM_THREADS=1; else unset RAYON_NUM_THREADS; fi
    echo "== --jobs $jobs, RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-unset} ($(date -u +%T), load $(cut -d' ' -f1 /proc/loadavg))"
    $S sweep $M --shard 0/1 --jobs $jobs --out "$out" --quiet 2>&1 | grep "done in"
    rm -rf "$out"
done
