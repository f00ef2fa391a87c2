#!/usr/bin/env python3
"""Peers of `cargo bench --bench train`: one SGD epoch on the first 6,000 digits of the
embedded MNIST subset, in float64 with 2 threads, for the networks 784-40-20-10 and 784-60-10
(tanh on every layer), loss 1/2 |x_out - t|^2 averaged over the batch (Eq. 2.11), plain SGD,
batch 100 and full batch; numpy also in float32 (the same code with every array float32, the
peer of the `*_f32` rows). Prints a Markdown table of median epoch times.

    python3 benches/peers/train_peers.py [--epochs 15] [--only numpy,torch,tensorflow]
    PEER_THREADS=1 python3 benches/peers/train_peers.py --only gemm   # one-core GEMM peak

Needs numpy; torch and tensorflow-cpu are timed when importable. Thread counts are fixed to 2
before any import (OMP/OpenBLAS/MKL variables, torch.set_num_threads, TF's thread options).
"""
import argparse
import gzip
import os
import statistics
import struct
import sys
import time

THREADS = os.environ.get("PEER_THREADS", "2")
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = THREADS
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NETS = {"784-40-20-10": [784, 40, 20, 10], "784-60-10": [784, 60, 10]}
BATCHES = {"batch 100": 100, "full batch": 6000}
LR = 0.01


def load_mnist(n=6000):
    d = os.path.join(ROOT, "crates", "septuple-io", "data", "mnist")
    with gzip.open(os.path.join(d, "mnist-10k-images-idx3-ubyte.gz")) as f:
        magic, count, rows, cols = struct.unpack(">IIII", f.read(16))
        assert magic == 2051
        x = np.frombuffer(f.read(), dtype=np.uint8).reshape(count, rows * cols)
    with gzip.open(os.path.join(d, "mnist-10k-labels-idx1-ubyte.gz")) as f:
        magic, count = struct.unpack(">II", f.read(8))
        assert magic == 2049
        y = np.frombuffer(f.read(), dtype=np.uint8)
    x = x[:n].astype(np.float64) / 255.0
    t = np.zeros((n, 10))
    t[np.arange(n), y[:n]] = 1.0
    return x, t


def init(sizes, seed=1):
    rng = np.random.default_rng(seed)
    ws, bs = [], []
    for a, b in zip(sizes[:-1], sizes[1:]):
        k = 1.0 / np.sqrt(a)
        ws.append(rng.uniform(-k, k, size=(b, a)))
        bs.append(rng.uniform(-k, k, size=b))
    return ws, bs


def numpy_epoch_fn(sizes, x, t, batch, dtype=np.float64):
    ws, bs = init(sizes)
    # Every array in `dtype` (Python scalars do not widen numpy arrays: NEP 50).
    x, t = x.astype(dtype), t.astype(dtype)
    wts = [np.ascontiguousarray(w.T, dtype=dtype) for w in ws]
    bs = [b.astype(dtype) for b in bs]
    rng = np.random.default_rng(0)

    def epoch():
        order = rng.permutation(len(x)) if batch < len(x) else np.arange(len(x))
        for s in range(0, len(x), batch):
            idx = order[s : s + batch]
            xb, tb = x[idx], t[idx]
            acts = [xb]
            for wt, b in zip(wts, bs):
                acts.append(np.tanh(acts[-1] @ wt + b))
            delta = (acts[-1] - tb) / len(idx) * (1.0 - acts[-1] ** 2)
            for k in range(len(wts) - 1, -1, -1):
                gw = acts[k].T @ delta
                gb = delta.sum(axis=0)
                if k > 0:
                    delta = (delta @ wts[k].T) * (1.0 - acts[k] ** 2)
                wts[k] -= LR * gw
                bs[k] -= LR * gb

    return epoch


def torch_epoch_fn(sizes, x, t, batch):
    import torch

    torch.set_num_threads(int(THREADS))
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(a, b, dtype=torch.float64), torch.nn.Tanh()]
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    xt = torch.from_numpy(x)
    tt = torch.from_numpy(t)
    gen = torch.Generator().manual_seed(0)

    def epoch():
        n = len(xt)
        order = torch.randperm(n, generator=gen) if batch < n else torch.arange(n)
        for s in range(0, n, batch):
            idx = order[s : s + batch]
            out = model(xt[idx])
            loss = 0.5 * ((out - tt[idx]) ** 2).sum(dim=1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return epoch


def tf_epoch_fn(sizes, x, t, batch):
    import tensorflow as tf

    if not getattr(tf_epoch_fn, "_threads", False):
        tf.config.threading.set_intra_op_parallelism_threads(int(THREADS))
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf_epoch_fn._threads = True
    tf.keras.backend.set_floatx("float64")
    model = tf.keras.Sequential(
        [tf.keras.Input(shape=(sizes[0],), dtype="float64")]
        + [tf.keras.layers.Dense(b, activation="tanh", dtype="float64") for b in sizes[1:]]
    )
    opt = tf.keras.optimizers.SGD(learning_rate=LR)

    @tf.function
    def step(xb, tb):
        with tf.GradientTape() as tape:
            out = model(xb, training=True)
            loss = 0.5 * tf.reduce_mean(tf.reduce_sum((out - tb) ** 2, axis=1))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    xt = tf.constant(x)
    tt = tf.constant(t)
    rng = np.random.default_rng(0)

    def epoch():
        n = len(x)
        order = rng.permutation(n) if batch < n else np.arange(n)
        for s in range(0, n, batch):
            idx = tf.constant(order[s : s + batch])
            step(tf.gather(xt, idx), tf.gather(tt, idx))

    return epoch


def numpy_f32_epoch_fn(sizes, x, t, batch):
    return numpy_epoch_fn(sizes, x, t, batch, np.float32)


# Each peer's rows: (label, epoch function).
PEERS = {
    "numpy": [("numpy", numpy_epoch_fn), ("numpy float32", numpy_f32_epoch_fn)],
    "torch": [("torch", torch_epoch_fn)],
    "tensorflow": [("tensorflow", tf_epoch_fn)],
}


def median_ms(epoch, repeats):
    epoch()  # warm-up (tracing, allocation)
    epoch()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        epoch()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def gemm_gflops(dtype=np.float64):
    a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(dtype)
    b = a.copy()
    a @ b
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * 2048**3 / statistics.median(times) / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--only", default="numpy,torch,tensorflow")
    args = ap.parse_args()
    x, t = load_mnist()
    print(f"numpy {np.__version__}; 2048^3 GEMM at {THREADS} threads: "
          f"f64 {gemm_gflops():.0f} GFLOP/s, f32 {gemm_gflops(np.float32):.0f} GFLOP/s")
    print("| peer | " + " | ".join(f"{n} {b}" for n in NETS for b in BATCHES) + " |")
    print("| --- |" + " --- |" * (len(NETS) * len(BATCHES)))
    for name in args.only.split(","):
        if name == "gemm":
            continue
        for label, fn in PEERS[name]:
            try:
                cells = []
                for sizes in NETS.values():
                    for batch in BATCHES.values():
                        cells.append(f"{median_ms(fn(sizes, x, t, batch), args.epochs):.1f} ms")
            except ImportError as e:
                print(f"| {label} | not installed ({e}) |", file=sys.stderr)
                break
            version = {"numpy": lambda: np.__version__,
                       "torch": lambda: __import__("torch").__version__,
                       "tensorflow": lambda: __import__("tensorflow").__version__}[name]()
            print(f"| {label} {version} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
