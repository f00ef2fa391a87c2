//! The block Golub-Kahan recurrence of the extreme singular values (`extreme_block` > 1)
//! against the exact spectrum, beside the single-vector recurrence, and its determinism.

use ndarray::{Array1, Array2};
use septuple_core::{Builtin, DenseBudget, Init, Layered, Network, SparseSeptuple};
use septuple_spectral::{extreme_singular_values, spectrum, Faer, MatrixFreeOptions, Method};

mod common;
use common::on_1_and_2_threads;

fn inputs(n_in: usize, samples: usize, seed: usize) -> Array2<f64> {
    Array2::from_shape_fn((samples, n_in), |(s, i)| {
        (((s * 31 + i * 17 + seed) % 97) as f64 / 97.0).powi(2)
    })
}

/// Eigenvalues of G ascending from the dense SVD of M.
fn exact<N: Network>(net: &N, mean: &Array1<f64>) -> Vec<f64> {
    let sep = net.to_dense(DenseBudget::default()).unwrap();
    let mut lambda = spectrum(&sep, mean.view(), Method::Dense, &Faer::default())
        .unwrap()
        .eigenvalues
        .to_vec();
    lambda.sort_by(f64::total_cmp);
    lambda
}

/// Both ends to 1e-8 relative, rank by rank, with the argument of
/// `top_k_match_the_dense_svd` in tests/matrix_free.rs: residuals <= 1e-10 sigma_max, the
/// wanted values within a factor ~3 of the end's extreme.
fn check_both_ends(ext: &septuple_spectral::ExtremeSpectrum, lambda: &[f64], k: usize) {
    assert!(ext.largest_converged && ext.smallest_converged, "{ext:?}");
    assert_eq!(ext.largest.len(), k);
    let n = lambda.len();
    for (i, r) in ext.largest.iter().enumerate() {
        let truth = lambda[n - 1 - i];
        assert!(
            ((r.lambda - truth) / truth).abs() < 1e-8,
            "lambda_{i}: {} vs {truth}",
            r.lambda
        );
        // The bound holds for the nearest eigenvalue (plus the dense SVD's own error).
        assert!((r.lambda - truth).abs() <= r.lambda_bound + 1e-12 * truth);
    }
    for (i, r) in ext.smallest.iter().enumerate() {
        let truth = lambda[i];
        assert!(
            ((r.lambda - truth) / truth).abs() < 1e-8,
            "lambda_(min+{i}): {} vs {truth}",
            r.lambda
        );
    }
}

/// 784-1000-500-10 (N = 2294): blocks of 4 and 8 give the single-vector run's 20 largest and
/// 20 smallest to 1e-8 relative against the dense SVD.
#[test]
fn blocks_match_the_dense_svd_on_a_wide_mlp() {
    let net = Layered::random(&[784, 1000, 500, 10], Builtin::Tanh, Init::TorchLinear, 3).unwrap();
    let mean = net.mean_state(inputs(784, 20, 1).view()).unwrap();
    let fp = net.derivatives_at(mean.view()).unwrap();
    let lambda = exact(&net, &mean);
    for b in [4, 8] {
        let opts = MatrixFreeOptions {
            extreme_block: b,
            ..Default::default()
        };
        let ext = extreme_singular_values(&net, fp.view(), &opts).unwrap();
        assert_eq!(ext.block, b);
        assert!(!ext.exhausted);
        check_both_ends(&ext, &lambda, 20);
    }
    let single = extreme_singular_values(&net, fp.view(), &MatrixFreeOptions::default()).unwrap();
    assert_eq!(single.block, 1, "the default is one vector");
}

/// A random sparse DAG (N = 3000, 30,000 connections, depth in the tens): blocks of 8.
#[test]
fn blocks_match_the_dense_svd_on_a_sparse_dag() {
    let net = SparseSeptuple::random_dag(3000, 200, 10, 30_000, Builtin::Tanh, 5).unwrap();
    let mean = net.mean_state(inputs(200, 8, 2).view()).unwrap();
    let fp = net.derivatives_at(mean.view()).unwrap();
    let lambda = exact(&net, &mean);
    let opts = MatrixFreeOptions {
        extreme_block: 8,
        n_extreme: 10,
        ..Default::default()
    };
    let ext = extreme_singular_values(&net, fp.view(), &opts).unwrap();
    assert_eq!(ext.block, 8);
    check_both_ends(&ext, &lambda, 10);
}

/// Where the basis and a block do not fit well inside the Krylov bound 2r + 1 (here 2 x 12
/// non-input neurons + 1 = 25), the single-vector recurrence runs, and says so.
#[test]
fn small_krylov_spaces_run_single_vectors() {
    let net = Layered::random(&[30, 8, 4], Builtin::Tanh, Init::TorchLinear, 1).unwrap();
    let mean = net.mean_state(inputs(30, 5, 0).view()).unwrap();
    let fp = net.derivatives_at(mean.view()).unwrap();
    let opts = MatrixFreeOptions {
        extreme_block: 8,
        n_extreme: 3,
        ..Default::default()
    };
    let ext = extreme_singular_values(&net, fp.view(), &opts).unwrap();
    assert_eq!(ext.block, 1);
    assert!(ext.exhausted);
}

/// Same seed, same bits on 1 and 2 threads, with N = 9010 (nine chunks of rows of the
/// block sweeps) and a restart.
#[test]
fn blocks_are_deterministic_across_thread_counts() {
    let net = Layered::random(&[6000, 3000, 10], Builtin::Tanh, Init::TorchLinear, 2).unwrap();
    let mean = net.mean_state(inputs(6000, 4, 3).view()).unwrap();
    let fp = net.derivatives_at(mean.view()).unwrap();
    let opts = MatrixFreeOptions {
        n_extreme: 3,
        extreme_basis: 16,
        extreme_max_steps: 400,
        extreme_block: 4,
        smallest: false,
        ..Default::default()
    };
    let (a, b) = on_1_and_2_threads(|| extreme_singular_values(&net, fp.view(), &opts).unwrap());
    assert_eq!(a.block, 4);
    assert!(a.steps > 16, "no restart in {} steps", a.steps);
    assert_eq!(a, b);
}
