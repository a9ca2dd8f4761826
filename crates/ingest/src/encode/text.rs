//! The text encoder: texts -> `tokenizer.json` (truncate, pad) -> ONNX -> pooled, normalised
//! vectors.

use super::config::JsonFile;
use super::error::{EncodeError, Result};
use super::model::{self, EncoderOptions, OnnxModel, Pooling, Port};
use super::runtime::Runtime;
use ort::value::{DynValue, Tensor, TensorElementType};
use std::path::{Path, PathBuf};
use tokenizers::{PaddingDirection, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// Outputs tried, in order, when [`EncoderOptions::output_name`] is not set. `pooler_output`
/// is left out on purpose: BERT's is a trained classifier head, not the sentence embedding.
const TEXT_OUTPUTS: &[&str] = &["text_embeds", "sentence_embedding", "last_hidden_state"];
/// Max length when no config gives one.
const DEFAULT_MAX_LENGTH: usize = 512;
/// transformers writes `model_max_length` as 1e30 ("no limit"); anything this large is ignored.
const UNLIMITED: u64 = 1_000_000;

/// Token ids of a batch, row-major `[rows, seq_len]`, padded to the longest row (or to the
/// model's fixed sequence length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokenized {
    /// Number of texts.
    pub rows: usize,
    /// Tokens per row, padding included.
    pub seq_len: usize,
    /// Token ids, `[CLS]`/`[SEP]` (or the tokenizer's own special tokens) included.
    pub input_ids: Vec<i64>,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Vec<i64>,
    /// Segment ids (0 for single texts).
    pub token_type_ids: Vec<i64>,
}

impl Tokenized {
    /// The ids of row `i`, padding included.
    pub fn ids(&self, i: usize) -> &[i64] {
        &self.input_ids[i * self.seq_len..(i + 1) * self.seq_len]
    }

    /// The attention mask of row `i`.
    pub fn mask(&self, i: usize) -> &[i64] {
        &self.attention_mask[i * self.seq_len..(i + 1) * self.seq_len]
    }
}

/// The model inputs a text model may have, besides the ids.
#[derive(Debug, Clone)]
struct TextInputs {
    ids: Port,
    mask: Option<String>,
    types: Option<String>,
    positions: Option<String>,
    extras: Vec<Port>,
}

/// An ONNX text encoder (BERT-style sentence models, CLIP text towers) with its tokenizer.
///
/// ```
/// use medvec_ingest::encode::{EncoderOptions, Runtime, RuntimeOptions, TextEncoder};
/// # let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
/// let runtime = Runtime::load(&RuntimeOptions::default())?;
/// let encoder = TextEncoder::open(&runtime, &root.join("fixtures/models/tiny-text"), &EncoderOptions::default())?;
/// let texts = ["Patient diagnosed via histo. Age: 80 years. Sex: male. Localization: scalp.".to_string()];
/// let vectors = encoder.encode(&texts)?;
/// assert_eq!(vectors[0].len(), encoder.dim());
/// # Ok::<(), medvec_ingest::encode::EncodeError>(())
/// ```
pub struct TextEncoder {
    model: OnnxModel,
    tokenizer: Tokenizer,
    tokenizer_path: PathBuf,
    inputs: TextInputs,
    output: String,
    pooling: Pooling,
    dim: usize,
    max_length: usize,
    rows_per_run: usize,
    fixed_batch: bool,
    options: EncoderOptions,
    /// The model folder it was opened from.
    dir: PathBuf,
}

impl std::fmt::Debug for TextEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextEncoder")
            .field("model", &self.model.path)
            .field("output", &self.output)
            .field("pooling", &self.pooling)
            .field("dim", &self.dim)
            .field("max_length", &self.max_length)
            .finish()
    }
}

/// The JSON files of a text model folder (all optional except `tokenizer.json`).
struct Configs {
    model: Option<JsonFile>,
    tokenizer: Option<JsonFile>,
    sentence: Option<JsonFile>,
    pooling: Option<JsonFile>,
}

impl Configs {
    fn read(dir: &Path) -> Result<Configs> {
        let read = |name: &str| -> Result<Option<JsonFile>> {
            model::find_config(dir, name)
                .map(|p| JsonFile::read(&p))
                .transpose()
        };
        Ok(Configs {
            model: read("config.json")?,
            tokenizer: read("tokenizer_config.json")?,
            sentence: read("sentence_bert_config.json")?,
            pooling: JsonFile::read_optional(&dir.join("1_Pooling/config.json"))?,
        })
    }
}

