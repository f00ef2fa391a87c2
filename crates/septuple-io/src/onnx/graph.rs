//! The ONNX graph walked in topological order, each tensor held as affine forms over the
//! neurons made so far, neurons made where the node list says (see [`super::onnx_from_bytes`]).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Range;

use ndarray::Array1;
use septuple_core::{Builtin, DenseBudget, Slope, SparseSeptuple, Triplet};

use super::proto::{
    attribute_proto::AttributeType, tensor_shape_proto::dimension, type_proto, AttributeProto,
    GraphProto, NodeProto,
};
use super::tensor::{read_tensor, Constant, Values};
use super::{OnnxModel, OnnxOutput};
use crate::error::IoError;

/// The node types the importer reads (default ONNX domain).
pub const SUPPORTED_OPS: &str = "Gemm, MatMul, Add, Conv, AveragePool, BatchNormalization, Flatten, Reshape, Identity, Constant, Tanh, Relu, Sigmoid, LeakyRelu";

/// Bytes one neuron, connection or form term costs while importing (the triplet, the two
/// compressed copies of w and the forms in flight), for the memory budget.
const BYTES_PER_ITEM: u64 = 100;

/// An affine form sum_j c_j x_j + c over neuron states x_j: the value of one tensor element.
/// Terms are sorted by neuron and free of repeats.
#[derive(Clone, Debug, PartialEq)]
struct Form {
    terms: Vec<(usize, f64)>,
    constant: f64,
}

impl Form {
    fn neuron(j: usize) -> Self {
        Form {
            terms: vec![(j, 1.0)],
            constant: 0.0,
        }
    }

    /// The neuron this element is, if it is one neuron's state exactly.
    #[allow(clippy::float_cmp)]
    fn as_neuron(&self) -> Option<usize> {
        match self.terms.as_slice() {
            [(j, w)] if *w == 1.0 && self.constant == 0.0 => Some(*j),
            _ => None,
        }
    }

    /// Sort the terms by neuron and merge repeats.
    fn normalize(mut terms: Vec<(usize, f64)>, constant: f64) -> Self {
        terms.sort_unstable_by_key(|t| t.0);
        let mut out: Vec<(usize, f64)> = Vec::with_capacity(terms.len());
        for (j, v) in terms {
            match out.last_mut() {
                Some(last) if last.0 == j => last.1 += v,
                _ => out.push((j, v)),
            }
        }
        Form {
            terms: out,
            constant,
        }
    }
}

/// A data tensor: its shape and one form per element (row-major). `pending` marks the output
/// of an affine node whose neurons are not made yet: the next node may fold into it
/// (BatchNormalization, an Add) or give it its activation.
#[derive(Clone, Debug)]
struct Data {
    shape: Vec<usize>,
    forms: Vec<Form>,
    pending: bool,
}

#[derive(Clone, Debug)]
enum Value {
    Const(Constant),
    Data(Data),
}

/// The septuple under construction.
struct Builder {
    triplets: Vec<Triplet>,
    bias: Vec<f64>,
    acts: Vec<Builtin>,
    tensors: Vec<(String, Range<usize>)>,
    used: u64,
    budget: DenseBudget,
}

impl Builder {
    fn n(&self) -> usize {
        self.bias.len()
    }

    /// Charge `items` neurons, connections or terms against the budget before they are
    /// allocated.
    fn charge(&mut self, what: &str, items: u128) -> Result<(), IoError> {
        let bytes = items.saturating_mul(u128::from(BYTES_PER_ITEM));
        let total = u128::from(self.used).saturating_add(bytes);
        if total > u128::from(self.budget.bytes) || total > isize::MAX as u128 {
            return Err(IoError::TooLarge {
                what: format!(
                    "the septuple of this ONNX model ({what}: neurons, connections and forms at about {BYTES_PER_ITEM} bytes each)"
                ),
                claimed: u64::try_from(total).unwrap_or(u64::MAX),
                limit: self.budget.bytes,
            });
        }
        self.used = total as u64;
        Ok(())
    }

    /// Make one neuron per element of `data` with pre-activation its form (Eq. 2.6:
    /// x_i = f_i(sum_j w_ij x_j + b_i)) and activation `act`; the tensor becomes those
    /// neurons' states.
    fn materialize(&mut self, name: &str, data: Data, act: Builtin) -> Result<Data, IoError> {
        let terms: usize = data.forms.iter().map(|f| f.terms.len()).sum();
        self.charge(name, data.forms.len() as u128 + terms as u128)?;
        let start = self.n();
        let mut forms = Vec::with_capacity(data.forms.len());
        for f in data.forms {
            let i = self.n();
            self.triplets.extend(
                f.terms
                    .iter()
                    .filter(|t| t.1 != 0.0)
                    .map(|&(j, v)| (i, j, v)),
            );
            self.bias.push(f.constant);
            self.acts.push(act);
            forms.push(Form::neuron(i));
        }
        self.tensors.push((name.to_string(), start..self.n()));
        Ok(Data {
            shape: data.shape,
            forms,
            pending: false,
        })
    }

    /// `data` with its neurons made (identity activation) if it is pending.
    fn resolve(&mut self, name: &str, data: Data) -> Result<Data, IoError> {
        if data.pending {
            self.materialize(name, data, Builtin::Identity)
        } else {
            Ok(data)
        }
    }

