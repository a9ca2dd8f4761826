//! The JSON API (`/api/v1/...`), documented in `openapi.json` beside this crate (served at
//! `/api/v1/openapi.json`). Each handler opens the store read-only on a blocking thread, so a
//! request sees the writer's latest commit.

use crate::{assets, auth, cors, thumbnail, upload, writes, AppState};
use axum::extract::rejection::JsonRejection;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use medvec_ingest::encode::{Runtime, RuntimeOptions};
use medvec_ingest::models::{self, Modality, QueryEncoder};
use medvec_query::classify::classify_ids;
use medvec_query::jobs::{self, ShiftOptions};
use medvec_query::saved::SavedHead;
use medvec_query::QueryError;
use medvec_store::{
    Collection, FieldType, Filter, Hit, SearchParams, Store, StoreError, Value as Cell,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

const OPENAPI: &str = include_str!("../openapi.json");
/// The largest JSON body (a search vector, a classify list of 10,000 ids); uploads and writes
/// have their own bounds.
const MAX_JSON_BYTES: usize = 1 << 20;
/// The most hits one search returns (a page of cases, not an export).
const MAX_K: usize = 1000;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/app.js", get(assets::script))
        .route("/app.css", get(assets::style))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/collections", get(collections))
        .route("/api/v1/collections/{name}/fields", get(fields))
        .route(
            "/api/v1/collections/{name}/records",
            post(writes::upsert).layer(DefaultBodyLimit::max(writes::MAX_WRITE_BYTES)),
        )
        .route(
            "/api/v1/collections/{name}/records/{id}",
            get(record).delete(writes::delete),
        )
        .route(
            "/api/v1/collections/{name}/records/{id}/thumbnail",
            get(thumbnail::thumbnail),
        )
        .route("/api/v1/collections/{name}/search", post(search))
        .route(
            "/api/v1/collections/{name}/search/upload",
            post(upload::search_upload).layer(DefaultBodyLimit::max(upload::MAX_UPLOAD_BYTES)),
        )
        .route("/api/v1/collections/{name}/heads", get(heads))
        .route(
            "/api/v1/collections/{name}/heads/{head}/classify",
            post(classify),
        )
        .route(
            "/api/v1/collections/{name}/heads/{head}/classify/upload",
            post(upload::classify_upload).layer(DefaultBodyLimit::max(upload::MAX_UPLOAD_BYTES)),
        )
        .layer(DefaultBodyLimit::max(MAX_JSON_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        // Outside the token check: a browser's CORS preflight carries no credentials.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cors::cors,
        ))
        .with_state(state)
}

/// An error as the API returns it: a status and `{"error": message}` (one line, no payload
/// values unless the process runs with `--verbose`).
pub(crate) struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let status = match &error {
            StoreError::NoSuchCollection(_) => StatusCode::NOT_FOUND,
            StoreError::InvalidQuery(_)
            | StoreError::UnknownField(_)
            | StoreError::Filter(_)
            | StoreError::InvalidRecord { .. }
            | StoreError::DuplicateId(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, error.to_string())
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::Store(error) => error.into(),
            QueryError::UnknownId(_) => ApiError(StatusCode::NOT_FOUND, error.to_string()),
            other => ApiError(StatusCode::BAD_REQUEST, other.to_string()),
        }
    }
}

/// A JSON body that could not be read: 413 when over the limit, else 400 with serde's reason.
fn body_error(rejection: JsonRejection) -> ApiError {
    let status = match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError(status, format!("request body: {}", rejection.body_text()))
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

/// Runs store work on a blocking thread.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())))
}

pub(crate) fn open_collection(state: &AppState, name: &str) -> Result<Arc<Collection>, ApiError> {
    Ok(Store::open_read_only(&state.store)?.collection(name)?)
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// `GET /api/v1/collections`: every collection with its counts and schema.
async fn collections(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let store = Store::open_read_only(&state.store)?;
        let list = store
            .list_collections()?
            .iter()
            .map(|name| Ok(jobs::stats_json(&store.collection(name)?.stats())))
            .collect::<Result<Vec<Value>, ApiError>>()?;
        Ok(Json(json!({ "collections": list })))
    })
    .await
}

#[derive(Deserialize)]
struct RecordQuery {
    #[serde(default)]
    vectors: bool,
}

