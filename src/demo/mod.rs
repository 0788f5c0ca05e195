//! A built-in Coder audit API: what the gateway serves when no `--coder-url` is given, and
//! the upstream the integration tests run against.
//!
//! It behaves like the reference (coder-audit-api.md), not like the gateway's assumptions:
//! Coder's token sources and 401/403 bodies, its `limit`/`offset`/`after_id` parsing and error
//! texts, the `q` language with its exact validation messages, organisation scoping, the
//! capped `count` with `count_cap` (or the older exact count), newest-first order without a
//! tiebreaker, and Go's JSON encoding (`<`, `>`, `&` escaped). The gateway talks to it over
//! loopback HTTP through the same client it uses for a real Coder.

mod data;
pub mod search;
mod wire;

use std::{
    collections::VecDeque,
    io,
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use uuid::Uuid;

use crate::{error::Validation, query::go_quote};

/// The demo's site-wide owner token, printed at start-up and pre-filled in `GraphiQL`.
pub const DEMO_TOKEN: &str = "demoowner0-DemoOwnerSecret0000001";
/// A site-wide auditor.
pub const DEMO_AUDITOR_TOKEN: &str = "demoaudit0-DemoAuditorSecret00002";
/// An auditor of the `platform` organisation only: sees that organisation's rows.
pub const DEMO_ORG_AUDITOR_TOKEN: &str = "demoorgadm-DemoOrgAuditSecret0003";
/// A plain member: may not read the audit log (403).
pub const DEMO_MEMBER_TOKEN: &str = "demomember-DemoMemberSecret000004";
/// An expired key (401).
pub const DEMO_EXPIRED_TOKEN: &str = "demoexpire-DemoExpiredSecret00005";
/// A key of a suspended user (401).
pub const DEMO_SUSPENDED_TOKEN: &str = "demosuspnd-DemoSuspendedSecret006";

/// How the demo behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoConfig {
    /// Rows in the trail at start.
    pub rows: usize,
    /// Records a new row this often (at the top, like real events), so that watches have
    /// something to show; `None` keeps the trail as it is.
    pub new_row_every: Option<Duration>,
    /// Returns rows with equal times in a new random order on every call, as Coder (which
    /// orders by time alone) may.
    pub shuffle_ties: bool,
    /// `Some(cap)`: current servers, `count` stops at `cap + 1` and `count_cap` is sent.
    /// `None`: older servers, an exact `count` and no `count_cap`.
    pub count_cap: Option<i64>,
    /// Added to every audit answer. The demo answers from memory, far faster than a real
    /// Coder querying its database; benchmarks set this to see the gateway against a
    /// realistic upstream.
    pub service_time: Duration,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            rows: data::DEFAULT_ROWS,
            new_row_every: None,
            shuffle_ties: false,
            count_cap: Some(2000),
            service_time: Duration::ZERO,
        }
    }
}

enum Scope {
    SiteWide,
    Organization(Uuid),
    NoAuditAccess,
}

struct ApiKey {
    token: &'static str,
    user: usize,
    scope: Scope,
    expired_at: Option<&'static str>,
}

struct Demo {
    config: DemoConfig,
    data: data::Dataset,
    /// Newest first; grows at the front while the demo runs.
    trail: RwLock<VecDeque<Stored>>,
    generator: Mutex<data::Generator>,
    keys: Vec<ApiKey>,
    /// Audit requests answered, for tests that count what the gateway costs Coder.
    calls: AtomicU64,
    /// A status every audit request answers with while set, for outage tests.
    failure: Mutex<Option<(StatusCode, Option<u64>)>>,
    /// Rows recorded before answering each audit request, for tests of paging under churn.
    churn: AtomicU64,
}

/// A row of the trail: the columns filters read, and its wire JSON, encoded once.
struct Stored {
    row: data::Row,
    encoded: Box<[u8]>,
}

impl Stored {
    fn new(mut row: data::Row) -> Self {
        let encoded = wire::to_vec(&std::mem::take(&mut row.json)).into_boxed_slice();
        Self { row, encoded }
    }
}

