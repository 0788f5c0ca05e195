//! The gRPC surface: `coder.audit.v1.AuditService`, generated from `proto/` by `build.rs`.
//!
//! A thin adapter: it reads the token from the call's metadata and hands the request to the
//! shared core. `ListAuditLogs` answers are written straight from Coder's page read in place
//! (`encode.rs`, served by `list.rs` in front of the generated server); exports and watches
//! are the core's batches as server streams of message structs (`convert.rs`); errors
//! become statuses by the error table's gRPC column (`status.rs`).
//!
//! Rust callers can use the generated client:
//!
//! ```no_run
//! # async fn example(token: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use coder_audit_gateway::grpc::pb::{ListAuditLogsRequest, audit_service_client::AuditServiceClient};
//!
//! let mut client = AuditServiceClient::connect("http://127.0.0.1:8080").await?;
//! let mut request = tonic::Request::new(ListAuditLogsRequest { q: "action:login".into(), limit: 10, offset: 0, ..Default::default() });
//! request.metadata_mut().insert("coder-session-token", token.parse()?);
//! let page = client.list_audit_logs(request).await?.into_inner();
//! # Ok(()) }
//! ```

mod convert;
mod encode;
mod list;
mod status;
#[cfg(test)]
mod tests;

use std::{
    pin::Pin,
    time::{Duration, Instant},
};

use futures_util::{Stream, StreamExt as _};
use tonic::{Request, Response, Status, metadata::MetadataValue};

use crate::{
    audit::{AuditLogQuery, AuditLogs, DEFAULT_PAGE_SIZE},
    auth::{CODER_SESSION_TOKEN, SessionToken},
    call::{CODER_REQUEST_ID, CallContext, Protocol, RequestInfo},
    error::{Error, Validation},
    export::{ExportBatch, ExportRequest},
    middleware::grpc_timeout,
    model::{self, AuditLog, AuditLogView, PageView, Row},
    paging::PageCursors,
    upstream::Fetched,
    watch::WatchRequest,
};

/// Messages and stubs generated from `proto/coder/audit/v1/audit.proto`.
#[allow(
    clippy::pedantic,
    clippy::nursery,
    missing_docs,
    unreachable_pub,
    reason = "generated code"
)]
pub mod pb {
    tonic::include_proto!("coder.audit.v1");

    /// The encoded descriptors of `proto/`, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("audit_descriptor");
}

pub use encode::list_response;
pub use list::AuditServer;
pub use pb::audit_service_server::AuditServiceServer;

/// Implements `AuditService` over the shared core.
#[derive(Debug, Clone)]
pub struct AuditGrpc {
    audit: AuditLogs,
}

impl AuditGrpc {
    #[must_use]
    pub fn new(audit: AuditLogs) -> Self {
        Self { audit }
    }

