//! The shared core: validates a caller's request, fetches the page from Coder, and logs the
//! outcome. GraphQL and gRPC are thin adapters over [`AuditLogs::list`], so a rule changed
//! here changes for both protocols at once.

use std::time::Instant;

use crate::{
    context::{CallContext, Protocol},
    error::{Error, Validation},
    query::{self, AuditLogFilter},
    upstream::{CoderClient, Fetched, PageRequest},
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

/// The audit log service both protocol surfaces call.
#[derive(Debug, Clone)]
pub struct AuditLogs {
    client: CoderClient,
    max_limit: i32,
}

impl AuditLogs {
    #[must_use]
    pub fn new(client: CoderClient, max_limit: i32) -> Self {
        Self { client, max_limit }
    }

    /// Lists one page for the caller. Arguments are checked before Coder is called, so a bad
    /// request costs the upstream nothing; the caller's deadline bounds the whole upstream
    /// exchange, retries included, and dropping this future drops the upstream request.
    pub async fn list(&self, call: &CallContext, query: &AuditLogQuery) -> Result<Fetched, Error> {
        let started = Instant::now();
        let result = self.fetch(call, query).await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        let outcome = match &result {
            Ok(fetched) => {
                tracing::debug!(
                    rows = fetched.page.audit_logs.len(),
                    count = fetched.page.count,
                    elapsed_ms,
                    "audit page fetched"
                );
                "OK"
            }
            Err(error) => {
                if error.is_upstream_failure() {
                    tracing::warn!(code = error.graphql_code(), %error, elapsed_ms, "audit page failed");
                } else {
                    tracing::info!(code = error.graphql_code(), %error, elapsed_ms, "audit page refused");
                }
                error.code_for(call.protocol)
            }
        };
        metrics::counter!(
            "gateway_requests_total",
            "protocol" => call.protocol.as_str(),
            "operation" => match call.protocol {
                Protocol::Graphql => "auditLogs",
                Protocol::Grpc => "ListAuditLogs",
            },
            "outcome" => outcome,
        )
        .increment(1);
        result
    }

    async fn fetch(&self, call: &CallContext, query: &AuditLogQuery) -> Result<Fetched, Error> {
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
        match call.deadline {
            Some(deadline) => {
                tokio::time::timeout_at(deadline.into(), self.client.audit_page(call, request))
                    .await
                    .unwrap_or(Err(Error::DeadlineExceeded))
            }
            None => self.client.audit_page(call, request).await,
        }
    }

    /// Reports every bad argument at once, as Coder does for its own query parameters, and
    /// returns the `q` to send.
    fn validate(&self, query: &AuditLogQuery) -> Result<String, Error> {
        let mut validations = Vec::new();
        if query.limit < 0 {
            validations.push(Validation::new(
                "limit",
                format!("limit must not be negative, got {}", query.limit),
            ));
        } else if query.limit > self.max_limit {
            validations.push(Validation::new(
                "limit",
                format!(
                    "limit must be at most {} (the gateway's --max-limit), got {}",
                    self.max_limit, query.limit
                ),
            ));
        }
        if query.offset < 0 {
            validations.push(Validation::new(
                "offset",
                format!("offset must not be negative, got {}", query.offset),
            ));
        }
        match query::compile(&query.q, &query.filter) {
            Ok(q) if validations.is_empty() => return Ok(q),
            Ok(_) => {}
            Err(errors) => validations.extend(errors),
        }
        Err(Error::InvalidArgument {
            message: "Invalid arguments.".to_owned(),
            validations,
        })
    }
}
