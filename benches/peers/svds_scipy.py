"""The peer of `cargo bench --bench matrix_free`: the 20 largest singular values of
M = I - f'w of the same 784-4096-4096-10 network by scipy.sparse.linalg.svds (ARPACK, and
PROPACK where available) on a LinearOperator with the same products M v and M^T v, on two
threads. Reads the weights and f' that the bench writes:

    SEPTUPLE_DUMP_MATRICES=1 cargo bench --bench matrix_free
    python3 benches/peers/svds_scipy.py [--repeat 3]

Prints the median wall time of each solver and its sigma_max, sigma_20.
"""

import argparse
import os
import statistics
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "2")
import numpy as np  # noqa: E402
import scipy  # noqa: E402
from scipy.sparse.linalg import LinearOperator, svds  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIR = os.path.join(ROOT, "target", "matrix_free_peer")


def load():
    ws = []
    l = 0
    while os.path.exists(os.path.join(DIR, f"w{l}.npy")):
        ws.append(np.load(os.path.join(DIR, f"w{l}.npy")))
        l += 1
    fp = np.load(os.path.join(DIR, "fp.npy"))
    return ws, fp


def operator(ws, fp):
    sizes = [ws[0].shape[1]] + [w.shape[0] for w in ws]
    offs = np.cumsum([0] + sizes)
    n = int(offs[-1])

    def wv(v):
        out = np.zeros_like(v)
        for l, w in enumerate(ws):
            out[offs[l + 1] : offs[l + 2]] = w @ v[offs[l] : offs[l + 1]]
        return out

    def wtv(v):
        out = np.zeros_like(v)
        for l, w in enumerate(ws):
            out[offs[l] : offs[l + 1]] += w.T @ v[offs[l + 1] : offs[l + 2]]
        return out

    def mv(v):
        v = v.reshape(n, -1)
        return v - fp[:, None] * wv(v)

    def rmv(v):
        v = v.reshape(n, -1)
        return v - wtv(fp[:, None] * v)

    return LinearOperator((n, n), matvec=mv, rmatvec=rmv, matmat=mv, rmatmat=rmv, dtype=np.float64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tol", type=float, default=1e-10)
    args = ap.parse_args()
    ws, fp = load()
    op = operator(ws, fp)
    print(f"numpy {np.__version__}, scipy {scipy.__version__}, N = {op.shape[0]}")
    for solver in ["arpack", "propack"]:
        times = []
        s = None
        for _ in range(args.repeat):
            t = time.perf_counter()
            try:
                s = svds(op, k=20, which="LM", tol=args.tol, solver=solver, return_singular_vectors=False,
                         random_state=0)
            except Exception as e:  # PROPACK may be missing from a build
                print(f"{solver}: {e}")
                break
            times.append(time.perf_counter() - t)
        if times:
            s = np.sort(s)[::-1]
            print(f"{solver}: median {statistics.median(times):.2f} s over {len(times)} runs "
                  f"(all: {', '.join(f'{x:.2f}' for x in times)}); sigma_max {s[0]:.6f}, sigma_20 {s[19]:.6f}")


if __name__ == "__main__":
    main()
