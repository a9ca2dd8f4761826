//! `POST /api/v1/collections/{name}/search/upload`: search with a photo or DICOM file sent as
//! the raw request body. The bytes are decoded and encoded in memory, never written to disk,
//! through the ingest path ([`QueryEncoder::encode_image_bytes`]) with its pixel limit and
//! decoder hardening; the body is capped at [`MAX_UPLOAD_BYTES`] (413 above). The search options
//! are the query string (`field`, `k`, `filter`, `exact`, `ef`, `shift`, `query_modality`,
//! `pair`), so the body is the file alone.

use crate::api::{blocking, hits_json, open_collection, run_search, ApiError, SearchRequest};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use medvec_ingest::encode::{Runtime, RuntimeOptions};
use medvec_ingest::models::{self, Modality, ModelRecordError, QueryEncoder};
use medvec_store::Collection;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// The largest upload: a camera photo or a single DICOM image, not a series.
pub const MAX_UPLOAD_BYTES: usize = 32 << 20;

/// The query string of an upload search: the options of a JSON search, without the query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    #[serde(default = "image")]
    field: String,
    #[serde(default = "crate::api::ten")]
    k: usize,
    filter: Option<String>,
    ef: Option<usize>,
    #[serde(default)]
    exact: bool,
    shift: Option<f32>,
    query_modality: Option<String>,
    pair: Option<String>,
    /// Accepted and ignored: the page's URLs may carry the token.
    #[allow(dead_code)]
    token: Option<String>,
}

fn image() -> String {
    "image".into()
}

/// `POST .../search/upload?field=image&k=10`: the same hits as `medvec search --image FILE`.
pub async fn search_upload(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    params: Result<Query<UploadParams>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = params.map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("query string: {}", e.body_text()),
        )
    })?;
    // Over the limit this is 413 Payload Too Large, with axum's one-line reason.
    let bytes = body.map_err(|e| ApiError(e.status(), format!("upload: {}", e.body_text())))?;
    if bytes.is_empty() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "upload: the body is empty; send the image file as the request body".into(),
        ));
    }
    blocking(move || {
        let collection = open_collection(&state, &name)?;
        let query_field = match &params.query_modality {
            Some(field) => field.clone(),
            None => models::field_for(&collection, Modality::Image, &params.field)
                .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?,
        };
        let vector = encode_upload(&collection, &query_field, &bytes)?;
        let request = SearchRequest {
            field: params.field,
            like: None,
            vector: Some(vector),
            text: None,
            k: params.k,
            filter: params.filter,
            ef: params.ef,
            exact: params.exact,
            shift: params.shift,
            query_modality: Some(query_field),
            pair: params.pair,
        };
        let hits = run_search(&collection, &request)?;
        hits_json(&collection, hits)
    })
    .await
}

/// The upload's vector, made by the model ingest recorded for `field` (refused if its file
/// changed). A file the decoder refuses (not an image, a bomb, truncated) is a 422.
fn encode_upload(collection: &Collection, field: &str, bytes: &[u8]) -> Result<Vec<f32>, ApiError> {
    let runtime = Runtime::load(&RuntimeOptions::default())
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let encoder = QueryEncoder::recorded(&runtime, collection, field, Some(1))
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    encoder
        .encode_image_bytes(std::path::Path::new("upload"), bytes)
        .map_err(|e| match e {
            ModelRecordError::Encode(e) => {
                ApiError(StatusCode::UNPROCESSABLE_ENTITY, one_line(&e.to_string()))
            }
            other => ApiError(StatusCode::BAD_REQUEST, other.to_string()),
        })
}

fn one_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}