    /// The forms of an affine map: output o is sum over `rows(o)` of weight * input form,
    /// plus `bias[o]`. The terms are charged against the budget (bounded by the row lengths
    /// times the longest input form) before they are computed.
    fn affine(
        &mut self,
        what: &str,
        input: &[Form],
        n_out: usize,
        row_len: usize,
        mut row: impl FnMut(usize, &mut Vec<(usize, f64)>),
        bias: impl Fn(usize) -> f64,
    ) -> Result<Vec<Form>, IoError> {
        let longest = input
            .iter()
            .map(|f| f.terms.len())
            .max()
            .unwrap_or(0)
            .max(1);
        self.charge(
            what,
            (n_out as u128)
                .saturating_mul(row_len as u128)
                .saturating_mul(longest as u128),
        )?;
        let mut forms = Vec::with_capacity(n_out);
        let mut entries = Vec::with_capacity(row_len);
        for o in 0..n_out {
            entries.clear();
            row(o, &mut entries);
            let mut terms = Vec::new();
            let mut constant = bias(o);
            for &(i, w) in &entries {
                if w == 0.0 {
                    continue;
                }
                let f = &input[i];
                terms.extend(f.terms.iter().map(|&(j, v)| (j, w * v)));
                constant += w * f.constant;
            }
            forms.push(Form::normalize(terms, constant));
        }
        Ok(forms)
    }
}

fn graph_err(what: impl Into<String>, reason: impl Into<String>) -> IoError {
    IoError::OnnxGraph {
        what: what.into(),
        reason: reason.into(),
    }
}

/// A node with its attributes at hand, and its label for errors.
struct Node<'a> {
    proto: &'a NodeProto,
    label: String,
}

impl<'a> Node<'a> {
    fn attr(&self, name: &str) -> Option<&'a AttributeProto> {
        self.proto.attribute.iter().find(|a| a.name() == name)
    }

    fn int(&self, name: &str, default: i64) -> Result<i64, IoError> {
        match self.attr(name) {
            None => Ok(default),
            Some(a) if a.r#type() == AttributeType::Int || a.i.is_some() => Ok(a.i()),
            Some(_) => Err(graph_err(
                &self.label,
                format!("attribute {name} is not an integer"),
            )),
        }
    }

    fn float(&self, name: &str, default: f64) -> Result<f64, IoError> {
        match self.attr(name) {
            None => Ok(default),
            Some(a) if a.r#type() == AttributeType::Float || a.f.is_some() => {
                let v = f64::from(a.f());
                if v.is_finite() {
                    Ok(v)
                } else {
                    Err(graph_err(
                        &self.label,
                        format!("attribute {name} = {v}; expected a finite number"),
                    ))
                }
            }
            Some(_) => Err(graph_err(
                &self.label,
                format!("attribute {name} is not a float"),
            )),
        }
    }

    fn ints(&self, name: &str) -> Option<&'a [i64]> {
        self.attr(name).map(|a| a.ints.as_slice())
    }

    fn string(&self, name: &str) -> Option<String> {
        self.attr(name)
            .map(|a| String::from_utf8_lossy(a.s()).into_owned())
    }

    /// Input `k`, if the node has it (an empty name is an omitted optional input).
    fn input(&self, k: usize) -> Option<&'a str> {
        self.proto
            .input
            .get(k)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
}

/// The supported op types, for dispatch.
const OPS: [&str; 14] = [
    "Gemm",
    "MatMul",
    "Add",
    "Conv",
    "AveragePool",
    "BatchNormalization",
    "Flatten",
    "Reshape",
    "Identity",
    "Constant",
    "Tanh",
    "Relu",
    "Sigmoid",
    "LeakyRelu",
];

/// The graph's nodes in topological order (ready nodes taken in file order); a cycle or a
/// tensor that nothing produces is an error.
fn topological_order(graph: &GraphProto, available: &HashSet<&str>) -> Result<Vec<usize>, IoError> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (k, node) in graph.node.iter().enumerate() {
        for out in node.output.iter().filter(|s| !s.is_empty()) {
            if available.contains(out.as_str()) {
                return Err(graph_err(
                    format!("node {:?} ({}, #{k})", node.name(), node.op_type()),
                    format!("its output {out:?} is also a graph input or initializer; every tensor must have one producer"),
                ));
            }
            if let Some(first) = producer.insert(out.as_str(), k) {
                return Err(graph_err(
                    format!("tensor {out:?}"),
                    format!(
                        "produced by nodes #{first} and #{k}; every tensor must have one producer"
                    ),
                ));
            }
        }
    }
    let mut waiting = vec![0usize; graph.node.len()];
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); graph.node.len()];
    for (k, node) in graph.node.iter().enumerate() {
        for inp in node.input.iter().filter(|s| !s.is_empty()) {
            if let Some(&p) = producer.get(inp.as_str()) {
                waiting[k] += 1;
                consumers[p].push(k);
            } else if !available.contains(inp.as_str()) {
                return Err(graph_err(
                    format!("node {:?} ({}, #{k})", node.name(), node.op_type()),
                    format!("its input {inp:?} is produced by no node and is neither the graph input nor an initializer"),
                ));
            }
        }
    }
    let mut ready: BTreeSet<usize> = (0..graph.node.len()).filter(|&k| waiting[k] == 0).collect();
    let mut order = Vec::with_capacity(graph.node.len());
    while let Some(k) = ready.pop_first() {
        order.push(k);
        for &c in &consumers[k] {
            waiting[c] -= 1;
            if waiting[c] == 0 {
                ready.insert(c);
            }
        }
    }
    if order.len() < graph.node.len() {
        let stuck: Vec<String> = (0..graph.node.len())
            .filter(|&k| waiting[k] > 0)
            .take(8)
            .map(|k| {
                format!(
                    "#{k} {:?} ({})",
                    graph.node[k].name(),
                    graph.node[k].op_type()
                )
            })
            .collect();
        return Err(graph_err(
            "graph",
            format!("its nodes form a cycle (nodes waiting on each other: {}); a feedforward network needs an acyclic graph (Eq. 2.1: w nilpotent)", stuck.join(", ")),
        ));
    }
    Ok(order)
}

