//! Block thick-restart Golub-Kahan-Lanczos: the k largest singular triplets of an operator A
//! (M = I - f'w or M^-1, Eq. 5.6) from products with blocks of b vectors.
//!
//! Why blocks: on a sparse network one product gathers, for each connection, a row of the
//! block; with b = 8 a row is one cache line, so a block product costs a few times one vector's
//! product rather than b times it, and the Gram-Schmidt of a block against the basis reads the
//! basis once for b vectors instead of once or twice per vector. The price is a Krylov space
//! of b start vectors, which needs more products than a single-vector one for the same Ritz
//! values.
//!
//! The recurrence keeps, with V (N x (size + b)) and U (N x size) orthonormal,
//!
//! A V_size = U_size H,    A^T U_size = V_size H^T + V_next T E^T,
//!
//! where H = U^T A V (size x size) is accumulated from the Gram-Schmidt coefficients of each
//! product block (so it is the projection itself, not only its banded part), V_next the last
//! b columns of V, T (b x b) the coupling of the last U block to V_next, and E the last b
//! columns of the identity. Each Ritz triplet (sigma, x, y) of H has A V y = sigma U x exactly
//! and the residual |A^T U x - sigma V y| = |T x_last| with x_last the last b entries of x:
//! the bound that stops the iteration. A thick restart keeps the best `keep` triplets:
//! V <- [V Y_keep, V_next], U <- U X_keep, H <- diag(sigma), and the coupling of V_next to the
//! kept U becomes T X_keep,last, which the next product block is orthogonalised against.
//!
//! Every block is orthonormalised by Cholesky QR applied twice (stable while the block's
//! condition number is below about 1e5, which the check of the Cholesky pivots enforces), and
//! otherwise by modified Gram-Schmidt column by column, where a column that vanishes (the
//! block's Krylov space became invariant) is replaced by a fresh seeded random vector
//! orthogonal to everything before with a zero coupling, which keeps both relations.

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut2};
use rayon::prelude::*;
use septuple_core::dot_fixed_order;

use crate::error::SpectralError;
use crate::matrix_free::{
    rademacher, ranked_svd, BlockOp, MatrixFreeOptions, TopSingular, BREAKDOWN,
};

/// Rows per task of the block sweeps: 1024 rows of a 72-column basis are 576 KiB, which stay
/// in the second-level cache between the update and the projection of a chunk.
const ROWS: usize = 1024;

/// ARPACK's constant for the DGKS test (dgetv0, dsaitr: 0.717 ~ 1/sqrt(2)).
const DGKS: f64 = 0.717;

/// The smallest sine of the angle between a column and the span of the block's earlier
/// columns for which Cholesky QR is used: a block whose condition number is above about its
/// inverse goes column by column instead.
const CHOLESKY_MIN_SINE: f64 = 1e-5;

/// Stream numbers of the seeded random vectors: the start block and the replacements of
/// vanished columns (far from the probes' streams 0, 1, ... of the quadrature).
const START_STREAM: u64 = u64::MAX - (1 << 20);
const REPLACEMENT_STREAM: u64 = u64::MAX - (1 << 21);

/// The shape of a block run: `m` basis vectors (`keep` kept at a restart, then blocks of `b`
/// until `m`), chosen from the options alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockShape {
    pub(crate) b: usize,
    pub(crate) m: usize,
    pub(crate) keep: usize,
}

impl BlockShape {
    /// For k wanted values and a requested basis of `basis` vectors (at least 2k + 10): keep
    /// (basis + k) / 2 at a restart, as the single-vector run does, and add whole blocks of b
    /// until at least `basis` vectors.
    pub(crate) fn new(k: usize, b: usize, basis: usize) -> BlockShape {
        let basis = basis.max(2 * k + 10);
        let keep = ((basis + k) / 2).max(k);
        let blocks = basis.saturating_sub(keep).div_ceil(b).max(1);
        BlockShape {
            b,
            m: keep + blocks * b,
            keep,
        }
    }
}

// Invariant of this module: every block and basis is allocated here by `Array2::zeros` in
// standard (row-major) layout and never sliced before these calls, so each is one contiguous
// slice; and every chunk is cut at a multiple of the row length, so it holds whole rows.

/// A row-major array of this module (a block N x b or a basis N x ld) as one slice.
fn slice(x: &Array2<f64>) -> &[f64] {
    x.as_slice()
        .unwrap_or_else(|| unreachable!("the arrays of block_thick_restart are standard"))
}

