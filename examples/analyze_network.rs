//! The spectrum of G (Eq. 5.6) of a network trained anywhere, as one JSON document.
//!
//! `cargo run --release --example analyze_network -- --weights FILE [--data DIR] [--samples N]
//!  [--method auto|dense|structured|matrix-free] [--probes P] [--tol E] [--seed S]
//!  [--beta B [--m M]]`
//!
//! FILE: `.safetensors` (a PyTorch `nn.Sequential` of Linear and Tanh layers), `.npz` (numpy,
//! keys `0.weight`, `0.bias`, `2.weight`, ...) or the septuple's own JSON. The mean state is
//! the average forward state over the first N samples (default 6000) of MNIST (pixels / 255):
//! the embedded subset, or the IDX files in DIR. With `--beta`, a `thermo` object adds the
//! thermodynamics of Secs. 5-8 at that beta (and local-objective mass `--m`, default 0).
//! `--method matrix-free` estimates the summary without the spectrum (stochastic Lanczos
//! quadrature with at most P probes, stopping at relative standard error E, seed S; the
//! complexities from the extreme eigenvalues); every estimate has a `<key>_stderr`.

use std::path::PathBuf;

use septuple::io::{load_layered, Mnist};
use septuple::spectral::{
    analyze, AnalysisOptions, Faer, MatrixFreeOptions, Method, ThermoOptions,
};
use septuple::thermo::{EigenvalueSplit, ThermoPoint};

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
    let mut matrix_free = MatrixFreeOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--weights" => weights = Some(value()?.into()),
            "--data" => data = Some(value()?.into()),
            "--samples" => samples = value()?.parse()?,
            "--method" => method = value()?.parse().map_err(|e| format!("--method: {e}"))?,
            "--probes" => {
                let p: usize = value()?
                    .parse()
                    .map_err(|_| "--probes: expected a whole number >= 2")?;
                matrix_free.max_probes = p;
                matrix_free.min_probes = matrix_free.min_probes.min(p);
                matrix_free.batch = matrix_free.batch.min(p.max(1));
            }
            "--tol" => {
                matrix_free.rel_tol = value()?
                    .parse()
                    .map_err(|_| "--tol: expected a finite number >= 0")?
            }
            "--seed" => {
                matrix_free.seed = value()?
                    .parse()
                    .map_err(|_| "--seed: expected a whole number")?
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
    let options = AnalysisOptions {
        spectrum: method.into(),
        thermo: beta.map(|beta| ThermoOptions {
            at: ThermoPoint {
                beta,
                mass,
                split: EigenvalueSplit::default(),
            },
            mean_components: true,
        }),
        matrix_free,
        ..AnalysisOptions::default()
    };
    let analysis = analyze(&net, inputs.images(), &options, &Faer::default())?;
    let mut doc = serde_json::to_value(analysis.report())?;
    doc["weights"] = weights.display().to_string().into();
    doc["layers"] = serde_json::to_value(net.layer_sizes())?;
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}
