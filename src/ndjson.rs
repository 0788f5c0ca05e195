//! The export as NDJSON over plain HTTP, for curl, scripts and log shippers:
//! `GET /audit-logs/export?q=…&page_size=…&after=…` with the caller's token header.
//!
//! Each line is a row exactly as Coder sent it (Coder's own `snake_case` JSON, keys newer than
//! this gateway included), newest first; the export's watch cursor is in `X-Watch-Cursor`.
//! An error before the first byte is the usual status with a JSON body; an error after it
//! ends the body with one `{"error":{…}}` line and aborts the response without its final
//! chunk, so a client sees a failed transfer, never a silently short file.

use axum::{
    Extension, Router,
    body::{Body, Bytes},
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

use tokio::sync::oneshot;

use crate::{
    audit::AuditLogs,
    auth::SessionToken,
    call::{CallContext, Protocol, RequestInfo},
    error::{Error, Validation},
    export::{ExportBatch, ExportRequest, Unplaced},
};

/// The path of the NDJSON export.
pub(crate) const EXPORT_PATH: &str = "/audit-logs/export";
/// The response header that carries the watch cursor of the export's start.
pub(crate) const WATCH_CURSOR: &str = "x-watch-cursor";

/// Routes for the NDJSON export.
pub(crate) fn router(audit: AuditLogs) -> Router {
    Router::new()
        .route(EXPORT_PATH, get(export))
        .with_state(audit)
}

/// A plain-HTTP error: its status from the error table and the JSON body of [`to_json`].
fn error_response(error: &Error) -> Response {
    let status = StatusCode::from_u16(error.codes().http).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = (status, to_json(error).to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// The error as one JSON object, `{"error":{"code":…,"message":…}}` (plus Coder's
/// validations or a retry delay when there are any): the body of a plain-HTTP error, and the
/// last line of an export that fails midway.
fn to_json(error: &Error) -> serde_json::Value {
    let mut body = serde_json::json!({"code": error.codes().graphql, "message": error.to_string()});
    match error {
        Error::InvalidArgument { validations, .. } => {
            body["validations"] = validations
                .iter()
                .map(|v| serde_json::json!({"field": v.field, "detail": v.detail}))
                .collect();
        }
        Error::RateLimited {
            retry_after: Some(after),
            ..
        } => body["retryAfter"] = after.as_secs().into(),
        _ => {}
    }
    serde_json::json!({ "error": body })
}

/// An export's last line: its error, with the cursor that resumes past a row that could
/// not be placed.
fn error_line(error: &Error, cursor: Option<&str>) -> Vec<u8> {
    let mut line = to_json(error);
    if let Some(cursor) = cursor {
        line["error"]["cursor"] = cursor.into();
    }
    let mut out = line.to_string().into_bytes();
    out.push(b'\n');
    out
}

/// Appends a batch's rows as NDJSON lines, Coder's bytes. A row without a readable `id` or
/// `time` has no place in Coder's order: the rows before it are written, then its error
/// line with the cursor past it, which is returned. The NDJSON body and the `export`
/// command write batches through this.
pub(crate) fn write_batch(batch: &ExportBatch, out: &mut Vec<u8>) -> Option<Unplaced> {
    let unplaced = batch.unplaced();
    let end = unplaced.as_ref().map_or(batch.rows.len(), |u| u.index);
    for row in &batch.rows[..end] {
        row.write_ndjson(out);
    }
    if let Some(unplaced) = &unplaced {
        out.extend_from_slice(&error_line(&unplaced.error, Some(&unplaced.cursor)));
    }
    unplaced
}

fn log_failure(error: &Error, cursor: Option<&str>) {
    tracing::warn!(code = error.codes().graphql, %error, cursor = cursor.unwrap_or_default(), "NDJSON export failed midway");
}

/// How long the error line may wait to reach the socket before the response is aborted
/// anyway: a client that never reads again does not hold its connection for ever.
const FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Where the body stream stands.
enum Stage {
    Running(crate::export::Prefetched),
    /// The error line is with hyper; the receiver resolves when hyper lets go of it.
    Failed(Error, oneshot::Receiver<()>),
    Done,
}

/// The last bytes of a failed export, telling when hyper lets go of them: hyper keeps a
/// chunk queued until it is written to the socket (or the connection is gone), so their drop
/// (which drops the sender, resolving the stage's receiver) is the moment the response may be
/// aborted without losing the error line.
struct LastBytes {
    bytes: Vec<u8>,
    _released: oneshot::Sender<()>,
}

impl AsRef<[u8]> for LastBytes {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// The body's last chunk and the stage that aborts the response once it is written.
fn last_chunk(bytes: Vec<u8>, error: Error) -> (Result<Bytes, std::io::Error>, Stage) {
    let (released, written) = oneshot::channel();
    let bytes = Bytes::from_owner(LastBytes {
        bytes,
        _released: released,
    });
    (Ok(bytes), Stage::Failed(error, written))
}

/// The request's parameters: `q`, `page_size` and `after`, each at most once.
fn request(query: Option<&str>) -> Result<ExportRequest, Error> {
    let mut request = ExportRequest::default();
    let mut seen = Vec::new();
    let mut errors = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if seen.contains(&key) {
            errors.push(Validation::new(
                key.as_ref(),
                format!("{key} is given more than once"),
            ));
            continue;
        }
        match key.as_ref() {
            "q" => request.q = value.into_owned(),
            "after" => request.after = Some(value.into_owned()),
            "page_size" => match value.parse() {
                Ok(size) => request.page_size = size,
                Err(_) => errors.push(Validation::new(
                    "page_size",
                    format!("page_size must be a 32-bit integer, got {value:?}"),
                )),
            },
            other => errors.push(Validation::new(
                other,
                format!("{other:?} is not a parameter of this endpoint (q, page_size, after)"),
            )),
        }
        seen.push(key);
    }
    if errors.is_empty() {
        Ok(request)
    } else {
        Err(Error::invalid(errors))
    }
}

async fn export(
    State(audit): State<AuditLogs>,
    info: Option<Extension<RequestInfo>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let started = async {
        let request = request(query.as_deref())?;
        let call = CallContext {
            token: SessionToken::from_headers(&headers)?,
            protocol: Protocol::Http,
            info: info.map_or_else(RequestInfo::generate, |Extension(info)| info),
            deadline: None,
        };
        audit.export(call, request).await.inspect_err(|error| {
            metrics::counter!(
                "gateway_streams_refused_total",
                "protocol" => Protocol::Http.as_str(),
                "operation" => "export",
                "code" => error.codes().graphql,
            )
            .increment(1);
        })
    };
    let export = match started.await {
        Ok(export) => export,
        Err(error) => return error_response(&error),
    };
    let watch_cursor = HeaderValue::from_str(export.watch_cursor()).ok();
    // One batch is read ahead while hyper writes the previous one; a slow reader holds the
    // export there.
    // After an error line the stream yields an error, so hyper aborts the response instead
    // of finishing it cleanly.
    let body =
        futures_util::stream::unfold(Stage::Running(export.prefetch()), |stage| async move {
            match stage {
                Stage::Running(mut export) => match export.next().await {
                    Ok(Some(batch)) => {
                        let mut bytes = Vec::with_capacity(batch.rows.len() * 2048);
                        match write_batch(&batch, &mut bytes) {
                            None => Some((Ok(Bytes::from(bytes)), Stage::Running(export))),
                            Some(unplaced) => {
                                log_failure(&unplaced.error, Some(&unplaced.cursor));
                                Some(last_chunk(bytes, unplaced.error))
                            }
                        }
                    }
                    Ok(None) => None,
                    Err(error) => {
                        log_failure(&error, None);
                        Some(last_chunk(error_line(&error, None), error))
                    }
                },
                Stage::Failed(error, written) => {
                    // Aborted only once the error line is on the socket, so the client reads it
                    // whatever its pace: an abort drops whatever hyper still holds.
                    let _ = tokio::time::timeout(FLUSH_LIMIT, written).await;
                    Some((Err(std::io::Error::other(error)), Stage::Done))
                }
                Stage::Done => None,
            }
        });
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    if let Some(cursor) = watch_cursor {
        headers.insert(WATCH_CURSOR, cursor);
    }
    response
}
