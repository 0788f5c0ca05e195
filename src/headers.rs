//! Header lists as HTTP defines them (RFC 9110 §5.6.1): comma-separated items, possibly
//! over several header lines, and, for the `Accept*` family, weights that can refuse an item
//! (`q=0`). Content negotiation, WebSocket subprotocols and cache validation all read them,
//! so they are read one way.

use axum::http::{HeaderMap, header::AsHeaderName};

/// The items of the list header `name`, trimmed, empty ones skipped.
pub(crate) fn list(headers: &HeaderMap, name: impl AsHeaderName) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// The items of an `Accept`-style header that are not refused with `q=0`, without their
/// parameters, in the order the client listed them.
pub(crate) fn accepted(headers: &HeaderMap, name: impl AsHeaderName) -> impl Iterator<Item = &str> {
    list(headers, name).filter_map(|item| {
        let mut parts = item.split(';').map(str::trim);
        let value = parts.next()?;
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        (!refused).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, header};

    use super::*;

    #[test]
    fn items_span_lines_and_refusals_drop_out() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::ACCEPT,
            HeaderValue::from_static("text/html;q=0.9, , a/b"),
        );
        headers.append(
            header::ACCEPT,
            HeaderValue::from_static("c/d; q=0, e/f;q=0.0"),
        );
        assert_eq!(
            list(&headers, header::ACCEPT).collect::<Vec<_>>(),
            ["text/html;q=0.9", "a/b", "c/d; q=0", "e/f;q=0.0"]
        );
        assert_eq!(
            accepted(&headers, header::ACCEPT).collect::<Vec<_>>(),
            ["text/html", "a/b"]
        );
        assert_eq!(accepted(&HeaderMap::new(), header::ACCEPT).count(), 0);
    }
}
