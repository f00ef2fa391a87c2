//! The sparse septuple against the dense one: the same network gives the same states and the
//! same operators (Eqs. 2.9, 5.3, 5.4, 5.6); construction errors; large and banded networks
//! built without any dense matrix.

use approx::assert_abs_diff_eq;
use ndarray::{array, Array1, Array2, ArrayView2};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use septuple_core::{
    strategies, Boundary, BoundaryLoss, Builtin, BulkLoss, CoreError, DenseBudget, Init, Layered,
    Loss, Network, SparseSeptuple, Triplet,
};

/// Tolerance for quantities that dense and sparse code sum in different orders: every value
/// here is a sum of at most N <= 40 products of numbers below 2 in magnitude (weights in
/// [-1.5, 1.5], states and f' in [-1, 1] for tanh/logistic, test vectors in [-1, 1]), so the
/// two orders differ by at most about N * 4 * 2^-52 ~ 4e-14 per step, and a forward state
/// propagates this through at most N contracting (|f'| <= 1) layers of such sums.
const TOL: f64 = 1e-12;

fn data(s: usize, k: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((s, k), || 2.0 * rng.random::<f64>() - 1.0)
}

/// `apply_m_into` and `apply_mt_into` give the bits of `apply_m` and `apply_mt`, into a block
/// in standard or column-major layout, from V in either layout, overwriting what was there;
/// an output of another shape is a typed error.
fn into_forms<N: Network>(net: &N, fp: ndarray::ArrayView1<'_, f64>, v: ArrayView2<'_, f64>) {
    use ndarray::ShapeBuilder;
    let (n, k) = v.dim();
    let mut vf = Array2::<f64>::zeros((n, k).f());
    vf.assign(&v);
    let m = net.apply_m(fp, v).unwrap();
    let mt = net.apply_mt(fp, v).unwrap();
    for input in [v, vf.view()] {
        for column_major in [false, true] {
            let mut out = if column_major {
                Array2::from_elem((n, k).f(), f64::NAN)
            } else {
                Array2::from_elem((n, k), f64::NAN)
            };
            net.apply_m_into(fp, input, out.view_mut()).unwrap();
            assert_eq!(out, m);
            net.apply_mt_into(fp, input, out.view_mut()).unwrap();
            assert_eq!(out, mt);
        }
    }
    let mut wrong = Array2::<f64>::zeros((n, k + 1));
    for e in [
        net.apply_m_into(fp, v, wrong.view_mut()).unwrap_err(),
        net.apply_mt_into(fp, v, wrong.view_mut()).unwrap_err(),
    ] {
        assert!(matches!(e, CoreError::Shape { .. }), "{e}");
        assert!(e.to_string().contains("output block"), "{e}");
    }
}

