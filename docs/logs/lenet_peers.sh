#!/usr/bin/env bash
# The matrix-free analysis of the ONNX LeNet-5 of the fixtures (N = 8878, a sparse septuple)
# beside its scipy peers on the same operator, one session, one machine: writes
# docs/logs/lenet_peers.log. Both quadratures: 32 probes x 240 steps (where every trace has
# settled on this network: docs/performance.md), every vector reorthogonalised; the 20 largest
# to 1e-10. Needs numpy and scipy.
set -euo pipefail
cd "$(dirname "$0")/../.."
log=docs/logs/lenet_peers.log
fixtures=crates/septuple-io/tests/fixtures/onnx
cargo build --release --example large_network
run() {
    echo "\$ $*"
    /usr/bin/time -v "$@" 2>&1
}
{
    echo "# $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD), $(nproc) cores"
    uptime
    run target/release/examples/large_network --onnx $fixtures/lenet_f32.onnx \
        --onnx-inputs $fixtures/digits.npy --probes 32 --tol 0 --steps 240 \
        --dump target/lenet_peer
    run python3 benches/peers/large_network_scipy.py --phase slq --dir target/lenet_peer \
        --probes 32 --steps 240 --reorth
    run python3 benches/peers/large_network_scipy.py --phase svds --dir target/lenet_peer
    uptime
} > "$log"