/// `GET /api/v1/collections/{name}/records/{id}[?vectors=true]`: what `medvec get` prints.
async fn record(
    State(state): State<Arc<AppState>>,
    Path((name, id)): Path<(String, String)>,
    Query(query): Query<RecordQuery>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let collection = open_collection(&state, &name)?;
        match collection.get(&id)? {
            Some(record) => Ok(Json(jobs::record_json(&record, query.vectors))),
            None => Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("no record with id `{id}` in `{name}`"),
            )),
        }
    })
    .await
}

/// The body of a search: a stored id (`like`) or a `vector`, and the options of `medvec search`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchRequest {
    pub field: String,
    pub like: Option<String>,
    pub vector: Option<Vec<f32>>,
    /// A clinical description, encoded with the collection's recorded text model.
    pub text: Option<String>,
    #[serde(default = "ten")]
    pub k: usize,
    pub filter: Option<String>,
    pub ef: Option<usize>,
    /// On an SQ8 field, candidates per hit re-scored on the `f32` column.
    pub rescore: Option<usize>,
    #[serde(default)]
    pub exact: bool,
    /// λ of the alignment shift.
    pub shift: Option<f32>,
    /// The field whose kind of vector the query is (default: `field`).
    pub query_modality: Option<String>,
    /// The other field of the aligned pair, for a same-modality search with a shift.
    pub pair: Option<String>,
}

pub(crate) fn ten() -> usize {
    10
}

/// `POST /api/v1/collections/{name}/search`: the same hits and scores as `medvec search`, each
/// with its payload.
async fn search(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Result<Json<SearchRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(request) = body.map_err(body_error)?;
    blocking(move || {
        let collection = open_collection(&state, &name)?;
        let hits = run_search(&collection, &request)?;
        hits_json(&collection, hits)
    })
    .await
}

/// `{"hits": [{"id", "score", "payload"}]}`, each hit with its stored payload.
pub(crate) fn hits_json(collection: &Collection, hits: Vec<Hit>) -> Result<Json<Value>, ApiError> {
    let hits = hits
        .into_iter()
        .map(|hit| {
            let payload = collection
                .get(&hit.id)?
                .map(|r| jobs::record_json(&r, false)["payload"].clone())
                .unwrap_or(Value::Null);
            Ok(json!({"id": hit.id, "score": hit.score, "payload": payload}))
        })
        .collect::<Result<Vec<Value>, ApiError>>()?;
    Ok(Json(json!({ "hits": hits })))
}

/// Distinct values listed per string field; a field with more gets `"values": null`.
const MAX_DISTINCT: usize = 50;

/// `GET /api/v1/collections/{name}/fields`: the payload fields with their types and, for string
/// fields with at most [`MAX_DISTINCT`] distinct values, those values (sorted), so a client can
/// offer a filter. Reserved fields (`_path`) are left out.
async fn fields(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let collection = open_collection(&state, &name)?;
        let schema = collection.schema();
        let public: Vec<_> = schema
            .payload
            .iter()
            .filter(|f| !f.name.starts_with('_'))
            .collect();
        let strings: Vec<&str> = public
            .iter()
            .filter(|f| f.field_type == FieldType::String)
            .map(|f| f.name.as_str())
            .collect();
        let columns = collection.columns(&[], &strings)?;
        let fields: Vec<Value> = public
            .iter()
            .map(|field| {
                let column = columns.payload.iter().find(|(n, _)| n == &field.name);
                let values = column.map_or(Value::Null, |(_, cells)| distinct(cells));
                json!({"name": field.name, "type": field.field_type.name(), "values": values})
            })
            .collect();
        Ok(Json(json!({ "fields": fields })))
    })
    .await
}

/// The sorted distinct strings of a column, or null past [`MAX_DISTINCT`].
fn distinct(cells: &[Cell]) -> Value {
    let mut seen = std::collections::BTreeSet::new();
    for cell in cells {
        if let Cell::String(text) = cell {
            seen.insert(text.as_str());
            if seen.len() > MAX_DISTINCT {
                return Value::Null;
            }
        }
    }
    json!(seen)
}

/// `text` encoded as `field`'s vectors were: with the model `medvec ingest` recorded for it,
/// refused if the model file changed since.
fn encode_text(collection: &Collection, field: &str, text: &str) -> Result<Vec<f32>, ApiError> {
    let runtime = Runtime::load(&RuntimeOptions::default())
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let encoder = QueryEncoder::recorded(&runtime, collection, field, Some(1))
        .map_err(|e| bad_request(e.to_string()))?;
    let mut vectors = encoder
        .encode_texts(&[text.to_string()])
        .map_err(|e| bad_request(e.to_string()))?;
    Ok(vectors.pop().unwrap_or_default())
}

