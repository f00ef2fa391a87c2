//! Shared by the benches.

/// The paper's two networks, deep and shallow (N = 854 each, Sec. 10).
pub const PAPER_NETWORKS: [&[usize]; 2] = [&[784, 40, 20, 10], &[784, 60, 10]];

/// A network's name from its layer sizes: "784-40-20-10".
pub fn architecture(sizes: &[usize]) -> String {
    sizes
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join("-")
}
