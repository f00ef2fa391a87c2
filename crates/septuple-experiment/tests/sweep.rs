//! A sweep sharded and merged against the same sweep run whole: the same report to the last
//! bit, whatever the shards and the runs side by side; merging is idempotent and names the
//! runs missing or found twice.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use septuple_experiment::config::NetworkSpec;
use septuple_experiment::sweep::{
    merge, run_shard, Jobs, Shard, Sweep, SweepManifest, SweepOptions,
};
use septuple_experiment::{ExperimentConfig, ExperimentError};

fn manifest() -> SweepManifest {
    let mut c = ExperimentConfig::smoke();
    c.sgd.epochs = 3;
    c.train_samples = 200;
    c.test_samples = 50;
    c.histogram_epochs = Vec::new();
    c.seeds = vec![1, 2];
    c.networks = [
        vec![784, 30, 10],
        vec![784, 20, 10, 10],
        vec![784, 10, 10, 10, 10],
    ]
    .into_iter()
    .enumerate()
    .map(|(i, sizes)| NetworkSpec {
        name: format!("d{}", i + 1),
        sizes,
    })
    .collect();
    SweepManifest {
        name: "test".into(),
        experiment: c,
        loss_levels: vec![0.45, 0.4],
        probe_epochs: vec![2],
    }
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("septuple-sweep-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Every file of the report, by name relative to `dir`.
fn report_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![
        "sweep.md".to_string(),
        "runs.csv".into(),
        "trajectories.csv".into(),
    ];
    let mut figures: Vec<String> = std::fs::read_dir(dir.join("figures"))
        .unwrap()
        .map(|e| format!("figures/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    figures.sort();
    assert!(figures.len() >= 4, "{figures:?}");
    names.extend(figures);
    names
        .into_iter()
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect()
}

/// runs.csv's efficiency columns, recomputed from the loss curves the runs wrote.
fn check_efficiency_against_the_curves(dir: &Path) {
    let csv = std::fs::read_to_string(dir.join("runs.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let mut n = 0;
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let key = format!("{}-seed{}", cells[col("network")], cells[col("seed")]);
        let curve = septuple_experiment::sweep::read_loss_curve(
            &dir.join("runs").join(format!("{key}.losses.csv")),
            None,
        )
        .unwrap();
        assert_eq!(curve.len(), 3);
        let mean_log: f64 = curve.iter().map(|l| l.ln()).sum::<f64>() / 3.0;
        let reported: f64 = cells[col("mean_log_loss")].parse().unwrap();
        // The same sum in the same order: equal to the last bit.
        assert_eq!(reported, mean_log, "{key}");
        for level in [0.45, 0.4] {
            let first = curve.iter().position(|&l| l <= level).map(|i| i + 1);
            let cell = cells[col(&format!("epochs_to_{level}"))];
            assert_eq!(
                cell,
                first.map_or(String::new(), |e| e.to_string()),
                "{key} {level}"
            );
        }
        n += 1;
    }
    assert_eq!(n, 6);
}

fn options(jobs: usize) -> SweepOptions {
    SweepOptions {
        jobs: Jobs::Fixed(NonZeroUsize::new(jobs).unwrap()),
        ..SweepOptions::default()
    }
}

#[test]
fn sharded_and_merged_gives_the_unsharded_report_to_the_bit() {
    let sweep: Sweep = manifest().check().unwrap();
    let root = scratch("shards");
    // The whole sweep, one run after another with all threads.
    let whole = root.join("whole");
    let outcome = run_shard(&sweep, Shard::ALL, &whole, &options(1)).unwrap();
    assert_eq!(outcome.runs.len(), 6);
    assert_eq!(outcome.samples_trained, 6 * 3 * 200);
    merge(std::slice::from_ref(&whole), &whole).unwrap();
    check_efficiency_against_the_curves(&whole);
    // Two shards: one with its runs side by side, one with them one after another.
    let (a, b) = (root.join("a"), root.join("b"));
    run_shard(&sweep, Shard::new(0, 2).unwrap(), &a, &options(2)).unwrap();
    run_shard(&sweep, Shard::new(1, 2).unwrap(), &b, &options(1)).unwrap();
    let merged = root.join("merged");
    let report = merge(&[b.clone(), a.clone()], &merged).unwrap();
    assert_eq!(report.runs().len(), 6);
    let expected = report_files(&whole);
    assert_eq!(report_files(&merged), expected);
    // Merging again rewrites the same bytes.
    merge(&[a.clone(), b.clone()], &merged).unwrap();
    assert_eq!(report_files(&merged), expected);

    // One shard alone: the other's runs are named missing.
    let e = merge(std::slice::from_ref(&a), &root.join("x")).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ExperimentError::Incomplete { .. }), "{text}");
    for key in ["d2-seed1", "d1-seed2", "d3-seed2"] {
        assert!(text.contains(key), "{key} not named in {text}");
    }
    // A shard run twice in two places: its runs are named with both directories.
    let copy = root.join("a-again");
    run_shard(&sweep, Shard::new(0, 2).unwrap(), &copy, &options(2)).unwrap();
    let e = merge(&[a.clone(), b.clone(), copy.clone()], &root.join("x"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("more than one directory") && e.contains("d1-seed1"),
        "{e}"
    );
    assert!(e.contains(&copy.display().to_string()), "{e}");
    // A shard of another sweep is refused, and so is running one into a taken directory.
    let mut other = manifest();
    other.experiment.sgd.learning_rate = 0.02;
    let other = other.check().unwrap();
    let e = run_shard(&other, Shard::new(0, 2).unwrap(), &a, &options(1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds shard 0/2 of sweep"), "{e}");
    let elsewhere = root.join("other");
    run_shard(&other, Shard::new(1, 2).unwrap(), &elsewhere, &options(2)).unwrap();
    let e = merge(&[a.clone(), elsewhere], &root.join("x"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("another sweep"), "{e}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_resumed_shard_skips_finished_runs_and_completes_a_truncated_one() {
    let sweep = manifest().check().unwrap();
    let root = scratch("resume");
    let dir = root.join("s");
    let shard = Shard::new(1, 2).unwrap();
    run_shard(&sweep, shard, &dir, &options(1)).unwrap();
    merge(std::slice::from_ref(&dir), &root.join("r0")).unwrap_err();
    // Finished runs are not trained again.
    let resume = SweepOptions {
        resume: true,
        ..options(2)
    };
    let again = run_shard(&sweep, shard, &dir, &resume).unwrap();
    assert_eq!(again.samples_trained, 0);
    // A run whose records and loss curve are gone is trained again, from scratch.
    let runs = dir.join("runs");
    for ext in ["jsonl", "losses.csv", "checkpoint.json"] {
        std::fs::remove_file(runs.join(format!("d2-seed1.{ext}"))).unwrap();
    }
    let again = run_shard(&sweep, shard, &dir, &resume).unwrap();
    assert_eq!(again.samples_trained, 3 * 200);
    let _ = std::fs::remove_dir_all(&root);
}
