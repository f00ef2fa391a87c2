#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub use septuple_core as core;
pub use septuple_io as io;
pub use septuple_spectral as spectral;
pub use septuple_thermo as thermo;
pub use septuple_train as train;

pub mod figures;
pub mod stats;
