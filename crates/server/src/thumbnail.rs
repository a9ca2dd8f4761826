//! `GET /api/v1/collections/{name}/records/{id}/thumbnail`: a record's image, small.
//!
//! The file comes from the record's reserved `_path` payload field, resolved inside the
//! collection's archive root (recorded at ingest, or `--root-map NAME=DIR`) by the same check
//! ingest uses ([`resolve_in_root`]): absolute paths, `..` and symlinks leading out of the root
//! are refused (403). The client never names a file. The picture is decoded as ingest decodes it
//! (DICOM windowed with the recorded window), shrunk to fit [`EDGE`] pixels, sent as JPEG and
//! kept in a byte-bounded LRU cache. A record whose file is gone or unreadable gets a grey
//! placeholder (PNG, header `x-medvec-thumbnail: placeholder`), not an error page.

use crate::api::{blocking, open_collection, ApiError};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use medvec_ingest::archive::{resolve_in_root, RejectReason};
use medvec_ingest::dicom::FRAME_FIELD;
use medvec_ingest::encode::{load_any_image, Decoding, ImageLimits};
use medvec_ingest::models::ModelRecord;
use medvec_ingest::pipeline::PATH_FIELD;
use medvec_store::{Collection, Record, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

/// Longest side of a thumbnail, in pixels.
pub const EDGE: u32 = 256;
const JPEG_QUALITY: u8 = 85;

/// `GET .../records/{id}/thumbnail`.
pub async fn thumbnail(
    State(state): State<Arc<AppState>>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let collection = open_collection(&state, &name)?;
        let record = collection.get(&id)?.ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("no record with id `{id}` in `{name}`"),
            )
        })?;
        let Some(file) = locate(&state, &collection, &record)? else {
            return Ok(placeholder());
        };
        let frame = match record.payload.get(FRAME_FIELD) {
            Some(Value::Int(frame)) => u32::try_from(*frame).ok(),
            _ => None,
        };
        Ok(match state.thumbnails.render(&collection, &file, frame) {
            Some(jpeg) => image_response("image/jpeg", jpeg.to_vec()),
            None => placeholder(),
        })
    })
    .await
}

/// The record's file inside the collection's root; `None` when the record has no `_path`, no
/// root is known, or the file is gone. A path leading out of the root is an error (403).
fn locate(
    state: &AppState,
    collection: &Collection,
    record: &Record,
) -> Result<Option<PathBuf>, ApiError> {
    let Some(Value::String(relative)) = record.payload.get(PATH_FIELD) else {
        return Ok(None);
    };
    let root = match state.root_map.get(&collection.name()) {
        Some(root) => Some(root.clone()),
        None => ModelRecord::archive_root_of(collection)
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
    };
    // A root that moved or was unmounted: every thumbnail is a placeholder.
    let Some(root) = root.and_then(|r| std::fs::canonicalize(r).ok()) else {
        return Ok(None);
    };
    match resolve_in_root(&root, relative) {
        Ok(file) => Ok(Some(file)),
        Err((RejectReason::EscapesRoot, _)) => Err(ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "record `{}`: its `{PATH_FIELD}` leads out of the collection's root; refused",
                record.id
            ),
        )),
        Err(_) => Ok(None),
    }
}

fn image_response(content_type: &'static str, bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
}

/// A plain grey square, made once.
fn placeholder() -> Response {
    static PNG: OnceLock<Vec<u8>> = OnceLock::new();
    let png = PNG.get_or_init(|| {
        let grey = image::RgbImage::from_pixel(EDGE, EDGE, image::Rgb([200, 200, 200]));
        let mut out = std::io::Cursor::new(Vec::new());
        grey.write_to(&mut out, image::ImageFormat::Png)
            .expect("a PNG encodes into memory");
        out.into_inner()
    });
    let mut response = image_response("image/png", png.clone());
    response.headers_mut().insert(
        "x-medvec-thumbnail",
        HeaderValue::from_static("placeholder"),
    );
    response
}

/// What identifies a rendered thumbnail: the file as it is now (a file replaced on disk gets a
/// new entry) and the frame.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    file: PathBuf,
    bytes: u64,
    modified: Option<SystemTime>,
    frame: Option<u32>,
}

/// Rendered thumbnails, least recently used dropped first once over the byte bound.
pub struct ThumbnailCache {
    max_bytes: usize,
    inner: Mutex<Lru>,
}

