//! Layered feedforward networks: the per-layer form (W_l, b_l) of a feedforward septuple.

use ndarray::{s, Array1, Array2, ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::activation::{Activation, Builtin};
use crate::error::{check_finite, CoreError};
use crate::septuple::Septuple;

/// Seeded weight initialisers for [`Layered::random`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// Glorot (Xavier) uniform: W ~ U(-a, a) with a = sqrt(6 / (fan_in + fan_out)); b = 0.
    GlorotUniform,
    /// W ~ N(0, std^2); b = 0.
    Normal {
        /// The standard deviation (finite, >= 0).
        std: f64,
    },
    /// PyTorch's `nn.Linear` default: W and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    TorchLinear,
}

/// A layered feedforward network: layer sizes n_0 (inputs), n_1, ..., n_{L-1} (outputs), weight
/// matrices W_l of shape (n_{l+1}, n_l) (the layout of PyTorch's `nn.Linear.weight`), biases b_l
/// and one activation per non-input layer.
///
/// It is the same object as a feedforward [`Septuple`] whose neurons are ordered input, hidden
/// layers in order, output, and whose w has the W_l as its only non-zero blocks;
/// [`Layered::to_septuple`] and [`Septuple::to_layered`] convert exactly. The layered form
/// propagates by one matrix product per layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    try_from = "LayeredData<A>",
    bound(
        serialize = "A: Serialize",
        deserialize = "A: Activation + Deserialize<'de>"
    )
)]
pub struct Layered<A = Builtin> {
    #[serde(skip)]
    sizes: Vec<usize>,
    weights: Vec<Array2<f64>>,
    biases: Vec<Array1<f64>>,
    activations: Vec<A>,
}

#[derive(Deserialize)]
struct LayeredData<A> {
    weights: Vec<Array2<f64>>,
    biases: Vec<Array1<f64>>,
    activations: Vec<A>,
}

impl<A: Activation> TryFrom<LayeredData<A>> for Layered<A> {
    type Error = CoreError;
    fn try_from(d: LayeredData<A>) -> Result<Self, CoreError> {
        Layered::from_layers(d.weights, d.biases, d.activations)
    }
}

impl<A: Activation> Layered<A> {
    /// Build from explicit per-layer matrices: `weights[l]` is W_{l+1} of shape (n_{l+1}, n_l),
    /// `biases[l]` has n_{l+1} entries, `activations[l]` acts on layer l+1.
    pub fn from_layers(
        weights: Vec<Array2<f64>>,
        biases: Vec<Array1<f64>>,
        activations: Vec<A>,
    ) -> Result<Self, CoreError> {
        let layers = |reason: String| CoreError::Layers { reason };
        if weights.is_empty() {
            return Err(layers(
                "no weight matrix: at least an input and an output layer are needed".into(),
            ));
        }
        if biases.len() != weights.len() || activations.len() != weights.len() {
            return Err(layers(format!(
                "{} weight matrices, {} bias vectors and {} activations; expected one of each per non-input layer",
                weights.len(),
                biases.len(),
                activations.len()
            )));
        }
        let mut sizes = vec![weights[0].ncols()];
        for (l, (w, b)) in weights.iter().zip(&biases).enumerate() {
            let fan_in = sizes[l];
            if w.ncols() != fan_in {
                return Err(CoreError::shape(
                    format!("weight matrix of layer {}", l + 1),
                    w.shape(),
                    &[w.nrows(), fan_in],
                ));
            }
            if w.nrows() == 0 || w.ncols() == 0 {
                return Err(layers(format!(
                    "layer {} has shape {:?}; every layer needs at least one neuron",
                    l + 1,
                    w.shape()
                )));
            }
            if b.len() != w.nrows() {
                return Err(CoreError::shape(
                    format!("bias vector of layer {}", l + 1),
                    b.shape(),
                    &[w.nrows()],
                ));
            }
            check_finite(&format!("weight matrix of layer {}", l + 1), w)?;
            check_finite(&format!("bias vector of layer {}", l + 1), b)?;
            sizes.push(w.nrows());
        }
        Ok(Layered {
            sizes,
            weights,
            biases,
            activations,
        })
    }

