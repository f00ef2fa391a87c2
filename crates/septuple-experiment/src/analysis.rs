//! What is computed at one analyzed epoch of one run: the losses, the accuracies, the spectrum
//! of G at the mean forward state, its moments and complexities, the gap, the inverse
//! temperatures it implies, and the laws of learning against the previous analyzed epoch.

use ndarray::{Array2, Axis};
use septuple_core::{
    mean_boundary_loss, Activation, Boundary, Builtin, BulkLoss, BulkSolver, DenseBudget, Layered,
    Loss, Network, Potential,
};
use septuple_spectral::{
    analyze_states, equilibrium_states, gap_two_means, AnalysisOptions, Equilibrium, Faer, TopCount,
};
use septuple_thermo::{
    beta_from_energy_self_consistent, beta_from_gap, beta_from_gap_eq_9_4_as_printed,
    DensityFactor, EigenvalueSplit, Gaussian, LawChecker, StepRecord, TrajectoryPoint,
};
use septuple_train::{accuracy, Context, Dataset};
use serde::{Deserialize, Serialize};

use crate::error::ExperimentError;

/// Everything recorded at one analysis epoch of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalysisRecord {
    /// Network name.
    pub network: String,
    /// Seed.
    pub seed: u64,
    /// Completed epochs.
    pub epoch: usize,
    /// U_d: boundary loss (2.11) over the training set.
    pub boundary_loss: f64,
    /// U: bulk loss at the bulk-solved states, U_0 of (4.1), over the training set.
    pub bulk_loss: f64,
    /// Training accuracy.
    pub train_accuracy: f64,
    /// Test accuracy.
    pub test_accuracy: f64,
    /// Training wall time so far (s).
    pub wall_seconds: f64,
    /// N.
    pub n_neurons: usize,
    /// The eigenvalues of G at the mean forward state that are not exactly 1, ascending, as
    /// computed (a lossless record: with [`n_unit_eigenvalues`](Self::n_unit_eigenvalues)
    /// ones they are the whole spectrum, bit for bit).
    pub eigenvalues_not_one: Vec<f64>,
    /// How many eigenvalues are exactly 1 (the N - k that the structure of G fixes there).
    pub n_unit_eigenvalues: usize,
    /// The number of dynamical eigenvalues (|log lambda| above the summary's tolerance).
    pub n_dynamical: usize,
    /// sum log lambda (Eqs. 7.7-7.8).
    pub sum_log_lambda: f64,
    /// mu_2 = Tr (log G)^2 (9.5).
    pub mu2: f64,
    /// mu_3 = Tr (log G)^3 (9.6).
    pub mu3: f64,
    /// Variance of the dynamical log lambda.
    pub variance: f64,
    /// Skewness of the dynamical log lambda.
    pub skewness: f64,
    /// C_20 of Eq. (10.5): over the 20 largest eigenvalues.
    pub c20: f64,
    /// C_(N-20) of Eq. (10.5): over the N - 20 largest eigenvalues (all but the 20 smallest);
    /// C_834 for the paper's N = 854.
    #[serde(alias = "c_all_but_20")]
    pub c_n_minus_20: f64,
    /// Gap position in log lambda.
    pub gap: Option<f64>,
    /// beta from the gap by the relation that follows from (9.3) at the configured gamma
    /// ([`ExperimentConfig::gamma`](crate::ExperimentConfig::gamma)).
    pub beta_gap: Option<f64>,
    /// beta from the gap by (9.4) as printed.
    pub beta_gap_eq_9_4: Option<f64>,
    /// The smallest beta solving U = N_>(beta) / (2 beta) (7.5, 10.1) with U the bulk loss.
    pub beta_energy: Option<f64>,
    /// The laws of learning (7.6, 7.11) from the previous analyzed epoch that has a beta from
    /// the energy to this one (each state at its own beta; see
    /// [`LawChecker`]); None for the first such epoch.
    #[serde(default)]
    pub laws: Option<StepRecord>,
    /// How many eigenvalues lie below the gap (the negative dynamical log lambda below it).
    #[serde(default)]
    pub gap_n_below: Option<usize>,
    /// The gap by the second rule, the two-means split of the negative dynamical log lambda
    /// ([`gap_two_means`]).
    #[serde(default)]
    pub gap_two_means: Option<f64>,
    /// How many eigenvalues lie below the two-means gap.
    #[serde(default)]
    pub gap_two_means_n_below: Option<usize>,
    /// gamma of Eq. (9.2) measured from this spectrum: the fraction of the N eigenvalues below
    /// the gap, [`gap_n_below`](Self::gap_n_below) / N.
    #[serde(default)]
    pub gamma_measured: Option<f64>,
    /// beta from the gap by the relation that follows from (9.3) at the measured gamma.
    #[serde(default)]
    pub beta_gap_measured: Option<f64>,
    /// beta from the gap by the relation that follows from (9.3) at Fig. 1's gamma = 1/3.
    #[serde(default)]
    pub beta_gap_third: Option<f64>,
    /// The Laplacian DeltaF of Eq. (8.10) (m = 0) at [`beta_gap_measured`](Self::beta_gap_measured).
    #[serde(default)]
    pub laplacian_f_gap: Option<f64>,
    /// log(sigma(beta) / sigma(0)) per unit alpha at
    /// [`beta_gap_measured`](Self::beta_gap_measured): the entropy-density factor of
    /// Eqs. (8.6)-(8.11) with DeltaF of (8.10) integrated over beta
    /// ([`DensityFactor::Integrated`]).
    #[serde(default)]
    pub log_density_factor_gap: Option<f64>,
    /// 1/2 |x - f(w x + b)|^2 over the non-input neurons at the mean forward state x of
    /// Eq. (5.3): the constant that (5.5) drops because it is exact only at a fixed point.
    #[serde(default)]
    pub mean_state_residual: Option<f64>,
    /// The laws of learning (7.6, 7.11) from the previous analyzed epoch that has a beta from
    /// the gap to this one, each state at its own [`beta_gap_measured`](Self::beta_gap_measured):
    /// a temperature at which the split into large and small eigenvalues is informative.
    #[serde(default)]
    pub laws_gap: Option<StepRecord>,
    /// U(beta) = 1/2 tr G (I + beta G)^-1 of Eq. (6.1) (m = 0) at
    /// [`beta_gap_measured`](Self::beta_gap_measured): the model's average bulk loss, to set
    /// beside the measured U_0 ([`bulk_loss`](Self::bulk_loss)).
    #[serde(default)]
    pub energy_gap: Option<f64>,
    /// ||dU/dw||_F of the equilibrium condition (6.2) at that beta: the total derivative of
    /// U(beta) in the weights through the mean state ([`septuple_spectral::equilibrium_states`]).
    #[serde(default)]
    pub equilibrium_grad_w_norm_gap: Option<f64>,
    /// ||dU/db||_2 of (6.2) at that beta, over the non-input neurons.
    #[serde(default)]
    pub equilibrium_grad_b_norm_gap: Option<f64>,
    /// The scale-free residual of (6.2) in the weights, r_w = ||dU/dw||_F ||w||_F / U: zero at
    /// the equilibrium, and a bound on |dU|/U per unit relative change of w.
    #[serde(default)]
    pub equilibrium_residual_w_gap: Option<f64>,
    /// The same in the biases, r_b = ||dU/db||_2 ||b||_2 / U.
    #[serde(default)]
    pub equilibrium_residual_b_gap: Option<f64>,
    /// The mean-state term of log Z in Eq. (5.11) at that beta (m = 0), the term (5.12)-(5.14)
    /// drop: -1/2 sum_i beta lambda_i a_i^2 / (1 + beta lambda_i).
    #[serde(default)]
    pub log_z_mean_term_gap: Option<f64>,
    /// The rest of log Z at that beta, Eq. (5.14): -1/2 sum_i log(1 + beta lambda_i) +
    /// (N/2) log 2 pi, against which the mean-state term is to be read.
    #[serde(default)]
    pub log_z_large_n_gap: Option<f64>,
}