fn slice_mut(x: &mut Array2<f64>) -> &mut [f64] {
    x.as_slice_mut()
        .unwrap_or_else(|| unreachable!("the arrays of block_thick_restart are standard"))
}

/// A chunk of whole rows of a row-major array with rows of `width` as a matrix view.
fn rows_view(chunk: &mut [f64], width: usize) -> ArrayViewMut2<'_, f64> {
    ArrayViewMut2::from_shape((chunk.len() / width, width), chunk)
        .unwrap_or_else(|_| unreachable!("a chunk of whole rows"))
}

/// x -= q c for row-major x (N x b), q (N x s, any strides), c (s x b), over fixed chunks of
/// rows in parallel (each element one product of a row with a column: no thread dependence).
fn subtract_product(x: &mut Array2<f64>, q: ArrayView2<'_, f64>, c: ArrayView2<'_, f64>) {
    let b = x.ncols();
    if b == 0 || c.nrows() == 0 {
        return;
    }
    slice_mut(x)
        .par_chunks_mut(ROWS * b)
        .enumerate()
        .for_each(|(t, xc)| {
            let lo = t * ROWS;
            let mut xv = rows_view(xc, b);
            let len = xv.nrows();
            general_mat_mul(-1.0, &q.slice(s![lo..lo + len, ..]), &c, 1.0, &mut xv);
        });
}

/// One sweep over fixed chunks of rows: x -= q h (when given), then (q^T x, x^T x) of the
/// result, each the sum over chunks, in chunk order, of the chunk's products.
fn sweep(
    q: ArrayView2<'_, f64>,
    x: &mut Array2<f64>,
    h: Option<&Array2<f64>>,
) -> (Array2<f64>, Array2<f64>) {
    let (s_cols, b) = (q.ncols(), x.ncols());
    let parts: Vec<(Array2<f64>, Array2<f64>)> = slice_mut(x)
        .par_chunks_mut(ROWS * b)
        .enumerate()
        .map(|(t, xc)| {
            let lo = t * ROWS;
            let mut xv = rows_view(xc, b);
            let qc = q.slice(s![lo..lo + xv.nrows(), ..]);
            if let Some(h) = h {
                general_mat_mul(-1.0, &qc, h, 1.0, &mut xv);
            }
            (qc.t().dot(&xv), xv.t().dot(&xv))
        })
        .collect();
    let mut proj = Array2::<f64>::zeros((s_cols, b));
    let mut gram = Array2::<f64>::zeros((b, b));
    for (p, g) in &parts {
        proj += p;
        gram += g;
    }
    (proj, gram)
}

/// Classical Gram-Schmidt of the block x against the orthonormal columns of q, repeated when
/// the DGKS test asks for it (some column kept less than 0.717 of its length): returns the
/// coefficients subtracted (q^T x of the input, s x b) and the Gram matrix x^T x of the result.
fn orthogonalise(q: ArrayView2<'_, f64>, x: &mut Array2<f64>) -> (Array2<f64>, Array2<f64>) {
    let (h1, g1) = sweep(q, x, None);
    if q.ncols() == 0 {
        return (h1, g1);
    }
    let (h2, g2) = sweep(q, x, Some(&h1));
    let kept_enough = (0..x.ncols()).all(|c| g2[[c, c]] >= DGKS * DGKS * g1[[c, c]]);
    if kept_enough {
        return (h1, g2);
    }
    let (_, g3) = sweep(q, x, Some(&h2));
    (h1 + h2, g3)
}

/// The upper Cholesky factor R of a Gram matrix (g = R^T R), or None when a column's sine to
/// the span of the earlier ones is below [`CHOLESKY_MIN_SINE`] or its length below `tiny`.
fn cholesky(g: &Array2<f64>, tiny: f64) -> Option<Array2<f64>> {
    let b = g.nrows();
    let mut r = Array2::<f64>::zeros((b, b));
    for c in 0..b {
        let gcc = g[[c, c]];
        if !(gcc > tiny * tiny) || !gcc.is_finite() {
            return None;
        }
        for i in 0..c {
            let mut v = g[[i, c]];
            for l in 0..i {
                v -= r[[l, i]] * r[[l, c]];
            }
            r[[i, c]] = v / r[[i, i]];
        }
        let d = gcc - (0..c).map(|l| r[[l, c]] * r[[l, c]]).sum::<f64>();
        if !(d > CHOLESKY_MIN_SINE * CHOLESKY_MIN_SINE * gcc) {
            return None;
        }
        r[[c, c]] = d.sqrt();
    }
    Some(r)
}

