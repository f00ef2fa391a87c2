//! Input samples for ensemble averages such as the mean state: arrays of samples from
//! `.npy` or `.npz` files, or the images of an MNIST IDX file without its labels.

use std::path::Path;

use ndarray::{s, Array2, ArrayD, ArrayView2};

use crate::error::IoError;
use crate::idx::parse_idx_images;
use crate::inflate::is_gzip;
use crate::mnist::{Mnist, PAPER_TRAIN_SAMPLES};
use crate::network::read_npz;
use crate::npy::read_npy;

/// Samples as network inputs: an S x n_in matrix, one sample per row, each sample's values
/// flattened in row-major (C) order, with the shape one sample had in the file (`[784]`,
/// `[1, 28, 28]`, `[3, 32, 32]`, ...).
///
/// Always valid: at least one sample, at least one value per sample, every value finite.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleInputs {
    matrix: Array2<f64>,
    sample_shape: Vec<usize>,
}

impl SampleInputs {
    /// Samples from an array whose first axis counts samples (S x ...), values kept as they
    /// are (no scaling). `what` names the array in errors.
    pub fn from_array(what: &str, array: ArrayD<f64>) -> Result<Self, IoError> {
        let bad = |reason: String| IoError::Samples {
            what: what.to_string(),
            reason,
        };
        let shape = array.shape().to_vec();
        if shape.len() < 2 {
            return Err(bad(format!(
                "an array of shape {shape:?}; expected samples x input shape (S x 784, S x 1 x 28 x 28, ...): at least 2 dimensions"
            )));
        }
        let samples = shape[0];
        let sample_shape = shape[1..].to_vec();
        // The array exists, so the product of its extents fits in usize.
        let n_in: usize = sample_shape.iter().product();
        if samples == 0 {
            return Err(bad(format!("an array of shape {shape:?} holds no samples")));
        }
        if n_in == 0 {
            return Err(bad(format!(
                "an array of shape {shape:?}: each sample holds no values"
            )));
        }
        // Row-major flattening of each sample, whatever the memory order of the file.
        let flat: Vec<f64> = if array.is_standard_layout() {
            array.into_raw_vec_and_offset().0
        } else {
            array.iter().copied().collect()
        };
        if let Some(i) = flat.iter().position(|v| !v.is_finite()) {
            return Err(bad(format!(
                "value {} of sample {} (flat index {} within the sample, row-major) is not finite; every input must be finite",
                flat[i],
                i / n_in,
                i % n_in
            )));
        }
        let matrix =
            Array2::from_shape_vec((samples, n_in), flat).map_err(|e| bad(e.to_string()))?;
        Ok(SampleInputs {
            matrix,
            sample_shape,
        })
    }

    /// Samples from the bytes of a `.npy` file (floating point: f2, f4 or f8).
    pub fn from_npy(bytes: &[u8]) -> Result<Self, IoError> {
        SampleInputs::from_array("npy array", read_npy("npy array", bytes)?.array)
    }

    /// Samples from the bytes of an `.npz` archive: the array `name`, or the archive's only
    /// array when `name` is `None` (an error listing the arrays when there are several).
    pub fn from_npz(bytes: &[u8], name: Option<&str>) -> Result<Self, IoError> {
        let what = "npz archive";
        let mut tensors = read_npz(bytes)?.tensors;
        let names: Vec<String> = tensors.iter().map(|(k, _, _)| k.clone()).collect();
        let index =
            match name {
                Some(n) => tensors.iter().position(|(k, _, _)| k == n).ok_or_else(|| {
                    IoError::NoSuchArray {
                        what: what.into(),
                        name: n.into(),
                        names: names.clone(),
                    }
                })?,
                None if tensors.len() == 1 => 0,
                None if tensors.is_empty() => {
                    return Err(IoError::Samples {
                        what: what.into(),
                        reason: "the archive holds no arrays".into(),
                    })
                }
                None => {
                    return Err(IoError::AmbiguousArray {
                        what: what.into(),
                        names,
                    })
                }
            };
        let (key, array, _) = tensors.swap_remove(index);
        SampleInputs::from_array(&format!("npz array {key:?}"), array)
    }

    /// The images of an MNIST IDX image file (raw or gzip), labels not needed: one sample per
    /// image, pixels scaled to byte/255 as [`crate::Mnist::images`] scales them, sample shape
    /// `[rows, cols]`.
    pub fn from_idx_images(bytes: &[u8]) -> Result<Self, IoError> {
        let images = parse_idx_images(bytes)?;
        let (rows, cols) = (images.rows, images.cols);
        if images.pixels.nrows() == 0 {
            return Err(IoError::Samples {
                what: "IDX image file".into(),
                reason: "the file holds no images".into(),
            });
        }
        Ok(SampleInputs {
            matrix: images.pixels,
            sample_shape: vec![rows, cols],
        })
    }

