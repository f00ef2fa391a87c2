//! The spectrum of G (Eq. 5.6) of a network trained anywhere, as one JSON document.
//!
//! `cargo run --release --example analyze_network -- --weights FILE [--data DIR] [--samples N]
//!  [--method dense|structured|auto] [--beta B [--m M]]`
//!
//! FILE: `.safetensors` (a PyTorch `nn.Sequential` of Linear and Tanh layers), `.npz` (numpy,
//! keys `0.weight`, `0.bias`, `2.weight`, ...) or the septuple's own JSON. The mean state is
//! the average forward state over the first N samples (default 6000) of MNIST (pixels / 255):
//! the embedded subset, or the IDX files in DIR. With `--beta`, a `thermo` object adds the
//! thermodynamics of Secs. 5-8 at that beta (and local-objective mass `--m`, default 0).

use std::path::PathBuf;

use septuple::io::{load_layered, Mnist};
use septuple::spectral::{analyze, eigen_components, AnalyzeOptions, Faer, Method};
use septuple::thermo::{Split, ThermoSummary};

fn main() {
    if let Err(e) = run() {
        eprintln!("analyze_network: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut weights: Option<PathBuf> = None;
    let mut data: Option<PathBuf> = None;
    let mut samples = 6000usize;
    let mut method = Method::Auto;
    let mut beta: Option<f64> = None;
    let mut mass = 0.0;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--weights" => weights = Some(value()?.into()),
            "--data" => data = Some(value()?.into()),
            "--samples" => samples = value()?.parse()?,
            "--method" => {
                method = match value()?.as_str() {
                    "dense" => Method::Dense,
                    "structured" => Method::Structured,
                    "auto" => Method::Auto,
                    other => {
                        return Err(
                            format!("--method {other}: expected dense, structured or auto").into(),
                        )
                    }
                }
            }
            "--beta" => beta = Some(value()?.parse()?),
            "--m" => mass = value()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let weights = weights.ok_or("--weights FILE is required")?;
    let net = load_layered(&weights)?;
    let mnist = Mnist::load(data.as_deref())?;
    let n_in = net.layer_sizes()[0];
    if n_in != mnist.n_pixels() {
        return Err(format!(
            "the network takes {n_in} inputs but the images have {} pixels; pass --data with images that fit",
            mnist.n_pixels()
        )
        .into());
    }
    if samples == 0 || samples > mnist.len() {
        return Err(format!("--samples {samples}: expected 1 to {}", mnist.len()).into());
    }
    let inputs = mnist.select(0..samples)?;
    let options = AnalyzeOptions {
        method,
        ..AnalyzeOptions::default()
    };
    let analysis = analyze(&net, inputs.images(), options, &Faer::default())?;
    let s = &analysis.summary;
    let mut doc = serde_json::json!({
        "weights": weights.display().to_string(),
        "n_neurons": s.n_neurons,
        "layers": analysis.layers,
        "n_samples": analysis.n_samples,
        "method": analysis.method,
        "sum_log_lambda": s.sum_log_lambda,
        "n_dynamical": s.n_dynamical,
        "dynamical_tolerance": s.dynamical_tolerance,
        "log_lambda": s.log_lambda,
        "traces": s.traces,
        "mu2": s.mu2,
        "mu3": s.mu3,
        "mean": s.mean,
        "variance": s.variance,
        "skewness": s.skewness,
        "c20": s.c20,
        "c_all_but_20": s.c_all_but_20,
        "gap_log_lambda": s.gap.map(|g| g.log_lambda),
        "gap": s.gap,
    });
    if let Some(beta) = beta {
        let mean = net.mean_state(inputs.images())?;
        let (lambda, a) = eigen_components(&net.to_septuple(), mean.view())?;
        let thermo = ThermoSummary::new(&lambda, Some(&a), beta, mass, &Split::default())?;
        doc["thermo"] = serde_json::to_value(thermo)?;
    }
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}
