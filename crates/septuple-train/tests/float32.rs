//! Float32 training ([`Precision::F32`]) against float64 on the paper's deep network
//! (784-40-20-10, tanh) and real MNIST digits: agreement to f32 accuracy, gradients against
//! finite differences of the f64 loss, determinism across thread counts, resume, and the
//! settings f32 refuses.

use septuple_core::{Builtin, Init, Layered};
use septuple_io::Mnist;
use septuple_train::{
    Batch, CheckpointError, Checkpointer, Dag, Dataset, Edges, Kernels, LayeredWorkspace,
    NetworkError, Objective, Observers, Precision, Schedule, Sgd, SgdConfig, SgdField, TrainError,
    Trainable, Trainer,
};

/// f32's unit roundoff, 2^-24.
const U: f64 = 5.960_464_477_539_063e-8;

fn mnist(range: std::ops::Range<usize>) -> Dataset {
    let m = Mnist::embedded().unwrap().select(range).unwrap();
    Dataset::from_mnist(&m, 1.0, 0.0).unwrap()
}

fn sgd(precision: Precision, epochs: usize, lr: f64) -> Sgd {
    SgdConfig {
        learning_rate: lr,
        schedule: Schedule::Constant,
        batch: Batch::Size(100),
        epochs,
        seed: 5,
        objective: Objective::Boundary,
        precision,
    }
    .check()
    .unwrap()
}

fn paper_net(seed: u64) -> Layered<Builtin> {
    Layered::random(&[784, 40, 20, 10], Builtin::Tanh, Init::TorchLinear, seed).unwrap()
}

fn parameters(net: &Layered<Builtin>) -> Vec<f64> {
    net.weights()
        .iter()
        .flat_map(|w| w.iter().copied())
        .chain(net.biases().iter().flat_map(|b| b.iter().copied()))
        .collect()
}

