//! # medvec-server
//!
//! `medvec serve`: a local HTTP API over a medvec store, for pipelines in other languages, and
//! the case viewer page (`static/`) over it. It reads the store as any reader does, opening it afresh per request
//! (a few milliseconds: nothing is read whole at open), so records a CLI writer commits appear
//! without a restart.
//!
//! It runs next to patient data, so: it binds to loopback unless told otherwise (and then
//! refuses plain HTTP without `insecure_http`); every request needs the random token printed
//! at start (`Authorization: Bearer`, a cookie set by the first `?token=` visit, or `?token=`),
//! compared in constant time; responses carry a strict Content-Security-Policy,
//! `X-Content-Type-Options: nosniff` and `Cache-Control: no-store`; no CORS; the access log
//! shows method, path (without its query), status and time, never payload values or query text.

mod api;
mod assets;
mod auth;
mod cors;
mod thumbnail;
mod tls;
mod upload;
mod writes;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;

/// What can stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("--bind {0}: a non-loopback address exposes patient data to the network; pass --tls-cert and --tls-key to serve HTTPS, or --insecure-http to accept plain HTTP on a trusted network")]
    NotLoopback(IpAddr),
    #[error("{}: TLS: {detail}", .path.display())]
    Tls { path: PathBuf, detail: String },
    #[error("--root-map {collection}={}: {source}", .dir.display())]
    RootMap {
        collection: String,
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("{addr}: cannot listen: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Runtime(std::io::Error),
    #[error("--cors {0}: not a valid origin (like https://viewer.example.org)")]
    BadOrigin(String),
    #[error(transparent)]
    Store(#[from] medvec_store::StoreError),
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub store: PathBuf,
    pub bind: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// Allow a non-loopback `bind` over plain HTTP.
    pub insecure_http: bool,
    /// Archive roots overriding the ones recorded at ingest, by collection (the files moved).
    pub root_map: HashMap<String, PathBuf>,
    /// Accept upserts and deletes (otherwise 403).
    pub allow_writes: bool,
    /// The one origin allowed to call the API from a browser (CORS); none: no CORS headers.
    pub cors: Option<String>,
    /// A request still unanswered after this gets 503.
    pub request_timeout: Duration,
    /// Serve HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<TlsFiles>,
}

/// `--tls-cert` and `--tls-key`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Shared by every request.
pub(crate) struct AppState {
    pub store: PathBuf,
    pub token: String,
    pub root_map: HashMap<String, PathBuf>,
    pub thumbnails: thumbnail::ThumbnailCache,
    pub allow_writes: bool,
    pub cors: Option<HeaderValue>,
    pub request_timeout: Duration,
    /// HTTPS: the token cookie gets `Secure`.
    pub secure: bool,
}

/// The `--root-map` folders, canonical; a folder that does not exist is an error now rather
/// than placeholders later.
fn resolve_root_map(
    map: HashMap<String, PathBuf>,
) -> Result<HashMap<String, PathBuf>, ServerError> {
    map.into_iter()
        .map(|(collection, dir)| match std::fs::canonicalize(&dir) {
            Ok(real) if real.is_dir() => Ok((collection, real)),
            Ok(_) => Err(ServerError::RootMap {
                collection,
                dir,
                source: std::io::Error::other("not a folder"),
            }),
            Err(source) => Err(ServerError::RootMap {
                collection,
                dir,
                source,
            }),
        })
        .collect()
}

/// Bytes of rendered thumbnails kept in memory (a few thousand at ~15 KB each).
const THUMBNAIL_CACHE_BYTES: usize = 64 << 20;

/// Binds, calls `ready` with the base URL (`http://127.0.0.1:8765`, or `https://...`) and the
/// token (the CLI prints the start-up line), then serves until the process ends.
pub fn serve(options: ServeOptions, ready: impl FnOnce(&str, &str)) -> Result<(), ServerError> {
    if !options.bind.is_loopback() && !options.insecure_http && options.tls.is_none() {
        return Err(ServerError::NotLoopback(options.bind));
    }
    let tls = options
        .tls
        .as_ref()
        .map(|files| tls::config(&files.cert, &files.key))
        .transpose()?;
    // Open once up front so a wrong path fails now, with the store's own message.
    medvec_store::Store::open_read_only(&options.store)?;
    let root_map = resolve_root_map(options.root_map)?;
    let addr = SocketAddr::new(options.bind, options.port);
    let listener = TcpListener::bind(addr).map_err(|source| ServerError::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(ServerError::Runtime)?;
    let local = listener.local_addr().map_err(ServerError::Runtime)?;
    let state = Arc::new(AppState {
        store: options.store,
        token: auth::new_token().map_err(ServerError::Runtime)?,
        root_map,
        thumbnails: thumbnail::ThumbnailCache::new(THUMBNAIL_CACHE_BYTES),
        allow_writes: options.allow_writes,
        cors: options.cors.map(|o| cors::origin(&o)).transpose()?,
        request_timeout: options.request_timeout,
        secure: tls.is_some(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .enable_time()
        .build()
        .map_err(ServerError::Runtime)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    ready(&format!("{scheme}://{local}"), &state.token);
    runtime
        .block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            match tls {
                Some(config) => {
                    let listener = tls::TlsListener::new(listener, config)?;
                    axum::serve(listener, api::router(state)).await
                }
                None => axum::serve(listener, api::router(state)).await,
            }
        })
        .map_err(ServerError::Runtime)
}
