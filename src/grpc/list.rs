//! `ListAuditLogs` served from Coder's page read in place, written by `encode.rs` instead of
//! being copied into message structs and encoded by prost.
//!
//! tonic's generated server fixes each method's response type to its prost message, so the
//! service mounted on the router is this wrapper: it answers `ListAuditLogs` through
//! tonic's own unary handling (framing, `grpc-timeout`, status trailers, message limits,
//! gRPC-Web through the same layer) with a codec whose response is already encoded, and
//! hands every other method to the generated server. The request is still decoded by
//! prost.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use axum::http;
use bytes::BufMut as _;
use prost::Message as _;
use tonic::{
    Status,
    body::Body,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    server::{Grpc, NamedService, UnaryService},
};
use tower::Service;

use super::{AuditGrpc, AuditServiceServer, pb};

/// The gRPC path this module answers.
const LIST_PATH: &str = "/coder.audit.v1.AuditService/ListAuditLogs";

/// `coder.audit.v1.AuditService`: `ListAuditLogs` here, the rest by the generated server.
#[derive(Debug, Clone)]
pub struct AuditServer {
    generated: AuditServiceServer<AuditGrpc>,
    grpc: AuditGrpc,
    max_message: usize,
}

impl AuditServer {
    /// The service ready to mount on a router, with its message size limit both ways.
    #[must_use]
    pub fn new(grpc: AuditGrpc, max_message: usize) -> Self {
        Self {
            generated: AuditServiceServer::new(grpc.clone())
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(max_message),
            grpc,
            max_message,
        }
    }
}

impl NamedService for AuditServer {
    const NAME: &'static str = <AuditServiceServer<AuditGrpc> as NamedService>::NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl Service<http::Request<Body>> for AuditServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() != LIST_PATH {
            return Box::pin(self.generated.call(request));
        }
        let list = ListPage(self.grpc.clone());
        let max = self.max_message;
        Box::pin(async move {
            let mut grpc = Grpc::new(PageCodec).apply_max_message_size_config(Some(max), Some(max));
            Ok(grpc.unary(list, request).await)
        })
    }
}

/// A `ListAuditLogsResponse`, already encoded.
#[derive(Debug)]
pub(super) struct EncodedPage(pub(super) Vec<u8>);

struct ListPage(AuditGrpc);

impl UnaryService<pb::ListAuditLogsRequest> for ListPage {
    type Response = EncodedPage;
    type Future = BoxFuture<Result<tonic::Response<EncodedPage>, Status>>;

    fn call(&mut self, request: tonic::Request<pb::ListAuditLogsRequest>) -> Self::Future {
        let grpc = self.0.clone();
        // The response is encoded straight from Coder's page.
        Box::pin(async move {
            (grpc.list(request, |logs, count, next| {
                EncodedPage(super::encode::list_response_of(logs, count, next))
            }))
            .await
        })
    }
}

/// Decodes the request with prost; the response goes out as it was encoded.
#[derive(Debug, Clone, Copy, Default)]
struct PageCodec;

impl Codec for PageCodec {
    type Encode = EncodedPage;
    type Decode = pb::ListAuditLogsRequest;
    type Encoder = PageCodec;
    type Decoder = PageCodec;

    fn encoder(&mut self) -> Self::Encoder {
        Self
    }

    fn decoder(&mut self) -> Self::Decoder {
        Self
    }
}

impl Encoder for PageCodec {
    type Item = EncodedPage;
    type Error = Status;

    fn encode(&mut self, item: EncodedPage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item.0);
        Ok(())
    }
}

impl Decoder for PageCodec {
    type Item = pb::ListAuditLogsRequest;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        pb::ListAuditLogsRequest::decode(src)
            .map(Some)
            // As tonic's prost codec words it.
            .map_err(|e| Status::internal(e.to_string()))
    }
}