/// The data input's name and shape; the leading dimension (the batch) must be 1 or symbolic.
fn data_input(
    graph: &GraphProto,
    initializers: &HashSet<&str>,
) -> Result<(String, Vec<usize>), IoError> {
    let data: Vec<_> = graph
        .input
        .iter()
        .filter(|v| !initializers.contains(v.name()))
        .collect();
    let input = match data.as_slice() {
        [one] => *one,
        _ => {
            let names: Vec<&str> = data.iter().map(|v| v.name()).collect();
            return Err(graph_err(
                "graph inputs",
                format!(
                    "{} data inputs {names:?} (initializers excluded); expected exactly one",
                    names.len()
                ),
            ));
        }
    };
    let what = format!("graph input {:?}", input.name());
    let tensor = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => t,
        _ => {
            return Err(graph_err(
                &what,
                "it is not a tensor; expected a float tensor",
            ))
        }
    };
    if !matches!(tensor.elem_type(), 1 | 10 | 11) {
        return Err(graph_err(
            &what,
            format!(
                "element type {}; expected float32, float64 or float16",
                tensor.elem_type()
            ),
        ));
    }
    let dims = &tensor
        .shape
        .as_ref()
        .ok_or_else(|| {
            graph_err(
                &what,
                "it has no shape; expected a shape such as [batch, 1, 28, 28]",
            )
        })?
        .dim;
    let mut shape = Vec::with_capacity(dims.len());
    for (k, d) in dims.iter().enumerate() {
        let size = match &d.value {
            Some(dimension::Value::DimValue(v)) => usize::try_from(*v).ok().filter(|&v| v > 0),
            _ if k == 0 && dims.len() >= 2 => Some(1),
            _ => None,
        };
        match size {
            Some(1) | None if k == 0 && dims.len() >= 2 => {
                if size.is_none() && !matches!(d.value, Some(dimension::Value::DimParam(_)) | None) {
                    return Err(graph_err(&what, format!("batch dimension {:?}; expected 1 or symbolic", d.value)));
                }
                shape.push(1);
            }
            Some(v) if k == 0 && dims.len() >= 2 => {
                return Err(graph_err(
                    &what,
                    format!("batch dimension {v}; expected 1 or symbolic (one sample per forward pass)"),
                ))
            }
            Some(v) => shape.push(v),
            None => {
                return Err(graph_err(
                    &what,
                    format!("dimension {k} is {:?}; expected a fixed positive size (only the leading batch dimension may be symbolic)", d.value),
                ))
            }
        }
    }
    Ok((input.name().to_string(), shape))
}

/// Unidirectional broadcast of a constant to `shape` (numpy rules, trailing axes aligned):
/// the constant's value for each element of a tensor of `shape`.
fn broadcast(
    what: &str,
    c: &Constant,
    values: &[f64],
    shape: &[usize],
) -> Result<Vec<f64>, IoError> {
    if c.shape.len() > shape.len()
        || c.shape
            .iter()
            .rev()
            .zip(shape.iter().rev())
            .any(|(&a, &b)| a != 1 && a != b)
    {
        return Err(graph_err(
            what,
            format!(
                "a constant of shape {:?} does not broadcast to the data shape {shape:?}",
                c.shape
            ),
        ));
    }
    let n: usize = shape.iter().product();
    let offset = shape.len() - c.shape.len();
    // Strides of the constant, zero along broadcast axes.
    let mut strides = vec![0usize; shape.len()];
    let mut s = 1usize;
    for k in (0..c.shape.len()).rev() {
        if c.shape[k] != 1 {
            strides[k + offset] = s;
        }
        s *= c.shape[k];
    }
    let mut out = Vec::with_capacity(n);
    let mut index = vec![0usize; shape.len()];
    for _ in 0..n {
        let flat: usize = index.iter().zip(&strides).map(|(i, s)| i * s).sum();
        out.push(values[flat]);
        for k in (0..shape.len()).rev() {
            index[k] += 1;
            if index[k] < shape[k] {
                break;
            }
            index[k] = 0;
        }
    }
    Ok(out)
}

/// Padding of one spatial axis: (begin, end) from `auto_pad` and `pads`, and the output size.
#[allow(clippy::too_many_arguments)]
fn window_axis(
    label: &str,
    auto_pad: &str,
    size: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pads: (usize, usize),
) -> Result<(usize, usize, usize), IoError> {
    let span = (kernel - 1) * dilation + 1;
    let (begin, end) = match auto_pad {
        "NOTSET" | "" => pads,
        "VALID" => (0, 0),
        "SAME_UPPER" | "SAME_LOWER" => {
            let out = size.div_ceil(stride);
            let total = ((out - 1) * stride + span).saturating_sub(size);
            if auto_pad == "SAME_UPPER" {
                (total / 2, total - total / 2)
            } else {
                (total - total / 2, total / 2)
            }
        }
        other => {
            return Err(graph_err(
                label,
                format!("auto_pad {other:?}; expected NOTSET, VALID, SAME_UPPER or SAME_LOWER"),
            ))
        }
    };
    let padded = size + begin + end;
    if padded < span {
        return Err(graph_err(
            label,
            format!("a window spanning {span} does not fit an axis of {size} padded by ({begin}, {end})"),
        ));
    }
    Ok((begin, end, (padded - span) / stride + 1))
}

/// The spatial window parameters of a Conv or AveragePool on a [1, C, H, W] input; a 1-D
/// input [1, C, L] is the 2-D case with H = 1 (kernel height, stride and dilation 1, no padding
/// along H), which gives the same neurons in the same row-major order.
struct Window {
    stride: [usize; 2],
    dilation: [usize; 2],
    begin: [usize; 2],
    out: [usize; 2],
}