    /// The S x n_in matrix, one sample per row.
    pub fn matrix(&self) -> ArrayView2<'_, f64> {
        self.matrix.view()
    }

    /// The shape of one sample in the file.
    pub fn sample_shape(&self) -> &[usize] {
        &self.sample_shape
    }

    /// The number of samples S (at least 1).
    pub fn len(&self) -> usize {
        self.matrix.nrows()
    }

    /// Always false: a `SampleInputs` holds at least one sample.
    pub fn is_empty(&self) -> bool {
        self.matrix.nrows() == 0
    }

    /// Values per sample, n_in.
    pub fn n_inputs(&self) -> usize {
        self.matrix.ncols()
    }

    /// The first `n` samples; an error when there are fewer or `n` is 0.
    pub fn select(&self, n: usize) -> Result<Self, IoError> {
        if n == 0 || n > self.len() {
            return Err(IoError::NotEnoughSamples {
                what: "input samples (at least one)",
                requested: n,
                available: self.len(),
            });
        }
        Ok(SampleInputs {
            matrix: self.matrix.slice(s![..n, ..]).to_owned(),
            sample_shape: self.sample_shape.clone(),
        })
    }

    /// The matrix, taken out.
    pub fn into_matrix(self) -> Array2<f64> {
        self.matrix
    }

    /// Check that these samples fit a network with `network_inputs` input neurons: an
    /// [`IoError::InputCount`] naming both numbers when a sample holds another number of
    /// values. `what` names the samples in the error.
    pub fn check_fits(&self, what: &str, network_inputs: usize) -> Result<(), IoError> {
        if self.n_inputs() != network_inputs {
            return Err(IoError::InputCount {
                what: what.to_string(),
                network_inputs,
                sample_values: self.n_inputs(),
            });
        }
        Ok(())
    }

    /// The samples for a mean state, as the `analyze` command takes them: the file `path`
    /// through [`load_inputs`] (its array `array` if an npz), else the embedded MNIST subset
    /// ([`Mnist::embedded`], pixels / 255); then its first `samples` samples, by default all
    /// of a file's and the first [`PAPER_TRAIN_SAMPLES`] (6,000) of the embedded subset.
    pub fn load_or_embedded(
        path: Option<&Path>,
        array: Option<&str>,
        samples: Option<usize>,
    ) -> Result<Self, IoError> {
        let all = match path {
            Some(p) => load_inputs(p, array)?,
            None => SampleInputs::from(Mnist::embedded()?),
        };
        match (samples, path) {
            (Some(n), _) => all.select(n),
            (None, Some(_)) => Ok(all),
            (None, None) => all.select(PAPER_TRAIN_SAMPLES),
        }
    }
}

impl From<Mnist> for SampleInputs {
    /// The images of a data set, labels dropped: one sample per image, pixels in [0, 1],
    /// sample shape `[rows, cols]`.
    fn from(mnist: Mnist) -> Self {
        let (rows, cols) = mnist.image_shape();
        let (matrix, _) = mnist.into_parts();
        SampleInputs {
            matrix,
            sample_shape: vec![rows, cols],
        }
    }
}

