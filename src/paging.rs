//! Cursor pages: `ListAuditLogs`' page tokens (AIP-158) and `auditLogs`' Relay connection,
//! one engine for both.
//!
//! A first page is an ordinary page (the caller's `q`, `limit`, `offset`), read as it is;
//! its rows give the cursors. A page after it is read by [`crate::walker`] from the token's
//! position, through the same date windows as an export, so it costs Coder about what an
//! export's batch costs whatever the depth, and new rows above, removed rows and shuffled
//! ties do not shift it: every row comes once. A token carries the first page's `count` (a
//! window's count is not the caller's total) and the rows per day measured so far.
//!
//! Coder is asked for at most 100 rows a call, and each call after the first re-reads the
//! row above the position and those delivered at it (usually one) to check that Coder's
//! order has not shifted. A page gathers calls until it holds `limit` rows, except that it
//! does not make a call for those re-read rows alone: a page asked for more than 98 rows
//! may hold up to two fewer (more under ties), as AIP-158 and Relay both allow. Whether
//! another page follows is exact: from the last call's count, or a probe below its window
//! when the count cannot tell.

use crate::{
    call::CallContext,
    cursor::{self, Instant, PageToken, Position, instant},
    error::Error,
    model::Row,
    source::{DEFAULT_PAGE_SIZE, PageSource},
    walker::{self, MAX_CALL, Walker},
};

/// The cursors of a page: after each of its rows (Relay's edge cursors), and of the page
/// that follows (`None` on the last page).
#[derive(Debug, Clone)]
pub struct PageCursors {
    q: String,
    /// Where the page began, and the hint there.
    start: Position,
    hint: Option<u32>,
    /// A first page read from the top holds every row above each of its positions.
    from_top: bool,
    count: i64,
    count_cap: Option<i64>,
    density: f32,
    /// Each row's instant, id and whether it was unplaced, newest first.
    keys: Vec<(Instant, String, bool)>,
    /// The token after the last row, with the walk's own hint; `None` for an empty page.
    end: Option<String>,
    has_next: bool,
}

impl PageCursors {
    /// The cursors of a first page (no token): `rows` (instant and id, newest first) read at
    /// `offset` from the top, with Coder's count of the query. The cursors after each row
    /// ([`PageCursors::after`]) are kept only with `edges`: without, only the next page's token
    /// is made, and no id is copied.
    #[must_use]
    pub fn first(
        q: &str,
        rows: &[(Instant, &str)],
        (count, count_cap): (i64, Option<i64>),
        offset: i32,
        edges: bool,
    ) -> Self {
        let read = i64::from(offset.max(0)) + i64::try_from(rows.len()).unwrap_or(i64::MAX);
        let exact = crate::model::exact_count(count, count_cap);
        let mut cursors = Self {
            q: q.to_owned(),
            start: Position::default(),
            // Below an offset, the rows skipped are not known.
            hint: None,
            from_top: offset == 0,
            count,
            count_cap,
            density: density(rows.iter().map(|row| row.0)),
            has_next: count > read || (!exact && !rows.is_empty()),
            end: None,
            keys: if edges {
                (rows.iter())
                    .map(|&(at, id)| (at, id.to_owned(), false))
                    .collect()
            } else {
                Vec::new()
            },
        };
        if let Some(&(last, _)) = rows.last() {
            // The rows at the last row's time close the page: the position after it.
            let mut position = Position::default();
            let group = rows.iter().rev().take_while(|row| row.0 == last).count();
            for &(at, id) in &rows[rows.len() - group..] {
                position.advance_to(at, id, false);
            }
            let above =
                (offset == 0).then(|| walker::rows_above(&position, rows.iter().map(|row| row.0)));
            cursors.end = Some(cursors.encode(position, above));
        }
        cursors
    }

    /// Resumes right after row `index` of the page (Relay's edge cursor).
    #[must_use]
    pub fn after(&self, index: usize) -> String {
        // The last row's is the end cursor; past the rows kept (a first page made without
        // `edges`), the end cursor too.
        if index + 1 >= self.keys.len()
            && let Some(end) = &self.end
        {
            return end.clone();
        }
        let (position, above) = self.position_after(index);
        self.encode(position, above)
    }

    /// The cursor after the page's last row (Relay's `endCursor`); `None` for an empty page.
    #[must_use]
    pub fn end(&self) -> Option<&str> {
        self.end.as_deref()
    }