/// `epochs` epochs of `sgd` from `net`; the trained network and the epoch losses.
fn train(net: &Layered<Builtin>, data: &Dataset, sgd: Sgd) -> (Layered<Builtin>, Vec<f64>) {
    let mut net = net.clone();
    let mut ws = net.workspace(data, &sgd, Kernels::default()).unwrap();
    let trainer = Trainer::new(sgd);
    let losses = (1..=trainer.sgd().epochs())
        .map(|e| trainer.epoch(&mut net, &mut ws, data, e).unwrap())
        .collect();
    net.sync(&ws).unwrap();
    (net, losses)
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn f32_training_agrees_with_f64_to_f32_accuracy() {
    // 1,000 digits, batch 100, 3 epochs: S = 30 steps of eta = 0.05.
    //
    // Error budget of the f32 parameters against the f64 ones. The initial rounding is
    // u |w| <= 6e-8 * 0.04 (TorchLinear: |w| <= 1/sqrt(784)). Each step's gradient is a sum
    // over the batch (100 terms) of products of forward sums (at most 784 + 40 + 20 terms,
    // about 150 non-zero pixels) and backward sums (<= 40 terms), so its rounding error is at
    // most about K u |g| with K ~ 1,000 accumulated terms, i.e. 6e-5 |g|, |g| <= 1 here;
    // the parameter error after S steps is at most S eta K u |g| = 30 * 0.05 * 6e-5 = 9e-5
    // (the errors of earlier steps feed back through the Hessian times eta, a factor
    // (1 + eta |H|)^S close to 1 at this learning rate). Rounding errors are not all of one
    // sign, so the observed difference is far below this bound; the test allows the bound.
    let data = mnist(0..1000);
    let init = paper_net(3);
    let (net64, loss64) = train(&init, &data, sgd(Precision::F64, 3, 0.05));
    let (net32, loss32) = train(&init, &data, sgd(Precision::F32, 3, 0.05));
    let (p64, p32) = (parameters(&net64), parameters(&net32));
    // The f32 run stored f32 values: each parameter is exactly representable in f32.
    assert!(p32.iter().all(|&v| f64::from(v as f32) == v));
    // ... which the f64 run's are not: f32 really ran in f32, f64 in f64.
    assert!(p64.iter().any(|&v| f64::from(v as f32) != v));
    let diff = max_abs_diff(&p64, &p32);
    let bound = 30.0 * 0.05 * 1000.0 * U;
    assert!(diff <= bound, "parameters differ by {diff:e} > {bound:e}");
    // At least the rounding of the initial parameters (u |w| ~ 1e-9 on |w| ~ 0.02).
    assert!(
        diff > 1e-10,
        "f32 and f64 parameters agree to {diff:e}: f32 did not run"
    );
    // The loss and the parameters moved by far more than their difference.
    assert!(max_abs_diff(&p64, &parameters(&init)) > 100.0 * diff);
    assert!(loss64[2] < loss64[0]);
    // Epoch losses: means of 10 batch losses, each a mean of 100 sample losses of 10 squared
    // errors, so about 10 + 100 + 10 accumulated roundings in f32: 120 u = 7e-6 relative at
    // most. To that adds the loss change caused by the parameter difference, |dL/dp| |dp|,
    // which with the observed |dp| (~1e-7) and |dL/dp| <= 0.1 summed over the parameters that
    // matter stays below 1e-5 relative. We allow 1e-4 relative: far below any real
    // training difference (the losses fall by about 20 % over the 3 epochs).
    for (e, (&a, &b)) in loss64.iter().zip(&loss32).enumerate() {
        assert!(
            ((a - b) / a).abs() <= 1e-4,
            "epoch {}: f64 loss {a}, f32 loss {b}",
            e + 1
        );
        assert_ne!(a, b, "epoch {}: f32 loss equals the f64 loss", e + 1);
    }
}

#[test]
fn f32_gradients_match_finite_differences_of_the_f64_loss() {
    // Central differences of the f64 loss with h = 1e-4: truncation h^2 |L'''| ~ 1e-8, and
    // f64 rounding 1e-16 / 1e-4 ~ 1e-12, so the reference is good to ~1e-8 absolute. The f32
    // gradient is taken at the f32-rounded parameters (an O(u |w| |H|) shift, negligible) and
    // accumulates about K = 1,000 roundings (see above) of terms of size up to the gradient's
    // scale G = max |g| of the layer: we allow 1,000 u G + 1e-8.
    let data = mnist(0..200);
    let net = paper_net(7);
    let batch: Vec<usize> = (0..200).step_by(2).collect();
    let mut ws32 = LayeredWorkspace::with_precision(&net, &data, 100, Precision::F32).unwrap();
    assert_eq!(ws32.precision(), Precision::F32);
    let mut ws64 = LayeredWorkspace::new(&net, &data, 100).unwrap();
    let g32 = ws32.gradients(net.activations(), &data, &batch).unwrap();
    let g64 = ws64.gradients(net.activations(), &data, &batch).unwrap();
    let mut loss_at = |l: usize, idx: Option<(usize, usize)>, h: f64| {
        let mut w = net.weights()[l].clone();
        let mut b = net.biases()[l].clone();
        match idx {
            Some(ij) => w[ij] += h,
            None => b[0] += h,
        }
        let mut nudged = net.clone();
        nudged.set_layer(l, w.view(), b.view()).unwrap();
        ws64.load(&nudged);
        ws64.gradients(net.activations(), &data, &batch)
            .unwrap()
            .loss
    };
    let h = 1e-4;
    let mut checked = 0;
    for l in 0..3 {
        let scale = g64.weights[l].iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let tol = 1000.0 * U * scale + 1e-8;
        let rows = net.weights()[l].nrows();
        for i in [0, rows / 2, rows - 1] {
            // The entry of row i with the largest gradient (many input pixels are always 0).
            let row = g64.weights[l].row(i);
            let j = (0..row.len())
                .max_by(|&a, &b| row[a].abs().total_cmp(&row[b].abs()))
                .unwrap();
            assert!(row[j] != 0.0);
            let fd = (loss_at(l, Some((i, j)), h) - loss_at(l, Some((i, j)), -h)) / (2.0 * h);
            let g = g32.weights[l][(i, j)];
            assert!(
                (g - fd).abs() <= tol,
                "W{}[{i},{j}]: f32 {g}, fd {fd}",
                l + 1
            );
            checked += 1;
        }
        let fd = (loss_at(l, None, h) - loss_at(l, None, -h)) / (2.0 * h);
        assert!((g32.biases[l][0] - fd).abs() <= tol, "b{}[0]", l + 1);
    }
    assert_eq!(checked, 9);
    // The whole gradient and the loss: f32 accuracy, and not the f64 bits.
    for (a, b) in g32.weights.iter().zip(&g64.weights) {
        let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let diff = (a - b).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(diff <= 1000.0 * U * scale, "{diff:e} against {scale:e}");
        assert!(diff > 0.0);
    }
    assert!(((g32.loss - g64.loss) / g64.loss).abs() <= 200.0 * U);
    assert_ne!(g32.loss, g64.loss);
}

#[test]
fn f32_training_is_bit_identical_across_thread_counts() {
    let data = mnist(0..600);
    let init = paper_net(11);
    let run = |threads: usize, batch: Batch| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let sgd = SgdConfig {
            batch,
            ..sgd(Precision::F32, 2, 0.1).config().clone()
        }
        .check()
        .unwrap();
        pool.install(|| {
            let (net, losses) = train(&init, &data, sgd);
            let bits: Vec<u64> = parameters(&net).iter().map(|v| v.to_bits()).collect();
            let loss_bits: Vec<u64> = losses.iter().map(|v| v.to_bits()).collect();
            (bits, loss_bits)
        })
    };
    for batch in [Batch::Size(100), Batch::Full] {
        assert_eq!(run(1, batch), run(2, batch), "{batch:?}");
    }
    // Every instruction set gives the same f32 bits too.
    let sgd32 = sgd(Precision::F32, 1, 0.1);
    let step = |kernels: Kernels| {
        let mut ws = LayeredWorkspace::with_precision(&init, &data, 100, Precision::F32)
            .unwrap()
            .with_kernels(kernels);
        let batch: Vec<usize> = sgd32.order(1, data.len())[..100].to_vec();
        ws.step(init.activations(), &data, &batch, 0.1).unwrap();
        let mut net = init.clone();
        ws.store(&mut net).unwrap();
        parameters(&net)
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(step(Kernels::Generic), step(Kernels::Auto));
    assert_eq!(step(Kernels::NoAvx512), step(Kernels::Auto));
}

#[test]
fn f32_is_refused_where_it_does_not_run() {
    // The bulk objective.
    let e = SgdConfig {
        objective: Objective::Bulk { mass: 0.5 },
        precision: Precision::F32,
        ..SgdConfig::default()
    }
    .check()
    .unwrap_err();
    assert!(
        matches!(
            e,
            TrainError::Config {
                field: "precision",
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("expected f64 with the bulk objective"),
        "{e}"
    );
    // A Dag: the general path is f64 only.
    let data = mnist(0..20);
    let small = Layered::random(&[784, 5, 10], Builtin::Tanh, Init::TorchLinear, 1).unwrap();
    let mut dag = Dag::new(small.to_septuple().unwrap(), Edges::Existing).unwrap();
    let sgd32 = sgd(Precision::F32, 1, 0.1);
    let e = dag
        .workspace(&data, &sgd32, Kernels::default())
        .unwrap_err();
    assert!(
        matches!(
            e,
            TrainError::Network(NetworkError::Float32NeedsLayered { model: "Dag" })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("layered fast path"), "{e}");
    let e = Trainer::new(sgd32)
        .run(&mut dag, &data, None, &mut Observers::new())
        .unwrap_err();
    assert!(matches!(e, TrainError::Network(_)), "{e}");
    // A workspace made for another training set.
    let net = paper_net(1);
    let mut ws = LayeredWorkspace::with_precision(&net, &data, 10, Precision::F32).unwrap();
    let other = mnist(0..30);
    assert!(ws.step(net.activations(), &other, &[0, 1], 0.1).is_err());
}

#[test]
fn f32_runs_resume_to_the_same_bits_and_refuse_another_precision() {
    let dir = std::env::temp_dir().join(format!("septuple-f32-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cp = dir.join("cp.json");
    let data = mnist(0..300);
    let init = paper_net(2);
    let mut whole = init.clone();
    Trainer::new(sgd(Precision::F32, 4, 0.1))
        .run(&mut whole, &data, None, &mut Observers::new())
        .unwrap();
    let mut half = init.clone();
    Trainer::new(sgd(Precision::F32, 2, 0.1))
        .run(
            &mut half,
            &data,
            None,
            &mut Observers::new().with(Checkpointer::new(&cp)),
        )
        .unwrap();
    let text = std::fs::read_to_string(&cp).unwrap();
    assert!(text.contains(r#""precision":"f32""#));
    // The checkpoint holds the f32 values widened: the resumed run rounds them back exactly.
    let (resumed, _) = Trainer::new(sgd(Precision::F32, 4, 0.1))
        .resume::<Layered<Builtin>>(&cp, &data, None, &mut Observers::new())
        .unwrap();
    assert_eq!(parameters(&resumed), parameters(&whole));
    let err = Trainer::new(sgd(Precision::F64, 4, 0.1))
        .resume::<Layered<Builtin>>(&cp, &data, None, &mut Observers::new())
        .unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::Checkpoint {
                source: CheckpointError::Settings {
                    field: SgdField::Precision,
                    ..
                },
                ..
            }
        ),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
