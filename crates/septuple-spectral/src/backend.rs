//! Dense linear algebra behind a small trait: singular values and symmetric eigenvalues.

use faer::linalg::solvers::SvdError;
use ndarray::{Array2, ArrayView2};

use crate::error::SpectralError;

/// Dense spectral routines. Every implementation returns its values in ascending order.
pub trait SpectrumBackend: Sync {
    /// The singular values of a general matrix, ascending.
    fn singular_values(&self, m: ArrayView2<'_, f64>) -> Result<Vec<f64>, SpectralError>;
    /// The eigenvalues of a symmetric matrix, ascending.
    fn symmetric_eigenvalues(&self, m: ArrayView2<'_, f64>) -> Result<Vec<f64>, SpectralError>;
    /// The eigenvalues of a symmetric matrix, ascending, with orthonormal eigenvectors: column
    /// k of the matrix belongs to eigenvalue k.
    fn symmetric_eigen(
        &self,
        m: ArrayView2<'_, f64>,
    ) -> Result<(Vec<f64>, Array2<f64>), SpectralError>;
}

/// Sort eigenpairs by ascending eigenvalue (stable, so equal values keep their order).
fn sort_pairs(values: Vec<f64>, vectors: Array2<f64>) -> (Vec<f64>, Array2<f64>) {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let sorted = idx.iter().map(|&k| values[k]).collect();
    (sorted, vectors.select(ndarray::Axis(1), &idx))
}

/// The default backend: `faer`, pure Rust, nothing to install.
///
/// `threads` sets faer's parallelism (1: sequential). Its blocked algorithms split work by
/// that number, not by the threads that happen to run it, so a fixed `threads` gives the
/// same bits on any machine load; the default is 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Faer {
    /// Parallelism passed to faer.
    pub threads: usize,
}

impl Default for Faer {
    fn default() -> Self {
        Faer { threads: 1 }
    }
}

impl Faer {
    fn par(&self) -> faer::Par {
        if self.threads <= 1 {
            faer::Par::Seq
        } else {
            faer::Par::rayon(self.threads)
        }
    }
}

/// A contiguous copy (or view) in either memory order, with its shape.
fn as_faer<R>(m: ArrayView2<'_, f64>, f: impl FnOnce(faer::MatRef<'_, f64>) -> R) -> R {
    let (r, c) = m.dim();
    if let Some(s) = m.as_slice() {
        // Row-major data read as the column-major transpose: same singular values, and the
        // same eigenvalues for a symmetric matrix.
        f(faer::MatRef::from_column_major_slice(s, c, r))
    } else if let Some(s) = m
        .as_slice_memory_order()
        .filter(|_| m.t().is_standard_layout())
    {
        f(faer::MatRef::from_column_major_slice(s, r, c))
    } else {
        let owned = m.to_owned();
        let s = owned.as_slice().expect("owned arrays are contiguous");
        f(faer::MatRef::from_column_major_slice(s, c, r))
    }
}

/// `f` on `a` and, while it fails, on exact rewrites of `a` with the same singular values:
/// its transpose, its rows reversed, and both. faer's SVD iteration occasionally reports
/// NoConvergence on matrices with clusters of exactly equal singular values (about 1 in 10^5
/// of I plus a few random rows, the shape of M = I - f'w); the rewrites take other paths
/// through the same iteration and, in every such case found, converge. Returns the first
/// success, or the last error.
pub(crate) fn with_sv_rewrites<T, E>(
    a: faer::MatRef<'_, f64>,
    mut f: impl FnMut(faer::MatRef<'_, f64>, SvRewrite) -> Result<T, E>,
) -> Result<T, E> {
    let mut last = None;
    for rw in [
        SvRewrite::Identity,
        SvRewrite::Transpose,
        SvRewrite::ReverseRows,
        SvRewrite::TransposeReverseRows,
    ] {
        let b = match rw {
            SvRewrite::Identity => a,
            SvRewrite::Transpose => a.transpose(),
            SvRewrite::ReverseRows => a.reverse_rows(),
            SvRewrite::TransposeReverseRows => a.transpose().reverse_rows(),
        };
        match f(b, rw) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("at least one rewrite is tried"))
}

/// Which rewrite of A [`with_sv_rewrites`] handed over: B = A, A^T, P A or P A^T, with P the
/// row reversal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SvRewrite {
    Identity,
    Transpose,
    ReverseRows,
    TransposeReverseRows,
}

