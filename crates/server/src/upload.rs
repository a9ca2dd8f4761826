//! `POST /api/v1/collections/{name}/search/upload`: search with a photo or DICOM file sent as
//! the raw request body. The bytes are decoded and encoded in memory, never written to disk,
//! through the ingest path ([`QueryEncoder::encode_image_bytes`]) with its pixel limit and
//! decoder hardening; the body is capped at [`MAX_UPLOAD_BYTES`] (413 above). The search options
//! are the query string (`field`, `k`, `filter`, `exact`, `ef`, `shift`, `query_modality`,
//! `pair`), so the body is the file alone.
//!
//! `POST /api/v1/collections/{name}/heads/{head}/classify/upload` classifies an uploaded photo
//! or DICOM file with a saved head whose fields all hold images (a single-field image head, or
//! several image models): each field's recorded model encodes the upload, then the head runs as
//! `medvec classify --head HEAD --image FILE` does.

use crate::api::{blocking, hits_json, open_collection, run_search, ApiError, SearchRequest};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use medvec_ingest::encode::{Runtime, RuntimeOptions};
use medvec_ingest::models::{self, Modality, ModelRecordError, QueryEncoder};
use medvec_query::classify::classify_vectors;
use medvec_query::jobs;
use medvec_query::saved::SavedHead;
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
    rescore: Option<usize>,
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
    let bytes = upload_bytes(body)?;
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
            rescore: params.rescore,
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

/// The upload as the request body, refused with the reason when it is over the limit or empty.
fn upload_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    // Over the limit this is 413 Payload Too Large, with axum's one-line reason.
    let bytes = body.map_err(|e| ApiError(e.status(), format!("upload: {}", e.body_text())))?;
    if bytes.is_empty() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "upload: the body is empty; send the image file as the request body".into(),
        ));
    }
    Ok(bytes)
}

/// `POST .../heads/{head}/classify/upload`: the head's prediction for the uploaded image, as
/// `{"predictions": [...]}` with one row named `upload`. A head that reads a field without a
/// recorded image model (a text field, or imported vectors) is refused with 422 naming it.
pub async fn classify_upload(
    State(state): State<Arc<AppState>>,
    Path((name, head)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let bytes = upload_bytes(body)?;
    blocking(move || {
        let collection = open_collection(&state, &name)?;
        let saved = SavedHead::load(&collection, &head)?;
        let mut columns = Vec::new();
        for field in &saved.meta.fields.fields {
            if !is_image_field(&collection, field)? {
                return Err(ApiError(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!(
                        "head `{head}` also reads `{field}`, which holds no recorded image model: \
                         an upload can only be classified by a head of image fields"
                    ),
                ));
            }
            columns.push(vec![encode_upload(&collection, field, &bytes)?]);
        }
        let predictions = classify_vectors(&saved, &["upload".to_string()], &columns)?;
        let rows: Vec<Value> = predictions
            .iter()
            .map(|p| jobs::prediction_json(p, &saved.meta.classes))
            .collect();
        Ok(Json(serde_json::json!({ "predictions": rows })))
    })
    .await
}

/// Whether ingest recorded an image model for `field`.
fn is_image_field(collection: &Collection, field: &str) -> Result<bool, ApiError> {
    let record = models::ModelRecord::load(collection, field)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(record.is_some_and(|r| r.modality == Modality::Image))
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