/// Every operator of the Network trait on `a` and `b` (the same network in two storages).
fn same_network<A: Network, B: Network>(a: &A, b: &B, seed: u64) {
    let n = a.n_neurons();
    assert_eq!(n, b.n_neurons());
    assert_eq!(a.inputs(), b.inputs());
    assert_eq!(a.outputs(), b.outputs());
    assert_eq!(a.roles(), b.roles());
    assert_eq!(a.n_connections(), b.n_connections());
    assert_eq!(
        a.feedforward().unwrap().depth,
        b.feedforward().unwrap().depth
    );
    let x_in = data(5, a.inputs().len(), seed);
    let xa = a.forward_states(x_in.view()).unwrap();
    let xb = b.forward_states(x_in.view()).unwrap();
    assert_abs_diff_eq!(xa, xb, epsilon = TOL);
    let ma = a.mean_state(x_in.view()).unwrap();
    let mb = b.mean_state(x_in.view()).unwrap();
    assert_abs_diff_eq!(ma, mb, epsilon = TOL);
    let fa = a.derivatives_at(ma.view()).unwrap();
    let fb = b.derivatives_at(ma.view()).unwrap();
    assert_abs_diff_eq!(fa, fb, epsilon = TOL);
    let v = data(n, 3, seed + 1);
    assert_abs_diff_eq!(
        a.weights_times(v.view()).unwrap(),
        b.weights_times(v.view()).unwrap(),
        epsilon = TOL
    );
    assert_abs_diff_eq!(
        a.weights_t_times(v.view()).unwrap(),
        b.weights_t_times(v.view()).unwrap(),
        epsilon = TOL
    );
    assert_abs_diff_eq!(
        a.apply_m(fa.view(), v.view()).unwrap(),
        b.apply_m(fa.view(), v.view()).unwrap(),
        epsilon = TOL
    );
    assert_abs_diff_eq!(
        a.apply_mt(fa.view(), v.view()).unwrap(),
        b.apply_mt(fa.view(), v.view()).unwrap(),
        epsilon = TOL
    );
    into_forms(a, fa.view(), v.view());
    into_forms(b, fa.view(), v.view());
    // Wider than 4 columns the sparse M^T V scales by f' inside its loop, not beforehand.
    let wide = data(n, 6, seed + 2);
    assert_abs_diff_eq!(
        a.apply_mt(fa.view(), wide.view()).unwrap(),
        b.apply_mt(fa.view(), wide.view()).unwrap(),
        epsilon = TOL
    );
    into_forms(a, fa.view(), wide.view());
    into_forms(b, fa.view(), wide.view());
    // Rows of M are single products -f'_i w_ij: exactly equal.
    let rows: Vec<usize> = (0..n).rev().collect();
    assert_eq!(
        a.jacobian_rows(fa.view(), &rows, DenseBudget::default())
            .unwrap(),
        b.jacobian_rows(fa.view(), &rows, DenseBudget::default())
            .unwrap()
    );
    assert_eq!(*a.bias(), *b.bias());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn sparse_equals_dense(sparse in strategies::sparse_septuple(1..=24), seed in 0u64..1000) {
        let dense = sparse.to_dense(DenseBudget::default()).unwrap();
        same_network(&dense, &sparse, seed);
        // Dense -> sparse -> dense is exact.
        prop_assert_eq!(&SparseSeptuple::from(&dense), &sparse);
        prop_assert_eq!(sparse.feedforward().unwrap(), dense.feedforward().unwrap());
    }

    #[test]
    fn sparse_equals_layered(net in strategies::layered(1..=4, 1..=8), seed in 0u64..1000) {
        let sparse = SparseSeptuple::from_layered(&net);
        same_network(&net, &sparse, seed);
        // Layered -> sparse -> dense -> sparse: exact at every step.
        let dense = sparse.to_dense(DenseBudget::default()).unwrap();
        prop_assert_eq!(&dense, &net.to_septuple().unwrap());
        prop_assert_eq!(&SparseSeptuple::from(&dense), &sparse);
    }

    #[test]
    fn losses_equal_the_dense_ones(sparse in strategies::sparse_septuple(2..=16), seed in 0u64..1000) {
        let dense = sparse.to_dense(DenseBudget::default()).unwrap();
        let s = 4;
        let inputs = data(s, sparse.inputs().len(), seed);
        let targets = data(s, sparse.outputs().len(), seed + 1);
        let states = data(s, sparse.n_neurons(), seed + 2);
        let bd = Boundary::new(inputs.view(), targets.view());
        assert_abs_diff_eq!(
            sparse.boundary_loss_values(states.view(), &bd).unwrap(),
            BoundaryLoss.values(&dense, states.view(), &bd).unwrap(),
            epsilon = TOL
        );
        let loss = BulkLoss::with_mass(0.3);
        assert_abs_diff_eq!(
            sparse.bulk_loss_values(&loss, states.view(), &bd).unwrap(),
            loss.values(&dense, states.view(), &bd).unwrap(),
            epsilon = TOL
        );
    }
}

#[test]
fn serde_round_trip_and_validation() {
    let net = Layered::random(&[3, 4, 2], Builtin::Tanh, Init::TorchLinear, 1).unwrap();
    let sparse = SparseSeptuple::from_layered(&net);
    let json = serde_json::to_string(&sparse).unwrap();
    let back: SparseSeptuple = serde_json::from_str(&json).unwrap();
    assert_eq!(back, sparse);
    let bad = r#"{"n":2,"weights":[[1,0,1.0],[1,0,2.0]],"b":{"v":1,"dim":[2],"data":[0.0,0.0]},
        "activations":["tanh","tanh"],"inputs":[0],"outputs":[1]}"#;
    let e = serde_json::from_str::<SparseSeptuple>(bad).unwrap_err();
    assert!(e.to_string().contains("given twice"), "{e}");
}

