#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub use septuple_core as core;
pub use septuple_io as io;
pub use septuple_spectral as spectral;
pub use septuple_thermo as thermo;
pub use septuple_train as train;
