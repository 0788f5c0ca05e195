//! The page source: every page the gateway reads from Coder comes through here, bounded by
//! the caller's deadline and the gateway's shutdown, retried where that is safe, and checked
//! against the gateway's limits before Coder is asked.
//!
//! Retrying has one rule, `Retry`, in two strengths: a single request rides out a dropped
//! connection or a 502/503/504 (`--upstream-retries`), and a walk (an export, a watch's
//! catch-up or poll) also rides out Coder's timeouts and rate limits, honouring
//! `Retry-After`. Either way no wait starts that would end past the caller's deadline, and
//! the gateway's shutdown ends every wait.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;

use crate::{
    call::CallContext,
    cursor::ExportCursorVersion,
    error::{Error, Validation},
    model::{CountedRows, PageView, Row},
    query::{self, AuditLogFilter},
    upstream::{CoderClient, Fetched, PageRequest, body_error},
};

/// What Coder returns for `limit` 0 or no limit. Sent explicitly, because Coder has proposed
/// rejecting `limit=0`; the rows are the same either way.
pub const DEFAULT_PAGE_SIZE: i32 = 100;

/// The longest a `Retry-After` is honoured for in one wait.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The bounds on what a caller may ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest page (`--max-limit`).
    pub max_limit: i32,
    /// The longest `q` and filter string, in bytes (`--max-query-length`).
    pub max_query_length: usize,
    /// The export cursor format written (`--export-cursor-version`).
    pub export_cursor_version: ExportCursorVersion,
    /// Walk by offset from the top of the trail, not through date windows: the walk before
    /// windows, which every walk falls back to for a Coder that ignores date filters; kept
    /// selectable so benchmarks can compare the two in one run.
    pub offset_walk: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_limit: 1000,
            max_query_length: 4096,
            export_cursor_version: ExportCursorVersion::default(),
            offset_walk: false,
        }
    }
}

/// Coder's pages for every caller; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct PageSource(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    client: CoderClient,
    limits: Limits,
    /// Cancelled when the gateway stops: walks then end with `SHUTTING_DOWN`.
    closing: CancellationToken,
}

/// Attempts at one thing, tried again while their failures are passing ones.
#[derive(Debug)]
pub(crate) struct Retry {
    failures: u32,
    max: u32,
    walk: bool,
}

impl Retry {
    /// One request: a dropped connection or a 502/503/504, `max` times.
    fn request(max: u32) -> Self {
        Self {
            failures: 0,
            max,
            walk: false,
        }
    }

    /// A walk's page: also Coder's timeouts and rate limits, `max` failures in a row.
    pub(crate) fn walk(max: u32) -> Self {
        Self {
            failures: 0,
            max,
            walk: true,
        }
    }

    /// The wait before the next attempt after `error`; `None` when it is not worth another.
    pub(crate) fn delay(&mut self, error: &Error) -> Option<Duration> {
        if self.failures >= self.max {
            return None;
        }
        let delay = match error {
            Error::Unavailable { .. } if !self.walk => backoff(self.failures),
            Error::Unavailable { .. } | Error::Timeout { .. } if self.walk => {
                backoff(self.failures + 3)
            }
            Error::RateLimited { retry_after, .. } if self.walk => retry_after
                .unwrap_or_else(|| backoff(self.failures + 4))
                .min(MAX_RETRY_AFTER),
            _ => return None,
        };
        self.failures += 1;
        Some(delay)
    }

    /// An attempt succeeded: the next failure is the first of a new run.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

/// 50 ms, 100 ms, 200 ms, ... capped at 2 s, with full jitter so that many gateways retrying
/// the same failure do not arrive together.
fn backoff(attempt: u32) -> Duration {
    let ceiling = 50_u64.saturating_mul(1 << attempt.min(6)).min(2000);
    Duration::from_millis(fastrand::u64(ceiling / 2..=ceiling))
}

impl PageSource {
    #[must_use]
    pub(crate) fn new(client: CoderClient, limits: Limits, closing: CancellationToken) -> Self {
        Self(Arc::new(Inner {
            client,
            limits,
            closing,
        }))
    }

    /// Cancelled when the gateway stops.
    pub(crate) fn closing(&self) -> &CancellationToken {
        &self.0.closing
    }

    /// Refuses new work for streams once the gateway is stopping.
    pub(crate) fn check_open(&self) -> Result<(), Error> {
        if self.0.closing.is_cancelled() {
            Err(Error::ShuttingDown)
        } else {
            Ok(())
        }
    }