/// A per-axis attribute of a node on `rank`-D spatial data (1 or 2) as its 2-D form: `[a]`
/// becomes `[fill, a]`; `None` when absent, an empty list when its length is not `rank` (the
/// caller's check then names the attribute as written).
fn lifted(node: &Node<'_>, name: &str, rank: usize, fill: i64) -> Option<Vec<i64>> {
    let v = node.ints(name)?;
    Some(match (rank, v) {
        (1, &[a]) => vec![fill, a],
        (2, &[a, b]) => vec![a, b],
        _ => Vec::new(),
    })
}

/// The `pads` of a node on `rank`-D data as its 2-D form (top, left, bottom, right): a 1-D
/// `[begin, end]` becomes `[0, begin, 0, end]`; a list of another length than 2 `rank` becomes
/// empty (the caller's check names it).
fn lifted_pads(node: &Node<'_>, rank: usize) -> Option<Vec<i64>> {
    let p = node.ints("pads")?;
    Some(match (rank, p) {
        (1, &[b, e]) => vec![0, b, 0, e],
        (2, p) if p.len() == 4 => p.to_vec(),
        _ => Vec::new(),
    })
}

fn window(node: &Node<'_>, input: &[usize], kernel: [usize; 2]) -> Result<Window, IoError> {
    let rank = input.len() - 2;
    let positive = |name: &str, default: usize| -> Result<[usize; 2], IoError> {
        match lifted(node, name, rank, 1).as_deref() {
            None => Ok([default; 2]),
            Some(&[a, b]) if a > 0 && b > 0 => Ok([a as usize, b as usize]),
            Some(_) => Err(graph_err(
                &node.label,
                format!(
                    "{name} {:?}; expected {rank} positive integer(s), one per spatial axis",
                    node.ints(name).unwrap_or_default()
                ),
            )),
        }
    };
    let stride = positive("strides", 1)?;
    let dilation = positive("dilations", 1)?;
    let pads = match lifted_pads(node, rank) {
        None => [0; 4],
        Some(p) if p.len() == 4 && p.iter().all(|&v| (0..=1 << 20).contains(&v)) => {
            [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize]
        }
        Some(_) => {
            return Err(graph_err(
                &node.label,
                format!(
                    "pads {:?}; expected {} non-negative integers (the begins of the spatial axes, then their ends)",
                    node.ints("pads").unwrap_or_default(),
                    2 * rank
                ),
            ))
        }
    };
    let auto_pad = node.string("auto_pad").unwrap_or_default();
    let hw = image_hw(input);
    let mut begin = [0; 2];
    let mut out = [0; 2];
    for a in 0..2 {
        let (b, _, o) = window_axis(
            &node.label,
            &auto_pad,
            hw[a],
            kernel[a],
            stride[a],
            dilation[a],
            (pads[a], pads[a + 2]),
        )?;
        begin[a] = b;
        out[a] = o;
    }
    Ok(Window {
        stride,
        dilation,
        begin,
        out,
    })
}

/// The input index of window position (ky, kx) for output (oy, ox), if inside the image.
fn source(w: &Window, hw: [usize; 2], o: [usize; 2], k: [usize; 2]) -> Option<usize> {
    let y = (o[0] * w.stride[0] + k[0] * w.dilation[0]).checked_sub(w.begin[0])?;
    let x = (o[1] * w.stride[1] + k[1] * w.dilation[1]).checked_sub(w.begin[1])?;
    (y < hw[0] && x < hw[1]).then_some(y * hw[1] + x)
}

/// Checks that a Conv or AveragePool input is [1, C, L] (1-D) or [1, C, H, W] (2-D).
fn check_image(node: &Node<'_>, shape: &[usize]) -> Result<(), IoError> {
    if !(shape.len() == 3 || shape.len() == 4) || shape[0] != 1 {
        return Err(graph_err(
            &node.label,
            format!(
                "input of shape {shape:?}; expected [1, C, L] or [1, C, H, W] (1-D or 2-D data, batch 1)"
            ),
        ));
    }
    Ok(())
}

/// The spatial size (H, W) of a checked [1, C, L] or [1, C, H, W] input, L as (1, L).
fn image_hw(shape: &[usize]) -> [usize; 2] {
    match shape {
        [_, _, l] => [1, *l],
        [_, _, h, w, ..] => [*h, *w],
        _ => unreachable!("check_image admits ranks 3 and 4 only"),
    }
}

/// The output shape of a Conv or AveragePool of `channels` on `rank`-D data.
fn image_shape(rank: usize, channels: usize, out: [usize; 2]) -> Vec<usize> {
    if rank == 1 {
        vec![1, channels, out[1]]
    } else {
        vec![1, channels, out[0], out[1]]
    }
}

struct Importer<'g> {
    b: Builder,
    values: HashMap<&'g str, Value>,
    /// How often each tensor is consumed (by nodes, or as a graph output).
    uses: HashMap<&'g str, usize>,
}

impl<'g> Importer<'g> {
    fn get(&self, node: &Node<'_>, k: usize) -> Result<&Value, IoError> {
        let name = node
            .input(k)
            .ok_or_else(|| graph_err(&node.label, format!("input {k} is missing")))?;
        self.values
            .get(name)
            .ok_or_else(|| graph_err(&node.label, format!("input {name:?} has no value")))
    }

    fn data(&self, node: &Node<'_>, k: usize) -> Result<Data, IoError> {
        match self.get(node, k)? {
            Value::Data(d) => Ok(d.clone()),
            Value::Const(_) => Err(graph_err(
                &node.label,
                format!("input {k} ({:?}) is a constant; expected the data flowing from the graph input (constant folding is not supported)", node.input(k).unwrap_or("")),
            )),
        }
    }

    fn constant(&self, node: &Node<'_>, k: usize) -> Result<Constant, IoError> {
        match self.get(node, k)? {
            Value::Const(c) => Ok(c.clone()),
            Value::Data(_) => Err(graph_err(
                &node.label,
                format!("input {k} ({:?}) depends on the graph input; expected an initializer or a Constant (weights must be constant)", node.input(k).unwrap_or("")),
            )),
        }
    }

