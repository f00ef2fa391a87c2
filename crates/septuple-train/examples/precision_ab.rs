//! f32 against f64 training on a shared machine: epochs of both precisions alternate in one
//! process, so that load from other processes hits both alike; prints the best epoch time of
//! each and their ratio, for the paper's networks at batch 100 and full batch.
//!
//! `cargo run --release -p septuple-train --example precision_ab -- [rounds] [samples]`
//! (default 20 rounds on the first 6,000 digits of the embedded MNIST subset; threads:
//! `RAYON_NUM_THREADS`).

use std::time::Instant;

use septuple_core::{Builtin, Init, Layered};
use septuple_io::Mnist;
use septuple_train::{Batch, Dataset, Kernels, Precision, SgdConfig, Trainable, Trainer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20);
    let samples: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(6000);
    let digits = Mnist::embedded()?.select(0..samples)?;
    let data = Dataset::from_mnist(&digits, 1.0, 0.0)?;
    for sizes in [&[784, 40, 20, 10][..], &[784, 60, 10][..]] {
        for batch in [Batch::Size(100), Batch::Full] {
            let mut runs = Vec::new();
            for precision in [Precision::F64, Precision::F32] {
                let sgd = SgdConfig {
                    learning_rate: 0.01,
                    batch,
                    epochs: 1,
                    seed: 1,
                    precision,
                    ..SgdConfig::default()
                }
                .check()?;
                let net = Layered::random(sizes, Builtin::Tanh, Init::TorchLinear, 1)?;
                let ws = net.workspace(&data, &sgd, Kernels::default())?;
                runs.push((net, ws, Trainer::new(sgd), f64::INFINITY));
            }
            for round in 1..=rounds {
                for (net, ws, trainer, best) in &mut runs {
                    let t = Instant::now();
                    trainer.epoch(net, ws, &data, round)?;
                    net.sync(ws)?;
                    *best = best.min(t.elapsed().as_secs_f64() * 1e3);
                }
            }
            let (f64_ms, f32_ms) = (runs[0].3, runs[1].3);
            println!(
                "{sizes:?} {batch:?}: f64 {f64_ms:.2} ms, f32 {f32_ms:.2} ms, f32/f64 {:.2}",
                f32_ms / f64_ms
            );
        }
    }
    Ok(())
}
