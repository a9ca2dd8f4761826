//! The image encoder: files -> [`load_image_draft`](super::load_image_draft) -> [`ImagePreprocessor`] -> ONNX -> pooled,
//! normalised vectors.

use super::any_image::{decode_any_image, load_any_image, Decoding};
use super::error::{EncodeError, Result};
use super::model::{self, EncoderOptions, OnnxModel, Pooling, Port};
use super::preprocess::ImagePreprocessor;
use super::runtime::Runtime;
use ort::value::{DynValue, Tensor, TensorElementType};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Outputs tried, in order, when [`EncoderOptions::output_name`] is not set.
const IMAGE_OUTPUTS: &[&str] = &[
    "image_embeds",
    "pooler_output",
    "sentence_embedding",
    "embeddings",
    "last_hidden_state",
];

/// An ONNX image encoder (CLIP vision tower, DINOv2, ViT, ...) with its preprocessing.
///
/// ```
/// use medvec_ingest::encode::{EncoderOptions, ImageEncoder, Runtime, RuntimeOptions};
/// # let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
/// let runtime = Runtime::load(&RuntimeOptions::default())?;
/// let encoder = ImageEncoder::open(&runtime, &root.join("fixtures/models/tiny-image"), &EncoderOptions::default())?;
/// let vectors = encoder.encode_files(&[root.join("fixtures/images/rgb_80x60.jpg")])?;
/// assert_eq!(vectors[0].len(), encoder.dim());
/// # Ok::<(), medvec_ingest::encode::EncodeError>(())
/// ```
pub struct ImageEncoder {
    model: OnnxModel,
    pre: ImagePreprocessor,
    input: String,
    /// Other inputs of a combined CLIP graph, fed a minimal dummy.
    extras: Vec<Port>,
    output: String,
    pooling: Pooling,
    /// (width, height) of the model's input.
    size: (u32, u32),
    dim: usize,
    /// Rows per run; a model with a fixed batch size gets exactly that many (zero-padded).
    rows_per_run: usize,
    fixed_batch: bool,
    options: EncoderOptions,
    /// The model folder it was opened from.
    dir: PathBuf,
}

impl std::fmt::Debug for ImageEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageEncoder")
            .field("model", &self.model.path)
            .field("input", &self.input)
            .field("output", &self.output)
            .field("pooling", &self.pooling)
            .field("dim", &self.dim)
            .finish()
    }
}

impl ImageEncoder {
    /// Opens a model folder: `vision_model.onnx` or `model.onnx` (in the folder or `onnx/`) and
    /// `preprocessor_config.json`. The config is checked before the model is loaded, so a
    /// malformed one fails fast with an error naming the file and key.
    pub fn open(runtime: &Runtime, dir: &Path, options: &EncoderOptions) -> Result<ImageEncoder> {
        let file = model::find_model_file(
            dir,
            &["vision_model.onnx", "model.onnx"],
            options.model_file.as_deref(),
        )?;
        let config = model::find_config(dir, "preprocessor_config.json").ok_or_else(|| {
            EncodeError::model(dir, "no preprocessor_config.json in the model folder")
        })?;
        let pre = ImagePreprocessor::from_file(&config)?;
        let size = pre.fixed_size().ok_or_else(|| {
            EncodeError::config(
                &config,
                "crop_size",
                "images would come out in different sizes: set do_center_crop with crop_size, or size.height and size.width",
            )
        })?;
        let model = OnnxModel::open(runtime, &file, options.intra_threads)?;
        let input = pixel_input(&model, options.input_name.as_deref(), size)?;
        let extras = model::dummy_inputs(&model, &[input.name.as_str()])?;
        let output =
            model::pick_output(&model, options.output_name.as_deref(), IMAGE_OUTPUTS)?.clone();
        let pooling = model::pick_pooling(&model, &output, options.pooling, Pooling::Cls)?;
        let (rows_per_run, fixed_batch) = model::rows_per_run(&input, options.batch_size);
        let mut encoder = ImageEncoder {
            input: input.name,
            output: output.name.clone(),
            model,
            pre,
            extras,
            pooling,
            size,
            dim: 0,
            rows_per_run,
            fixed_batch,
            options: options.clone(),
            dir: dir.to_path_buf(),
        };
        encoder.dim = match output.shape.last().copied().filter(|&d| d > 0) {
            Some(d) => d as usize,
            None => encoder.probe_dim()?,
        };
        Ok(encoder)
    }

