//! The experiment of Sec. 10: a deep (784-40-20-10) and a shallow (784-60-10) tanh network,
//! N = 854 each, trained by SGD on 6,000 MNIST digits and analyzed at log-spaced epochs
//! (the crate septuple-experiment does the work).
//!
//! `cargo run --release --example deep_vs_shallow [-- OPTIONS]`
//!
//! Without options: a quick version (1,000 epochs, batch 100, two seeds) on the embedded MNIST
//! subset, a few minutes on two cores. Options:
//!   --paper          the paper's scale: 30,000 epochs, one seed
//!   --smoke          a few epochs on a few hundred samples (for CI)
//!   --epochs N  --batch B|full  --lr X  --seeds K  --data DIR  --out DIR
//!   --resume         continue an interrupted run in DIR from its checkpoints (finished runs
//!                    are read back)
//!   --quiet          no progress bars
//! Writes into `results/deep_vs_shallow/` (or --out): metrics.csv, metrics.json, summary.md,
//! figures/*.svg, runs/ (per-run records and checkpoints).

use std::path::PathBuf;

use septuple::train::Batch;
use septuple_experiment::{run, write_outputs, ExperimentConfig, RunOptions};

fn main() {
    if let Err(e) = main_inner() {
        eprintln!("deep_vs_shallow: {e}");
        std::process::exit(1);
    }
}

fn main_inner() -> Result<(), Box<dyn std::error::Error>> {
    let mut paper = false;
    let mut smoke = false;
    let mut epochs: Option<usize> = None;
    let mut batch: Option<Batch> = None;
    let mut lr: Option<f64> = None;
    let mut out = PathBuf::from("results/deep_vs_shallow");
    let mut data: Option<PathBuf> = None;
    let mut resume = false;
    let mut quiet = false;
    let mut seeds: Option<u64> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--paper" => paper = true,
            "--smoke" => smoke = true,
            "--epochs" => epochs = Some(value()?.parse()?),
            "--batch" => {
                batch = Some(match value()?.as_str() {
                    "full" => Batch::Full,
                    b => Batch::Size(b.parse()?),
                })
            }
            "--lr" => lr = Some(value()?.parse()?),
            "--seeds" => seeds = Some(value()?.parse()?),
            "--data" => data = Some(value()?.into()),
            "--out" => out = value()?.into(),
            "--resume" => resume = true,
            "--quiet" => quiet = true,
            other => return Err(format!("unknown argument {other} (see the file's header)").into()),
        }
    }
    // The preset first, then the explicit flags over it, whatever their order.
    let mut config = match (paper, smoke) {
        (true, true) => return Err("--paper and --smoke exclude each other".into()),
        (true, false) => ExperimentConfig::paper(),
        (false, true) => ExperimentConfig::smoke(),
        (false, false) => ExperimentConfig::quick(),
    };
    if let Some(e) = epochs {
        config.sgd.epochs = e;
    }
    if let Some(b) = batch {
        config.sgd.batch = b;
    }
    if let Some(x) = lr {
        config.sgd.learning_rate = x;
    }
    if let Some(k) = seeds {
        config.seeds = (1..=k).collect();
    }
    let experiment = config.check()?;
    let c = experiment.config();
    eprintln!(
        "deep_vs_shallow: {} epochs, batch {}, lr {}, seeds {:?} -> {}",
        c.sgd.epochs,
        match c.sgd.batch {
            Batch::Size(b) => b.to_string(),
            Batch::Full => "full".into(),
        },
        c.sgd.learning_rate,
        c.seeds,
        out.display()
    );
    let start = std::time::Instant::now();
    let options = RunOptions {
        data,
        resume,
        progress: !quiet,
    };
    let records = run(&experiment, &out, &options)?;
    let report = write_outputs(&experiment, &records, &out)?;
    println!("{}", report.markdown());
    eprintln!(
        "done in {:.1} s; files in {}",
        start.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}