impl TextEncoder {
    /// Opens a model folder: `text_model.onnx` or `model.onnx` (in the folder or `onnx/`),
    /// `tokenizer.json`, and when present `config.json`, `tokenizer_config.json`,
    /// `sentence_bert_config.json`, `1_Pooling/config.json`.
    ///
    /// Max length: [`EncoderOptions::max_length`], else `sentence_bert_config.json`'s
    /// `max_seq_length`, else the smaller of `tokenizer_config.json`'s `model_max_length` and
    /// `config.json`'s `max_position_embeddings` (or `text_config.max_position_embeddings`), else
    /// 512; never more than the position embeddings or a fixed sequence length of the model.
    pub fn open(runtime: &Runtime, dir: &Path, options: &EncoderOptions) -> Result<TextEncoder> {
        let file = model::find_model_file(
            dir,
            &["text_model.onnx", "model.onnx"],
            options.model_file.as_deref(),
        )?;
        let tokenizer_path = model::find_config(dir, "tokenizer.json")
            .ok_or_else(|| EncodeError::model(dir, "no tokenizer.json in the model folder"))?;
        let configs = Configs::read(dir)?;
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| EncodeError::tokenizer(&tokenizer_path, e.to_string()))?;
        let model = OnnxModel::open(runtime, &file, options.intra_threads)?;
        let inputs = text_inputs(&model, options.input_name.as_deref())?;
        let fixed_seq = inputs.ids.fixed(1);
        let max_length = max_length(&configs, options.max_length, fixed_seq)?;
        configure(
            &mut tokenizer,
            &tokenizer_path,
            &configs,
            max_length,
            fixed_seq,
        )?;
        let output =
            model::pick_output(&model, options.output_name.as_deref(), TEXT_OUTPUTS)?.clone();
        let pooling = model::pick_pooling(
            &model,
            &output,
            options.pooling,
            configured_pooling(&configs)?,
        )?;
        let (rows_per_run, fixed_batch) = model::rows_per_run(&inputs.ids, options.batch_size);
        let mut encoder = TextEncoder {
            model,
            tokenizer,
            tokenizer_path,
            inputs,
            output: output.name.clone(),
            pooling,
            dim: 0,
            max_length,
            rows_per_run,
            fixed_batch,
            options: options.clone(),
            dir: dir.to_path_buf(),
        };
        encoder.dim = match output.shape.last().copied().filter(|&d| d > 0) {
            Some(d) => d as usize,
            None => encoder
                .encode(&["a".to_string()])?
                .first()
                .map_or(0, Vec::len),
        };
        Ok(encoder)
    }

    /// Length of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Longest token sequence; longer texts are truncated.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The `.onnx` file in use.
    pub fn model_path(&self) -> &Path {
        &self.model.path
    }

    /// The model folder it was opened from.
    pub fn model_dir(&self) -> &Path {
        &self.dir
    }

    /// The options that reopen exactly this encoder: the resolved `.onnx` file, input, output,
    /// pooling and max length made explicit (recorded with a collection, see [`crate::models`]).
    pub fn effective_options(&self) -> EncoderOptions {
        EncoderOptions {
            model_file: Some(self.model.path.clone()),
            input_name: Some(self.inputs.ids.name.clone()),
            output_name: Some(self.output.clone()),
            pooling: Some(self.pooling),
            max_length: Some(self.max_length),
            ..self.options.clone()
        }
    }

    /// Tokenizes a batch exactly as Python's `tokenizers` does with the same `tokenizer.json`
    /// (special tokens added, truncated to [`max_length`](Self::max_length), padded to the
    /// longest text).
    pub fn tokenize(&self, texts: &[String]) -> Result<Tokenized> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.iter().map(String::as_str).collect::<Vec<_>>(), true)
            .map_err(|e| EncodeError::tokenizer(&self.tokenizer_path, e.to_string()))?;
        let seq_len = encodings.first().map_or(0, |e| e.get_ids().len());
        if encodings.iter().any(|e| e.get_ids().len() != seq_len) {
            return Err(EncodeError::tokenizer(
                &self.tokenizer_path,
                "rows of different lengths after padding",
            ));
        }
        let mut out = Tokenized {
            rows: encodings.len(),
            seq_len,
            input_ids: Vec::with_capacity(encodings.len() * seq_len),
            attention_mask: Vec::with_capacity(encodings.len() * seq_len),
            token_type_ids: Vec::with_capacity(encodings.len() * seq_len),
        };
        for e in &encodings {
            out.input_ids
                .extend(e.get_ids().iter().map(|&x| i64::from(x)));
            out.attention_mask
                .extend(e.get_attention_mask().iter().map(|&x| i64::from(x)));
            out.token_type_ids
                .extend(e.get_type_ids().iter().map(|&x| i64::from(x)));
        }
        Ok(out)
    }

    /// Encodes texts, in order, `batch_size` at a time.
    pub fn encode(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.rows_per_run) {
            out.extend(self.run(chunk)?);
        }
        Ok(out)
    }

    fn run(&self, chunk: &[String]) -> Result<Vec<Vec<f32>>> {
        let mut tokens = self.tokenize(chunk)?;
        if self.fixed_batch {
            pad_rows(&mut tokens, self.rows_per_run);
        }
        let inputs = self.model_inputs(&tokens)?;
        let (shape, values) = self.model.run(inputs, &self.output)?;
        let mask = Some(tokens.attention_mask.as_slice());
        let mut vectors = model::pool(&self.model.path, &shape, &values, self.pooling, mask)?;
        model::check_rows(&self.model.path, &vectors, chunk.len())?;
        vectors.truncate(chunk.len());
        if self.options.normalize {
            vectors.iter_mut().for_each(|v| model::l2_normalize(v));
        }
        model::check_finite(&self.model.path, &vectors)?;
        Ok(vectors)
    }

    fn model_inputs(&self, t: &Tokenized) -> Result<Vec<(String, DynValue)>> {
        let shape = vec![t.rows, t.seq_len];
        let element = self.inputs.ids.element;
        let tensor = |name: &str, data: Vec<i64>| -> Result<(String, DynValue)> {
            let value = int_tensor(element, shape.clone(), data).map_err(|e| {
                EncodeError::inference(&self.model.path, format!("input `{name}`: {e}"))
            })?;
            Ok((name.to_string(), value))
        };
        let mut inputs = vec![tensor(&self.inputs.ids.name, t.input_ids.clone())?];
        if let Some(name) = &self.inputs.mask {
            inputs.push(tensor(name, t.attention_mask.clone())?);
        }
        if let Some(name) = &self.inputs.types {
            inputs.push(tensor(name, t.token_type_ids.clone())?);
        }
        if let Some(name) = &self.inputs.positions {
            let positions = (0..t.rows).flat_map(|_| 0..t.seq_len as i64).collect();
            inputs.push(tensor(name, positions)?);
        }
        for port in &self.inputs.extras {
            inputs.push((
                port.name.clone(),
                model::dummy_value(&self.model.path, port)?,
            ));
        }
        Ok(inputs)
    }
}