    /// Length of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// `(width, height)` the model sees.
    pub fn input_size(&self) -> (u32, u32) {
        self.size
    }

    /// The `.onnx` file in use.
    pub fn model_path(&self) -> &Path {
        &self.model.path
    }

    /// The model folder it was opened from.
    pub fn model_dir(&self) -> &Path {
        &self.dir
    }

    /// The options that reopen exactly this encoder: the resolved `.onnx` file, input, output
    /// and pooling made explicit (recorded with a collection, see [`crate::models`]).
    pub fn effective_options(&self) -> EncoderOptions {
        EncoderOptions {
            model_file: Some(self.model.path.clone()),
            input_name: Some(self.input.clone()),
            output_name: Some(self.output.clone()),
            pooling: Some(self.pooling),
            ..self.options.clone()
        }
    }

    /// The preprocessing (`preprocessor_config.json`).
    pub fn preprocessor(&self) -> &ImagePreprocessor {
        &self.pre
    }

    /// The Pillow `draft` size JPEG files are decoded for, when
    /// [`EncoderOptions::jpeg_draft`] is set (see [`ImagePreprocessor::draft_request`]).
    pub fn draft_request(&self) -> Option<(u32, u32)> {
        self.options
            .jpeg_draft
            .then(|| self.pre.draft_request())
            .flatten()
    }

    /// Reads an image file as this encoder's [`encode_files`](Self::encode_files) does: with
    /// the options' limits, and at the draft scale when `jpeg_draft` is set. A DICOM file gives
    /// its middle frame, windowed as the options' `dicom_window` says.
    pub fn load(&self, path: &Path) -> Result<image::DynamicImage> {
        load_any_image(path, self.decoding(), None)
    }

    /// The vector of an image file's bytes held in memory (an upload), decoded as
    /// [`load`](Self::load) decodes a file; `name` labels the bytes in errors.
    pub fn encode_bytes(&self, name: &Path, bytes: &[u8]) -> Result<Vec<f32>> {
        let image = decode_any_image(name, bytes, self.decoding())?;
        let pixels = self.pre.preprocess(&image)?;
        let mut vectors = self.encode(&[pixels])?;
        Ok(vectors.pop().unwrap_or_default())
    }

