//! The unit eigenvalues of G (Eq. 5.6) that the graph of A = f'w fixes, counted from the
//! pattern of A alone: the dynamical count of the matrix-free path.
//!
//! With M = I - A, G - I = A^T A - A - A^T, so every x with A x = 0 and A^T x = 0 is an
//! eigenvector of G with eigenvalue exactly 1: the unit eigenspace contains the orthogonal
//! complement of Q = range(A) + range(A^T), of dimension N - rank [A, A^T]. For generic weights
//! it is all of it (docs/theory.md, "The dynamical count"), and rank [A, A^T] is the
//! structural rank of its pattern: the size of a maximum matching between the N rows and the
//! 2N columns of [A, A^T]. So the number of dynamical eigenvalues is at most the structural
//! rank, always, and equal to it unless the weights cancel exactly. Gauss quadrature cannot
//! give that count: a rule of m nodes cannot tell the atom at lambda = 1 from eigenvalues near
//! it, and counts the Ritz nodes near 1 as dynamical (on a LeNet-5, 8,878 against 6,110).

use std::borrow::Cow;
use std::collections::VecDeque;

use ndarray::ArrayView1;
use septuple_core::Network;
use serde::{Deserialize, Serialize};

use crate::error::SpectralError;

/// The dynamical count of G from the structure of A = f'w ([`structural_dynamical_count`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StructuralCount {
    /// N.
    pub n_neurons: usize,
    /// The structural rank of [A', A'^T], A' = A without its negligible rows: an upper bound on
    /// the number of eigenvalues of G with |log lambda| above the tolerance, equal to it for
    /// generic weights.
    pub n_dynamical: usize,
    /// Rows of A dropped as negligible (their root sum of squares is `dropped_norm`).
    pub dropped_rows: usize,
    /// The Frobenius norm of the dropped rows: |A - A'|_2 <= this, so every singular value of
    /// M moves by at most this much (Weyl), and the N - n_dynamical unit eigenvalues of G' lie
    /// within |log lambda| <= -2 log(1 - dropped_norm) of 0 for G.
    pub dropped_norm: f64,
}

/// The number of dynamical eigenvalues of G (Eq. 5.6; |log lambda| > `tolerance`) at f' =
/// `fp` (Eq. 5.4), from the pattern of A = f'w: the structural rank of [A', A'^T] by a maximum
/// matching (Hopcroft-Karp), in O(nnz(w) sqrt(N)) time at worst and O(N + nnz(w)) memory.
///
/// A' drops the rows of A with the smallest norms |f'_i| |w_i.| as long as their Frobenius
/// norm eps stays at or below 1 - exp(-tolerance / 2): then a unit eigenvalue of G' = (I -
/// A')^T (I - A') is within |log lambda| <= tolerance of 0 for G, so the rows whose neurons are
/// saturated (f' near 0, as a tanh far from 0) count as they do in the exact count. With
/// `tolerance` = 0 only the rows that are exactly zero go.
///
/// The result is an upper bound on the exact count, which it equals unless the weights are
/// tuned into exact cancellations (or an eigenvalue off the structural unit space happens to
/// lie within the tolerance of 1): tested against the dense count on layered, random sparse,
/// convolutional (shared kernels, pooling) and saturated networks.
pub fn structural_dynamical_count<N: Network + ?Sized>(
    net: &N,
    fp: ArrayView1<'_, f64>,
    tolerance: f64,
) -> Result<StructuralCount, SpectralError> {
    let n = net.n_neurons();
    if fp.len() != n {
        return Err(SpectralError::Shape {
            what: "f' (the activation derivatives)",
            got: vec![fp.len()],
            expected: vec![n],
        });
    }
    if fp.iter().any(|v| !v.is_finite()) {
        return Err(SpectralError::NonFinite {
            what: "f' (the activation derivatives)",
        });
    }
    if !(tolerance >= 0.0) || !tolerance.is_finite() {
        return Err(SpectralError::Parameter {
            what: "dynamical tolerance",
            value: tolerance.to_string(),
            expected: "a finite number >= 0",
        });
    }
    if u32::try_from(2 * n).is_err() {
        return Err(SpectralError::Parameter {
            what: "N (neurons) for the structural count",
            value: n.to_string(),
            expected: "2 N below 2^32",
        });
    }
    let w: Cow<'_, septuple_core::sprs::CsMat<f64>> = net.weights_sparse()?;
    let w = w.as_ref();
    let indptr = w.indptr();
    let indptr = indptr.as_slice().ok_or(SpectralError::Backend {
        reason: "the weights' CSR index pointer is not contiguous".into(),
    })?;
    let (indices, data) = (w.indices(), w.data());
    // Row norms of A, and the rows dropped: smallest first, while their Frobenius norm stays
    // within the bound (ties broken by index, so the choice is deterministic).
    let norm2: Vec<f64> = (0..n)
        .map(|i| {
            let s: f64 = data[indptr[i]..indptr[i + 1]].iter().map(|v| v * v).sum();
            fp[i] * fp[i] * s
        })
        .collect();
    let budget = -(-tolerance / 2.0).exp_m1();
    let budget2 = budget * budget;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| norm2[a].total_cmp(&norm2[b]).then(a.cmp(&b)));
    let mut kept = vec![true; n];
    let (mut dropped_rows, mut dropped2) = (0, 0.0);
    for &i in &order {
        if dropped2 + norm2[i] > budget2 && norm2[i] > 0.0 {
            break;
        }
        dropped2 += norm2[i];
        if indptr[i + 1] > indptr[i] {
            dropped_rows += 1;
        }
        kept[i] = false;
    }
    // The bipartite graph of [A', A'^T]: row i is joined to column j for A'_ij != 0 and to
    // column N + i' for every A'_i'i != 0 (an entry of A'^T in row i).
    // The entries of row i of A' (kept rows only): (j, A'_ij) for A'_ij != 0.
    let row = |i: usize| {
        let r = indptr[i]..indptr[i + 1];
        let live = kept[i];
        indices[r.clone()]
            .iter()
            .zip(&data[r])
            .filter(move |(_, &v)| live && fp[i] * v != 0.0)
            .map(|(&j, _)| j)
    };
    let mut degree = vec![0usize; n + 1];
    for i in 0..n {
        for j in row(i) {
            degree[i + 1] += 1;
            degree[j + 1] += 1;
        }
    }
    for i in 0..n {
        degree[i + 1] += degree[i];
    }
    let offsets = degree;
    let mut fill = offsets.clone();
    let mut adj = vec![0u32; offsets[n]];
    for i in 0..n {
        for j in row(i) {
            adj[fill[i]] = j as u32;
            fill[i] += 1;
            adj[fill[j]] = (n + i) as u32;
            fill[j] += 1;
        }
    }
    let rank = maximum_matching(n, 2 * n, &offsets, &adj);
    Ok(StructuralCount {
        n_neurons: n,
        n_dynamical: rank,
        dropped_rows,
        dropped_norm: dropped2.sqrt(),
    })
}