/// Load input samples from a `.npy` or `.npz` file (the array `array` of an npz, or its only
/// one) or an MNIST IDX image file, told by the extension or else by the first bytes.
pub fn load_inputs(path: impl AsRef<Path>, array: Option<&str>) -> Result<SampleInputs, IoError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| IoError::read(path, e))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("npy") => SampleInputs::from_npy(&bytes),
        Some("npz") => SampleInputs::from_npz(&bytes, array),
        _ if bytes.starts_with(b"\x93NUMPY") => SampleInputs::from_npy(&bytes),
        _ if bytes.starts_with(b"PK") => SampleInputs::from_npz(&bytes, array),
        _ if bytes.starts_with(&[0, 0, 8, 3]) || is_gzip(&bytes) => {
            SampleInputs::from_idx_images(&bytes)
        }
        _ => Err(IoError::UnknownFormat {
            path: path.to_path_buf(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::npy::{write_npy_as, SaveDtype};
    use crate::npz_zip::write_stored;
    use ndarray::{Array, ArrayD, IxDyn, ShapeBuilder};

    fn npy(a: &ArrayD<f64>) -> Vec<u8> {
        write_npy_as(a.view(), SaveDtype::F64)
    }

    #[test]
    fn samples_for_a_mean_state() {
        let embedded = SampleInputs::load_or_embedded(None, None, None).unwrap();
        assert_eq!((embedded.len(), embedded.n_inputs()), (6000, 784));
        assert_eq!(embedded.sample_shape(), &[28, 28]);
        let mnist = Mnist::embedded().unwrap();
        assert_eq!(embedded.matrix(), mnist.images().slice(s![..6000, ..]));
        let few = SampleInputs::load_or_embedded(None, None, Some(10)).unwrap();
        assert_eq!(few.len(), 10);
        assert!(matches!(
            SampleInputs::load_or_embedded(None, None, Some(10_001)),
            Err(IoError::NotEnoughSamples { .. })
        ));
        few.check_fits("MNIST", 784).unwrap();
        let e = few.check_fits("MNIST", 4).unwrap_err();
        assert!(matches!(
            e,
            IoError::InputCount {
                network_inputs: 4,
                sample_values: 784,
                ..
            }
        ));
        assert!(e.to_string().contains("takes 4 inputs"));
        assert!(e.to_string().contains("hold 784 values each"));
    }

    #[test]
    fn samples_flatten_row_major_whatever_the_memory_order() {
        let c =
            Array::from_shape_vec(IxDyn(&[2, 1, 2, 3]), (0..12).map(f64::from).collect()).unwrap();
        let mut f = ArrayD::zeros(IxDyn(&[2, 1, 2, 3]).f());
        f.assign(&c);
        for a in [c.clone(), f] {
            let s = SampleInputs::from_array("x", a).unwrap();
            assert_eq!(s.sample_shape(), &[1, 2, 3]);
            assert_eq!((s.len(), s.n_inputs()), (2, 6));
            assert_eq!(
                s.matrix().row(1).to_vec(),
                (6..12).map(f64::from).collect::<Vec<_>>()
            );
        }
        let s = SampleInputs::from_npy(&npy(&c)).unwrap();
        assert_eq!(s.matrix()[[0, 5]], 5.0);
        assert_eq!(s.select(1).unwrap().len(), 1);
        assert!(matches!(s.select(3), Err(IoError::NotEnoughSamples { .. })));
        assert!(matches!(s.select(0), Err(IoError::NotEnoughSamples { .. })));
    }

    #[test]
    fn unusable_arrays_are_typed_errors() {
        let one_d = Array::from_vec(vec![1.0, 2.0]).into_dyn();
        assert!(matches!(
            SampleInputs::from_array("x", one_d),
            Err(IoError::Samples { .. })
        ));
        let none = ArrayD::<f64>::zeros(IxDyn(&[0, 784]));
        assert!(matches!(
            SampleInputs::from_npy(&npy(&none)),
            Err(IoError::Samples { .. })
        ));
        let mut bad = ArrayD::<f64>::zeros(IxDyn(&[3, 4]));
        bad[[2, 1]] = f64::NAN;
        match SampleInputs::from_array("x", bad) {
            Err(e @ IoError::Samples { .. }) => {
                assert!(e.to_string().contains("of sample 2 (flat index 1"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        // An integer array: the dtype is refused with what would be read.
        let mut ints = npy(&ArrayD::<f64>::zeros(IxDyn(&[2, 2])));
        let at = ints.windows(4).position(|w| w == b"<f8'").unwrap();
        ints[at..at + 3].copy_from_slice(b"<i8");
        assert!(matches!(
            SampleInputs::from_npy(&ints),
            Err(IoError::Unsupported { .. })
        ));
    }

    #[test]
    fn npz_arrays_are_chosen_by_name() {
        let a = ArrayD::<f64>::ones(IxDyn(&[2, 3]));
        let b = ArrayD::<f64>::zeros(IxDyn(&[4, 3]));
        let one = write_stored(&[("x.npy".into(), npy(&a))]);
        assert_eq!(SampleInputs::from_npz(&one, None).unwrap().len(), 2);
        let two = write_stored(&[("x.npy".into(), npy(&a)), ("y.npy".into(), npy(&b))]);
        match SampleInputs::from_npz(&two, None) {
            Err(IoError::AmbiguousArray { names, .. }) => assert_eq!(names, ["x", "y"]),
            other => panic!("{other:?}"),
        }
        assert_eq!(SampleInputs::from_npz(&two, Some("y")).unwrap().len(), 4);
        assert!(matches!(
            SampleInputs::from_npz(&two, Some("z")),
            Err(IoError::NoSuchArray { .. })
        ));
    }

    #[test]
    fn idx_images_without_labels() {
        let mut raw = vec![0u8, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3];
        raw.extend((0..12).map(|i| i * 20));
        let s = SampleInputs::from_idx_images(&raw).unwrap();
        assert_eq!(s.sample_shape(), &[2, 3]);
        assert_eq!(s.matrix()[[1, 5]], 220.0 / 255.0);
        let empty = [0u8, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 3];
        assert!(matches!(
            SampleInputs::from_idx_images(&empty),
            Err(IoError::Samples { .. })
        ));
    }
}
