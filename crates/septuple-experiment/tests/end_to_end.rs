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
    }
    let report = write_outputs(&experiment, &records, &dir).unwrap();
    assert_eq!(report.networks.len(), 2);
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
    let _ = std::fs::remove_dir_all(&dir);
}
