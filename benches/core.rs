//! Benchmarks of septuple-core at the paper's scale: the networks 784-40-20-10 and 784-60-10
//! (N = 854, tanh) on 6,000 samples of MNIST-like inputs (pixels in [0, 1], one-hot +-1 targets).
//!
//! `cargo bench --bench core`

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use septuple::core::{
    Boundary, Builtin, BulkSolver, FixedPointOptions, Init, Layered, Network, Potential,
};

const SAMPLES: usize = 6000;

/// Inputs with MNIST's shape and sparsity: ~80% of pixels zero, the rest uniform in (0, 1].
fn mnist_like(seed: u64) -> (Array2<f64>, Array2<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = Array2::from_shape_simple_fn((SAMPLES, 784), || {
        if rng.random::<f64>() < 0.8 {
            0.0
        } else {
            rng.random::<f64>()
        }
    });
    let t = Array2::from_shape_fn((SAMPLES, 10), |(s, o)| if s % 10 == o { 1.0 } else { -1.0 });
    (x, t)
}

fn bench(c: &mut Criterion) {
    let (x, t) = mnist_like(1);
    let mut group = c.benchmark_group("core");
    group.sample_size(10);
    for sizes in common::PAPER_NETWORKS {
        let name = common::architecture(sizes);
        let net = Layered::random(sizes, Builtin::Tanh, Init::TorchLinear, 3).unwrap();
        let sep = net.to_septuple().unwrap();
        let data = Boundary::new(x.view(), t.view());
        group.bench_function(BenchmarkId::new("layered_forward_6000", &name), |b| {
            b.iter(|| net.forward_states(x.view()).unwrap())
        });
        group.bench_function(BenchmarkId::new("fixed_state_6000", &name), |b| {
            b.iter(|| {
                sep.fixed_state(x.view(), &FixedPointOptions::default())
                    .unwrap()
            })
        });
        group.bench_function(BenchmarkId::new("bulk_solve_6000", &name), |b| {
            b.iter(|| {
                let sol = BulkSolver::default()
                    .solve(&sep, &Potential::none(), &data)
                    .unwrap();
                assert!(sol.all_converged());
                sol
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
