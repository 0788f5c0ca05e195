//! The HTTP layer every request passes first: the middleware that establishes its per-call
//! identity (request id, W3C trace context) with the request's tracing span and the
//! in-flight and latency metrics, the one that sheds load, and the reading of gRPC's
//! `grpc-timeout`. What they find becomes the plain data of [`crate::call`].
//!
//! Headers are never logged: the span records the request id, protocol, method and path.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::{
    call::{REQUEST_ID, RequestInfo, TRACEPARENT, new_request_id},
    error::Error,
};

/// A caller's request id is kept when it is short, visible ASCII; anything else is replaced,
/// so the id can be logged and forwarded safely.
fn request_id(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(REQUEST_ID)
        .filter(|v| {
            let bytes = v.as_bytes();
            !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(u8::is_ascii_graphic)
        })
        .cloned()
        .unwrap_or_else(new_request_id)
}

/// `traceparent` as W3C Trace Context version 00 defines it: `00-<32 hex>-<16 hex>-<2 hex>`.
fn traceparent(headers: &HeaderMap) -> Option<HeaderValue> {
    let value = headers.get(TRACEPARENT)?;
    let text = value.to_str().ok()?;
    let parts: Vec<&str> = text.split('-').collect();
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let valid = matches!(parts.as_slice(), [version, trace, parent, flags]
        if hex(version, 2) && *version != "ff" && hex(trace, 32) && hex(parent, 16) && hex(flags, 2)
            && trace.bytes().any(|b| b != b'0') && parent.bytes().any(|b| b != b'0'));
    valid.then(|| value.clone())
}

/// The transport label for HTTP-level metrics.
fn transport(headers: &HeaderMap) -> &'static str {
    match headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        Some(ct) if ct.starts_with("application/grpc-web") => "grpc-web",
        Some(ct) if ct.starts_with("application/grpc") => "grpc",
        _ => "http",
    }
}

/// Gives the request its id and trace context, runs it in a span, counts it in flight and
/// times it, and returns the id to the caller.
pub(crate) async fn establish(mut request: Request, next: Next) -> Response {
    let info = RequestInfo {
        request_id: request_id(request.headers()),
        traceparent: traceparent(request.headers()),
    };
    let transport = transport(request.headers());
    let span = tracing::info_span!(
        "request",
        request_id = info.request_id.to_str().unwrap_or_default(),
        transport,
        method = %request.method(),
        path = request.uri().path(),
    );
    let request_id = info.request_id.clone();
    request.extensions_mut().insert(info);

    let started = Instant::now();
    let in_flight = metrics::gauge!("gateway_requests_in_flight", "transport" => transport);
    in_flight.increment(1);
    let mut response = next.run(request).instrument(span.clone()).await;
    in_flight.decrement(1);
    let elapsed = started.elapsed();
    metrics::histogram!("gateway_request_duration_seconds", "transport" => transport)
        .record(elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            elapsed_ms = elapsed.as_secs_f64() * 1e3,
            "request finished"
        );
    });
    response.headers_mut().insert(REQUEST_ID, request_id);
    response
}

/// Paths that must answer even when the gateway is saturated: probes and scrapes.
fn exempt_from_shedding(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics") || path.starts_with("/grpc.health.v1.")
}

/// Refuses a request at once when `limit` requests are already being served, instead of
/// queueing without bound, with the codes of [`Error::Shed`]: gRPC callers get UNAVAILABLE,
/// HTTP callers a 503 with the GraphQL code `SERVICE_OVERLOADED`.
pub(crate) async fn shed_load(
    State(limit): State<Arc<Semaphore>>,
    request: Request,
    next: Next,
) -> Response {
    if exempt_from_shedding(request.uri().path()) {
        return next.run(request).await;
    }
    let Ok(_permit) = limit.clone().try_acquire_owned() else {
        let transport = transport(request.headers());
        metrics::counter!("gateway_requests_shed_total", "transport" => transport).increment(1);
        tracing::warn!(transport, "overloaded: request refused");
        let refusal = Error::Shed;
        let codes = refusal.codes();
        if transport == "http" {
            let body = serde_json::json!({"errors": [{"message": refusal.to_string(), "extensions": {"code": codes.graphql}}]});
            let status =
                StatusCode::from_u16(codes.http).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let mut response = (status, body.to_string()).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        return tonic::Status::new(tonic::Code::from_i32(codes.grpc), refusal.to_string())
            .into_http::<Body>()
            .into_response();
    };
    next.run(request).await
}

/// The `grpc-timeout` header (`<up to 8 digits><unit>`, unit one of `H M S m u n`).
#[must_use]
pub(crate) fn grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, value.parse().expect("header"));
        headers
    }

    #[test]
    fn caller_request_ids_are_kept_only_when_safe() {
        assert_eq!(request_id(&headers(REQUEST_ID, "abc-123")), "abc-123");
        assert_ne!(request_id(&headers(REQUEST_ID, "has space")), "has space");
        assert_eq!(request_id(&HeaderMap::new()).len(), 36);
    }

    #[test]
    fn traceparent_must_be_w3c_version_00_shaped() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(traceparent(&headers(TRACEPARENT, good)).is_some());
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "garbage",
        ] {
            assert!(traceparent(&headers(TRACEPARENT, bad)).is_none(), "{bad}");
        }
    }

    #[test]
    fn grpc_timeouts_parse_every_unit() {
        assert_eq!(grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(grpc_timeout("100u"), Some(Duration::from_micros(100)));
        for bad in ["", "S", "5", "123456789S", "5s", "-1S"] {
            assert_eq!(grpc_timeout(bad), None, "{bad}");
        }
    }
}
