//! One SGD epoch at the paper's scale (Sec. 10): 784-40-20-10 and 784-60-10, tanh, f64 and f32
//! (rows `*_f32`), the first 6,000 digits of the embedded MNIST subset, batch 100 and full
//! batch, on the boundary loss (Eq. 2.11). The peers (TensorFlow, PyTorch, numpy in f64 and
//! numpy in f32) time the same epoch in `benches/peers/train_peers.py`.
//!
//! `cargo bench --bench train` (threads: `RAYON_NUM_THREADS`, default all cores)

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use septuple::core::{Builtin, Init, Layered};
use septuple::io::{Mnist, SplitSizes};
use septuple::train::{
    Batch, Dataset, Kernels, Objective, Precision, Schedule, SgdConfig, Trainable, Trainer,
};

fn bench(c: &mut Criterion) {
    let mnist = Mnist::embedded().unwrap();
    let train = mnist.split(SplitSizes::PAPER).unwrap().train;
    let data = Dataset::from_mnist(&train, 1.0, 0.0).unwrap();
    let mut group = c.benchmark_group("train_epoch_6000");
    group.sample_size(20);
    for sizes in common::PAPER_NETWORKS {
        let name = common::architecture(sizes);
        for (label, batch, precision) in [
            ("batch100", Batch::Size(100), Precision::F64),
            ("full", Batch::Full, Precision::F64),
            ("batch100_f32", Batch::Size(100), Precision::F32),
            ("full_f32", Batch::Full, Precision::F32),
        ] {
            let sgd = SgdConfig {
                learning_rate: 0.01,
                schedule: Schedule::Constant,
                batch,
                epochs: 1,
                seed: 1,
                objective: Objective::Boundary,
                precision,
            }
            .check()
            .unwrap();
            let mut net = Layered::random(sizes, Builtin::Tanh, Init::TorchLinear, 1).unwrap();
            let mut ws = net.workspace(&data, &sgd, Kernels::default()).unwrap();
            let trainer = Trainer::new(sgd);
            let mut epoch = 0;
            group.bench_function(BenchmarkId::new(&name, label), |b| {
                b.iter(|| {
                    epoch += 1;
                    trainer.epoch(&mut net, &mut ws, &data, epoch).unwrap();
                    net.sync(&ws).unwrap();
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