    /// Evaluate one node, returning the value of its (first) output.
    fn eval(&mut self, node: &Node<'g>) -> Result<Value, IoError> {
        let p = node.proto;
        let out_name = p.output.first().map(String::as_str).unwrap_or("");
        let op = p.op_type();
        let act = match op {
            "Tanh" => Some(Builtin::Tanh),
            "Relu" => Some(Builtin::Relu),
            "Sigmoid" => Some(Builtin::Logistic),
            "LeakyRelu" => {
                let alpha = node.float("alpha", 0.01)?;
                Some(Builtin::LeakyRelu(
                    Slope::new(alpha).map_err(IoError::Core)?,
                ))
            }
            _ => None,
        };
        if let Some(act) = act {
            let x = self.data(node, 0)?;
            return Ok(Value::Data(self.b.materialize(out_name, x, act)?));
        }
        Ok(match op {
            "Identity" => self.get(node, 0)?.clone(),
            "Constant" => Value::Const(self.constant_node(node)?),
            "Flatten" => {
                let x = self.data(node, 0)?;
                let rank = x.shape.len() as i64;
                let axis = node.int("axis", 1)?;
                let axis = if axis < 0 { axis + rank } else { axis };
                if !(0..=rank).contains(&axis) {
                    return Err(graph_err(
                        &node.label,
                        format!("axis {axis} for a tensor of rank {rank}"),
                    ));
                }
                let a = axis as usize;
                let shape = vec![x.shape[..a].iter().product(), x.shape[a..].iter().product()];
                Value::Data(Data { shape, ..x })
            }
            "Reshape" => {
                let x = self.data(node, 0)?;
                let target = self.constant(node, 1)?.ints(&node.label)?;
                let shape = reshape(node, &x.shape, &target)?;
                Value::Data(Data { shape, ..x })
            }
            "BatchNormalization" => self.batch_norm(node)?,
            "Add" => self.add(node)?,
            "Gemm" => self.gemm(node)?,
            "MatMul" => self.matmul(node)?,
            "Conv" => self.conv(node)?,
            "AveragePool" => self.average_pool(node)?,
            _ => unreachable!("dispatch covers OPS"),
        })
    }

    fn constant_node(&self, node: &Node<'_>) -> Result<Constant, IoError> {
        let a = node
            .proto
            .attribute
            .first()
            .filter(|_| node.proto.attribute.len() == 1)
            .ok_or_else(|| {
                graph_err(
                    &node.label,
                    "expected exactly one attribute (value, value_float(s) or value_int(s))",
                )
            })?;
        match a.name() {
            "value" => {
                let t =
                    a.t.as_ref()
                        .ok_or_else(|| graph_err(&node.label, "attribute value holds no tensor"))?;
                read_tensor(&node.label, t)
            }
            "value_float" => Ok(Constant {
                shape: vec![],
                values: Values::Float(vec![f64::from(a.f())]),
            }),
            "value_floats" => Ok(Constant {
                shape: vec![a.floats.len()],
                values: Values::Float(a.floats.iter().map(|&v| f64::from(v)).collect()),
            }),
            "value_int" => Ok(Constant {
                shape: vec![],
                values: Values::Int(vec![a.i()]),
            }),
            "value_ints" => Ok(Constant {
                shape: vec![a.ints.len()],
                values: Values::Int(a.ints.clone()),
            }),
            other => Err(graph_err(
                &node.label,
                format!("attribute {other:?}; expected value, value_float(s) or value_int(s)"),
            )),
        }
    }

    fn batch_norm(&mut self, node: &Node<'_>) -> Result<Value, IoError> {
        if node.proto.output.iter().skip(1).any(|o| !o.is_empty())
            || node.int("training_mode", 0)? != 0
        {
            return Err(graph_err(&node.label, "training mode (running mean and variance as outputs); expected inference mode, one output"));
        }
        let mut x = self.data(node, 0)?;
        if x.shape.len() < 2 || x.shape[0] != 1 {
            return Err(graph_err(
                &node.label,
                format!("input of shape {:?}; expected [1, C, ...]", x.shape),
            ));
        }
        let c = x.shape[1];
        let mut params = Vec::with_capacity(4);
        for k in 1..5 {
            let t = self.constant(node, k)?;
            let v = t.floats(&node.label)?;
            if v.len() != c {
                return Err(graph_err(
                    &node.label,
                    format!(
                        "input {k} has {} values; expected one per channel ({c})",
                        v.len()
                    ),
                ));
            }
            params.push(v);
        }
        let eps = node.float("epsilon", 1e-5)?;
        let inner: usize = x.shape[2..].iter().product();
        for (e, f) in x.forms.iter_mut().enumerate() {
            let ch = e / inner;
            let var = params[3][ch] + eps;
            if var <= 0.0 || !var.is_finite() {
                return Err(graph_err(
                    &node.label,
                    format!("variance + epsilon = {var} in channel {ch}; expected > 0"),
                ));
            }
            // y = scale (x - mean) / sqrt(var + eps) + bias, an affine map per channel.
            let s = params[0][ch] / var.sqrt();
            for t in &mut f.terms {
                t.1 *= s;
            }
            f.constant = s * (f.constant - params[2][ch]) + params[1][ch];
        }
        Ok(Value::Data(x))
    }