fn build(
    n: usize,
    t: &[Triplet],
    inputs: Vec<usize>,
    outputs: Vec<usize>,
) -> Result<SparseSeptuple, CoreError> {
    SparseSeptuple::with_activation(n, t, Array1::zeros(n), Builtin::Tanh, inputs, outputs)
}

#[test]
fn malformed_input_is_a_typed_error() {
    assert!(matches!(
        build(3, &[(1, 3, 1.0)], vec![], vec![]),
        Err(CoreError::IndexOutOfRange { index: 3, n: 3, .. })
    ));
    assert!(matches!(
        build(3, &[(5, 0, 1.0)], vec![], vec![]),
        Err(CoreError::IndexOutOfRange { index: 5, n: 3, .. })
    ));
    assert!(matches!(
        build(3, &[(1, 0, f64::NAN)], vec![], vec![]),
        Err(CoreError::NonFinite { ref index, .. }) if index == &vec![1, 0]
    ));
    assert_eq!(
        build(3, &[(2, 1, 1.0), (1, 0, 1.0), (2, 1, -1.0)], vec![], vec![]).unwrap_err(),
        CoreError::DuplicateEntry {
            row: 2,
            col: 1,
            first: 0,
            second: 2
        }
    );
    assert_eq!(
        build(3, &[], vec![0, 1], vec![1]).unwrap_err(),
        CoreError::OverlappingProjections { index: 1 }
    );
    assert!(matches!(
        build(3, &[], vec![0, 0], vec![]),
        Err(CoreError::DuplicateIndex { index: 0, .. })
    ));
    assert!(matches!(
        SparseSeptuple::with_activation(3, &[], Array1::zeros(2), Builtin::Tanh, vec![], vec![]),
        Err(CoreError::Shape { .. })
    ));
    assert!(matches!(
        build(0, &[], vec![], vec![]),
        Err(CoreError::Empty { .. })
    ));
    // A cycle 1 -> 2 -> 3 -> 1, named in edge order.
    let s = build(
        4,
        &[(1, 0, 1.0), (2, 1, 1.0), (3, 2, 1.0), (1, 3, 1.0)],
        vec![0],
        vec![],
    )
    .unwrap();
    match s.feedforward() {
        Err(CoreError::Cycle { mut cycle }) => {
            cycle.sort();
            assert_eq!(cycle, vec![1, 2, 3]);
        }
        other => panic!("expected a cycle, got {other:?}"),
    }
    // Eqs. (2.2), (2.3).
    let s = build(3, &[(0, 1, 0.7), (2, 1, 1.0)], vec![0], vec![2]).unwrap();
    assert!(matches!(
        s.feedforward(),
        Err(CoreError::InputHasIncoming {
            input: 0,
            from: 1,
            ..
        })
    ));
    let s = build(3, &[(1, 0, 1.0), (2, 1, 1.0)], vec![0], vec![1]).unwrap();
    assert!(matches!(
        s.feedforward(),
        Err(CoreError::OutputHasOutgoing {
            output: 1,
            to: 2,
            ..
        })
    ));
    // Wrong input width, and a block of the wrong height.
    let s = build(3, &[(1, 0, 1.0)], vec![0], vec![2]).unwrap();
    assert!(matches!(
        s.forward_states(array![[1.0, 2.0]].view()),
        Err(CoreError::Shape { .. })
    ));
    assert!(matches!(
        s.weights_times(Array2::zeros((2, 1)).view()),
        Err(CoreError::Shape { .. })
    ));
    assert!(matches!(
        s.to_dense(DenseBudget { bytes: 8 }),
        Err(CoreError::TooLarge { .. })
    ));
}

