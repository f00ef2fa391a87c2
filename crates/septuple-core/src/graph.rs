//! The weight graph of a septuple: connections j -> i wherever neuron j feeds neuron i, its
//! topological order and depth (Eq. 2.1), shared by every kind of network.

use crate::error::CoreError;

/// A directed graph on `n` nodes stored as successor lists (compressed: one offset array and
/// one target array, O(n + edges) memory). Node j has an edge to node i when neuron j feeds
/// neuron i (`w[[i, j]] != 0`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digraph {
    offsets: Vec<usize>,
    targets: Vec<usize>,
}

/// A topological order of a [`Digraph`] and the longest-path level of each node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    /// The nodes in a topological order: every edge runs from an earlier to a later node.
    /// Among nodes whose predecessors are all placed, the order is first-in first-out by index
    /// (Kahn's algorithm with a queue), so it is deterministic.
    pub order: Vec<usize>,
    /// For each node, the length of the longest directed path that ends at it.
    pub levels: Vec<usize>,
    /// One more than the longest directed path: the number of layers L of Eq. (2.1), the
    /// nilpotency index of the graph (w^n = 0 for n >= L whatever the non-zero weights).
    pub depth: usize,
}

impl Digraph {
    /// A graph on `n` nodes with the edges `(from, to)`, in any order (repeated edges count
    /// once per occurrence). Errors if a node index is not below `n`.
    pub fn from_edges(
        n: usize,
        edges: impl IntoIterator<Item = (usize, usize)> + Clone,
    ) -> Result<Self, CoreError> {
        let mut counts = vec![0usize; n + 1];
        for (from, to) in edges.clone() {
            for node in [from, to] {
                if node >= n {
                    return Err(CoreError::IndexOutOfRange {
                        what: "connection".into(),
                        index: node,
                        n,
                    });
                }
            }
            counts[from + 1] += 1;
        }
        for k in 0..n {
            counts[k + 1] += counts[k];
        }
        let mut fill = counts.clone();
        let mut targets = vec![0usize; counts[n]];
        for (from, to) in edges {
            targets[fill[from]] = to;
            fill[from] += 1;
        }
        Ok(Digraph {
            offsets: counts,
            targets,
        })
    }

    /// The number of nodes.
    pub fn n_nodes(&self) -> usize {
        self.offsets.len() - 1
    }

    /// The number of edges.
    pub fn n_edges(&self) -> usize {
        self.targets.len()
    }

    /// The nodes that `node` has an edge to.
    pub fn successors(&self, node: usize) -> &[usize] {
        &self.targets[self.offsets[node]..self.offsets[node + 1]]
    }

    /// The topological order and the levels by Kahn's algorithm, O(n + edges); or, if the
    /// graph has a cycle, the nodes of one cycle in the order the edges run.
    pub fn topology(&self) -> Result<Topology, Vec<usize>> {
        let n = self.n_nodes();
        let mut indegree = vec![0usize; n];
        for &t in &self.targets {
            indegree[t] += 1;
        }
        let mut order: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
        order.reserve(n - order.len());
        let mut levels = vec![0usize; n];
        let mut head = 0;
        while head < order.len() {
            let j = order[head];
            head += 1;
            for &i in self.successors(j) {
                levels[i] = levels[i].max(levels[j] + 1);
                indegree[i] -= 1;
                if indegree[i] == 0 {
                    order.push(i);
                }
            }
        }
        if order.len() < n {
            return Err(self.cycle_among(&indegree));
        }
        let depth = levels.iter().copied().max().map_or(0, |l| l + 1);
        Ok(Topology {
            order,
            levels,
            depth,
        })
    }

    /// A cycle among the nodes Kahn's algorithm could not remove (indegree > 0 left): each of
    /// them has a predecessor among them, so walking predecessors must repeat a node.
    fn cycle_among(&self, indegree: &[usize]) -> Vec<usize> {
        let n = self.n_nodes();
        let remaining = |i: usize| indegree[i] > 0;
        // One remaining predecessor of every remaining node.
        let mut pred = vec![usize::MAX; n];
        for j in (0..n).filter(|&j| remaining(j)) {
            for &i in self.successors(j) {
                if remaining(i) && pred[i] == usize::MAX {
                    pred[i] = j;
                }
            }
        }
        let Some(start) = (0..n).find(|&i| remaining(i)) else {
            return Vec::new();
        };
        let mut seen = vec![usize::MAX; n];
        let mut path = Vec::new();
        let mut i = start;
        while seen[i] == usize::MAX {
            seen[i] = path.len();
            path.push(i);
            i = pred[i];
        }
        // path[seen[i]..] walks predecessors; reversed, it follows the edges.
        let mut cycle = path[seen[i]..].to_vec();
        cycle.reverse();
        cycle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_and_diamond() {
        let g = Digraph::from_edges(4, [(0, 1), (1, 2), (2, 3)]).unwrap();
        let t = g.topology().unwrap();
        assert_eq!(t.order, vec![0, 1, 2, 3]);
        assert_eq!(t.depth, 4);
        let g = Digraph::from_edges(4, [(0, 2), (1, 2), (0, 3), (2, 3)]).unwrap();
        let t = g.topology().unwrap();
        assert_eq!(t.order, vec![0, 1, 2, 3]);
        assert_eq!(t.levels, vec![0, 0, 1, 2]);
        assert_eq!(t.depth, 3);
        assert_eq!(g.n_edges(), 4);
        assert_eq!(
            Digraph::from_edges(0, [])
                .unwrap()
                .topology()
                .unwrap()
                .depth,
            0
        );
    }

    #[test]
    fn cycles_are_named_in_edge_order() {
        // 0 -> 1 -> 2 -> 3 -> 1, and 4 alone.
        let g = Digraph::from_edges(5, [(0, 1), (1, 2), (2, 3), (3, 1)]).unwrap();
        let c = g.topology().unwrap_err();
        assert_eq!(c.len(), 3);
        for k in 0..c.len() {
            let (a, b) = (c[k], c[(k + 1) % c.len()]);
            assert!(g.successors(a).contains(&b), "{c:?}");
        }
        let self_loop = Digraph::from_edges(2, [(1, 1)]).unwrap();
        assert_eq!(self_loop.topology().unwrap_err(), vec![1]);
    }

    #[test]
    fn out_of_range_edges_are_errors() {
        assert!(matches!(
            Digraph::from_edges(3, [(0, 3)]),
            Err(CoreError::IndexOutOfRange { index: 3, n: 3, .. })
        ));
    }
}
