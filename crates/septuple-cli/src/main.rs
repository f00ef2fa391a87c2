//! `septuple`: the command line of the septuple toolkit. Every command parses its flags, calls
//! the library crates and prints: results on stdout (a table, or JSON with `--json`), progress
//! and warnings on stderr; exit code 2 for usage errors, 1 for failures.

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use septuple::io::{
    load_model, parse_activations, parse_layer_order, Activations, LayerOrder, LoadOptions, Model,
    SampleInputs,
};
use septuple::spectral::{
    analyze as analyze_network, AnalysisOptions, Faer, Method, Reorthogonalisation, Sides,
    SpectrumBackend,
};
use septuple::thermo::Landscape;
use septuple::train::Batch;
use septuple_experiment::figures::{landscape_plot, FIG1_RANGE};
use septuple_experiment::overrides::{parse_batch, Overrides, Preset};
use septuple_experiment::sweep::{merge, run_shard, Jobs, Shard, Sweep, SweepOptions};
use septuple_experiment::{run_and_report, RunOptions};

/// The statistical physics of learning (V. Vanchurin, "Towards a theory of machine learning"):
/// spectra of G, the deep-versus-shallow experiment of Sec. 10, the landscape of Eq. (9.3).
#[derive(Debug, Parser)]
#[command(name = "septuple", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The spectrum of G (Eq. 5.6) of a trained network at its mean state, with its summary
    /// and, with --beta, the thermodynamics of Secs. 5-8.
    Analyze(AnalyzeArgs),
    /// The experiment of Sec. 10: a deep (784-40-20-10) and a shallow (784-60-10) tanh network
    /// trained on MNIST and analyzed at log-spaced epochs; metrics, figures and a summary.
    DeepVsShallow(DeepVsShallowArgs),
    /// The landscape -DeltaF(log lambda) of Eq. (9.3) and its stationary points.
    Landscape(LandscapeArgs),
    /// A sweep: the runs of a manifest (networks x seeds), whole or one shard of them, and
    /// `sweep merge` to build the report from the shards' directories.
    Sweep(SweepArgs),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct SweepArgs {
    #[command(subcommand)]
    merge: Option<SweepCommand>,
    #[command(flatten)]
    run: SweepRunArgs,
}

#[derive(Debug, Subcommand)]
enum SweepCommand {
    /// Build the report (sweep.md, runs.csv, trajectories.csv, figures/) from the directories
    /// of a sweep's shards; names the runs missing, unfinished or present twice.
    Merge(SweepMergeArgs),
    /// List the runs of a manifest in order, with the shard of each for --shards N (a job
    /// array needs N tasks, numbered 0 to N-1).
    Plan(SweepPlanArgs),
}

#[derive(Debug, Args)]
struct SweepPlanArgs {
    /// The sweep's manifest.
    #[arg(value_name = "MANIFEST")]
    manifest: PathBuf,
    /// How many shards.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = positive_whole_number)]
    shards: usize,
}

