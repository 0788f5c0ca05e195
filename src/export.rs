//! The whole trail: a walk over Coder's pages that delivers every row exactly once, whatever
//! Coder does meanwhile, and the export built on it.
//!
//! Coder orders by `time` only. Rows recorded during a walk arrive at the top and push every
//! offset down; rows with equal times come back in a different order on every call. The
//! walker therefore never trusts an offset to name a row. It remembers a [`Position`] (the
//! oldest time delivered and which rows at exactly that time were delivered) and asks for each
//! page so that it starts on an *anchor*, a row strictly newer than that time. Everything at or
//! below the position then lies inside or after the page, ties included, so each row is either
//! recognised as delivered or delivered now. Rows pushed in at the top only move the anchor
//! down (the walker skips what is newer); a group of ties that does not fit in a page, so that
//! no anchor can follow it, is read again with a page large enough to hold it.
//!
//! An export walks from the top. Where it began (the newest time and the rows at it) is its
//! *watch cursor*: a watch from there yields exactly the rows the export did not.

use std::{sync::Arc, time::Duration};

use crate::{
    audit::{AuditLogs, DEFAULT_PAGE_SIZE},
    call::CallContext,
    cursor::{self, ExportCursor, Position, instant},
    error::{Error, Validation},
    model::Row,
    query::AuditLogFilter,
    upstream::{PageRequest, backoff},
};

/// The largest page the walker asks for to get past a group of rows with one time. Coder
/// accepts any limit today; a page this size is about 20 MB of JSON.
pub const MAX_TIE_PAGE: i32 = 10_000;
/// The smallest page the walker reads.
pub const MIN_PAGE: i32 = 3;
/// Transient failures in a row an export rides out before it gives up (a resumable error).
const EXPORT_RETRIES: u32 = 6;
/// The longest a `Retry-After` is honoured for in one wait.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How long to wait before trying again after `error`, if it is transient: Coder's or the
/// network's passing trouble, or a rate limit with its `Retry-After`.
#[must_use]
pub fn retry_delay(error: &Error, attempt: u32) -> Option<Duration> {
    match error {
        Error::Unavailable { .. } | Error::Timeout { .. } => Some(backoff(attempt + 3)),
        Error::RateLimited { retry_after, .. } => Some(
            retry_after
                .unwrap_or_else(|| backoff(attempt + 4))
                .min(MAX_RETRY_AFTER),
        ),
        _ => None,
    }
}

/// Pages through Coder's order from a position downwards; see the module documentation.
#[derive(Debug)]
pub(crate) struct Walker {
    audit: AuditLogs,
    q: String,
    page_size: i32,
    limit: i32,
    /// Where the next page starts: on an anchor, or at the top.
    pub(crate) offset: u32,
    /// The oldest delivered row's time, and the rows delivered at it.
    pub(crate) next: Position,
    done: bool,
}

impl Walker {
    pub(crate) fn new(
        audit: AuditLogs,
        q: String,
        page_size: i32,
        from: Position,
        offset: u32,
    ) -> Self {
        Self {
            audit,
            q,
            page_size,
            limit: page_size,
            offset,
            next: from,
            done: false,
        }
    }

