//! MNIST: the embedded 10,000-digit subset, full MNIST from a directory, the paper's split and
//! one-hot targets.

use std::ops::Range;
use std::path::{Path, PathBuf};

use ndarray::{concatenate, s, Array2, ArrayView2, Axis};
use septuple_core::CoreError;

use crate::error::IoError;
use crate::idx::{parse_idx_images, parse_idx_labels};

/// The vendored subset's image file (this crate's
/// `data/mnist/mnist-10k-images-idx3-ubyte.gz`), gzip IDX.
pub const EMBEDDED_IMAGES_GZ: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/mnist/mnist-10k-images-idx3-ubyte.gz"
));

/// The vendored subset's label file (this crate's
/// `data/mnist/mnist-10k-labels-idx1-ubyte.gz`), gzip IDX.
pub const EMBEDDED_LABELS_GZ: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/mnist/mnist-10k-labels-idx1-ubyte.gz"
));

/// The number of training samples of the paper's experiment (Sec. 10).
pub const PAPER_TRAIN_SAMPLES: usize = 6000;

/// The number of digit classes.
pub const CLASSES: usize = 10;

/// A labelled set of images: one row per sample, pixels scaled to [0, 1], labels 0-9.
///
/// Always consistent: one label per image, every label a digit, rows x columns pixels per image.
#[derive(Clone, Debug, PartialEq)]
pub struct Mnist {
    images: Array2<f64>,
    labels: Vec<u8>,
    rows: usize,
    cols: usize,
}

/// How many samples a [`Split`] takes: the first `train` samples for training, then the next
/// `test` samples (all the remaining ones when `None`) for testing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitSizes {
    /// Samples for training, taken from the start.
    pub train: usize,
    /// Samples for testing, taken right after the training samples; `None` takes all the rest.
    pub test: Option<usize>,
}

impl SplitSizes {
    /// The paper's split (Sec. 10): the first 6,000 samples train, the rest test.
    pub const PAPER: SplitSizes = SplitSizes {
        train: PAPER_TRAIN_SAMPLES,
        test: None,
    };
}

impl Default for SplitSizes {
    fn default() -> Self {
        SplitSizes::PAPER
    }
}

/// A training set and a disjoint test set.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// The training samples.
    pub train: Mnist,
    /// The test samples.
    pub test: Mnist,
}

impl Mnist {
    /// Build from images (S x rows*cols, one row per sample) and labels (S digits 0-9).
    pub fn new(
        images: Array2<f64>,
        labels: Vec<u8>,
        rows: usize,
        cols: usize,
    ) -> Result<Self, IoError> {
        if images.nrows() != labels.len() {
            return Err(IoError::CountMismatch {
                images: images.nrows(),
                labels: labels.len(),
            });
        }
        if rows.checked_mul(cols) != Some(images.ncols()) || images.ncols() == 0 {
            return Err(CoreError::Shape {
                what: format!("image matrix of {rows} x {cols}-pixel images"),
                got: images.shape().to_vec(),
                expected: vec![labels.len(), rows.saturating_mul(cols)],
            }
            .into());
        }
        if let Some((index, &label)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l as usize >= CLASSES)
        {
            return Err(IoError::LabelOutOfRange {
                index,
                label,
                classes: CLASSES,
            });
        }
        Ok(Mnist {
            images,
            labels,
            rows,
            cols,
        })
    }

    /// The 10,000-digit subset vendored in this crate's `data/mnist/` and compiled into it: no
    /// file or path needed. Its order is a fixed class-balanced shuffle, so the paper's split
    /// takes the first 6,000 digits for training and the other 4,000 for testing.
    pub fn embedded() -> Result<Self, IoError> {
        Self::from_idx_bytes(EMBEDDED_IMAGES_GZ, EMBEDDED_LABELS_GZ)
    }

    /// Parse an IDX image file and an IDX label file held in memory, each raw or gzip.
    pub fn from_idx_bytes(images: &[u8], labels: &[u8]) -> Result<Self, IoError> {
        let images = parse_idx_images(images)?;
        let labels = parse_idx_labels(labels)?;
        Self::new(images.pixels, labels, images.rows, images.cols)
    }

