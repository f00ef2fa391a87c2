//! The `septuple` binary run as a user runs it: help, usage errors, and each command on small
//! inputs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn septuple(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_septuple"))
        .args(args)
        .output()
        .expect("the septuple binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../septuple-io/tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

/// A fresh directory under the target directory, removed first if a previous run left it.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_command_has_help() {
    let top = septuple(&["--help"]);
    assert!(top.status.success());
    for command in ["analyze", "deep-vs-shallow", "landscape"] {
        assert!(
            stdout(&top).contains(command),
            "{command} missing from --help"
        );
        let o = septuple(&[command, "--help"]);
        assert!(o.status.success(), "{command} --help failed");
        assert!(stdout(&o).contains("Usage: septuple"), "{command} --help");
    }
    assert!(stdout(&septuple(&["analyze", "--help"])).contains("--method <METHOD>"));
}

#[test]
fn usage_errors_exit_2_and_name_the_flag() {
    let o = septuple(&["deep-vs-shallow", "--epochs", "ten"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("invalid value 'ten' for '--epochs <N>': expected a whole number"),
        "{}",
        stderr(&o)
    );
    let o = septuple(&["deep-vs-shallow", "--batch=half"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("'--batch <B|full>'"));
    let o = septuple(&["analyze", "x.npz", "--method", "lanczos"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("expected one of: auto, dense, structured"));
    let o = septuple(&["landscape", "--beta", "-1", "--gamma", "0.3", "--n", "10"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--beta"));
    let o = septuple(&["deep-vs-shallow", "--paper", "--smoke"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn failures_exit_1_with_the_error() {
    let o = septuple(&["analyze", "no-such-file.safetensors"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no-such-file.safetensors"));
    // The fixture takes 5 inputs; the embedded MNIST digits have 784 pixels.
    let o = septuple(&["analyze", &fixture("mlp_f64.npz"), "--samples", "10"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("takes 5 inputs"), "{}", stderr(&o));
    assert!(stderr(&o).contains("784"));
}

#[test]
fn analyze_prints_the_report_with_its_stable_keys() {
    let dir = scratch("cli-analyze");
    let inputs = dir.join("inputs.npy");
    let x = ndarray::Array2::from_shape_fn((20, 5), |(i, j)| ((i * 5 + j) % 7) as f64 / 7.0);
    std::fs::write(&inputs, septuple_io::write_npy(x.into_dyn().view())).unwrap();
    let inputs = inputs.display().to_string();
    let o = septuple(&[
        "analyze",
        &fixture("mlp_f64.npz"),
        "--inputs",
        &inputs,
        "--beta=0.5",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning"),
        "tanh is assumed with a warning"
    );
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    for key in [
        "n_neurons",
        "layers",
        "sum_log_lambda",
        "n_dynamical",
        "log_lambda",
        "mu2",
        "mu3",
        "skewness",
        "c20",
        "c_all_but_20",
        "gap_log_lambda",
        "log_det_i_plus_beta_g",
        "laplacian_f",
        "thermo",
    ] {
        assert!(doc.get(key).is_some(), "key {key} missing");
    }
    assert_eq!(doc["n_neurons"], 14);
    assert_eq!(doc["layers"], serde_json::json!([5, 4, 3, 2]));
    // det G = 1 for a feedforward network (Sec. 7): sum log lambda vanishes up to rounding
    // of 14 logarithms of O(1) eigenvalues.
    assert!(doc["sum_log_lambda"].as_f64().unwrap().abs() < 1e-10);

    let table = septuple(&[
        "analyze",
        &fixture("mlp_f64.npz"),
        "--inputs",
        &inputs,
        "--activations",
        "relu,relu,identity",
        "--method",
        "dense",
    ]);
    assert!(table.status.success(), "{}", stderr(&table));
    assert!(!stderr(&table).contains("warning"));
    let text = stdout(&table);
    assert!(text.contains("5-4-3-2"));
    assert!(text
        .lines()
        .any(|l| l.starts_with("method") && l.ends_with("dense")));
}

#[test]
fn landscape_prints_stationary_points_and_draws_them() {
    let dir = scratch("cli-landscape");
    let svg = dir.join("landscape.svg");
    let o = septuple(&[
        "landscape",
        "--beta",
        "0.25,1",
        "--gamma",
        "0.3333333333333333",
        "--n",
        "854",
        "--from",
        "-6",
        "--svg",
        &svg.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("beta = 0.25"));
    assert!(text.contains("maximum"));
    assert!(text.contains("minimum"));
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.starts_with("<svg"));
    let json = septuple(&[
        "landscape",
        "--beta",
        "0.25",
        "--gamma",
        "0.3",
        "--n",
        "10",
        "--json",
    ]);
    assert!(json.status.success());
    let doc: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(doc[0]["beta"], 0.25);
    assert!(!doc[0]["stationary_points"].as_array().unwrap().is_empty());
}

#[test]
fn deep_vs_shallow_smoke_writes_its_metrics() {
    let out = scratch("cli-deep-vs-shallow");
    let o = septuple(&[
        "deep-vs-shallow",
        "--smoke",
        "--quiet",
        "--out",
        &out.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(csv.lines().count() > 1);
    assert!(out.join("figures/fig1_landscape.svg").exists());
    assert!(stdout(&o).contains('|'), "the summary table goes to stdout");
}
