//! A built-in Coder audit API: what the gateway serves when no `--coder-url` is given, and
//! the upstream the integration tests run against.
//!
//! It behaves like the reference (coder-audit-api.md), not like the gateway's assumptions,
//! and shares none of the gateway's code, so a mistake in either shows up as a failing test:
//! Coder's token sources and 401/403 bodies, its `limit`/`offset`/`after_id` parsing and error
//! texts, the `q` language checked against its own value lists (`search`, `catalogue`),
//! organisation scoping, the capped `count` with `count_cap` (or the older exact count),
//! newest-first order without a tiebreaker, and Go's JSON encoding (`wire`). Its trail
//! (`store`) is compact enough for a million rows and counts what Coder's page and count
//! queries would walk ([`DemoHandle::cost`]). The gateway talks to it over loopback HTTP
//! through the same client it uses for a real Coder.

mod catalogue;
mod generate;
pub mod search;
mod store;
mod wire;

use std::{
    io,
    net::SocketAddr,
    path::{Path, PathBuf},
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

use self::{
    catalogue::{ORGANIZATIONS, USERS},
    generate::{DEFAULT_ROWS, Pace},
    search::{Invalid, go_quote},
    store::{Query, Trail},
};

/// The header Coder reads a session token from.
const SESSION_TOKEN_HEADER: &str = "coder-session-token";

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoConfig {
    /// Rows in the generated trail at start (ignored with [`DemoConfig::rows_file`]).
    pub rows: usize,
    /// About how many generated rows fall on one UTC day. `None`: the default 320-row trail
    /// keeps its own pace (about 42 a day) and any other size gets 70.
    pub rows_per_day: Option<u32>,
    /// Serve these rows instead of generated ones: a JSON array of Coder's rows or an NDJSON
    /// export (one row per line), in any order.
    pub rows_file: Option<PathBuf>,
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
            rows: DEFAULT_ROWS,
            rows_per_day: None,
            rows_file: None,
            new_row_every: None,
            shuffle_ties: false,
            count_cap: Some(2000),
            service_time: Duration::ZERO,
        }
    }
}

impl DemoConfig {
    fn pace(&self) -> Pace {
        match self.rows_per_day {
            Some(rows) => Pace::PerDay(rows),
            None if self.rows == DEFAULT_ROWS => Pace::Default,
            None => Pace::PerDay(70),
        }
    }

    /// The trail this configuration starts with.
    fn trail(&self) -> io::Result<Trail> {
        match &self.rows_file {
            Some(path) => read_rows(path, self.pace()),
            None => Ok(Trail::generated(self.rows, self.pace())),
        }
    }
}

/// What Coder's two queries walked in its database, summed over the audit calls answered:
/// the page query's rows (those skipped by the offset plus those returned, counted among
/// matching rows from the newest the filters admit) and the count query's (matching rows up
/// to `count_cap + 1`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    pub calls: u64,
    pub page_rows_walked: u64,
    pub count_rows_walked: u64,
}

