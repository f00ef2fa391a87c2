//! ONNX models as sparse septuples: every element of the input tensor and of the output of
//! each affine node (Gemm, MatMul (+ Add), Conv, AveragePool) is one neuron, connected by the
//! exact weights of the node, so a convolution becomes a sparse w (Eqs. 2.1-2.3).
//!
//! The file is decoded with `prost` from the ONNX schema (`onnx.proto`, code generated once and
//! committed in `proto.rs`; see `src/onnx/README.md` for how and why); everything a node
//! claims (dims, attributes, sizes) is checked here before it is used or allocated.

mod graph;
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    unreachable_pub,
    dead_code,
    rustdoc::all
)]
pub(crate) mod proto;
mod tensor;

use std::ops::Range;
use std::path::Path;

use prost::Message;
use septuple_core::{Builtin, DenseBudget, SparseSeptuple};

use crate::error::IoError;

pub use graph::SUPPORTED_OPS;

/// The first bytes of a protobuf `ModelProto` as exporters write it: field 1 (`ir_version`,
/// a varint), tag byte 0x08.
pub(crate) fn looks_like_onnx(bytes: &[u8]) -> bool {
    // ir_version is 1..=11 today: a one-byte varint after the tag.
    matches!(bytes, [0x08, v, ..] if (1..=32).contains(v))
}

/// A graph output of an imported ONNX model: its name, its tensor shape and the neurons
/// holding its elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnnxOutput {
    /// The output's name in the graph.
    pub name: String,
    /// Its shape (the batch dimension 1 included, as the model states it).
    pub shape: Vec<usize>,
    /// The positions of its elements (row-major) among the network's output neurons
    /// ([`Network::outputs`](septuple_core::Network::outputs)).
    pub columns: Range<usize>,
}

/// An ONNX model imported as a sparse septuple (Sec. 2), with the names and shapes of its
/// tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct OnnxModel {
    /// The network: w, b and f of Eqs. (2.1)-(2.6) with P_in on the input tensor's elements
    /// and P_out on the graph outputs' elements.
    pub network: SparseSeptuple<Builtin>,
    /// The name of the graph's data input.
    pub input_name: String,
    /// The input tensor's shape (batch dimension 1 included); each sample is this tensor
    /// flattened row-major (NCHW).
    pub input_shape: Vec<usize>,
    /// The graph outputs, in the graph's order; their elements are the network's output
    /// neurons in this order.
    pub outputs: Vec<OnnxOutput>,
    /// For every neuron, the tensor it is an element of (the input's name, or the output
    /// name of the node that made it).
    pub neuron_tensors: Vec<(String, Range<usize>)>,
}

/// Import an ONNX model from the bytes of a `.onnx` file as a [`SparseSeptuple`].
///
/// The network is built as Sec. 2 describes a neural septuple: w (Eq. 2.1, nilpotent for
/// an acyclic graph), P_in onto the input tensor's elements (Eq. 2.2: no connection into
/// them) and P_out onto the graph outputs' elements (Eq. 2.3: no connection out of them; an
/// output also consumed inside the graph is copied into identity neurons). Neurons in order:
/// the input tensor's elements, then node by node in topological order the elements of each
/// Gemm, MatMul (+ Add), Conv and AveragePool output, each tensor row-major (NCHW); the
/// activation of a neuron is the activation node directly after its node (Tanh, Relu,
/// Sigmoid, LeakyRelu), else the identity. Flatten, Reshape and Identity make no neurons;
/// BatchNormalization and an Add of a constant are folded into the affine map before them; an
/// Add of two branches becomes connections from both (a residual connection). An activation
/// that follows no affine node, and an output that is not a set of neurons, gets identity-fed
/// neurons of its own. Weights keep their file values exactly (float32 and float16 converted
/// to f64).
///
/// The leading dimension of the input is the batch (it must be 1 or symbolic); a sample is
/// one input tensor flattened row-major, so inputs of shape S x 1 x 28 x 28 or S x 784 fit a
/// 1 x 1 x 28 x 28 model. `budget` bounds the memory the import may take (neurons and
/// connections at about 100 bytes each), so a small file cannot ask for a huge network.
///
/// Errors: [`IoError::OnnxDecode`] for a file that is not a `ModelProto`,
/// [`IoError::OnnxUnsupportedOp`] naming a node whose op is not one of [`SUPPORTED_OPS`],
/// [`IoError::OnnxGraph`] for a graph that is not a feedforward network of one data input
/// (several inputs, a cycle, missing tensors, inconsistent shapes or attributes),
/// [`IoError::TooLarge`] beyond `budget`, and the initializer errors (sizes that do not
/// match the data present, non-finite weights, external data).
pub fn onnx_from_bytes(
    bytes: &[u8],
    source: &str,
    budget: DenseBudget,
) -> Result<OnnxModel, IoError> {
    let model = proto::ModelProto::decode(bytes).map_err(|e| IoError::OnnxDecode {
        what: source.to_string(),
        reason: e.to_string(),
    })?;
    let graph = model.graph.as_ref().ok_or_else(|| IoError::OnnxGraph {
        what: format!("model {source}"),
        reason: "it holds no graph; expected a ModelProto with a GraphProto".into(),
    })?;
    if !graph.sparse_initializer.is_empty() {
        return Err(IoError::unsupported(
            format!("model {source}"),
            "sparse initializers; expected dense initializers",
        ));
    }
    graph::import(graph, budget)
}

