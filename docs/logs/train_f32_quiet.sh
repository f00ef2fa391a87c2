#!/bin/sh
# Writes docs/logs/train_f32_quiet.log: three rounds of the interleaved f32/f64 epochs
# (precision_ab, best of 20) on 1 and 2 threads and of the numpy peers (float64 and float32) on
# 2 and 1 threads, with uptime before and after each round. Run from the repository root on a
# quiet machine (needs numpy).
set -e
log=docs/logs/train_f32_quiet.log
cargo build --release -p septuple-train --example precision_ab
bin="${CARGO_TARGET_DIR:-target}/release/examples/precision_ab"
{
    echo "# $(date +%F), commit $(git rev-parse --short HEAD), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
    for round in 1 2 3; do
        echo "## round $round"
        uptime
        echo "\$ RAYON_NUM_THREADS=1 $bin"
        RAYON_NUM_THREADS=1 "$bin"
        echo "\$ RAYON_NUM_THREADS=2 $bin"
        RAYON_NUM_THREADS=2 "$bin"
        echo "\$ python3 benches/peers/train_peers.py --only numpy"
        python3 benches/peers/train_peers.py --only numpy
        echo "\$ PEER_THREADS=1 python3 benches/peers/train_peers.py --only numpy"
        PEER_THREADS=1 python3 benches/peers/train_peers.py --only numpy
        uptime
    done
} 2>&1 | tee "$log"