/// Drives a running demo from a test or from its own clock: records rows, injects failures,
/// and tells how often the audit endpoint was called.
#[derive(Clone)]
pub struct DemoHandle(Arc<Demo>);

impl DemoHandle {
    /// Records `count` new events at the top of the trail, each newer than every row before
    /// it; with `tied`, all at exactly the newest existing row's time instead (ties with the
    /// rows already at the top).
    pub fn record(&self, count: usize, tied: bool) {
        self.0.record(count, tied);
    }

    /// Records `rows` new rows before answering each audit request from now on, those of
    /// every other request tied with the newest row: the worst Coder can do to a pager.
    pub fn set_churn(&self, rows: usize) {
        self.0.churn.store(rows as u64, Ordering::SeqCst);
    }

    /// Every row's id and time, newest first, as the trail stands (ties in stored order).
    #[must_use]
    pub fn snapshot(&self) -> Vec<(String, String)> {
        self.0
            .read()
            .iter()
            .map(|s| (s.row.id.to_string(), data::coder_time(s.row.time)))
            .collect()
    }

    /// Audit requests answered so far.
    #[must_use]
    pub fn audit_calls(&self) -> u64 {
        self.0.calls.load(Ordering::SeqCst)
    }

    /// Rows in the trail now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.read().len()
    }

    /// Whether the trail is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes every audit request answer `status` (with `Retry-After` when given, as a rate
    /// limit does) until called again with `None`.
    pub fn fail_with(&self, failure: Option<(StatusCode, Option<u64>)>) {
        *self
            .0
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = failure;
    }
}

impl Demo {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, VecDeque<Stored>> {
        self.trail.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, count: usize, tied: bool) {
        let mut generator = self
            .generator
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut trail = self.trail.write().unwrap_or_else(PoisonError::into_inner);
        for _ in 0..count {
            let newest = trail.front().map(|s| s.row.time);
            let mut time = match newest {
                Some(newest) if tied => newest,
                Some(newest) => now().max(newest + chrono::Duration::microseconds(1)),
                None => now(),
            };
            // Index past the initial mix, so live events are the common kinds.
            let index = trail.len().max(data::DEFAULT_ROWS);
            let row = generator.event(
                &self.data.organizations,
                &self.data.users,
                index,
                &mut time,
                false,
            );
            trail.push_front(Stored::new(row));
        }
    }
}

/// Now, at the microsecond precision Coder's database keeps.
fn now() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
    now - chrono::Duration::nanoseconds(i64::from(now.timestamp_subsec_nanos() % 1000))
}

/// The demo API on its own router, for embedding or for tests.
pub fn router(config: DemoConfig) -> Router {
    router_with_handle(config).0
}

/// The demo's answer to `GET /api/v2/audit?limit=<limit>` as its owner, without a server:
/// Coder's wire page, for tests and benchmarks that read or encode one.
pub async fn audit_page_body(config: DemoConfig, limit: usize) -> Vec<u8> {
    use tower::ServiceExt as _;
    let request = axum::http::Request::get(format!("/api/v2/audit?limit={limit}"))
        .header(crate::auth::CODER_SESSION_TOKEN, DEMO_TOKEN)
        .body(axum::body::Body::empty());
    let Ok(request) = request else {
        return Vec::new();
    };
    let Ok(response) = router(config).oneshot(request).await;
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .map(|body| body.to_vec())
        .unwrap_or_default()
}

