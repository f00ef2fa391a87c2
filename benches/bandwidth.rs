//! The physical limit of one product with M = I - f'w (Eq. 5.6) on the network of
//! `examples/large_network.rs` (N = 10^6, 10^7 connections): the machine's memory bandwidth by
//! the STREAM copy and triad kernels on two threads (arrays of 128 MiB, far beyond any cache),
//! beside M V and M^T V for blocks of k = 1 and k = 8 columns (`Network::apply_m_into`, the
//! product every matrix-free iteration is made of). Criterion reports each as bytes per second:
//! STREAM counts 16 (copy) or 24 (triad) bytes per element; a product counts the bytes it must
//! move at the least, w once (8-byte value and 8-byte column index per connection, the row
//! pointers), f' once, V read once and the result written once. The gathers V[j, :] at random
//! j come on top of that floor: a cache line of 64 bytes each, however few of its bytes are used.
//!
//! `cargo bench --bench bandwidth`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::Array2;
use rayon::prelude::*;
use septuple::core::{Builtin, Network, SparseSeptuple};

/// Elements per STREAM array: 2^24 f64, 128 MiB.
const STREAM_LEN: usize = 1 << 24;

fn stream(c: &mut Criterion) {
    let mut group = c.benchmark_group("stream");
    group.sample_size(20);
    let b = vec![1.0f64; STREAM_LEN];
    let cc = vec![2.0f64; STREAM_LEN];
    let mut a = vec![0.0f64; STREAM_LEN];
    let chunk = STREAM_LEN / 64;
    group.throughput(Throughput::Bytes(16 * STREAM_LEN as u64));
    group.bench_function("copy", |bch| {
        bch.iter(|| {
            a.par_chunks_mut(chunk)
                .zip(b.par_chunks(chunk))
                .for_each(|(a, b)| a.copy_from_slice(b))
        })
    });
    group.throughput(Throughput::Bytes(24 * STREAM_LEN as u64));
    group.bench_function("triad", |bch| {
        bch.iter(|| {
            a.par_chunks_mut(chunk)
                .zip(b.par_chunks(chunk).zip(cc.par_chunks(chunk)))
                .for_each(|(a, (b, c))| {
                    for ((a, &b), &c) in a.iter_mut().zip(b).zip(c) {
                        *a = b + 3.0 * c;
                    }
                })
        })
    });
    group.finish();
    std::hint::black_box(&a);
}

fn products(c: &mut Criterion) {
    let (n, n_in, n_out, connections) = (1_000_000, 1000, 10, 10_000_000);
    let net = SparseSeptuple::random_dag(n, n_in, n_out, connections, Builtin::Tanh, 1).unwrap();
    let x = Array2::from_shape_fn((8, n_in), |(s, i)| {
        (((s * 31 + i * 17) % 97) as f64 / 97.0).powi(2)
    });
    let mean = net.mean_state(x.view()).unwrap();
    let fp = net.derivatives_at(mean.view()).unwrap();
    let nnz = Network::n_connections(&net) as u64;
    let mut group = c.benchmark_group("m_times_block");
    group.sample_size(10);
    for k in [1usize, 8] {
        let v = Array2::from_shape_fn((n, k), |(i, c)| ((i * 7 + c * 13) % 11) as f64 - 5.0);
        let mut out = Array2::<f64>::zeros((n, k));
        let floor = 16 * nnz + 8 * (n as u64 + 1) + 8 * n as u64 + 2 * 8 * (n * k) as u64;
        group.throughput(Throughput::Bytes(floor));
        group.bench_function(BenchmarkId::new("m", k), |b| {
            b.iter(|| {
                net.apply_m_into(fp.view(), v.view(), out.view_mut())
                    .unwrap()
            })
        });
        group.bench_function(BenchmarkId::new("mt", k), |b| {
            b.iter(|| {
                net.apply_mt_into(fp.view(), v.view(), out.view_mut())
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, stream, products);
criterion_main!(benches);