#[derive(Debug, Args)]
struct SweepRunArgs {
    /// The sweep's manifest (JSON; see examples/sweep/).
    #[arg(value_name = "MANIFEST", required = true)]
    manifest: Option<PathBuf>,
    /// Run only shard I of N (0 <= I < N): the runs k with k mod N = I. Without it, every run,
    /// and the report is built in --out.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// The shard's directory.
    #[arg(long, value_name = "DIR", default_value = "results/sweep")]
    out: PathBuf,
    /// Runs trained at once: auto (one per core, each on one thread) or a number (1: one after
    /// another, each with all threads).
    #[arg(long, value_name = "auto|N", default_value = "auto")]
    jobs: String,
    /// Continue runs from their checkpoints in --out and skip finished ones.
    #[arg(long)]
    resume: bool,
    /// A directory with MNIST IDX files [default: the embedded 10,000-digit subset].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// No progress on standard error.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct SweepMergeArgs {
    /// The shards' directories.
    #[arg(value_name = "DIRS", required = true)]
    dirs: Vec<PathBuf>,
    /// Where the report goes.
    #[arg(long, value_name = "DIR", required = true)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct AnalyzeArgs {
    /// The network: .safetensors, .npz (a PyTorch state_dict of Linear layers, any key
    /// scheme), the septuple's JSON, or an .onnx model (one neuron per element of the input
    /// and of each Gemm, MatMul, Conv and AveragePool output).
    #[arg(value_name = "MODEL")]
    model: PathBuf,
    /// Samples for the mean state: an .npy or .npz array (one sample per row of its first
    /// axis) or an MNIST IDX image file (pixels / 255) [default: the embedded MNIST subset].
    #[arg(long, value_name = "FILE")]
    inputs: Option<PathBuf>,
    /// The array of an .npz --inputs file holding several.
    #[arg(long, value_name = "KEY", requires = "inputs")]
    input_key: Option<String>,
    /// Use the first N samples [default: all of --inputs, 6000 of the embedded subset].
    #[arg(long, value_name = "N", value_parser = whole_number)]
    samples: Option<usize>,
    /// Activations: one for every non-input layer (tanh) or one per layer (relu,relu,identity);
    /// tanh, relu, sigmoid, identity [default: the file's own, else tanh with a warning].
    #[arg(long, value_name = "LIST", value_parser = activations)]
    activations: Option<Activations>,
    /// The layer names in order, input side first (fc1,fc2,fc3) [default: the file's stated
    /// order, else by the numbers in the names].
    #[arg(long, value_name = "LIST", value_parser = layer_order)]
    layer_order: Option<LayerOrder>,
    /// Add the thermodynamics at this inverse temperature beta.
    #[arg(long, value_name = "B", value_parser = positive_number)]
    beta: Option<f64>,
    /// The local-objective mass m of the thermodynamics (Eq. 3.3).
    #[arg(long, value_name = "M", requires = "beta", default_value_t = 0.0, value_parser = number, allow_negative_numbers = true)]
    m: f64,
    /// How the eigenvalues are computed: auto, dense, structured or matrix-free (no spectrum:
    /// the summary and thermodynamics estimated with standard errors).
    #[arg(long, value_name = "METHOD", default_value_t = Method::Auto)]
    method: Method,
    /// matrix-free: the most probe vectors of the trace estimates [default: 64].
    #[arg(long, value_name = "P", value_parser = at_least_two)]
    probes: Option<usize>,
    /// matrix-free: stop adding probes once each monitored trace (mu_2, mu_3, and with --beta
    /// the log det and the Laplacian) has a standard error at most this fraction of its value
    /// (of tr |log G|^3 for mu_3, which can vanish) (0: use every probe) [default: 0.01].
    #[arg(long, value_name = "E", value_parser = non_negative_number, allow_negative_numbers = true)]
    tol: Option<f64>,
    /// matrix-free: Lanczos steps per probe (quadrature nodes) [default: 60]; with
    /// --quadrature-tol, the steps to start from.
    #[arg(long, value_name = "K", value_parser = positive_whole_number)]
    lanczos_steps: Option<usize>,
    /// matrix-free: choose the Lanczos steps: double them until halving them moves every
    /// monitored trace by at most this fraction of its value (of tr |log G|^3 for mu_3) (0:
    /// fixed steps) [default: 0].
    #[arg(long, value_name = "E", value_parser = non_negative_number, allow_negative_numbers = true)]
    quadrature_tol: Option<f64>,
    /// matrix-free: the most Lanczos steps --quadrature-tol may reach [default: 1920].
    #[arg(long, value_name = "K", value_parser = positive_whole_number)]
    max_lanczos_steps: Option<usize>,
    /// matrix-free: the seed of the probe vectors [default: 0].
    #[arg(long, value_name = "S", value_parser = whole_number_u64)]
    seed: Option<u64>,
    /// matrix-free: how the quadrature's Lanczos vectors are kept orthogonal: full (against
    /// every earlier one), none (only the last two kept: memory 4 N per probe) or auto (full
    /// while a batch's vectors fit 4 GiB) [default: auto].
    #[arg(long, value_name = "HOW", value_parser = reorthogonalisation)]
    reorthogonalisation: Option<Reorthogonalisation>,
    /// matrix-free: which Golub-Kahan vectors of the extreme eigenvalues are reorthogonalised:
    /// right (V only, the bounds then taken as explicit residuals, with a rerun on both sides
    /// should one miss the tolerance) or both [default: right].
    #[arg(long, value_name = "SIDES", value_parser = sides)]
    extreme_sides: Option<Sides>,
    /// dense and structured: the linear-algebra backend, faer (pure Rust) or lapack (the
    /// system OpenBLAS; needs a build with `--features openblas`).
    #[arg(long, value_name = "NAME", default_value = "faer", value_parser = backend_name)]
    backend: Backend,
    /// dense and structured with faer: its threads. Its blocked algorithms split the work by
    /// this number, so a given value gives the same bits on any machine; different values can
    /// differ in the last digits.
    #[arg(long, value_name = "T", default_value_t = 1, value_parser = positive_whole_number)]
    threads: usize,
    /// Print the report as JSON (stable keys) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DeepVsShallowArgs {
    /// The paper's scale: 30,000 epochs, one seed [default: 1,000 epochs, two seeds].
    #[arg(long, conflicts_with = "smoke")]
    paper: bool,
    /// A few epochs on a few hundred samples (a quick check).
    #[arg(long)]
    smoke: bool,
    /// TensorFlow/Keras' defaults for what the paper leaves unstated: glorot_uniform weights,
    /// zero biases, the mse loss (mean over outputs), lr 0.01, batch 32 (flags go over them).
    #[arg(long)]
    keras: bool,
    /// Epochs of every run.
    #[arg(long, value_name = "N", value_parser = whole_number)]
    epochs: Option<usize>,
    /// Samples per SGD step, or `full` for the whole training set.
    #[arg(long, value_name = "B|full", value_parser = batch)]
    batch: Option<Batch>,
    /// The learning rate.
    #[arg(long, value_name = "X", value_parser = positive_number)]
    lr: Option<f64>,
    /// Runs of each network, with seeds 1..=K.
    #[arg(long, value_name = "K", value_parser = whole_number_u64)]
    seeds: Option<u64>,
    /// Analyze (U, the spectrum, the thermodynamics) at K epochs per decade, evenly in log
    /// epoch [default: 1, 2, 5, 10, 20, 50, ...]; U_d is kept at every epoch regardless.
    #[arg(long, value_name = "K", value_parser = positive_whole_number)]
    analyses_per_decade: Option<usize>,
    /// A directory with MNIST IDX files [default: the embedded 10,000-digit subset].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Where metrics.csv, metrics.json, summary.md, figures/ and runs/ go.
    #[arg(long, value_name = "DIR", default_value = "results/deep_vs_shallow")]
    out: PathBuf,
    /// Continue an interrupted run in --out from its checkpoints (finished runs are read back).
    #[arg(long)]
    resume: bool,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct LandscapeArgs {
    /// The inverse temperatures, separated by commas (0.25,0.5,0.73,1).
    #[arg(long, value_name = "B[,B2,...]", value_delimiter = ',', required = true, value_parser = positive_number)]
    beta: Vec<f64>,
    /// The fraction gamma of small eigenvalues, in (0, 1) (the paper's 1/3 is 0.3333333333333333).
    #[arg(long, value_name = "G", value_parser = number)]
    gamma: f64,
    /// The number of neurons N.
    #[arg(long, value_name = "N", value_parser = whole_number)]
    n: usize,
    /// The lower end of the range of log lambda.
    #[arg(long, value_name = "U0", default_value_t = FIG1_RANGE.0, value_parser = number, allow_negative_numbers = true)]
    from: f64,
    /// The upper end of the range of log lambda.
    #[arg(long, value_name = "U1", default_value_t = FIG1_RANGE.1, value_parser = number, allow_negative_numbers = true)]
    to: f64,
    /// Also draw -DeltaF against log lambda, with the stationary points marked, into this SVG.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Print the stationary points as JSON instead of tables.
    #[arg(long)]
    json: bool,
}

fn whole_number(s: &str) -> Result<usize, String> {
    s.trim()
        .parse()
        .map_err(|_| "expected a whole number".to_string())
}

fn whole_number_u64(s: &str) -> Result<u64, String> {
    s.trim()
        .parse()
        .map_err(|_| "expected a whole number".to_string())
}

fn positive_whole_number(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected a whole number >= 1".to_string()),
    }
}