/// x <- x R^-1 for upper triangular R (forward substitution along each row), in parallel
/// over rows.
fn divide_upper(x: &mut Array2<f64>, r: &Array2<f64>) {
    let b = x.ncols();
    slice_mut(x).par_chunks_mut(ROWS * b).for_each(|xc| {
        for row in xc.chunks_mut(b) {
            for c in 0..b {
                let mut v = row[c];
                for i in 0..c {
                    v -= row[i] * r[[i, c]];
                }
                row[c] = v / r[[c, c]];
            }
        }
    });
}

/// Orthonormalises the block x (N x b, orthogonal to `q` already, Gram matrix `gram`) in
/// place and returns R (b x b, upper triangular) with x_in = x_out R. Columns that vanish
/// (length below `tiny`) are replaced by seeded random vectors orthogonal to q and to the
/// block, with a zero diagonal in R; `replaced` counts them and numbers their streams.
fn block_qr(
    x: &mut Array2<f64>,
    gram: &Array2<f64>,
    q: ArrayView2<'_, f64>,
    tiny: f64,
    seed: u64,
    replaced: &mut u64,
) -> Array2<f64> {
    if let Some(r1) = cholesky(gram, tiny) {
        divide_upper(x, &r1);
        let (_, g) = sweep(q.slice(s![.., ..0]), x, None);
        match cholesky(&g, 0.5) {
            Some(r2) => {
                divide_upper(x, &r2);
                return r2.dot(&r1);
            }
            None => return column_qr(x, q, tiny, seed, replaced).dot(&r1),
        }
    }
    column_qr(x, q, tiny, seed, replaced)
}

/// Modified Gram-Schmidt of the block's columns one by one, each twice against the earlier
/// ones, with the replacement of vanished columns of [`block_qr`] (the slow, safe path for
/// nearly dependent blocks).
fn column_qr(
    x: &mut Array2<f64>,
    q: ArrayView2<'_, f64>,
    tiny: f64,
    seed: u64,
    replaced: &mut u64,
) -> Array2<f64> {
    let (n, b) = x.dim();
    let mut r = Array2::<f64>::zeros((b, b));
    let mut done: Vec<Array1<f64>> = Vec::with_capacity(b);
    for c in 0..b {
        let mut col = x.column(c).to_owned();
        for _ in 0..2 {
            for (i, d) in done.iter().enumerate() {
                let h = dot(d, &col);
                col.scaled_add(-h, d);
                r[[i, c]] += h;
            }
        }
        let norm = dot(&col, &col).sqrt();
        if norm > tiny && norm.is_finite() {
            col /= norm;
            r[[c, c]] = norm;
        } else {
            // The block's space is invariant in this direction: continue in a fresh one.
            col = rademacher(n, seed, REPLACEMENT_STREAM + *replaced);
            *replaced += 1;
            for _ in 0..2 {
                let h = q.t().dot(&col);
                col -= &q.dot(&h);
                for d in &done {
                    let h = dot(d, &col);
                    col.scaled_add(-h, d);
                }
            }
            let norm = dot(&col, &col).sqrt();
            col /= norm;
        }
        x.column_mut(c).assign(&col);
        done.push(col);
    }
    r
}

fn dot(a: &Array1<f64>, b: &Array1<f64>) -> f64 {
    match (a.as_slice(), b.as_slice()) {
        (Some(a), Some(b)) => dot_fixed_order(a, b),
        // Both are fresh `to_owned` / `rademacher` vectors of this module: contiguous.
        _ => unreachable!("owned vectors are contiguous"),
    }
}

/// Columns `at..at + b` of the row-major basis `basis` (N x ld) <- the block x (N x b).
fn store(basis: &mut Array2<f64>, at: usize, x: &Array2<f64>) {
    let ld = basis.ncols();
    let b = x.ncols();
    slice_mut(basis)
        .par_chunks_mut(ROWS * ld)
        .zip(slice(x).par_chunks(ROWS * b))
        .for_each(|(rows, xs)| {
            for (row, xr) in rows.chunks_mut(ld).zip(xs.chunks(b)) {
                row[at..at + b].copy_from_slice(xr);
            }
        });
}

