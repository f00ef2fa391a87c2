//! What is computed at one analyzed epoch of one run: the losses, the accuracies, the spectrum
//! of G at the mean forward state, its moments and complexities, the gap, the inverse
//! temperatures it implies, and the laws of learning against the previous analyzed epoch.

use ndarray::{Array2, Axis};
use septuple_core::{
    mean_boundary_loss, Boundary, Builtin, BulkLoss, BulkSolver, Layered, Loss, Network, Potential,
};
use septuple_spectral::{analyze_states, AnalysisOptions, Faer, TopCount};
use septuple_thermo::{
    beta_from_energy_self_consistent, beta_from_gap, beta_from_gap_eq_9_4_as_printed,
    EigenvalueSplit, LawChecker, StepRecord, TrajectoryPoint,
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
}

impl AnalysisRecord {
    /// All N eigenvalues lambda_i of G, ascending, exactly as computed.
    pub fn eigenvalues(&self) -> Vec<f64> {
        let mut l = self.eigenvalues_not_one.clone();
        l.extend(std::iter::repeat_n(1.0, self.n_unit_eigenvalues));
        l.sort_by(f64::total_cmp);
        l
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
    let (Some(b0), Some(b1)) = (from.beta_energy, to.beta_energy) else {
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
