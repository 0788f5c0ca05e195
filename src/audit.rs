//! The facade: the one entry every protocol calls. GraphQL, gRPC and HTTP are thin adapters
//! over [`AuditLogs::list`], [`AuditLogs::export`] and [`AuditLogs::watch`], so a rule
//! changed here changes for every protocol at once. It validates a caller's request, asks
//! the page source (`source`) for pages and starts the engines for walks
//! (`export`) and live tails (`watch`), and logs each outcome; each
//! adapter counts its own requests in its own protocol's codes.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;

pub use crate::source::{DEFAULT_PAGE_SIZE, Limits};
// What a caller of the facade names: its token and call, its requests, what comes back, and
// the client to Coder it is built on.
pub use crate::{
    auth::{SessionToken, TokenError},
    call::{CallContext, Protocol, RequestInfo},
    export::{Export, ExportBatch, ExportRequest, Prefetched, Unplaced},
    paging::{CursorPage, PageCursors},
    query::AuditLogFilter,
    upstream::{ClientBuildError, ClientConfig, CoderClient, Fetched},
    watch::{Watch, WatchBatch, WatchRequest},
};
use crate::{
    cursor,
    error::{Error, Validation},
    model::{AuditPage, PageView},
    paging,
    source::PageSource,
    upstream::PageRequest,
    watch::Watches,
};

/// A caller's request, as both protocols describe it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditLogQuery {
    /// Coder's search query, passed through verbatim.
    pub q: String,
    /// Typed constraints, compiled into `q` and combined with it by AND.
    pub filter: AuditLogFilter,
    /// 0 means [`DEFAULT_PAGE_SIZE`].
    pub limit: i32,
    pub offset: i32,
}

/// How exports and watches run.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// How often a watch asks Coder for new rows, at the fastest.
    pub watch_interval: Duration,
    /// Open watches at most, across callers.
    pub max_watches: usize,
    /// Cancelled when the gateway stops: every export and watch then ends with UNAVAILABLE.
    pub closing: CancellationToken,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            watch_interval: Duration::from_secs(2),
            max_watches: 256,
            closing: CancellationToken::new(),
        }
    }
}

/// The audit log service every protocol surface calls.
#[derive(Debug, Clone)]
pub struct AuditLogs {
    source: PageSource,
    watches: Arc<Watches>,
}

impl AuditLogs {
    #[must_use]
    pub fn new(client: CoderClient, limits: Limits, options: StreamOptions) -> Self {
        Self {
            source: PageSource::new(client, limits, options.closing),
            watches: Arc::new(Watches::new(options.watch_interval, options.max_watches)),
        }
    }

    /// Starts an export: every row matching at its start, newest first, each exactly once.
    pub async fn export(&self, call: CallContext, request: ExportRequest) -> Result<Export, Error> {
        let result = Export::start(&self.source, call, request).await;
        log_refusal("export", result.as_ref().err(), None);
        result
    }

    /// Starts a watch: every row added after its starting point, oldest first, exactly once.
    pub async fn watch(&self, call: CallContext, request: WatchRequest) -> Result<Watch, Error> {
        let result = Watch::start(&self.source, &self.watches, call, request).await;
        log_refusal("watch", result.as_ref().err(), None);
        result
    }

    /// The `q` to send Coder for a caller's `q` and filter, within `--max-query-length`.
    pub(crate) fn compile(
        &self,
        q: &str,
        filter: &AuditLogFilter,
    ) -> Result<String, Vec<Validation>> {
        self.source.compile(q, filter)
    }

    /// Lists one page for the caller, owned.
    pub async fn list(&self, call: &CallContext, query: &AuditLogQuery) -> Result<Fetched, Error> {
        self.list_with(call, query, |page| AuditPage::from(page))
            .await
    }