fn reorthogonalisation(s: &str) -> Result<Reorthogonalisation, String> {
    match s.trim() {
        "full" => Ok(Reorthogonalisation::Full),
        "none" => Ok(Reorthogonalisation::None),
        "auto" => Ok(Reorthogonalisation::Auto),
        _ => Err("expected one of: full, none, auto".to_string()),
    }
}

fn sides(s: &str) -> Result<Sides, String> {
    match s.trim() {
        "right" => Ok(Sides::Right),
        "both" => Ok(Sides::Both),
        _ => Err("expected one of: right, both".to_string()),
    }
}

/// The dense backends of `analyze --backend`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Faer,
    #[cfg(feature = "openblas")]
    Lapack,
}

fn backend_name(s: &str) -> Result<Backend, String> {
    match s.trim() {
        "faer" => Ok(Backend::Faer),
        #[cfg(feature = "openblas")]
        "lapack" => Ok(Backend::Lapack),
        #[cfg(not(feature = "openblas"))]
        "lapack" => Err("lapack needs a build with the openblas feature and the system OpenBLAS (cargo install --path crates/septuple-cli --features openblas); this build has faer only".to_string()),
        _ => Err("expected faer or lapack".to_string()),
    }
}

fn at_least_two(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 2 => Ok(n),
        _ => Err("expected a whole number >= 2 (a standard error needs two probes)".to_string()),
    }
}