/// Import an ONNX model from a `.onnx` file; see [`onnx_from_bytes`].
pub fn load_onnx(path: impl AsRef<Path>, budget: DenseBudget) -> Result<OnnxModel, IoError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| IoError::read(path, e))?;
    onnx_from_bytes(&bytes, &path.display().to_string(), budget)
}

#[cfg(test)]
mod tests {
    use super::proto::{
        attribute_proto::AttributeType, tensor_proto::DataLocation, tensor_shape_proto, type_proto,
        AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
        TensorShapeProto, TypeProto, ValueInfoProto,
    };
    use super::*;
    use septuple_core::{Network, Slope};

    fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
        let dim = dims
            .iter()
            .map(|&d| tensor_shape_proto::Dimension {
                value: Some(if d < 0 {
                    tensor_shape_proto::dimension::Value::DimParam("batch".into())
                } else {
                    tensor_shape_proto::dimension::Value::DimValue(d)
                }),
                ..Default::default()
            })
            .collect();
        ValueInfoProto {
            name: Some(name.into()),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: Some(1),
                    shape: Some(TensorShapeProto { dim }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn floats(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
        TensorProto {
            name: Some(name.into()),
            dims: dims.to_vec(),
            data_type: Some(1),
            float_data: v.to_vec(),
            ..Default::default()
        }
    }

    fn node(op: &str, inputs: &[&str], output: &str, attrs: Vec<AttributeProto>) -> NodeProto {
        NodeProto {
            op_type: Some(op.into()),
            name: Some(format!("{op}_{output}")),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute: attrs,
            ..Default::default()
        }
    }

    fn int_attr(name: &str, i: i64) -> AttributeProto {
        AttributeProto {
            name: Some(name.into()),
            r#type: Some(AttributeType::Int as i32),
            i: Some(i),
            ..Default::default()
        }
    }

    fn ints_attr(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto {
            name: Some(name.into()),
            ints: v.to_vec(),
            r#type: Some(AttributeType::Ints as i32),
            ..Default::default()
        }
    }

    fn float_attr(name: &str, f: f32) -> AttributeProto {
        AttributeProto {
            name: Some(name.into()),
            r#type: Some(AttributeType::Float as i32),
            f: Some(f),
            ..Default::default()
        }
    }

    fn model(
        nodes: Vec<NodeProto>,
        input: ValueInfoProto,
        outputs: &[&str],
        inits: Vec<TensorProto>,
    ) -> Vec<u8> {
        ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(17),
            }],
            graph: Some(GraphProto {
                node: nodes,
                name: Some("g".into()),
                initializer: inits,
                input: vec![input],
                output: outputs.iter().map(|o| value_info(o, &[])).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn import(bytes: &[u8]) -> Result<OnnxModel, IoError> {
        onnx_from_bytes(bytes, "test", DenseBudget::default())
    }

    #[test]
    fn neurons_are_ordered_input_first_then_node_by_node() {
        // x (1 x 2) -> Gemm (transB, alpha 2, beta 0.5) -> LeakyRelu -> MatMul -> Add bias:
        // neurons 0-1 inputs, 2-4 the Gemm's (LeakyRelu), 5-6 the MatMul's (identity).
        let w = [1.0f32, -2.0, 0.5, 3.0, 0.0, 4.0]; // 3 x 2 (out x in, transB)
        let bytes = model(
            vec![
                node(
                    "Gemm",
                    &["x", "W", "C"],
                    "g",
                    vec![
                        int_attr("transB", 1),
                        float_attr("alpha", 2.0),
                        float_attr("beta", 0.5),
                    ],
                ),
                node("LeakyRelu", &["g"], "a", vec![float_attr("alpha", 0.25)]),
                node("MatMul", &["a", "M"], "m", vec![]),
                node("Add", &["m", "b"], "y", vec![]),
            ],
            value_info("x", &[-1, 2]),
            &["y"],
            vec![
                floats("W", &[3, 2], &w),
                floats("C", &[3], &[1.0, 2.0, 3.0]),
                floats("M", &[3, 2], &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]),
                floats("b", &[2], &[0.5, -0.5]),
            ],
        );
        let m = import(&bytes).unwrap();
        let net = &m.network;
        assert_eq!(net.n_neurons(), 7);
        assert_eq!(net.inputs(), [0, 1]);
        assert_eq!(net.outputs(), [5, 6]);
        assert_eq!(m.input_shape, [1, 2]);
        assert_eq!(m.outputs[0].shape, [1, 2]);
        assert_eq!(m.outputs[0].columns, 0..2);
        let names: Vec<&str> = m.neuron_tensors.iter().map(|t| t.0.as_str()).collect();
        assert_eq!(names, ["x", "a", "y"]);
        // w_ij = alpha W[i, j] (Eq. 2.1: weight from j into i), b_i = beta C[i].
        assert_eq!(net.row(2), (&[0usize, 1][..], &[2.0, -4.0][..]));
        assert_eq!(net.row(4), (&[1usize][..], &[8.0][..]));
        assert_eq!(net.bias().to_vec(), [0.0, 0.0, 0.5, 1.0, 1.5, 0.5, -0.5]);
        assert_eq!(
            net.activations()[2],
            Builtin::LeakyRelu(Slope::new(0.25).unwrap())
        );
        assert_eq!(net.activations()[5], Builtin::Identity);
        assert_eq!(net.row(5), (&[2usize, 4][..], &[1.0, 1.0][..]));
        net.feedforward().unwrap();
    }

    #[test]
    fn outputs_used_inside_the_graph_are_copied() {
        // y1 = tanh(x W) is an output and feeds y2 = Gemm(y1): its copy is the output neuron.
        let bytes = model(
            vec![
                node("MatMul", &["x", "W"], "h", vec![]),
                node("Tanh", &["h"], "y1", vec![]),
                node("Gemm", &["y1", "V"], "y2", vec![]),
            ],
            value_info("x", &[1, 2]),
            &["y1", "y2"],
            vec![
                floats("W", &[2, 2], &[1.0, 2.0, 3.0, 4.0]),
                floats("V", &[2, 1], &[1.0, -1.0]),
            ],
        );
        let m = import(&bytes).unwrap();
        // 2 inputs, 2 tanh, 1 Gemm, 2 identity copies of y1.
        assert_eq!(m.network.n_neurons(), 7);
        assert_eq!(m.network.outputs(), [5, 6, 4]);
        m.network.feedforward().unwrap();
        let x = ndarray::array![[0.3, -0.2]];
        let y = m.network.predict(x.view()).unwrap();
        let h = [(0.3f64 - 0.6).tanh(), (0.6f64 - 0.8).tanh()];
        approx::assert_relative_eq!(y[[0, 0]], h[0], epsilon = 1e-15);
        approx::assert_relative_eq!(y[[0, 2]], h[0] - h[1], epsilon = 1e-15);
    }

    #[test]
    fn claimed_sizes_are_checked_before_allocating() {
        // dims 2^40 x 2^20 of raw float32 with 4 bytes present: refused without allocating.
        let mut huge = floats("W", &[1 << 40, 1 << 20], &[]);
        huge.raw_data = Some(vec![0; 4]);
        let bytes = model(
            vec![node("MatMul", &["x", "W"], "y", vec![])],
            value_info("x", &[1, 2]),
            &["y"],
            vec![huge],
        );
        let e = import(&bytes).unwrap_err();
        assert!(matches!(e, IoError::OnnxGraph { .. }), "{e}");
        // An overflowing element count.
        let mut over = floats("W", &[1 << 62, 1 << 62], &[]);
        over.raw_data = Some(vec![0; 4]);
        let bytes = model(
            vec![node("MatMul", &["x", "W"], "y", vec![])],
            value_info("x", &[1, 2]),
            &["y"],
            vec![over],
        );
        assert!(matches!(import(&bytes), Err(IoError::TooLarge { .. })));
        // A tiny file whose input claims 10^10 pixels: refused by the budget.
        let bytes = model(
            vec![node("Tanh", &["x"], "y", vec![])],
            value_info("x", &[1, 1, 100_000, 100_000]),
            &["y"],
            vec![],
        );
        assert!(matches!(import(&bytes), Err(IoError::TooLarge { .. })));
        // External data is named.
        let mut ext = floats("W", &[2, 2], &[]);
        ext.data_location = Some(DataLocation::External as i32);
        let bytes = model(
            vec![node("MatMul", &["x", "W"], "y", vec![])],
            value_info("x", &[1, 2]),
            &["y"],
            vec![ext],
        );
        let e = import(&bytes).unwrap_err();
        assert!(e.to_string().contains("external"), "{e}");
    }

    #[test]
    fn float16_and_float64_initializers() {
        let half = |v: f32| half::f16::from_f32(v).to_bits() as i32;
        let w16 = TensorProto {
            name: Some("W".into()),
            dims: vec![2, 1],
            data_type: Some(10),
            int32_data: vec![half(0.5), half(-1.25)],
            ..Default::default()
        };
        let b64 = TensorProto {
            name: Some("b".into()),
            dims: vec![1],
            data_type: Some(11),
            raw_data: Some(0.1f64.to_le_bytes().to_vec()),
            ..Default::default()
        };
        let bytes = model(
            vec![
                node("MatMul", &["x", "W"], "m", vec![]),
                node("Add", &["b", "m"], "y", vec![]),
            ],
            value_info("x", &[1, 2]),
            &["y"],
            vec![w16, b64],
        );
        let m = import(&bytes).unwrap();
        assert_eq!(m.network.row(2), (&[0usize, 1][..], &[0.5, -1.25][..]));
        assert_eq!(m.network.bias()[2], 0.1);
    }

    #[test]
    fn graph_errors_name_what_was_expected() {
        let cases: Vec<(Vec<NodeProto>, ValueInfoProto, Vec<TensorProto>, &str)> = vec![
            (
                vec![node("Gemm", &["x", "W"], "y", vec![])],
                value_info("x", &[1, 3]),
                vec![floats("W", &[2, 2], &[1.0; 4])],
                "expected equal inner sizes",
            ),
            (
                vec![node("Tanh", &["x"], "y", vec![])],
                value_info("x", &[4, 3]),
                vec![],
                "batch dimension 4",
            ),
            (
                vec![node("Tanh", &["z"], "y", vec![])],
                value_info("x", &[1, 3]),
                vec![],
                "produced by no node",
            ),
            (
                vec![node("Reshape", &["x", "s"], "y", vec![])],
                value_info("x", &[1, 6]),
                vec![TensorProto {
                    name: Some("s".into()),
                    dims: vec![2],
                    data_type: Some(7),
                    int64_data: vec![4, 2],
                    ..Default::default()
                }],
                "expected the same number of elements",
            ),
            (
                vec![node("Conv", &["x", "W"], "y", vec![])],
                value_info("x", &[1, 2, 3, 3]),
                vec![floats("W", &[1, 3, 1, 1], &[1.0; 3])],
                "C/group",
            ),
            (
                // 3-D data (volumes) are not imported.
                vec![node("Conv", &["x", "W"], "y", vec![])],
                value_info("x", &[1, 1, 2, 2, 2]),
                vec![floats("W", &[1, 1, 1, 1, 1], &[1.0])],
                "expected [1, C, L] or [1, C, H, W]",
            ),
            (
                // A 2-D kernel on 1-D data.
                vec![node("Conv", &["x", "W"], "y", vec![])],
                value_info("x", &[1, 1, 4]),
                vec![floats("W", &[1, 1, 1, 1], &[1.0])],
                "expected [M, C/group, kL] (1-D)",
            ),
            (
                // Two strides for one spatial axis.
                vec![node(
                    "Conv",
                    &["x", "W"],
                    "y",
                    vec![ints_attr("strides", &[1, 1])],
                )],
                value_info("x", &[1, 1, 4]),
                vec![floats("W", &[1, 1, 1], &[1.0])],
                "expected 1 positive integer(s)",
            ),
            (
                vec![node("MatMul", &["W", "x"], "y", vec![])],
                value_info("x", &[1, 2]),
                vec![floats("W", &[2, 2], &[1.0; 4])],
                "is a constant",
            ),
            (
                vec![node("Gemm", &["x", "W"], "y", vec![])],
                value_info("x", &[1, 2]),
                vec![floats("W", &[2, 1], &[1.0, f32::NAN])],
                "non-finite",
            ),
        ];
        for (nodes, input, inits, expected) in cases {
            let e = import(&model(nodes, input, &["y"], inits)).unwrap_err();
            assert!(
                e.to_string().contains(expected),
                "{e} (expected {expected:?})"
            );
        }
        let mut custom = node("Relu", &["x"], "y", vec![]);
        custom.domain = Some("com.microsoft".into());
        let e = import(&model(
            vec![custom],
            value_info("x", &[1, 2]),
            &["y"],
            vec![],
        ))
        .unwrap_err();
        assert!(
            matches!(&e, IoError::OnnxUnsupportedOp { op, .. } if op == "com.microsoft.Relu"),
            "{e}"
        );
    }
}