/// The demo API and the handle that drives it.
pub fn router_with_handle(config: DemoConfig) -> (Router, DemoHandle) {
    let (mut data, generator) = data::dataset(config.rows);
    let trail: VecDeque<Stored> = std::mem::take(&mut data.rows)
        .into_iter()
        .map(Stored::new)
        .collect();
    let platform = data
        .organizations
        .iter()
        .find(|o| o.name == "platform")
        .map_or(Uuid::nil(), |o| o.id);
    let user = |name: &str| {
        data.users
            .iter()
            .position(|u| u.username == name)
            .unwrap_or(0)
    };
    let keys = vec![
        ApiKey {
            token: DEMO_TOKEN,
            user: user("admin"),
            scope: Scope::SiteWide,
            expired_at: None,
        },
        ApiKey {
            token: DEMO_AUDITOR_TOKEN,
            user: user("carol"),
            scope: Scope::SiteWide,
            expired_at: None,
        },
        ApiKey {
            token: DEMO_ORG_AUDITOR_TOKEN,
            user: user("pat"),
            scope: Scope::Organization(platform),
            expired_at: None,
        },
        ApiKey {
            token: DEMO_MEMBER_TOKEN,
            user: user("bruno"),
            scope: Scope::NoAuditAccess,
            expired_at: None,
        },
        ApiKey {
            token: DEMO_EXPIRED_TOKEN,
            user: user("admin"),
            scope: Scope::SiteWide,
            expired_at: Some("2026-04-01 10:00:00.123456 +0000 UTC"),
        },
        ApiKey {
            token: DEMO_SUSPENDED_TOKEN,
            user: user("dave"),
            scope: Scope::SiteWide,
            expired_at: None,
        },
    ];
    let demo = Arc::new(Demo {
        config,
        data,
        trail: RwLock::new(trail),
        generator: Mutex::new(generator),
        keys,
        calls: AtomicU64::new(0),
        failure: Mutex::new(None),
        churn: AtomicU64::new(0),
    });
    let handle = DemoHandle(demo.clone());
    let router = Router::new()
        .route("/api/v2/audit", get(audit))
        .route("/api/v2/buildinfo", get(buildinfo))
        .fallback(|| async {
            coder_error(
                StatusCode::NOT_FOUND,
                &json!({"message": "Route not found."}),
            )
        })
        .with_state(demo);
    (router, handle)
}

/// Serves the demo on a fresh loopback port and returns its address.
pub async fn spawn(config: DemoConfig) -> io::Result<SocketAddr> {
    Ok(spawn_with_handle(config).await?.0)
}

/// Serves the demo on a fresh loopback port; returns its address and its handle. With
/// [`DemoConfig::new_row_every`], a task records new rows for as long as the demo serves.
pub async fn spawn_with_handle(config: DemoConfig) -> io::Result<(SocketAddr, DemoHandle)> {
    let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let (app, handle) = router_with_handle(config);
    if let Some(every) = config.new_row_every {
        let recorder = handle.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                ticks.tick().await;
                recorder.record(1, false);
            }
        });
    }
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "demo upstream stopped");
        }
    });
    Ok((addr, handle))
}

fn coder_error(status: StatusCode, body: &Value) -> Response {
    coder_json(status, wire::to_vec(body))
}

/// A response with the headers every Coder response carries.
fn coder_json(status: StatusCode, mut body: Vec<u8>) -> Response {
    body.push(b'\n');
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        "x-coder-build-version",
        HeaderValue::from_static("v2.29.0-demo"),
    );
    if let Ok(id) = HeaderValue::from_str(&Uuid::new_v4().to_string()) {
        headers.insert("x-coder-request-id", id);
    }
    response
}

const SIGNED_OUT: &str =
    "You are signed out or your session has expired. Please sign in again to continue.";

fn unauthorized(detail: &str) -> Response {
    coder_error(
        StatusCode::UNAUTHORIZED,
        &json!({"message": SIGNED_OUT, "detail": detail}),
    )
}

fn bad_request(message: &str, validations: &[Validation]) -> Response {
    let validations: Vec<Value> = validations
        .iter()
        .map(|v| json!({"field": v.field, "detail": v.detail}))
        .collect();
    coder_error(
        StatusCode::BAD_REQUEST,
        &json!({"message": message, "validations": validations}),
    )
}

/// Coder's unauthenticated build information, which readiness checks use.
async fn buildinfo() -> Response {
    coder_json(
        StatusCode::OK,
        wire::to_vec(&json!({
            "external_url": "https://github.com/coder/coder",
            "version": "v2.29.0-demo",
            "dashboard_url": "http://127.0.0.1/",
            "workspace_proxy": false,
            "agent_api_version": "2.0",
            "provisioner_api_version": "1.0",
            "upgrade_message": "",
            "deployment_id": "00000000-0000-0000-0000-000000000000"
        })),
    )
}

