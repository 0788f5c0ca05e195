//! The walker: a walk over Coder's pages that delivers every row exactly once, whatever
//! Coder does meanwhile. Exports walk it from the top; watches use it to read what is newer
//! than their position.
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

use crate::{
    call::CallContext,
    cursor::{Position, instant},
    error::Error,
    model::Row,
    source::{DEFAULT_PAGE_SIZE, PageSource, Retry},
    upstream::PageRequest,
};

/// The largest page the walker asks for to get past a group of rows with one time. Coder
/// accepts any limit today; a page this size is about 20 MB of JSON.
pub const MAX_TIE_PAGE: i32 = 10_000;
/// Passing failures in a row a walk rides out before it gives up (a resumable error).
const WALK_RETRIES: u32 = 6;

/// Pages through Coder's order from a position downwards; see the module documentation.
#[derive(Debug)]
pub(crate) struct Walker {
    pub(crate) source: PageSource,
    pub(crate) q: String,
    page_size: i32,
    limit: i32,
    /// Where the next page starts: on an anchor, or at the top.
    pub(crate) offset: u32,
    /// The oldest delivered row's time, and the rows delivered at it.
    pub(crate) next: Position,
    done: bool,
}

impl Walker {
    /// A walk from `from` (a position and the offset of its anchor), or from the top.
    pub(crate) fn new(
        source: PageSource,
        q: String,
        page_size: i32,
        from: Option<(Position, u32)>,
    ) -> Self {
        let (next, offset) = from.unwrap_or_default();
        Self {
            source,
            q,
            page_size,
            limit: page_size,
            offset,
            next,
            done: false,
        }
    }

    /// The next rows below the position, newest first; `None` at the end of the trail.
    /// Never an empty batch: pages holding only rows already delivered are skipped.
    pub(crate) async fn next_page(
        &mut self,
        call: &CallContext,
    ) -> Result<Option<Vec<Row>>, Error> {
        let mut retry = Retry::walk(WALK_RETRIES);
        loop {
            if self.done {
                return Ok(None);
            }
            let request = PageRequest {
                q: &self.q,
                limit: self.limit,
                offset: i32::try_from(self.offset).unwrap_or(i32::MAX),
            };
            let rows = match self.source.rows(call, request).await {
                Ok(rows) => rows,
                Err(error) => {
                    self.source.retry(&mut retry, call, error).await?;
                    continue;
                }
            };
            retry.reset();
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

/// Rows newer than `from`, oldest first: a walk from the top that stops at `from`. Holds the
/// whole backlog, so it refuses one larger than `max_rows`.
pub(crate) async fn rows_since(
    source: &PageSource,
    call: &CallContext,
    q: &str,
    from: &Position,
    max_rows: usize,
) -> Result<Vec<Row>, Error> {
    let mut walker = Walker::new(source.clone(), q.to_owned(), DEFAULT_PAGE_SIZE, None);
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

/// Where "now" is: the newest row and its ties.
pub(crate) async fn top(
    source: &PageSource,
    call: &CallContext,
    q: &str,
) -> Result<Position, Error> {
    let mut walker = Walker::new(source.clone(), q.to_owned(), DEFAULT_PAGE_SIZE, None);
    Ok(walker
        .next_page(call)
        .await?
        .map_or_else(Position::default, |rows| Position::newest(&rows)))
}
