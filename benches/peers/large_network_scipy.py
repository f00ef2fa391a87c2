"""The peer of `examples/large_network.rs` on the same operator M = I - f'w (N = 10^6,
10^7 connections): stochastic Lanczos quadrature written with numpy/scipy (the same probe
count, steps and Golub-Kahan recurrence without reorthogonalisation as the example's run,
Rademacher probes from numpy's generator) for log det(I + G), the Laplacian of F at beta = 1,
mu_2 and mu_3 with their standard errors, and the 20 largest eigenvalues of G by
scipy.sparse.linalg.svds (ARPACK; PROPACK with --solver propack) on a LinearOperator with the
same products. w is a scipy CSR matrix and w^T a second CSR copy, as the sparse septuple
keeps them. Reads the files that the example writes:

    cargo run --release --example large_network -- --dump target/large_network_peer
    /usr/bin/time -v python3 benches/peers/large_network_scipy.py --phase slq
    /usr/bin/time -v python3 benches/peers/large_network_scipy.py --phase svds

Each phase in its own process, so that /usr/bin/time's peak memory is that phase's.
"""

import argparse
import os
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "2")
# scipy reads this when it is imported: PROPACK is off without it.
os.environ.setdefault("SCIPY_USE_PROPACK", "1")
import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from scipy.sparse.linalg import LinearOperator, svds  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIR = os.path.join(ROOT, "target", "large_network_peer")


def load(directory):
    t = time.perf_counter()
    indptr = np.load(os.path.join(directory, "w_indptr.npy")).astype(np.int64)
    indices = np.load(os.path.join(directory, "w_indices.npy")).astype(np.int32)
    data = np.load(os.path.join(directory, "w_data.npy"))
    fp = np.load(os.path.join(directory, "fp.npy"))
    n = fp.shape[0]
    w = sp.csr_matrix((data, indices, indptr), shape=(n, n))
    wt = w.T.tocsr()
    print(f"loaded N = {n}, nnz = {w.nnz} in {time.perf_counter() - t:.1f} s", flush=True)
    return w, wt, fp


def products(w, wt, fp):
    def mv(v):
        if v.ndim == 1:
            return v - fp * (w @ v)
        return v - fp[:, None] * (w @ v)

    def rmv(v):
        if v.ndim == 1:
            return v - wt @ (fp * v)
        return v - wt @ (fp[:, None] * v)

    return mv, rmv


def slq(w, wt, fp, probes, steps, seed):
    """Golub-Kahan on M from a block of Rademacher probes, no reorthogonalisation; per probe
    the Gauss rule of z^T f(G) z / |z|^2 from the bidiagonal's SVD (nodes sigma_j^2, weights
    the squared first components of the right singular vectors)."""
    n = fp.shape[0]
    mv, rmv = products(w, wt, fp)
    rng = np.random.default_rng(seed)
    v = rng.choice([-1.0, 1.0], size=(n, probes))
    v /= np.linalg.norm(v, axis=0)
    alpha = np.zeros((steps, probes))
    beta = np.zeros((steps, probes))
    u_prev = np.zeros_like(v)
    b_prev = np.zeros(probes)
    for j in range(steps):
        p = mv(v) - b_prev * u_prev
        a = np.linalg.norm(p, axis=0)
        p /= a
        q = rmv(p) - a * v
        b = np.linalg.norm(q, axis=0)
        q /= b
        alpha[j], beta[j] = a, b
        u_prev, v, b_prev = p, q, b
    return traces(alpha, beta, n)


def traces(alpha, beta, n):
    """Per probe c the Gauss rule of the bidiagonal with diagonal alpha[:, c] and superdiagonal
    beta[:-1, c]; the mean over probes of N sum_j w_j f(theta_j) for the traces of the
    example, with its standard error."""
    probes = alpha.shape[1]
    fs = {
        "log det(I + G)": lambda l: np.log1p(l),
        "Laplacian of F": lambda l: -0.5 / (1.0 + l) ** 2,
        "mu_2": lambda l: np.log(l) ** 2,
        "mu_3": lambda l: np.log(l) ** 3,
        "sum log lambda": lambda l: np.log(l),
    }
    per_probe = {k: [] for k in fs}
    for c in range(probes):
        bd = np.diag(alpha[:, c]) + np.diag(beta[:-1, c], 1)
        _, s, vt = np.linalg.svd(bd)
        nodes, weights = s**2, vt[:, 0] ** 2
        for k, f in fs.items():
            per_probe[k].append(n * np.sum(weights * f(nodes)))
    out = {}
    for k, xs in per_probe.items():
        xs = np.array(xs)
        out[k] = (xs.mean(), xs.std(ddof=1) / np.sqrt(len(xs)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--phase", choices=["slq", "svds"], required=True)
    ap.add_argument("--dir", default=DIR)
    ap.add_argument("--probes", type=int, default=8)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--reorth", action="store_true",
                    help="reorthogonalise every vector against its probe's earlier ones (two "
                         "classical Gram-Schmidt passes), as svds_scipy.py's quadrature")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--tol", type=float, default=1e-10)
    ap.add_argument("--solver", choices=["arpack", "propack"], default="arpack")
    args = ap.parse_args()
    print(f"numpy {np.__version__}, scipy {scipy.__version__}", flush=True)
    w, wt, fp = load(args.dir)
    n = fp.shape[0]
    if args.phase == "slq":
        t = time.perf_counter()
        if args.reorth:
            from svds_scipy import slq_full  # imports this module: not at the top

            mv, rmv = products(w, wt, fp)
            est = slq_full(mv, rmv, n, args.probes, args.steps, args.seed)
        else:
            est = slq(w, wt, fp, args.probes, args.steps, args.seed)
        dt = time.perf_counter() - t
        how = "full reorthogonalisation" if args.reorth else "no reorthogonalisation"
        print(f"quadrature: {args.probes} probes x {args.steps} steps, {how}, {dt:.1f} s")
        beta = 1.0
        log_det = est["log det(I + G)"]
        # log Z of Eq. (5.14) at beta = 1, m = 0: (N/2) log(2 pi / beta) - (1/2) log det(I + G).
        log_z = 0.5 * n * np.log(2 * np.pi / beta) - 0.5 * log_det[0]
        print(f"  log Z (Eq. 5.14)             {log_z:16.6f} ± {0.5 * log_det[1]:.3e}")
        for k, (m, s) in est.items():
            print(f"  {k:<28} {m:16.6f} ± {s:.3e} ({100 * s / abs(m):.2f}%)")
    else:
        mv, rmv = products(w, wt, fp)
        op = LinearOperator((n, n), matvec=mv, rmatvec=rmv, matmat=mv, rmatmat=rmv,
                            dtype=np.float64)
        t = time.perf_counter()
        s = svds(op, k=args.k, which="LM", tol=args.tol, solver=args.solver,
                 return_singular_vectors=False, random_state=0)
        dt = time.perf_counter() - t
        lam = np.sort(s)[::-1] ** 2
        c = -0.5 * np.sum(np.log(lam)) + 0.5 * n * np.log(2 * np.pi)
        print(f"{args.k} largest eigenvalues ({args.solver}): lambda_max {lam[0]:.6f}, "
              f"lambda_{args.k} {lam[-1]:.6f}, C_{args.k} (Eq. 10.5) {c:.6f}, {dt:.1f} s")


if __name__ == "__main__":
    main()