/// The token Coder would use: cookie, `?coder_session_token=`, header, Bearer, `?access_token=`.
fn presented_token(headers: &HeaderMap, params: &[(String, String)]) -> String {
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
    };
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == "coder_session_token")
        .map(|(_, value)| value.to_owned());
    let header_token = headers
        .get(crate::auth::CODER_SESSION_TOKEN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_at_checked(7))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer "))
        .map(|(_, token)| token.trim().to_owned());
    [
        cookie,
        param("coder_session_token"),
        header_token,
        bearer,
        param("access_token"),
    ]
    .into_iter()
    .flatten()
    .find(|t| !t.is_empty())
    .unwrap_or_default()
}

impl Demo {
    /// Coder's API key check, with its 401 details.
    #[allow(
        clippy::result_large_err,
        reason = "the error is the finished 401 response"
    )]
    fn authenticate(&self, token: &str) -> Result<&ApiKey, Response> {
        if token.is_empty() {
            return Err(unauthorized(
                "Cookie \"coder_session_token\" or query parameter must be provided.",
            ));
        }
        let parts: Vec<&str> = token.split('-').collect();
        let [id, secret] = parts.as_slice() else {
            return Err(unauthorized(&format!(
                "Invalid API key format: incorrect amount of API key parts, expected 2 got {}",
                parts.len()
            )));
        };
        if id.len() != 10 {
            return Err(unauthorized(&format!(
                "Invalid API key format: invalid API key ID length, expected 10 got {}",
                id.len()
            )));
        }
        if secret.len() != 22 {
            return Err(unauthorized(&format!(
                "Invalid API key format: invalid API key secret length, expected 22 got {}",
                secret.len()
            )));
        }
        let Some(key) = self
            .keys
            .iter()
            .find(|k| k.token.starts_with(&format!("{id}-")))
        else {
            return Err(unauthorized("API key is invalid."));
        };
        if key.token != token {
            return Err(unauthorized("API key secret is invalid."));
        }
        if let Some(at) = key.expired_at {
            return Err(unauthorized(&format!("API key expired at \"{at}\".")));
        }
        if self.data.users[key.user].json["status"] == "suspended" {
            return Err(coder_error(
                StatusCode::UNAUTHORIZED,
                &json!({"message": "User is not active (status = \"suspended\"). Contact an admin to reactivate your account."}),
            ));
        }
        Ok(key)
    }
}

/// Coder's `limit`/`offset` parsing: signed 32-bit, empty is absent, negative is an error.
fn page_param(params: &[(String, String)], name: &str, errors: &mut Vec<Validation>) -> i32 {
    let values: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect();
    let quoted = go_quote(name);
    match values.as_slice() {
        [] | [""] => 0,
        [value] => {
            let invalid = |reason: String| {
                Validation::new(
                    name,
                    format!(
                        "Query param {quoted} must be a valid 32-bit positive integer: {reason}"
                    ),
                )
            };
            let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                errors.push(invalid(format!(
                    "strconv.ParseInt: parsing {}: invalid syntax",
                    go_quote(value)
                )));
                return 0;
            }
            match value.parse::<i32>() {
                Ok(n) if n < 0 => {
                    errors.push(invalid("value is negative".to_owned()));
                    0
                }
                Ok(n) => n,
                Err(_) => {
                    errors.push(invalid(format!(
                        "strconv.ParseInt: parsing {}: value out of range",
                        go_quote(value)
                    )));
                    0
                }
            }
        }
        many => {
            errors.push(Validation::new(
                name,
                format!(
                    "Query param {quoted} provided more than once, found {} times. Only provide 1 instance of this query param.",
                    many.len()
                ),
            ));
            0
        }
    }
}

