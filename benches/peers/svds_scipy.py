"""The peer of `cargo bench --bench matrix_free`: the 20 largest singular values of
M = I - f'w of the same 784-4096-4096-10 network by scipy.sparse.linalg.svds (ARPACK, and
PROPACK where available) on a LinearOperator with the same products M v and M^T v, on two
threads, and stochastic Lanczos quadrature written with numpy (16 Rademacher probes of 60
Golub-Kahan steps, every vector reorthogonalised against its probe's earlier ones by two
classical Gram-Schmidt passes, as the bench's `slq_16x60`; Gauss rules as in
large_network_scipy.py). Reads the weights and f' that the bench writes:

    SEPTUPLE_DUMP_MATRICES=1 cargo bench --bench matrix_free
    python3 benches/peers/svds_scipy.py [--repeat 3]

Prints the median wall time of each and sigma_max, sigma_20, or the traces with their
standard errors.
"""

import argparse
import os
import statistics
import sys
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "2")
# scipy reads this when it is imported: PROPACK is off without it.
os.environ.setdefault("SCIPY_USE_PROPACK", "1")
import numpy as np  # noqa: E402
import scipy  # noqa: E402
from scipy.sparse.linalg import LinearOperator, svds  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from large_network_scipy import traces  # noqa: E402

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


def operator(ws, fp, count=None):
    """M = I - f'w as a LinearOperator; `count` (a dict), if given, counts the vectors that
    M and M^T are applied to."""
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
        if count is not None:
            count["M"] = count.get("M", 0) + v.shape[1]
        return v - fp[:, None] * wv(v)

    def rmv(v):
        v = v.reshape(n, -1)
        if count is not None:
            count["MT"] = count.get("MT", 0) + v.shape[1]
        return v - wtv(fp[:, None] * v)

    return LinearOperator((n, n), matvec=mv, rmatvec=rmv, matmat=mv, rmatmat=rmv, dtype=np.float64)


def slq_full(mv, rmv, n, probes, steps, seed):
    """Golub-Kahan from a block of Rademacher probes, each new u and v reorthogonalised
    against all earlier ones of its probe (two classical Gram-Schmidt passes)."""
    rng = np.random.default_rng(seed)
    v = rng.choice([-1.0, 1.0], size=(n, probes))
    v /= np.linalg.norm(v, axis=0)
    vs = np.zeros((steps + 1, n, probes))
    us = np.zeros((steps, n, probes))
    vs[0] = v
    alpha = np.zeros((steps, probes))
    beta = np.zeros((steps, probes))

    def reorth(x, basis):
        for _ in range(2):
            h = np.einsum("jnp,np->jp", basis, x)
            x -= np.einsum("jnp,jp->np", basis, h)
        return x

    for j in range(steps):
        p = mv(vs[j])
        if j > 0:
            p -= beta[j - 1] * us[j - 1]
        p = reorth(p, us[:j])
        a = np.linalg.norm(p, axis=0)
        us[j] = p / a
        q = rmv(us[j]) - a * vs[j]
        q = reorth(q, vs[: j + 1])
        b = np.linalg.norm(q, axis=0)
        vs[j + 1] = q / b
        alpha[j], beta[j] = a, b
    return traces(alpha, beta, n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tol", type=float, default=1e-10)
    ap.add_argument("--probes", type=int, default=16)
    ap.add_argument("--steps", type=int, default=60)
    args = ap.parse_args()
    ws, fp = load()
    op = operator(ws, fp)
    n = op.shape[0]
    print(f"numpy {np.__version__}, scipy {scipy.__version__}, N = {n}")
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        est = slq_full(op.matmat, op.rmatmat, n, args.probes, args.steps, 0)
        times.append(time.perf_counter() - t)
    print(f"quadrature {args.probes} x {args.steps}, full reorthogonalisation: median "
          f"{statistics.median(times):.2f} s over {len(times)} runs "
          f"(all: {', '.join(f'{x:.2f}' for x in times)})")
    for k, (m, e) in est.items():
        print(f"  {k:<28} {m:16.6f} ± {e:.3e}")
    for solver in ["arpack", "propack"]:
        times = []
        s = None
        count = {}
        counted = operator(ws, fp, count)
        for _ in range(args.repeat):
            count.clear()
            t = time.perf_counter()
            try:
                s = svds(counted, k=20, which="LM", tol=args.tol, solver=solver, return_singular_vectors=False,
                         random_state=0)
            except Exception as e:  # PROPACK may be missing from a build
                print(f"{solver}: {e}")
                break
            times.append(time.perf_counter() - t)
        if times:
            s = np.sort(s)[::-1]
            print(f"{solver}: median {statistics.median(times):.2f} s over {len(times)} runs "
                  f"(all: {', '.join(f'{x:.2f}' for x in times)}); sigma_max {s[0]:.6f}, sigma_20 {s[19]:.6f}; "
                  f"products per run: {count.get('M', 0)} M v, {count.get('MT', 0)} M^T v")


if __name__ == "__main__":
    main()
