//! The walker: a walk over Coder's pages that delivers every row exactly once, whatever
//! Coder does meanwhile, at a cost to Coder's database of a few rows per row delivered.
//! Exports walk it from the top; watches use it to read what is newer than their position.
//!
//! Coder orders by `time` only. Rows recorded during a walk arrive at the top and push every
//! offset down; rows with equal times come back in a different order on every call. The
//! walker therefore never trusts an offset to name a row. It remembers a [`Position`] (the
//! oldest time delivered and which rows at exactly that time were delivered) and asks for each
//! page so that it starts on an *anchor*, a row strictly newer than that time. Everything at or
//! below the position then lies inside or after the page, ties included, so each row is either
//! recognised as delivered or delivered now.
//!
//! Coder pages with `OFFSET`, which its database walks row by row, and counts matching rows
//! (up to 2,001) with every page: paging down a whole trail by offset costs it O(N²). So the
//! walker reads the trail through *windows*, `date_from:A date_to:E` in front of the caller's
//! own query, that slide down the trail with the position and hold about a page below it.
//! Coder's `date_to:E` ends at E 23:59:59.000000, so a window ends on the position's day, or on
//! the day after when the position lies in its day's last fractional second: no row between
//! the position and the window's first day is left out. The offset inside a window is the
//! number of rows already read between its top and the position, which the walker keeps for
//! the day or two above the position. An empty window is followed by one `limit=1` probe
//! below it, so a long empty stretch costs one call (more only when the probe lands on rows
//! already delivered), and the end of the trail is where the probe finds nothing. Where
//! windows cannot be used (a `q` with a date key twice or a bad date, which Coder refuses
//! anyway) or do not take effect (a server that ignores dates), the walk pages
//! the whole trail by offset instead, as before.
//!
//! A group of ties wider than a page cannot be got past with any anchor. It is read in
//! parts, one `action:` each, whose counts must add up to its window's; where that cannot be
//! shown, with one page large enough to hold it (logged). No other call asks for more than
//! 100 rows.

use std::{
    collections::{BTreeMap, HashSet},
    fmt::Write as _,
};

use chrono::{DateTime, Days, NaiveDate};

use crate::{
    call::CallContext,
    cursor::{Instant, Position, fnv64, instant},
    error::Error,
    model::{CountedRows, Row, Timestamp, Toward},
    query::{DateSplit, split_dates},
    source::{DEFAULT_PAGE_SIZE, PageSource, Retry},
    upstream::PageRequest,
};

/// The largest page the walker asks for to get past a group of rows with one time. Coder
/// accepts any limit today; a page this size is about 20 MB of JSON.
pub(crate) const MAX_TIE_PAGE: i32 = 10_000;
/// The most rows any other call of a walk asks for: Coder is about to bound `limit` to
/// 1..100 (coder-audit-api.md, corrections).
pub(crate) const MAX_CALL: i32 = DEFAULT_PAGE_SIZE;
/// Passing failures in a row a walk rides out before it gives up (a resumable error).
const WALK_RETRIES: u32 = 6;
/// The widest window, in days: about three years.
const MAX_SPAN_DAYS: u64 = 1024;

/// The first instant `date_from:day` admits.
fn day_start(day: NaiveDate) -> Instant {
    let seconds = day
        .and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp());
    (seconds, 0)
}

/// The last instant `date_to:day` admits: 23:59:59.000000, Coder adding 23:59:59 to the day.
fn day_end(day: NaiveDate) -> Instant {
    let (start, _) = day_start(day);
    (start + 86_399, 0)
}

fn day_of(at: Instant) -> NaiveDate {
    DateTime::from_timestamp(at.0, at.1).map_or(NaiveDate::MIN, |t| t.date_naive())
}

/// The day a window must end on to hold `at`: its own, or the next when `at` lies in its
/// day's last fractional second, past what `date_to:` of its own day admits.
#[must_use]
pub(crate) fn end_day(at: Instant) -> NaiveDate {
    let day = day_of(at);
    if at > day_end(day) {
        day.succ_opt().unwrap_or(day)
    } else {
        day
    }
}

