//! The API's reference page, `GET /api/docs`: Redoc rendering `/api/v1/openapi.json`.
//! Redoc (npm `redoc` 2.5.4, MIT) is vendored in `host/assets/redoc/` and compiled in, so
//! the page loads nothing from another origin; its Content-Security-Policy allows only this
//! origin, plus what Redoc itself needs: inline styles (it injects its CSS as `<style>`
//! elements) and a `blob:` worker (its search index runs in a worker made from a blob).

use axum::response::{IntoResponse, Response};

/// Redoc's standalone bundle.
const REDOC_JS: &str = include_str!("../../assets/redoc/redoc.standalone.js");

/// The page: Redoc, pointed at the document.
const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wasmhook API reference</title>
</head>
<body>
<redoc spec-url="/api/v1/openapi.json"></redoc>
<script src="/api/docs/redoc.standalone.js"></script>
</body>
</html>
"#;

/// The page's and the script's policy: this origin only, inline styles and a blob worker
/// for Redoc, no frames, forms or plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
    connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// What the page, the script and the document are cached for: a day. They change only
/// with the binary.
pub const CACHE_CONTROL: &str = "public, max-age=86400";

fn answer(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(content_type),
            ),
            (
                http::header::CACHE_CONTROL,
                http::HeaderValue::from_static(CACHE_CONTROL),
            ),
            (
                http::header::CONTENT_SECURITY_POLICY,
                http::HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                http::header::X_CONTENT_TYPE_OPTIONS,
                http::HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

/// `GET /api/docs`: the reference page, without authentication.
#[utoipa::path(get, path = "/api/docs", tag = "operations", security(()),
    responses((status = 200, description = "The API reference (Redoc)", body = String, content_type = "text/html")))]
pub(super) async fn page() -> Response {
    answer("text/html; charset=utf-8", PAGE)
}

/// `GET /api/docs/redoc.standalone.js`: the vendored Redoc.
#[utoipa::path(get, path = "/api/docs/redoc.standalone.js", tag = "operations", security(()),
    responses((status = 200, description = "Redoc's standalone bundle", body = String, content_type = "text/javascript")))]
pub(super) async fn script() -> Response {
    answer("text/javascript; charset=utf-8", REDOC_JS)
}