/// The structural rank of the input columns of A = f'w (the N x n_in block f'w E_I of
/// [`unit_subspace`](crate::unit_subspace)): a maximum matching between the inputs and the
/// rows with f' != 0 that they feed. None when w is only reachable densely beyond the budget.
pub(crate) fn input_columns_structural_rank<N: Network + ?Sized>(
    net: &N,
    fp: ArrayView1<'_, f64>,
) -> Result<Option<usize>, SpectralError> {
    let n = net.n_neurons();
    let w = match net.weights_sparse() {
        Ok(w) => w,
        Err(septuple_core::CoreError::TooLarge { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if fp.len() != n || u32::try_from(n).is_err() {
        return Ok(None);
    }
    let inputs = net.inputs();
    let mut column = vec![u32::MAX; n];
    for (c, &i) in inputs.iter().enumerate() {
        column[i] = c as u32;
    }
    let indptr = w.indptr();
    let indptr = indptr.raw_storage();
    let (indices, data) = (w.indices(), w.data());
    let mut degree = vec![0usize; inputs.len() + 1];
    let column = &column;
    let edges = |i: usize| {
        let r = indptr[i]..indptr[i + 1];
        let f = fp[i];
        indices[r.clone()]
            .iter()
            .zip(&data[r])
            .filter(move |&(&j, &v)| column[j] != u32::MAX && f * v != 0.0)
            .map(move |(&j, _)| column[j] as usize)
    };
    for i in 0..n {
        for c in edges(i) {
            degree[c + 1] += 1;
        }
    }
    for c in 0..inputs.len() {
        degree[c + 1] += degree[c];
    }
    let mut fill = degree.clone();
    let mut adj = vec![0u32; degree[inputs.len()]];
    for i in 0..n {
        for c in edges(i) {
            adj[fill[c]] = i as u32;
            fill[c] += 1;
        }
    }
    Ok(Some(maximum_matching(inputs.len(), n, &degree, &adj)))
}

const FREE: u32 = u32::MAX;

/// The size of a maximum matching of the bipartite graph with `n_left` left nodes, `n_right`
/// right nodes and left node u joined to `adj[offsets[u]..offsets[u + 1]]`: Hopcroft-Karp,
/// with a greedy start and iterative searches (no recursion, whatever the path lengths).
///
/// Written here rather than taken from a crate: the one Hopcroft-Karp crate takes edge lists
/// of hashed vertices, which at nnz(w) = 10^7 costs several times this CSR's memory.
fn maximum_matching(n_left: usize, n_right: usize, offsets: &[usize], adj: &[u32]) -> usize {
    let mut mate_l = vec![FREE; n_left];
    let mut mate_r = vec![FREE; n_right];
    let mut size = 0;
    for u in 0..n_left {
        if let Some(&v) = adj[offsets[u]..offsets[u + 1]]
            .iter()
            .find(|&&v| mate_r[v as usize] == FREE)
        {
            mate_l[u] = v;
            mate_r[v as usize] = u as u32;
            size += 1;
        }
    }
    let inf = u32::MAX;
    let mut dist = vec![inf; n_left];
    let mut next = vec![0usize; n_left];
    let mut queue = VecDeque::new();
    let mut stack: Vec<usize> = Vec::new();
    loop {
        // Layers by breadth-first search from the free left nodes.
        queue.clear();
        for u in 0..n_left {
            if mate_l[u] == FREE {
                dist[u] = 0;
                queue.push_back(u);
            } else {
                dist[u] = inf;
            }
        }
        let mut reachable_free = false;
        while let Some(u) = queue.pop_front() {
            for &v in &adj[offsets[u]..offsets[u + 1]] {
                let w = mate_r[v as usize];
                if w == FREE {
                    reachable_free = true;
                } else if dist[w as usize] == inf {
                    dist[w as usize] = dist[u] + 1;
                    queue.push_back(w as usize);
                }
            }
        }
        if !reachable_free {
            return size;
        }
        // Vertex-disjoint shortest augmenting paths by depth-first search along the layers.
        next.copy_from_slice(&offsets[..n_left]);
        for root in 0..n_left {
            if mate_l[root] != FREE {
                continue;
            }
            stack.clear();
            stack.push(root);
            while let Some(&u) = stack.last() {
                if next[u] == offsets[u + 1] {
                    // Dead end: no augmenting path through u in this phase.
                    dist[u] = inf;
                    stack.pop();
                    if let Some(&parent) = stack.last() {
                        next[parent] += 1;
                    }
                    continue;
                }
                let v = adj[next[u]];
                let w = mate_r[v as usize];
                if w == FREE {
                    // Augment along the stack: each u on it takes the v its cursor points at.
                    for &x in &stack {
                        let vx = adj[next[x]];
                        mate_l[x] = vx;
                        mate_r[vx as usize] = x as u32;
                    }
                    for &x in &stack {
                        dist[x] = inf;
                    }
                    size += 1;
                    break;
                } else if dist[w as usize] == dist[u] + 1 {
                    stack.push(w as usize);
                } else {
                    next[u] += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr(n_left: usize, edges: &[(usize, u32)]) -> (Vec<usize>, Vec<u32>) {
        let mut offsets = vec![0; n_left + 1];
        let mut adj = Vec::new();
        for u in 0..n_left {
            adj.extend(edges.iter().filter(|e| e.0 == u).map(|e| e.1));
            offsets[u + 1] = adj.len();
        }
        (offsets, adj)
    }

    /// Brute force: the largest k such that some k left nodes match k right nodes.
    fn brute(n_left: usize, n_right: usize, edges: &[(usize, u32)]) -> usize {
        fn go(u: usize, n_left: usize, used: &mut Vec<bool>, edges: &[(usize, u32)]) -> usize {
            if u == n_left {
                return 0;
            }
            let mut best = go(u + 1, n_left, used, edges);
            for e in edges.iter().filter(|e| e.0 == u) {
                let v = e.1 as usize;
                if !used[v] {
                    used[v] = true;
                    best = best.max(1 + go(u + 1, n_left, used, edges));
                    used[v] = false;
                }
            }
            best
        }
        go(0, n_left, &mut vec![false; n_right], edges)
    }

    #[test]
    fn matching_sizes_agree_with_brute_force() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..300 {
            let n_left = rng.random_range(1..8);
            let n_right = rng.random_range(1..8);
            let p: f64 = rng.random_range(0.05..0.6);
            let mut edges = Vec::new();
            for u in 0..n_left {
                for v in 0..n_right {
                    if rng.random_bool(p) {
                        edges.push((u, v as u32));
                    }
                }
            }
            let (offsets, adj) = csr(n_left, &edges);
            assert_eq!(
                maximum_matching(n_left, n_right, &offsets, &adj),
                brute(n_left, n_right, &edges),
                "{edges:?}"
            );
        }
    }

    #[test]
    fn a_greedy_start_is_improved_by_augmenting_paths() {
        // Greedy matches 0-0 and leaves 1 (joined to 0 only) free; the augmenting path
        // 1-0-0-1 gives the perfect matching.
        let edges = [(0, 0), (0, 1), (1, 0)];
        let (offsets, adj) = csr(2, &edges);
        assert_eq!(maximum_matching(2, 2, &offsets, &adj), 2);
    }
}