/// How many of `times` (instants of rows read, newest first or in any order) lie above
/// `next` inside the window `next`'s day ends: the offset hint of an export cursor.
#[must_use]
pub(crate) fn rows_above(next: &Position, times: impl IntoIterator<Item = Instant>) -> u32 {
    let Some(at) = next.at else { return 0 };
    let top = day_end(end_day(at));
    let count = times.into_iter().filter(|&t| t > at && t <= top).count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// How the walk asks for its pages.
#[derive(Debug)]
enum Plan {
    /// Through date windows in front of the caller's query, within the caller's own bounds.
    Windows(DateSplit),
    /// By offset over the whole trail, the caller's query as it is.
    Offset,
}

/// One call's window: `date_from`/`date_to`, `None` where unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

impl Window {
    fn holds(self, at: Instant) -> bool {
        self.from.is_none_or(|d| at >= day_start(d)) && self.to.is_none_or(|d| at <= day_end(d))
    }
}

/// Pages through Coder's order from a position downwards; see the module documentation.
#[derive(Debug)]
pub(crate) struct Walker {
    pub(crate) source: PageSource,
    /// The caller's compiled query, which cursors are bound to.
    pub(crate) q: String,
    plan: Plan,
    page_size: i32,
    limit: i32,
    /// By offset: where the next page starts (on an anchor, or at the top). By windows: the
    /// first window's, from a resumed cursor, used once.
    offset: Option<u32>,
    /// The oldest delivered row's time, and the rows delivered at it.
    pub(crate) next: Position,
    /// Rows read at or above the position, up to the top of its window, by time: how far
    /// below a window's top the position lies.
    known: BTreeMap<Instant, HashSet<u64>>,
    /// Rows above a resumed position that the walk skipped by offset and never read: the
    /// day the window they were counted in ends, and how many (its hint, less the row the
    /// first call re-reads). They count as known while windows end on that day.
    base: Option<(NaiveDate, u32)>,
    /// Set by a probe below an empty window: the day the next window ends on, as nothing
    /// lies between its start and the position.
    cover: Option<NaiveDate>,
    /// Rows per day where the walk stands, for the next window's width; 0 before the first
    /// page.
    density: f64,
    /// A time whose whole group of rows was read part by part ([`Walker::split_ties`]):
    /// while the walk stands on it, the next page starts past the group.
    whole_group: Option<Instant>,
    /// What the last call of the walk proper (not a probe) saw: whether rows lie below it.
    last: Option<LastCall>,
    done: bool,
}

/// A call's answer as far as telling whether rows lie below it: Coder's count of the call's
/// query against the rows up to the call's last (its offset plus its rows).
#[derive(Debug, Clone, Copy)]
struct LastCall {
    count: i64,
    count_cap: Option<i64>,
    read: u64,
    /// The window's first day; `None` for a call without a lower bound of its own.
    from: Option<NaiveDate>,
}

impl LastCall {
    /// A page read at `offset` in a window from `from` (or in the whole query).
    fn of(page: &CountedRows, offset: u32, from: Option<NaiveDate>) -> Self {
        Self {
            count: page.count,
            count_cap: page.count_cap,
            read: u64::from(offset) + page.rows.len() as u64,
            from,
        }
    }
}

impl Walker {
    /// A walk from `from` (a position and how many rows lie above it in its window, when
    /// known), or from the top. `q` is the compiled query.
    pub(crate) fn new(
        source: PageSource,
        q: String,
        page_size: i32,
        from: Option<(Position, Option<u32>)>,
    ) -> Self {
        let (next, above) = from.unwrap_or_default();
        let plan = match split_dates(&q) {
            Some(split) if !source.limits().offset_walk => Plan::Windows(split),
            _ => Plan::Offset,
        };
        let offset = match plan {
            Plan::Windows(_) => above,
            // A resumed position without an offset from the top: start at the top and skip.
            Plan::Offset => Some(0),
        };
        let base = match (&plan, next.at, above) {
            (Plan::Windows(_), Some(at), Some(above)) => {
                Some((end_day(at), above.saturating_sub(1)))
            }
            _ => None,
        };
        Self {
            source,
            q,
            plan,
            page_size: page_size.min(MAX_CALL),
            limit: page_size.min(MAX_CALL),
            offset,
            next,
            known: BTreeMap::new(),
            base,
            cover: None,
            density: 0.0,
            whole_group: None,
            last: None,
            done: false,
        }
    }

    /// Starts the window estimate from `density` rows per day (a page token's), as a walk
    /// that had measured it would.
    pub(crate) fn with_density(mut self, density: f64) -> Self {
        self.density = density;
        self
    }

    /// Rows per day where the walk stands, as measured so far (0 before a page).
    pub(crate) fn density(&self) -> f64 {
        self.density
    }

    /// Rows the next call asks for (at most 100), and the width of its window.
    pub(crate) fn set_page_size(&mut self, rows: i32) {
        self.page_size = rows.clamp(1, MAX_CALL);
        self.limit = self.page_size;
    }

    /// Walks no further down than the start of `day` (a watch's catch-up, which needs only
    /// what is newer than its position).
    pub(crate) fn down_to(mut self, day: NaiveDate) -> Self {
        if let Plan::Windows(split) = &mut self.plan {
            split.from = Some(split.from.map_or(day, |from| from.max(day)));
        }
        self
    }

    /// The rows the walk has read above its position inside the window its day ends (an
    /// export cursor's hint); `None` when it walks by offset.
    pub(crate) fn above(&self) -> Option<u32> {
        self.above_at(&self.next)
    }

    /// [`Walker::above`] for a position the walk has passed, inside the rows it delivered:
    /// what a cursor to that position hints.
    pub(crate) fn above_at(&self, position: &Position) -> Option<u32> {
        match self.plan {
            Plan::Windows(_) => {
                let read = rows_above(
                    position,
                    self.known
                        .iter()
                        .flat_map(|(at, ids)| std::iter::repeat_n(*at, ids.len())),
                );
                let skipped = position.at.map_or(0, |at| self.skipped_in(end_day(at)));
                Some(read.saturating_add(skipped))
            }
            Plan::Offset => None,
        }
    }

    /// The rows above a resumed position that the walk skipped, if a window ending on `to`
    /// is the one they were counted in.
    fn skipped_in(&self, to: NaiveDate) -> u32 {
        self.base
            .filter(|(day, _)| *day == to)
            .map_or(0, |(_, rows)| rows)
    }

    /// Whether any row lies below the position: from the last call's count when it tells,
    /// else from one probe below its window (`limit=1`).
    pub(crate) async fn has_more(&mut self, call: &CallContext) -> Result<bool, Error> {
        if self.done {
            return Ok(false);
        }
        let Some(last) = self.last else {
            return Ok(true);
        };
        let exact = crate::model::exact_count(last.count, last.count_cap);
        let counted = u64::try_from(last.count).unwrap_or(0);
        if counted > last.read || !exact {
            return Ok(true);
        }
        match (&self.plan, last.from) {
            (Plan::Windows(split), Some(from)) if split.from.is_none_or(|floor| from > floor) => {
                self.probe_below(from, call).await?;
                Ok(!self.done)
            }
            _ => Ok(false),
        }
    }

    /// The rows read strictly above the position (or at it too, `with_ties`) that a window
    /// ending on `to` holds: where in that window the walk stands.
    fn known_in(&self, to: NaiveDate, with_ties: bool) -> u32 {
        let Some(at) = self.next.at.filter(|at| *at <= day_end(to)) else {
            return 0;
        };
        let lower = if with_ties {
            std::ops::Bound::Included(at)
        } else {
            std::ops::Bound::Excluded(at)
        };
        let count: usize = self
            .known
            .range((lower, std::ops::Bound::Included(day_end(to))))
            .map(|(_, ids)| ids.len())
            .sum();
        u32::try_from(count)
            .unwrap_or(u32::MAX)
            .saturating_add(self.skipped_in(to))
    }

    /// Whether a page of `rows` rows filled the call: a short page ends a window. A page
    /// asked for more than 100 rows that holds exactly 100 counts as full, so a Coder that
    /// caps pages at 100 without saying so cannot end a walk early.
    fn full(&self, rows: usize) -> bool {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        rows >= limit || (self.limit > MAX_CALL && rows == MAX_CALL as usize)
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
            let step = match self.plan {
                Plan::Windows(_) => self.window_step(call).await,
                Plan::Offset => self.offset_step(call).await,
            };
            match step {
                Ok(Some(rows)) => return Ok(Some(rows)),
                Ok(None) => retry.reset(),
                Err(error) => self.source.retry(&mut retry, call, error).await?,
            }
        }
    }

    /// One call of a windowed walk: delivered rows, or `None` to call again.
    async fn window_step(&mut self, call: &CallContext) -> Result<Option<Vec<Row>>, Error> {
        let Plan::Windows(split) = &self.plan else {
            return Ok(None);
        };
        let Some(window) = self.window(split) else {
            self.done = true;
            return Ok(None);
        };
        // Past a group read whole, the page starts on its last row; else on the last row
        // above the position, so that the group at the position is read from its start.
        let whole = self.next.at.is_some() && self.whole_group == self.next.at;
        let above = match (self.offset.take(), window.to) {
            (Some(above), _) => above,
            (None, Some(to)) => self.known_in(to, whole),
            (None, None) => 0,
        };
        let q = windowed(split, window);
        let offset = above.saturating_sub(1);
        let request = PageRequest {
            q: &q,
            limit: self.limit,
            offset: i32::try_from(offset).unwrap_or(i32::MAX),
        };
        let page = self.fetch(call, request).await?;
        self.last = Some(LastCall::of(&page, offset, window.from));
        let rows = page.rows;
        if rows.iter().any(|row| !window.holds(instant(&row.time))) {
            tracing::warn!(
                window = %q,
                "Coder returned rows outside a date window; walking this trail by offset"
            );
            self.fall_back();
            return Ok(None);
        }
        let anchored = rows.first().is_some_and(|first| {
            self.next.at.is_some_and(|at| {
                let time = instant(&first.time);
                time > at || (whole && time == at)
            })
        });
        if above > 0 && !anchored {
            // Rows above the position went away (retention, or a hint from a cursor that no
            // longer holds): count them again from the window's top.
            self.known.clear();
            self.base = None;
            self.offset = Some(0);
            return Ok(None);
        }
        let full = self.full(rows.len());
        if full && !Self::anchors(&rows) {
            let tie = rows.last().map(|row| instant(&row.time));
            if self.limit < MAX_CALL {
                self.widen()?;
                return Ok(None);
            }
            let split = split.clone();
            if let Some(tie) = tie
                && let Some(group) = self.split_ties(&split, tie, call).await?
            {
                let (delivered, _) = self.take(group);
                self.whole_group = Some(tie);
                return Ok(Some(delivered).filter(|rows| !rows.is_empty()));
            }
            self.widen()?;
            return Ok(None);
        }
        let old = self.next.at;
        let (delivered, new) = self.take(rows);
        self.measure(old, &delivered, (!full).then_some(window.from).flatten());
        if full {
            if new == 0 {
                // Nothing this call had not read before: a group of ties no page of this size
                // gets past. Read the same place again with a larger page.
                self.widen()?;
            } else {
                self.limit = self.page_size;
            }
        } else {
            self.limit = self.page_size;
            match window.from {
                // The caller's own bounds, or the whole trail: the walk is over.
                None => self.done = true,
                Some(from) if split_from(&self.plan).is_some_and(|floor| from <= floor) => {
                    self.done = true;
                }
                // Nothing below the position in the whole window: find the next row below.
                Some(from) if delivered.is_empty() => self.probe_below(from, call).await?,
                Some(_) => {}
            }
        }
        Ok(Some(delivered).filter(|rows| !rows.is_empty()))
    }

    /// Updates the rows-per-day estimate from a page: the rows it delivered below `old`,
    /// spread down to its last row, or (a page that ran out) to the window's first day.
    fn measure(&mut self, old: Option<Instant>, delivered: &[Row], ran_out_at: Option<NaiveDate>) {
        let (Some(top), Some(last)) = (
            old.or_else(|| delivered.first().map(|r| instant(&r.time))),
            delivered.last(),
        ) else {
            return;
        };
        let bottom = ran_out_at.map_or_else(|| instant(&last.time), day_start);
        #[allow(clippy::cast_precision_loss, reason = "a rough rate")]
        let days = ((top.0 - bottom.0) as f64 / 86_400.0).max(1.0 / 86_400.0);
        #[allow(clippy::cast_precision_loss, reason = "a rough rate")]
        let rate = delivered.len() as f64 / days;
        self.density = if self.density <= 0.0 {
            rate
        } else {
            f64::midpoint(self.density, rate)
        };
    }

    /// The window of the next call: from the position's day (or a probe's cover) down to
    /// where about a page lies below the position; `None` when the walk is below the
    /// caller's `date_from`.
    fn window(&self, split: &DateSplit) -> Option<Window> {
        let Some(at) = self.next.at else {
            // From the top: the caller's own bounds, nothing more.
            return Some(Window {
                from: split.from,
                to: split.to,
            });
        };
        let mut to = self.cover.unwrap_or_else(|| end_day(at));
        if let Some(cap) = split.to {
            to = to.min(cap);
        }
        // Rows wanted below the position: a page and a tenth, so most pages come back full
        // (a short one costs the next window its whole top day as offset).
        let wanted = f64::from(self.page_size) * 1.1 / self.density.max(1e-3);
        let below = match self.cover {
            // The cover's day is all above the position: whole days below it.
            Some(_) => wanted.max(1.0),
            // The rest of the position's own day counts.
            None => {
                wanted
                    - f64::from(u32::try_from(at.0 - day_start(day_of(at)).0).unwrap_or(0))
                        / 86_400.0
            }
        };
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "clamped to 0..=MAX_SPAN_DAYS"
        )]
        let below = (below.ceil().max(0.0) as u64).min(MAX_SPAN_DAYS);
        // Counted from the cover, or from the position's own day (which a window ending the
        // day after, for a position in its day's last second, must still hold).
        let mut from = self
            .cover
            .unwrap_or_else(|| day_of(at))
            .min(to)
            .checked_sub_days(Days::new(below))
            .unwrap_or(NaiveDate::MIN);
        if let Some(floor) = split.from {
            from = from.max(floor);
        }
        (from <= to && self.cover.is_none_or(|c| from < c)).then_some(Window {
            from: Some(from),
            to: Some(to),
        })
    }

    /// One page, its rows placed in Coder's order from the position down (see
    /// [`Row::place`]).
    async fn fetch(
        &self,
        call: &CallContext,
        request: PageRequest<'_>,
    ) -> Result<CountedRows, Error> {
        let mut page = self.source.counted_rows(call, request).await?;
        let bound = self.next.at.map(|(s, n)| Timestamp::from_unix(s, n));
        Row::place(&mut page.rows, Toward::Older, bound);
        Ok(page)
    }

    /// Sorts a page into rows to deliver and rows read before, moving the position and
    /// remembering what was read; returns the delivered rows and how many rows were new to
    /// the walk (delivered, or read above the position for the first time).
    fn take(&mut self, rows: Vec<Row>) -> (Vec<Row>, usize) {
        let mut delivered = Vec::new();
        let mut new = 0;
        for row in rows {
            let at = instant(&row.time);
            let id = fnv64(row.id.as_bytes());
            let first_read = self.known.entry(at).or_default().insert(id);
            if self.next.is_after(&row) {
                self.next.advance(&row);
                delivered.push(row);
                new += 1;
            } else if first_read {
                new += 1;
            }
        }
        if let Some(at) = self.next.at {
            // Below the covered day's start, the position's own day ends the window again.
            if self.cover.is_some_and(|day| at < day_start(day)) {
                self.cover = None;
            }
            let top = day_end(end_day(at));
            self.known.retain(|t, _| *t <= top);
        }
        (delivered, new)
    }

    /// Asks for the newest row below the day `from` (`limit=1`); the walk continues on its
    /// day, or ends when there is none.
    async fn probe_below(&mut self, from: NaiveDate, call: &CallContext) -> Result<(), Error> {
        let Plan::Windows(split) = &self.plan else {
            return Ok(());
        };
        let probe = Window {
            from: split.from,
            to: Some(from),
        };
        let q = windowed(split, probe);
        // Every row at or above the position in the probe's range is delivered: skip them.
        // Should the probe still land on one (rows the walk did not count, after a resume),
        // it reads on past them a page at a time.
        let mut offset = self.known_in(from, true);
        let mut limit = 1;
        loop {
            let request = PageRequest {
                q: &q,
                limit,
                offset: i32::try_from(offset).unwrap_or(i32::MAX),
            };
            let rows = self.fetch(call, request).await?.rows;
            if rows.iter().any(|row| !probe.holds(instant(&row.time))) {
                tracing::warn!(window = %q, "Coder returned a row outside a date window; walking this trail by offset");
                self.fall_back();
                return Ok(());
            }
            if let Some(row) = rows.iter().find(|row| self.next.is_after(row)) {
                // Nothing lies between that row and the position: the next window ends on
                // the day after the row's (its last second included) and goes a page below.
                let day = day_of(instant(&row.time));
                self.cover = Some(day.succ_opt().unwrap_or(day).min(from));
                return Ok(());
            }
            if rows.len() < usize::try_from(limit).unwrap_or(usize::MAX) {
                self.done = true;
                return Ok(());
            }
            offset = offset.saturating_add(u32::try_from(rows.len()).unwrap_or(u32::MAX));
            limit = MAX_CALL;
        }
    }

    /// Leaves windows for the offset walk, from the top (skipping what was delivered).
    fn fall_back(&mut self) {
        self.plan = Plan::Offset;
        self.offset = Some(0);
        self.known.clear();
        self.base = None;
        self.limit = self.page_size;
    }

    /// Whether a full page holds a row, after its first, strictly newer than its last: then
    /// the group of rows at the last row's time starts inside the page, and the next page,
    /// starting above the position, reads that group whole. Otherwise the group may have
    /// begun before the page or go on past it, rows tied with it may still be recorded (at
    /// the top of the trail), and only a larger page tells.
    fn anchors(rows: &[Row]) -> bool {
        let Some(last) = rows.last().map(|row| instant(&row.time)) else {
            return true;
        };
        rows.iter()
            .rposition(|row| instant(&row.time) > last)
            .is_some_and(|i| i > 0)
    }

    /// Reads the same place again with a larger page, or gives up at [`MAX_TIE_PAGE`].
    fn widen(&mut self) -> Result<(), Error> {
        if self.limit >= MAX_TIE_PAGE {
            return Err(Error::UnwalkableTies {
                time: self
                    .next
                    .at
                    .and_then(|(s, n)| DateTime::from_timestamp(s, n))
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
                limit: MAX_TIE_PAGE,
            });
        }
        if self.limit < MAX_CALL {
            self.limit = MAX_CALL;
            return Ok(());
        }
        self.limit = self.limit.saturating_mul(2).min(MAX_TIE_PAGE);
        tracing::warn!(
            limit = self.limit,
            "a group of rows with one time fills a page of 100 and no filter splits it; reading it with a larger page"
        );
        Ok(())
    }

    /// Reads the whole group of rows at `tie` (delivered ones included, so the walk knows
    /// its size) that fills a page of 100 part by part: in the
    /// window of the group's day, one `action:` per action Coder records, each part read up
    /// to the first row below the group. The parts' counts must add up to the window's
    /// (one more call), which proves no row has another action. `None` when that cannot be
    /// shown (the caller's query names an action, a count is capped, a part is itself wider
    /// than a page).
    async fn split_ties(
        &self,
        split: &DateSplit,
        tie: Instant,
        call: &CallContext,
    ) -> Result<Option<Vec<Row>>, Error> {
        if has_key(&split.rest, "action") {
            return Ok(None);
        }
        let clamp = |day: NaiveDate| {
            let day = split.from.map_or(day, |from| day.max(from));
            split.to.map_or(day, |to| day.min(to))
        };
        let window = Window {
            from: Some(clamp(day_of(tie))),
            to: Some(clamp(end_day(tie))),
        };
        let whole = self
            .fetch(
                call,
                PageRequest {
                    q: &windowed(split, window),
                    limit: 1,
                    offset: 0,
                },
            )
            .await?;
        if !whole.exact_count() {
            return Ok(None);
        }
        let count = whole.count;
        let mut group = Vec::new();
        let mut ids = HashSet::new();
        let mut counted = 0;
        for action in crate::model::known::ACTIONS {
            let part = DateSplit {
                rest: format!("action:{} {}", action.value, split.rest),
                ..split.clone()
            };
            let q = windowed(&part, window);
            let mut offset = 0_i32;
            loop {
                let request = PageRequest {
                    q: &q,
                    limit: MAX_CALL,
                    offset,
                };
                let page = self.fetch(call, request).await?;
                if offset == 0 {
                    if !page.exact_count() {
                        return Ok(None);
                    }
                    counted += page.count;
                }
                let full = page.rows.len() >= MAX_CALL as usize;
                let next = page.rows.iter().rposition(|row| instant(&row.time) > tie);
                let below = page.rows.iter().any(|row| instant(&row.time) < tie);
                for row in page.rows {
                    if instant(&row.time) == tie && ids.insert(fnv64(row.id.as_bytes())) {
                        group.push(row);
                    }
                }
                if below || !full {
                    break;
                }
                // Still above or inside the group: go on from the last row above it, or give
                // up when this part's share of the group alone fills a page.
                match next {
                    Some(i) if i > 0 => offset += i32::try_from(i).unwrap_or(i32::MAX),
                    _ => return Ok(None),
                }
            }
        }
        if counted != count {
            tracing::warn!(
                counted,
                count,
                "the actions' counts do not add up to the window's: some rows have an action this gateway does not know"
            );
            return Ok(None);
        }
        Ok(Some(group))
    }

    /// One call of an offset walk over the whole trail: delivered rows, or `None` to call
    /// again.
    async fn offset_step(&mut self, call: &CallContext) -> Result<Option<Vec<Row>>, Error> {
        let offset = self.offset.unwrap_or(0);
        let request = PageRequest {
            q: &self.q,
            limit: self.limit,
            offset: i32::try_from(offset).unwrap_or(i32::MAX),
        };
        let page = self.fetch(call, request).await?;
        self.last = Some(LastCall::of(&page, offset, None));
        let rows = page.rows;
        if offset > 0 {
            let anchored = match (rows.first(), self.next.at) {
                (Some(first), Some(at)) => instant(&first.time) > at,
                _ => false,
            };
            if !anchored {
                // Rows above the position went away (retention), or the hint was off:
                // step back towards the top, where nothing can be missed.
                self.offset =
                    Some(offset.saturating_sub(u32::try_from(self.limit).unwrap_or(1).max(1)));
                return Ok(None);
            }
        }
        let full = self.full(rows.len());
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
            self.widen()?;
            return Ok(None);
        }
        let delivered: Vec<Row> = rows
            .into_iter()
            .zip(keep)
            .filter_map(|(row, keep)| keep.then_some(row))
            .collect();
        self.next = next;
        if full {
            self.offset = Some(offset + u32::try_from(anchor.unwrap_or(0)).unwrap_or(0));
            // A page of rows recorded since (all newer than the position) means Coder
            // records faster than this page size skips them: read larger pages until the
            // walk is past them, then return to the caller's size.
            if delivered.is_empty() {
                self.widen()?;
            } else {
                self.limit = self.page_size;
            }
        } else {
            self.done = true;
        }
        Ok(Some(delivered).filter(|rows| !rows.is_empty()))
    }
}