/// The SVD A = U diag(s) V^T of a small dense matrix on the calling thread's faer parallelism,
/// retried on the rewrites of [`with_sv_rewrites`] (the factors mapped back to A's: for B = A^T
/// U and V swap; for B = P A the rows of U are reversed). `thin` keeps min(m, n) columns of U
/// and V. s in faer's order (nonincreasing).
pub(crate) fn dense_svd(a: faer::MatRef<'_, f64>, thin: bool) -> Result<DenseSvd, SvdError> {
    with_sv_rewrites(a, |b, rw| svd_of_rewrite(b, rw, thin))
}

/// U, s, V of [`dense_svd`].
pub(crate) type DenseSvd = (faer::Mat<f64>, Vec<f64>, faer::Mat<f64>);

/// The SVD of A from that of its rewrite `b` = `rw`(A).
fn svd_of_rewrite(
    b: faer::MatRef<'_, f64>,
    rw: SvRewrite,
    thin: bool,
) -> Result<DenseSvd, SvdError> {
    let (u, s, v) = if thin {
        let d = b.thin_svd()?;
        let s = d.S().column_vector().iter().copied().collect::<Vec<f64>>();
        (d.U().to_owned(), s, d.V().to_owned())
    } else {
        let d = b.svd()?;
        let s = d.S().column_vector().iter().copied().collect::<Vec<f64>>();
        (d.U().to_owned(), s, d.V().to_owned())
    };
    let rev = |m: faer::Mat<f64>| {
        let r = m.nrows();
        faer::Mat::<f64>::from_fn(r, m.ncols(), |i, j| m[(r - 1 - i, j)])
    };
    // B = A^T = U S V^T: A = V S U^T. B = P A: A = (P U) S V^T (P is its own inverse).
    // B = P A^T: A^T = (P U) S V^T, A = V S (P U)^T.
    Ok(match rw {
        SvRewrite::Identity => (u, s, v),
        SvRewrite::Transpose => (v, s, u),
        SvRewrite::ReverseRows => (rev(u), s, v),
        SvRewrite::TransposeReverseRows => (v, s, rev(u)),
    })
}

fn check_finite(what: &'static str, m: ArrayView2<'_, f64>) -> Result<(), SpectralError> {
    if m.iter().any(|v| !v.is_finite()) {
        return Err(SpectralError::NonFinite { what });
    }
    Ok(())
}

impl SpectrumBackend for Faer {
    fn singular_values(&self, m: ArrayView2<'_, f64>) -> Result<Vec<f64>, SpectralError> {
        check_finite("matrix", m)?;
        let par = self.par();
        let mut s = as_faer(m, |a0| {
            use faer::linalg::svd::{svd, svd_scratch, ComputeSvdVectors};
            with_sv_rewrites(a0, |a, _| {
                let k = a.nrows().min(a.ncols());
                let mut d = faer::diag::Diag::<f64>::zeros(k);
                let mut buf = faer::dyn_stack::MemBuffer::new(svd_scratch::<f64>(
                    a.nrows(),
                    a.ncols(),
                    ComputeSvdVectors::No,
                    ComputeSvdVectors::No,
                    par,
                    Default::default(),
                ));
                svd(
                    a,
                    d.as_mut(),
                    None,
                    None,
                    par,
                    faer::dyn_stack::MemStack::new(&mut buf),
                    Default::default(),
                )
                .map_err(|e| SpectralError::Backend {
                    reason: format!("SVD did not converge: {e:?}"),
                })?;
                Ok::<_, SpectralError>(d.column_vector().iter().copied().collect::<Vec<f64>>())
            })
        })?;
        s.sort_by(f64::total_cmp);
        Ok(s)
    }

