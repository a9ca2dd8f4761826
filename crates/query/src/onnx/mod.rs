//! Saved heads as ONNX graphs (`medvec export-head --onnx`), so a head trained here runs
//! wherever ONNX Runtime does.
//!
//! The graph takes the raw field vectors (float32 `[batch, dim]`, inputs named after the
//! head's fields, in the head's field order) and does all of `medvec classify`'s work: L2
//! normalisation, the alignment shift of the head's pair with its Δ and λ (the pair's text
//! side t' = normalize(t + λ/2·Δ), its image side v' = normalize(v − λ/2·Δ)), the
//! MLP in inference mode (BatchNorm folded into a scale and a shift; dropout is the identity)
//! and softmax (or, for a binary head, sigmoid with both columns `[1 − p, p]`). The output is
//! `probabilities`, float32 `[batch, classes]`, columns in the order of the metadata entry
//! `classes` (comma-separated); the metadata also names the `fields` and the `shift_pair`.
//! Opset 17 of the default domain.

mod proto;

use crate::error::{QueryError, Result};
use crate::heads::FoldedNet;
use crate::saved::{HeadModel, SavedHead};
use proto::{field as f, Message, ATTRIBUTE_INT, ATTRIBUTE_INTS, FLOAT};

/// The ONNX opset the graph is written for.
pub const OPSET: i64 = 17;
/// IR version 8 (ONNX 1.13+), the one opset 17 came with.
const IR_VERSION: i64 = 8;
/// Below this, a vector's norm counts as zero: its unit vector is zero, as medvec's is.
const TINY_NORM: f32 = 1e-30;

/// The ONNX model bytes of `saved` (an early or late head; a kNN head needs its training
/// vectors and cannot be a small graph).
pub fn export_head(saved: &SavedHead) -> Result<Vec<u8>> {
    let net = match &saved.model {
        HeadModel::Net(head) => head.folded(),
        HeadModel::Knn(_) => {
            return Err(QueryError::Invalid(
                "export-head: a kNN head cannot be a small ONNX graph (it searches its training cases, which stay in the collection); export an early or late head".into(),
            ))
        }
    };
    let meta = &saved.meta;
    if meta.fields.fields.iter().any(|f| f == "probabilities") {
        return Err(QueryError::Invalid(
            "export-head: a field named `probabilities` would collide with the graph's output"
                .into(),
        ));
    }
    let mut graph = Graph::default();
    let pair = meta.fields.shift_indices();
    let mut prepared = Vec::new();
    for (f, (name, &dim)) in meta
        .fields
        .fields
        .iter()
        .zip(saved.model.dims())
        .enumerate()
    {
        graph.input(name, dim);
        // The pair's first field (the image's part) moves by −λ/2·Δ, the second by +λ/2·Δ.
        let c = match pair {
            Some((a, _)) if a == f => -meta.lambda / 2.0,
            Some((_, b)) if b == f => meta.lambda / 2.0,
            _ => 0.0,
        };
        let unit = graph.unit(name, &internal(&format!("field{f}_unit")));
        let shifted = if meta.delta.len() == dim && c != 0.0 {
            let offset: Vec<f32> = meta.delta.iter().map(|d| c * d).collect();
            let offset = graph.constant(&format!("field{f}_offset"), &[dim], &offset);
            let moved = graph.op("Add", &[&unit, &offset], &[]);
            graph.unit(&moved, &internal(&format!("field{f}_shifted")))
        } else {
            unit
        };
        prepared.push(shifted);
    }
    let logits = mlp(&mut graph, &net, &prepared);
    let probabilities = if net.out_w.ncols() == 1 {
        let p = graph.op("Sigmoid", &[&logits], &[]);
        let one = graph.constant("one", &[1], &[1.0]);
        let q = graph.op("Sub", &[&one, &p], &[]);
        graph.named_op(
            "Concat",
            &[&q, &p],
            &[("axis", Attr::Int(1))],
            "probabilities",
        )
    } else {
        graph.named_op(
            "Softmax",
            &[&logits],
            &[("axis", Attr::Int(1))],
            "probabilities",
        )
    };
    let classes = meta.classes.len();
    graph.output(&probabilities, classes);
    Ok(model(graph, saved))
}

