//! The paper's two networks (Sec. 10) on the embedded MNIST subset: deep 784-40-20-10 and
//! shallow 784-60-10, tanh, N = 854 neurons each.
//!
//! `cargo run --release --example deep_vs_shallow [-- --smoke] [--data DIR] [--seed S]`
//!
//! For each network this evaluates, on the paper's 6,000 training samples: the boundary loss
//! U_d (Eq. 2.11) at the forward states, the bulk loss U (Eq. 3.1) at the forward states with
//! the outputs clamped to the targets, and U_0 (Eq. 4.1), the bulk loss minimised over the
//! hidden states by the bulk solve of Eq. (3.2).

use std::path::PathBuf;
use std::time::Instant;

use septuple::core::{
    ensemble, Boundary, BoundaryLoss, Builtin, BulkLoss, BulkSolver, Init, Layered, Loss,
    Potential, StateSource,
};
use septuple::io::{Mnist, SplitSizes};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut smoke = false;
    let mut data: Option<PathBuf> = None;
    let mut seed = 1u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--smoke" => smoke = true,
            "--data" => data = Some(args.next().ok_or("--data needs a directory")?.into()),
            "--seed" => seed = args.next().ok_or("--seed needs a number")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let mnist = Mnist::load(data.as_deref())?;
    let train = if smoke {
        mnist
            .split(SplitSizes {
                train: 200,
                test: Some(100),
            })?
            .train
    } else {
        mnist.split(SplitSizes::PAPER)?.train
    };
    let targets = train.one_hot(1.0, 0.0)?;
    let boundary = Boundary::new(train.images(), targets.view());
    println!(
        "{} training samples; networks with PyTorch's default initialisation, seed {seed}",
        train.len()
    );
    println!("| network | N | L | U_d (2.11) | U forward (3.1) | U_0 solved (4.1) | converged | solve time |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for sizes in [[784usize, 40, 20, 10].as_slice(), [784, 60, 10].as_slice()] {
        let net = Layered::random(sizes, Builtin::Tanh, Init::TorchLinear, seed)?.to_septuple();
        let depth = net.feedforward()?.depth;
        let forward = net.forward(train.images())?;
        let u_d = BoundaryLoss.mean(&net, forward.view(), &boundary)?;
        let u_fwd =
            ensemble::bulk_loss_average(&net, &Potential::none(), &boundary, StateSource::Forward)?;
        let start = Instant::now();
        let solution = BulkSolver::default().solve(&net, &Potential::none(), &boundary)?;
        let elapsed = start.elapsed();
        let u_0 = BulkLoss::new().mean(&net, solution.states.view(), &boundary)?;
        println!(
            "| {} | {} | {depth} | {u_d:.6} | {u_fwd:.6} | {u_0:.6} | {}/{} | {:.2} s |",
            sizes
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join("-"),
            net.n_neurons(),
            solution.n_converged(),
            solution.reports.len(),
            elapsed.as_secs_f64()
        );
    }
    Ok(())
}
