//! The access token, and the middleware that checks it and adds the security headers.

use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use subtle::ConstantTimeEq;

const COOKIE: &str = "medvec_token";
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// 32 random bytes from the OS, as hex.
pub fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Where a request may carry the token, in order: `Authorization: Bearer`, the cookie, `?token=`.
fn presented(headers: &HeaderMap, query: Option<&str>) -> (Option<String>, bool) {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            pair.trim()
                .strip_prefix("medvec_token=")
                .map(str::to_string)
        });
    let from_query = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("token=").map(str::to_string));
    let via_query = bearer.is_none() && cookie.is_none() && from_query.is_some();
    (bearer.or(cookie).or(from_query), via_query)
}

/// Refuses requests without the token (401, JSON), sets the cookie after a `?token=` visit, adds
/// the security headers to every response, and logs the request without its query or body.
pub async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let (token, via_query) = presented(request.headers(), request.uri().query());
    let valid = token.is_some_and(|t| bool::from(t.as_bytes().ct_eq(state.token.as_bytes())));
    let mut response = if valid {
        run_bounded(state.request_timeout, request, next).await
    } else {
        let body = serde_json::json!({"error": "missing or wrong token: use the URL printed at start, or `Authorization: Bearer TOKEN`"});
        (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if valid && via_query {
        let secure = if state.secure { "; Secure" } else { "" };
        let cookie = format!(
            "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/{secure}",
            state.token
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.insert(header::SET_COOKIE, value);
        }
    }
    eprintln!(
        "{method} {path} {} {:.1} ms",
        response.status().as_u16(),
        started.elapsed().as_secs_f64() * 1e3
    );
    response
}

/// Runs the request, answering 503 if it is not done within `limit` (a stuck disk, a huge
/// exact search): the client hears back, and the connection is freed.
async fn run_bounded(limit: std::time::Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let error = format!(
                "the request took longer than {:.3} s (--request-timeout)",
                limit.as_secs_f64()
            );
            let body = serde_json::json!({ "error": error });
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_found_in_each_place_and_only_the_query_sets_a_cookie() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            presented(&headers, Some("a=1&token=abc")),
            (Some("abc".into()), true)
        );
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("x=1; medvec_token=def"),
        );
        assert_eq!(
            presented(&headers, Some("token=abc")),
            (Some("def".into()), false)
        );
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer ghi"),
        );
        assert_eq!(presented(&headers, None), (Some("ghi".into()), false));
        assert_eq!(presented(&HeaderMap::new(), None), (None, false));
        let token = new_token().unwrap();
        assert_eq!(token.len(), 64);
        assert_ne!(token, new_token().unwrap());
    }
}
