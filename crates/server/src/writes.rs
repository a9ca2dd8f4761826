//! Writes, only with `--allow-writes` (403 otherwise): `POST .../records` upserts the JSONL body
//! (one record a line, as `medvec import --jsonl` reads it), `DELETE .../records/{id}` deletes one
//! record. Each request opens the store as its writer for that request only, so it waits for no
//! one: while a CLI writer holds the store, a write is refused with 409.

use crate::api::{blocking, ApiError};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use medvec_store::{Collection, Store, StoreError};
use serde_json::{json, Value};
use std::sync::Arc;

/// The largest upsert body.
pub const MAX_WRITE_BYTES: usize = 16 << 20;

fn check_allowed(state: &AppState) -> Result<(), ApiError> {
    if state.allow_writes {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::FORBIDDEN,
            "writes are off: start `medvec serve` with --allow-writes".into(),
        ))
    }
}

/// The collection, opened by this request as the store's writer.
fn open_for_writing(state: &AppState, name: &str) -> Result<Arc<Collection>, ApiError> {
    let store = Store::open(&state.store).map_err(|e| match e {
        StoreError::Locked { .. } => ApiError(StatusCode::CONFLICT, e.to_string()),
        other => other.into(),
    })?;
    Ok(store.collection(name)?)
}

/// `POST /api/v1/collections/{name}/records` with JSONL: `{"upserted": n}`.
pub async fn upsert(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    check_allowed(&state)?;
    let bytes = body.map_err(|e| ApiError(e.status(), format!("records: {}", e.body_text())))?;
    blocking(move || {
        let collection = open_for_writing(&state, &name)?;
        let label = std::path::Path::new("request body");
        let records = medvec_ingest::import::jsonl_records(label, &bytes, &collection.schema())
            .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
        if records.is_empty() {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "records: the body has no records; send JSONL, one record a line".into(),
            ));
        }
        collection.upsert(&records)?;
        Ok(Json(json!({ "upserted": records.len() })))
    })
    .await
}

/// `DELETE /api/v1/collections/{name}/records/{id}`: `{"deleted": 1}`, or 404.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    check_allowed(&state)?;
    blocking(move || {
        let collection = open_for_writing(&state, &name)?;
        match collection.delete(std::slice::from_ref(&id))? {
            0 => Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("no record with id `{id}` in `{name}`"),
            )),
            deleted => Ok(Json(json!({ "deleted": deleted }))),
        }
    })
    .await
}
