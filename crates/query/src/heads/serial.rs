//! Versioned binary body encoding of a [`TrainedHead`].
//!
//! All integers and floats are little-endian. Format version 2 (written):
//!
//! | field | type |
//! |---|---|
//! | magic | 4 bytes `MVHD` |
//! | version | u32 = 2 |
//! | fusion | u32: 0 early, 1 late |
//! | field count `n` (≥ 1) | u64 |
//! | dimension of each field, in the head's field order | `n` × u64 |
//! | hidden, num_classes | u64 each |
//! | dropout | f32 |
//! | best_epoch | u64 |
//! | history length `h` | u64 |
//! | `h` records | epoch u64; train_loss, val_macro_f1, train_seconds, val_seconds f64 |
//! | tensors | each: element count u64, then that many f32 |
//!
//! Version 1 (read, never written) had exactly two fields: in place of the count and the
//! dimensions it held `text_dim, image_dim` (fields 0 and 1), then the same rest.
//!
//! Tensor order: for each branch (early: one branch over all fields, concatenated in order;
//! late: one branch per field, in order) the Linear weight `(in, hidden)` row-major (the transpose of
//! PyTorch's `(out, in)`), Linear bias, BatchNorm γ, β, running mean, running variance;
//! then the output weight `(concat_width, out)` row-major and output bias. `out` is 1 for
//! two classes, else the class count. The body must end exactly after the last tensor.
//! The store wraps this body in its own checksummed envelope.

use ndarray::{Array1, Array2};

use super::error::{HeadError, Result};
use super::head::TrainedHead;
use super::net::{BnStats, BranchParams, Net, Params};
use super::spec::{Fusion, HeadSpec, Layout};
use super::train::EpochRecord;

const MAGIC: &[u8; 4] = b"MVHD";
const VERSION: u32 = 2;
/// The two-field version before any number of fields, still read.
const VERSION_TWO_FIELDS: u32 = 1;
/// Bytes of one serialised [`EpochRecord`].
const RECORD_BYTES: usize = 8 + 4 * 8;

impl TrainedHead {
    /// Encodes the head (architecture, dimensions, history, weights, running statistics).
    ///
    /// ```
    /// # use medvec_query::heads::{train, HeadSpec, Inputs, Labelled, TrainConfig, TrainedHead};
    /// # use ndarray::Array2;
    /// # let text = Array2::from_shape_fn((8, 3), |(i, j)| (i * 3 + j) as f32);
    /// # let labels: Vec<usize> = (0..8).map(|i| i % 2).collect();
    /// # let set = Labelled::new(Inputs::new(text.view(), text.view()).unwrap(), &labels).unwrap();
    /// # let head = train(&HeadSpec::late(), &set, &set, &TrainConfig { max_epochs: 1, ..Default::default() }).unwrap();
    /// let bytes = head.to_bytes();
    /// assert_eq!(TrainedHead::from_bytes(&bytes).unwrap(), head);
    /// assert!(TrainedHead::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let l = &self.net.layout;
        let mut out = Vec::with_capacity(128 + 4 * (l.param_count() + 2 * l.concat_width()));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&u32::from(l.spec.fusion == Fusion::Late).to_le_bytes());
        put_u64(&mut out, l.dims.len());
        for &v in l.dims.iter().chain([&l.spec.hidden, &l.num_classes]) {
            put_u64(&mut out, v);
        }
        out.extend_from_slice(&l.spec.dropout.to_le_bytes());
        put_u64(&mut out, self.best_epoch);
        put_u64(&mut out, self.history.len());
        for r in &self.history {
            put_u64(&mut out, r.epoch);
            for v in [r.train_loss, r.val_macro_f1, r.train_seconds, r.val_seconds] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        for t in tensor_order(&self.net) {
            put_u64(&mut out, t.len());
            t.iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        out
    }

    /// Decodes [`TrainedHead::to_bytes`] output; any malformed input is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(4)? != MAGIC {
            return Err(decode("bad magic"));
        }
        let version = r.u32()?;
        if version != VERSION && version != VERSION_TWO_FIELDS {
            return Err(decode(&format!("unsupported version {version}")));
        }
        let layout = read_layout(&mut r, version)?;
        let best_epoch = r.usize()?;
        let history = read_history(&mut r)?;
        let net = read_net(&mut r, layout)?;
        if r.pos != bytes.len() {
            return Err(decode("trailing bytes"));
        }
        Ok(Self {
            net,
            history,
            best_epoch,
        })
    }
}

fn put_u64(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v as u64).to_le_bytes());
}

fn decode(msg: &str) -> HeadError {
    HeadError::Decode(msg.to_string())
}