/// basis[:, ..keep] <- basis[:, ..size] R (R size x keep) in place, chunk of rows by chunk.
fn rotate(basis: &mut Array2<f64>, size: usize, r: &Array2<f64>) {
    let ld = basis.ncols();
    let keep = r.ncols();
    slice_mut(basis).par_chunks_mut(ROWS * ld).for_each(|rows| {
        let mut view = rows_view(rows, ld);
        let product = view.slice(s![.., ..size]).dot(r);
        view.slice_mut(s![.., ..keep]).assign(&product);
    });
}

/// The k largest singular triplets' values and residual bounds of `op` (on R^n) by block
/// thick-restart Golub-Kahan-Lanczos (see the module docs), from a block of `shape.b` seeded
/// Rademacher vectors. `steps` counts products of single vectors (b per block product).
/// Never claims an exhausted Krylov space: a vanished direction is replaced.
pub(crate) fn block_thick_restart(
    op: &dyn BlockOp,
    n: usize,
    k: usize,
    shape: BlockShape,
    options: &MatrixFreeOptions,
) -> Result<TopSingular, SpectralError> {
    let BlockShape { b, m, keep } = shape;
    if b == 0 || m + b > n || keep < k || keep >= m {
        return Err(SpectralError::Parameter {
            what: "extreme_block",
            value: b.to_string(),
            expected: "a block of >= 1 vectors whose basis (plus one block) fits in R^N",
        });
    }
    let seed = options.seed;
    let budget = options.extreme_max_steps;
    let mut vb = Array2::<f64>::zeros((n, m + b));
    let mut ub = Array2::<f64>::zeros((n, m));
    let mut h = Array2::<f64>::zeros((m, m));
    let mut blk = Array2::<f64>::zeros((n, b));
    for c in 0..b {
        blk.column_mut(c)
            .assign(&rademacher(n, seed, START_STREAM + c as u64));
    }
    let mut p = Array2::<f64>::zeros((n, b));
    let mut q = Array2::<f64>::zeros((n, b));
    let mut replaced = 0u64;
    let (_, g) = sweep(vb.slice(s![.., ..0]), &mut blk, None);
    block_qr(
        &mut blk,
        &g,
        vb.slice(s![.., ..0]),
        0.0,
        seed,
        &mut replaced,
    );
    store(&mut vb, 0, &blk);
    let mut kept = 0usize;
    // The coupling of the current V block to the U columns `known_at..` before it: P's
    // known component U[:, known_at..known_at + rows] known^T.
    let mut known: Option<(usize, Array2<f64>)> = None;
    let mut t = Array2::<f64>::zeros((b, b));
    let mut steps = 0usize;
    let mut scale = 0.0f64;
    loop {
        let mut j = kept;
        while j + b <= m {
            // P = A V_j - U known^T, orthogonalised against U[:, ..j]: H[.., j..j + b].
            op.apply_into(blk.view(), p.view_mut())?;
            steps += b;
            let mut col = Array2::<f64>::zeros((j + b, b));
            if let Some((at, c)) = known.take() {
                let rows = c.ncols();
                let ct = c.t();
                subtract_product(&mut p, ub.slice(s![.., at..at + rows]), ct);
                col.slice_mut(s![at..at + rows, ..]).assign(&ct);
            }
            let (coef, gram) = orthogonalise(ub.slice(s![.., ..j]), &mut p);
            col.slice_mut(s![..j, ..]).scaled_add(1.0, &coef);
            let tiny = BREAKDOWN * scale.max(f64::MIN_POSITIVE);
            let r = block_qr(
                &mut p,
                &gram,
                ub.slice(s![.., ..j]),
                tiny,
                seed,
                &mut replaced,
            );
            col.slice_mut(s![j.., ..]).assign(&r);
            h.slice_mut(s![..j + b, j..j + b]).assign(&col);
            scale = (0..b).map(|c| r[[c, c]].abs()).fold(scale, f64::max);
            store(&mut ub, j, &p);
            // Q = A^T U_j - V_j R^T, orthogonalised against V[:, ..j + b]: V_next T.
            op.apply_t_into(p.view(), q.view_mut())?;
            subtract_product(&mut q, blk.view(), r.t());
            let (_, gram) = orthogonalise(vb.slice(s![.., ..j + b]), &mut q);
            let tiny = BREAKDOWN * scale.max(f64::MIN_POSITIVE);
            t = block_qr(
                &mut q,
                &gram,
                vb.slice(s![.., ..j + b]),
                tiny,
                seed,
                &mut replaced,
            );
            scale = (0..b).map(|c| t[[c, c]].abs()).fold(scale, f64::max);
            store(&mut vb, j + b, &q);
            std::mem::swap(&mut blk, &mut q);
            known = Some((j, t.clone()));
            j += b;
            if steps >= budget {
                break;
            }
        }
        let size = j;
        let (pu, sigma, qv, idx) = ranked_svd(h.slice(s![..size, ..size]))?;
        // |T x_last| for each Ritz vector x of H.
        let last = |i: usize| Array1::from_shape_fn(b, |r| pu[(size - b + r, i)]);
        let residual: Vec<f64> = idx
            .iter()
            .map(|&i| {
                let tx = t.dot(&last(i));
                tx.dot(&tx).sqrt()
            })
            .collect();
        let kk = k.min(size);
        let smax = sigma.first().copied().unwrap_or(0.0);
        let converged = residual[..kk]
            .iter()
            .all(|&r| r <= options.extreme_tol * smax);
        if converged || steps >= budget {
            return Ok(TopSingular {
                sigma: sigma[..kk].to_vec(),
                residual: residual[..kk].to_vec(),
                steps,
                converged,
                exhausted: false,
                one_sided: false,
                left_lost: false,
            });
        }
        // Restart: V <- [V Y_keep, V_next], U <- U X_keep, H <- diag(sigma_keep), and V_next's
        // coupling to the kept U columns T X_keep,last.
        let y_keep = Array2::from_shape_fn((size, keep), |(i, c)| qv[(i, idx[c])]);
        let x_keep = Array2::from_shape_fn((size, keep), |(i, c)| pu[(i, idx[c])]);
        rotate(&mut vb, size, &y_keep);
        store(&mut vb, keep, &blk);
        rotate(&mut ub, size, &x_keep);
        h.fill(0.0);
        for c in 0..keep {
            h[[c, c]] = sigma[c];
        }
        let x_last = x_keep.slice(s![size - b.., ..]).to_owned();
        known = Some((0, t.dot(&x_last)));
        kept = keep;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block with a nearly dependent column (sine 1e-9 to an earlier one, below
    /// [`CHOLESKY_MIN_SINE`]) and a zero column goes column by column: the result is
    /// orthonormal (the zero column replaced by a random vector), and x_in = x_out R to
    /// rounding (|x| ~ 45, eps |x| ~ 1e-14; the bound 1e-11 leaves room for the 1e-9 column's
    /// cancellation).
    #[test]
    fn dependent_blocks_are_orthonormalised_with_replacement() {
        let n = 2000;
        let a = rademacher(n, 1, 0);
        let c = rademacher(n, 1, 1);
        let noise = rademacher(n, 1, 2);
        let mut x = Array2::<f64>::zeros((n, 4));
        x.column_mut(0).assign(&a);
        x.column_mut(1).assign(&(&a + &(&noise * 1e-9)));
        x.column_mut(2).assign(&c);
        let x_in = x.clone();
        let empty = Array2::<f64>::zeros((n, 0));
        let (_, g) = sweep(empty.view(), &mut x, None);
        assert!(cholesky(&g, 1e-12).is_none());
        let mut replaced = 0;
        let r = block_qr(&mut x, &g, empty.view(), 1e-12, 3, &mut replaced);
        assert_eq!(replaced, 1);
        assert_eq!(r[[3, 3]], 0.0);
        let gram = x.t().dot(&x);
        let eye = Array2::<f64>::eye(4);
        assert!((&gram - &eye).iter().all(|e| e.abs() < 1e-13), "{gram}");
        let back = x.dot(&r);
        assert!((&back - &x_in).iter().all(|e| e.abs() < 1e-11));
        // A well-conditioned block takes Cholesky QR twice, with the same guarantees.
        let mut y = Array2::<f64>::zeros((n, 2));
        y.column_mut(0).assign(&a);
        y.column_mut(1).assign(&(&a + &c));
        let y_in = y.clone();
        let (_, g) = sweep(empty.view(), &mut y, None);
        assert!(cholesky(&g, 1e-12).is_some());
        let r = block_qr(&mut y, &g, empty.view(), 1e-12, 3, &mut replaced);
        assert_eq!(replaced, 1);
        let gram = y.t().dot(&y);
        assert!((&gram - &Array2::<f64>::eye(2))
            .iter()
            .all(|e| e.abs() < 1e-13));
        assert!((&y.dot(&r) - &y_in).iter().all(|e| e.abs() < 1e-11));
    }
}