pub(crate) fn run_search(
    collection: &Collection,
    request: &SearchRequest,
) -> Result<Vec<Hit>, ApiError> {
    if request.k == 0 || request.k > MAX_K {
        return Err(bad_request(format!(
            "k must be 1..={MAX_K}, got {}",
            request.k
        )));
    }
    let mut query_field = request
        .query_modality
        .clone()
        .unwrap_or_else(|| request.field.clone());
    let (query, exclude) = match (&request.like, &request.vector, &request.text) {
        (Some(id), None, None) => {
            let record = collection
                .get(id)?
                .ok_or_else(|| bad_request(format!("like: no record with id `{id}`")))?;
            let vector = record.vectors.get(&query_field).cloned().ok_or_else(|| {
                bad_request(format!("like: record `{id}` has no `{query_field}` vector"))
            })?;
            (vector, Some(id.clone()))
        }
        (None, Some(vector), None) => (vector.clone(), None),
        (None, None, Some(text)) => {
            if request.query_modality.is_none() {
                query_field = models::field_for(collection, Modality::Text, &request.field)
                    .map_err(|e| bad_request(e.to_string()))?;
            }
            (encode_text(collection, &query_field, text)?, None)
        }
        _ => {
            return Err(bad_request(
                "give exactly one of `like` (a stored id), `vector` or `text`",
            ))
        }
    };
    let filter = request
        .filter
        .as_deref()
        .map(Filter::parse)
        .transpose()
        .map_err(|e| bad_request(format!("filter: {e}")))?;
    if request.rescore == Some(0) {
        return Err(bad_request("rescore: must be at least 1"));
    }
    // Like `medvec search --like`: one more hit, then the query record itself left out.
    let params = SearchParams {
        k: request.k + usize::from(exclude.is_some()),
        ef: request.ef,
        rescore: request.rescore,
        exact: request.exact,
        filter,
        ..SearchParams::default()
    };
    let shift = ShiftOptions {
        lambda: request.shift.unwrap_or(0.0),
        query_field: &query_field,
        pair: request.pair.as_deref(),
        fit_filter: None,
    };
    let mut hits = jobs::search(collection, &request.field, &[query], params, &shift)?
        .pop()
        .unwrap_or_default();
    hits.retain(|h| Some(&h.id) != exclude.as_ref());
    hits.truncate(request.k);
    Ok(hits)
}

/// `GET /api/v1/collections/{name}/heads`: the saved heads with their metadata, as
/// `medvec heads --json` lists them.
async fn heads(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let collection = open_collection(&state, &name)?;
        let heads = collection
            .list_heads()?
            .into_iter()
            .map(|head| {
                let meta = SavedHead::load_meta(&collection, &head)?;
                Ok(json!({"name": head, "meta": meta}))
            })
            .collect::<Result<Vec<Value>, ApiError>>()?;
        Ok(Json(json!({ "heads": heads })))
    })
    .await
}

/// The most records one classify request takes.
const MAX_CLASSIFY: usize = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassifyRequest {
    ids: Vec<String>,
}

/// `POST /api/v1/collections/{name}/heads/{head}/classify` with `{"ids": [...]}`: each stored
/// record's prediction, as `medvec classify` writes it (JSON lines shape).
async fn classify(
    State(state): State<Arc<AppState>>,
    Path((name, head)): Path<(String, String)>,
    body: Result<Json<ClassifyRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(request) = body.map_err(body_error)?;
    if request.ids.is_empty() || request.ids.len() > MAX_CLASSIFY {
        return Err(bad_request(format!(
            "ids: give 1..={MAX_CLASSIFY} stored ids, got {}",
            request.ids.len()
        )));
    }
    blocking(move || {
        let collection = open_collection(&state, &name)?;
        let saved = SavedHead::load(&collection, &head)?;
        let predictions = classify_ids(&collection, &saved, &request.ids)?;
        let meta = &saved.meta;
        let predictions: Vec<Value> = predictions
            .iter()
            .map(|p| jobs::prediction_json(p, &meta.classes))
            .collect();
        Ok(Json(json!({ "predictions": predictions })))
    })
    .await
}