    /// `ListAuditLogs`, its response built by `read` from Coder's rows read in place, their
    /// count and the next page's token: a first page as Coder sends it, or the page after a
    /// `page_token`. A page holding a value Coder should never send is `DATA_LOSS`, naming
    /// its row and field.
    async fn list<T>(
        &self,
        request: Request<pb::ListAuditLogsRequest>,
        read: impl FnOnce(&[AuditLogView<'_>], (i64, Option<i64>), &str) -> T,
    ) -> Result<Response<T>, Status> {
        let call = call_context(&request)?;
        let message = request.into_inner();
        let query = AuditLogQuery {
            q: message.q,
            filter: convert::filter(message.filter)?,
            limit: message.limit,
            offset: message.offset,
        };
        let checked = |logs: &[AuditLogView<'_>]| {
            let invalid = logs.iter().find_map(AuditLogView::first_invalid);
            invalid.map_or(Ok(()), |invalid| Err(Error::bad_value(invalid)))
        };
        let result = if message.page_token.is_empty() {
            let read = |page: PageView<'_>, cursors: PageCursors| -> Result<T, Error> {
                checked(&page.audit_logs)?;
                let (count, next) = ((page.count, page.count_cap), cursors.next());
                Ok(read(&page.audit_logs, count, next.unwrap_or_default()))
            };
            let fetched = self.audit.list_with_cursors(&call, &query, false, read);
            fetched.await.and_then(|fetched| {
                Ok(Fetched {
                    page: fetched.page?,
                    coder_request_id: fetched.coder_request_id,
                })
            })
        } else {
            let page = self
                .audit
                .list_after(&call, &query, "page_token", &message.page_token)
                .await;
            page.and_then(|page| {
                let logs = (page.rows.iter())
                    .map(|row| AuditLogView::read(row.raw.get()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|reason| Error::bad_row(&reason))?;
                checked(&logs)?;
                let next = page.cursors.next().unwrap_or_default();
                Ok(Fetched {
                    page: read(&logs, page.cursors.count(), next),
                    coder_request_id: None,
                })
            })
        };
        let fetched = status::counted(result)?;
        let mut response = Response::new(fetched.page);
        if let Some(id) = fetched
            .coder_request_id
            .and_then(|id| MetadataValue::try_from(id).ok())
        {
            response.metadata_mut().insert(CODER_REQUEST_ID, id);
        }
        Ok(response)
    }
}

/// A stream of messages as tonic serves it.
type MessageStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// What a stream sends for one batch: its messages and, when a row cannot be delivered, the
/// status that ends the stream.
type Items<T> = Vec<Result<T, Status>>;

/// The first row of a batch that cannot be delivered (malformed, or holding a value its
/// field cannot hold: `DATA_LOSS`, naming row and field): its place, why, the cursor that
/// resumes past it and the one that resumes right before it.
struct Undeliverable {
    index: usize,
    error: Error,
    past: String,
    before: Option<String>,
}

impl Undeliverable {
    fn find<R: std::borrow::Borrow<Row>>(
        rows: &[R],
        cursor_after: impl Fn(usize) -> String,
    ) -> Option<Self> {
        let (index, error) =
            rows.iter()
                .enumerate()
                .find_map(|(i, row)| match row.borrow().log() {
                    Err(reason) => Some((i, Error::bad_row(reason))),
                    Ok(log) => log
                        .first_invalid()
                        .map(|invalid| (i, Error::bad_value(invalid))),
                })?;
        Some(Self {
            index,
            error,
            past: cursor_after(index),
            before: index.checked_sub(1).map(&cursor_after),
        })
    }
}

/// A batch as a stream's items: one message of its rows; or, when a row cannot be
/// delivered, a message of the rows before it (resuming right before it) and then its error,
/// whose details carry the cursor that resumes past it, so a resume does not stop there
/// again. The flag says whether the stream goes on.
fn batch_items<R, T>(
    rows: Vec<R>,
    cursor: String,
    bad: Option<Undeliverable>,
    log: impl Fn(R) -> Option<AuditLog>,
    message: impl Fn(Vec<pb::AuditLog>, String) -> T,
) -> (Items<T>, bool) {
    let Some(bad) = bad else {
        let logs = rows.into_iter().filter_map(log).map(convert::audit_log);
        return (vec![Ok(message(logs.collect(), cursor))], true);
    };
    let mut items = Vec::new();
    if let Some(before) = bad.before {
        let logs = rows.into_iter().take(bad.index).filter_map(log);
        items.push(Ok(message(logs.map(convert::audit_log).collect(), before)));
    }
    items.push(Err(status::past(&bad.error, bad.past)));
    (items, false)
}

/// Who is calling and until when, from the call's metadata.
fn call_context<T>(request: &Request<T>) -> Result<CallContext, Status> {
    let received = Instant::now();
    let metadata = request.metadata();
    let token = SessionToken::from_credentials(
        metadata
            .get(CODER_SESSION_TOKEN)
            .map(tonic::metadata::MetadataValue::as_bytes),
        metadata
            .get("authorization")
            .map(tonic::metadata::MetadataValue::as_bytes),
    )
    .map_err(Error::from)?;
    // tonic's own server enforces `grpc-timeout`; this gateway is served by hyper
    // directly, so the deadline is read here and enforced by the core.
    let deadline = metadata
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(grpc_timeout)
        .map(|timeout| received + timeout);
    let info = request
        .extensions()
        .get::<RequestInfo>()
        .cloned()
        .unwrap_or_else(RequestInfo::generate);
    Ok(CallContext {
        token,
        protocol: Protocol::Grpc,
        info,
        deadline,
    })
}

#[tonic::async_trait]
impl pb::audit_service_server::AuditService for AuditGrpc {
    type ExportAuditLogsStream = MessageStream<pb::ExportAuditLogsResponse>;
    type WatchAuditLogsStream = MessageStream<pb::WatchAuditLogsResponse>;

    /// The message-struct path, kept as the reference the served encoder is tested
    /// against: [`AuditServer`] answers `ListAuditLogs` itself.
    async fn list_audit_logs(
        &self,
        request: Request<pb::ListAuditLogsRequest>,
    ) -> Result<Response<pb::ListAuditLogsResponse>, Status> {
        self.list(request, |logs, (count, count_cap), next| {
            let page = model::AuditPage {
                audit_logs: logs.iter().cloned().map(AuditLogView::into_owned).collect(),
                count,
                count_cap,
            };
            pb::ListAuditLogsResponse {
                next_page_token: next.to_owned(),
                ..pb::ListAuditLogsResponse::from(page)
            }
        })
        .await
    }

    async fn export_audit_logs(
        &self,
        request: Request<pb::ExportAuditLogsRequest>,
    ) -> Result<Response<Self::ExportAuditLogsStream>, Status> {
        let call = call_context(&request)?;
        let message = request.into_inner();
        let export = self
            .audit
            .export(
                call,
                ExportRequest {
                    q: message.q,
                    filter: convert::filter(message.filter)?,
                    page_size: message.page_size,
                    after: Some(message.after),
                },
            )
            .await
            .map_err(|e| status::refused("export", e))?;
        let watch_cursor = export.watch_cursor().to_string();
        // One page is read ahead while tonic sends the previous one; dropping the stream (a
        // cancelled call) cancels the read.
        let stream = futures_util::stream::unfold(Some(export.prefetch()), move |export| {
            let watch_cursor = watch_cursor.clone();
            async move {
                let mut export = export?;
                let batch = match export.next().await.transpose()? {
                    Ok(batch) => batch,
                    Err(error) => return Some((vec![Err(Status::from(error))], None)),
                };
                let bad = Undeliverable::find(&batch.rows, |i| batch.cursor_after(i));
                let ExportBatch { rows, cursor, .. } = batch;
                // The export owns its rows: each moves into its message without a copy.
                let (items, open) = batch_items(
                    rows,
                    cursor,
                    bad,
                    |row| row.into_log().ok(),
                    |audit_logs, cursor| pb::ExportAuditLogsResponse {
                        audit_logs,
                        cursor,
                        watch_cursor: watch_cursor.clone(),
                    },
                );
                Some((items, open.then_some(export)))
            }
        })
        .flat_map(futures_util::stream::iter);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn watch_audit_logs(
        &self,
        request: Request<pb::WatchAuditLogsRequest>,
    ) -> Result<Response<Self::WatchAuditLogsStream>, Status> {
        let call = call_context(&request)?;
        let message = request.into_inner();
        let poll_interval =
            (message.poll_interval.map(Duration::try_from).transpose()).map_err(|_| {
                Error::invalid(vec![Validation::new(
                    "poll_interval",
                    "poll_interval must be a positive duration",
                )])
            })?;
        let watch = self
            .audit
            .watch(
                call,
                WatchRequest {
                    q: message.q,
                    filter: convert::filter(message.filter)?,
                    after: Some(message.after),
                    poll_interval,
                },
            )
            .await
            .map_err(|e| status::refused("watch", e))?;
        let stream = futures_util::stream::unfold(Some(watch), |watch| async move {
            let mut watch = watch?;
            let batch = watch.next(usize::try_from(DEFAULT_PAGE_SIZE).unwrap_or(100));
            let batch = match batch.await {
                Ok(batch) => batch,
                Err(error) => return Some((vec![Err(Status::from(error))], None)),
            };
            let bad = Undeliverable::find(&batch.rows, |i| batch.cursor_after(i));
            // Watches share their rows: each is copied into its message.
            let (items, open) = batch_items(
                batch.rows,
                batch.cursor,
                bad,
                |row| row.log().ok().cloned(),
                |audit_logs, cursor| pb::WatchAuditLogsResponse { audit_logs, cursor },
            );
            Some((items, open.then_some(watch)))
        })
        .flat_map(futures_util::stream::iter);
        Ok(Response::new(Box::pin(stream)))
    }
}
