//! The demo's database: a compact trail sorted by time, and the two queries Coder runs for
//! every page, with what each would walk.
//!
//! A row keeps the columns the search reads (ids, interned strings) and either its finished
//! JSON or, for a generated row of a deep trail, the generator state that makes it again, so
//! a million rows fit in about a hundred megabytes and JSON is encoded only for rows a page
//! returns. Rows are kept oldest first, so recording at the top is a push and a date window
//! is two binary searches.
//!
//! The cost model follows Coder's SQL (coder-audit-api.md §5): the page query walks matching
//! rows newest first from the newest one the filters admit (`date_to` included) through the
//! offset to the last row it returns; the count query walks matching rows until it has
//! `count_cap + 1` (or all of them, on servers before the cap).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{
    generate::{Clock, Event, Generator, Pace},
    search::AuditFilter,
    wire,
};

/// An interned string or table entry; `NONE` is "no value".
type Id = u32;
const NONE: Id = Id::MAX;

/// A row as the database holds it.
struct Row {
    time: DateTime<Utc>,
    id: Uuid,
    request_id: Uuid,
    resource_id: Uuid,
    organization: Id,
    resource_type: Id,
    action: Id,
    target: Id,
    build_reason: Id,
    user: Id,
    body: Body,
}

enum Body {
    /// The row's wire JSON, as served.
    Encoded(Box<[u8]>),
    /// A row of the opening trail, made again from the generator when a page returns it.
    Generated { index: u32, state: u64 },
}

/// What `username:` and `email:` compare.
struct UserColumns {
    username: Box<str>,
    email: Box<str>,
    deleted: bool,
}

/// The first page of a query and what both of Coder's queries walked for it.
pub(super) struct Answer {
    /// Row positions, in the order they are returned.
    rows: Vec<usize>,
    pub count: i64,
    pub page_rows_walked: u64,
    pub count_rows_walked: u64,
}

/// How the page and the count are asked for.
pub(super) struct Query<'a> {
    pub filter: &'a AuditFilter,
    /// The organisation an organisation-scoped caller may see.
    pub visible_organization: Option<Uuid>,
    /// Who `me` is.
    pub caller: &'a str,
    pub limit: usize,
    pub offset: usize,
    /// `None`: count exactly, as servers before the cap.
    pub count_cap: Option<i64>,
    /// Returns equal-time rows in a fresh order on every call, as Coder may.
    pub shuffle_ties: bool,
}

/// The trail.
pub(super) struct Trail {
    /// Oldest first.
    rows: Vec<Row>,
    strings: HashMap<Box<str>, Id>,
    users: Vec<UserColumns>,
    user_ids: HashMap<Uuid, Id>,
    /// Organisation ids with their names where known, for `organization:<name>`.
    organizations: Vec<(Uuid, Option<Box<str>>)>,
    generator: Generator,
    pace: Pace,
}

/// Trails of up to this many generated rows are encoded once at start: cheap pages for the
/// everyday demo and the benchmarks; deeper ones make a row's JSON when it is returned.
const ENCODED_AT_START: usize = 20_000;

impl Trail {
    /// `count` generated rows, newest at the generator's start time.
    pub(super) fn generated(count: usize, pace: Pace) -> Self {
        let mut trail = Self::empty(pace);
        let encode = count <= ENCODED_AT_START;
        let mut time = Generator::start();
        trail.rows.reserve_exact(count);
        for i in 0..count {
            let state = trail.generator.state();
            let event = trail
                .generator
                .event(i, &mut time, Clock::Back(pace), encode);
            let body = match &event.json {
                Some(json) => Body::Encoded(wire::to_vec(json).into_boxed_slice()),
                None => Body::Generated {
                    index: u32::try_from(i).unwrap_or(u32::MAX),
                    state,
                },
            };
            let row = trail.generated_row(&event, body);
            trail.rows.push(row);
        }
        trail.rows.reverse();
        trail
    }

    pub(super) fn empty(pace: Pace) -> Self {
        let generator = Generator::new();
        let mut trail = Self {
            rows: Vec::new(),
            strings: HashMap::new(),
            users: Vec::new(),
            user_ids: HashMap::new(),
            organizations: Vec::new(),
            generator,
            pace,
        };
        for (spec, user) in super::catalogue::USERS.iter().zip(
            trail
                .generator
                .users()
                .iter()
                .map(|u| u.id)
                .collect::<Vec<_>>(),
        ) {
            trail.user(user, spec.username, spec.email, spec.deleted);
        }
        for org in super::catalogue::ORGANIZATIONS {
            trail.organization(Uuid::from_u128(org.id), Some(org.name));
        }
        trail
    }