    /// After `error`, waits before the next attempt and returns `Ok`; or hands `error` back
    /// when it is not passing, the attempts are spent or the wait would end past the
    /// caller's deadline. The gateway's shutdown ends the wait with `SHUTTING_DOWN`.
    pub(crate) async fn retry(
        &self,
        retry: &mut Retry,
        call: &CallContext,
        error: Error,
    ) -> Result<(), Error> {
        let Some(delay) = retry.delay(&error) else {
            return Err(error);
        };
        if call
            .deadline
            .is_some_and(|deadline| Instant::now() + delay >= deadline)
        {
            return Err(error);
        }
        metrics::counter!("gateway_upstream_retries_total").increment(1);
        tracing::info!(attempt = retry.failures, delay_ms = delay.as_millis(), %error, "retrying Coder");
        tokio::select! {
            () = self.0.closing.cancelled() => Err(Error::ShuttingDown),
            () = tokio::time::sleep(delay) => Ok(()),
        }
    }

    /// One page's body, retried as [`Retry::request`] allows.
    async fn body(
        &self,
        call: &CallContext,
        request: PageRequest<'_>,
    ) -> Result<(Vec<u8>, Option<String>), Error> {
        let mut retry = Retry::request(self.0.client.retries());
        loop {
            match self.0.client.get(call, request).await {
                Err(error) => self.retry(&mut retry, call, error).await?,
                answer => return answer,
            }
        }
    }

    /// One page handed, read in place, to `read`, within the caller's deadline; dropping
    /// this future drops the upstream request.
    pub(crate) async fn page<T>(
        &self,
        call: &CallContext,
        request: PageRequest<'_>,
        read: impl FnOnce(PageView<'_>) -> T,
    ) -> Result<Fetched<T>, Error> {
        within_deadline(call, async {
            let (body, coder_request_id) = self.body(call, request).await?;
            let page = PageView::from_json(&body).map_err(|e| body_error(call, &e))?;
            Ok(Fetched {
                page: read(page),
                coder_request_id,
            })
        })
        .await
    }

    /// One page as rows that keep Coder's JSON text, for walks, with Coder's `count` of the
    /// query's matching rows: bounded by the caller's deadline and the gateway's shutdown.
    pub(crate) async fn counted_rows(
        &self,
        call: &CallContext,
        request: PageRequest<'_>,
    ) -> Result<CountedRows, Error> {
        let rows = async {
            let (body, _) = self.body(call, request).await?;
            Row::counted_page_from_json(&body).map_err(|e| body_error(call, &e))
        };
        tokio::select! {
            () = self.0.closing.cancelled() => Err(Error::ShuttingDown),
            result = within_deadline(call, rows) => result,
        }
    }

    /// The `q` to send Coder for a caller's `q` and filter, within `--max-query-length`.
    pub(crate) fn compile(
        &self,
        q: &str,
        filter: &AuditLogFilter,
    ) -> Result<String, Vec<Validation>> {
        query::compile_bounded(q, filter, self.0.limits.max_query_length)
    }

    /// The bounds and options this source was built with.
    pub(crate) fn limits(&self) -> Limits {
        self.0.limits
    }

    /// A page size: 0 means [`DEFAULT_PAGE_SIZE`], at most `--max-limit`.
    pub(crate) fn check_page_size(&self, field: &str, size: i32) -> Result<i32, Validation> {
        let max = self.0.limits.max_limit;
        if size < 0 {
            Err(Validation::new(
                field,
                format!("{field} must not be negative, got {size}"),
            ))
        } else if size > max {
            Err(Validation::new(
                field,
                format!("{field} must be at most {max} (the gateway's --max-limit), got {size}"),
            ))
        } else if size == 0 {
            Ok(DEFAULT_PAGE_SIZE)
        } else {
            Ok(size)
        }
    }
}

/// Runs `exchange` until the caller's deadline, if it has one.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 0..20 {
            let delay = backoff(attempt);
            let ceiling =
                Duration::from_millis(50 * (1 << attempt.min(6))).min(Duration::from_secs(2));
            assert!(
                delay <= ceiling && delay >= ceiling / 2,
                "{attempt}: {delay:?}"
            );
        }
    }

    #[test]
    fn a_request_retries_only_lost_connections_and_a_walk_also_rides_out_limits() {
        let unavailable = Error::Unavailable {
            reason: "reset".into(),
        };
        let limited = Error::RateLimited {
            message: crate::error::UpstreamMessage {
                message: "slow down".into(),
                detail: None,
            },
            retry_after: Some(Duration::from_secs(600)),
        };
        let mut request = Retry::request(2);
        assert!(request.delay(&limited).is_none());
        assert!(request.delay(&unavailable).is_some());
        assert!(request.delay(&unavailable).is_some());
        assert!(request.delay(&unavailable).is_none(), "spent");
        let mut walk = Retry::walk(3);
        assert_eq!(walk.delay(&limited), Some(MAX_RETRY_AFTER));
        assert!(
            walk.delay(&Error::Timeout {
                after: Duration::from_secs(1)
            })
            .is_some()
        );
        assert!(walk.delay(&Error::DeadlineExceeded).is_none());
        walk.reset();
        assert!(walk.delay(&unavailable).is_some());
    }
}