    fn add(&mut self, node: &Node<'_>) -> Result<Value, IoError> {
        let (a, b) = (self.get(node, 0)?.clone(), self.get(node, 1)?.clone());
        match (a, b) {
            (Value::Data(mut d), Value::Const(c)) | (Value::Const(c), Value::Data(mut d)) => {
                let v = c.floats(&node.label)?;
                let add = broadcast(&node.label, &c, &v, &d.shape)?;
                for (f, v) in d.forms.iter_mut().zip(add) {
                    f.constant += v;
                }
                Ok(Value::Data(d))
            }
            (Value::Data(x), Value::Data(y)) => {
                if x.shape != y.shape {
                    return Err(graph_err(
                        &node.label,
                        format!("adds tensors of shapes {:?} and {:?}; expected equal shapes", x.shape, y.shape),
                    ));
                }
                // A residual connection: at most one branch stays pending (folds into this
                // Add); the other is made into neurons first.
                let y = if x.pending { self.b.resolve(node.input(1).unwrap_or(""), y)? } else { y };
                let pending = x.pending || y.pending;
                let terms: usize = x.forms.iter().chain(&y.forms).map(|f| f.terms.len()).sum();
                self.b.charge(&node.label, terms as u128)?;
                let forms = x
                    .forms
                    .into_iter()
                    .zip(y.forms)
                    .map(|(f, g)| {
                        let mut t = f.terms;
                        t.extend(g.terms);
                        Form::normalize(t, f.constant + g.constant)
                    })
                    .collect();
                Ok(Value::Data(Data { shape: x.shape, forms, pending }))
            }
            (Value::Const(_), Value::Const(_)) => Err(graph_err(
                &node.label,
                "adds two constants; expected at least one input flowing from the graph input (constant folding is not supported)",
            )),
        }
    }

    fn gemm(&mut self, node: &Node<'_>) -> Result<Value, IoError> {
        let x = self.data(node, 0)?;
        let x = self.b.resolve(node.input(0).unwrap_or(""), x)?;
        let w = self.constant(node, 1)?;
        let wv = w.floats(&node.label)?;
        let trans_a = node.int("transA", 0)? != 0;
        let trans_b = node.int("transB", 0)? != 0;
        let alpha = node.float("alpha", 1.0)?;
        let beta = node.float("beta", 1.0)?;
        let (&[ar, ac], &[br, bc]) = (x.shape.as_slice(), w.shape.as_slice()) else {
            return Err(graph_err(
                &node.label,
                format!(
                    "A of shape {:?} and B of shape {:?}; expected two matrices",
                    x.shape, w.shape
                ),
            ));
        };
        let (m, k) = if trans_a { (ac, ar) } else { (ar, ac) };
        let (k2, n) = if trans_b { (bc, br) } else { (br, bc) };
        if k != k2 {
            return Err(graph_err(
                &node.label,
                format!("A is {m} x {k} and B is {k2} x {n} (after transA, transB); expected equal inner sizes"),
            ));
        }
        let c = match node.input(2) {
            Some(_) => {
                let c = self.constant(node, 2)?;
                let v = c.floats(&node.label)?;
                broadcast(&node.label, &c, &v, &[m, n])?
            }
            None => vec![0.0; m * n],
        };
        let forms = self.b.affine(
            &node.label,
            &x.forms,
            m * n,
            k,
            |o, row| {
                let (i, j) = (o / n, o % n);
                for l in 0..k {
                    let a = if trans_a { l * ac + i } else { i * ac + l };
                    let b = if trans_b { j * bc + l } else { l * bc + j };
                    row.push((a, alpha * wv[b]));
                }
            },
            |o| beta * c[o],
        )?;
        Ok(Value::Data(Data {
            shape: vec![m, n],
            forms,
            pending: true,
        }))
    }

    fn matmul(&mut self, node: &Node<'_>) -> Result<Value, IoError> {
        let x = self.data(node, 0)?;
        let x = self.b.resolve(node.input(0).unwrap_or(""), x)?;
        let w = self.constant(node, 1)?;
        let wv = w.floats(&node.label)?;
        let (&[k, n], Some(&kx)) = (w.shape.as_slice(), x.shape.last()) else {
            return Err(graph_err(
                &node.label,
                format!("A of shape {:?} times B of shape {:?}; expected data [..., K] times a constant K x N matrix", x.shape, w.shape),
            ));
        };
        if k != kx {
            return Err(graph_err(
                &node.label,
                format!("A has {kx} columns, B {k} rows; expected equal"),
            ));
        }
        let rows = x.forms.len() / k.max(1);
        let forms = self.b.affine(
            &node.label,
            &x.forms,
            rows * n,
            k,
            |o, row| {
                let (r, j) = (o / n, o % n);
                row.extend((0..k).map(|l| (r * k + l, wv[l * n + j])));
            },
            |_| 0.0,
        )?;
        let mut shape = x.shape.clone();
        *shape.last_mut().unwrap_or(&mut 0) = n;
        Ok(Value::Data(Data {
            shape,
            forms,
            pending: true,
        }))
    }