    fn intern(&mut self, text: &str) -> Id {
        if let Some(id) = self.strings.get(text) {
            return *id;
        }
        let id = Id::try_from(self.strings.len()).unwrap_or(NONE);
        self.strings.insert(text.into(), id);
        id
    }

    fn user(&mut self, id: Uuid, username: &str, email: &str, deleted: bool) -> Id {
        if let Some(index) = self.user_ids.get(&id) {
            return *index;
        }
        let index = Id::try_from(self.users.len()).unwrap_or(NONE);
        self.users.push(UserColumns {
            username: username.into(),
            email: email.into(),
            deleted,
        });
        self.user_ids.insert(id, index);
        index
    }

    fn organization(&mut self, id: Uuid, name: Option<&str>) -> Id {
        if let Some(index) = self.organizations.iter().position(|(o, _)| *o == id) {
            if let (Some(name), (_, slot @ None)) = (name, &mut self.organizations[index]) {
                *slot = Some(name.into());
            }
            return Id::try_from(index).unwrap_or(NONE);
        }
        self.organizations.push((id, name.map(Into::into)));
        Id::try_from(self.organizations.len() - 1).unwrap_or(NONE)
    }

    fn generated_row(&mut self, event: &Event, body: Body) -> Row {
        let organization = event.organization.map_or(Uuid::nil(), |o| {
            Uuid::from_u128(super::catalogue::ORGANIZATIONS[o].id)
        });
        Row {
            time: event.time,
            id: event.id,
            request_id: event.request_id,
            resource_id: event.resource_id,
            organization: self.organization(organization, None),
            resource_type: self.intern(event.resource_type),
            action: self.intern(event.action),
            target: self.intern(&event.resource_target),
            build_reason: event.build_reason.map_or(NONE, |r| self.intern(r)),
            user: event.user.map_or(NONE, |u| Id::try_from(u).unwrap_or(NONE)),
            body,
        }
    }

    /// Where a row at `time` goes: after every row at or before it, so among equal times
    /// the latest added is returned first.
    fn position_for(&self, time: DateTime<Utc>) -> usize {
        self.rows.partition_point(|r| r.time <= time)
    }

    /// Records the `i`-th event of the generator's mix at `time` (`tied`: at exactly the
    /// newest row's time), at the top of the trail.
    pub(super) fn record(&mut self, i: usize, time: DateTime<Utc>) {
        let mut time = time;
        let event = self.generator.event(i, &mut time, Clock::At, true);
        let json = event.json.as_ref().map(wire::to_vec).unwrap_or_default();
        let row = self.generated_row(&event, Body::Encoded(json.into_boxed_slice()));
        let at = self.position_for(row.time);
        self.rows.insert(at, row);
    }

    /// Adds one row given as Coder's wire JSON, at its time.
    ///
    /// # Errors
    /// Why the row cannot be placed: no readable `id` or `time`.
    pub(super) fn add(&mut self, raw: &[u8]) -> Result<(), String> {
        let json: Value = serde_json::from_slice(raw).map_err(|e| format!("not JSON: {e}"))?;
        let text = |key: &str| json.get(key).and_then(Value::as_str).unwrap_or_default();
        let uuid = |key: &str| Uuid::try_parse(text(key)).unwrap_or_default();
        let id = Uuid::try_parse(text("id")).map_err(|_| "no readable \"id\"".to_owned())?;
        let time = DateTime::parse_from_rfc3339(text("time"))
            .map_err(|_| "no readable RFC 3339 \"time\"".to_owned())?
            .with_timezone(&Utc);
        let organization_name = json
            .get("organization")
            .and_then(|o| o.get("name"))
            .and_then(Value::as_str);
        let organization = self.organization(uuid("organization_id"), organization_name);
        let user = match json.get("user") {
            Some(user @ Value::Object(_)) => {
                let field = |key: &str| user.get(key).and_then(Value::as_str).unwrap_or_default();
                let id = Uuid::try_parse(field("id")).unwrap_or_default();
                self.user(id, field("username"), field("email"), false)
            }
            _ => NONE,
        };
        let (resource_type, action) = (text("resource_type"), text("action"));
        let build_reason = json
            .get("additional_fields")
            .and_then(|a| a.get("build_reason"))
            .and_then(Value::as_str)
            .filter(|_| {
                resource_type == "workspace_build"
                    || (resource_type == "workspace" && action == "create")
            });
        let row = Row {
            time,
            id,
            request_id: uuid("request_id"),
            resource_id: uuid("resource_id"),
            organization,
            resource_type: self.intern(resource_type),
            action: self.intern(action),
            target: self.intern(text("resource_target")),
            build_reason: build_reason.map_or(NONE, |r| self.intern(r)),
            user,
            body: Body::Encoded(raw.trim_ascii().into()),
        };
        let at = self.position_for(time);
        self.rows.insert(at, row);
        Ok(())
    }

