//! CORS, only with `--cors ORIGIN`: that one origin may call the API from a browser page of its
//! own (with the token, as a bearer header). Without the flag no CORS header is ever sent, so
//! browsers keep other sites' pages from reading the API.

use crate::{AppState, ServerError};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// `--cors`'s value as a header value: `scheme://host[:port]`, nothing after it.
pub fn origin(text: &str) -> Result<HeaderValue, ServerError> {
    let bad = || ServerError::BadOrigin(text.to_string());
    let (scheme, rest) = text.split_once("://").ok_or_else(bad)?;
    let plausible = matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', '*', ' ']);
    if !plausible {
        return Err(bad());
    }
    HeaderValue::from_str(text).map_err(|_| bad())
}

/// Answers the allowed origin's preflight, and marks responses to it as readable by it.
pub async fn cors(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let Some(allowed) = &state.cors else {
        return next.run(request).await;
    };
    let from_allowed = request.headers().get(header::ORIGIN) == Some(allowed);
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if from_allowed && preflight {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        response
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if from_allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed.clone());
    }
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_origin_is_a_scheme_and_a_host_only() {
        for good in ["https://viewer.example.org", "http://127.0.0.1:3000"] {
            assert!(super::origin(good).is_ok(), "{good}");
        }
        for bad in [
            "*",
            "viewer.example.org",
            "https://a/b",
            "ftp://a",
            "https://",
            "null",
        ] {
            assert!(super::origin(bad).is_err(), "{bad}");
        }
    }
}
