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
    for command in ["analyze", "deep-vs-shallow", "landscape", "sweep"] {
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
    assert!(stderr(&o).contains("expected one of: auto, dense, structured, matrix-free"));
    for (flag, value, expected) in [
        ("--probes", "1", "expected a whole number >= 2"),
        ("--tol", "-0.1", "expected a finite number >= 0"),
        ("--tol", "NaN", "expected a finite number >= 0"),
        ("--seed", "x", "expected a whole number"),
        ("--lanczos-steps", "0", "expected a whole number >= 1"),
    ] {
        let o = septuple(&["analyze", "x.npz", "--method", "matrix-free", flag, value]);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}");
        assert!(
            stderr(&o).contains(flag) && stderr(&o).contains(expected),
            "{flag} {value}: {}",
            stderr(&o)
        );
    }
    let o = septuple(&["landscape", "--beta", "-1", "--gamma", "0.3", "--n", "10"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--beta"));
    let o = septuple(&["deep-vs-shallow", "--paper", "--smoke"]);
    assert_eq!(o.status.code(), Some(2));
    let o = septuple(&["analyze", "x.npz", "--backend", "magma"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("expected faer or lapack"));
    let o = septuple(&["analyze", "x.npz", "--threads", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--threads"));
}

#[cfg(not(feature = "openblas"))]
#[test]
fn lapack_without_the_openblas_build_says_how_to_get_it() {
    let o = septuple(&["analyze", "x.npz", "--backend", "lapack"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--features openblas"), "{}", stderr(&o));
}

#[test]
fn the_dense_backends_and_thread_counts_agree() {
    // The eigenvalue problem of the 14-neuron fixture solved by faer with 1 and 2 threads (and
    // LAPACK in an openblas build): backward-stable solvers of the same matrix agree to a few
    // hundred ulp of the largest |log lambda| (~10), so 1e-10 absolute leaves room.
    let inputs = fixture_inputs("cli-backends");
    let model = fixture("mlp_f64.npz");
    let base = [
        "analyze", &model, "--inputs", &inputs, "--method", "dense", "--json",
    ];
    let one = json_of(&base);
    let mut variants = vec![vec!["--threads", "2"]];
    if cfg!(feature = "openblas") {
        variants.push(vec!["--backend", "lapack"]);
    }
    for extra in variants {
        let mut args = base.to_vec();
        args.extend(extra.iter().copied());
        let other = json_of(&args);
        let (a, b) = (
            one["log_lambda"].as_array().unwrap(),
            other["log_lambda"].as_array().unwrap(),
        );
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() < 1e-10, "{extra:?}: {x} vs {y}");
        }
    }
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

/// `--keras` reaches the runs and the summary says what it set; a flag still goes over it.
#[test]
fn deep_vs_shallow_takes_keras_defaults() {
    let out = scratch("cli-deep-vs-shallow-keras");
    let o = septuple(&[
        "deep-vs-shallow",
        "--smoke",
        "--keras",
        "--epochs",
        "2",
        "--seeds",
        "1",
        "--quiet",
        "--out",
        &out.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("lr 0.01 on Keras' mse"),
        "{}",
        stderr(&o)
    );
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("2 epochs, batch 32"), "{summary}");
    assert!(summary.contains("glorot_uniform"), "{summary}");
}

fn fixture_inputs(name: &str) -> String {
    let dir = scratch(name);
    let inputs = dir.join("inputs.npy");
    let x = ndarray::Array2::from_shape_fn((20, 5), |(i, j)| ((i * 5 + j) % 7) as f64 / 7.0);
    std::fs::write(&inputs, septuple_io::write_npy(x.into_dyn().view())).unwrap();
    inputs.display().to_string()
}

fn json_of(args: &[&str]) -> serde_json::Value {
    let o = septuple(args);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

/// The fixture MLP (5-4-3-2, N = 14, Krylov bound 14 = N) matrix-free against dense. With
/// the default 60 steps every probe exhausts its Krylov space, so each Gauss rule is exact
/// and only Hutchinson's variance remains: 64 probes at --tol 0, studentised errors t with 63
/// degrees of freedom, P(|t| > 4) ~ 2e-4 per quantity (and the seed is fixed).
#[test]
fn matrix_free_agrees_with_dense_on_the_fixture() {
    let inputs = fixture_inputs("cli-mf");
    let model = fixture("mlp_f64.npz");
    let base = [
        "analyze", &model, "--inputs", &inputs, "--beta", "0.5", "--json",
    ];
    let mut dense_args = base.to_vec();
    dense_args.extend(["--method", "dense"]);
    let dense = json_of(&dense_args);
    let mut mf_args = base.to_vec();
    mf_args.extend([
        "--method",
        "matrix-free",
        "--probes",
        "64",
        "--tol",
        "0",
        "--seed",
        "3",
    ]);
    let mf = json_of(&mf_args);
    assert_eq!(mf["method"], "matrix_free");
    assert!(mf.get("log_lambda").is_none());
    assert_eq!(mf["matrix_free"]["probes"], 64);
    assert_eq!(mf["matrix_free"]["seed"], 3);
    for key in [
        "mu2",
        "mu3",
        "skewness",
        "log_det_i_plus_beta_g",
        "laplacian_f",
    ] {
        let v = mf[key].as_f64().unwrap();
        let se = mf[format!("{key}_stderr")]
            .as_f64()
            .unwrap_or_else(|| panic!("{key}_stderr missing"));
        let truth = dense[key].as_f64().unwrap();
        assert!(
            (v - truth).abs() <= 4.0 * se + 1e-10,
            "{key}: {v} +- {se} vs dense {truth}"
        );
        assert!(dense.get(format!("{key}_stderr")).is_none());
        // Every probe is exact at 60 steps (bound 14): halving them changes nothing.
        assert_eq!(mf[format!("{key}_quadrature_change")], 0.0, "{key}");
        assert!(dense.get(format!("{key}_quadrature_change")).is_none());
    }
    assert!(mf["thermo_estimate"]["free_energy"]["stderr"].is_number());
    assert_eq!(mf["matrix_free"]["doublings"], 0);
    // The dynamical count is the structural one, exact: the dense count, no error bar.
    assert_eq!(mf["n_dynamical"], dense["n_dynamical"]);
    assert_eq!(mf["n_dynamical_method"], "structural rank of [A, A^T]");
    assert!(mf.get("n_dynamical_stderr").is_none());
    assert!(dense.get("n_dynamical_method").is_none());

    // From 2 steps, --quadrature-tol doubles them to 4, 8 and 14, the Krylov bound, where
    // every probe's space is exhausted (some break down a step early) and the rules exact.
    let mut adaptive_args = base.to_vec();
    adaptive_args.extend([
        "--method",
        "matrix-free",
        "--lanczos-steps",
        "2",
        "--quadrature-tol",
        "1e-6",
    ]);
    let adaptive = json_of(&adaptive_args);
    assert!(adaptive["matrix_free"]["lanczos_steps"].as_u64().unwrap() <= 14);
    assert_eq!(adaptive["matrix_free"]["doublings"], 3);
    assert_eq!(
        adaptive["matrix_free"]["exact_probes"],
        adaptive["matrix_free"]["probes"]
    );
    assert_eq!(adaptive["mu2_quadrature_change"], 0.0);

    let mut table_args = base[..4].to_vec();
    table_args.extend(["--method", "matrix-free", "--probes", "8"]);
    let o = septuple(&table_args);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.lines()
            .any(|l| l.starts_with("mu_2") && l.contains(" ± ")),
        "{text}"
    );
    assert!(text.contains("the structural rank of [A, A^T]"), "{text}");

    // Without reorthogonalisation no probe counts as exact, and the table says so.
    let mut none_args = base.to_vec();
    none_args.extend(["--method", "matrix-free", "--reorthogonalisation", "none"]);
    let none = json_of(&none_args);
    assert_eq!(none["matrix_free"]["reorthogonalised"], false);
    assert_eq!(none["matrix_free"]["exact_probes"], 0);
    assert_eq!(mf["matrix_free"]["reorthogonalised"], true);
    let bad = septuple(&["analyze", &model, "--reorthogonalisation", "some"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("expected one of: full, none, auto"));
    // Both sides reorthogonalised: the recurrence's bounds, and the key says so.
    let mut both_args = base.to_vec();
    both_args.extend(["--method", "matrix-free", "--extreme-sides", "both"]);
    let both = json_of(&both_args);
    assert_eq!(both["matrix_free"]["extreme_one_sided"], false);
    assert!(mf["matrix_free"]["extreme_one_sided"].is_boolean());
    let bad = septuple(&["analyze", &model, "--extreme-sides", "left"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("expected one of: right, both"));
}

#[test]
fn auto_reports_its_choice() {
    let inputs = fixture_inputs("cli-auto");
    let model = fixture("mlp_f64.npz");
    let doc = json_of(&["analyze", &model, "--inputs", &inputs, "--json"]);
    let chosen = doc["method"].as_str().unwrap();
    assert_eq!(doc["method_choice"]["method"], chosen);
    assert!(doc["method_choice"]["dense"]["flops"].is_number());
    let o = septuple(&["analyze", &model, "--inputs", &inputs, "--method", "auto"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("auto: estimated flops"));
}

/// The smoke manifest of examples/sweep with `epochs` epochs and `seeds` seeds, written into
/// `dir`.
fn sweep_manifest(dir: &Path, epochs: usize, seeds: &[u64]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sweep/smoke.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    m["experiment"]["sgd"]["epochs"] = epochs.into();
    m["experiment"]["seeds"] = seeds.to_vec().into();
    let out = dir.join("manifest.json");
    std::fs::write(&out, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    out.display().to_string()
}

fn report_of(dir: &Path) -> Vec<Vec<u8>> {
    ["sweep.md", "runs.csv", "trajectories.csv"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect()
}

#[test]
fn sweep_shards_merge_into_the_unsharded_report() {
    let dir = scratch("sweep-shards");
    let manifest = sweep_manifest(&dir, 5, &[1, 2]);
    let whole = dir.join("whole").display().to_string();
    let o = septuple(&["sweep", &manifest, "--out", &whole, "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("# Sweep `depth-smoke`"),
        "{}",
        stdout(&o)
    );
    let mut shards = Vec::new();
    for i in 0..3 {
        let out = dir.join(format!("shard{i}")).display().to_string();
        let shard = format!("{i}/3");
        let o = septuple(&[
            "sweep", &manifest, "--shard", &shard, "--out", &out, "--jobs", "1", "--quiet",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        shards.push(out);
    }
    let merged = dir.join("merged").display().to_string();
    let mut args = vec!["sweep", "merge"];
    args.extend(shards.iter().map(String::as_str));
    args.extend(["--out", merged.as_str()]);
    let o = septuple(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(report_of(Path::new(&merged)), report_of(Path::new(&whole)));
    // Two of three shards: the missing runs are named, exit code 1.
    let o = septuple(&["sweep", "merge", &shards[0], &shards[2], "--out", &merged]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("missing: d2-40-20-seed1"),
        "{}",
        stderr(&o)
    );
    // The plan lists the runs with the shard that runs each.
    let o = septuple(&["sweep", "plan", &manifest, "--shards", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let plan = stdout(&o);
    assert!(plan.contains("0\t0/4\td1-60-seed1\n"), "{plan}");
    assert!(plan.contains("5\t1/4\td6-10x6-seed2\n"), "{plan}");
    assert_eq!(plan.lines().count(), 1 + 6);
    let o = septuple(&["sweep", &manifest, "--shard", "3/3"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("0 <= i < n"), "{}", stderr(&o));
}

/// A shard killed mid-run (SIGKILL, no chance to tidy up) and resumed writes the same report
/// as one never interrupted.
#[test]
fn a_killed_sweep_resumes_to_the_uninterrupted_report() {
    let dir = scratch("sweep-kill");
    // 200 epochs: checkpoints at the analysis epochs 1, 2, 5, 10, 20, 50, 100 and 200.
    let manifest = sweep_manifest(&dir, 200, &[1]);
    let clean = dir.join("clean").display().to_string();
    let o = septuple(&["sweep", &manifest, "--out", &clean, "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let killed = dir.join("killed");
    let curve = killed.join("runs/d1-60-seed1.losses.csv");
    let mut child = Command::new(env!("CARGO_BIN_EXE_septuple"))
        .args([
            "sweep",
            &manifest,
            "--out",
            &killed.display().to_string(),
            "--jobs",
            "1",
            "--quiet",
        ])
        .spawn()
        .unwrap();
    // Kill it once the first run is past its checkpoint at epoch 20.
    let lines = |p: &Path| std::fs::read_to_string(p).map_or(0, |t| t.lines().count());
    let start = std::time::Instant::now();
    while lines(&curve) < 1 + 25 {
        assert!(
            start.elapsed().as_secs() < 300,
            "the run never reached epoch 25"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(lines(&curve) < 1 + 200, "finished before it was killed");
    let k = killed.display().to_string();
    let o = septuple(&["sweep", &manifest, "--out", &k, "--quiet"]);
    assert_eq!(o.status.code(), Some(1), "a started shard needs --resume");
    assert!(stderr(&o).contains("--resume"), "{}", stderr(&o));
    let o = septuple(&["sweep", &manifest, "--out", &k, "--resume", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(report_of(&killed), report_of(Path::new(&clean)));
}

#[test]
fn onnx_analysis_warns_that_layered_flags_do_not_apply() {
    let model = fixture("onnx/ops_f32.onnx");
    let inputs = fixture("onnx/ops_inputs.npy");
    let o = septuple(&[
        "analyze",
        &model,
        "--inputs",
        &inputs,
        "--activations",
        "relu",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--activations and --layer-order apply to layered weight files"),
        "{}",
        stderr(&o)
    );
    let o = septuple(&["analyze", &model, "--inputs", &inputs, "--json"]);
    assert!(!stderr(&o).contains("are ignored"), "{}", stderr(&o));
}