impl AnalysisRecord {
    /// All N eigenvalues lambda_i of G, ascending, exactly as computed.
    pub fn eigenvalues(&self) -> Vec<f64> {
        let mut l = self.eigenvalues_not_one.clone();
        l.extend(std::iter::repeat_n(1.0, self.n_unit_eigenvalues));
        l.sort_by(f64::total_cmp);
        l
    }

    /// mu_2 per dynamical eigenvalue, mu_2 / n_dyn (NaN without dynamical eigenvalues).
    pub fn mu2_per_dynamical(&self) -> f64 {
        per(self.mu2, self.n_dynamical)
    }

    /// mu_3 per dynamical eigenvalue, mu_3 / n_dyn (NaN without dynamical eigenvalues).
    pub fn mu3_per_dynamical(&self) -> f64 {
        per(self.mu3, self.n_dynamical)
    }

    /// Whether the two gap rules put the same number of eigenvalues below the gap (None
    /// unless both found one).
    pub fn gap_rules_agree(&self) -> Option<bool> {
        Some(self.gap_n_below? == self.gap_two_means_n_below?)
    }

    /// The dynamical log lambda (|log lambda| above `tolerance`), ascending: the values the
    /// spectrum's summary reads its moments from (Figs. 4-5).
    pub fn dynamical_log_lambda(&self, tolerance: f64) -> Vec<f64> {
        let mut u: Vec<f64> = self.eigenvalues_not_one.iter().map(|l| l.ln()).collect();
        u.sort_by(f64::total_cmp);
        u.retain(|v| v.abs() > tolerance);
        u
    }
}

