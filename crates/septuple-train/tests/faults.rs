//! Runs pushed over the edge: diverging and saturating learning rates, non-finite checkpoints,
//! resuming with another learning rate, networks loaded from files.

use std::path::PathBuf;

use ndarray::Array2;
use septuple_core::{Builtin, Init, Layered};
use septuple_train::{
    AnalysisSchedule, Batch, Checkpoint, CheckpointError, Checkpointer, Dag, Dataset, Edges,
    MetricsRecorder, Objective, Observers, Precision, ResumePolicy, RunWarning, SaturationCheck,
    Schedule, SgdConfig, SgdField, TrainError, Trainable, Trainer,
};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("septuple-faults-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn data(n_in: usize, n_out: usize) -> Dataset {
    let x = Array2::from_shape_fn((40, n_in), |(i, j)| ((i * n_in + j) as f64).sin());
    let t = Array2::from_shape_fn(
        (40, n_out),
        |(i, j)| {
            if (i + j) % n_out == 0 {
                1.0
            } else {
                0.0
            }
        },
    );
    let labels = (0..40).map(|i| (n_out - i % n_out) % n_out).collect();
    Dataset::new(x, t, Some(labels)).unwrap()
}

fn sgd(lr: f64, epochs: usize, objective: Objective) -> septuple_train::Sgd {
    SgdConfig {
        learning_rate: lr,
        schedule: Schedule::Constant,
        batch: Batch::Size(10),
        epochs,
        seed: 3,
        objective,
        precision: Precision::F64,
    }
    .check()
    .unwrap()
}

#[test]
fn a_network_from_a_fortran_order_npz_trains() {
    // Two weight layers stored column-major (and big-endian f4) by numpy.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../septuple-io/tests/fixtures/mlp_fortran_be_f4.npz");
    let mut net = septuple_io::load_layered(&path).unwrap();
    assert!(net.depth() >= 3, "{:?}", net.layer_sizes());
    let sizes = net.layer_sizes().to_vec();
    let train = data(sizes[0], *sizes.last().unwrap());
    let before = net.clone();
    let summary = Trainer::new(sgd(0.1, 1, Objective::Boundary))
        .run(&mut net, &train, None, &mut Observers::new())
        .unwrap();
    assert_eq!(summary.epochs, 1);
    assert_ne!(net, before);
}

fn diverged_epoch(err: TrainError) -> usize {
    match err {
        TrainError::Diverged { epoch, .. } => epoch,
        other => panic!("expected a divergence, got {other}"),
    }
}

#[test]
fn divergence_names_the_real_epoch_on_every_path() {
    // Identity activations with a huge rate grow the weights geometrically until they overflow;
    // every objective and path must say so as Diverged with the epoch (1-based) it happened in,
    // never epoch 0 (what a step reports before the trainer labels it).
    let train = data(5, 2);
    let init = Layered::random(&[5, 4, 2], Builtin::Identity, Init::TorchLinear, 1).unwrap();
    for objective in [Objective::Boundary, Objective::Bulk { mass: 0.0 }] {
        let trainer = Trainer::new(sgd(1e6, 50, objective));
        let mut fast = init.clone();
        let e = diverged_epoch(
            trainer
                .run(&mut fast, &train, None, &mut Observers::new())
                .unwrap_err(),
        );
        assert!((1..=50).contains(&e), "{objective:?}: {e}");
        let mut dag = Dag::new(init.to_septuple().unwrap(), Edges::Existing).unwrap();
        let e = diverged_epoch(
            trainer
                .run(&mut dag, &train, None, &mut Observers::new())
                .unwrap_err(),
        );
        assert!((1..=50).contains(&e), "{objective:?} (Dag): {e}");
        // The model keeps its last finite parameters.
        assert!(fast.is_finite());
    }
}

