//! The matrix-free estimators at N = 8986 (784-4096-4096-10, PyTorch's default
//! initialisation, tanh, f' at the mean state of 200 inputs): the 20 largest singular values of
//! M = I - f'w (C_20 of Eq. 10.5), the 20 largest and 20 smallest (C_(N-20)), and stochastic
//! Lanczos quadrature with 16 probes of 60 steps. The 20 largest are timed against scipy's
//! `svds` on the same operator by `benches/peers/svds_scipy.py`, which reads the weights and
//! f' that this bench writes with `SEPTUPLE_DUMP_MATRICES=1`.
//!
//! `cargo bench --bench matrix_free`

#[allow(dead_code)] // PAPER_NETWORKS is not timed here
mod common;

use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ndarray::Array2;
use septuple::core::{Builtin, Init, Layered, Network};
use septuple::spectral::{
    extreme_singular_values, stochastic_lanczos_quadrature, MatrixFreeOptions,
};

fn bench(c: &mut Criterion) {
    let sizes: &[usize] = &[784, 4096, 4096, 10];
    let name = common::architecture(sizes);
    let net = Layered::random(sizes, Builtin::Tanh, Init::TorchLinear, 1).unwrap();
    let inputs = Array2::from_shape_fn((200, sizes[0]), |(s, p)| {
        ((s * 7 + p * 3) % 17) as f64 / 17.0
    });
    let mean = net.mean_state(inputs.view()).unwrap();
    let fp = net.derivatives_at(mean.view()).unwrap();
    if std::env::var_os("SEPTUPLE_DUMP_MATRICES").is_some() {
        let dir = std::path::Path::new("target/matrix_free_peer");
        std::fs::create_dir_all(dir).unwrap();
        for (l, w) in net.weights().iter().enumerate() {
            let bytes = septuple::io::write_npy(w.view().into_dyn());
            std::fs::write(dir.join(format!("w{l}.npy")), bytes).unwrap();
        }
        let bytes = septuple::io::write_npy(fp.view().into_dyn());
        std::fs::write(dir.join("fp.npy"), bytes).unwrap();
    }
    let largest = MatrixFreeOptions {
        smallest: false,
        ..MatrixFreeOptions::default()
    };
    // One run outside criterion, to print what it found (steps, convergence, top values).
    let t = Instant::now();
    let e = extreme_singular_values(&net, fp.view(), &MatrixFreeOptions::default()).unwrap();
    eprintln!(
        "{name}: both ends in {:.2} s, {} steps, converged {} / {}, sigma_max {:.6}, sigma_20 {:.6}, sigma_min {:.6e}",
        t.elapsed().as_secs_f64(),
        e.steps,
        e.largest_converged,
        e.smallest_converged,
        e.largest[0].sigma,
        e.largest[19].sigma,
        e.smallest[0].sigma,
    );
    let mut group = c.benchmark_group("matrix_free");
    group.sample_size(10);
    group.bench_function(BenchmarkId::new("largest_20", &name), |b| {
        b.iter(|| extreme_singular_values(&net, fp.view(), &largest).unwrap())
    });
    group.bench_function(BenchmarkId::new("both_ends_20", &name), |b| {
        b.iter(|| extreme_singular_values(&net, fp.view(), &MatrixFreeOptions::default()).unwrap())
    });
    // Without the deflation of the unit subspace, as the numpy peer: the same algorithm.
    let slq = MatrixFreeOptions {
        max_probes: 16,
        min_probes: 16,
        rel_tol: 0.0,
        deflate: false,
        ..MatrixFreeOptions::default()
    };
    {
        use septuple::thermo::SpectralMeasure;
        let t = Instant::now();
        let q = stochastic_lanczos_quadrature(&net, fp.view(), &slq, &[]).unwrap();
        let secs = t.elapsed().as_secs_f64();
        let fs: [(&str, &dyn Fn(f64) -> f64); 4] = [
            ("log det(I + G)", &|l: f64| (1.0 + l).ln()),
            ("Laplacian of F", &|l: f64| -0.5 / ((1.0 + l) * (1.0 + l))),
            ("mu_2", &|l: f64| l.ln().powi(2)),
            ("mu_3", &|l: f64| l.ln().powi(3)),
        ];
        eprintln!(
            "{name}: quadrature {} x {} in {secs:.2} s",
            q.probes, q.steps
        );
        for (what, f) in fs {
            let e = q.quadrature.trace(f);
            eprintln!("  {what:<16} {:>16.6} ± {:.3e}", e.value, e.stderr);
        }
    }
    group.bench_function(BenchmarkId::new("slq_16x60", &name), |b| {
        b.iter(|| stochastic_lanczos_quadrature(&net, fp.view(), &slq, &[]).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