    /// Deletes the `count` oldest rows, as Coder's retention does; returns how many went.
    pub(super) fn remove_oldest(&mut self, count: usize) -> usize {
        let count = count.min(self.rows.len());
        self.rows.drain(..count);
        count
    }

    /// Serves the row with this id as `body` from now on, where the trail keeps it; whether
    /// there was one.
    pub(super) fn serve_as(&mut self, id: Uuid, body: &[u8]) -> bool {
        let Some(row) = self.rows.iter_mut().find(|r| r.id == id) else {
            return false;
        };
        row.body = Body::Encoded(body.into());
        true
    }

    /// Deletes the row with this id; whether there was one.
    pub(super) fn remove(&mut self, id: Uuid) -> bool {
        let before = self.rows.len();
        self.rows.retain(|r| r.id != id);
        self.rows.len() < before
    }

    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }

    /// The newest row's time.
    pub(super) fn newest(&self) -> Option<DateTime<Utc>> {
        self.rows.last().map(|r| r.time)
    }

    /// Every row's id and time, newest first.
    pub(super) fn ids_and_times(&self) -> impl Iterator<Item = (Uuid, DateTime<Utc>)> + '_ {
        self.rows.iter().rev().map(|r| (r.id, r.time))
    }

    /// An organisation's id by name, if `visible` (the caller's scope) allows it.
    pub(super) fn organization_named(&self, name: &str, visible: Option<Uuid>) -> Option<Uuid> {
        self.organizations
            .iter()
            .find(|(id, n)| n.as_deref() == Some(name) && visible.is_none_or(|v| v == *id))
            .map(|(id, _)| *id)
    }

    /// The page and the count for `query`, and what both walked.
    pub(super) fn answer(&self, query: &Query<'_>) -> Answer {
        let Some(admits) = self.matcher(query) else {
            return Answer {
                rows: Vec::new(),
                count: 0,
                page_rows_walked: 0,
                count_rows_walked: 0,
            };
        };
        let (lo, hi) = window(&self.rows, query.filter);
        let mut matches = (lo..hi).rev().filter(|&i| admits.matches(&self.rows[i]));
        let mut walked = 0_u64;
        // The run of skipped rows at the time of the last one, for shuffling ties.
        let mut skipped_ties: Vec<usize> = Vec::new();
        for _ in 0..query.offset {
            let Some(i) = matches.next() else { break };
            walked += 1;
            if skipped_ties
                .last()
                .is_some_and(|&last| self.rows[last].time != self.rows[i].time)
            {
                skipped_ties.clear();
            }
            skipped_ties.push(i);
        }
        let mut rows: Vec<usize> = matches.by_ref().take(query.limit).collect();
        walked += rows.len() as u64;
        let mut following = Vec::new();
        if query.shuffle_ties {
            while let Some(&last) = rows.last().or(skipped_ties.last()) {
                match matches.next() {
                    Some(i) if self.rows[i].time == self.rows[last].time => following.push(i),
                    Some(i) => {
                        following.push(i);
                        break;
                    }
                    None => break,
                }
            }
        }
        let cap = query.count_cap.map_or(u64::MAX, |cap| {
            u64::try_from(cap).unwrap_or(0).saturating_add(1)
        });
        let seen = walked + following.len() as u64;
        let count = if seen >= cap {
            cap
        } else {
            let rest = usize::try_from(cap - seen).unwrap_or(usize::MAX);
            seen + matches.take(rest).count() as u64
        };
        if query.shuffle_ties {
            rows = self.shuffled(&skipped_ties, rows, &following);
        }
        Answer {
            rows,
            count: i64::try_from(count).unwrap_or(i64::MAX),
            page_rows_walked: walked,
            count_rows_walked: count,
        }
    }

    /// The page with every group of equal times around it in a fresh order: rows may trade
    /// places with equal-time rows on neighbouring pages, as in Coder.
    fn shuffled(&self, before: &[usize], page: Vec<usize>, after: &[usize]) -> Vec<usize> {
        let Some(&first) = page.first() else {
            return page;
        };
        let time = |i: usize| self.rows[i].time;
        let before: Vec<usize> = before
            .iter()
            .copied()
            .filter(|&i| time(i) == time(first))
            .collect();
        let mut all: Vec<usize> = before.iter().copied().chain(page.iter().copied()).collect();
        all.extend(
            after
                .iter()
                .copied()
                .filter(|&i| page.last().is_some_and(|&last| time(i) == time(last))),
        );
        let mut start = 0;
        while start < all.len() {
            let run = all[start..]
                .iter()
                .take_while(|&&i| time(i) == time(all[start]))
                .count();
            fastrand::shuffle(&mut all[start..start + run]);
            start += run;
        }
        all.drain(before.len()..before.len() + page.len()).collect()
    }

    /// Appends the returned rows' JSON, comma-separated.
    pub(super) fn write_rows(&self, answer: &Answer, out: &mut Vec<u8>) {
        for (n, &i) in answer.rows.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            let row = &self.rows[i];
            match &row.body {
                Body::Encoded(json) => out.extend_from_slice(json),
                Body::Generated { index, state } => {
                    let json = self.generator.replay(
                        *index as usize,
                        *state,
                        row.time,
                        Clock::Replay(self.pace),
                    );
                    out.extend_from_slice(&wire::to_vec(&json));
                }
            }
        }
    }

    /// `query`'s filters as ids of this trail; `None` when a value names nothing here, so no
    /// row can match.
    fn matcher(&self, query: &Query<'_>) -> Option<Matcher> {
        let filter = query.filter;
        let string = |value: &Option<String>| match value {
            None => Some(NONE),
            Some(text) => self.strings.get(text.as_str()).copied(),
        };
        let organization = |id: Option<Uuid>| match id {
            None => Some(NONE),
            Some(id) => self
                .organizations
                .iter()
                .position(|(o, _)| *o == id)
                .and_then(|i| Id::try_from(i).ok()),
        };
        let username = filter
            .username
            .as_deref()
            .map(|name| if name == "me" { query.caller } else { name });
        let users = (username.is_some() || filter.email.is_some()).then(|| {
            self.users
                .iter()
                .map(|u| {
                    username.is_none_or(|name| !u.deleted && u.username.eq_ignore_ascii_case(name))
                        && filter.email.as_deref().is_none_or(|e| *u.email == *e)
                })
                .collect()
        });
        Some(Matcher {
            visible_organization: organization(query.visible_organization)?,
            organization: organization(filter.organization)?,
            request_id: filter.request_id,
            resource_id: filter.resource_id,
            target: string(&filter.resource_target)?,
            resource_type: string(&filter.resource_type)?,
            action: string(&filter.action)?,
            build_reason: string(&filter.build_reason)?,
            users,
        })
    }
}

