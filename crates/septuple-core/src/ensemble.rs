//! Ensemble averages over a data set: the mean state `<x>` of Eq. (5.3) and the averaged bulk
//! loss U_0 of Eqs. (4.1)/(4.3).

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::bulk::BulkSolver;
use crate::error::CoreError;
use crate::loss::{Boundary, BulkLoss, Loss, Potential};
use crate::network::Network;
use crate::septuple::Septuple;

/// Which states represent the empirical ensemble of a data set.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateSource {
    /// The forward fixed states of Eq. (2.9) with the boundary data imposed (outputs replaced
    /// by their targets where targets are given).
    Forward,
    /// The minimisers of Eq. (3.2) found by a [`BulkSolver`].
    BulkSolved(BulkSolver),
}

/// The states of a data set under a [`StateSource`] (S x N).
pub fn ensemble_states<A: Activation>(
    net: &Septuple<A>,
    potential: &Potential,
    boundary: &Boundary<'_>,
    source: StateSource,
) -> Result<Array2<f64>, CoreError> {
    boundary.check(net)?;
    if boundary.n_samples() == 0 {
        return Err(CoreError::Empty {
            what: "boundary data".into(),
        });
    }
    match source {
        StateSource::Forward => {
            let mut x = net.forward_states(boundary.inputs)?;
            boundary.impose(net, &mut x)?;
            Ok(x)
        }
        StateSource::BulkSolved(solver) => Ok(solver.solve(net, potential, boundary)?.states),
    }
}

/// The mean state `<x>` of Eq. (5.3) over the states of a [`StateSource`].
pub fn mean_state_with<A: Activation>(
    net: &Septuple<A>,
    potential: &Potential,
    boundary: &Boundary<'_>,
    source: StateSource,
) -> Result<Array1<f64>, CoreError> {
    let x = ensemble_states(net, potential, boundary, source)?;
    Septuple::<A>::mean_rows(&x, "boundary data")
}

/// The ensemble-averaged bulk loss U_0 of Eqs. (4.1)/(4.3) for the empirical distribution
/// p_d of the boundary data: the mean over samples of H (Eq. 3.4 with `potential`) at the
/// states of `source`. With [`StateSource::BulkSolved`] this is Eq. (4.1) exactly (the minimum
/// over the bulk, to the solver's tolerance); with [`StateSource::Forward`] it is H at the
/// forward states, an upper bound on it.
pub fn bulk_loss_average<A: Activation>(
    net: &Septuple<A>,
    potential: &Potential,
    boundary: &Boundary<'_>,
    source: StateSource,
) -> Result<f64, CoreError> {
    let x = ensemble_states(net, potential, boundary, source)?;
    BulkLoss::with_potential(potential.clone()).mean(net, x.view(), boundary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Builtin, Init, Layered, Network};
    use approx::assert_abs_diff_eq;
    use ndarray::Array2;

    #[test]
    fn solved_average_is_below_forward_average() {
        let lay = Layered::random(&[3, 5, 2], Builtin::Tanh, Init::TorchLinear, 3).unwrap();
        let net = lay.to_septuple().unwrap();
        let x = Array2::from_shape_fn((15, 3), |(i, j)| ((i * 3 + j) as f64).cos());
        let t = Array2::from_shape_fn((15, 2), |(i, j)| if (i + j) % 2 == 0 { 1.0 } else { -1.0 });
        let bd = Boundary::new(x.view(), t.view());
        let fwd = bulk_loss_average(&net, &Potential::none(), &bd, StateSource::Forward).unwrap();
        let solved = bulk_loss_average(
            &net,
            &Potential::none(),
            &bd,
            StateSource::BulkSolved(BulkSolver::default()),
        )
        .unwrap();
        assert!(solved < fwd, "{solved} vs {fwd}");
        assert!(solved > 0.0);
        // The mean state from forward states equals the layered mean state.
        let m1 = Network::mean_state(&net, x.view()).unwrap();
        let m2 = lay.mean_state(x.view()).unwrap();
        assert_abs_diff_eq!(m1, m2, epsilon = 1e-15);
        assert!(matches!(
            Network::mean_state(&net, Array2::zeros((0, 3)).view()),
            Err(CoreError::Empty { .. })
        ));
    }
}
