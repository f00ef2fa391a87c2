//! The matrix-free analysis of a random sparse feedforward network at scale (by default
//! N = 10^6 neurons, 10^7 connections): log Z, F, U, S and the Laplacian of F at beta = 1, mu_2
//! and mu_3 with their standard errors, the dynamical count, and the 20 largest eigenvalues of
//! G (C_20 of Eq. 10.5), each phase timed.
//!
//! `cargo run --release --example large_network [-- OPTIONS]`
//!   --neurons N  --inputs K  --outputs K  --connections C  --samples S  --seed S
//!   --probes P   the most probes (64), stopping at 1% relative standard error
//!   --tol E      that relative standard error (0.01; 0: run all P probes)
//!   --reorthogonalisation full|none|auto   of the quadrature's vectors (auto)
//!   --extreme-basis B   basis vectors of the thick restart for the 20 largest (default 60)
//!   --extreme-block B   vectors per Golub-Kahan block for the 20 largest (default 1)
//!   --sides right|both  reorthogonalise V only (default) or both U and V for the 20 largest
//!   --phase all|quadrature|extremes   which of the two estimates to run (all)
//!   --steps K    Golub-Kahan steps per probe of the quadrature (60)
//!   --onnx FILE --onnx-inputs FILE   analyse an ONNX model (as a sparse septuple) at the mean
//!                state of the samples of an .npy/.npz file instead of the random network
//!   --smoke      N = 20,000, 200,000 connections (for CI)
//!   --dump DIR   also write w (CSR: w_indptr.npy, w_indices.npy, w_data.npy) and f' (fp.npy)
//!                into DIR, for the scipy peer `benches/peers/large_network_scipy.py`
//! The network is `SparseSeptuple::random_dag` (tanh, zero biases); the mean state is that of
//! S deterministic inputs in [0, 1]; or the model of `--onnx` at the mean state of the samples
//! of `--onnx-inputs`. Memory: run it under `/usr/bin/time -v`.

use std::time::Instant;

use septuple::core::ndarray::{Array1, Array2};
use septuple::core::{Builtin, DenseBudget, Network, SparseSeptuple};
use septuple::io::{load_inputs, load_onnx, write_npy};
use septuple::spectral::{
    extreme_singular_values, stochastic_lanczos_quadrature, structural_dynamical_count,
    MatrixFreeOptions, Monitor, Reorthogonalisation, Sides, DYNAMICAL_TOLERANCE,
};
use septuple::thermo::{Estimate, SpectralMeasure, ThermoEstimate, ThermoPoint};

fn main() {
    if let Err(e) = main_inner() {
        eprintln!("large_network: {e}");
        std::process::exit(1);
    }
}