/// The rows `date_from`/`date_to` admit, as a range of positions: from 00:00:00 of
/// `date_from` to 23:59:59.000000 of `date_to` (Coder adds 23:59:59 to the day, so later
/// fractions of that second are out), both UTC.
fn window(rows: &[Row], filter: &AuditFilter) -> (usize, usize) {
    let at = |date: NaiveDate, h, m, s| date.and_hms_opt(h, m, s).map(|t| t.and_utc());
    let lo = filter
        .date_from
        .and_then(|d| at(d, 0, 0, 0))
        .map_or(0, |from| rows.partition_point(|r| r.time < from));
    let hi = filter
        .date_to
        .and_then(|d| at(d, 23, 59, 59))
        .map_or(rows.len(), |to| rows.partition_point(|r| r.time <= to));
    (lo, hi.max(lo))
}

/// A query's filters as the trail's ids; `NONE` is "any".
struct Matcher {
    visible_organization: Id,
    organization: Id,
    request_id: Option<Uuid>,
    resource_id: Option<Uuid>,
    target: Id,
    resource_type: Id,
    action: Id,
    build_reason: Id,
    /// Which users `username:`/`email:` admit, by index.
    users: Option<Vec<bool>>,
}

impl Matcher {
    fn matches(&self, row: &Row) -> bool {
        let is = |want: Id, have: Id| want == NONE || want == have;
        is(self.visible_organization, row.organization)
            && is(self.organization, row.organization)
            && is(self.resource_type, row.resource_type)
            && is(self.action, row.action)
            && is(self.target, row.target)
            && is(self.build_reason, row.build_reason)
            && self.request_id.is_none_or(|id| id == row.request_id)
            && self.resource_id.is_none_or(|id| id == row.resource_id)
            && self.users.as_ref().is_none_or(|users| {
                row.user != NONE && users.get(row.user as usize).copied().unwrap_or(false)
            })
    }
}
