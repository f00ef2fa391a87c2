"""The numbers of docs/reproduction.md that are not rows of a run's summary.md, derived from
the run's metrics.csv (every analysis epoch of every seed) and runs/*.losses.csv (U_d of every
epoch). Standard library only.

    python3 docs/reproduction/derive.py RUN_DIR

RUN_DIR is the --out directory of `cargo run --release --example deep_vs_shallow`.
"""

import csv
import glob
import math
import os
import statistics
import sys


def load(run):
    rows = list(csv.DictReader(open(os.path.join(run, "metrics.csv"))))
    for r in rows:
        for k, v in r.items():
            if k != "network":
                try:
                    r[k] = float(v) if v != "" else None
                except ValueError:
                    pass
    return rows


def by(rows, net):
    out = {}
    for r in rows:
        if r["network"] == net:
            out.setdefault(int(r["seed"]), []).append(r)
    for s in out:
        out[s].sort(key=lambda r: r["epoch"])
    return out


def at(runs, epoch, key):
    vals = []
    for rs in runs.values():
        for r in rs:
            if int(r["epoch"]) == epoch and r[key] is not None:
                vals.append(r[key])
    return vals


def fmt(vals):
    if not vals:
        return "-"
    m = statistics.mean(vals)
    if len(vals) == 1:
        return f"{m:.4g}"
    return f"{m:.4g} (seeds {min(vals):.4g} .. {max(vals):.4g})"


def losses(run, net):
    out = {}
    for p in sorted(glob.glob(os.path.join(run, "runs", f"{net}-seed*.losses.csv"))):
        seed = int(p.rsplit("seed", 1)[1].split(".")[0])
        out[seed] = [float(r["mean_batch_loss"]) for r in csv.DictReader(open(p))]
    return out


def slope(xs, ys):
    mx, my = statistics.mean(xs), statistics.mean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


def main(run):
    rows = load(run)
    nets = {n: by(rows, n) for n in ("deep", "shallow")}
    seeds = sorted(nets["deep"])
    last = int(max(r["epoch"] for r in rows))
    print(f"run {run}: seeds {seeds}, last epoch {last}")
    for net, runs in nets.items():
        print(f"\n## {net}")
        print("mu2 after one epoch:", fmt(at(runs, 1, "mu2")))
        for e in (100, 1000, last):
            print(f"epoch {e}: gap (widest space) {fmt(at(runs, e, 'gap'))}; "
                  f"beta (9.4) as printed {fmt(at(runs, e, 'beta_gap_eq_9_4'))}; "
                  f"r_w {fmt(at(runs, e, 'equilibrium_residual_w_gap'))}")
        ok_below = all(r["bulk_loss"] < r["boundary_loss"] for rs in runs.values() for r in rs)
        ok_fall = all(
            b["bulk_loss"] < a["bulk_loss"] and b["boundary_loss"] < a["boundary_loss"]
            for rs in runs.values() for a, b in zip(rs, rs[1:]))
        print(f"U < U_d at every analysis epoch: {ok_below}; both fall between analyses: {ok_fall}")
        c20_1 = at(runs, 1, "c20")
        c20_max = [max(r["c20"] for r in rs) for rs in runs.values()]
        c20_last = at(runs, last, "c20")
        print(f"C_20 at epoch 1 {fmt(c20_1)}, largest along the run {fmt(c20_max)}, at {last} {fmt(c20_last)}")
        curves = losses(run, net)
        rises = []
        for s, u in curves.items():
            rises.append(sum(1 for a, b in zip(u, u[1:]) if b > a) / (len(u) - 1))
        if rises:
            print(f"per epoch, U_d above the epoch before: {100 * min(rises):.0f}-{100 * max(rises):.0f}% of epochs")
        windows = [(10, 30), (30, 100), (100, 300), (300, 1000), (1000, 3000), (3000, 10000),
                   (10000, 30000)]
        parts = []
        for lo, hi in windows:
            ss = []
            for u in curves.values():
                if len(u) >= hi:
                    xs = [math.log(e) for e in range(lo, hi + 1)]
                    ys = [math.log(u[e - 1]) for e in range(lo, hi + 1)]
                    ss.append(slope(xs, ys))
            if ss:
                parts.append(f"{lo}-{hi}: {min(ss):.2f} .. {max(ss):.2f}")
        if parts:
            print("log-log slope of U_d by window (range over seeds):", "; ".join(parts))
    # The deep network more skewed than the shallow one at each analysis epoch of each seed.
    pairs = 0
    more = 0
    for s in seeds:
        d = {int(r["epoch"]): r for r in nets["deep"][s]}
        h = {int(r["epoch"]): r for r in nets["shallow"].get(s, [])}
        for e in d:
            if e in h:
                pairs += 1
                more += d[e]["skewness"] < h[e]["skewness"]
    print(f"\ndeep skewness below shallow at {more} of {pairs} (seed, epoch) pairs")
    dd = at(nets["deep"], last, "laplacian_f_gap")
    hh = at(nets["shallow"], last, "laplacian_f_gap")
    paired = [a - b for a, b in zip(dd, hh)]
    print(f"DeltaF deep - shallow at {last}, per seed: {[round(x, 2) for x in paired]}")


if __name__ == "__main__":
    main(sys.argv[1])