/// The name of a value the graph makes itself. Field names are ASCII letters, digits, `_` and
/// `-`, so the `/` keeps these from colliding with the inputs (a field named `one`, say).
fn internal(name: &str) -> String {
    format!("medvec/{name}")
}

/// The branches, their concatenation and the output layer; returns the logits' name.
/// `fields[f]` names field `f`'s normalised and shifted input.
fn mlp(graph: &mut Graph, net: &FoldedNet, fields: &[String]) -> String {
    let mut outputs = Vec::new();
    for (k, branch) in net.branches.iter().enumerate() {
        let parts: Vec<String> = branch.fields.iter().map(|&f| fields[f].clone()).collect();
        let x = if parts.len() == 1 {
            parts[0].clone()
        } else {
            let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
            graph.op("Concat", &refs, &[("axis", Attr::Int(1))])
        };
        let w = graph.matrix(&format!("branch{k}_w"), &branch.w);
        let b = graph.constant(
            &format!("branch{k}_b"),
            &[branch.b.len()],
            branch.b.as_slice().expect("contiguous"),
        );
        let z = graph.op("MatMul", &[&x, &w], &[]);
        let z = graph.op("Add", &[&z, &b], &[]);
        let h = graph.op("Relu", &[&z], &[]);
        let scale = graph.constant(
            &format!("branch{k}_scale"),
            &[branch.scale.len()],
            branch.scale.as_slice().expect("contiguous"),
        );
        let shift = graph.constant(
            &format!("branch{k}_shift"),
            &[branch.shift.len()],
            branch.shift.as_slice().expect("contiguous"),
        );
        let h = graph.op("Mul", &[&h, &scale], &[]);
        outputs.push(graph.op("Add", &[&h, &shift], &[]));
    }
    let hcat = if outputs.len() == 1 {
        outputs[0].clone()
    } else {
        let refs: Vec<&str> = outputs.iter().map(String::as_str).collect();
        graph.op("Concat", &refs, &[("axis", Attr::Int(1))])
    };
    let w = graph.matrix("out_w", &net.out_w);
    let b = graph.constant(
        "out_b",
        &[net.out_b.len()],
        net.out_b.as_slice().expect("contiguous"),
    );
    let z = graph.op("MatMul", &[&hcat, &w], &[]);
    graph.op("Add", &[&z, &b], &[])
}

enum Attr {
    Int(i64),
    Ints(Vec<i64>),
}

/// A graph being built: nodes, initializers, inputs and outputs, with generated value names.
#[derive(Default)]
struct Graph {
    nodes: Vec<Message>,
    initializers: Vec<Message>,
    inputs: Vec<Message>,
    outputs: Vec<Message>,
    counter: usize,
}

impl Graph {
    fn fresh(&mut self, op: &str) -> String {
        self.counter += 1;
        internal(&format!("{}_{}", op.to_lowercase(), self.counter))
    }

    fn op(&mut self, op: &str, inputs: &[&str], attrs: &[(&str, Attr)]) -> String {
        let out = self.fresh(op);
        self.named_op(op, inputs, attrs, &out)
    }

    fn named_op(&mut self, op: &str, inputs: &[&str], attrs: &[(&str, Attr)], out: &str) -> String {
        let mut node = Message::new();
        for input in inputs {
            node = node.string(f::NODE_INPUT, input);
        }
        node = node
            .string(f::NODE_OUTPUT, out)
            .string(f::NODE_NAME, &format!("{out}_node"))
            .string(f::NODE_OP_TYPE, op);
        for (name, value) in attrs {
            let attr = Message::new().string(f::ATTRIBUTE_NAME, name);
            let attr = match value {
                Attr::Int(i) => attr
                    .int(f::ATTRIBUTE_I, *i)
                    .int(f::ATTRIBUTE_TYPE, ATTRIBUTE_INT),
                Attr::Ints(v) => attr
                    .ints(f::ATTRIBUTE_INTS, v)
                    .int(f::ATTRIBUTE_TYPE, ATTRIBUTE_INTS),
            };
            node = node.message(f::NODE_ATTRIBUTE, attr);
        }
        self.nodes.push(node);
        out.to_string()
    }

