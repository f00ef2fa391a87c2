//! The embedded MNIST subset and directory loading.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use septuple_io::{
    IoError, Mnist, SplitSizes, CLASSES, EMBEDDED_IMAGES_GZ, EMBEDDED_LABELS_GZ,
    PAPER_TRAIN_SAMPLES,
};
use sha2::{Digest, Sha256};

fn crate_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The (gzip sha256, decompressed sha256) the data README records for a file.
fn readme_checksums(file: &str) -> (String, String) {
    let readme = std::fs::read_to_string(crate_file("data/mnist/README.md")).unwrap();
    let row = readme
        .lines()
        .find(|l| l.starts_with(&format!("| {file} |")))
        .unwrap_or_else(|| panic!("no row for {file} in data/mnist/README.md"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    (cells[3].to_string(), cells[4].to_string())
}

#[test]
fn embedded_bytes_match_the_recorded_checksums() {
    for (file, gz) in [
        ("mnist-10k-images-idx3-ubyte.gz", EMBEDDED_IMAGES_GZ),
        ("mnist-10k-labels-idx1-ubyte.gz", EMBEDDED_LABELS_GZ),
    ] {
        let (sha_gz, sha_idx) = readme_checksums(file);
        assert_eq!(sha256_hex(gz), sha_gz, "{file}");
        assert_eq!(sha256_hex(&gunzip(gz)), sha_idx, "{file}");
    }
}

#[test]
fn embedded_subset_is_the_papers_data() {
    let m = Mnist::embedded().unwrap();
    assert_eq!(m.len(), 10_000);
    assert_eq!(m.image_shape(), (28, 28));
    assert_eq!(m.images().dim(), (10_000, 784));
    // Pixels are bytes / 255: multiplying back gives integers 0..=255 (to rounding: b/255*255
    // differs from b by at most a few ulp of 255, far below 1e-9).
    for &p in m.images().iter() {
        let b = p * 255.0;
        assert!((b - b.round()).abs() < 1e-9 && (0.0..=255.0).contains(&b));
    }
    let split = m.split(SplitSizes::PAPER).unwrap();
    assert_eq!(split.train.len(), PAPER_TRAIN_SAMPLES);
    assert_eq!(split.test.len(), 4_000);
    // Class counts of the first 6,000 as recorded in data/mnist/README.md.
    assert_eq!(
        split.train.class_counts(),
        [623, 679, 586, 630, 568, 531, 587, 630, 587, 579]
    );
    let total: [usize; CLASSES] = m.class_counts();
    assert_eq!(total.iter().sum::<usize>(), 10_000);
    assert_eq!(split.test.images().row(0), m.images().row(6_000));
    assert_eq!(split.test.labels()[0], m.labels()[6_000]);
    let t = split.train.one_hot(1.0, 0.0).unwrap();
    for (row, &l) in t.rows().into_iter().zip(split.train.labels()) {
        assert_eq!(row.sum(), 1.0);
        assert_eq!(row[l as usize], 1.0);
    }
}

#[test]
fn the_vendored_directory_reads_like_the_embedded_data() {
    let from_dir = Mnist::from_dir(crate_file("data/mnist")).unwrap();
    assert_eq!(from_dir, Mnist::embedded().unwrap());
    assert_eq!(Mnist::load(None).unwrap(), from_dir);
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("septuple-io-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Split the embedded IDX files into a "train" part (first `n` samples) and a "t10k" part.
fn idx_parts(n: usize) -> [(Vec<u8>, Vec<u8>); 2] {
    let images = gunzip(EMBEDDED_IMAGES_GZ);
    let labels = gunzip(EMBEDDED_LABELS_GZ);
    let total = labels.len() - 8;
    let part = |from: usize, to: usize| {
        let count = ((to - from) as u32).to_be_bytes();
        let mut im = vec![0, 0, 8, 3];
        im.extend_from_slice(&count);
        im.extend_from_slice(&images[8..16]);
        im.extend_from_slice(&images[16 + from * 784..16 + to * 784]);
        let mut lb = vec![0, 0, 8, 1];
        lb.extend_from_slice(&count);
        lb.extend_from_slice(&labels[8 + from..8 + to]);
        (im, lb)
    };
    [part(0, n), part(n, total)]
}

#[test]
fn a_directory_of_the_four_standard_files_is_full_mnist() {
    let dir = TempDir::new("standard");
    let [(ti, tl), (si, sl)] = idx_parts(7_000);
    // Mixed compression, and a stray .gz copy beside a raw file (the raw one is read).
    std::fs::write(dir.0.join("train-images-idx3-ubyte"), &ti).unwrap();
    std::fs::write(dir.0.join("train-images-idx3-ubyte.gz"), b"not read").unwrap();
    std::fs::write(dir.0.join("train-labels-idx1-ubyte.gz"), gzip(&tl)).unwrap();
    std::fs::write(dir.0.join("t10k-images-idx3-ubyte.gz"), gzip(&si)).unwrap();
    std::fs::write(dir.0.join("t10k-labels-idx1-ubyte"), &sl).unwrap();
    let m = Mnist::from_dir(&dir.0).unwrap();
    assert_eq!(m, Mnist::embedded().unwrap());
    let official = m
        .split(SplitSizes {
            train: 7_000,
            test: None,
        })
        .unwrap();
    assert_eq!(official.test.len(), 3_000);

    // Only the training pair: read alone.
    std::fs::remove_file(dir.0.join("t10k-images-idx3-ubyte.gz")).unwrap();
    std::fs::remove_file(dir.0.join("t10k-labels-idx1-ubyte")).unwrap();
    assert_eq!(Mnist::from_dir(&dir.0).unwrap().len(), 7_000);

    // Images without labels.
    std::fs::remove_file(dir.0.join("train-labels-idx1-ubyte.gz")).unwrap();
    assert!(matches!(
        Mnist::from_dir(&dir.0),
        Err(IoError::MissingData { .. })
    ));
}

#[test]
fn directory_errors_are_typed() {
    let dir = TempDir::new("errors");
    assert!(matches!(
        Mnist::from_dir(&dir.0),
        Err(IoError::MissingData { .. })
    ));
    assert!(matches!(
        Mnist::from_dir(dir.0.join("absent")),
        Err(IoError::File { action: "list", .. })
    ));
    let [(ti, tl), (si, _)] = idx_parts(100);
    std::fs::write(dir.0.join("a-images-idx3-ubyte"), &ti).unwrap();
    std::fs::write(dir.0.join("a-labels-idx1-ubyte"), &tl).unwrap();
    assert_eq!(Mnist::from_dir(&dir.0).unwrap().len(), 100);
    // Labels for 100 images, 9,900 images: a count mismatch.
    std::fs::write(dir.0.join("a-images-idx3-ubyte"), &si).unwrap();
    assert!(matches!(
        Mnist::from_dir(&dir.0),
        Err(IoError::CountMismatch {
            images: 9_900,
            labels: 100
        })
    ));
    // Two candidate image files: ambiguous.
    std::fs::write(dir.0.join("b-images-idx3-ubyte"), &ti).unwrap();
    assert!(matches!(
        Mnist::from_dir(&dir.0),
        Err(IoError::MissingData { .. })
    ));
}