async fn audit(
    State(demo): State<Arc<Demo>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let call = demo.calls.fetch_add(1, Ordering::SeqCst);
    let churn = demo.churn.load(Ordering::SeqCst);
    if churn > 0 {
        demo.record(usize::try_from(churn).unwrap_or(0), call % 2 == 1);
    }
    if !demo.config.service_time.is_zero() {
        tokio::time::sleep(demo.config.service_time).await;
    }
    let failure = *demo.failure.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((status, retry_after)) = failure {
        let message = if status == StatusCode::TOO_MANY_REQUESTS {
            "You've been rate limited for sending more than 512 requests in 1m0s."
        } else {
            "An internal server error occurred."
        };
        let mut response = coder_error(status, &json!({ "message": message }));
        if let Some(seconds) = retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let key = match demo.authenticate(&presented_token(&headers, &params)) {
        Ok(key) => key,
        Err(response) => return response,
    };
    let visible_org = match key.scope {
        Scope::SiteWide => None,
        Scope::Organization(id) => Some(id),
        Scope::NoAuditAccess => {
            return coder_error(
                StatusCode::FORBIDDEN,
                &json!({"message": "Forbidden.", "detail": "You don't have permission to view this content. If you believe this is a mistake, please contact your administrator or try signing in with different credentials."}),
            );
        }
    };

    let mut errors = Vec::new();
    let after_ids: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k == "after_id")
        .map(|(_, v)| v.as_str())
        .collect();
    if let [after_id] = after_ids.as_slice()
        && !after_id.is_empty()
        && Uuid::parse_str(after_id).is_err()
    {
        errors.push(Validation::new(
            "after_id",
            "Query param \"after_id\" must be a valid uuid",
        ));
    }
    let limit = page_param(&params, "limit", &mut errors);
    let offset = page_param(&params, "offset", &mut errors);
    if !errors.is_empty() {
        return bad_request("Query parameters have invalid values.", &errors);
    }

    let q = params
        .iter()
        .find(|(k, _)| k == "q")
        .map_or("", |(_, v)| v.as_str());
    let resolve = |name: &str| {
        demo.data
            .organizations
            .iter()
            .find(|o| o.name == name && visible_org.is_none_or(|id| id == o.id))
            .map(|o| o.id)
    };
    let filter = match search::parse(q, resolve) {
        Ok(filter) => filter,
        Err(validations) => return bad_request("Invalid audit search query.", &validations),
    };
    coder_json(
        StatusCode::OK,
        demo.page(key, visible_org, &filter, limit, offset),
    )
}