    /// `x / max(‖x‖, tiny)` along axis 1: a zero vector stays zero.
    fn unit(&mut self, x: &str, out: &str) -> String {
        let squares = self.op(
            "ReduceSumSquare",
            &[x],
            &[("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(1))],
        );
        let norm = self.op("Sqrt", &[&squares], &[]);
        let tiny = self.constant(&format!("{out}_tiny"), &[1], &[TINY_NORM]);
        let safe = self.op("Max", &[&norm, &tiny], &[]);
        self.named_op("Div", &[x, &safe], &[], out)
    }

    fn constant(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        let name = &internal(name);
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
        let tensor = Message::new()
            .ints(f::TENSOR_DIMS, &dims)
            .int(f::TENSOR_DATA_TYPE, FLOAT)
            .string(f::TENSOR_NAME, name)
            .bytes(f::TENSOR_RAW_DATA, &raw);
        self.initializers.push(tensor);
        name.to_string()
    }

    fn matrix(&mut self, name: &str, m: &ndarray::Array2<f32>) -> String {
        let values: Vec<f32> = m.iter().copied().collect(); // row-major, as ONNX stores tensors
        self.constant(name, &[m.nrows(), m.ncols()], &values)
    }

    fn input(&mut self, name: &str, dim: usize) {
        self.inputs.push(value_info(name, dim));
    }

    fn output(&mut self, name: &str, dim: usize) {
        self.outputs.push(value_info(name, dim));
    }
}

/// A float32 `[batch, dim]` value description.
fn value_info(name: &str, dim: usize) -> Message {
    let shape = Message::new()
        .message(f::SHAPE_DIM, Message::new().string(f::DIM_PARAM, "batch"))
        .message(f::SHAPE_DIM, Message::new().int(f::DIM_VALUE, dim as i64));
    let tensor = Message::new()
        .int(f::TENSOR_TYPE_ELEM_TYPE, FLOAT)
        .message(f::TENSOR_TYPE_SHAPE, shape);
    Message::new().string(f::VALUE_INFO_NAME, name).message(
        f::VALUE_INFO_TYPE,
        Message::new().message(f::TYPE_TENSOR, tensor),
    )
}

fn model(graph: Graph, saved: &SavedHead) -> Vec<u8> {
    let mut g = Message::new();
    for node in graph.nodes {
        g = g.message(f::GRAPH_NODE, node);
    }
    g = g.string(f::GRAPH_NAME, "medvec_head");
    for init in graph.initializers {
        g = g.message(f::GRAPH_INITIALIZER, init);
    }
    for input in graph.inputs {
        g = g.message(f::GRAPH_INPUT, input);
    }
    for output in graph.outputs {
        g = g.message(f::GRAPH_OUTPUT, output);
    }
    let meta = &saved.meta;
    let mut entries = vec![
        ("classes", meta.classes.join(",")),
        ("fusion", meta.fusion.clone()),
        ("label_field", meta.label_field.clone()),
        ("fields", meta.fields.fields.join(",")),
        (
            "shift_pair",
            meta.fields
                .shift_pair
                .as_ref()
                .map_or(String::new(), |p| p.join(",")),
        ),
        ("lambda", meta.lambda.to_string()),
        ("fingerprint", meta.fingerprint.clone()),
    ];
    // The graph outputs probabilities; a deployment applies the threshold as classify does.
    if let Some(t) = &meta.threshold {
        entries.push(("threshold", t.value.to_string()));
        entries.push(("positive_class", t.positive.clone()));
        entries.push(("threshold_rule", t.rule.clone()));
    }
    let mut m = Message::new()
        .int(f::MODEL_IR_VERSION, IR_VERSION)
        .string(f::MODEL_PRODUCER_NAME, "medvec")
        .string(f::MODEL_PRODUCER_VERSION, env!("CARGO_PKG_VERSION"))
        .message(f::MODEL_GRAPH, g)
        .message(
            f::MODEL_OPSET_IMPORT,
            Message::new()
                .string(f::OPSET_DOMAIN, "")
                .int(f::OPSET_VERSION, OPSET),
        );
    for (key, value) in entries {
        m = m.message(
            f::MODEL_METADATA_PROPS,
            Message::new()
                .string(f::ENTRY_KEY, key)
                .string(f::ENTRY_VALUE, &value),
        );
    }
    m.into_bytes()
}
