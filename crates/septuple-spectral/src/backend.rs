//! Dense linear algebra behind a small trait: singular values and symmetric eigenvalues.

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
        let mut s = as_faer(m, |a| {
            use faer::linalg::svd::{svd, svd_scratch, ComputeSvdVectors};
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
        })?;
        s.sort_by(f64::total_cmp);
        Ok(s)
    }

    fn symmetric_eigenvalues(&self, m: ArrayView2<'_, f64>) -> Result<Vec<f64>, SpectralError> {
        check_square(m)?;
        check_finite("matrix", m)?;
        let par = self.par();
        let mut e = as_faer(m, |a| {
            use faer::linalg::evd::{
                self_adjoint_evd, self_adjoint_evd_scratch, ComputeEigenvectors,
            };
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

impl Faer {
    /// The eigendecomposition behind [`SpectrumBackend::symmetric_eigen`].
    fn eigen(&self, m: ArrayView2<'_, f64>) -> Result<(Vec<f64>, Array2<f64>), SpectralError> {
        check_square(m)?;
        check_finite("matrix", m)?;
        let n = m.nrows();
        // A symmetric matrix equals its transpose, so either memory order reads as itself.
        let (values, vectors) = as_faer(m, |a| {
            let evd =
                a.self_adjoint_eigen(faer::Side::Lower)
                    .map_err(|e| SpectralError::Backend {
                        reason: format!("symmetric eigendecomposition did not converge: {e:?}"),
                    })?;
            let (u, d) = (evd.U(), evd.S());
            let values: Vec<f64> = (0..n).map(|k| d[k]).collect();
            let vectors = Array2::from_shape_fn((n, n), |(i, k)| u[(i, k)]);
            Ok::<_, SpectralError>((values, vectors))
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
