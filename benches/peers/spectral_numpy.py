#!/usr/bin/env python3
"""Peer of `cargo bench --bench spectral`: numpy's SVD (compute_uv=False) of I - f'w and
eigvalsh of G = (I - f'w)^T (I - f'w) on the same matrices, with 2 threads.

    SEPTUPLE_DUMP_MATRICES=1 cargo bench --bench spectral -- svd_only   # writes the matrices
    python3 benches/peers/spectral_numpy.py

Run it with two numpys to separate the algorithm from the library: a PyPI wheel (its own
OpenBLAS) and a distribution build linked against the same system OpenBLAS as the `openblas`
feature (Debian: `apt-get install python3-numpy`, then `/usr/bin/python3 ...`).
"""
import glob
import os
import statistics
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "2"
import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def median_ms(f, repeats=10):
    f()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def blas_name():
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas['version']}"
    except Exception:  # numpy < 1.26 has no dict mode: a system build (e.g. Debian's)
        return "system BLAS/LAPACK"


def main():
    print(f"numpy {np.__version__} ({blas_name()}), 2 threads")
    print("| network | N | numpy svd(compute_uv=False) | numpy eigvalsh(G) |")
    print("| --- | --- | --- | --- |")
    for path in sorted(glob.glob(os.path.join(ROOT, "target", "spectral-matrices", "*.f64"))):
        name = os.path.basename(path)[:-4]
        raw = np.fromfile(path, dtype="<f8")
        n = int(round(raw.size ** 0.5))
        m = raw.reshape(n, n)
        g = m.T @ m
        svd = median_ms(lambda: np.linalg.svd(m, compute_uv=False))
        eig = median_ms(lambda: np.linalg.eigvalsh(g))
        print(f"| {name} | {n} | {svd:.1f} ms | {eig:.1f} ms |")


if __name__ == "__main__":
    main()
