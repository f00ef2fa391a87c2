#!/usr/bin/env bash
# The 20 largest eigenvalues of the million-neuron network with one-sided (the default) and
# two-sided reorthogonalisation, one session, one machine: writes
# docs/logs/large_network_one_sided.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
log=docs/logs/large_network_one_sided.log
cargo build --release --example large_network
{
    echo "# $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD), $(nproc) cores"
    uptime
    for sides in right both right; do
        echo "\$ /usr/bin/time -v target/release/examples/large_network --phase extremes --sides $sides"
        /usr/bin/time -v target/release/examples/large_network --phase extremes --sides "$sides" 2>&1
    done
} > "$log"
