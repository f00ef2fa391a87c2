//! The experiment of Sec. 10: a deep (784-40-20-10) and a shallow (784-60-10) tanh network,
//! N = 854 each, trained by SGD on 6,000 MNIST digits and analyzed at log-spaced epochs
//! (the crate septuple-experiment does the work).
//!
//! `cargo run --release --example deep_vs_shallow [-- OPTIONS]`, or the same flags on the
//! command line tool: `septuple deep-vs-shallow [OPTIONS]` (crate septuple-cli).
//!
//! Without options: a quick version (1,000 epochs, batch 100, two seeds) on the embedded MNIST
//! subset, a few minutes on two cores. Options:
//!   --paper          the paper's scale: 30,000 epochs, one seed
//!   --smoke          a few epochs on a few hundred samples (for CI)
//!   --keras          TensorFlow/Keras' defaults for what the paper leaves unstated:
//!                    glorot_uniform weights, zero biases, the mse loss, lr 0.01, batch 32
//!   --epochs N  --batch B|full  --lr X  --seeds K  --data DIR  --out DIR
//!   --analyses-per-decade K  analyze at K epochs per decade (default 1, 2, 5, 10, 20, ...)
//!   --resume         continue an interrupted run in DIR from its checkpoints (finished runs
//!                    are read back)
//!   --quiet          no progress bars
//! Writes into `results/deep_vs_shallow/` (or --out): metrics.csv, metrics.json, summary.md,
//! figures/*.svg, runs/ (per-run records, per-epoch losses and checkpoints).

use std::path::PathBuf;

use septuple_experiment::overrides::{parse_batch, Overrides, Preset};
use septuple_experiment::{run_and_report, RunOptions};

fn main() {
    if let Err(e) = main_inner() {
        eprintln!("deep_vs_shallow: {e}");
        std::process::exit(1);
    }
}

fn main_inner() -> Result<(), Box<dyn std::error::Error>> {
    let (mut paper, mut smoke) = (false, false);
    let mut overrides = Overrides::default();
    let mut out = PathBuf::from("results/deep_vs_shallow");
    let mut options = RunOptions {
        data: None,
        resume: false,
        progress: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--paper" => paper = true,
            "--smoke" => smoke = true,
            "--keras" => overrides.keras = true,
            "--epochs" => overrides.epochs = Some(value()?.parse()?),
            "--batch" => overrides.batch = Some(parse_batch(&value()?)?),
            "--lr" => overrides.learning_rate = Some(value()?.parse()?),
            "--seeds" => overrides.seeds = Some(value()?.parse()?),
            "--analyses-per-decade" => overrides.analyses_per_decade = Some(value()?.parse()?),
            "--data" => options.data = Some(value()?.into()),
            "--out" => out = value()?.into(),
            "--resume" => options.resume = true,
            "--quiet" => options.progress = false,
            other => return Err(format!("unknown argument {other} (see the file's header)").into()),
        }
    }
    overrides.preset = match (paper, smoke) {
        (true, true) => return Err("--paper and --smoke exclude each other".into()),
        (true, false) => Preset::Paper,
        (false, true) => Preset::Smoke,
        (false, false) => Preset::Quick,
    };
    let experiment = overrides.check()?;
    eprintln!(
        "deep_vs_shallow: {} -> {}",
        experiment.describe(),
        out.display()
    );
    let start = std::time::Instant::now();
    let report = run_and_report(&experiment, &out, &options)?;
    println!("{}", report.markdown());
    eprintln!(
        "done in {:.1} s; files in {}",
        start.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}
