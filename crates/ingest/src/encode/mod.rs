//! ONNX image and text encoders (issue 3): turn image files and clinical text into the vectors
//! medvec stores, on CPUs, with the numbers a Python notebook would get.
//!
//! - [`Runtime`] loads ONNX Runtime from a shared library (`ORT_DYLIB_PATH`, or the copy that
//!   `tools/setup.sh` fetches from the `onnxruntime` wheel into `third_party/onnxruntime/`).
//! - [`ImageEncoder`] and [`TextEncoder`] open Hugging Face / Optimum model folders
//!   (`model.onnx`, `onnx/model.onnx`, or CLIP's `vision_model.onnx` + `text_model.onnx`; with
//!   `preprocessor_config.json` or `tokenizer.json` and the usual configs).
//! - [`load_image`] reads any common image format with its EXIF orientation, refusing hostile
//!   files with an error naming them ([`load_image_draft`] optionally decodes JPEGs at a reduced
//!   DCT scale, like Pillow's `Image.draft`); [`ImagePreprocessor`] reproduces `CLIPImageProcessor`
//!   (Pillow's resampling filters included) so preprocessing matches Python pixel for pixel.
//! - Vectors are pooled (CLS, attention-masked mean, or the model's own pooled output) and
//!   L2-normalised.
//!
//! Parity with Python (Pillow + numpy + onnxruntime + tokenizers, `tools/reference_encode.py`)
//! is tested in `crates/ingest/tests/encode_parity.rs`.
//!
//! ```
//! use medvec_ingest::encode::{EncoderOptions, ImageEncoder, Runtime, RuntimeOptions, TextEncoder};
//! let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
//! let runtime = Runtime::load(&RuntimeOptions::default())?;
//! let clip = root.join("fixtures/models/tiny-clip");
//! let images = ImageEncoder::open(&runtime, &clip, &EncoderOptions::default())?;
//! let texts = TextEncoder::open(&runtime, &clip, &EncoderOptions::default())?;
//! let v = images.encode_files(&[root.join("fixtures/images/rgb_100x75.png")])?;
//! let t = texts.encode(&["Patient diagnosed via histo. Age: 45 years. Sex: female. Localization: back.".into()])?;
//! assert_eq!((v[0].len(), t[0].len()), (32, 32));
//! let norm: f32 = v[0].iter().map(|x| x * x).sum();
//! assert!((norm - 1.0).abs() < 1e-5);
//! # Ok::<(), medvec_ingest::encode::EncodeError>(())
//! ```

mod any_image;
mod config;
mod error;
mod image_io;
mod jpeg_draft;
mod model;
mod preprocess;
mod resize;
mod runtime;
mod text;
mod vision;

pub use any_image::{decode_any_image, is_dicom_bytes, load_any_image, Decoding};
pub use error::{EncodeError, Result};
pub use image_io::{decode_image_bytes, load_image, load_image_draft, ImageLimits};
pub use jpeg_draft::draft_scale;
pub use model::{EncoderOptions, Pooling};
pub use preprocess::ImagePreprocessor;
pub use resize::ResizeFilter;
pub use runtime::{find_library, Runtime, RuntimeOptions};
pub use text::{TextEncoder, Tokenized};
pub use vision::ImageEncoder;

#[cfg(test)]
mod tests {
    use super::*;

    /// Encoders are shared across threads (ingest workers); the session mutex makes that safe.
    #[test]
    fn encoders_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Runtime>();
        check::<ImageEncoder>();
        check::<TextEncoder>();
        check::<ImagePreprocessor>();
        check::<EncodeError>();
    }
}