    /// Lists one page for the caller and hands it to `read` as Coder sent it, read in place:
    /// what the encoders that write a response straight from Coder's body use. Arguments
    /// are checked before Coder is called, so a bad request costs the upstream nothing; the
    /// caller's deadline bounds the whole upstream exchange, retries included, and dropping
    /// this future drops the upstream request.
    pub async fn list_with<T>(
        &self,
        call: &CallContext,
        query: &AuditLogQuery,
        read: impl FnOnce(PageView<'_>) -> T,
    ) -> Result<Fetched<T>, Error> {
        let started = Instant::now();
        let mut seen = (0, 0);
        let result = async {
            let request = PageRequest {
                q: &self.validate(query)?,
                limit: if query.limit == 0 {
                    DEFAULT_PAGE_SIZE
                } else {
                    query.limit
                },
                offset: query.offset,
            };
            let read = |page: PageView<'_>| {
                seen = (page.audit_logs.len(), page.count);
                read(page)
            };
            self.source.page(call, request, read).await
        }
        .await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        if result.is_ok() {
            tracing::debug!(
                rows = seen.0,
                count = seen.1,
                elapsed_ms,
                "audit page fetched"
            );
        }
        log_refusal("audit page", result.as_ref().err(), Some(elapsed_ms));
        result
    }

    /// Lists a first page (no token) for the caller, read in place as [`AuditLogs::list_with`]
    /// reads it, with its cursors: the next page's token, and with `edges` the cursor after
    /// each row.
    pub async fn list_with_cursors<T>(
        &self,
        call: &CallContext,
        query: &AuditLogQuery,
        edges: bool,
        read: impl FnOnce(PageView<'_>, PageCursors) -> T,
    ) -> Result<Fetched<T>, Error> {
        let q = self.validate(query)?;
        self.list_with(call, query, |page| {
            let keys: Vec<_> = (page.audit_logs.iter())
                .map(|row| (cursor::instant(&row.time), row.id.as_ref()))
                .collect();
            let count = (page.count, page.count_cap);
            let cursors = PageCursors::first(&q, &keys, count, query.offset, edges);
            read(page, cursors)
        })
        .await
    }

    /// The page after a page token (`field` names the argument that carried it), read from
    /// the token's position through date windows: see the `paging` module. `offset` must be 0.
    pub async fn list_after(
        &self,
        call: &CallContext,
        query: &AuditLogQuery,
        field: &str,
        token: &str,
    ) -> Result<CursorPage, Error> {
        let started = Instant::now();
        let result = async {
            let mut problems = Vec::new();
            let q = self.checked(query).map_err(|v| problems.extend(v)).ok();
            if query.offset != 0 {
                problems.push(Validation::new(
                    "offset",
                    format!("offset cannot be combined with {field}: the token says where the page starts"),
                ));
            }
            let token = q.as_deref().and_then(|q| {
                cursor::decode_page(q, token)
                    .map_err(|e| problems.push(Validation::new(field, e.to_string())))
                    .ok()
            });
            match (q, token) {
                (Some(q), Some(token)) if problems.is_empty() => {
                    paging::after(&self.source, call, q, query.limit, token).await
                }
                _ => Err(Error::invalid(problems)),
            }
        }
        .await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        if let Ok(page) = &result {
            let rows = page.rows.len();
            tracing::debug!(rows, elapsed_ms, "audit page after a cursor fetched");
        }
        log_refusal("audit page", result.as_ref().err(), Some(elapsed_ms));
        result
    }

    /// Reports every bad argument at once, as Coder does for its own query parameters, and
    /// returns the `q` to send.
    fn validate(&self, query: &AuditLogQuery) -> Result<String, Error> {
        self.checked(query).map_err(Error::invalid)
    }

    fn checked(&self, query: &AuditLogQuery) -> Result<String, Vec<Validation>> {
        let mut validations = Vec::new();
        if let Err(invalid) = self.source.check_page_size("limit", query.limit) {
            validations.push(invalid);
        }
        if query.offset < 0 {
            validations.push(Validation::new(
                "offset",
                format!("offset must not be negative, got {}", query.offset),
            ));
        }
        match self.source.compile(&query.q, &query.filter) {
            Ok(q) if validations.is_empty() => return Ok(q),
            Ok(_) => {}
            Err(errors) => validations.extend(errors),
        }
        Err(validations)
    }
}

/// Logs why a call (a page, or a stream's start) did not go through: a warning when Coder
/// (or the way to it) failed, routine for the caller's mistakes.
fn log_refusal(what: &'static str, error: Option<&Error>, elapsed_ms: Option<f64>) {
    let Some(error) = error else { return };
    let code = error.codes().graphql;
    if error.is_failure() {
        tracing::warn!(code, %error, elapsed_ms, "{what} failed");
    } else {
        tracing::info!(code, %error, elapsed_ms, "{what} refused");
    }
}