/// int64 or int32, whichever the model takes (some exports use int32 ids).
fn int_tensor(
    element: Option<TensorElementType>,
    shape: Vec<usize>,
    data: Vec<i64>,
) -> ort::Result<DynValue> {
    if element == Some(TensorElementType::Int32) {
        // Token ids, masks and positions are small: the cast cannot truncate.
        let narrow: Vec<i32> = data.iter().map(|&x| x as i32).collect();
        Ok(Tensor::from_array((shape, narrow))?.into_dyn())
    } else {
        Ok(Tensor::from_array((shape, data))?.into_dyn())
    }
}

/// Pads a batch with empty rows (mask 0) up to a model's fixed batch size.
fn pad_rows(t: &mut Tokenized, rows: usize) {
    let extra = rows.saturating_sub(t.rows) * t.seq_len;
    t.input_ids.extend(std::iter::repeat_n(0, extra));
    t.attention_mask.extend(std::iter::repeat_n(0, extra));
    t.token_type_ids.extend(std::iter::repeat_n(0, extra));
    t.rows = t.rows.max(rows);
}

fn text_inputs(model: &OnnxModel, wanted: Option<&str>) -> Result<TextInputs> {
    let name = wanted.unwrap_or("input_ids");
    let ids = model.input(name).cloned().ok_or_else(|| {
        EncodeError::model(
            &model.path,
            format!(
                "no input `{name}` for token ids; set EncoderOptions::input_name. Inputs: {}",
                model.describe_inputs()
            ),
        )
    })?;
    if !matches!(
        ids.element,
        Some(TensorElementType::Int64 | TensorElementType::Int32)
    ) || ids.shape.len() != 2
    {
        return Err(EncodeError::model(
            &model.path,
            format!(
                "input `{name}` is {:?} {:?}; token ids need int64 or int32 [batch, sequence]",
                ids.element, ids.shape
            ),
        ));
    }
    let has = |n: &str| model.input(n).map(|p| p.name.clone());
    let (mask, types, positions) = (
        has("attention_mask"),
        has("token_type_ids"),
        has("position_ids"),
    );
    let used: Vec<&str> = [
        Some(name),
        mask.as_deref(),
        types.as_deref(),
        positions.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let extras = model::dummy_inputs(model, &used)?;
    Ok(TextInputs {
        ids,
        mask,
        types,
        positions,
        extras,
    })
}

fn max_length(configs: &Configs, wanted: Option<usize>, fixed_seq: Option<usize>) -> Result<usize> {
    let positions = match &configs.model {
        Some(c) => match c.uint("max_position_embeddings")? {
            Some(n) => Some(n),
            None => match c.object("text_config")? {
                Some(t) => t.uint("max_position_embeddings")?,
                None => None,
            },
        },
        None => None,
    };
    let sentence = configs
        .sentence
        .as_ref()
        .map(|c| c.uint("max_seq_length"))
        .transpose()?
        .flatten();
    let tokenizer = match &configs.tokenizer {
        Some(c) => model_max_length(c)?,
        None => None,
    };
    let mut n = match (wanted.map(|w| w as u64), sentence) {
        (Some(w), _) | (None, Some(w)) => w,
        (None, None) => [tokenizer, positions]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(DEFAULT_MAX_LENGTH as u64),
    };
    if let Some(p) = positions {
        n = n.min(p);
    }
    if let Some(f) = fixed_seq {
        n = n.min(f as u64);
    }
    Ok(n.max(1) as usize)
}

/// `model_max_length`, ignoring transformers' "no limit" sentinel (1e30, written as a float).
fn model_max_length(c: &JsonFile) -> Result<Option<u64>> {
    Ok(match c.f64("model_max_length")? {
        Some(x) if x >= 1.0 && x < UNLIMITED as f64 => Some(x as u64),
        _ => None,
    })
}

/// The pad token: `tokenizer_config.json`'s `pad_token` (a string or `{"content": ...}`), else
/// the one in `tokenizer.json`'s padding, else `[PAD]`. Its id comes from the vocabulary (0 if absent).
fn pad_token(tokenizer: &Tokenizer, configs: &Configs) -> Result<String> {
    if let Some(c) = &configs.tokenizer {
        match c.get("pad_token") {
            None => {}
            Some(serde_json::Value::String(s)) => return Ok(s.clone()),
            Some(serde_json::Value::Object(m)) => {
                if let Some(serde_json::Value::String(s)) = m.get("content") {
                    return Ok(s.clone());
                }
                return Err(c.error("pad_token", "expected a string or {\"content\": string}"));
            }
            Some(_) => {
                return Err(c.error("pad_token", "expected a string or {\"content\": string}"))
            }
        }
    }
    Ok(tokenizer
        .get_padding()
        .map_or_else(|| "[PAD]".to_string(), |p| p.pad_token.clone()))
}

/// Truncation at `max_length`, padding to the batch's longest text (or to a fixed model length),
/// whatever `tokenizer.json` itself says: its settings are often leftovers of the export.
fn configure(
    tokenizer: &mut Tokenizer,
    path: &Path,
    configs: &Configs,
    max_length: usize,
    fixed_seq: Option<usize>,
) -> Result<()> {
    let pad_token = pad_token(tokenizer, configs)?;
    let pad_id = tokenizer.token_to_id(&pad_token).unwrap_or(0);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length,
            ..TruncationParams::default()
        }))
        .map_err(|e| EncodeError::tokenizer(path, e.to_string()))?;
    tokenizer.with_padding(Some(PaddingParams {
        strategy: fixed_seq.map_or(PaddingStrategy::BatchLongest, PaddingStrategy::Fixed),
        direction: PaddingDirection::Right,
        pad_to_multiple_of: None,
        pad_id,
        pad_type_id: 0,
        pad_token,
    }));
    Ok(())
}

/// sentence-transformers' `1_Pooling/config.json`: CLS or mean (the default).
fn configured_pooling(configs: &Configs) -> Result<Pooling> {
    match &configs.pooling {
        Some(c) if c.bool_or("pooling_mode_cls_token", false)? => Ok(Pooling::Cls),
        _ => Ok(Pooling::Mean),
    }
}
