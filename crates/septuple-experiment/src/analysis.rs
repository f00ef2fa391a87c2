//! What is computed at one analysed epoch of one run: the losses, the accuracies, the spectrum
//! of G at the mean forward state, its moments and complexities, the gap and the inverse
//! temperatures it implies.

use septuple_core::{Builtin, BulkSolver, Layered, Network};
use septuple_spectral::{spectrum, Faer, Method, SpectrumSummary, TopCount};
use septuple_thermo::{
    beta_from_energy_self_consistent, beta_from_gap, beta_from_gap_eq_9_4_as_printed,
    EigenvalueSplit,
};
use septuple_train::{evaluate, Context};
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
    /// The dynamical log lambda of G at the mean forward state (ascending); the other
    /// N - n_dynamical eigenvalues are 1.
    pub dynamical_log_lambda: Vec<f64>,
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
}

impl AnalysisRecord {
    /// All N eigenvalues lambda_i (the non-dynamical ones are 1).
    pub fn eigenvalues(&self) -> Vec<f64> {
        let mut l: Vec<f64> = self.dynamical_log_lambda.iter().map(|u| u.exp()).collect();
        l.resize(self.n_neurons, 1.0);
        l
    }
}

/// The analysis of the model of `ctx` (network `network`, seed `seed`) at its epoch: U_d of
/// Eq. (2.11) and U = U_0 of Eq. (4.1) (bulk states of Eq. (3.2) solved by `solver`, m = 0),
/// the spectrum of G of Eq. (5.6) at the mean forward state, mu_2 and mu_3 of Eqs. (9.5)-(9.6),
/// C_20 and C_(N-20) of Eq. (10.5), the gap, beta from the gap by Eq. (9.3) at `gamma` and by
/// Eq. (9.4) as printed, and beta from U = N_>(beta) / (2 beta) of Eqs. (7.5) and (10.1).
pub fn analyze(
    ctx: &Context<'_, Layered<Builtin>>,
    network: &str,
    seed: u64,
    solver: &BulkSolver,
    gamma: f64,
) -> Result<AnalysisRecord, ExperimentError> {
    let metrics = evaluate(ctx, Some((solver, 0.0)))?;
    let net = ctx.model;
    let mean = net.mean_state(ctx.train.inputs())?;
    let spec = spectrum(
        &net.to_septuple()?,
        mean.view(),
        Method::Auto,
        &Faer::default(),
    )?;
    let s = SpectrumSummary::new(&spec.eigenvalues)?;
    let bulk_loss = metrics.bulk_loss.unwrap_or(f64::NAN);
    let gap = s.gap.map(|g| g.log_lambda);
    let beta_energy = if bulk_loss > 0.0 {
        beta_from_energy_self_consistent(&spec.eigenvalues, bulk_loss, &EigenvalueSplit::default())?
            .first()
            .copied()
    } else {
        None
    };
    Ok(AnalysisRecord {
        network: network.into(),
        seed,
        epoch: ctx.epoch,
        boundary_loss: metrics.boundary_loss,
        bulk_loss,
        train_accuracy: metrics.train_accuracy.unwrap_or(f64::NAN),
        test_accuracy: metrics.test_accuracy.unwrap_or(f64::NAN),
        wall_seconds: metrics.wall_seconds,
        n_neurons: s.n_neurons,
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
        dynamical_log_lambda: s.dynamical,
    })
}

/// The name of C_(N-20) of Eq. (10.5) for a network of `n_neurons` neurons: `C_834` for
/// N = 854.
pub fn c_n_minus_20_label(n_neurons: usize) -> String {
    TopCount::AllBut(20).label(n_neurons)
}
