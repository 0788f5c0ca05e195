//! The shared core: validates a caller's request, fetches the page from Coder, and logs the
//! outcome. GraphQL, gRPC and HTTP are thin adapters over [`AuditLogs::list`],
//! [`AuditLogs::export`] and [`AuditLogs::watch`], so a rule changed here changes for every
//! protocol at once.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;

use crate::{
    call::CallContext,
    error::{Error, Validation},
    export::{Export, ExportRequest},
    model::{AuditPage, PageView, Row},
    query::{self, AuditLogFilter},
    upstream::{CoderClient, Fetched, PageRequest},
    watch::{Watch, WatchRequest, Watches},
};

/// What Coder returns for `limit` 0 or no limit. Sent explicitly, because Coder has proposed
/// rejecting `limit=0`; the rows are the same either way.
pub const DEFAULT_PAGE_SIZE: i32 = 100;

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

/// The bounds on what a caller may ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest page (`--max-limit`).
    pub max_limit: i32,
    /// The longest `q` and filter string, in bytes (`--max-query-length`).
    pub max_query_length: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_limit: 1000,
            max_query_length: 4096,
        }
    }
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
    client: CoderClient,
    limits: Limits,
    streams: Arc<Streams>,
}

#[derive(Debug)]
struct Streams {
    watches: Watches,
    closing: CancellationToken,
}

impl AuditLogs {
    #[must_use]
    pub fn new(client: CoderClient, limits: Limits, options: StreamOptions) -> Self {
        Self {
            client,
            limits,
            streams: Arc::new(Streams {
                watches: Watches::new(options.watch_interval, options.max_watches),
                closing: options.closing,
            }),
        }
    }

    /// Starts an export: every row matching at its start, newest first, each exactly once.
    pub async fn export(&self, call: CallContext, request: ExportRequest) -> Result<Export, Error> {
        let result = Export::start(self, call, request).await;
        log_refusal("export", result.as_ref().err());
        result
    }

    /// Starts a watch: every row added after its starting point, oldest first, exactly once.
    pub async fn watch(&self, call: CallContext, request: WatchRequest) -> Result<Watch, Error> {
        let result = Watch::start(self, call, request).await;
        log_refusal("watch", result.as_ref().err());
        result
    }

    pub(crate) fn watches(&self) -> &Watches {
        &self.streams.watches
    }

    pub(crate) fn closing(&self) -> &CancellationToken {
        &self.streams.closing
    }

    /// Refuses new work for streams once the gateway is stopping.
    pub(crate) fn check_open(&self) -> Result<(), Error> {
        if self.streams.closing.is_cancelled() {
            Err(Error::ShuttingDown)
        } else {
            Ok(())
        }
    }

    /// Waits `delay` between two attempts, unless the caller's deadline or the gateway's
    /// shutdown comes first.
    pub(crate) async fn pause(&self, call: &CallContext, delay: Duration) -> Result<(), Error> {
        if call
            .deadline
            .is_some_and(|deadline| Instant::now() + delay >= deadline)
        {
            return Err(Error::DeadlineExceeded);
        }
        tokio::select! {
            () = self.streams.closing.cancelled() => Err(Error::ShuttingDown),
            () = tokio::time::sleep(delay) => Ok(()),
        }
    }

    /// One page of rows with their JSON text, bounded by the caller's deadline and the
    /// gateway's shutdown.
    pub(crate) async fn rows(
        &self,
        call: &CallContext,
        request: PageRequest<'_>,
    ) -> Result<Vec<Row>, Error> {
        tokio::select! {
            () = self.streams.closing.cancelled() => Err(Error::ShuttingDown),
            result = within_deadline(call, self.client.audit_rows(call, request)) => result,
        }
    }

    /// The `q` to send Coder for a caller's `q` and filter, within `--max-query-length`.
    pub(crate) fn compile(
        &self,
        q: &str,
        filter: &AuditLogFilter,
    ) -> Result<String, Vec<Validation>> {
        query::compile_bounded(q, filter, self.limits.max_query_length)
    }

    /// A page size for exports: 0 means [`DEFAULT_PAGE_SIZE`], at most `--max-limit`.
    pub(crate) fn check_page_size(&self, field: &str, size: i32) -> Result<i32, Validation> {
        if size < 0 {
            Err(Validation::new(
                field,
                format!("{field} must not be negative, got {size}"),
            ))
        } else if size > self.limits.max_limit {
            Err(Validation::new(
                field,
                format!(
                    "{field} must be at most {} (the gateway's --max-limit), got {size}",
                    self.limits.max_limit
                ),
            ))
        } else if size == 0 {
            Ok(DEFAULT_PAGE_SIZE)
        } else {
            Ok(size)
        }
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
        let result = self
            .fetch(call, query, |page| {
                seen = (page.audit_logs.len(), page.count);
                read(page)
            })
            .await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        match &result {
            Ok(_) => tracing::debug!(
                rows = seen.0,
                count = seen.1,
                elapsed_ms,
                "audit page fetched"
            ),
            Err(error) if error.is_failure() => {
                tracing::warn!(code = error.codes().graphql, %error, elapsed_ms, "audit page failed");
            }
            Err(error) => {
                tracing::info!(code = error.codes().graphql, %error, elapsed_ms, "audit page refused");
            }
        }
        result
    }

    async fn fetch<T>(
        &self,
        call: &CallContext,
        query: &AuditLogQuery,
        read: impl FnOnce(PageView<'_>) -> T,
    ) -> Result<Fetched<T>, Error> {
        let q = self.validate(query)?;
        let limit = if query.limit == 0 {
            DEFAULT_PAGE_SIZE
        } else {
            query.limit
        };
        let request = PageRequest {
            q: &q,
            limit,
            offset: query.offset,
        };
        within_deadline(call, self.client.audit_page(call, request, read)).await
    }

    /// Reports every bad argument at once, as Coder does for its own query parameters, and
    /// returns the `q` to send.
    fn validate(&self, query: &AuditLogQuery) -> Result<String, Error> {
        let mut validations = Vec::new();
        if let Err(invalid) = self.check_page_size("limit", query.limit) {
            validations.push(invalid);
        }
        if query.offset < 0 {
            validations.push(Validation::new(
                "offset",
                format!("offset must not be negative, got {}", query.offset),
            ));
        }
        match self.compile(&query.q, &query.filter) {
            Ok(q) if validations.is_empty() => return Ok(q),
            Ok(_) => {}
            Err(errors) => validations.extend(errors),
        }
        Err(Error::invalid(validations))
    }
}

/// Runs `exchange` until the caller's deadline, if it has one; dropping it drops the upstream
/// request.
async fn within_deadline<T>(
    call: &CallContext,
    exchange: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match call.deadline {
        Some(deadline) => tokio::time::timeout_at(deadline.into(), exchange)
            .await
            .unwrap_or(Err(Error::DeadlineExceeded)),
        None => exchange.await,
    }
}

/// Logs why a stream was refused at its start: routine for the caller's mistakes, a warning
/// when Coder failed.
fn log_refusal(operation: &'static str, error: Option<&Error>) {
    match error {
        Some(error) if error.is_failure() => {
            tracing::warn!(operation, code = error.codes().graphql, %error, "stream failed to start");
        }
        Some(error) => {
            tracing::info!(operation, code = error.codes().graphql, %error, "stream refused");
        }
        None => {}
    }
}