    /// The next rows below the position, newest first; `None` at the end of the trail.
    /// Never an empty batch: pages holding only rows already delivered are skipped.
    pub(crate) async fn next_page(
        &mut self,
        call: &CallContext,
    ) -> Result<Option<Vec<Row>>, Error> {
        let mut failures = 0;
        loop {
            if self.done {
                return Ok(None);
            }
            let request = PageRequest {
                q: &self.q,
                limit: self.limit,
                offset: i32::try_from(self.offset).unwrap_or(i32::MAX),
            };
            let rows = match self.audit.rows(call, request).await {
                Ok(rows) => rows,
                Err(error) => match retry_delay(&error, failures) {
                    Some(delay) if failures < EXPORT_RETRIES => {
                        failures += 1;
                        tracing::info!(%error, delay_ms = delay.as_millis(), "export page failed; retrying");
                        self.audit.pause(call, delay).await?;
                        continue;
                    }
                    _ => return Err(error),
                },
            };
            failures = 0;
            if self.offset > 0 {
                let anchored = match (rows.first(), self.next.at) {
                    (Some(first), Some(at)) => instant(&first.time) > at,
                    _ => false,
                };
                if !anchored {
                    // Rows above the position went away (retention), or the hint was off:
                    // step back towards the top, where nothing can be missed.
                    self.offset = self
                        .offset
                        .saturating_sub(u32::try_from(self.limit).unwrap_or(1).max(1));
                    continue;
                }
            }
            // A short page is the end of the trail, unless it was asked for more than 100
            // rows and holds 100: a Coder that caps pages at 100 without saying so must not
            // end an export early.
            let full = rows.len() >= usize::try_from(self.limit).unwrap_or(usize::MAX)
                || (self.limit > DEFAULT_PAGE_SIZE
                    && rows.len() >= usize::try_from(DEFAULT_PAGE_SIZE).unwrap_or(100));
            let mut next = self.next.clone();
            let keep: Vec<bool> = rows
                .iter()
                .map(|row| {
                    let fresh = next.is_after(row);
                    if fresh {
                        next.advance(row);
                    }
                    fresh
                })
                .collect();
            // The next page starts on the last row strictly newer than the new position.
            let anchor = next
                .at
                .and_then(|at| rows.iter().rposition(|row| instant(&row.time) > at));
            if full && anchor.is_none_or(|i| i == 0) {
                // A page of ties and nothing newer after the anchor: no page of this size
                // can get past them, so read the same place again with a larger one.
                if self.limit >= MAX_TIE_PAGE {
                    return Err(Error::UnwalkableTies {
                        time: rows.last().map(|r| r.time.to_string()).unwrap_or_default(),
                        limit: MAX_TIE_PAGE,
                    });
                }
                self.limit = self.limit.saturating_mul(2).min(MAX_TIE_PAGE);
                continue;
            }
            let delivered: Vec<Row> = rows
                .into_iter()
                .zip(keep)
                .filter_map(|(row, keep)| keep.then_some(row))
                .collect();
            self.next = next;
            if full {
                self.offset += u32::try_from(anchor.unwrap_or(0)).unwrap_or(0);
                // A page of rows recorded since (all newer than the position) means Coder
                // records faster than this page size skips them: read larger pages until
                // the walk is past them, then return to the caller's size.
                self.limit = if delivered.is_empty() {
                    self.limit.saturating_mul(2).min(MAX_TIE_PAGE)
                } else {
                    self.page_size
                };
            } else {
                self.done = true;
            }
            if !delivered.is_empty() {
                return Ok(Some(delivered));
            }
        }
    }
}

/// An export's request, as every surface describes it.
#[derive(Debug, Clone, Default)]
pub struct ExportRequest {
    pub q: String,
    pub filter: AuditLogFilter,
    /// Rows per call to Coder; 0 means [`DEFAULT_PAGE_SIZE`].
    pub page_size: i32,
    /// The `cursor` of an earlier export's message, to resume right after it.
    pub after: Option<String>,
}

/// A batch of an export: rows newest first, continuing the previous batch.
#[derive(Debug)]
pub struct ExportBatch {
    pub rows: Vec<Row>,
    /// Resumes the export right after this batch.
    pub cursor: String,
}

/// A running export; see the module documentation.
#[derive(Debug)]
pub struct Export {
    call: CallContext,
    walker: Walker,
    start: Position,
    watch_cursor: Arc<str>,
    first: Option<Vec<Row>>,
}

