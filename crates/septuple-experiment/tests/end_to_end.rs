//! The whole experiment on a few hundred samples: training, analysis, files, resume.

use septuple_experiment::{
    paper_networks, run, write_outputs, AnalysisRecord, ExperimentConfig, RunOptions,
};
use septuple_train::{Batch, SgdConfig};

#[test]
fn tiny_experiment_end_to_end() {
    let dir = std::env::temp_dir().join(format!("septuple-exp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let experiment = ExperimentConfig {
        sgd: SgdConfig {
            learning_rate: 0.05,
            batch: Batch::Size(50),
            epochs: 5,
            ..SgdConfig::default()
        },
        seeds: vec![1, 2],
        train_samples: 200,
        test_samples: 100,
        networks: paper_networks(),
        histogram_epochs: vec![2, 5],
        ..ExperimentConfig::quick()
    }
    .check()
    .unwrap();
    let records = run(&experiment, &dir, &RunOptions::default()).unwrap();
    // Analysis epochs 1, 2, 5 for two networks and two seeds.
    assert_eq!(records.len(), 12);
    for r in &records {
        assert!(r.sum_log_lambda.abs() < 1e-10, "{}", r.sum_log_lambda);
        assert!(r.bulk_loss >= 0.0 && r.bulk_loss <= r.boundary_loss + 1e-12);
        // The record holds the whole spectrum: N eigenvalues whose logs sum to the recorded
        // sum (the same values summed in the same ascending order).
        let l = r.eigenvalues();
        assert_eq!(l.len(), r.n_neurons);
        assert_eq!(l.iter().map(|v| v.ln()).sum::<f64>(), r.sum_log_lambda);
        assert_eq!(
            r.dynamical_log_lambda(septuple_spectral::DYNAMICAL_TOLERANCE)
                .len(),
            r.n_dynamical
        );
    }
    // The laws are checked as each run goes: every analyzed state with a temperature after
    // the first carries the step from the previous one, and it equals the step the checker
    // finds on the whole trajectory afterwards.
    for run in records.chunks(3) {
        let with_beta: Vec<&AnalysisRecord> =
            run.iter().filter(|r| r.beta_energy.is_some()).collect();
        assert!(with_beta.len() >= 2, "the tiny runs have a temperature");
        assert!(with_beta[0].laws.is_none());
        let spectra: Vec<Vec<f64>> = with_beta.iter().map(|r| r.eigenvalues()).collect();
        let points: Vec<septuple_thermo::TrajectoryPoint<'_>> = with_beta
            .iter()
            .zip(&spectra)
            .map(|(r, l)| septuple_thermo::TrajectoryPoint {
                beta: r.beta_energy.unwrap(),
                spectrum: l,
            })
            .collect();
        let checker = law_checker();
        let whole = checker.check(&points).unwrap();
        for (r, step) in with_beta[1..].iter().zip(&whole.steps) {
            let mine = r.laws.expect("checked during the run");
            assert_eq!(mine.delta_entropy, step.delta_entropy);
            assert_eq!(mine.second_law_violation, step.second_law_violation);
            assert_eq!(mine.first_law, step.first_law);
        }
    }
    // The same at the temperature from the gap (measured gamma), and the gap's quantities
    // follow from the recorded spectrum.
    for r in &records {
        if let (Some(n_below), Some(gamma)) = (r.gap_n_below, r.gamma_measured) {
            assert_eq!(gamma, n_below as f64 / r.n_neurons as f64);
            assert!(r.beta_gap_measured.is_some() && r.laplacian_f_gap.unwrap() < 0.0);
        }
        assert!(r.mean_state_residual.unwrap() > 0.0);
        // U(beta) of (6.1), the residuals of (6.2) and the terms of log Z (5.11) at the gap's
        // beta, wherever there is one. U and log Z of (5.14) follow from the recorded spectrum
        // too; the equilibrium pass forms G explicitly, whose eigenvalues agree with the
        // structured ones to ~eps lambda_max, so the sums agree to 1e-10 relative.
        assert_eq!(r.energy_gap.is_some(), r.beta_gap_measured.is_some());
        if let (Some(u), Some(beta)) = (r.energy_gap, r.beta_gap_measured) {
            let l = r.eigenvalues();
            let expected: f64 = l.iter().map(|x| 0.5 * x / (1.0 + beta * x)).sum();
            approx::assert_relative_eq!(u, expected, max_relative = 1e-10);
            let log_z: f64 = -0.5 * l.iter().map(|x| (1.0 + beta * x).ln()).sum::<f64>()
                + 0.5 * l.len() as f64 * (2.0 * std::f64::consts::PI).ln();
            approx::assert_relative_eq!(r.log_z_large_n_gap.unwrap(), log_z, max_relative = 1e-10);
            assert!(r.log_z_mean_term_gap.unwrap() < 0.0);
            for v in [
                r.equilibrium_residual_w_gap,
                r.equilibrium_residual_b_gap,
                r.equilibrium_grad_w_norm_gap,
                r.equilibrium_grad_b_norm_gap,
            ] {
                let v = v.unwrap();
                assert!(v.is_finite() && v > 0.0, "{v}");
            }
        }
    }
    for run in records.chunks(3) {
        let with_beta: Vec<&AnalysisRecord> = run
            .iter()
            .filter(|r| r.beta_gap_measured.is_some())
            .collect();
        let checker = law_checker();
        for pair in with_beta.windows(2) {
            let expected =
                septuple_experiment::analysis::laws_between_at_gap(&checker, pair[0], pair[1])
                    .unwrap();
            assert_eq!(pair[1].laws_gap, expected);
        }
    }
    assert!(records.iter().any(|r| r.laws_gap.is_some()));
    let report = write_outputs(&experiment, &records, &dir).unwrap();
    assert_eq!(report.networks.len(), 2);
    // Every row of metrics.csv has a value or an empty cell for every column of its header.
    let csv = septuple_experiment::metrics_csv(&records);
    let mut lines = csv.lines();
    let width = lines.next().unwrap().split(',').count();
    for line in lines {
        assert_eq!(line.split(',').count(), width, "{line}");
    }
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        summary.contains("equilibrium (6.2) residual r_w"),
        "{summary}"
    );
    for f in [
        "metrics.csv",
        "metrics.json",
        "summary.md",
        "figures/fig1_landscape.svg",
        "figures/fig2_losses.svg",
        "figures/fig3_bulk_vs_boundary.svg",
        "figures/fig4_shallow_spectrum.svg",
        "figures/fig5_deep_spectrum.svg",
        "figures/fig6_complexity.svg",
        "figures/fig7_complexity_vs_loss.svg",
    ] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    // U_d of every epoch (Eq. 2.11): each run keeps its curve of all 5 epochs, and Fig. 2
    // draws it for the shown seed of each network.
    let curves = septuple_experiment::read_loss_curves(&dir.join("runs"), &records).unwrap();
    assert_eq!(curves.len(), 4);
    for c in curves.values() {
        assert_eq!(c.len(), 5);
        assert!(c.iter().all(|l| l.is_finite() && *l > 0.0));
    }
    let fig2 = std::fs::read_to_string(dir.join("figures/fig2_losses.svg")).unwrap();
    assert!(fig2.contains("U_d every epoch"));
    // A run killed while writing leaves a temporary file (written by septuple-io's atomic
    // writer, named with its prefix): resuming removes them, and so does writing the outputs.
    let stale = [
        dir.join("runs")
            .join(format!("{}killed", septuple_io::TEMP_PREFIX)),
        dir.join(format!("{}killed", septuple_io::TEMP_PREFIX)),
    ];
    for p in &stale {
        std::fs::write(p, b"half a checkpoint").unwrap();
    }
    // Resuming a finished experiment reads the records back unchanged.
    let resume = RunOptions {
        resume: true,
        ..RunOptions::default()
    };
    let again = run(&experiment, &dir, &resume).unwrap();
    let strip = |v: &[AnalysisRecord]| {
        v.iter()
            .map(|r| AnalysisRecord {
                wall_seconds: 0.0,
                ..r.clone()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&again), strip(&records));
    for p in &stale {
        assert!(!p.exists(), "{} left behind", p.display());
    }
    std::fs::write(&stale[1], b"half a figure").unwrap();
    write_outputs(&experiment, &again, &dir).unwrap();
    assert!(!stale[1].exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The checker the runner uses.
fn law_checker() -> septuple_thermo::LawChecker {
    septuple_thermo::LawChecker::new(
        septuple_thermo::EigenvalueSplit::default(),
        septuple_experiment::runner::LAW_TOLERANCE,
        0.0,
    )
    .unwrap()
}

/// Keras' defaults reach the runs: another initialisation and loss give other numbers from the
/// same seed, and the summary says which were used.
#[test]
fn keras_defaults_run_end_to_end() {
    let dir = std::env::temp_dir().join(format!("septuple-exp-keras-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = ExperimentConfig::smoke();
    config.sgd.epochs = 2;
    config.seeds = vec![1];
    config.histogram_epochs = vec![2];
    let torch = config.clone().check().unwrap();
    let keras = config.keras_defaults().check().unwrap();
    let a = run(&torch, &dir.join("torch"), &RunOptions::default()).unwrap();
    let b = run(&keras, &dir.join("keras"), &RunOptions::default()).unwrap();
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x.network, x.epoch), (&y.network, y.epoch));
        assert_ne!(x.boundary_loss, y.boundary_loss);
    }
    write_outputs(&keras, &b, &dir.join("keras")).unwrap();
    let summary = std::fs::read_to_string(dir.join("keras/summary.md")).unwrap();
    assert!(summary.contains("batch 32"), "{summary}");
    assert!(summary.contains("Keras' mean squared error"), "{summary}");
    assert!(
        summary.contains("glorot_uniform weights and zero biases"),
        "{summary}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