    fn symmetric_eigenvalues(&self, m: ArrayView2<'_, f64>) -> Result<Vec<f64>, SpectralError> {
        check_square(m)?;
        check_finite("matrix", m)?;
        let par = self.par();
        let mut e = as_faer(m, |a0| {
            use faer::linalg::evd::{
                self_adjoint_evd, self_adjoint_evd_scratch, ComputeEigenvectors,
            };
            with_evd_rewrite(a0, |a, _| {
                let n = a.nrows();
                let mut d = faer::diag::Diag::<f64>::zeros(n);
                let mut buf = faer::dyn_stack::MemBuffer::new(self_adjoint_evd_scratch::<f64>(
                    n,
                    ComputeEigenvectors::No,
                    par,
                    Default::default(),
                ));
                self_adjoint_evd(
                    a,
                    d.as_mut(),
                    None,
                    par,
                    faer::dyn_stack::MemStack::new(&mut buf),
                    Default::default(),
                )
                .map_err(|e| SpectralError::Backend {
                    reason: format!("symmetric eigensolver did not converge: {e:?}"),
                })?;
                Ok::<_, SpectralError>(d.column_vector().iter().copied().collect::<Vec<f64>>())
            })
        })?;
        e.sort_by(f64::total_cmp);
        Ok(e)
    }

    fn symmetric_eigen(
        &self,
        m: ArrayView2<'_, f64>,
    ) -> Result<(Vec<f64>, Array2<f64>), SpectralError> {
        self.eigen(m)
    }
}