impl Export {
    /// Validates the request and reads the first page, so that a bad `q`, a bad cursor or a
    /// refused token is an error before anything is streamed.
    pub(crate) async fn start(
        audit: &AuditLogs,
        call: CallContext,
        request: ExportRequest,
    ) -> Result<Self, Error> {
        let page_size = audit.check_page_size("page_size", request.page_size);
        let q = audit.compile(&request.q, &request.filter);
        let (page_size, q) = match (page_size, q) {
            (Ok(size), Ok(q)) => (size, q),
            (size, q) => {
                let mut validations: Vec<Validation> = size.err().into_iter().collect();
                validations.extend(q.err().unwrap_or_default());
                return Err(Error::invalid(validations));
            }
        };
        let resumed = match request.after.as_deref().filter(|a| !a.is_empty()) {
            Some(text) => Some(
                cursor::decode_export(&q, text)
                    .map_err(|e| Error::invalid(vec![Validation::new("after", e.to_string())]))?,
            ),
            None => None,
        };
        let (walker, start) = match resumed {
            Some(ExportCursor {
                next,
                offset,
                start,
            }) => (
                Walker::new(audit.clone(), q.clone(), page_size, next, offset),
                Some(start),
            ),
            None => (
                Walker::new(audit.clone(), q.clone(), page_size, Position::default(), 0),
                None,
            ),
        };
        let mut export = Self {
            call,
            walker,
            start: start.clone().unwrap_or_default(),
            watch_cursor: Arc::from(""),
            first: None,
        };
        // At least one batch, even from an empty trail: every batch carries the watch cursor.
        export.first = Some(
            export
                .walker
                .next_page(&export.call)
                .await?
                .unwrap_or_default(),
        );
        if start.is_none() {
            export.start = Position::newest(export.first.as_deref().unwrap_or_default());
        }
        export.watch_cursor = Arc::from(cursor::encode_watch(&q, &export.start));
        Ok(export)
    }

    /// Where the export began, as a watch cursor: the same in every batch.
    #[must_use]
    pub fn watch_cursor(&self) -> &Arc<str> {
        &self.watch_cursor
    }

    /// The next batch, newest first; `None` once every row has been delivered.
    pub async fn next(&mut self) -> Result<Option<ExportBatch>, Error> {
        let rows = if let Some(rows) = self.first.take() {
            rows
        } else {
            self.walker.audit.check_open()?;
            match self.walker.next_page(&self.call).await? {
                Some(rows) => rows,
                None => return Ok(None),
            }
        };
        metrics::counter!("gateway_export_rows_total", "protocol" => self.call.protocol.as_str())
            .increment(rows.len() as u64);
        let cursor = cursor::encode_export(
            &self.walker.q,
            &ExportCursor {
                next: self.walker.next.clone(),
                offset: self.walker.offset,
                start: self.start.clone(),
            },
        );
        Ok(Some(ExportBatch { rows, cursor }))
    }
}

/// An export that reads the next page from Coder while the previous one is being sent: the
/// upstream's latency overlaps the encoding and the client's reading instead of adding to
/// them. At most one batch waits ready, so a slow reader still holds the export within about
/// two pages; a dropped `Prefetched` (a gone client) cancels the read in flight at once.
#[derive(Debug)]
pub struct Prefetched {
    batches: tokio::sync::mpsc::Receiver<Result<ExportBatch, Error>>,
}

impl Prefetched {
    /// The next batch, as [`Export::next`].
    pub async fn next(&mut self) -> Result<Option<ExportBatch>, Error> {
        self.batches.recv().await.transpose()
    }
}

impl Export {
    /// Runs the export ahead of its reader by one batch; see [`Prefetched`].
    #[must_use]
    pub fn prefetch(mut self) -> Prefetched {
        let (tx, batches) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    () = tx.closed() => return,
                    next = self.next() => next,
                };
                let last = !matches!(next, Ok(Some(_)));
                match next.transpose() {
                    Some(item) => {
                        if tx.send(item).await.is_err() {
                            return;
                        }
                    }
                    None => return,
                }
                if last {
                    return;
                }
            }
        });
        Prefetched { batches }
    }
}

/// Rows newer than `from`, oldest first: a walk from the top that stops at `from`. Holds the
/// whole backlog, so it refuses one larger than `max_rows`.
pub(crate) async fn rows_since(
    audit: &AuditLogs,
    call: &CallContext,
    q: &str,
    from: &Position,
    max_rows: usize,
) -> Result<Vec<Row>, Error> {
    let mut walker = Walker::new(
        audit.clone(),
        q.to_owned(),
        DEFAULT_PAGE_SIZE,
        Position::default(),
        0,
    );
    let mut newer = Vec::new();
    while let Some(rows) = walker.next_page(call).await? {
        let mut reached = false;
        for row in rows {
            if from.is_before(&row) {
                newer.push(row);
            } else if from.at.is_some_and(|at| instant(&row.time) < at) {
                reached = true;
            }
        }
        if newer.len() > max_rows {
            return Err(Error::BacklogTooLarge { max_rows });
        }
        if reached {
            break;
        }
    }
    newer.reverse();
    Ok(newer)
}
