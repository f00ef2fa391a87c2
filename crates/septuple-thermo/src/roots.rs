//! Root bracketing and bisection, shared by the inversions and the landscape of Eq. (9.3).

/// A root of `f` in `[lo, hi]` by bisection, given that `f(lo)` and `f(hi)` differ in sign (or
/// one of them is zero). Stops when the bracket is as narrow as floating point allows.
pub(crate) fn bisect(f: impl Fn(f64) -> f64, mut lo: f64, mut hi: f64) -> f64 {
    let mut f_lo = f(lo);
    let f_hi = f(hi);
    if f_lo == 0.0 {
        return lo;
    }
    if f_hi == 0.0 {
        return hi;
    }
    debug_assert!(f_lo.signum() != f_hi.signum(), "bisect needs a sign change");
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        let f_mid = f(mid);
        if f_mid == 0.0 {
            return mid;
        }
        if f_mid.signum() == f_lo.signum() {
            lo = mid;
            f_lo = f_mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Every sign change of `f` on the grid `lo + k (hi - lo) / cells` (k = 0..=cells), refined by
/// bisection; grid nodes where `f` is exactly zero are roots too. Sorted ascending, each root
/// reported once.
pub(crate) fn bracket_all(f: impl Fn(f64) -> f64, lo: f64, hi: f64, cells: usize) -> Vec<f64> {
    let cells = cells.max(1);
    let node = |k: usize| {
        if k == cells {
            hi
        } else {
            lo + (hi - lo) * (k as f64) / (cells as f64)
        }
    };
    let mut roots = Vec::new();
    let mut x0 = node(0);
    let mut f0 = f(x0);
    if f0 == 0.0 {
        roots.push(x0);
    }
    for k in 1..=cells {
        let x1 = node(k);
        let f1 = f(x1);
        if f1 == 0.0 {
            roots.push(x1);
        } else if f0 != 0.0 && f0.signum() != f1.signum() {
            roots.push(bisect(&f, x0, x1));
        }
        x0 = x1;
        f0 = f1;
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bisect_finds_sqrt_two() {
        let r = bisect(|x| x * x - 2.0, 0.0, 2.0);
        // Bisection runs to the last representable midpoint: a few ulps of sqrt 2.
        assert!((r - 2f64.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn bracket_all_finds_every_sign_change_once() {
        // sin has roots at k pi; 0 is a grid node, pi, 2 pi and 3 pi are bracketed.
        let hi = 3.0 * std::f64::consts::PI + 0.5;
        let roots = bracket_all(f64::sin, 0.0, hi, 1000);
        assert_eq!(roots.len(), 4);
        for (k, r) in roots.iter().enumerate() {
            assert!((r - k as f64 * std::f64::consts::PI).abs() < 1e-12);
        }
        // A double root (no sign change) is not a bracket.
        assert!(bracket_all(|x: f64| (x - 0.3).powi(2), 0.0, 1.0, 7).is_empty());
    }
}
