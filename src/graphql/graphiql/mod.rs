//! `GraphiQL`, served entirely from the binary, so it works on a network with no way out.
//!
//! React, `GraphiQL` and its explorer plugin are vendored production builds (`vendor/`,
//! refreshed by `refresh.sh` from the pinned `package-lock.json`). The build script embeds
//! each file with its content hash in the URL and its gzip, so assets are cached forever
//! (`immutable`) and never compressed per request. The page itself is rendered once at
//! start-up, holds no inline script (the policy forbids them; settings travel in a JSON
//! block) and is never cached: in demo mode it carries the demo token.

use axum::{
    Router,
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

/// One embedded file, as the build script writes it into `graphiql_assets.rs`.
struct Asset {
    /// The file's name in `vendor/` or beside this module, as the page template names it.
    name: &'static str,
    /// `/graphiql/<stem>.<hash>.<extension>`: new content, new URL.
    path: &'static str,
    /// The content hash, quoted; the gzip form's tag adds `.gz`.
    etag: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    gzip: &'static [u8],
}

static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/graphiql_assets.rs"));

const TEMPLATE: &str = include_str!("index.html");

/// Scripts, styles and connections of the gateway's own origin only (CSP Level 3's `'self'`
/// covers its WebSocket too). Inline styles stay allowed: `GraphiQL`'s dialogs inject
/// `<style>` elements at run time, and inline scripts stay forbidden, which is what matters.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The rendered page: its settings (endpoint, the headers editor's first contents) fixed at
/// start-up.
#[derive(Clone)]
pub(super) struct Page {
    html: axum::body::Bytes,
}

impl Page {
    /// The page for `endpoint`. With a `demo_token` the headers editor holds it; without,
    /// it holds an empty `Coder-Session-Token` and the page says where to get one.
    pub(super) fn new(endpoint: &str, demo_token: Option<&str>) -> Self {
        // Coder's own spelling of the header; the gateway reads it in any case.
        let headers = format!(
            "{{\n  \"Coder-Session-Token\": {}\n}}",
            serde_json::Value::from(demo_token.unwrap_or_default())
        );
        let config = serde_json::json!({ "endpoint": endpoint, "headers": headers });
        let hint = if demo_token.is_some() {
            "Demo mode: a built-in Coder with a generated audit trail, its token already in \
             the Headers tab. Press \u{25B6} to run the example."
        } else {
            "Put your Coder session token in the Headers tab below; <code>coder tokens \
             create</code> prints one. This page sends it with each request and never stores it."
        };
        let mut html = TEMPLATE
            .replace("{{config}}", &script_safe(&config.to_string()))
            .replace("{{hint}}", hint);
        for asset in ASSETS {
            html = html.replace(&format!("{{{{{}}}}}", asset.name), asset.path);
        }
        Self { html: html.into() }
    }

    pub(super) fn response(&self) -> Response {
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
                (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::REFERRER_POLICY, "no-referrer"),
                (header::X_FRAME_OPTIONS, "DENY"),
            ],
            self.html.clone(),
        )
            .into_response()
    }
}

/// JSON inside `<script>`: `<`, `>` and `&` escaped, so no value can close the element.
fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// Routes for the page's files, `/graphiql/<stem>.<hash>.<extension>`.
pub(super) fn router() -> Router {
    Router::new().route("/graphiql/{file}", get(asset))
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = ASSETS
        .iter()
        .find(|a| a.path.strip_prefix("/graphiql/") == Some(file.as_str()))
    else {
        return (StatusCode::NOT_FOUND, "no such GraphiQL file\n").into_response();
    };
    let gzip = accepts_gzip(&headers);
    let etag = if gzip {
        format!("{}.gz\"", asset.etag.trim_end_matches('"'))
    } else {
        asset.etag.to_owned()
    };
    let mut response = if if_none_match(&headers, asset.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else if gzip {
        let mut response = asset.gzip.into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        response
    } else {
        asset.body.into_response()
    };
    let response_headers = response.headers_mut();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    response_headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    response_headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        response_headers.insert(header::ETAG, etag);
    }
    response
}

/// Whether `Accept-Encoding` lists gzip (or `*`) without `q=0`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    crate::headers::accepted(headers, header::ACCEPT_ENCODING)
        .any(|coding| coding.eq_ignore_ascii_case("gzip") || coding == "*")
}

/// Whether the client's cached copy (either encoding's tag, weak or strong) is this asset.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    let hash = etag.trim_matches('"');
    crate::headers::list(headers, header::IF_NONE_MATCH)
        .map(|tag| tag.trim_start_matches("W/").trim_matches('"'))
        .any(|tag| tag == "*" || tag == hash || tag.strip_suffix(".gz") == Some(hash))
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use flate2::read::GzDecoder;

    use super::*;

    #[test]
    fn gzip_is_offered_unless_refused() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(value));
            accepts_gzip(&headers)
        };
        assert!(with("gzip, deflate, br"));
        assert!(with("br;q=1.0, GZIP;q=0.5"));
        assert!(with("*"));
        assert!(!with("gzip;q=0"));
        assert!(!with("br, identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn a_cached_copy_matches_either_encodings_tag() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static(value));
            if_none_match(&headers, "\"0123abcd\"")
        };
        assert!(with("\"0123abcd\""));
        assert!(with("W/\"0123abcd.gz\""));
        assert!(with("\"other\", \"0123abcd\""));
        assert!(with("*"));
        assert!(!with("\"0123abce\""));
    }

    #[test]
    fn the_page_settings_cannot_close_their_script_element() {
        let page = Page::new("/graphql", Some("</script><script>alert(1)</script>"));
        let html = std::str::from_utf8(&page.html).unwrap_or_default();
        assert_eq!(html.matches("</script>").count(), 6, "{html}");
        assert!(html.contains("\\u003c/script\\u003e"));
    }

    #[test]
    fn every_file_the_page_names_is_embedded_and_its_gzip_is_its_content() {
        let page = Page::new("/graphql", None);
        let html = std::str::from_utf8(&page.html).unwrap_or_default();
        assert!(!html.contains("{{"), "unreplaced placeholder in {html}");
        for asset in ASSETS {
            let mut unzipped = Vec::new();
            let read = GzDecoder::new(asset.gzip).read_to_end(&mut unzipped);
            assert!(read.is_ok(), "{}: {read:?}", asset.name);
            assert_eq!(unzipped, asset.body, "{}", asset.name);
            assert!(asset.gzip.len() < asset.body.len() || asset.body.len() < 2048);
        }
        for referenced in ["graphiql.min.js", "react.production.min.js", "init.js"] {
            let asset = ASSETS.iter().find(|a| a.name == referenced);
            assert!(asset.is_some_and(|a| html.contains(a.path)), "{referenced}");
        }
    }
}