impl Demo {
    /// The page body: matching rows newest first, then the (capped) count.
    fn page(
        &self,
        key: &ApiKey,
        visible_org: Option<Uuid>,
        filter: &search::AuditFilter,
        limit: i32,
        offset: i32,
    ) -> Vec<u8> {
        let caller = &self.data.users[key.user];
        let username = filter
            .username
            .as_deref()
            .map(|name| if name == "me" { caller.username } else { name });
        let date_to = filter.date_to.map(data::end_of_day);

        let trail = self.read();
        let matches = |row: &data::Row| {
            let user = row.user.map(|u| &self.data.users[u]);
            visible_org.is_none_or(|id| row.organization_id == id)
                && filter.request_id.is_none_or(|id| row.request_id == id)
                && filter.resource_id.is_none_or(|id| row.resource_id == id)
                && filter
                    .resource_target
                    .as_ref()
                    .is_none_or(|t| row.resource_target == *t)
                && username.is_none_or(|name| {
                    user.is_some_and(|u| !u.deleted && u.username.eq_ignore_ascii_case(name))
                })
                && filter
                    .email
                    .as_ref()
                    .is_none_or(|email| user.is_some_and(|u| u.email == email))
                && filter.date_from.is_none_or(|d| {
                    row.time
                        >= d.and_hms_opt(0, 0, 0)
                            .map(|t| t.and_utc())
                            .unwrap_or_default()
                })
                && date_to.is_none_or(|end| row.time <= end)
                && filter
                    .organization
                    .is_none_or(|id| row.organization_id == id)
                && filter
                    .resource_type
                    .as_ref()
                    .is_none_or(|t| row.resource_type == t)
                && filter.action.as_ref().is_none_or(|a| row.action == a)
                && filter
                    .build_reason
                    .as_ref()
                    .is_none_or(|r| row.build_reason == Some(r.as_str()))
        };
        let matching: Vec<&Stored> = trail.iter().filter(|s| matches(&s.row)).collect();
        let limit = if limit == 0 {
            100
        } else {
            usize::try_from(limit).unwrap_or(usize::MAX)
        };
        let start = usize::try_from(offset).unwrap_or(0).min(matching.len());
        let end = start.saturating_add(limit).min(matching.len());
        let mut window: Vec<&Stored> = if self.config.shuffle_ties {
            // Whole groups of equal times around the window, each in a fresh order.
            let same = |a: &Stored, b: &Stored| a.row.time == b.row.time;
            let mut from = start;
            while from > 0 && from < matching.len() && same(matching[from - 1], matching[from]) {
                from -= 1;
            }
            let mut to = end;
            while to > start && to < matching.len() && same(matching[to - 1], matching[to]) {
                to += 1;
            }
            let mut groups = matching[from..to].to_vec();
            let mut i = 0;
            while i < groups.len() {
                let run = groups[i..]
                    .iter()
                    .take_while(|s| same(s, groups[i]))
                    .count();
                fastrand::shuffle(&mut groups[i..i + run]);
                i += run;
            }
            groups.drain(start - from..end - from).collect()
        } else {
            matching[start..end].to_vec()
        };
        let mut body = b"{\"audit_logs\":[".to_vec();
        for (i, stored) in window.drain(..).enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&stored.encoded);
        }
        let mut count = i64::try_from(matching.len()).unwrap_or(i64::MAX);
        if let Some(cap) = self.config.count_cap {
            count = count.min(cap + 1);
        }
        body.extend_from_slice(format!("],\"count\":{count}").as_bytes());
        if let Some(cap) = self.config.count_cap {
            body.extend_from_slice(format!(",\"count_cap\":{cap}").as_bytes());
        }
        body.push(b'}');
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_tokens_have_coder_format() {
        for token in [
            DEMO_TOKEN,
            DEMO_AUDITOR_TOKEN,
            DEMO_ORG_AUDITOR_TOKEN,
            DEMO_MEMBER_TOKEN,
            DEMO_EXPIRED_TOKEN,
            DEMO_SUSPENDED_TOKEN,
        ] {
            let (id, secret) = token.split_once('-').expect("two parts");
            assert_eq!((id.len(), secret.len()), (10, 22), "{token}");
        }
    }

    #[test]
    fn page_params_follow_coder_texts() {
        let params = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let mut errors = Vec::new();
        assert_eq!(
            page_param(&params(&[("limit", "")]), "limit", &mut errors),
            0
        );
        assert_eq!(
            page_param(&params(&[("limit", "+7")]), "limit", &mut errors),
            7
        );
        assert!(errors.is_empty());
        page_param(&params(&[("limit", "abc")]), "limit", &mut errors);
        page_param(&params(&[("limit", "-1")]), "limit", &mut errors);
        page_param(&params(&[("limit", "3000000000")]), "limit", &mut errors);
        page_param(
            &params(&[("limit", "1"), ("limit", "2")]),
            "limit",
            &mut errors,
        );
        let details: Vec<_> = errors.iter().map(|v| v.detail.as_str()).collect();
        assert_eq!(
            details,
            [
                r#"Query param "limit" must be a valid 32-bit positive integer: strconv.ParseInt: parsing "abc": invalid syntax"#,
                r#"Query param "limit" must be a valid 32-bit positive integer: value is negative"#,
                r#"Query param "limit" must be a valid 32-bit positive integer: strconv.ParseInt: parsing "3000000000": value out of range"#,
                r#"Query param "limit" provided more than once, found 2 times. Only provide 1 instance of this query param."#,
            ]
        );
    }
}