fn per(value: f64, count: usize) -> f64 {
    if count == 0 {
        f64::NAN
    } else {
        value / count as f64
    }
}

/// 1/2 |x - f(w x + b)|^2 over the non-input neurons at state `x`: zero exactly at a fixed
/// point of Eq. (2.9), where the expansion (5.5) around x drops it.
pub fn fixed_point_residual<N: Network + ?Sized>(
    net: &N,
    x: ndarray::ArrayView1<'_, f64>,
) -> Result<f64, ExperimentError> {
    let y = net.preactivation(x)?;
    let inputs = net.inputs();
    let mut is_input = vec![false; net.n_neurons()];
    for &i in inputs.iter() {
        is_input[i] = true;
    }
    Ok(0.5
        * (0..net.n_neurons())
            .filter(|&i| !is_input[i])
            .map(|i| (x[i] - net.activation(i).value(y[i])).powi(2))
            .sum::<f64>())
}

/// The quantities that follow from the gap: both rules, gamma measured from the spectrum,
/// beta from the gap three ways, and DeltaF and the entropy-density factor at the measured
/// gamma's beta.
struct GapQuantities {
    n_below: Option<usize>,
    two_means: Option<f64>,
    two_means_n_below: Option<usize>,
    gamma_measured: Option<f64>,
    beta_measured: Option<f64>,
    beta_third: Option<f64>,
    laplacian_f: Option<f64>,
    log_density_factor: Option<f64>,
}

fn gap_quantities(
    eigenvalues: &[f64],
    gap: Option<septuple_spectral::Gap>,
    dynamical: &[f64],
) -> Result<GapQuantities, ExperimentError> {
    let n = eigenvalues.len();
    let second = gap_two_means(dynamical);
    let gamma_measured = gap.map(|g| g.n_below as f64 / n as f64);
    let beta_measured = match (gap, gamma_measured) {
        (Some(g), Some(gm)) => beta_from_gap(g.log_lambda, gm).ok(),
        _ => None,
    };
    let (laplacian_f, log_density_factor) = match beta_measured {
        Some(b) => {
            let model = Gaussian::new(eigenvalues)?;
            (
                Some(model.laplacian_f(b)?),
                Some(model.log_entropy_density_factor(b, 1.0, DensityFactor::Integrated)?),
            )
        }
        None => (None, None),
    };
    Ok(GapQuantities {
        n_below: gap.map(|g| g.n_below),
        two_means: second.map(|g| g.log_lambda),
        two_means_n_below: second.map(|g| g.n_below),
        gamma_measured,
        beta_measured,
        beta_third: gap.and_then(|g| beta_from_gap(g.log_lambda, 1.0 / 3.0).ok()),
        laplacian_f,
        log_density_factor,
    })
}

/// The training-set quantities of one forward pass: the forward states (Eq. 2.9), U_d of
/// Eq. (2.11) (mean over samples of half the squared output error) and the accuracy.
struct TrainPass {
    states: Array2<f64>,
    boundary_loss: f64,
    accuracy: f64,
}

