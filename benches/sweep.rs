//! A sweep's runs side by side (one thread each) against one after another (each with all
//! threads): the aggregate training samples per second of a small sweep of four runs (two
//! architectures of the depth sweep, two seeds; 100 epochs on 2,000 digits, with the analyses
//! of its log-spaced epochs 1, 2, 5, 10, 20, 50 and 100), the whole sweep per iteration.
//!
//! `cargo bench --bench sweep` (on the machine's cores; `RAYON_NUM_THREADS` sets the
//! threads of the one-after-another mode)

use std::num::NonZeroUsize;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use septuple_experiment::config::NetworkSpec;
use septuple_experiment::sweep::{run_shard, Jobs, Shard, SweepManifest, SweepOptions};
use septuple_experiment::ExperimentConfig;

const EPOCHS: usize = 100;
const SAMPLES: usize = 2000;

fn manifest() -> SweepManifest {
    let mut c = ExperimentConfig::quick();
    c.sgd.epochs = EPOCHS;
    c.train_samples = SAMPLES;
    c.test_samples = 500;
    c.histogram_epochs = Vec::new();
    c.seeds = vec![1, 2];
    c.networks = vec![
        NetworkSpec {
            name: "d1-60".into(),
            sizes: vec![784, 60, 10],
        },
        NetworkSpec {
            name: "d6-10x6".into(),
            sizes: vec![784, 10, 10, 10, 10, 10, 10, 10],
        },
    ];
    SweepManifest {
        name: "bench".into(),
        experiment: c,
        loss_levels: vec![0.1],
        probe_epochs: Vec::new(),
    }
}

fn bench(c: &mut Criterion) {
    let sweep = manifest().check().unwrap();
    let samples = (sweep.runs().len() * EPOCHS * SAMPLES) as u64;
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let mut group = c.benchmark_group("sweep_4_runs");
    group.sample_size(10);
    group.throughput(Throughput::Elements(samples));
    let dir = std::env::temp_dir().join(format!("septuple-bench-sweep-{}", std::process::id()));
    for (label, jobs) in [("one_at_a_time", 1), ("side_by_side", cores)] {
        let options = SweepOptions {
            jobs: Jobs::Fixed(NonZeroUsize::new(jobs).unwrap()),
            ..SweepOptions::default()
        };
        group.bench_function(BenchmarkId::new(label, format!("{jobs}_jobs")), |b| {
            b.iter(|| {
                let out: PathBuf = dir.join(label);
                let _ = std::fs::remove_dir_all(&out);
                run_shard(&sweep, Shard::ALL, &out, &options).unwrap()
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
