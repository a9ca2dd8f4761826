//! The case viewer's page: plain HTML, CSS and JavaScript compiled into the binary (no build
//! chain, nothing fetched from elsewhere). The script and style are files of their own, so the
//! strict Content-Security-Policy (`script-src 'self'`, no inline code) holds.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

const INDEX: &str = include_str!("../static/index.html");
const SCRIPT: &str = include_str!("../static/app.js");
const STYLE: &str = include_str!("../static/app.css");

pub async fn index() -> Html<&'static str> {
    Html(INDEX)
}

pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

pub async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}
