//! Small dense kernels: the per-sample solves, and a dot product in a fixed order.

/// Solve A x = b for a symmetric positive definite A (n x n, row-major) by Cholesky
/// factorisation, in place: `a` is overwritten by its factor and `b` by the solution.
/// Returns false (leaving `a` and `b` unspecified) if A is not numerically positive definite.
pub(crate) fn cholesky_solve(a: &mut [f64], n: usize, b: &mut [f64]) -> bool {
    debug_assert_eq!(a.len(), n * n);
    debug_assert_eq!(b.len(), n);
    // A = L L^T, L stored in the lower triangle.
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if !(d > 0.0) || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut v = a[i * n + j];
            for k in 0..j {
                v -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = v / d;
        }
    }
    // L y = b
    for i in 0..n {
        let mut v = b[i];
        for k in 0..i {
            v -= a[i * n + k] * b[k];
        }
        b[i] = v / a[i * n + i];
    }
    // L^T x = y
    for i in (0..n).rev() {
        let mut v = b[i];
        for k in i + 1..n {
            v -= a[k * n + i] * b[k];
        }
        b[i] = v / a[i * n + i];
    }
    true
}

/// a . b with four running sums (lanes k mod 4, then added in lane order) and the tail of
/// fewer than four terms added last: one fixed order of summation, so the same bits on any
/// machine and thread count, without the one long chain of dependent additions of a plain
/// loop. `a` and `b` are paired up to the shorter one's length. The kernels of the matrix-free
/// iterations (septuple-spectral) and the one-vector products of [`Layered`](crate::Layered)
/// sum with it.
pub fn dot_fixed_order(a: &[f64], b: &[f64]) -> f64 {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut acc = [0.0f64; 4];
    let (a4, b4) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (a4.remainder(), b4.remainder());
    for (x, y) in a4.zip(b4) {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_spd_system() {
        // A = M M^T + I for a fixed M; check A x = b by residual (backward stable: residual
        // ~ n eps |A| |x| ~ 1e-15 here).
        let n = 5;
        let m: Vec<f64> = (0..n * n)
            .map(|k| ((k * 7 % 11) as f64 - 5.0) / 3.0)
            .collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|k| m[i * n + k] * m[j * n + k]).sum::<f64>()
                    + if i == j { 1.0 } else { 0.0 };
            }
        }
        let b: Vec<f64> = (0..n).map(|i| i as f64 - 1.5).collect();
        let (mut f, mut x) = (a.clone(), b.clone());
        assert!(cholesky_solve(&mut f, n, &mut x));
        for i in 0..n {
            let ax: f64 = (0..n).map(|j| a[i * n + j] * x[j]).sum();
            assert!((ax - b[i]).abs() < 1e-12, "{ax} vs {}", b[i]);
        }
    }

    #[test]
    fn rejects_indefinite() {
        let mut a = vec![1.0, 2.0, 2.0, 1.0];
        let mut b = vec![1.0, 1.0];
        assert!(!cholesky_solve(&mut a, 2, &mut b));
    }

    /// The order is the documented one (lanes, then the tail), not a plain left-to-right sum:
    /// on values where the order changes the rounding, the lane order gives 2 exactly and the
    /// plain sum 0; unequal lengths pair up to the shorter.
    #[test]
    fn dot_fixed_order_sums_in_lanes_then_the_tail() {
        let a = [1e16, 1.0, 1.0, 1.0, -1e16, 1.0, 0.0, 0.0, 1.0];
        let b = [1.0; 9];
        // Lanes: (1e16 - 1e16) = 0, 1 + 1 = 2, 1 + 0 = 1, 1 + 0 = 1; tail 1: (0 + 2) + (1 + 1) + 1.
        assert_eq!(dot_fixed_order(&a, &b), 5.0);
        let plain: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_ne!(plain, 5.0);
        // Three terms are all tail, summed left to right: (1e16 + 1) + 1 rounds to 1e16.
        assert_eq!(dot_fixed_order(&a[..3], &b), 1e16);
        assert_eq!(dot_fixed_order(&[], &b), 0.0);
    }
}