/// `f` on the symmetric `a` and, if it fails, on P a P^T (P the reversal, `true` passed):
/// the same eigenvalues, eigenvectors with their rows reversed, another path through faer's
/// iteration (the retry of [`with_sv_rewrites`] for the symmetric solvers).
fn with_evd_rewrite<T, E>(
    a: faer::MatRef<'_, f64>,
    mut f: impl FnMut(faer::MatRef<'_, f64>, bool) -> Result<T, E>,
) -> Result<T, E> {
    f(a, false).or_else(|_| f(a.reverse_rows_and_cols(), true))
}

impl Faer {
    /// The eigendecomposition behind [`SpectrumBackend::symmetric_eigen`].
    fn eigen(&self, m: ArrayView2<'_, f64>) -> Result<(Vec<f64>, Array2<f64>), SpectralError> {
        check_square(m)?;
        check_finite("matrix", m)?;
        let n = m.nrows();
        // A symmetric matrix equals its transpose, so either memory order reads as itself.
        let (values, vectors) = as_faer(m, |a0| {
            with_evd_rewrite(a0, |a, reversed| {
                let evd = a.self_adjoint_eigen(faer::Side::Lower).map_err(|e| {
                    SpectralError::Backend {
                        reason: format!("symmetric eigendecomposition did not converge: {e:?}"),
                    }
                })?;
                let (u, d) = (evd.U(), evd.S());
                let values: Vec<f64> = (0..n).map(|k| d[k]).collect();
                let vectors = Array2::from_shape_fn((n, n), |(i, k)| {
                    u[(if reversed { n - 1 - i } else { i }, k)]
                });
                Ok::<_, SpectralError>((values, vectors))
            })
        })?;
        Ok(sort_pairs(values, vectors))
    }
}

pub(crate) fn check_square(m: ArrayView2<'_, f64>) -> Result<(), SpectralError> {
    if m.nrows() != m.ncols() {
        return Err(SpectralError::Shape {
            what: "symmetric matrix",
            got: vec![m.nrows(), m.ncols()],
            expected: vec![m.nrows(), m.nrows()],
        });
    }
    Ok(())
}

/// LAPACK through `ndarray-linalg` and the system OpenBLAS (feature `openblas`).
#[cfg(feature = "openblas")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lapack;

#[cfg(feature = "openblas")]
impl SpectrumBackend for Lapack {
    fn singular_values(&self, m: ArrayView2<'_, f64>) -> Result<Vec<f64>, SpectralError> {
        use ndarray_linalg::SVD;
        check_finite("matrix", m)?;
        let owned = m.to_owned();
        let (_, s, _) = owned
            .svd(false, false)
            .map_err(|e| SpectralError::Backend {
                reason: format!("LAPACK SVD failed: {e}"),
            })?;
        let mut s = s.to_vec();
        s.sort_by(f64::total_cmp);
        Ok(s)
    }

    fn symmetric_eigenvalues(&self, m: ArrayView2<'_, f64>) -> Result<Vec<f64>, SpectralError> {
        // Straight to LAPACK's dsyev with jobz = 'N': ndarray-linalg's `eigvalsh` asks for the
        // eigenvectors too and throws them away, which dominates the cost at N in the thousands.
        use ndarray_linalg::{AllocatedArray, AllocatedArrayMut, Lapack as _, UPLO};
        check_square(m)?;
        check_finite("matrix", m)?;
        let mut owned = m.to_owned();
        let lapack_err = |e: &dyn std::fmt::Display| SpectralError::Backend {
            reason: format!("LAPACK dsyev failed: {e}"),
        };
        let layout = owned.square_layout().map_err(|e| lapack_err(&e))?;
        let a = owned.as_allocated_mut().map_err(|e| lapack_err(&e))?;
        let mut e = f64::eigh(false, layout, UPLO::Lower, a).map_err(|e| lapack_err(&e))?;
        e.sort_by(f64::total_cmp);
        Ok(e)
    }

    fn symmetric_eigen(
        &self,
        m: ArrayView2<'_, f64>,
    ) -> Result<(Vec<f64>, Array2<f64>), SpectralError> {
        use ndarray_linalg::{Eigh, UPLO};
        check_square(m)?;
        check_finite("matrix", m)?;
        let (e, v) = m
            .to_owned()
            .eigh(UPLO::Lower)
            .map_err(|e| SpectralError::Backend {
                reason: format!("LAPACK dsyev failed: {e}"),
            })?;
        Ok(sort_pairs(e.to_vec(), v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every rewrite's factors, mapped back, reconstruct A (square, tall and wide; thin and
    /// full), with orthonormal columns.
    #[test]
    fn every_rewrite_maps_back_to_the_svd_of_a() {
        for (r, c) in [(5, 5), (7, 4), (3, 6)] {
            let a = faer::Mat::<f64>::from_fn(r, c, |i, j| ((i * 7 + j * 3) % 11) as f64 - 4.5);
            for rw in [
                SvRewrite::Identity,
                SvRewrite::Transpose,
                SvRewrite::ReverseRows,
                SvRewrite::TransposeReverseRows,
            ] {
                let b = match rw {
                    SvRewrite::Identity => a.as_ref(),
                    SvRewrite::Transpose => a.transpose(),
                    SvRewrite::ReverseRows => a.reverse_rows(),
                    SvRewrite::TransposeReverseRows => a.transpose().reverse_rows(),
                };
                for thin in [true, false] {
                    let (u, s, v) = svd_of_rewrite(b, rw, thin).unwrap();
                    let k = r.min(c);
                    assert_eq!(u.nrows(), r, "{rw:?}");
                    assert_eq!(v.nrows(), c, "{rw:?}");
                    for i in 0..r {
                        for j in 0..c {
                            let x: f64 = (0..k).map(|l| u[(i, l)] * s[l] * v[(j, l)]).sum();
                            // Entries O(5), singular values O(30): rounding ~ 1e-13.
                            assert!((x - a[(i, j)]).abs() < 1e-12, "{rw:?} {thin} {i} {j}");
                        }
                    }
                    for (m, what) in [(&u, "U"), (&v, "V")] {
                        for p in 0..m.ncols() {
                            for q in 0..m.ncols() {
                                let d: f64 = (0..m.nrows()).map(|i| m[(i, p)] * m[(i, q)]).sum();
                                let e = if p == q { 1.0 } else { 0.0 };
                                assert!((d - e).abs() < 1e-12, "{what} {rw:?} {thin}");
                            }
                        }
                    }
                }
            }
        }
    }

    /// The first failure: `f` sees the next rewrite, the first success returns.
    #[test]
    fn rewrites_are_tried_in_turn_until_one_succeeds() {
        let a = faer::Mat::<f64>::identity(3, 3);
        let mut seen = Vec::new();
        let r: Result<SvRewrite, ()> = with_sv_rewrites(a.as_ref(), |_, rw| {
            seen.push(rw);
            if seen.len() < 3 {
                Err(())
            } else {
                Ok(rw)
            }
        });
        assert_eq!(r, Ok(SvRewrite::ReverseRows));
        let all: Result<(), usize> = with_sv_rewrites(a.as_ref(), |_, _| Err(7));
        assert_eq!(all, Err(7));
    }
}
