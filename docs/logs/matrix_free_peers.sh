#!/usr/bin/env bash
# The matrix-free estimators at N = 8986 (784-4096-4096-10) beside their scipy/numpy peers on
# the same operator, one session, one machine: writes docs/logs/matrix_free_peers.log. Needs
# numpy and scipy.
set -euo pipefail
cd "$(dirname "$0")/../.."
log=docs/logs/matrix_free_peers.log
{
    echo "# $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD), $(nproc) cores"
    uptime
    echo '$ SEPTUPLE_DUMP_MATRICES=1 cargo bench --bench matrix_free -- "largest_20|slq_16x60"'
    SEPTUPLE_DUMP_MATRICES=1 cargo bench --bench matrix_free -- "largest_20|slq_16x60" 2>&1 \
        | grep -v "^\s*$" | grep -v "Compiling\|Benchmarking"
    echo '$ /usr/bin/time -v python3 benches/peers/svds_scipy.py --repeat 3'
    /usr/bin/time -v python3 benches/peers/svds_scipy.py --repeat 3 2>&1
} > "$log"