fn train_pass(net: &Layered<Builtin>, data: &Dataset) -> Result<TrainPass, ExperimentError> {
    let states = net.forward_states(data.inputs())?;
    let outputs = states.select(Axis(1), &net.outputs());
    Ok(TrainPass {
        boundary_loss: mean_boundary_loss(outputs.view(), data.targets())?,
        accuracy: data
            .labels()
            .map_or(f64::NAN, |l| accuracy(outputs.view(), l)),
        states,
    })
}

/// The analysis of the model of `ctx` (network `network`, seed `seed`) at its epoch: U_d of
/// Eq. (2.11) and U = U_0 of Eq. (4.1) (bulk states of Eq. (3.2) solved by `solver` from the
/// forward states, m = 0), the spectrum of G of Eq. (5.6) at the mean forward state (Eq. 5.3),
/// mu_2 and mu_3 of Eqs. (9.5)-(9.6), C_20 and C_(N-20) of Eq. (10.5), the gap, beta from the
/// gap by Eq. (9.3) at `gamma` and by Eq. (9.4) as printed, and beta from
/// U = N_>(beta) / (2 beta) of Eqs. (7.5) and (10.1). One forward pass over the training set
/// serves every training-set quantity.
pub fn analyze(
    ctx: &Context<'_, Layered<Builtin>>,
    network: &str,
    seed: u64,
    solver: &BulkSolver,
    gamma: f64,
) -> Result<AnalysisRecord, ExperimentError> {
    let net = ctx.model;
    let pass = train_pass(net, ctx.train)?;
    let test_accuracy = match ctx.test {
        Some(t) => t.labels().map_or(Ok(f64::NAN), |l| {
            Ok::<_, ExperimentError>(accuracy(net.predict(t.inputs())?.view(), l))
        })?,
        None => f64::NAN,
    };
    // The bulk solve needs the dense septuple; the spectrum is taken from it too.
    let sep = net.to_septuple()?;
    let boundary = Boundary::new(ctx.train.inputs(), ctx.train.targets());
    let potential = Potential::mass(0.0);
    let solution = solver.solve_from(&sep, &potential, &boundary, pass.states.view())?;
    let bulk_loss =
        BulkLoss::with_potential(potential).mean(&sep, solution.states.view(), &boundary)?;
    let a = analyze_states(
        &sep,
        pass.states.view(),
        &AnalysisOptions::default(),
        &Faer::default(),
    )?;
    let s = a.exact_summary()?;
    let gap = s.gap.map(|g| g.log_lambda);
    let g = gap_quantities(&a.eigenvalues, s.gap, &s.dynamical)?;
    let mean_state_residual = fixed_point_residual(&sep, a.mean_state.view())?;
    // The equilibrium condition (6.2) and the terms of log Z (5.11) at the gap's beta, from
    // the same forward states (the same mean state and G).
    let eq: Option<Equilibrium> = g
        .beta_measured
        .map(|b| {
            equilibrium_states(
                &sep,
                pass.states.view(),
                b,
                DenseBudget::default(),
                &Faer::default(),
            )
        })
        .transpose()?;
    let beta_energy = if bulk_loss > 0.0 {
        beta_from_energy_self_consistent(&a.eigenvalues, bulk_loss, &EigenvalueSplit::default())?
            .first()
            .copied()
    } else {
        None
    };
    let eigenvalues_not_one: Vec<f64> = a
        .eigenvalues
        .iter()
        .copied()
        // Exact: the structured path sets the N - k fixed eigenvalues to 1.0 exactly, and a
        // lossless record keeps every other value as computed.
        .filter(|&l| l.to_bits() != 1.0f64.to_bits())
        .collect();
    Ok(AnalysisRecord {
        network: network.into(),
        seed,
        epoch: ctx.epoch,
        boundary_loss: pass.boundary_loss,
        bulk_loss,
        train_accuracy: pass.accuracy,
        test_accuracy,
        wall_seconds: ctx.elapsed.as_secs_f64(),
        n_neurons: s.n_neurons,
        n_unit_eigenvalues: a.eigenvalues.len() - eigenvalues_not_one.len(),
        eigenvalues_not_one,
        n_dynamical: s.n_dynamical,
        sum_log_lambda: s.sum_log_lambda,
        mu2: s.mu2,
        mu3: s.mu3,
        variance: s.variance,
        skewness: s.skewness,
        c20: s.complexity(TopCount::Largest(20)).unwrap_or(f64::NAN),
        c_n_minus_20: s.complexity(TopCount::AllBut(20)).unwrap_or(f64::NAN),
        beta_gap: gap.and_then(|u| beta_from_gap(u, gamma).ok()),
        beta_gap_eq_9_4: gap.and_then(|u| beta_from_gap_eq_9_4_as_printed(u).ok()),
        gap,
        beta_energy,
        laws: None,
        gap_n_below: g.n_below,
        gap_two_means: g.two_means,
        gap_two_means_n_below: g.two_means_n_below,
        gamma_measured: g.gamma_measured,
        beta_gap_measured: g.beta_measured,
        beta_gap_third: g.beta_third,
        laplacian_f_gap: g.laplacian_f,
        log_density_factor_gap: g.log_density_factor,
        mean_state_residual: Some(mean_state_residual),
        laws_gap: None,
        energy_gap: eq.as_ref().map(|e| e.energy),
        equilibrium_grad_w_norm_gap: eq.as_ref().map(|e| e.grad_w_norm),
        equilibrium_grad_b_norm_gap: eq.as_ref().map(|e| e.grad_b_norm),
        equilibrium_residual_w_gap: eq.as_ref().map(|e| e.residual_w),
        equilibrium_residual_b_gap: eq.as_ref().map(|e| e.residual_b),
        log_z_mean_term_gap: eq.as_ref().map(|e| e.log_z.mean_term),
        log_z_large_n_gap: eq.as_ref().map(|e| e.log_z.without_mean()),
    })
}