/// A random feedforward DAG of `n` neurons with `per_row` connections into each non-input
/// neuron, built in O(n per_row): neurons in index order are a topological order; the first
/// `n_in` are inputs, the last `n_out` outputs; neuron i draws one source from each of
/// `per_row` disjoint ranges below min(i, n - n_out), so no (i, j) repeats.
fn random_dag(n: usize, per_row: usize, n_in: usize, n_out: usize, seed: u64) -> SparseSeptuple {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut t = Vec::with_capacity(n * per_row);
    for i in n_in..n {
        let below = i.min(n - n_out);
        let d = per_row.min(below);
        let width = below / d;
        for k in 0..d {
            let j = k * width + rng.random_range(0..width);
            t.push((
                i,
                j,
                (2.0 * rng.random::<f64>() - 1.0) / (per_row as f64).sqrt(),
            ));
        }
    }
    let b = Array1::from_shape_simple_fn(n, || 0.1 * (2.0 * rng.random::<f64>() - 1.0));
    SparseSeptuple::with_activation(
        n,
        &t,
        b,
        Builtin::Tanh,
        (0..n_in).collect(),
        (n - n_out..n).collect(),
    )
    .unwrap()
}

fn large_case(n: usize, per_row: usize) {
    let s = random_dag(n, per_row, 100, 10, 3);
    assert_eq!(s.n_connections(), (n - 100) * per_row);
    assert!(s.feedforward().is_ok());
    let v = data(n, 1, 4);
    let fp = Array1::from_elem(n, 0.5);
    let mv = s.apply_m(fp.view(), v.view()).unwrap();
    let mtv = s.apply_mt(fp.view(), v.view()).unwrap();
    // <u, M v> = <M^T u, v>: the two products are transposes of each other. Sums of n terms of
    // size ~1: agreement to ~n eps relative to sum |u||v|.
    let u = data(n, 1, 5);
    let mu = s.apply_mt(fp.view(), u.view()).unwrap();
    let lhs = (&u * &mv).sum();
    let rhs = (&mu * &v).sum();
    assert_abs_diff_eq!(lhs, rhs, epsilon = 1e-9 * n as f64);
    assert_eq!(mtv.dim(), (n, 1));
    let x = s.forward_states(data(2, 100, 6).view()).unwrap();
    assert!(x.iter().all(|v| v.is_finite()));
}

/// N = 10^5 neurons, nnz ~ 10^6: never a dense matrix.
#[test]
fn large_network_without_dense_matrix() {
    large_case(100_000, 10);
}

/// N = 10^6 neurons, nnz ~ 10^7 (about 1 GB at peak, some seconds in release):
/// `cargo test -p septuple-core --release --test sparse -- --ignored very_large --nocapture`.
#[test]
#[ignore]
fn very_large_network_without_dense_matrix() {
    large_case(1_000_000, 10);
}

/// A conv-like banded network: each neuron t of layer l+1 sees the window t..t+width of layer
/// l (a 1-d convolution, valid padding, one shared kernel per layer), built directly as sparse
/// and compared with the same network in layered form.
#[test]
fn banded_convolution() {
    let width = 3;
    let sizes = [40usize, 38, 36, 34];
    let kernels = [[0.5, -0.3, 0.8], [0.2, 0.9, -0.4], [-0.6, 0.1, 0.7]];
    let mut off = vec![0];
    for s in sizes {
        off.push(off.last().unwrap() + s);
    }
    let n = off[sizes.len()];
    let mut t = Vec::new();
    let mut layers = Vec::new();
    for l in 0..sizes.len() - 1 {
        let mut w = Array2::zeros((sizes[l + 1], sizes[l]));
        for r in 0..sizes[l + 1] {
            for (k, &c) in kernels[l].iter().enumerate().take(width) {
                t.push((off[l + 1] + r, off[l] + r + k, c));
                w[[r, r + k]] = c;
            }
        }
        layers.push(w);
    }
    let mut b = Array1::zeros(n);
    b.slice_mut(ndarray::s![off[1]..]).fill(0.05);
    let sparse = SparseSeptuple::with_activation(
        n,
        &t,
        b,
        Builtin::Tanh,
        (0..sizes[0]).collect(),
        (off[3]..n).collect(),
    )
    .unwrap();
    let layered = Layered::from_layers(
        layers,
        sizes[1..]
            .iter()
            .map(|&s| Array1::from_elem(s, 0.05))
            .collect(),
        vec![Builtin::Tanh; 3],
    )
    .unwrap();
    assert_eq!(sparse.n_connections(), (38 + 36 + 34) * width);
    assert_eq!(sparse.feedforward().unwrap().depth, 4);
    assert_eq!(sparse, SparseSeptuple::from_layered(&layered));
    same_network(&layered, &sparse, 11);
}

