//! What the image and text encoders share: finding the `.onnx` file in a model folder, the
//! session (behind a mutex: `ort` runs need `&mut`), input/output introspection, running a batch,
//! pooling and L2 normalisation.

use super::error::{EncodeError, Result};
use super::image_io::ImageLimits;
use super::runtime::Runtime;
use ort::session::Session;
use ort::value::{DynValue, Tensor, TensorElementType, ValueType};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// How per-token (or per-patch) outputs become one vector per input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The first token (`[CLS]`, or a ViT's class token) of a `[batch, tokens, dim]` output.
    Cls,
    /// The mean over tokens of a `[batch, tokens, dim]` output, weighted by the attention mask
    /// (sentence-transformers' mean pooling; for images, all tokens).
    Mean,
    /// The output is already one vector per input, `[batch, dim]` (CLIP's `image_embeds` /
    /// `text_embeds`, a `pooler_output`, a `sentence_embedding`). A `[batch, dim]` output is
    /// always read this way, whatever pooling was asked for.
    Pooled,
}

impl Pooling {
    /// `cls`, `mean` or `pooled`.
    pub fn name(self) -> &'static str {
        match self {
            Pooling::Cls => "cls",
            Pooling::Mean => "mean",
            Pooling::Pooled => "pooled",
        }
    }

    /// The pooling named by [`name`](Self::name).
    ///
    /// ```
    /// use medvec_ingest::encode::Pooling;
    /// assert_eq!(Pooling::parse("mean"), Some(Pooling::Mean));
    /// assert_eq!(Pooling::parse("max"), None);
    /// ```
    pub fn parse(name: &str) -> Option<Pooling> {
        [Pooling::Cls, Pooling::Mean, Pooling::Pooled]
            .into_iter()
            .find(|p| p.name() == name)
    }
}

/// Settings shared by [`ImageEncoder::open`](super::ImageEncoder::open) and
/// [`TextEncoder::open`](super::TextEncoder::open). `Default` suits Hugging Face / Optimum exports.
#[derive(Debug, Clone)]
pub struct EncoderOptions {
    /// ONNX Runtime intra-op threads; `None` uses every core.
    pub intra_threads: Option<usize>,
    /// Inputs per model run. Default 32.
    pub batch_size: usize,
    /// The `.onnx` file, relative to the model folder or absolute. `None` picks
    /// `vision_model.onnx` / `text_model.onnx`, then `model.onnx`, in the folder or its `onnx/`.
    pub model_file: Option<PathBuf>,
    /// The model input fed with pixels (default: `pixel_values`, else the one float input) or
    /// token ids (default: `input_ids`).
    pub input_name: Option<String>,
    /// The output read (default: `image_embeds` / `text_embeds` / `sentence_embedding` /
    /// `pooler_output` / `last_hidden_state`, see the encoders).
    pub output_name: Option<String>,
    /// How to pool a per-token output; `None` decides from the output's rank and the folder's
    /// `1_Pooling/config.json` (text: mean; images: CLS).
    pub pooling: Option<Pooling>,
    /// Text: longest token sequence, truncating longer texts. `None` reads the folder's configs.
    pub max_length: Option<usize>,
    /// L2-normalise every vector. Default true.
    pub normalize: bool,
    /// Image file limits for [`ImageEncoder::encode_files`](super::ImageEncoder::encode_files).
    pub limits: ImageLimits,
    /// Images: decode JPEG files at a reduced DCT scale, as a notebook calling Pillow's
    /// `Image.draft("RGB", size)` with [`ImagePreprocessor::draft_request`](super::ImagePreprocessor::draft_request)
    /// does (see [`load_image_draft`](super::load_image_draft)). Much faster on camera-sized
    /// photos; the vectors differ slightly from full-size decoding, so it is recorded with the
    /// collection's model. Default false.
    pub jpeg_draft: bool,
    /// Images: how a DICOM file's greyscale frames become 8 bits (`--window`): the file's own
    /// VOI (default), a fixed window, or min-max. Recorded with the collection's model.
    pub dicom_window: crate::dicom::WindowChoice,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        EncoderOptions {
            intra_threads: None,
            batch_size: 32,
            model_file: None,
            input_name: None,
            output_name: None,
            pooling: None,
            max_length: None,
            normalize: true,
            limits: ImageLimits::default(),
            jpeg_draft: false,
            dicom_window: crate::dicom::WindowChoice::FromFile,
        }
    }
}

/// One model input or output as the model declares it; dynamic dimensions are `-1`.
#[derive(Debug, Clone)]
pub(crate) struct Port {
    pub name: String,
    pub element: Option<TensorElementType>,
    pub shape: Vec<i64>,
}

