//! What one call into the core carries, as plain data: the caller's token, the request's id
//! and W3C trace context (both forwarded to Coder), the caller's deadline, and which protocol
//! surface it came through (a metrics label). The HTTP layer fills it in from the request
//! (`middleware.rs`); the core only reads it.

use std::time::Instant;

use http::HeaderValue;

use crate::auth::SessionToken;

pub(crate) const REQUEST_ID: &str = "x-request-id";
pub(crate) const TRACEPARENT: &str = "traceparent";
/// The id Coder gives each request; returned to callers so they can find it in Coder's logs.
pub(crate) const CODER_REQUEST_ID: &str = "x-coder-request-id";

/// The request's identity, set by the HTTP layer for the protocol layers.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub request_id: HeaderValue,
    /// The caller's `traceparent`, when well-formed, forwarded to Coder.
    pub traceparent: Option<HeaderValue>,
}

impl RequestInfo {
    /// A fresh identity, for calls that did not come through the HTTP layer.
    #[must_use]
    pub fn generate() -> Self {
        Self {
            request_id: new_request_id(),
            traceparent: None,
        }
    }
}

/// A fresh request id: a UUID.
pub(crate) fn new_request_id() -> HeaderValue {
    HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// Which protocol surface served a call, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Graphql,
    Grpc,
    /// Plain HTTP: the NDJSON export. Its errors use the GraphQL codes.
    Http,
}

impl Protocol {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Graphql => "graphql",
            Self::Grpc => "grpc",
            Self::Http => "http",
        }
    }
}

/// One call into the core: who is calling, with which identity, until when.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub token: SessionToken,
    pub protocol: Protocol,
    pub info: RequestInfo,
    /// The caller's deadline (gRPC `grpc-timeout`); the upstream call never outlives it.
    pub deadline: Option<Instant>,
}