    fn conv(&mut self, node: &Node<'_>) -> Result<Value, IoError> {
        let x = self.data(node, 0)?;
        check_image(node, &x.shape)?;
        let x = self.b.resolve(node.input(0).unwrap_or(""), x)?;
        let w = self.constant(node, 1)?;
        let wv = w.floats(&node.label)?;
        let rank = x.shape.len() - 2;
        let (c_in, [h, wd]) = (x.shape[1], image_hw(&x.shape));
        let (m, cg, kh, kw) = match *w.shape.as_slice() {
            [m, cg, kh, kw] if rank == 2 => (m, cg, kh, kw),
            [m, cg, kw] if rank == 1 => (m, cg, 1, kw),
            _ => {
                return Err(graph_err(
                    &node.label,
                    format!(
                        "weight of shape {:?} on input {:?}; expected [M, C/group, kL] (1-D) or [M, C/group, kH, kW] (2-D)",
                        w.shape, x.shape
                    ),
                ))
            }
        };
        let group = usize::try_from(node.int("group", 1)?)
            .ok()
            .filter(|&g| g > 0)
            .ok_or_else(|| graph_err(&node.label, "group must be a positive integer"))?;
        if cg * group != c_in || !m.is_multiple_of(group) || kh == 0 || kw == 0 {
            return Err(graph_err(
                &node.label,
                format!("weight {:?} with group {group} on {c_in} input channels; expected [M, C/group, kH, kW] with M a multiple of group", w.shape),
            ));
        }
        if let Some(ks) = lifted(node, "kernel_shape", rank, 1) {
            if ks != [kh as i64, kw as i64] {
                return Err(graph_err(
                    &node.label,
                    format!(
                        "kernel_shape {:?} differs from the weight's {:?}",
                        node.ints("kernel_shape").unwrap_or_default(),
                        &w.shape[2..]
                    ),
                ));
            }
        }
        let bias = match node.input(2) {
            Some(_) => {
                let v = self.constant(node, 2)?.floats(&node.label)?;
                if v.len() != m {
                    return Err(graph_err(
                        &node.label,
                        format!("bias has {} values; expected {m}", v.len()),
                    ));
                }
                v
            }
            None => vec![0.0; m],
        };
        let win = window(node, &x.shape, [kh, kw])?;
        let [oh, ow] = win.out;
        let per_group = m / group;
        let forms = self.b.affine(
            &node.label,
            &x.forms,
            m * oh * ow,
            cg * kh * kw,
            |o, row| {
                let (mo, oy, ox) = (o / (oh * ow), (o / ow) % oh, o % ow);
                let g = mo / per_group;
                for c in 0..cg {
                    let ci = g * cg + c;
                    for ky in 0..kh {
                        for kx in 0..kw {
                            if let Some(s) = source(&win, [h, wd], [oy, ox], [ky, kx]) {
                                row.push((
                                    ci * h * wd + s,
                                    wv[((mo * cg + c) * kh + ky) * kw + kx],
                                ));
                            }
                        }
                    }
                }
            },
            |o| bias[o / (oh * ow)],
        )?;
        Ok(Value::Data(Data {
            shape: image_shape(rank, m, win.out),
            forms,
            pending: true,
        }))
    }

    fn average_pool(&mut self, node: &Node<'_>) -> Result<Value, IoError> {
        let x = self.data(node, 0)?;
        check_image(node, &x.shape)?;
        let x = self.b.resolve(node.input(0).unwrap_or(""), x)?;
        if node.int("ceil_mode", 0)? != 0 {
            return Err(graph_err(&node.label, "ceil_mode = 1; expected 0 (floor)"));
        }
        let rank = x.shape.len() - 2;
        let kernel = match lifted(node, "kernel_shape", rank, 1).as_deref() {
            Some(&[a, b]) if a > 0 && b > 0 => [a as usize, b as usize],
            _ => {
                return Err(graph_err(
                    &node.label,
                    format!(
                    "kernel_shape {:?}; expected {rank} positive integer(s), one per spatial axis",
                    node.ints("kernel_shape")
                ),
                ))
            }
        };
        if node
            .ints("dilations")
            .is_some_and(|d| d.iter().any(|&v| v != 1))
        {
            return Err(graph_err(
                &node.label,
                "dilated pooling; expected dilations 1",
            ));
        }
        let include_pad = node.int("count_include_pad", 0)? != 0;
        let win = window(node, &x.shape, kernel)?;
        let (c, [h, wd]) = (x.shape[1], image_hw(&x.shape));
        let [oh, ow] = win.out;
        let full = (kernel[0] * kernel[1]) as f64;
        let forms = self.b.affine(
            &node.label,
            &x.forms,
            c * oh * ow,
            kernel[0] * kernel[1],
            |o, row| {
                let (ch, oy, ox) = (o / (oh * ow), (o / ow) % oh, o % ow);
                let start = row.len();
                for ky in 0..kernel[0] {
                    for kx in 0..kernel[1] {
                        if let Some(s) = source(&win, [h, wd], [oy, ox], [ky, kx]) {
                            row.push((ch * h * wd + s, 1.0));
                        }
                    }
                }
                // The mean over the window: padding counted (count_include_pad) or not.
                let count = if include_pad {
                    full
                } else {
                    (row.len() - start) as f64
                };
                for e in &mut row[start..] {
                    e.1 = 1.0 / count;
                }
            },
            |_| 0.0,
        )?;
        Ok(Value::Data(Data {
            shape: image_shape(rank, c, win.out),
            forms,
            pending: true,
        }))
    }
}

/// The shape `Reshape` gives a tensor of `shape` for the target `target` (0 copies the input
/// dimension, -1 is inferred), checked against the element count.
fn reshape(node: &Node<'_>, shape: &[usize], target: &[i64]) -> Result<Vec<usize>, IoError> {
    let allow_zero = node.int("allowzero", 0)? != 0;
    let count: usize = shape.iter().product();
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (k, &t) in target.iter().enumerate() {
        match t {
            -1 if infer.is_none() => {
                infer = Some(k);
                out.push(1);
            }
            0 if !allow_zero => out.push(*shape.get(k).ok_or_else(|| {
                graph_err(
                    &node.label,
                    format!(
                        "shape {target:?} copies dimension {k}, which the input {shape:?} lacks"
                    ),
                )
            })?),
            t if t >= 0 => out.push(t as usize),
            _ => {
                return Err(graph_err(
                    &node.label,
                    format!("shape {target:?}; expected sizes >= 0 and at most one -1"),
                ))
            }
        }
    }
    let known = out
        .iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .unwrap_or(usize::MAX);
    if let Some(k) = infer {
        if known == 0 || !count.is_multiple_of(known) {
            return Err(graph_err(
                &node.label,
                format!("cannot reshape {shape:?} to {target:?}"),
            ));
        }
        out[k] = count / known;
    } else if known != count {
        return Err(graph_err(
            &node.label,
            format!("reshapes {shape:?} ({count} elements) to {target:?}; expected the same number of elements"),
        ));
    }
    Ok(out)
}