impl Port {
    fn from_outlet(name: &str, dtype: &ValueType) -> Port {
        let (element, shape) = match dtype {
            ValueType::Tensor { ty, shape, .. } => (Some(*ty), shape.to_vec()),
            _ => (None, Vec::new()),
        };
        Port {
            name: name.to_string(),
            element,
            shape,
        }
    }

    /// Dimension `i` when the model fixes it.
    pub fn fixed(&self, i: usize) -> Option<usize> {
        self.shape
            .get(i)
            .and_then(|&d| usize::try_from(d).ok())
            .filter(|&d| d > 0)
    }
}

/// A loaded `.onnx` file.
pub(crate) struct OnnxModel {
    pub path: PathBuf,
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
    session: Mutex<Session>,
}

impl OnnxModel {
    pub fn open(runtime: &Runtime, path: &Path, threads: Option<usize>) -> Result<OnnxModel> {
        let threads = threads
            .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
            .unwrap_or(1)
            .max(1);
        let fail = |e: &dyn std::fmt::Display| {
            EncodeError::model(path, format!("cannot load the model: {e}"))
        };
        let session = Session::builder(runtime.env())
            .map_err(|e| fail(&e))?
            .with_intra_threads(threads)
            .map_err(|e| fail(&e))?
            .commit_from_file(path)
            .map_err(|e| fail(&e))?;
        let inputs = session
            .inputs()
            .iter()
            .map(|o| Port::from_outlet(o.name(), o.dtype()))
            .collect();
        let outputs = session
            .outputs()
            .iter()
            .map(|o| Port::from_outlet(o.name(), o.dtype()))
            .collect();
        Ok(OnnxModel {
            path: path.to_path_buf(),
            inputs,
            outputs,
            session: Mutex::new(session),
        })
    }

    pub fn input(&self, name: &str) -> Option<&Port> {
        self.inputs.iter().find(|p| p.name == name)
    }

    pub fn output(&self, name: &str) -> Option<&Port> {
        self.outputs.iter().find(|p| p.name == name)
    }

    /// Runs the model and copies out one float32 output: (shape, data).
    pub fn run(
        &self,
        inputs: Vec<(String, DynValue)>,
        output: &str,
    ) -> Result<(Vec<usize>, Vec<f32>)> {
        // A panic while another thread held the lock cannot leave the session half-updated
        // (runs do not mutate it), so a poisoned lock is still safe to use.
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let outputs = session
            .run(inputs)
            .map_err(|e| EncodeError::inference(&self.path, e.to_string()))?;
        let value = outputs
            .get(output)
            .ok_or_else(|| EncodeError::inference(&self.path, format!("no output `{output}`")))?;
        let (shape, data) = value.try_extract_tensor::<f32>().map_err(|e| {
            EncodeError::inference(&self.path, format!("output `{output}` is not float32: {e}"))
        })?;
        let shape = shape.iter().map(|&d| d.max(0) as usize).collect();
        Ok((shape, data.to_vec()))
    }

    /// "inputs: a (float32 [-1, 3, 224, 224]), b (...)" for error messages.
    pub fn describe_inputs(&self) -> String {
        describe(&self.inputs)
    }

    pub fn describe_outputs(&self) -> String {
        describe(&self.outputs)
    }
}

fn describe(ports: &[Port]) -> String {
    let parts: Vec<String> = ports
        .iter()
        .map(|p| match p.element {
            Some(t) => format!("{} ({t:?} {:?})", p.name, p.shape),
            None => format!("{} (not a tensor)", p.name),
        })
        .collect();
    parts.join(", ")
}

/// The `.onnx` file of a model folder: `options_file` if given (relative to `dir`), else the
/// first of `names` found in `dir` or `dir/onnx`.
pub(crate) fn find_model_file(
    dir: &Path,
    names: &[&str],
    options_file: Option<&Path>,
) -> Result<PathBuf> {
    if !dir.is_dir() {
        return Err(EncodeError::model(dir, "model folder not found"));
    }
    if let Some(file) = options_file {
        let path = dir.join(file);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(EncodeError::model(&path, "model file not found"))
        };
    }
    for sub in ["", "onnx"] {
        for name in names {
            let path = dir.join(sub).join(name);
            if path.is_file() {
                return Ok(path);
            }
        }
    }
    Err(EncodeError::model(
        dir,
        format!(
            "no ONNX model: looked for {} here and in onnx/",
            names.join(", ")
        ),
    ))
}

/// A config file of a model folder: in `dir`, else in `dir/onnx` (some exports put everything there).
pub(crate) fn find_config(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join("onnx").join(name)]
        .into_iter()
        .find(|p| p.is_file())
}

