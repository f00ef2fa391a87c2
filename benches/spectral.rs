//! The spectrum of G (Eq. 5.6) at the paper's scale (N = 854: 784-40-20-10 and 784-60-10) and
//! for two wider networks: 3072-100-10 (N = 3182, few non-input neurons: the structured path's
//! case) and 784-1000-500-10 (N = 2294, k = N: only the dense path makes sense). Dense (squared
//! singular values of the N x N matrix I - f'w), structured (the k x k projection, k <= 2r,
//! timed where k <= N / 2) and, for the peer comparison, eigenvalues of G itself. The same matrices are timed in numpy by
//! `benches/peers/spectral_numpy.py`.
//!
//! `cargo bench --bench spectral` (add `--features openblas` for the LAPACK backend)

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ndarray::Array2;
use septuple::core::{Builtin, DenseBudget, Init, Layered, Network};
use septuple::spectral::{g_operator, jacobian, spectrum, Faer, Method, SpectrumBackend};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("spectrum");
    group.sample_size(10);
    let wide: [&[usize]; 2] = [&[3072, 100, 10], &[784, 1000, 500, 10]];
    for sizes in common::PAPER_NETWORKS.into_iter().chain(wide) {
        let name = common::architecture(sizes);
        let net = Layered::random(sizes, Builtin::Tanh, Init::TorchLinear, 1).unwrap();
        let inputs = Array2::from_shape_fn((200, sizes[0]), |(s, p)| {
            ((s * 7 + p * 3) % 17) as f64 / 17.0
        });
        let mean = net.mean_state(inputs.view()).unwrap();
        let sep = net.to_septuple().unwrap();
        let backend = Faer::default();
        let r = sep.n_neurons() - sizes[0];
        let structured_pays = 2 * (r + r.min(sizes[0])) <= sep.n_neurons();
        for (label, method) in [("dense", Method::Dense), ("structured", Method::Structured)] {
            if method == Method::Structured && !structured_pays {
                continue;
            }
            group.bench_function(BenchmarkId::new(label, &name), |b| {
                b.iter(|| spectrum(&sep, mean.view(), method, &backend).unwrap())
            });
        }
        let m = jacobian(&sep, mean.view(), DenseBudget::default()).unwrap();
        group.bench_function(BenchmarkId::new("svd_only", &name), |b| {
            b.iter(|| backend.singular_values(m.view()).unwrap())
        });
        // faer on two threads (the peer's count), where the dense path is the one chosen.
        if !structured_pays {
            let two = Faer { threads: 2 };
            group.bench_function(BenchmarkId::new("svd_only_2threads", &name), |b| {
                b.iter(|| two.singular_values(m.view()).unwrap())
            });
        }
        #[cfg(feature = "openblas")]
        {
            let lapack = septuple::spectral::Lapack;
            group.bench_function(BenchmarkId::new("svd_only_openblas", &name), |b| {
                b.iter(|| lapack.singular_values(m.view()).unwrap())
            });
            let g = g_operator(&sep, mean.view(), DenseBudget::default()).unwrap();
            group.bench_function(BenchmarkId::new("eigvalsh_g_openblas", &name), |b| {
                b.iter(|| lapack.symmetric_eigenvalues(g.view()).unwrap())
            });
        }
        let g = g_operator(&sep, mean.view(), DenseBudget::default()).unwrap();
        group.bench_function(BenchmarkId::new("eigvalsh_g", &name), |b| {
            b.iter(|| backend.symmetric_eigenvalues(g.view()).unwrap())
        });
        // The matrices for the numpy peer.
        if std::env::var_os("SEPTUPLE_DUMP_MATRICES").is_some() {
            let dir = std::path::Path::new("target/spectral-matrices");
            std::fs::create_dir_all(dir).unwrap();
            let raw: Vec<u8> = m.iter().flat_map(|v| v.to_le_bytes()).collect();
            std::fs::write(dir.join(format!("{name}.f64")), raw).unwrap();
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