impl Cost {
    /// What was walked since `earlier`.
    #[must_use]
    pub fn since(self, earlier: Self) -> Self {
        Self {
            calls: self.calls - earlier.calls,
            page_rows_walked: self.page_rows_walked - earlier.page_rows_walked,
            count_rows_walked: self.count_rows_walked - earlier.count_rows_walked,
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
    trail: RwLock<Trail>,
    keys: Vec<ApiKey>,
    /// Audit requests answered, for tests that count what the gateway costs Coder.
    calls: AtomicU64,
    page_rows_walked: AtomicU64,
    count_rows_walked: AtomicU64,
    /// The largest `limit` asked for (0 counts as Coder's 100).
    largest_limit: AtomicU64,
    /// A status every audit request answers with while set, for outage tests.
    failure: Mutex<Option<(StatusCode, Option<u64>)>>,
    /// Rows recorded before answering each audit request, for tests of paging under churn.
    churn: AtomicU64,
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
            .ids_and_times()
            .map(|(id, time)| (id.to_string(), generate::coder_time(time)))
            .collect()
    }

    /// Audit requests answered so far.
    #[must_use]
    pub fn audit_calls(&self) -> u64 {
        self.0.calls.load(Ordering::SeqCst)
    }

    /// What Coder's database would have walked for every audit call so far.
    #[must_use]
    pub fn cost(&self) -> Cost {
        Cost {
            calls: self.0.calls.load(Ordering::SeqCst),
            page_rows_walked: self.0.page_rows_walked.load(Ordering::SeqCst),
            count_rows_walked: self.0.count_rows_walked.load(Ordering::SeqCst),
        }
    }

    /// The largest `limit` any audit call has asked for: Coder is about to refuse more than
    /// 100.
    #[must_use]
    pub fn largest_limit(&self) -> u64 {
        self.0.largest_limit.load(Ordering::SeqCst)
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

    /// Adds a row given as Coder's wire JSON, at its own time (anywhere in the trail).
    ///
    /// # Errors
    /// Why the row cannot be placed: not JSON, or no readable `id` or `time`.
    pub fn add_row(&self, json: &str) -> Result<(), String> {
        self.0.write().add(json.as_bytes())
    }

    /// Deletes the `count` oldest rows, as Coder's retention does while a walk runs;
    /// returns how many went.
    #[must_use = "retention may remove fewer rows than asked"]
    pub fn remove_oldest(&self, count: usize) -> usize {
        self.0.write().remove_oldest(count)
    }

    /// Serves the row with this id as `json` from now on, where its recorded time keeps
    /// it in the order and in date filters: how a row whose JSON carries a value Coder's
    /// server never sends (a `time` that does not parse) is made. Whether there was one.
    #[must_use = "the id may not be in the trail"]
    pub fn serve_as(&self, id: &str, json: &str) -> bool {
        Uuid::try_parse(id).is_ok_and(|id| self.0.write().serve_as(id, json.as_bytes()))
    }

    /// Deletes the row with this id; whether there was one.
    #[must_use = "the id may not be in the trail"]
    pub fn remove(&self, id: &str) -> bool {
        Uuid::try_parse(id).is_ok_and(|id| self.0.write().remove(id))
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
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Trail> {
        self.trail.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Trail> {
        self.trail.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, count: usize, tied: bool) {
        let mut trail = self.write();
        for _ in 0..count {
            let time = match trail.newest() {
                Some(newest) if tied => newest,
                Some(newest) => now().max(newest + chrono::Duration::microseconds(1)),
                None => now(),
            };
            // Index past the opening mix, so live events are the common kinds.
            let index = trail.len().max(DEFAULT_ROWS);
            trail.record(index, time);
        }
    }
}

/// Reads `--demo-rows-file`: a JSON array of rows or NDJSON, one row per line.
fn read_rows(path: &Path, pace: Pace) -> io::Result<Trail> {
    let text = std::fs::read(path)?;
    let invalid = |what: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {what}", path.display()),
        )
    };
    let mut trail = Trail::empty(pace);
    if text.trim_ascii_start().starts_with(b"[") {
        let rows: Vec<&serde_json::value::RawValue> = serde_json::from_slice(&text)
            .map_err(|e| invalid(format!("not a JSON array of rows: {e}")))?;
        for (n, row) in rows.iter().enumerate() {
            trail
                .add(row.get().as_bytes())
                .map_err(|why| invalid(format!("row {}: {why}", n + 1)))?;
        }
    } else {
        for (n, line) in text.split(|b| *b == b'\n').enumerate() {
            if line.trim_ascii().is_empty() {
                continue;
            }
            trail
                .add(line)
                .map_err(|why| invalid(format!("line {}: {why}", n + 1)))?;
        }
    }
    Ok(trail)
}

/// Now, at the microsecond precision Coder's database keeps.
fn now() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
    now - chrono::Duration::nanoseconds(i64::from(now.timestamp_subsec_nanos() % 1000))
}

/// The demo API on its own router, for embedding or for tests.
///
/// # Errors
/// `--demo-rows-file` cannot be read or holds a row without a readable id or time.
pub fn router(config: DemoConfig) -> io::Result<Router> {
    Ok(router_with_handle(config)?.0)
}

/// The demo's answer to `GET /api/v2/audit?limit=<limit>` as its owner, without a server:
/// Coder's wire page, for tests and benchmarks that read or encode one.
pub async fn audit_page_body(config: DemoConfig, limit: usize) -> Vec<u8> {
    use tower::ServiceExt as _;
    let request = axum::http::Request::get(format!("/api/v2/audit?limit={limit}"))
        .header(SESSION_TOKEN_HEADER, DEMO_TOKEN)
        .body(axum::body::Body::empty());
    let (Ok(request), Ok(router)) = (request, router(config)) else {
        return Vec::new();
    };
    let Ok(response) = router.oneshot(request).await;
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .map(|body| body.to_vec())
        .unwrap_or_default()
}

/// The demo API and the handle that drives it.
///
/// # Errors
/// As [`router`].
pub fn router_with_handle(config: DemoConfig) -> io::Result<(Router, DemoHandle)> {
    let trail = config.trail()?;
    let user = |name: &str| USERS.iter().position(|u| u.username == name).unwrap_or(0);
    let platform = ORGANIZATIONS
        .iter()
        .find(|o| o.name == "platform")
        .map_or(Uuid::nil(), |o| Uuid::from_u128(o.id));
    let key = |token, name, scope, expired_at| ApiKey {
        token,
        user: user(name),
        scope,
        expired_at,
    };
    let keys = vec![
        key(DEMO_TOKEN, "admin", Scope::SiteWide, None),
        key(DEMO_AUDITOR_TOKEN, "carol", Scope::SiteWide, None),
        key(
            DEMO_ORG_AUDITOR_TOKEN,
            "pat",
            Scope::Organization(platform),
            None,
        ),
        key(DEMO_MEMBER_TOKEN, "bruno", Scope::NoAuditAccess, None),
        key(
            DEMO_EXPIRED_TOKEN,
            "admin",
            Scope::SiteWide,
            Some("2026-04-01 10:00:00.123456 +0000 UTC"),
        ),
        key(DEMO_SUSPENDED_TOKEN, "dave", Scope::SiteWide, None),
    ];
    let demo = Arc::new(Demo {
        config,
        trail: RwLock::new(trail),
        keys,
        calls: AtomicU64::new(0),
        page_rows_walked: AtomicU64::new(0),
        count_rows_walked: AtomicU64::new(0),
        largest_limit: AtomicU64::new(0),
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
    Ok((router, handle))
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
    let every = config.new_row_every;
    let (app, handle) = router_with_handle(config)?;
    if let Some(every) = every {
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

fn bad_request(message: &str, validations: &[Invalid]) -> Response {
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
        .get(SESSION_TOKEN_HEADER)
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
        if USERS[key.user].status == "suspended" {
            return Err(coder_error(
                StatusCode::UNAUTHORIZED,
                &json!({"message": "User is not active (status = \"suspended\"). Contact an admin to reactivate your account."}),
            ));
        }
        Ok(key)
    }
}

/// Coder's `limit`/`offset` parsing: signed 32-bit, empty is absent, negative is an error.
fn page_param(params: &[(String, String)], name: &str, errors: &mut Vec<Invalid>) -> i32 {
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
                Invalid::new(
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
            errors.push(Invalid::new(
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
        errors.push(Invalid::new(
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
    let filter = {
        let trail = demo.read();
        match search::parse(q, |name| trail.organization_named(name, visible_org)) {
            Ok(filter) => filter,
            Err(validations) => {
                return bad_request("Invalid audit search query.", &validations);
            }
        }
    };
    coder_json(
        StatusCode::OK,
        demo.page(key, visible_org, &filter, limit, offset),
    )
}

impl Demo {
    /// The page body: matching rows newest first, then the (capped) count. Counts what
    /// Coder's two queries would walk.
    fn page(
        &self,
        key: &ApiKey,
        visible_org: Option<Uuid>,
        filter: &search::AuditFilter,
        limit: i32,
        offset: i32,
    ) -> Vec<u8> {
        let query = Query {
            filter,
            visible_organization: visible_org,
            caller: USERS[key.user].username,
            limit: if limit == 0 {
                100
            } else {
                usize::try_from(limit).unwrap_or(usize::MAX)
            },
            offset: usize::try_from(offset).unwrap_or(0),
            count_cap: self.config.count_cap,
            shuffle_ties: self.config.shuffle_ties,
        };
        self.largest_limit
            .fetch_max(query.limit as u64, Ordering::SeqCst);
        let trail = self.read();
        let answer = trail.answer(&query);
        self.page_rows_walked
            .fetch_add(answer.page_rows_walked, Ordering::SeqCst);
        self.count_rows_walked
            .fetch_add(answer.count_rows_walked, Ordering::SeqCst);
        let mut body = b"{\"audit_logs\":[".to_vec();
        trail.write_rows(&answer, &mut body);
        drop(trail);
        body.extend_from_slice(format!("],\"count\":{}", answer.count).as_bytes());
        if let Some(cap) = self.config.count_cap {
            body.extend_from_slice(format!(",\"count_cap\":{cap}").as_bytes());
        }
        body.push(b'}');
        body
    }
}

#[cfg(test)]
mod params {
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

#[cfg(test)]
mod tests;