    fn decoding(&self) -> Decoding<'_> {
        Decoding {
            limits: &self.options.limits,
            draft: self.draft_request(),
            window: &self.options.dicom_window,
        }
    }

    /// How this encoder turns DICOM greyscale frames into 8 bits.
    pub fn dicom_window(&self) -> crate::dicom::WindowChoice {
        self.options.dicom_window
    }

    /// One image to the model's input: a CHW float32 tensor of `3 * height * width` values.
    pub fn preprocess(&self, image: &image::DynamicImage) -> Result<Vec<f32>> {
        self.pre.preprocess(image)
    }

    /// Encodes preprocessed images (from [`preprocess`](Self::preprocess)), in order.
    pub fn encode(&self, batch: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        let want = 3 * self.size.0 as usize * self.size.1 as usize;
        if let Some(i) = batch.iter().position(|x| x.len() != want) {
            return Err(EncodeError::input(
                &self.model.path,
                format!(
                    "item {i} of the batch has {} values, expected 3x{}x{} = {want}",
                    batch[i].len(),
                    self.size.1,
                    self.size.0
                ),
            ));
        }
        let mut out = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(self.rows_per_run) {
            out.extend(self.run(chunk)?);
        }
        Ok(out)
    }

    /// Reads, preprocesses (in parallel) and encodes image files, in order. The first file that
    /// cannot be read stops the call with an error naming it.
    pub fn encode_files(&self, paths: &[PathBuf]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(paths.len());
        for chunk in paths.chunks(self.rows_per_run.max(self.options.batch_size)) {
            let pixels: Vec<Vec<f32>> = chunk
                .par_iter()
                .map(|p| self.load(p).and_then(|img| self.pre.preprocess(&img)))
                .collect::<Result<_>>()?;
            out.extend(self.encode(&pixels)?);
        }
        Ok(out)
    }

    fn run(&self, chunk: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        let rows = if self.fixed_batch {
            self.rows_per_run
        } else {
            chunk.len()
        };
        let (w, h) = (self.size.0 as usize, self.size.1 as usize);
        let mut data = Vec::with_capacity(rows * 3 * w * h);
        for item in chunk {
            data.extend_from_slice(item);
        }
        data.resize(rows * 3 * w * h, 0.0); // zero rows fill a fixed batch
        let tensor = Tensor::from_array((vec![rows, 3, h, w], data))
            .map_err(|e| EncodeError::inference(&self.model.path, e.to_string()))?;
        let mut inputs: Vec<(String, DynValue)> = vec![(self.input.clone(), tensor.into_dyn())];
        for port in &self.extras {
            inputs.push((
                port.name.clone(),
                model::dummy_value(&self.model.path, port)?,
            ));
        }
        let (shape, values) = self.model.run(inputs, &self.output)?;
        let mut vectors = model::pool(&self.model.path, &shape, &values, self.pooling, None)?;
        model::check_rows(&self.model.path, &vectors, chunk.len())?;
        vectors.truncate(chunk.len());
        if self.options.normalize {
            vectors.iter_mut().for_each(|v| model::l2_normalize(v));
        }
        model::check_finite(&self.model.path, &vectors)?;
        Ok(vectors)
    }

    /// The output length of a model that does not declare it: run one black image.
    fn probe_dim(&self) -> Result<usize> {
        let zeros = vec![0f32; 3 * self.size.0 as usize * self.size.1 as usize];
        let v = self.run(&[zeros])?;
        Ok(v.first().map_or(0, Vec::len))
    }
}

/// The pixel input: `wanted`, else `pixel_values`, else the only float input; it must be a
/// float32 `[batch, 3, height, width]` tensor agreeing with the preprocessor's size where fixed.
fn pixel_input(model: &OnnxModel, wanted: Option<&str>, size: (u32, u32)) -> Result<Port> {
    let floats: Vec<&Port> = model
        .inputs
        .iter()
        .filter(|p| p.element == Some(TensorElementType::Float32))
        .collect();
    let port = match wanted {
        Some(name) => model.input(name),
        None => model.input("pixel_values").or(match floats.as_slice() {
            [only] => Some(*only),
            _ => None,
        }),
    };
    let port = port.ok_or_else(|| {
        EncodeError::model(
            &model.path,
            format!(
                "cannot tell which input takes the pixels; set EncoderOptions::input_name. Inputs: {}",
                model.describe_inputs()
            ),
        )
    })?;
    let (w, h) = (size.0 as usize, size.1 as usize);
    let fits = |i: usize, want: usize| port.fixed(i).is_none_or(|d| d == want);
    if port.element != Some(TensorElementType::Float32)
        || port.shape.len() != 4
        || !fits(1, 3)
        || !fits(2, h)
        || !fits(3, w)
    {
        return Err(EncodeError::model(
            &model.path,
            format!(
                "input `{}` is {:?} {:?}, but the preprocessor gives float32 [batch, 3, {h}, {w}]",
                port.name, port.element, port.shape
            ),
        ));
    }
    Ok(port.clone())
}