/// The sweep runs samples in parallel: the same bits with 1 and 2 threads.
#[test]
fn thread_count_does_not_change_the_result() {
    let s = random_dag(20_000, 8, 50, 5, 9);
    let x_in = data(64, 50, 1);
    let v = data(20_000, 4, 2);
    let fp = Array1::from_elem(20_000, 0.7);
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                (
                    s.forward_states(x_in.view()).unwrap(),
                    s.apply_m(fp.view(), v.view()).unwrap(),
                    s.apply_mt(fp.view(), v.view()).unwrap(),
                )
            })
    };
    assert_eq!(run(1), run(2));
}

#[test]
fn bulk_solve_goes_through_the_dense_form() {
    let net = Layered::random(&[3, 4, 2], Builtin::Tanh, Init::TorchLinear, 2).unwrap();
    let sparse = SparseSeptuple::from_layered(&net);
    let inputs = data(3, 3, 1);
    let targets = data(3, 2, 2).mapv(|v| 0.5 * v);
    let bd = Boundary::new(inputs.view(), targets.view());
    let solver = septuple_core::BulkSolver::default();
    let p = septuple_core::Potential::none();
    let a = sparse
        .bulk_solve(&solver, &p, &bd, DenseBudget::default())
        .unwrap();
    let b = solver.solve(&net.to_septuple().unwrap(), &p, &bd).unwrap();
    assert_eq!(a.mean_loss(), b.mean_loss());
    assert!(matches!(
        sparse.bulk_solve(&solver, &p, &bd, DenseBudget { bytes: 64 }),
        Err(CoreError::TooLarge { .. })
    ));
}

/// w V and w^T V by sprs and by a plain CSR loop, timed (the numbers in the module docs of
/// `septuple_core::SparseSeptuple`'s module): `cargo test -p septuple-core --release --test
/// sparse -- --ignored csr_benchmark --nocapture`.
#[test]
#[ignore]
fn csr_benchmark() {
    fn own(w: &sprs::CsMat<f64>, v: ArrayView2<'_, f64>) -> Array2<f64> {
        let (n, k) = (w.rows(), v.ncols());
        let vs = v.as_slice().unwrap();
        let mut out = Array2::zeros((n, k));
        let os = out.as_slice_mut().unwrap();
        let (ptr, idx, val) = (w.indptr(), w.indices(), w.data());
        let ptr = ptr.raw_storage();
        for i in 0..n {
            let o = &mut os[i * k..(i + 1) * k];
            for p in ptr[i]..ptr[i + 1] {
                let src = &vs[idx[p] * k..(idx[p] + 1) * k];
                for (a, &b) in o.iter_mut().zip(src) {
                    *a += val[p] * b;
                }
            }
        }
        out
    }
    let n = 100_000;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut t: Vec<Triplet> = (0..1_000_000)
        .map(|_| {
            (
                rng.random_range(0..n),
                rng.random_range(0..n),
                rng.random::<f64>(),
            )
        })
        .collect();
    t.sort_by_key(|x| (x.0, x.1));
    t.dedup_by_key(|x| (x.0, x.1));
    let s = SparseSeptuple::with_activation(n, &t, Array1::zeros(n), Builtin::Tanh, vec![], vec![])
        .unwrap();
    println!("N = {n}, nnz = {}", s.n_connections());
    for k in [1, 8] {
        let v = data(n, k, 2);
        let reps = 20;
        let time = |f: &dyn Fn() -> Array2<f64>| {
            let r = f();
            let t0 = std::time::Instant::now();
            for _ in 0..reps {
                std::hint::black_box(f());
            }
            (t0.elapsed().as_secs_f64() / reps as f64 * 1e3, r)
        };
        let (a, ra) = time(&|| s.weights() * &v);
        let (b, rb) = time(&|| own(s.weights(), v.view()));
        let (c, rc) = time(&|| s.weights_t() * &v);
        let (d, rd) = time(&|| own(s.weights_t(), v.view()));
        let (e, _) = time(&|| &s.weights().transpose_view() * &v);
        assert_eq!(ra, rb);
        assert_eq!(rc, rd);
        println!(
            "k = {k}: w V sprs {a:.1} ms, own {b:.1} ms; w^T V sprs {c:.1} ms, own {d:.1} ms, sprs CSC view {e:.1} ms"
        );
    }
}