/// The laws of learning between two analyzed epochs of a run, each at its own beta from the
/// energy: the step of [`LawChecker::check`] on the two-state trajectory (Eqs. 7.6, 7.11).
/// None unless both have a beta.
pub fn laws_between(
    checker: &LawChecker,
    from: &AnalysisRecord,
    to: &AnalysisRecord,
) -> Result<Option<StepRecord>, ExperimentError> {
    laws_at(checker, from, to, |r| r.beta_energy)
}

/// The laws of learning between two analyzed epochs of a run, each at its own beta from the
/// gap at the measured gamma ([`AnalysisRecord::beta_gap_measured`]): Eqs. (7.6), (7.11) at a
/// temperature where some eigenvalues are small and some large. None unless both have one.
pub fn laws_between_at_gap(
    checker: &LawChecker,
    from: &AnalysisRecord,
    to: &AnalysisRecord,
) -> Result<Option<StepRecord>, ExperimentError> {
    laws_at(checker, from, to, |r| r.beta_gap_measured)
}

fn laws_at(
    checker: &LawChecker,
    from: &AnalysisRecord,
    to: &AnalysisRecord,
    beta: impl Fn(&AnalysisRecord) -> Option<f64>,
) -> Result<Option<StepRecord>, ExperimentError> {
    let (Some(b0), Some(b1)) = (beta(from), beta(to)) else {
        return Ok(None);
    };
    let (l0, l1) = (from.eigenvalues(), to.eigenvalues());
    let points = [
        TrajectoryPoint {
            beta: b0,
            spectrum: &l0,
        },
        TrajectoryPoint {
            beta: b1,
            spectrum: &l1,
        },
    ];
    Ok(checker.check(&points)?.steps.first().copied())
}

/// The name of C_(N-20) of Eq. (10.5) for a network of `n_neurons` neurons: `C_834` for
/// N = 854.
pub fn c_n_minus_20_label(n_neurons: usize) -> String {
    TopCount::AllBut(20).label(n_neurons)
}

#[cfg(test)]
mod tests {
    use super::*;
    use septuple_core::Layered;