    /// The next page's token (AIP-158's `next_page_token`); `None` on the last page.
    #[must_use]
    pub fn next(&self) -> Option<&str> {
        self.end().filter(|_| self.has_next)
    }

    /// Whether another page follows (Relay's `hasNextPage`).
    #[must_use]
    pub fn has_next(&self) -> bool {
        self.has_next
    }

    /// The first page's count, which every later page repeats.
    #[must_use]
    pub fn count(&self) -> (i64, Option<i64>) {
        (self.count, self.count_cap)
    }

    /// The position after row `index`, with the hint a resume from there uses: the rows
    /// above it on a first page read from the top, else the page's own starting hint
    /// (which lands above every row of the page, so a resume skips what it re-reads).
    fn position_after(&self, index: usize) -> (Position, Option<u32>) {
        let mut position = self.start.clone();
        for (at, id, unplaced) in &self.keys[..=index] {
            position.advance_to(*at, id, *unplaced);
        }
        let above = if self.from_top {
            Some(walker::rows_above(
                &position,
                self.keys[..=index].iter().map(|k| k.0),
            ))
        } else {
            self.hint
        };
        (position, above)
    }

    fn encode(&self, next: Position, above: Option<u32>) -> String {
        cursor::encode_page(
            &self.q,
            &PageToken {
                next,
                above,
                count: self.count,
                count_cap: self.count_cap,
                density: self.density,
            },
        )
    }
}

/// Rows per day on a page read newest first: what sizes the next page's window.
fn density(times: impl ExactSizeIterator<Item = Instant> + DoubleEndedIterator + Clone) -> f32 {
    let rows = times.len();
    let (Some(top), Some(last)) = (times.clone().next(), times.last()) else {
        return 0.0;
    };
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        reason = "an estimate"
    )]
    let per_day = {
        let seconds = (top.0 - last.0).max(1) as f64;
        (rows as f64 / (seconds / 86_400.0)) as f32
    };
    per_day
}

/// A page read with a token: its rows, newest first, and its cursors.
#[derive(Debug)]
pub struct CursorPage {
    pub rows: Vec<Row>,
    pub cursors: PageCursors,
}

/// Reads the page after `token` for the compiled `q`.
pub(crate) async fn after(
    source: &PageSource,
    call: &CallContext,
    q: String,
    limit: i32,
    token: PageToken,
) -> Result<CursorPage, Error> {
    let target = usize::try_from(if limit == 0 { DEFAULT_PAGE_SIZE } else { limit }).unwrap_or(0);
    let from = (token.next.clone(), token.above);
    let mut walker = Walker::new(source.clone(), q.clone(), MAX_CALL, Some(from))
        .with_density(f64::from(token.density));
    let mut rows: Vec<Row> = Vec::new();
    let (mut asked, mut reread) = (0, 0);
    while rows.len() < target {
        let remaining = target - rows.len();
        // A call of 100 rows that fell short by what it re-read: no call for those alone.
        if asked >= MAX_CALL && remaining <= reread {
            break;
        }
        // A call re-reads the last row above the position and the rows delivered at it.
        reread = 1 + walker.next.seen.len();
        asked = i32::try_from(remaining + reread)
            .unwrap_or(MAX_CALL)
            .min(MAX_CALL);
        walker.set_page_size(asked);
        match walker.next_page(call).await? {
            Some(batch) => rows.extend(batch),
            None => break,
        }
    }
    let cut = rows.len() > target;
    rows.truncate(target);
    let mut keys = Vec::with_capacity(rows.len());
    let mut end = token.next.clone();
    for row in &rows {
        end.advance(row);
        keys.push((instant(&row.time), row.id.clone(), row.unplaced.is_some()));
    }
    let above = if cut {
        walker.above_at(&end)
    } else {
        walker.above()
    };
    let has_next = cut || walker.has_more(call).await?;
    #[allow(clippy::cast_possible_truncation, reason = "an estimate")]
    let density = walker.density() as f32;
    let mut cursors = PageCursors {
        q,
        start: token.next,
        hint: token.above,
        from_top: false,
        count: token.count,
        count_cap: token.count_cap,
        density: if density > 0.0 {
            density
        } else {
            token.density
        },
        keys,
        end: None,
        has_next,
    };
    if !rows.is_empty() {
        cursors.end = Some(cursors.encode(end, above));
    }
    Ok(CursorPage { rows, cursors })
}
