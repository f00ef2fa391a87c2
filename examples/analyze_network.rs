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
use septuple::spectral::{analyze, AnalysisOptions, Faer, Method, ThermoOptions};
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
        ..AnalysisOptions::default()
    };
    let analysis = analyze(&net, inputs.images(), &options, &Faer::default())?;
    let mut doc = serde_json::to_value(analysis.report())?;
    doc["weights"] = weights.display().to_string().into();
    doc["layers"] = serde_json::to_value(net.layer_sizes())?;
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}
