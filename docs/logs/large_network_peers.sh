#!/usr/bin/env bash
# The million-neuron analysis beside its scipy peer on the same operator, one session, one
# machine: writes docs/logs/large_network_peers.log. Needs numpy and scipy.
set -euo pipefail
cd "$(dirname "$0")/../.."
log=docs/logs/large_network_peers.log
cargo build --release --example large_network
{
    echo "# $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD), $(nproc) cores"
    uptime
    echo '$ /usr/bin/time -v target/release/examples/large_network --dump target/large_network_peer'
    /usr/bin/time -v target/release/examples/large_network --dump target/large_network_peer 2>&1
    echo '$ /usr/bin/time -v python3 benches/peers/large_network_scipy.py --phase slq'
    /usr/bin/time -v python3 benches/peers/large_network_scipy.py --phase slq 2>&1
    echo '$ /usr/bin/time -v python3 benches/peers/large_network_scipy.py --phase svds'
    timeout 1800 /usr/bin/time -v python3 benches/peers/large_network_scipy.py --phase svds 2>&1 || echo "svds: exit $?"
} > "$log"
