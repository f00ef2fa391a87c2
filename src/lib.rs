//! The statistical physics of learning, after V. Vanchurin's *Towards a theory of machine
//! learning*: this crate re-exports the workspace's library crates.
//!
//! | module | crate | what it holds |
//! | --- | --- | --- |
//! | [`core`] | `septuple-core` | the septuple, propagation, boundary and bulk losses, the bulk state solve |
//! | [`spectral`] | `septuple-spectral` | the operator G of Eq. (5.6) and its spectrum |
//! | [`thermo`] | `septuple-thermo` | partition function, free energy, entropy, the laws of learning |
//! | [`train`] | `septuple-train` | SGD with observers and checkpoints |
//! | [`io`] | `septuple-io` | MNIST IDX files and network weights |
//!
//! [`analyze_layered`] adds the glue the `septuple analyze` command (crate `septuple-cli`)
//! runs: a loaded network's spectrum over samples of inputs, as one [`FileReport`].
//!
//! The experiment of Sec. 10 (training, analysis, report and figures) is the crate
//! `septuple-experiment`, which `examples/deep_vs_shallow.rs` runs; it is not re-exported here,
//! so that users of the toolkit do not compile its plotting.
//!
//! ```
//! use septuple::core::{Builtin, Init, Layered};
//! let deep = Layered::random(&[784, 40, 20, 10], Builtin::Tanh, Init::TorchLinear, 1)?;
//! let shallow = Layered::random(&[784, 60, 10], Builtin::Tanh, Init::TorchLinear, 1)?;
//! assert_eq!(deep.n_neurons(), 854);
//! assert_eq!(shallow.n_neurons(), 854);
//! # Ok::<(), septuple::core::CoreError>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub use septuple_core as core;
pub use septuple_io as io;
pub use septuple_spectral as spectral;
pub use septuple_thermo as thermo;
pub use septuple_train as train;

mod file_report;

pub use file_report::{analyze_layered, analyze_layered_with, FileReport, FileReportError};
