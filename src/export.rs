//! The whole trail: an export, every row matching at its start, newest first, each exactly
//! once, walked by [`crate::walker`].
//!
//! An export walks from the top. Where it began (the newest time and the rows at it) is its
//! *watch cursor*: a watch from there yields exactly the rows the export did not.

use std::sync::Arc;

use crate::{
    call::CallContext,
    cursor::{self, ExportCursor, ExportCursorVersion, Position},
    error::{Error, Validation},
    model::Row,
    query::AuditLogFilter,
    source::PageSource,
    walker::Walker,
};

/// An export's request, as every surface describes it.
#[derive(Debug, Clone, Default)]
pub struct ExportRequest {
    pub q: String,
    pub filter: AuditLogFilter,
    /// Rows per call to Coder; 0 means [`crate::source::DEFAULT_PAGE_SIZE`].
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
    /// Where the export stood before this batch, for cursors inside it.
    before: ExportCursor,
    q: String,
    version: ExportCursorVersion,
}

impl ExportBatch {
    /// Resumes the export right after the batch's row `index`: what a surface hands out when
    /// that row cannot be delivered, so that a resume goes on past it.
    #[must_use]
    pub fn cursor_after(&self, index: usize) -> String {
        let mut at = self.before.clone();
        for row in self.rows.iter().take(index + 1) {
            at.next.advance(row);
        }
        cursor::encode_export(&self.q, &at, self.version)
    }
}

/// A row an export cannot place in Coder's order (its `id` or `time` unreadable), which
/// the surfaces that pass Coder's bytes (NDJSON, `export`) report in place of the row.
#[derive(Debug)]
pub struct Unplaced {
    /// The row's place in its batch: the rows before it are delivered.
    pub index: usize,
    /// `UPSTREAM_DATA_LOSS`, naming the row and the field.
    pub error: Error,
    /// Resumes the export right after the row.
    pub cursor: String,
}

impl ExportBatch {
    /// The batch's first row whose `id` or `time` Coder sent unreadable.
    #[must_use]
    pub fn unplaced(&self) -> Option<Unplaced> {
        let (index, invalid) =
            (self.rows.iter().enumerate()).find_map(|(i, row)| Some((i, row.unplaced.clone()?)))?;
        Some(Unplaced {
            index,
            error: Error::bad_value(invalid),
            cursor: self.cursor_after(index),
        })
    }
}

/// A running export; see the module documentation.
#[derive(Debug)]
pub struct Export {
    call: CallContext,
    walker: Walker,
    start: Position,
    watch_cursor: Arc<str>,
    first: Option<Vec<Row>>,
    /// The walker's position and its hint before the batch being read.
    before: (Position, Option<u32>),
    version: ExportCursorVersion,
}

impl Export {
    /// Validates the request and reads the first page, so that a bad `q`, a bad cursor or a
    /// refused token is an error before anything is streamed.
    pub(crate) async fn start(
        source: &PageSource,
        call: CallContext,
        request: ExportRequest,
    ) -> Result<Self, Error> {
        let page_size = source.check_page_size("page_size", request.page_size);
        let q = source.compile(&request.q, &request.filter);
        let (page_size, q) = match (page_size, q) {
            (Ok(size), Ok(q)) => (size, q),
            (size, q) => {
                let mut validations: Vec<Validation> = size.err().into_iter().collect();
                validations.extend(q.err().unwrap_or_default());
                return Err(Error::invalid(validations));
            }
        };
        let resumed = (request.after.as_deref())
            .filter(|a| !a.is_empty())
            .map(|text| cursor::decode_export(&q, text))
            .transpose()
            .map_err(|e| Error::invalid(vec![Validation::new("after", e.to_string())]))?;
        let start = resumed.as_ref().map(|cursor| cursor.start.clone());
        let from = resumed.map(|cursor| (cursor.next, cursor.above));
        let before = from.clone().unwrap_or_default();
        let walker = Walker::new(source.clone(), q.clone(), page_size, from);
        let version = source.limits().export_cursor_version;
        let mut export = Self {
            call,
            walker,
            start: start.clone().unwrap_or_default(),
            watch_cursor: Arc::from(""),
            first: None,
            before,
            version,
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
            self.walker.source.check_open()?;
            match self.walker.next_page(&self.call).await? {
                Some(rows) => rows,
                None => return Ok(None),
            }
        };
        metrics::counter!("gateway_export_rows_total", "protocol" => self.call.protocol.as_str())
            .increment(rows.len() as u64);
        let (position, above) = std::mem::replace(
            &mut self.before,
            (self.walker.next.clone(), self.walker.above()),
        );
        let before = ExportCursor {
            next: position,
            // Rows the batch delivered lie below the position before it, so the hint before
            // the batch still holds for a walk resumed inside it: it skips what it delivered.
            above,
            start: self.start.clone(),
        };
        let cursor = cursor::encode_export(
            &self.walker.q,
            &ExportCursor {
                next: self.walker.next.clone(),
                above: self.walker.above(),
                start: self.start.clone(),
            },
            self.version,
        );
        Ok(Some(ExportBatch {
            rows,
            cursor,
            before,
            q: self.walker.q.clone(),
            version: self.version,
        }))
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