/// The first output named in `preferred`, else the only output.
pub(crate) fn pick_output<'m>(
    model: &'m OnnxModel,
    wanted: Option<&str>,
    preferred: &[&str],
) -> Result<&'m Port> {
    if let Some(name) = wanted {
        return model.output(name).ok_or_else(|| {
            EncodeError::model(
                &model.path,
                format!("no output `{name}`; outputs: {}", model.describe_outputs()),
            )
        });
    }
    if let Some(port) = preferred.iter().find_map(|n| model.output(n)) {
        return Ok(port);
    }
    match model.outputs.as_slice() {
        [only] => Ok(only),
        _ => Err(EncodeError::model(
            &model.path,
            format!(
                "cannot tell which output holds the embeddings (none of {}); set EncoderOptions::output_name. Outputs: {}",
                preferred.join(", "),
                model.describe_outputs()
            ),
        )),
    }
}

/// The pooling for `port`: `wanted`, else pooled for rank 2 and `default` for rank 3.
pub(crate) fn pick_pooling(
    model: &OnnxModel,
    port: &Port,
    wanted: Option<Pooling>,
    default: Pooling,
) -> Result<Pooling> {
    match (wanted, port.shape.len()) {
        (Some(p), _) => Ok(p),
        (None, 2) => Ok(Pooling::Pooled),
        // Rank 0: the model does not declare the shape; a [batch, dim] result is read as
        // pooled whatever the choice (see `pool`).
        (None, 0 | 3) => Ok(default),
        (None, rank) => Err(EncodeError::model(
            &model.path,
            format!(
                "output `{}` has rank {rank}; medvec reads [batch, dim] or [batch, tokens, dim]",
                port.name
            ),
        )),
    }
}

/// Inputs other than `used`: the other tower's inputs of a combined CLIP graph, which must be
/// fed even though only one output is read. Each gets a minimal dummy ([`dummy_value`]).
pub(crate) fn dummy_inputs(model: &OnnxModel, used: &[&str]) -> Result<Vec<Port>> {
    let mut extras = Vec::new();
    for port in model
        .inputs
        .iter()
        .filter(|p| !used.contains(&p.name.as_str()))
    {
        match port.element {
            Some(TensorElementType::Float32 | TensorElementType::Int64 | TensorElementType::Int32) => {
                extras.push(port.clone());
            }
            _ => {
                return Err(EncodeError::model(
                    &model.path,
                    format!(
                        "input `{}` is not one medvec can fill (it feeds pixels, token ids, masks, token types and position ids). Inputs: {}",
                        port.name,
                        model.describe_inputs()
                    ),
                ))
            }
        }
    }
    Ok(extras)
}

/// One dummy row for an unused input: fixed dimensions as declared, dynamic ones 1 (224 for
/// the spatial dimensions of an image); floats are 0, integers 1 (a valid token id and an
/// "attend" mask, so the unused tower computes nothing undefined).
pub(crate) fn dummy_value(model: &Path, port: &Port) -> Result<DynValue> {
    let rank = port.shape.len();
    let dims: Vec<usize> = (0..rank)
        .map(|i| match port.fixed(i) {
            Some(d) => d,
            None if rank == 4 && i >= 2 => 224,
            None => 1,
        })
        .collect();
    let n: usize = dims.iter().product();
    let fail =
        |e: ort::Error| EncodeError::inference(model, format!("dummy input `{}`: {e}", port.name));
    Ok(match port.element {
        Some(TensorElementType::Int64) => Tensor::from_array((dims, vec![1i64; n]))
            .map_err(fail)?
            .into_dyn(),
        Some(TensorElementType::Int32) => Tensor::from_array((dims, vec![1i32; n]))
            .map_err(fail)?
            .into_dyn(),
        _ => Tensor::from_array((dims, vec![0f32; n]))
            .map_err(fail)?
            .into_dyn(),
    })
}

/// Rows per model run: the model's fixed batch size if it has one (then every run is padded to
/// it: `true`), else `batch_size`.
pub(crate) fn rows_per_run(input: &Port, batch_size: usize) -> (usize, bool) {
    match input.fixed(0) {
        Some(b) => (b, true),
        None => (batch_size.max(1), false),
    }
}