    /// Read an IDX image file and an IDX label file, each raw or gzip (told by content).
    pub fn from_idx_files(
        images: impl AsRef<Path>,
        labels: impl AsRef<Path>,
    ) -> Result<Self, IoError> {
        let (images, labels) = (images.as_ref(), labels.as_ref());
        let ib = std::fs::read(images).map_err(|e| IoError::read(images, e))?;
        let lb = std::fs::read(labels).map_err(|e| IoError::read(labels, e))?;
        Self::from_idx_bytes(&ib, &lb)
    }

    /// Read MNIST from a directory.
    ///
    /// With the standard files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
    /// `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each possibly ending in `.gz`, and
    /// `images.idx3` spelt with a dot accepted too), the samples are the training file's
    /// followed by the test file's, so [`SplitSizes::PAPER`] trains on the first 6,000 of the
    /// official training set and `SplitSizes { train: 60000, test: None }` is the official
    /// split. Either pair alone works too. Without standard names, a directory holding exactly
    /// one `*images-idx3*` and one `*labels-idx1*` file (like `data/mnist/`) is read. Where a
    /// raw and a `.gz` copy of the same file sit side by side, the raw one is read.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, IoError> {
        let dir = dir.as_ref();
        let files = list_files(dir)?;
        let mut sets = Vec::new();
        for prefix in ["train", "t10k"] {
            if let Some((images, labels)) = standard_pair(dir, &files, prefix)? {
                sets.push(Self::from_idx_files(images, labels)?);
            }
        }
        if sets.is_empty() {
            let (images, labels) = generic_pair(dir, &files)?;
            return Self::from_idx_files(images, labels);
        }
        let mut sets = sets.into_iter();
        let first = sets.next().ok_or_else(|| IoError::MissingData {
            dir: dir.to_path_buf(),
            reason: "no IDX files".into(),
        })?;
        sets.try_fold(first, |acc, next| acc.concat(next))
    }

    /// The embedded subset when `dir` is `None`, otherwise [`Mnist::from_dir`].
    pub fn load(dir: Option<&Path>) -> Result<Self, IoError> {
        match dir {
            None => Self::embedded(),
            Some(d) => Self::from_dir(d),
        }
    }

    fn concat(self, other: Mnist) -> Result<Self, IoError> {
        if (self.rows, self.cols) != (other.rows, other.cols) {
            return Err(CoreError::Shape {
                what: "images of the second IDX file".into(),
                got: vec![other.rows, other.cols],
                expected: vec![self.rows, self.cols],
            }
            .into());
        }
        let images = concatenate(Axis(0), &[self.images.view(), other.images.view()])
            .map_err(|e| IoError::header("IDX image files", e.to_string()))?;
        let mut labels = self.labels;
        labels.extend_from_slice(&other.labels);
        Ok(Mnist {
            images,
            labels,
            rows: self.rows,
            cols: self.cols,
        })
    }

    /// The number of samples S.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The images, S x (rows * columns), pixel bytes divided by 255.
    pub fn images(&self) -> ArrayView2<'_, f64> {
        self.images.view()
    }

    /// The labels, one digit 0-9 per sample.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Pixel rows and columns of each image (28 x 28 for MNIST).
    pub fn image_shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Pixels per image, the input width a network needs (784 for MNIST).
    pub fn n_pixels(&self) -> usize {
        self.images.ncols()
    }

    /// How many samples carry each label 0-9.
    pub fn class_counts(&self) -> [usize; CLASSES] {
        let mut c = [0; CLASSES];
        for &l in &self.labels {
            c[l as usize] += 1;
        }
        c
    }

    /// One-hot targets (S x 10): `on` in the column of each sample's label, `off` elsewhere
    /// (1 and 0, or 1 and -1 for tanh outputs). See [`one_hot`].
    pub fn one_hot(&self, on: f64, off: f64) -> Result<Array2<f64>, IoError> {
        one_hot(&self.labels, CLASSES, on, off)
    }

    /// The samples with indices in `range`, as a new set.
    pub fn select(&self, range: Range<usize>) -> Result<Self, IoError> {
        if range.start > range.end || range.end > self.len() {
            return Err(IoError::NotEnoughSamples {
                what: "selection",
                requested: range.end.max(range.start),
                available: self.len(),
            });
        }
        Ok(Mnist {
            images: self.images.slice(s![range.clone(), ..]).to_owned(),
            labels: self.labels[range].to_vec(),
            rows: self.rows,
            cols: self.cols,
        })
    }

    /// The first `sizes.train` samples for training and the next `sizes.test` (or all the
    /// rest) for testing. [`SplitSizes::PAPER`] is the paper's split.
    pub fn split(&self, sizes: SplitSizes) -> Result<Split, IoError> {
        if sizes.train > self.len() {
            return Err(IoError::NotEnoughSamples {
                what: "training set",
                requested: sizes.train,
                available: self.len(),
            });
        }
        let left = self.len() - sizes.train;
        let test = match sizes.test {
            None => left,
            Some(t) if t <= left => t,
            Some(t) => {
                return Err(IoError::NotEnoughSamples {
                    what: "test set after the training set",
                    requested: t,
                    available: left,
                })
            }
        };
        Ok(Split {
            train: self.select(0..sizes.train)?,
            test: self.select(sizes.train..sizes.train + test)?,
        })
    }

    /// Take the images and labels out.
    pub fn into_parts(self) -> (Array2<f64>, Vec<u8>) {
        (self.images, self.labels)
    }
}