fn main_inner() -> Result<(), Box<dyn std::error::Error>> {
    let (mut n, mut n_in, mut n_out, mut connections) = (1_000_000, 1000, 10, 10_000_000);
    let (mut samples, mut seed, mut probes) = (8usize, 1u64, 64usize);
    let mut reorth = Reorthogonalisation::Auto;
    let mut dump: Option<std::path::PathBuf> = None;
    let mut extreme_basis = MatrixFreeOptions::default().extreme_basis;
    let mut extreme_block = MatrixFreeOptions::default().extreme_block;
    let mut extreme_sides = MatrixFreeOptions::default().extreme_sides;
    let mut phase = String::from("all");
    let mut steps = MatrixFreeOptions::default().max_steps;
    let mut tol = 0.01;
    let (mut onnx, mut onnx_inputs): (Option<String>, Option<String>) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--neurons" => n = value()?.parse()?,
            "--inputs" => n_in = value()?.parse()?,
            "--outputs" => n_out = value()?.parse()?,
            "--connections" => connections = value()?.parse()?,
            "--samples" => samples = value()?.parse()?,
            "--seed" => seed = value()?.parse()?,
            "--probes" => probes = value()?.parse()?,
            "--smoke" => (n, connections) = (20_000, 200_000),
            "--dump" => dump = Some(value()?.into()),
            "--extreme-basis" => extreme_basis = value()?.parse()?,
            "--extreme-block" => extreme_block = value()?.parse()?,
            "--steps" => steps = value()?.parse()?,
            "--sides" => {
                extreme_sides = match value()?.as_str() {
                    "right" => Sides::Right,
                    "both" => Sides::Both,
                    other => return Err(format!("--sides {other}: expected right or both").into()),
                }
            }
            "--tol" => tol = value()?.parse()?,
            "--onnx" => onnx = Some(value()?),
            "--onnx-inputs" => onnx_inputs = Some(value()?),
            "--phase" => {
                phase = value()?;
                if !["all", "quadrature", "extremes"].contains(&phase.as_str()) {
                    return Err(
                        format!("--phase {phase}: expected all, quadrature or extremes").into(),
                    );
                }
            }
            "--reorthogonalisation" => {
                reorth = match value()?.as_str() {
                    "full" => Reorthogonalisation::Full,
                    "none" => Reorthogonalisation::None,
                    "auto" => Reorthogonalisation::Auto,
                    other => {
                        return Err(format!(
                            "--reorthogonalisation {other}: expected full, none or auto"
                        )
                        .into())
                    }
                }
            }
            other => return Err(format!("unknown argument {other} (see the file's header)").into()),
        }
    }
    let t = Instant::now();
    let (net, x) = match (&onnx, &onnx_inputs) {
        (Some(model), Some(inputs)) => {
            let net = load_onnx(model, DenseBudget::default())?.network;
            let x = load_inputs(inputs, None)?.matrix().to_owned();
            samples = x.nrows();
            (net, x)
        }
        (None, None) => (
            SparseSeptuple::random_dag(n, n_in, n_out, connections, Builtin::Tanh, seed)?,
            Array2::from_shape_fn((samples, n_in), |(s, i)| {
                (((s * 31 + i * 17) % 97) as f64 / 97.0).powi(2)
            }),
        ),
        _ => return Err("--onnx and --onnx-inputs go together".into()),
    };
    n = Network::n_neurons(&net);
    let depth = net.feedforward()?.depth;
    eprintln!(
        "large_network: N = {n}, {} connections, depth {depth}: built in {:.1} s",
        Network::n_connections(&net),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let mean = net.mean_state(x.view())?;
    let fp = net.derivatives_at(mean.view())?;
    eprintln!(
        "large_network: mean state of {samples} samples and f' in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    if let Some(dir) = &dump {
        std::fs::create_dir_all(dir)?;
        let w = net.weights();
        // Indices as f64 (exact below 2^53): the .npy writer of septuple-io writes f64.
        let as_f64 = |xs: &[usize]| Array1::from_iter(xs.iter().map(|&x| x as f64));
        let files = [
            ("w_indptr.npy", as_f64(w.indptr().raw_storage())),
            ("w_indices.npy", as_f64(w.indices())),
            ("w_data.npy", Array1::from(w.data().to_vec())),
            ("fp.npy", fp.clone()),
        ];
        for (name, a) in files {
            std::fs::write(dir.join(name), write_npy(a.view().into_dyn()))?;
        }
        eprintln!("large_network: w and f' written to {}", dir.display());
    }
    let t = Instant::now();
    let count = structural_dynamical_count(&net, fp.view(), DYNAMICAL_TOLERANCE)?;
    println!(
        "dynamical eigenvalues: {} (structural count, {:.1} s)",
        count.n_dynamical,
        t.elapsed().as_secs_f64()
    );
    // The quadrature until log det(I + G), the Laplacian of F, mu_2 and mu_3 each have a
    // standard error of at most 1% of their value (or `probes` probes).
    let options = MatrixFreeOptions {
        max_probes: probes,
        max_steps: steps,
        rel_tol: tol,
        // C_(N-20) needs the smallest eigenvalues through M^-1, depth - 1 products with w
        // per step: left out here; C_20 needs the largest only.
        smallest: false,
        reorthogonalisation: reorth,
        extreme_basis,
        extreme_block,
        extreme_sides,
        ..MatrixFreeOptions::default()
    };
    let at = ThermoPoint::at_beta(1.0);
    let log_det = |l: f64| (1.0 + l).ln();
    let laplacian = |l: f64| -0.5 / ((1.0 + l) * (1.0 + l));
    let mu2 = |l: f64| l.ln().powi(2);
    let mu3 = |l: f64| l.ln().powi(3);
    if phase != "extremes" {
        let t = Instant::now();
        let slq = stochastic_lanczos_quadrature(
            &net,
            fp.view(),
            &options,
            &[
                Monitor::value(&log_det),
                Monitor::value(&laplacian),
                Monitor::value(&mu2),
                Monitor::magnitude(&mu3),
            ],
        )?;
        let seconds = t.elapsed().as_secs_f64();
        let thermo = ThermoEstimate::new(&slq.quadrature, &at)?;
        println!(
            "quadrature: {} probes x {} steps, reorthogonalised {}, {seconds:.1} s",
            slq.probes, slq.steps, slq.reorthogonalised
        );
        let show = |what: &str, e: Estimate| {
            println!(
                "  {what:<28} {:>16.6} ± {:.3e} ({:.2}%)",
                e.value,
                e.stderr,
                100.0 * e.stderr / e.value.abs()
            )
        };
        show("log Z (Eq. 5.14)", thermo.log_z);
        show("F (Eq. 6.5)", thermo.free_energy);
        show("U (Eq. 6.1)", thermo.energy);
        show("S (Eq. 7.1)", thermo.entropy);
        show("Laplacian of F (Eq. 8.10)", thermo.laplacian_f);
        show("mu_2 (Eq. 9.5)", slq.quadrature.trace(&mu2));
        show("mu_3 (Eq. 9.6)", slq.quadrature.trace(&mu3));
        show(
            "sum log lambda (Eq. 7.8)",
            slq.quadrature.trace(&|l: f64| l.ln()),
        );
    }
    if phase != "quadrature" {
        let t = Instant::now();
        let top = extreme_singular_values(&net, fp.view(), &options)?;
        let c20 = -0.5 * top.largest.iter().map(|r| r.lambda.ln()).sum::<f64>()
            + 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln();
        println!(
            "20 largest eigenvalues: {} steps in blocks of {}, {}, converged {}, lambda_max {:.6}, lambda_20 {:.6}, C_20 (Eq. 10.5) {c20:.6}, largest bound {:.1e} lambda, {:.1} s",
            top.steps,
            top.block,
            if top.one_sided {
                "one-sided (bounds explicit)"
            } else {
                "both sides"
            },
            top.largest_converged,
            top.largest[0].lambda,
            top.largest[top.largest.len() - 1].lambda,
            top.largest
                .iter()
                .map(|r| r.lambda_bound / r.lambda)
                .fold(0.0, f64::max),
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