#[test]
fn a_checkpoint_that_would_not_load_is_not_written() {
    let dir = scratch("nan-checkpoint");
    let path = dir.join("cp.json");
    let train = data(5, 2);
    let cp = Checkpoint::new(
        sgd(0.1, 3, Objective::Boundary),
        1,
        std::time::Duration::ZERO,
        &train,
        vec![1.0, f64::NAN, f64::INFINITY],
    );
    let err = cp.save(&path).unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::Checkpoint {
                source: CheckpointError::NotLoadable(_),
                ..
            }
        ),
        "{err}"
    );
    assert!(!path.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_absurd_learning_rate_saturates_and_says_so() {
    // tanh pushed far into its tails: every unit's f' is 0 to double precision, no gradient
    // passes, the loss stops changing after the first step and accuracy stays at chance.
    let train = data(6, 3);
    for lr in [1e3, 1e300] {
        let init = Layered::random(&[6, 8, 3], Builtin::Tanh, Init::TorchLinear, 2).unwrap();
        let mut net = init.clone();
        let mut metrics = MetricsRecorder::in_memory();
        let summary = Trainer::new(sgd(lr, 12, Objective::Boundary))
            .with_schedule(AnalysisSchedule::Every(1))
            .run(&mut net, &train, None, &mut metrics)
            .unwrap();
        let rows = metrics.rows();
        let last = rows.last().unwrap();
        assert!(
            last.warnings
                .iter()
                .any(|w| matches!(w, RunWarning::FrozenLoss { .. })),
            "lr {lr}: {rows:?}"
        );
        assert!(
            last.warnings
                .iter()
                .any(|w| matches!(w, RunWarning::Saturated { .. })),
            "lr {lr}: {rows:?}"
        );
        assert_eq!(summary.warnings, last.warnings);
        // A healthy run early on: no warning in the first epochs.
        assert!(rows[0].warnings.is_empty());
        // Asked to, the trainer stops with a typed error instead.
        let mut net = init.clone();
        let err = Trainer::new(sgd(lr, 12, Objective::Boundary))
            .with_saturation_check(SaturationCheck {
                stop: true,
                ..SaturationCheck::default()
            })
            .run(&mut net, &train, None, &mut Observers::new())
            .unwrap_err();
        let TrainError::Saturated {
            epoch,
            saturated_fraction,
            ..
        } = err
        else {
            panic!("lr {lr}: expected saturation, got {err}");
        };
        assert!(
            epoch < 12 && saturated_fraction >= 0.5,
            "{epoch} {saturated_fraction}"
        );
    }
    // A sensible rate raises nothing.
    let mut net = Layered::random(&[6, 8, 3], Builtin::Tanh, Init::TorchLinear, 2).unwrap();
    let mut metrics = MetricsRecorder::in_memory();
    Trainer::new(sgd(0.1, 12, Objective::Boundary))
        .with_schedule(AnalysisSchedule::Every(1))
        .run(&mut net, &train, None, &mut metrics)
        .unwrap();
    assert!(metrics.rows().iter().all(|r| r.warnings.is_empty()));
}

#[test]
fn resume_may_change_the_learning_rate_when_asked() {
    let dir = scratch("resume-rate");
    let cp = dir.join("cp.json");
    let train = data(5, 2);
    let init = Layered::random(&[5, 4, 2], Builtin::Tanh, Init::TorchLinear, 4).unwrap();
    let mut net = init.clone();
    Trainer::new(sgd(0.2, 4, Objective::Boundary))
        .with_schedule(AnalysisSchedule::Every(2))
        .run(
            &mut net,
            &train,
            None,
            &mut Observers::new().with(Checkpointer::new(&cp)),
        )
        .unwrap();
    let slower = Trainer::new(sgd(0.05, 8, Objective::Boundary));
    // Without the policy: refused, naming the field.
    let err = slower
        .resume::<Layered<Builtin>>(&cp, &train, None, &mut Observers::new())
        .unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::Checkpoint {
                source: CheckpointError::Settings {
                    field: SgdField::LearningRate,
                    ..
                },
                ..
            }
        ),
        "{err}"
    );
    // Another seed (another sample order) stays refused even with the policy.
    let reseeded = Trainer::new(
        SgdConfig {
            seed: 9,
            ..slower.sgd().config().clone()
        }
        .check()
        .unwrap(),
    );
    let err = reseeded
        .resume_with::<Layered<Builtin>>(
            &cp,
            &train,
            None,
            &mut Observers::new(),
            ResumePolicy::AllowLearningRateChange,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::Checkpoint {
                source: CheckpointError::Settings {
                    field: SgdField::Seed,
                    ..
                },
                ..
            }
        ),
        "{err}"
    );
    // With it: continues from epoch 4 at the new rate, and the history records the change.
    let mut metrics = MetricsRecorder::in_memory();
    let (resumed, summary) = slower
        .clone()
        .with_schedule(AnalysisSchedule::Every(1))
        .resume_with::<Layered<Builtin>>(
            &cp,
            &train,
            None,
            &mut Observers::new()
                .with(&mut metrics)
                .with(Checkpointer::new(&cp)),
            ResumePolicy::AllowLearningRateChange,
        )
        .unwrap();
    assert_eq!(summary.start_epoch, 4);
    let history: Vec<(usize, f64)> = summary
        .learning_rates
        .iter()
        .map(|s| (s.from_epoch, s.learning_rate))
        .collect();
    assert_eq!(history, vec![(1, 0.2), (5, 0.05)]);
    assert!(metrics.rows().iter().all(|r| r.learning_rate == 0.05));
    let saved: Checkpoint<Layered<Builtin>> = Checkpoint::load(&cp).unwrap();
    assert_eq!(saved.epoch, 8);
    assert_eq!(saved.rate_history(), summary.learning_rates);
    assert_eq!(saved.model, resumed);
    // The continued run is the straight run of 4 epochs at 0.2 then 4 at 0.05 with the
    // seed's sample order.
    let mut straight = init.clone();
    let t1 = Trainer::new(sgd(0.2, 4, Objective::Boundary));
    let t2 = Trainer::new(sgd(0.05, 8, Objective::Boundary));
    let mut ws = straight
        .workspace(&train, t1.sgd(), Default::default())
        .unwrap();
    for e in 1..=8 {
        let t = if e <= 4 { &t1 } else { &t2 };
        t.epoch(&mut straight, &mut ws, &train, e).unwrap();
    }
    straight.sync(&ws).unwrap();
    assert_eq!(straight, resumed);
    let _ = std::fs::remove_dir_all(&dir);
}