/// One-hot targets for labels: an S x `classes` matrix with `on` at (s, labels[s]) and `off`
/// everywhere else. Labels must be below `classes`; `on` and `off` must be finite.
pub fn one_hot(labels: &[u8], classes: usize, on: f64, off: f64) -> Result<Array2<f64>, IoError> {
    for (name, value) in [("on", on), ("off", off)] {
        if !value.is_finite() {
            return Err(CoreError::Parameter {
                name,
                value,
                expected: "a finite target value",
            }
            .into());
        }
    }
    let mut t = Array2::from_elem((labels.len(), classes), off);
    for (index, (&label, mut row)) in labels.iter().zip(t.rows_mut()).enumerate() {
        let c = label as usize;
        if c >= classes {
            return Err(IoError::LabelOutOfRange {
                index,
                label,
                classes,
            });
        }
        row[c] = on;
    }
    Ok(t)
}

fn list_files(dir: &Path) -> Result<Vec<String>, IoError> {
    let list_err = |e| IoError::File {
        action: "list",
        path: dir.to_path_buf(),
        source: e,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        if entry.path().is_file() {
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// The raw file if present, else the `.gz` one.
fn pick(dir: &Path, files: &[String], stems: &[String]) -> Option<PathBuf> {
    for stem in stems {
        if files.contains(stem) {
            return Some(dir.join(stem));
        }
    }
    for stem in stems {
        let gz = format!("{stem}.gz");
        if files.contains(&gz) {
            return Some(dir.join(gz));
        }
    }
    None
}

fn standard_pair(
    dir: &Path,
    files: &[String],
    prefix: &str,
) -> Result<Option<(PathBuf, PathBuf)>, IoError> {
    let images = pick(
        dir,
        files,
        &[
            format!("{prefix}-images-idx3-ubyte"),
            format!("{prefix}-images.idx3-ubyte"),
        ],
    );
    let labels = pick(
        dir,
        files,
        &[
            format!("{prefix}-labels-idx1-ubyte"),
            format!("{prefix}-labels.idx1-ubyte"),
        ],
    );
    match (images, labels) {
        (Some(i), Some(l)) => Ok(Some((i, l))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(IoError::MissingData {
            dir: dir.to_path_buf(),
            reason: format!(
                "{prefix}-images-idx3-ubyte[.gz] is present but {prefix}-labels-idx1-ubyte[.gz] is not"
            ),
        }),
        (None, Some(_)) => Err(IoError::MissingData {
            dir: dir.to_path_buf(),
            reason: format!(
                "{prefix}-labels-idx1-ubyte[.gz] is present but {prefix}-images-idx3-ubyte[.gz] is not"
            ),
        }),
    }
}

fn generic_pair(dir: &Path, files: &[String]) -> Result<(PathBuf, PathBuf), IoError> {
    let find = |kinds: [&str; 2]| -> Vec<String> {
        let mut stems: Vec<String> = files
            .iter()
            .filter(|f| kinds.iter().any(|k| f.contains(k)))
            .map(|f| f.strip_suffix(".gz").unwrap_or(f).to_string())
            .collect();
        stems.dedup();
        stems
    };
    let images = find(["images-idx3", "images.idx3"]);
    let labels = find(["labels-idx1", "labels.idx1"]);
    if images.len() != 1 || labels.len() != 1 {
        return Err(IoError::MissingData {
            dir: dir.to_path_buf(),
            reason: format!(
                "expected the four standard MNIST files (train-images-idx3-ubyte, train-labels-idx1-ubyte, \
                 t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, optionally .gz) or exactly one \
                 *images-idx3* and one *labels-idx1* file; found image files {images:?} and label files {labels:?}"
            ),
        });
    }
    let missing = || IoError::MissingData {
        dir: dir.to_path_buf(),
        reason: "IDX file vanished while listing".into(),
    };
    Ok((
        pick(dir, files, &images).ok_or_else(missing)?,
        pick(dir, files, &labels).ok_or_else(missing)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hot_places_on_and_off() {
        let t = one_hot(&[2, 0], 3, 1.0, -1.0).unwrap();
        assert_eq!(t, ndarray::array![[-1.0, -1.0, 1.0], [1.0, -1.0, -1.0]]);
        assert!(matches!(
            one_hot(&[3], 3, 1.0, 0.0),
            Err(IoError::LabelOutOfRange {
                index: 0,
                label: 3,
                classes: 3
            })
        ));
        assert!(matches!(
            one_hot(&[0], 3, f64::NAN, 0.0),
            Err(IoError::Core(CoreError::Parameter { name: "on", .. }))
        ));
    }

    #[test]
    fn split_sizes_are_checked() {
        let m = Mnist::new(Array2::zeros((5, 4)), vec![0, 1, 2, 3, 4], 2, 2).unwrap();
        let s = m
            .split(SplitSizes {
                train: 3,
                test: None,
            })
            .unwrap();
        assert_eq!(s.train.labels(), &[0, 1, 2]);
        assert_eq!(s.test.labels(), &[3, 4]);
        let s = m
            .split(SplitSizes {
                train: 1,
                test: Some(2),
            })
            .unwrap();
        assert_eq!(s.test.labels(), &[1, 2]);
        assert!(matches!(
            m.split(SplitSizes {
                train: 6,
                test: None
            }),
            Err(IoError::NotEnoughSamples {
                requested: 6,
                available: 5,
                ..
            })
        ));
        assert!(matches!(
            m.split(SplitSizes {
                train: 4,
                test: Some(2)
            }),
            Err(IoError::NotEnoughSamples {
                requested: 2,
                available: 1,
                ..
            })
        ));
    }

    #[test]
    fn new_checks_consistency() {
        assert!(matches!(
            Mnist::new(Array2::zeros((2, 4)), vec![1], 2, 2),
            Err(IoError::CountMismatch {
                images: 2,
                labels: 1
            })
        ));
        assert!(matches!(
            Mnist::new(Array2::zeros((1, 4)), vec![1], 3, 2),
            Err(IoError::Core(CoreError::Shape { .. }))
        ));
        assert!(matches!(
            Mnist::new(Array2::zeros((1, 4)), vec![12], 2, 2),
            Err(IoError::LabelOutOfRange { label: 12, .. })
        ));
    }
}