/// Turns a model output into one vector per row. `mask` (row-major `[rows, tokens]`) weights
/// the mean; sums run in f64 so long sequences lose nothing.
pub(crate) fn pool(
    model: &Path,
    shape: &[usize],
    data: &[f32],
    pooling: Pooling,
    mask: Option<&[i64]>,
) -> Result<Vec<Vec<f32>>> {
    let bad = || {
        EncodeError::inference(
            model,
            format!("output shape {shape:?} does not fit {pooling:?} pooling"),
        )
    };
    // A model is input too: an empty dimension or a short buffer must not become a panic.
    if shape.contains(&0) || shape.iter().product::<usize>() != data.len() {
        return Err(bad());
    }
    match (pooling, shape) {
        // A [batch, dim] output is one vector per row already: CLS or mean would not apply.
        (_, [rows, dim]) => Ok(data.chunks(*dim).take(*rows).map(<[f32]>::to_vec).collect()),
        (Pooling::Pooled, [rows, 1, dim]) | (Pooling::Cls, [rows, _, dim]) => {
            let tokens = if shape.len() == 3 { shape[1] } else { 1 };
            Ok((0..*rows)
                .map(|r| data[r * tokens * dim..r * tokens * dim + dim].to_vec())
                .collect())
        }
        (Pooling::Mean, [rows, tokens, dim]) => {
            if mask.is_some_and(|m| m.len() != rows * tokens) {
                return Err(bad());
            }
            Ok((0..*rows)
                .map(|r| {
                    let weights = mask.map(|m| &m[r * tokens..(r + 1) * tokens]);
                    mean_row(
                        &data[r * tokens * dim..(r + 1) * tokens * dim],
                        *dim,
                        weights,
                    )
                })
                .collect())
        }
        _ => Err(bad()),
    }
}

fn mean_row(tokens: &[f32], dim: usize, mask: Option<&[i64]>) -> Vec<f32> {
    let mut sum = vec![0f64; dim];
    let mut count = 0f64;
    for (t, row) in tokens.chunks(dim).enumerate() {
        let w = mask.map_or(1.0, |m| m[t] as f64);
        if w == 0.0 {
            continue;
        }
        count += w;
        for (s, &x) in sum.iter_mut().zip(row) {
            *s += w * f64::from(x);
        }
    }
    // sentence-transformers clamps the token count at 1e-9.
    let count = count.max(1e-9);
    sum.iter().map(|s| (s / count) as f32).collect()
}

/// The model must return at least one vector per input row.
pub(crate) fn check_rows(model: &Path, vectors: &[Vec<f32>], rows: usize) -> Result<()> {
    if vectors.len() >= rows {
        Ok(())
    } else {
        Err(EncodeError::inference(
            model,
            format!(
                "the model returned {} vectors for {rows} inputs",
                vectors.len()
            ),
        ))
    }
}

/// Scales `v` to unit length (zero vectors stay zero), like `torch.nn.functional.normalize`.
pub(crate) fn l2_normalize(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    let norm = norm.max(1e-12);
    for x in v.iter_mut() {
        *x = (f64::from(*x) / norm) as f32;
    }
}

/// Every output row must be finite: a NaN in a stored vector poisons every search it touches.
pub(crate) fn check_finite(model: &Path, vectors: &[Vec<f32>]) -> Result<()> {
    match vectors
        .iter()
        .position(|v| v.iter().any(|x| !x.is_finite()))
    {
        None => Ok(()),
        Some(row) => Err(EncodeError::inference(
            model,
            format!("row {row} of the batch has a NaN or infinite value"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_pooling_ignores_padding() {
        let data = [1.0, 2.0, 3.0, 4.0, 100.0, 100.0];
        let out = pool(
            Path::new("m"),
            &[1, 3, 2],
            &data,
            Pooling::Mean,
            Some(&[1, 1, 0]),
        )
        .unwrap();
        assert_eq!(out, vec![vec![2.0, 3.0]]);
        let out = pool(Path::new("m"), &[1, 3, 2], &data, Pooling::Cls, None).unwrap();
        assert_eq!(out, vec![vec![1.0, 2.0]]);
        // [batch, dim] is pooled already, whatever was asked.
        let out = pool(Path::new("m"), &[3, 2], &data, Pooling::Mean, None).unwrap();
        assert_eq!(out[2], vec![100.0, 100.0]);
        // A buffer that does not fill the shape, or an empty dimension, is an error.
        assert!(pool(Path::new("m"), &[4, 2], &data, Pooling::Pooled, None).is_err());
        assert!(pool(Path::new("m"), &[1, 0, 6], &[], Pooling::Cls, None).is_err());
    }

    #[test]
    fn normalize_handles_zero() {
        let mut v = vec![3.0, 4.0];
        l2_normalize(&mut v);
        assert_eq!(v, vec![0.6, 0.8]);
        let mut z = vec![0.0, 0.0];
        l2_normalize(&mut z);
        assert_eq!(z, vec![0.0, 0.0]);
    }
}