fn split_from(plan: &Plan) -> Option<NaiveDate> {
    match plan {
        Plan::Windows(split) => split.from,
        Plan::Offset => None,
    }
}

/// Whether `q` (Coder's language) has a term with `key`.
fn has_key(q: &str, key: &str) -> bool {
    q.split(' ').any(|element| {
        element
            .split_once(':')
            .is_some_and(|(k, _)| k.trim_matches('"').eq_ignore_ascii_case(key))
    })
}

/// The query for one window: its date terms in front of the caller's other terms, so an
/// unbalanced quote in those cannot swallow them.
fn windowed(split: &DateSplit, window: Window) -> String {
    let mut q = String::new();
    for (key, day) in [("date_from", window.from), ("date_to", window.to)] {
        if let Some(day) = day {
            let _ = write!(q, "{key}:{} ", day.format("%Y-%m-%d"));
        }
    }
    q.push_str(&split.rest);
    q.trim_end().to_owned()
}

/// Rows newer than `from`, oldest first: a walk from the top that stops at `from`, reading
/// no further down than `from`'s day. Holds the whole backlog, so it refuses one larger than
/// `max_rows`.
pub(crate) async fn rows_since(
    source: &PageSource,
    call: &CallContext,
    q: &str,
    from: &Position,
    max_rows: usize,
) -> Result<Vec<Row>, Error> {
    let mut walker = Walker::new(source.clone(), q.to_owned(), DEFAULT_PAGE_SIZE, None);
    if let Some(at) = from.at {
        walker = walker.down_to(day_of(at));
    }
    let mut newer = Vec::new();
    let floor = from.at.map(|(s, n)| Timestamp::from_unix(s, n));
    while let Some(mut rows) = walker.next_page(call).await? {
        // A watch meets an unreadable time from below, where its position comes from.
        Row::place(&mut rows, Toward::Newer, floor);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Instant {
        let t = DateTime::parse_from_rfc3339(text).expect("time");
        (t.timestamp(), t.timestamp_subsec_nanos())
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("day")
    }

    #[test]
    fn a_position_in_its_days_last_fractional_second_needs_the_next_day() {
        assert_eq!(end_day(at("2026-04-01T23:59:59Z")), day("2026-04-01"));
        assert_eq!(
            end_day(at("2026-04-01T23:59:59.000001Z")),
            day("2026-04-02")
        );
        assert_eq!(end_day(at("2026-04-01T23:59:59.7Z")), day("2026-04-02"));
        assert_eq!(end_day(at("2026-04-02T00:00:00Z")), day("2026-04-02"));
        assert_eq!(day_end(day("2026-04-01")), at("2026-04-01T23:59:59Z"));
    }

    #[test]
    fn rows_above_count_only_inside_the_positions_window() {
        let next = Position::new(Some(at("2026-04-01T23:59:59.7Z")), HashSet::new());
        let times = [
            at("2026-04-02T23:59:59.5Z"),
            at("2026-04-02T10:00:00Z"),
            at("2026-04-01T23:59:59.9Z"),
            at("2026-04-01T23:59:59.7Z"),
            at("2026-04-01T23:59:59.2Z"),
        ];
        assert_eq!(rows_above(&next, times), 2);
    }

    #[test]
    fn windows_put_their_dates_in_front() {
        let split = split_dates(r#"resource_target:"open action:login"#).expect("splits");
        let q = windowed(
            &split,
            Window {
                from: Some(day("2026-03-30")),
                to: Some(day("2026-04-01")),
            },
        );
        assert_eq!(
            q,
            r#"date_from:2026-03-30 date_to:2026-04-01 resource_target:"open action:login"#
        );
    }
}
