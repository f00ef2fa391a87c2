//! Training and test data: inputs, one-hot (or any) targets, optional class labels.

use ndarray::{Array2, ArrayView1, ArrayView2, Axis};
use septuple_io::Mnist;

use crate::error::{DataError, TrainError};

/// A labelled dataset: one sample per row. `inputs` are clamped on the input neurons, `targets`
/// are the x_d of the output neurons in the boundary loss (Eq. 2.11), `labels` (optional) are the
/// classes used for accuracy (the arg-max of the outputs is compared with them).
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    inputs: Array2<f64>,
    targets: Array2<f64>,
    labels: Option<Vec<usize>>,
}

impl Dataset {
    /// A dataset from its parts. Rows must agree, values must be finite and labels (if given)
    /// must index a column of `targets`.
    pub fn new(
        inputs: Array2<f64>,
        targets: Array2<f64>,
        labels: Option<Vec<usize>>,
    ) -> Result<Self, TrainError> {
        if inputs.nrows() != targets.nrows() {
            return Err(DataError::Rows {
                inputs: inputs.nrows(),
                targets: targets.nrows(),
            }
            .into());
        }
        if inputs.nrows() == 0 {
            return Err(DataError::Empty.into());
        }
        for (what, a) in [("inputs", &inputs), ("targets", &targets)] {
            if let Some(((row, col), &value)) = a.indexed_iter().find(|(_, v)| !v.is_finite()) {
                return Err(DataError::NonFinite {
                    what,
                    row,
                    col,
                    value,
                }
                .into());
            }
        }
        if let Some(l) = &labels {
            if l.len() != inputs.nrows() {
                return Err(DataError::LabelCount {
                    labels: l.len(),
                    samples: inputs.nrows(),
                }
                .into());
            }
            if let Some(&label) = l.iter().find(|&&c| c >= targets.ncols()) {
                return Err(DataError::LabelRange {
                    label,
                    classes: targets.ncols(),
                }
                .into());
            }
        }
        Ok(Dataset {
            inputs,
            targets,
            labels,
        })
    }

    /// MNIST digits as in the paper (Sec. 10): pixels / 255 as inputs, one-hot targets with
    /// `on` for the digit's output neuron and `off` elsewhere, digits as labels.
    pub fn from_mnist(mnist: &Mnist, on: f64, off: f64) -> Result<Self, TrainError> {
        let targets = mnist.one_hot(on, off)?;
        let labels = mnist.labels().iter().map(|&d| d as usize).collect();
        Dataset::new(mnist.images().to_owned(), targets, Some(labels))
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.inputs.nrows()
    }

    /// Whether there are no samples (never true for a constructed dataset).
    pub fn is_empty(&self) -> bool {
        self.inputs.nrows() == 0
    }

    /// The inputs, one row per sample.
    pub fn inputs(&self) -> ArrayView2<'_, f64> {
        self.inputs.view()
    }

    /// The targets, one row per sample.
    pub fn targets(&self) -> ArrayView2<'_, f64> {
        self.targets.view()
    }

    /// The class labels, if any.
    pub fn labels(&self) -> Option<&[usize]> {
        self.labels.as_deref()
    }

    /// Input width.
    pub fn n_inputs(&self) -> usize {
        self.inputs.ncols()
    }

    /// Target width.
    pub fn n_targets(&self) -> usize {
        self.targets.ncols()
    }

    /// Fraction of zero inputs (the input layer of the fast path exploits it).
    pub fn input_sparsity(&self) -> f64 {
        let zeros = self.inputs.iter().filter(|&&v| v == 0.0).count();
        zeros as f64 / self.inputs.len().max(1) as f64
    }

    pub(crate) fn check_widths(&self, n_in: usize, n_out: usize) -> Result<(), TrainError> {
        if self.n_inputs() != n_in || self.n_targets() != n_out {
            return Err(DataError::Widths {
                inputs: self.n_inputs(),
                targets: self.n_targets(),
                expected_inputs: n_in,
                expected_targets: n_out,
            }
            .into());
        }
        Ok(())
    }
}

/// Fraction of rows of `outputs` whose arg-max equals the label (ties go to the first maximum).
pub fn accuracy(outputs: ArrayView2<'_, f64>, labels: &[usize]) -> f64 {
    if labels.is_empty() {
        return 0.0;
    }
    let correct = outputs
        .axis_iter(Axis(0))
        .zip(labels)
        .filter(|(row, &label)| argmax(*row) == label)
        .count();
    correct as f64 / labels.len() as f64
}

fn argmax(row: ArrayView1<'_, f64>) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn rejects_inconsistent_data() {
        let x = Array2::zeros((3, 2));
        assert!(Dataset::new(x.clone(), Array2::zeros((2, 1)), None).is_err());
        assert!(Dataset::new(x.clone(), Array2::zeros((3, 2)), Some(vec![0, 2, 1])).is_err());
        assert!(Dataset::new(x.clone(), Array2::zeros((3, 2)), Some(vec![0, 1])).is_err());
        let mut bad = x.clone();
        bad[[1, 1]] = f64::NAN;
        assert!(Dataset::new(bad, Array2::zeros((3, 2)), None).is_err());
        assert!(Dataset::new(Array2::zeros((0, 2)), Array2::zeros((0, 2)), None).is_err());
        assert!(Dataset::new(x, Array2::zeros((3, 2)), Some(vec![0, 1, 1])).is_ok());
    }

    #[test]
    fn accuracy_counts_argmax() {
        let out = array![[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]];
        assert!((accuracy(out.view(), &[1, 1, 0]) - 2.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn mnist_dataset() {
        let m = Mnist::embedded().unwrap().select(0..50).unwrap();
        let d = Dataset::from_mnist(&m, 1.0, 0.0).unwrap();
        assert_eq!((d.len(), d.n_inputs(), d.n_targets()), (50, 784, 10));
        assert!(d.input_sparsity() > 0.5);
    }
}