/// Import a graph; see [`super::onnx_from_bytes`].
pub(super) fn import(graph: &GraphProto, budget: DenseBudget) -> Result<OnnxModel, IoError> {
    // Every node's op first, so an unsupported op is reported before anything else.
    for (index, node) in graph.node.iter().enumerate() {
        let domain = node.domain();
        if !(domain.is_empty() || domain == "ai.onnx") || !OPS.contains(&node.op_type()) {
            return Err(IoError::OnnxUnsupportedOp {
                node: node.name().to_string(),
                index,
                op: if domain.is_empty() || domain == "ai.onnx" {
                    node.op_type().to_string()
                } else {
                    format!("{domain}.{}", node.op_type())
                },
                supported: SUPPORTED_OPS,
            });
        }
    }
    let mut values: HashMap<&str, Value> = HashMap::new();
    for (k, t) in graph.initializer.iter().enumerate() {
        let what = format!("initializer {:?} (#{k})", t.name());
        values.insert(t.name(), Value::Const(read_tensor(&what, t)?));
    }
    let init_names: HashSet<&str> = values.keys().copied().collect();
    let (input_name, input_shape) = data_input(graph, &init_names)?;
    let mut available = init_names.clone();
    available.insert(input_name.as_str());
    let order = topological_order(graph, &available)?;

    let n_in: usize = input_shape.iter().product();
    let mut b = Builder {
        triplets: Vec::new(),
        bias: Vec::new(),
        acts: Vec::new(),
        tensors: Vec::new(),
        used: 0,
        budget,
    };
    b.charge("the input tensor", n_in as u128)?;
    b.bias = vec![0.0; n_in];
    b.acts = vec![Builtin::Identity; n_in];
    b.tensors.push((input_name.clone(), 0..n_in));
    let input_name_ref = graph
        .input
        .iter()
        .map(|v| v.name())
        .find(|n| *n == input_name)
        .unwrap_or("");
    values.insert(
        input_name_ref,
        Value::Data(Data {
            shape: input_shape.clone(),
            forms: (0..n_in).map(Form::neuron).collect(),
            pending: false,
        }),
    );
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for node in &graph.node {
        for i in node.input.iter().filter(|s| !s.is_empty()) {
            *uses.entry(i.as_str()).or_default() += 1;
        }
    }
    let outputs: Vec<&str> = graph.output.iter().map(|o| o.name()).collect();
    for o in &outputs {
        *uses.entry(o).or_default() += 1;
    }
    let mut imp = Importer { b, values, uses };
    for &k in &order {
        let proto = &graph.node[k];
        let node = Node {
            proto,
            label: format!("node {:?} ({}, #{k})", proto.name(), proto.op_type()),
        };
        let mut value = imp.eval(&node)?;
        let out = proto.output.first().map(String::as_str).unwrap_or("");
        if proto.output.iter().skip(1).any(|o| !o.is_empty()) {
            return Err(graph_err(&node.label, "several outputs; expected one"));
        }
        // A pending tensor used more than once (or a graph output) gets its neurons now.
        if let Value::Data(d) = &mut value {
            if d.pending && imp.uses.get(out).copied().unwrap_or(0) != 1 {
                let taken = std::mem::replace(
                    d,
                    Data {
                        shape: vec![],
                        forms: vec![],
                        pending: false,
                    },
                );
                *d = imp.b.materialize(out, taken, Builtin::Identity)?;
            }
        }
        imp.values.insert(out, value);
    }
    let Importer { mut b, values, .. } = imp;

    // The outputs: neurons of their own, with no connection out of them (Eq. 2.3) and not
    // inputs (P_in and P_out disjoint); otherwise copied into identity neurons. Outputs that
    // are not neurons yet (pending, sums) get theirs first, so every connection is known.
    let mut resolved = Vec::with_capacity(outputs.len());
    for name in &outputs {
        let data = match values.get(name) {
            Some(Value::Data(d)) => d.clone(),
            Some(Value::Const(_)) => {
                return Err(graph_err(
                    format!("graph output {name:?}"),
                    "it is a constant; expected a tensor computed from the input",
                ))
            }
            None => {
                return Err(graph_err(
                    format!("graph output {name:?}"),
                    "no node produces it",
                ))
            }
        };
        let data = if data.pending || data.forms.iter().any(|f| f.as_neuron().is_none()) {
            b.materialize(
                name,
                Data {
                    pending: false,
                    ..data
                },
                Builtin::Identity,
            )?
        } else {
            data
        };
        resolved.push((name, data));
    }
    let mut has_out = vec![false; b.n()];
    for &(_, j, _) in &b.triplets {
        has_out[j] = true;
    }
    let mut out_neurons = Vec::new();
    let mut taken = HashSet::new();
    let mut out_info = Vec::with_capacity(outputs.len());
    for (name, data) in resolved {
        let own = data.forms.iter().all(|f| {
            f.as_neuron().is_some_and(|j| {
                j >= n_in && !has_out.get(j).copied().unwrap_or(true) && !taken.contains(&j)
            })
        });
        let data = if own {
            data
        } else {
            b.materialize(
                name,
                Data {
                    pending: false,
                    ..data
                },
                Builtin::Identity,
            )?
        };
        let start = out_neurons.len();
        for f in &data.forms {
            let j = f.as_neuron().unwrap_or(usize::MAX);
            taken.insert(j);
            out_neurons.push(j);
        }
        out_info.push(OnnxOutput {
            name: name.to_string(),
            shape: data.shape.clone(),
            columns: start..out_neurons.len(),
        });
    }
    let n = b.n();
    let network = SparseSeptuple::from_triplets(
        n,
        &b.triplets,
        Array1::from(b.bias),
        b.acts,
        (0..n_in).collect(),
        out_neurons,
    )?;
    Ok(OnnxModel {
        network,
        input_name,
        input_shape,
        outputs: out_info,
        neuron_tensors: b.tensors,
    })
}
