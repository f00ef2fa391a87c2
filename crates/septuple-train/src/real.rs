//! The floating-point types the fast path's kernels are written for (f64 and f32): one kernel
//! source, monomorphised for each. A small private trait rather than a dependency on
//! `num-traits`: the kernels need only arithmetic, a zero, conversions from and to f64 and the
//! few workspace-level operations below.

use std::fmt::Debug;
use std::ops::{AddAssign, MulAssign, Neg};

use ndarray::{Array2, ArrayView, ArrayView2, CowArray, Dimension};
use septuple_core::Activation;

use crate::config::Precision;
use crate::data::Dataset;

/// A floating-point type of the fast path.
pub(crate) trait Real:
    ndarray::LinalgScalar
    + ndarray::ScalarOperand
    + AddAssign
    + MulAssign
    + Neg<Output = Self>
    + PartialEq
    + Debug
    + Send
    + Sync
{
    /// 0.
    const ZERO: Self;
    /// The [`Precision`] this type is.
    const PRECISION: Precision;
    /// The training set's inputs and targets as the workspace keeps them.
    type Data: Clone + Debug + Send + Sync;

    /// `v` rounded to this type (exact for f64).
    fn from_f64(v: f64) -> Self;
    /// `self` widened to f64 (exact).
    fn to_f64(self) -> f64;
    /// Whether `self` is neither NaN nor infinite.
    fn finite(self) -> bool;
    /// `z[i] <- f(z[i])`, `d[i] <- f'(z[i])` by [`Activation::apply_slice`].
    fn apply<A: Activation>(f: &A, z: &mut [Self], d: &mut [Self]);
    /// What the workspace keeps of `data`: nothing for f64 (the kernels read the dataset);
    /// for f32, the targets and, when `dense_inputs`, the inputs, rounded once.
    fn copy_data(data: &Dataset, dense_inputs: bool) -> Self::Data;
    /// The inputs and targets the kernels read: `data`'s own (f64) or the copies (f32). With
    /// sparse inputs the f32 input view has no rows (the kernels read the compressed rows).
    fn views<'a>(
        copy: &'a Self::Data,
        data: &'a Dataset,
    ) -> (ArrayView2<'a, Self>, ArrayView2<'a, Self>);
    /// Samples of the copied training set, if the workspace keeps a copy.
    fn copied_samples(copy: &Self::Data) -> Option<usize>;
    /// `a` in f64: borrowed for f64, widened (exactly) for f32.
    fn widen<D: Dimension>(a: ArrayView<'_, Self, D>) -> CowArray<'_, f64, D>;
}

impl Real for f64 {
    const ZERO: f64 = 0.0;
    const PRECISION: Precision = Precision::F64;
    type Data = ();

    #[inline(always)]
    fn from_f64(v: f64) -> f64 {
        v
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn finite(self) -> bool {
        self.is_finite()
    }
    #[inline(always)]
    fn apply<A: Activation>(f: &A, z: &mut [f64], d: &mut [f64]) {
        f.apply_slice(z, d);
    }
    fn copy_data(_data: &Dataset, _dense_inputs: bool) {}
    fn views<'a>(_copy: &'a (), data: &'a Dataset) -> (ArrayView2<'a, f64>, ArrayView2<'a, f64>) {
        (data.inputs(), data.targets())
    }
    fn copied_samples(_copy: &()) -> Option<usize> {
        None
    }
    fn widen<D: Dimension>(a: ArrayView<'_, f64, D>) -> CowArray<'_, f64, D> {
        a.into()
    }
}

/// f32 copies of a training set: inputs (no rows when the workspace reads them sparse) and
/// targets.
#[derive(Clone, Debug)]
pub(crate) struct Data32 {
    inputs: Array2<f32>,
    targets: Array2<f32>,
}

/// Pre-activations per block of the f32 activation: converted to f64 on the stack, evaluated
/// by the f64 [`Activation`] and rounded back.
const ACTIVATION_BLOCK: usize = 64;

impl Real for f32 {
    const ZERO: f32 = 0.0;
    const PRECISION: Precision = Precision::F32;
    type Data = Data32;

    #[inline(always)]
    fn from_f64(v: f64) -> f32 {
        // Round to nearest: the one f64 -> f32 conversion Rust has.
        v as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    fn finite(self) -> bool {
        self.is_finite()
    }
    /// The activation's f64 value and derivative at the (exactly widened) f32 pre-activation,
    /// each rounded to f32: the f32 results are the correctly rounded f64 ones (to the f64
    /// implementation's accuracy). The conversions vectorise and cost little beside the
    /// matrix products.
    #[inline(always)]
    fn apply<A: Activation>(f: &A, z: &mut [f32], d: &mut [f32]) {
        let mut z64 = [0.0f64; ACTIVATION_BLOCK];
        let mut d64 = [0.0f64; ACTIVATION_BLOCK];
        for (zc, dc) in z
            .chunks_mut(ACTIVATION_BLOCK)
            .zip(d.chunks_mut(ACTIVATION_BLOCK))
        {
            let n = zc.len();
            z64[..n]
                .iter_mut()
                .zip(zc.iter())
                .for_each(|(w, &v)| *w = f64::from(v));
            f.apply_slice(&mut z64[..n], &mut d64[..n]);
            zc.iter_mut()
                .zip(&z64[..n])
                .for_each(|(v, &w)| *v = w as f32);
            dc.iter_mut()
                .zip(&d64[..n])
                .for_each(|(v, &w)| *v = w as f32);
        }
    }
    fn copy_data(data: &Dataset, dense_inputs: bool) -> Data32 {
        let inputs = if dense_inputs {
            data.inputs().mapv(f32::from_f64)
        } else {
            Array2::zeros((0, data.inputs().ncols()))
        };
        Data32 {
            inputs,
            targets: data.targets().mapv(f32::from_f64),
        }
    }
    fn views<'a>(
        copy: &'a Data32,
        _data: &'a Dataset,
    ) -> (ArrayView2<'a, f32>, ArrayView2<'a, f32>) {
        (copy.inputs.view(), copy.targets.view())
    }
    fn copied_samples(copy: &Data32) -> Option<usize> {
        Some(copy.targets.nrows())
    }
    fn widen<D: Dimension>(a: ArrayView<'_, f32, D>) -> CowArray<'_, f64, D> {
        a.mapv(f64::from).into()
    }
}