#[derive(Default)]
struct Lru {
    entries: HashMap<Key, (Arc<[u8]>, u64)>,
    /// Last use (a counter) → key, oldest first.
    order: BTreeMap<u64, Key>,
    clock: u64,
    bytes: usize,
}

impl ThumbnailCache {
    pub fn new(max_bytes: usize) -> ThumbnailCache {
        ThumbnailCache {
            max_bytes,
            inner: Mutex::new(Lru::default()),
        }
    }

    /// The JPEG thumbnail of `file`, from the cache or rendered; `None` when it cannot be read.
    fn render(
        &self,
        collection: &Collection,
        file: &std::path::Path,
        frame: Option<u32>,
    ) -> Option<Arc<[u8]>> {
        let meta = std::fs::metadata(file).ok()?;
        let key = Key {
            file: file.to_path_buf(),
            bytes: meta.len(),
            modified: meta.modified().ok(),
            frame,
        };
        if let Some(hit) = self.lock().get(&key) {
            return Some(hit);
        }
        let jpeg: Arc<[u8]> = render_jpeg(collection, file, frame)?.into();
        self.lock().insert(key, jpeg.clone(), self.max_bytes);
        Some(jpeg)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        // A panic while holding the lock leaves a consistent map (every change is one step).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    fn cached_bytes(&self) -> usize {
        self.lock().bytes
    }
}

impl Lru {
    fn get(&mut self, key: &Key) -> Option<Arc<[u8]>> {
        self.clock += 1;
        let (bytes, used) = self.entries.get_mut(key)?;
        self.order.remove(used);
        *used = self.clock;
        self.order.insert(self.clock, key.clone());
        Some(bytes.clone())
    }

    fn insert(&mut self, key: Key, bytes: Arc<[u8]>, max_bytes: usize) {
        if bytes.len() > max_bytes || self.entries.contains_key(&key) {
            return;
        }
        while self.bytes + bytes.len() > max_bytes {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some((gone, _)) = self.entries.remove(&oldest) {
                self.bytes -= gone.len();
            }
        }
        self.clock += 1;
        self.bytes += bytes.len();
        self.order.insert(self.clock, key.clone());
        self.entries.insert(key, (bytes, self.clock));
    }
}

/// Decodes as ingest did (the image model's recorded DICOM window), shrinks, encodes JPEG.
fn render_jpeg(
    collection: &Collection,
    file: &std::path::Path,
    frame: Option<u32>,
) -> Option<Vec<u8>> {
    let window = recorded_window(collection);
    let limits = ImageLimits::default();
    let how = Decoding {
        limits: &limits,
        draft: None,
        window: &window,
    };
    let image = load_any_image(file, how, frame).ok()?;
    let small = image.thumbnail(EDGE, EDGE).to_rgb8();
    let mut out = std::io::Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode_image(&small)
        .ok()?;
    Some(out.into_inner())
}

/// The DICOM window of the first field whose model record keeps the archive root (the image
/// field `_path` belongs to); the file's own window when none is recorded.
fn recorded_window(collection: &Collection) -> medvec_ingest::dicom::WindowChoice {
    collection
        .schema()
        .vectors
        .iter()
        .filter_map(|f| ModelRecord::load(collection, &f.name).ok().flatten())
        .find(|r| r.archive_root.is_some())
        .map(|r| r.encoder_options(None).dicom_window)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> Key {
        Key {
            file: PathBuf::from(format!("/f{n}")),
            bytes: 0,
            modified: None,
            frame: None,
        }
    }

    #[test]
    fn the_cache_keeps_within_its_bound_and_drops_the_least_recently_used() {
        let cache = ThumbnailCache::new(100);
        let insert = |n: u32, len: usize| cache.lock().insert(key(n), vec![0u8; len].into(), 100);
        insert(1, 40);
        insert(2, 40);
        assert!(cache.lock().get(&key(1)).is_some()); // 1 is now newer than 2
        insert(3, 40);
        assert!(cache.cached_bytes() <= 100);
        assert!(cache.lock().get(&key(2)).is_none(), "the oldest went");
        assert!(cache.lock().get(&key(1)).is_some());
        assert!(cache.lock().get(&key(3)).is_some());
        insert(4, 101); // larger than the whole cache: not kept
        assert!(cache.lock().get(&key(4)).is_none());
        assert_eq!(cache.cached_bytes(), 80);
    }
}