/// Tensors in file order, as flat slices in row-major order.
fn tensor_order(net: &Net<f32>) -> Vec<Vec<f32>> {
    let mut out = Vec::new();
    for (br, st) in net.params.branches.iter().zip(&net.stats) {
        out.push(br.w.iter().copied().collect());
        for t in [&br.b, &br.gamma, &br.beta] {
            out.push(t.to_vec());
        }
        out.push(st.mean.to_vec());
        out.push(st.var.to_vec());
    }
    out.push(net.params.out_w.iter().copied().collect());
    out.push(net.params.out_b.to_vec());
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(decode("truncated"));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.take(N)?.try_into().map_err(|_| decode("truncated"))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn usize(&mut self) -> Result<usize> {
        usize::try_from(u64::from_le_bytes(self.array()?))
            .map_err(|_| decode("integer overflows usize"))
    }

    fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_le_bytes(self.array()?))
    }

    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// A tensor of exactly `expected` finite values.
    fn tensor(&mut self, expected: usize) -> Result<Vec<f32>> {
        let n = self.usize()?;
        if n != expected {
            return Err(decode(&format!(
                "tensor has {n} values, layout needs {expected}"
            )));
        }
        let raw = self.take(n.checked_mul(4).ok_or_else(|| decode("tensor too large"))?)?;
        let values: Vec<f32> = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if values.iter().all(|v| v.is_finite()) {
            Ok(values)
        } else {
            Err(HeadError::NonFinite("decoded weights"))
        }
    }

    fn matrix(&mut self, rows: usize, cols: usize) -> Result<Array2<f32>> {
        let n = rows
            .checked_mul(cols)
            .ok_or_else(|| decode("tensor too large"))?;
        Array2::from_shape_vec((rows, cols), self.tensor(n)?).map_err(|e| decode(&e.to_string()))
    }

    fn vector(&mut self, n: usize) -> Result<Array1<f32>> {
        Ok(Array1::from(self.tensor(n)?))
    }
}

fn read_layout(r: &mut Reader<'_>, version: u32) -> Result<Layout> {
    let fusion = match r.u32()? {
        0 => Fusion::Early,
        1 => Fusion::Late,
        other => return Err(decode(&format!("unknown fusion {other}"))),
    };
    let fields = if version == VERSION_TWO_FIELDS {
        2
    } else {
        r.usize()?
    };
    // Bound every size by the body length before any allocation or multiplication: each
    // dimension, the hidden width and the class count are at least one stored f32 each.
    let limit = r.remaining() / 4;
    if fields == 0 || fields > limit {
        return Err(decode("field count is zero or exceeds the encoded data"));
    }
    let dims = (0..fields).map(|_| r.usize()).collect::<Result<Vec<_>>>()?;
    let (hidden, num_classes) = (r.usize()?, r.usize()?);
    let spec = HeadSpec {
        fusion,
        hidden,
        dropout: r.f32()?,
    };
    spec.validate().map_err(|e| decode(&e.to_string()))?;
    if dims.contains(&0) || num_classes < 2 {
        return Err(decode("zero dimension or fewer than two classes"));
    }
    let limit = r.remaining() / 4;
    if dims
        .iter()
        .chain([&hidden, &num_classes])
        .any(|&v| v > limit)
        || dims
            .iter()
            .try_fold(0usize, |sum, &d| sum.checked_add(d))
            .is_none_or(|sum| sum > limit)
    {
        return Err(decode("dimensions exceed the encoded data"));
    }
    Ok(Layout {
        spec,
        dims,
        num_classes,
    })
}

fn read_history(r: &mut Reader<'_>) -> Result<Vec<EpochRecord>> {
    let n = r.usize()?;
    if n > r.remaining() / RECORD_BYTES {
        return Err(decode("history longer than the data"));
    }
    (0..n)
        .map(|_| {
            Ok(EpochRecord {
                epoch: r.usize()?,
                train_loss: r.f64()?,
                val_macro_f1: r.f64()?,
                train_seconds: r.f64()?,
                val_seconds: r.f64()?,
            })
        })
        .collect()
}

fn read_net(r: &mut Reader<'_>, layout: Layout) -> Result<Net<f32>> {
    let h = layout.spec.hidden;
    let mut branches = Vec::new();
    let mut stats = Vec::new();
    for k in 0..layout.branch_count() {
        branches.push(BranchParams {
            w: r.matrix(layout.branch_in_dim(k), h)?,
            b: r.vector(h)?,
            gamma: r.vector(h)?,
            beta: r.vector(h)?,
        });
        let st = BnStats {
            mean: r.vector(h)?,
            var: r.vector(h)?,
        };
        if st.var.iter().any(|&v| v < 0.0) {
            return Err(decode("negative running variance"));
        }
        stats.push(st);
    }
    let out_w = r.matrix(layout.concat_width(), layout.out_dim())?;
    let out_b = r.vector(layout.out_dim())?;
    Ok(Net {
        layout,
        params: Params {
            branches,
            out_w,
            out_b,
        },
        stats,
    })
}

impl TrainedHead {
    /// Every stored number (weights and BatchNorm running statistics) in the order of
    /// the serialised tensors; handy for comparing two heads.
    pub fn weights(&self) -> Vec<f32> {
        tensor_order(&self.net).concat()
    }
}
