//! The dense backend on matrices where faer's SVD iteration, run on the matrix as given, does
//! not converge: the retries on exact rewrites (transpose, row reversal) must still give the
//! singular values, to rounding.

use ndarray::Array2;
use septuple_spectral::{Faer, SpectrumBackend};

/// M = I - f'w of a 14-neuron random feedforward graph (two driven rows; found by the
/// property test of the dynamical count): faer 0.24's SVD of M^T (the row-major M as faer
/// reads it) reports NoConvergence.
fn stubborn() -> Array2<f64> {
    let mut m = Array2::<f64>::eye(14);
    for (j, v) in [
        (1, 0.0918262646549788),
        (3, 0.10233629357388888),
        (4, 0.21495709279528333),
        (7, -0.017363976267093222),
        (8, -0.13163409132413328),
        (11, -0.12159151282210696),
    ] {
        m[[12, j]] = v;
    }
    for (j, v) in [
        (0, -0.07609843935957844),
        (4, 0.08614581440928185),
        (8, 0.2092043268542429),
        (11, -0.09316236643160786),
    ] {
        m[[13, j]] = v;
    }
    m
}

#[test]
fn singular_values_survive_a_nonconverging_iteration() {
    let m = stubborn();
    let backend = Faer::default();
    let g = m.t().dot(&m);
    let eig = backend.symmetric_eigenvalues(g.view()).unwrap();
    for a in [
        m.clone(),
        m.t().to_owned(),
        m.t().as_standard_layout().to_owned(),
    ] {
        let s = backend.singular_values(a.view()).unwrap();
        assert_eq!(s.len(), 14);
        // sigma^2 against the eigenvalues of G = M^T M: both ascending; entries O(1), so
        // rounding of either is ~1e-15 and 1e-13 leaves a wide margin.
        for (si, li) in s.iter().zip(&eig) {
            assert!((si * si - li).abs() < 1e-13, "{si} {li}");
        }
        // G - I has rank <= 2r = 4 with r = 2 driven rows: ten unit singular values.
        assert_eq!(s.iter().filter(|x| (*x - 1.0).abs() < 1e-12).count(), 10);
    }
}