    /// A network with the given layer sizes, one activation on every non-input layer and
    /// weights drawn by `init` from a ChaCha8 stream seeded with `seed` (layer by layer, weights
    /// in row-major order, then biases). The same arguments always give the same network.
    pub fn random(
        sizes: &[usize],
        activation: A,
        init: Init,
        seed: u64,
    ) -> Result<Self, CoreError> {
        if sizes.len() < 2 || sizes.contains(&0) {
            return Err(CoreError::Layers {
                reason: format!(
                    "layer sizes {sizes:?}: expected at least two layers, each with at least one neuron"
                ),
            });
        }
        for p in sizes.windows(2) {
            // Refuse sizes whose matrices could not be addressed, rather than overflow.
            if p[0]
                .checked_mul(p[1])
                .and_then(|k| k.checked_mul(std::mem::size_of::<f64>()))
                .is_none_or(|bytes| bytes > isize::MAX as usize)
            {
                return Err(CoreError::Layers {
                    reason: format!("a {} x {} weight matrix does not fit in memory", p[1], p[0]),
                });
            }
        }
        if let Init::Normal { std } = init {
            if !(std.is_finite() && std >= 0.0) {
                return Err(CoreError::Parameter {
                    name: "std",
                    value: std,
                    expected: "a finite standard deviation >= 0",
                });
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut weights = Vec::with_capacity(sizes.len() - 1);
        let mut biases = Vec::with_capacity(sizes.len() - 1);
        for pair in sizes.windows(2) {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let (w, b) = match init {
                Init::GlorotUniform => {
                    let a = (6.0 / (fan_in + fan_out) as f64).sqrt();
                    (
                        Array2::from_shape_simple_fn((fan_out, fan_in), || uniform(&mut rng, a)),
                        Array1::zeros(fan_out),
                    )
                }
                Init::Normal { std } => (
                    Array2::from_shape_simple_fn((fan_out, fan_in), || std * normal(&mut rng)),
                    Array1::zeros(fan_out),
                ),
                Init::TorchLinear => {
                    let a = 1.0 / (fan_in as f64).sqrt();
                    let w =
                        Array2::from_shape_simple_fn((fan_out, fan_in), || uniform(&mut rng, a));
                    let b = Array1::from_shape_simple_fn(fan_out, || uniform(&mut rng, a));
                    (w, b)
                }
            };
            weights.push(w);
            biases.push(b);
        }
        Self::from_layers(weights, biases, vec![activation; sizes.len() - 1])
    }

    /// The layer sizes n_0 (inputs), ..., n_{L-1} (outputs).
    pub fn layer_sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// The number of layers L of Eq. (2.1).
    pub fn depth(&self) -> usize {
        self.sizes.len()
    }

    /// The weight matrices W_1, ..., W_{L-1}; `weights()[l]` has shape (n_{l+1}, n_l).
    pub fn weights(&self) -> &[Array2<f64>] {
        &self.weights
    }

    /// Mutable access to the weight matrices, for training. Shapes must be kept; values must stay finite.
    pub fn weights_mut(&mut self) -> &mut [Array2<f64>] {
        &mut self.weights
    }

    /// The bias vectors b_1, ..., b_{L-1}.
    pub fn biases(&self) -> &[Array1<f64>] {
        &self.biases
    }

    /// Mutable access to the bias vectors, for training. Shapes must be kept; values must stay finite.
    pub fn biases_mut(&mut self) -> &mut [Array1<f64>] {
        &mut self.biases
    }

    /// The activation of each non-input layer.
    pub fn activations(&self) -> &[A] {
        &self.activations
    }

    /// The number of neurons N = n_0 + ... + n_{L-1}.
    pub fn n_neurons(&self) -> usize {
        self.sizes.iter().sum()
    }

    /// The offset of each layer's first neuron in the global neuron order.
    pub fn offsets(&self) -> Vec<usize> {
        let mut o = Vec::with_capacity(self.sizes.len());
        let mut acc = 0;
        for &s in &self.sizes {
            o.push(acc);
            acc += s;
        }
        o
    }

    /// The layered sweep: the states of every layer for a batch of inputs (S x n_0), the input
    /// layer included, each S x n_l. The last is x(L-1) restricted to the outputs: the fixed
    /// state of Eq. (2.9) reached after L - 1 steps of Eq. (2.5), computed in one pass with one
    /// matrix product per layer.
    pub fn forward(&self, inputs: ArrayView2<'_, f64>) -> Result<Vec<Array2<f64>>, CoreError> {
        self.check_inputs(inputs)?;
        let mut out = Vec::with_capacity(self.sizes.len());
        out.push(inputs.to_owned());
        for l in 0..self.weights.len() {
            let next = self.layer_forward(l, out[l].view());
            out.push(next);
        }
        Ok(out)
    }

    /// The network's output layer for a batch of inputs (S x n_0 -> S x n_{L-1}).
    pub fn predict(&self, inputs: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        self.check_inputs(inputs)?;
        let mut x = self.layer_forward(0, inputs);
        for l in 1..self.weights.len() {
            x = self.layer_forward(l, x.view());
        }
        Ok(x)
    }

    /// f(X W_l^T + b_l) for the layer fed by `x`.
    fn layer_forward(&self, l: usize, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let mut y = x.dot(&self.weights[l].t());
        y += &self.biases[l];
        let a = &self.activations[l];
        y.mapv_inplace(|v| a.value(v));
        y
    }

    /// The fixed states x-bar of Eq. (2.9) of a batch of inputs (S x n_0), as an S x N matrix in
    /// the global neuron order (the layered sweep, concatenated).
    pub fn states(&self, inputs: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        let layers = self.forward(inputs)?;
        let mut x = Array2::zeros((inputs.nrows(), self.n_neurons()));
        for (layer, off) in layers.iter().zip(self.offsets()) {
            x.slice_mut(s![.., off..off + layer.ncols()]).assign(layer);
        }
        Ok(x)
    }

    /// The mean state `<x>` of Eq. (5.3) over the empirical ensemble of forward states of a batch
    /// of inputs (S x n_0, S >= 1).
    pub fn mean_state(&self, inputs: ArrayView2<'_, f64>) -> Result<Array1<f64>, CoreError> {
        if inputs.nrows() == 0 {
            return Err(CoreError::Empty {
                what: "input data".into(),
            });
        }
        let layers = self.forward(inputs)?;
        let mut mean = Array1::zeros(self.n_neurons());
        for (layer, off) in layers.iter().zip(self.offsets()) {
            if let Some(m) = layer.mean_axis(Axis(0)) {
                mean.slice_mut(s![off..off + layer.ncols()]).assign(&m);
            }
        }
        Ok(mean)
    }

    /// The global form: an N x N weight matrix with W_l in the block (layer l, layer l-1), the
    /// biases (zero on inputs), inputs = the first layer, outputs = the last layer. Input neurons
    /// get the first non-input layer's activation (it never acts: inputs are clamped).
    pub fn to_septuple(&self) -> Septuple<A> {
        let n = self.n_neurons();
        let offsets = self.offsets();
        let mut w = Array2::zeros((n, n));
        let mut b = Array1::zeros(n);
        let mut acts = Vec::with_capacity(n);
        acts.extend(std::iter::repeat_n(
            self.activations[0].clone(),
            self.sizes[0],
        ));
        for l in 0..self.weights.len() {
            let (r0, c0) = (offsets[l + 1], offsets[l]);
            let (rows, cols) = self.weights[l].dim();
            w.slice_mut(s![r0..r0 + rows, c0..c0 + cols])
                .assign(&self.weights[l]);
            b.slice_mut(s![r0..r0 + rows]).assign(&self.biases[l]);
            acts.extend(std::iter::repeat_n(self.activations[l].clone(), rows));
        }
        let inputs = (0..self.sizes[0]).collect();
        let outputs = (n - self.sizes[self.sizes.len() - 1]..n).collect();
        // Shapes, finiteness and disjointness hold by construction.
        Septuple::new(w, b, acts, inputs, outputs)
            .unwrap_or_else(|e| unreachable!("a valid layered network gives a valid septuple: {e}"))
    }

    fn check_inputs(&self, inputs: ArrayView2<'_, f64>) -> Result<(), CoreError> {
        if inputs.ncols() != self.sizes[0] {
            return Err(CoreError::shape(
                "input data (one row per sample, one column per input neuron)",
                inputs.shape(),
                &[inputs.nrows(), self.sizes[0]],
            ));
        }
        check_finite("input data", inputs)
    }
}

/// U(-a, a) from one uniform draw in [0, 1).
fn uniform(rng: &mut ChaCha8Rng, a: f64) -> f64 {
    a * (2.0 * rng.random::<f64>() - 1.0)
}

/// A standard normal variate by the Box-Muller transform (one draw per pair of uniforms, so the
/// stream depends on nothing but the generator).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use ndarray::array;

    #[test]
    fn random_is_deterministic_and_seed_dependent() {
        for init in [
            Init::GlorotUniform,
            Init::Normal { std: 0.3 },
            Init::TorchLinear,
        ] {
            let a = Layered::random(&[5, 4, 3], Builtin::Tanh, init, 7).unwrap();
            let b = Layered::random(&[5, 4, 3], Builtin::Tanh, init, 7).unwrap();
            let c = Layered::random(&[5, 4, 3], Builtin::Tanh, init, 8).unwrap();
            assert_eq!(a, b);
            assert_ne!(a, c);
        }
    }

    #[test]
    fn seeded_values_are_pinned() {
        // A changed random stream shows up here in review.
        let net = Layered::random(&[2, 2], Builtin::Tanh, Init::TorchLinear, 42).unwrap();
        let w = &net.weights()[0];
        let pinned = [w[[0, 0]], w[[0, 1]], w[[1, 0]], w[[1, 1]]];
        let again = Layered::random(&[2, 2], Builtin::Tanh, Init::TorchLinear, 42).unwrap();
        assert_eq!(again.weights()[0].as_slice().unwrap(), &pinned);
        for v in pinned {
            assert!(v.abs() <= 1.0 / 2f64.sqrt());
        }
    }

    #[test]
    fn initialiser_statistics() {
        // 200 x 300 = 60,000 draws: the sample variance of U(-a, a) (a^2/3) and of N(0, s^2) is
        // within a few parts in 100 (relative standard error of a variance ~ sqrt(2/n) ~ 0.6%;
        // 3% is 5 standard errors).
        let n = 60_000.0;
        let var = |w: &Array2<f64>| w.iter().map(|v| v * v).sum::<f64>() / n;
        let g = Layered::random(&[300, 200], Builtin::Tanh, Init::GlorotUniform, 1).unwrap();
        let a2 = 6.0 / 500.0;
        assert_relative_eq!(var(&g.weights()[0]), a2 / 3.0, max_relative = 0.03);
        assert!(g.biases()[0].iter().all(|&b| b == 0.0));
        let nn = Layered::random(&[300, 200], Builtin::Tanh, Init::Normal { std: 0.5 }, 1).unwrap();
        assert_relative_eq!(var(&nn.weights()[0]), 0.25, max_relative = 0.03);
        let t = Layered::random(&[300, 200], Builtin::Tanh, Init::TorchLinear, 1).unwrap();
        assert_relative_eq!(var(&t.weights()[0]), 1.0 / 300.0 / 3.0, max_relative = 0.03);
        let bound = 1.0 / 300f64.sqrt();
        assert!(t.biases()[0].iter().all(|b| b.abs() <= bound));
    }

    #[test]
    fn from_layers_errors() {
        let e = Layered::<Builtin>::from_layers(vec![], vec![], vec![]);
        assert!(matches!(e, Err(CoreError::Layers { .. })));
        let e = Layered::from_layers(
            vec![Array2::zeros((3, 2)), Array2::zeros((1, 4))],
            vec![Array1::zeros(3), Array1::zeros(1)],
            vec![Builtin::Tanh; 2],
        );
        assert!(matches!(e, Err(CoreError::Shape { .. })), "{e:?}");
        let e = Layered::from_layers(
            vec![Array2::zeros((3, 2))],
            vec![Array1::zeros(2)],
            vec![Builtin::Tanh],
        );
        assert!(matches!(e, Err(CoreError::Shape { .. })));
        let e = Layered::from_layers(
            vec![array![[f64::INFINITY]]],
            vec![Array1::zeros(1)],
            vec![Builtin::Tanh],
        );
        assert!(matches!(e, Err(CoreError::NonFinite { .. })));
        let e = Layered::random(&[3], Builtin::Tanh, Init::GlorotUniform, 0);
        assert!(matches!(e, Err(CoreError::Layers { .. })));
        let e = Layered::random(&[3, 1], Builtin::Tanh, Init::Normal { std: f64::NAN }, 0);
        assert!(matches!(e, Err(CoreError::Parameter { .. })));
    }

    #[test]
    fn forward_by_hand() {
        let net = Layered::from_layers(
            vec![array![[1.0, -1.0]], array![[2.0], [0.5]]],
            vec![array![0.1], array![0.0, -0.2]],
            vec![Builtin::Tanh, Builtin::Identity],
        )
        .unwrap();
        let x = array![[0.3, 0.1]];
        let h = (0.3f64 - 0.1 + 0.1).tanh();
        let layers = net.forward(x.view()).unwrap();
        assert_relative_eq!(layers[1][[0, 0]], h, max_relative = 1e-15);
        assert_relative_eq!(layers[2][[0, 1]], 0.5 * h - 0.2, max_relative = 1e-15);
        assert_eq!(net.predict(x.view()).unwrap(), layers[2]);
        let states = net.states(x.view()).unwrap();
        assert_eq!(
            states.row(0).to_vec(),
            vec![0.3, 0.1, h, 2.0 * h, 0.5 * h - 0.2]
        );
        assert!(net.forward(array![[1.0]].view()).is_err());
    }
}