    /// A record holding only what the law checks read.
    fn record(eigenvalues: &[f64], beta: f64) -> AnalysisRecord {
        AnalysisRecord {
            network: "t".into(),
            seed: 0,
            epoch: 0,
            boundary_loss: 0.0,
            bulk_loss: 0.0,
            train_accuracy: 0.0,
            test_accuracy: 0.0,
            wall_seconds: 0.0,
            n_neurons: eigenvalues.len(),
            eigenvalues_not_one: eigenvalues.to_vec(),
            n_unit_eigenvalues: 0,
            n_dynamical: eigenvalues.len(),
            sum_log_lambda: 0.0,
            mu2: 0.0,
            mu3: 0.0,
            variance: 0.0,
            skewness: 0.0,
            c20: 0.0,
            c_n_minus_20: 0.0,
            gap: None,
            beta_gap: None,
            beta_gap_eq_9_4: None,
            beta_energy: Some(1e5),
            laws: None,
            gap_n_below: None,
            gap_two_means: None,
            gap_two_means_n_below: None,
            gamma_measured: None,
            beta_gap_measured: Some(beta),
            beta_gap_third: None,
            laplacian_f_gap: None,
            log_density_factor_gap: None,
            mean_state_residual: None,
            laws_gap: None,
            energy_gap: None,
            equilibrium_grad_w_norm_gap: None,
            equilibrium_grad_b_norm_gap: None,
            equilibrium_residual_w_gap: None,
            equilibrium_residual_b_gap: None,
            log_z_mean_term_gap: None,
            log_z_large_n_gap: None,
        }
    }

    /// Spectra of feedforward networks have sum log lambda = 0 (Eqs. 7.7-7.8), so at a beta
    /// where every eigenvalue is large, S = log Z + beta U of (7.1) tends to a constant minus
    /// 1/2 sum log lambda, the same for every such spectrum: the second law cannot fail there.
    /// At a beta from the gap it can: un-learning (the spread of log lambda shrinking) raises
    /// S and is flagged.
    #[test]
    fn the_second_law_is_informative_at_the_gap_temperature_only() {
        let spread =
            |s: f64| -> Vec<f64> { [-2.0, -1.0, 0.5, 1.0, 1.5].map(|u| (s * u).exp()).to_vec() };
        let (learned, unlearned) = (spread(1.5), spread(0.5));
        let checker = LawChecker::new(EigenvalueSplit::default(), 1e-9, 0.0).unwrap();
        let forward =
            laws_between_at_gap(&checker, &record(&unlearned, 0.6), &record(&learned, 0.6))
                .unwrap()
                .unwrap();
        let backward =
            laws_between_at_gap(&checker, &record(&learned, 0.6), &record(&unlearned, 0.6))
                .unwrap()
                .unwrap();
        assert!(forward.second_law_violation.is_none(), "{forward:?}");
        let rise = backward.second_law_violation.expect("un-learning raises S");
        assert!(rise > 0.1, "{backward:?}");
        // At beta = 1e5 (the order of beta from U in the experiment) the same step changes S
        // by O(N / beta) only.
        let cold = laws_between(&checker, &record(&learned, 0.6), &record(&unlearned, 0.6))
            .unwrap()
            .unwrap();
        assert!(cold.delta_entropy.abs() < 1e-3 * rise, "{cold:?}");
    }

    /// The residual of Eq. (2.9) vanishes at a forward state (a fixed point) and not at the
    /// mean of several (where (5.5) drops it).
    #[test]
    fn fixed_point_residual_vanishes_at_fixed_points_only() {
        let net = Layered::<Builtin>::from_layers(
            vec![
                ndarray::array![[0.5, -1.0], [0.3, 0.8], [-0.7, 0.2]],
                ndarray::array![[1.0, -0.5, 0.25]],
            ],
            vec![ndarray::array![0.1, -0.2, 0.3], ndarray::array![0.05]],
            vec![Builtin::Tanh, Builtin::Tanh],
        )
        .unwrap();
        let inputs = ndarray::array![[1.0, 0.0], [-1.0, 2.0], [0.5, 0.5]];
        let states = net.forward_states(inputs.view()).unwrap();
        for x in states.rows() {
            assert!(fixed_point_residual(&net, x).unwrap() < 1e-30);
        }
        let mean = states.mean_axis(Axis(0)).unwrap();
        assert!(fixed_point_residual(&net, mean.view()).unwrap() > 1e-4);
    }
}