fn non_negative_number(s: &str) -> Result<f64, String> {
    match number(s) {
        Ok(x) if x >= 0.0 => Ok(x),
        _ => Err("expected a finite number >= 0".to_string()),
    }
}

fn number(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err("expected a finite number".to_string()),
    }
}

fn positive_number(s: &str) -> Result<f64, String> {
    match number(s) {
        Ok(x) if x > 0.0 => Ok(x),
        _ => Err("expected a positive number".to_string()),
    }
}

fn activations(s: &str) -> Result<Activations, String> {
    parse_activations(s).map_err(|e| e.to_string())
}

fn layer_order(s: &str) -> Result<LayerOrder, String> {
    Ok(parse_layer_order(s))
}

fn batch(s: &str) -> Result<Batch, String> {
    parse_batch(s).map_err(|_| "expected a whole number of samples or 'full'".to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(a) => analyze(a),
        Command::DeepVsShallow(a) => deep_vs_shallow(a),
        Command::Landscape(a) => landscape(a),
        Command::Sweep(a) => match a.merge {
            Some(SweepCommand::Merge(m)) => sweep_merge(m),
            Some(SweepCommand::Plan(p)) => sweep_plan(p),
            None => sweep(a.run),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("septuple: error: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

type Result<T = (), E = Box<dyn Error>> = std::result::Result<T, E>;

fn analyze(a: AnalyzeArgs) -> Result {
    let layered_flags = a.activations.is_some() || a.layer_order.is_some();
    let mut load = LoadOptions::default();
    if let Some(acts) = a.activations {
        load = load.with_activations(acts);
    }
    if let Some(order) = a.layer_order {
        load = load.with_layer_order(order);
    }
    let loaded = load_model(&a.model, &load)?;
    for w in &loaded.warnings {
        eprintln!("septuple: warning: {w}");
    }
    if matches!(loaded.network, Model::Onnx(_)) && layered_flags {
        eprintln!(
            "septuple: warning: --activations and --layer-order apply to layered weight files; {} is an ONNX graph, whose activations and order are its own nodes: both flags are ignored",
            a.model.display()
        );
    }
    let inputs =
        SampleInputs::load_or_embedded(a.inputs.as_deref(), a.input_key.as_deref(), a.samples)?;
    let mut options = AnalysisOptions::default().with_method(a.method);
    let mf = &mut options.matrix_free;
    if let Some(p) = a.probes {
        mf.max_probes = p;
        mf.min_probes = mf.min_probes.min(p);
        mf.batch = mf.batch.min(p);
    }
    if let Some(e) = a.tol {
        mf.rel_tol = e;
    }
    if let Some(k) = a.lanczos_steps {
        mf.max_steps = k;
    }
    if let Some(e) = a.quadrature_tol {
        mf.quadrature_tol = e;
    }
    if let Some(k) = a.max_lanczos_steps {
        mf.steps_limit = k;
    }
    if let Some(s) = a.seed {
        mf.seed = s;
    }
    if let Some(r) = a.reorthogonalisation {
        mf.reorthogonalisation = r;
    }
    if let Some(sides) = a.extreme_sides {
        mf.extreme_sides = sides;
    }
    if a.method != Method::MatrixFree
        && a.method != Method::Auto
        && (a.probes.is_some()
            || a.tol.is_some()
            || a.lanczos_steps.is_some()
            || a.quadrature_tol.is_some()
            || a.max_lanczos_steps.is_some()
            || a.seed.is_some()
            || a.reorthogonalisation.is_some()
            || a.extreme_sides.is_some())
    {
        eprintln!(
            "septuple: warning: --probes, --tol, --lanczos-steps, --quadrature-tol, --max-lanczos-steps, --seed, --reorthogonalisation and --extreme-sides apply to the matrix-free method only; --method {} ignores them",
            a.method
        );
    }
    if let Some(beta) = a.beta {
        options = options.with_thermo(beta, a.m);
    }
    eprintln!(
        "septuple: analyzing {} ({} neurons) at the mean state of {} samples",
        a.model.display(),
        loaded.network.as_network().n_neurons(),
        inputs.len()
    );
    let inputs_name = match &a.inputs {
        Some(p) => p.display().to_string(),
        None => "the embedded MNIST subset".to_string(),
    };
    let model = a.model.display().to_string();
    let faer = Faer { threads: a.threads };
    let backend: &dyn SpectrumBackend = match a.backend {
        Backend::Faer => &faer,
        #[cfg(feature = "openblas")]
        Backend::Lapack => &septuple::spectral::Lapack,
    };
    match &loaded.network {
        Model::Layered(net) => {
            let report = septuple::analyze_layered_with(
                net,
                &model,
                &inputs,
                &inputs_name,
                &options,
                backend,
            )?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
        }
        other => {
            // An imported graph (ONNX): the network has no layers to list.
            let net = other.as_network();
            inputs.check_fits(&inputs_name, net.inputs().len())?;
            let report = analyze_network(net, inputs.matrix(), &options, backend)?.report();
            if a.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{:<34} {model}", "network");
                print!("{report}");
            }
        }
    }
    Ok(())
}

fn deep_vs_shallow(a: DeepVsShallowArgs) -> Result {
    let overrides = Overrides {
        preset: match (a.paper, a.smoke) {
            (true, _) => Preset::Paper,
            (false, true) => Preset::Smoke,
            (false, false) => Preset::Quick,
        },
        epochs: a.epochs,
        batch: a.batch,
        learning_rate: a.lr,
        seeds: a.seeds,
        analyses_per_decade: a.analyses_per_decade,
        keras: a.keras,
    };
    let experiment = overrides.check()?;
    eprintln!(
        "septuple deep-vs-shallow: {} -> {}",
        experiment.describe(),
        a.out.display()
    );
    let start = Instant::now();
    let options = RunOptions {
        data: a.data,
        resume: a.resume,
        progress: !a.quiet,
    };
    let report = run_and_report(&experiment, &a.out, &options)?;
    println!("{}", report.markdown());
    eprintln!(
        "septuple deep-vs-shallow: done in {:.1} s; files in {}",
        start.elapsed().as_secs_f64(),
        a.out.display()
    );
    Ok(())
}

fn sweep(a: SweepRunArgs) -> Result {
    let Some(path) = a.manifest else {
        return Err("a sweep needs its MANIFEST".into());
    };
    let manifest = Sweep::load(&path)?;
    let shard = match &a.shard {
        Some(s) => s.parse::<Shard>()?,
        None => Shard::ALL,
    };
    let options = SweepOptions {
        data: a.data,
        resume: a.resume,
        progress: !a.quiet,
        jobs: a.jobs.parse::<Jobs>()?,
    };
    let runs = manifest.shard_runs(shard);
    eprintln!(
        "septuple sweep: {} shard {shard}: {} of {} runs, {} at once -> {}",
        manifest.manifest().name,
        runs.len(),
        manifest.runs().len(),
        options.jobs.resolve(runs.len()),
        a.out.display()
    );
    let outcome = run_shard(&manifest, shard, &a.out, &options)?;
    eprintln!(
        "septuple sweep: shard {shard} done in {:.1} s ({:.0} training samples per second)",
        outcome.wall_seconds,
        outcome.samples_trained as f64 / outcome.wall_seconds
    );
    if a.shard.is_none() {
        let report = merge(std::slice::from_ref(&a.out), &a.out)?;
        println!("{}", report.markdown());
        eprintln!("septuple sweep: report in {}", a.out.display());
    }
    Ok(())
}

fn sweep_plan(a: SweepPlanArgs) -> Result {
    let sweep = Sweep::load(&a.manifest)?;
    let runs = sweep.runs();
    println!("run\tshard\tname");
    for (k, key) in runs.iter().enumerate() {
        println!("{k}\t{}/{}\t{key}", k % a.shards, a.shards);
    }
    eprintln!(
        "septuple sweep plan: {} runs of {} epochs in {} shards of at most {}",
        runs.len(),
        sweep.experiment().config().sgd.epochs,
        a.shards,
        runs.len().div_ceil(a.shards)
    );
    Ok(())
}

fn sweep_merge(a: SweepMergeArgs) -> Result {
    let report = merge(&a.dirs, &a.out)?;
    println!("{}", report.markdown());
    eprintln!(
        "septuple sweep merge: {} runs from {} directories; report in {}",
        report.runs().len(),
        a.dirs.len(),
        a.out.display()
    );
    Ok(())
}

fn landscape(a: LandscapeArgs) -> Result {
    let summaries = a
        .beta
        .iter()
        .map(|&beta| Landscape::new(beta, a.gamma, a.n)?.summary(a.from, a.to))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(path) = &a.svg {
        landscape_plot(&a.beta, a.gamma, a.n, (a.from, a.to))?.write_svg(path)?;
        eprintln!("septuple landscape: wrote {}", path.display());
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summaries)?);
    } else {
        for (k, s) in summaries.iter().enumerate() {
            if k > 0 {
                println!();
            }
            print!("{s}");
        }
    }
    Ok(())
}
