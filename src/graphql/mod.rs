//! The GraphQL surface: `POST /graphql` (and `GET /graphql?query=…`) runs queries, a
//! browser's `GET /graphql` (plain, or a shared `?query=` link) gets `GraphiQL`, and a
//! WebSocket upgrade serves subscriptions. The HTTP framing is in `http.rs`, compiled
//! operations in `plan/`, automatic persisted queries in `apq.rs`, the WebSocket protocol in
//! `ws.rs`, the page and its files in `graphiql/`.
//!
//! The token is read from the HTTP request here and checked only inside the resolver that
//! calls Coder, so introspection and `__typename` work without one (`GraphiQL` needs that).

mod apq;
mod error;
mod filter;
mod graphiql;
mod http;
mod plan;
mod policy;
mod types;
mod ws;

use async_graphql::{Context, EmptyMutation, ErrorExtensions, Object, Schema, SchemaBuilder};
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Extension, Router,
    body::Body,
    extract::{FromRequestParts, Request, State, ws::WebSocketUpgrade},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use futures_util::Stream;

use crate::{
    audit::{AuditLogQuery, AuditLogs},
    auth::{SessionToken, TokenError},
    call::{CallContext, Protocol, RequestInfo},
    error::Error,
    watch::WatchRequest,
};
pub use plan::PagePlan;
pub use types::{AuditLogEvent, AuditLogPage};

pub type GatewaySchema = Schema<Query, EmptyMutation, Subscription>;

/// The HTTP request being executed: its token (or why there is none), its identity, and a
/// slot for the id Coder gives the upstream request, returned in the response's extensions.
struct Caller {
    token: Result<SessionToken, TokenError>,
    info: RequestInfo,
    coder_request_id: Arc<Mutex<Option<String>>>,
}

impl Caller {
    /// The request's caller; a request that came in without one (which the handlers never
    /// build) is treated as carrying no token.
    fn of<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Self> {
        ctx.data_opt::<Self>()
            .ok_or_else(|| Error::from(TokenError::Missing).extend())
    }

    /// A call into the core as this caller; `UNAUTHENTICATED` without a usable token.
    fn call(&self) -> async_graphql::Result<CallContext> {
        Ok(CallContext {
            token: self.token.clone().map_err(|e| Error::from(e).extend())?,
            protocol: Protocol::Graphql,
            info: self.info.clone(),
            deadline: None,
        })
    }
}

pub struct Query;

/// Read access to a Coder deployment's audit trail.
#[Object]
impl Query {
    /// Coder's audit trail, newest first, exactly as Coder records it, fetched with the
    /// caller's own session token (send `Coder-Session-Token: <token>` or
    /// `Authorization: Bearer <token>`), so each caller sees what Coder lets that caller see.
    async fn audit_logs(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Coder's search query, passed through verbatim, e.g. `action:create resource_type:workspace` or `username:alice date_from:2026-01-01`. Coder lowercases it as a whole; a bare word means `resource_type`; keys are resource_type, resource_id, resource_target, action, username, email, date_from, date_to, organization, build_reason, request_id. Omitted or empty means no filter. Values newer than the gateway's enums are reachable here."
        )]
        q: Option<String>,
        #[graphql(
            desc = "Typed constraints, compiled into Coder's `q` and combined with it by AND. A key may be set in `q` or here, not both."
        )]
        filter: Option<filter::AuditLogFilterInput>,
        #[graphql(
            desc = "Page size. 0 means Coder's default page of 100 rows; at most the gateway's maximum (1000 unless configured otherwise)."
        )]
        limit: i32,
        #[graphql(
            desc = "Rows to skip, counted from the newest; default 0. Past the end the page is empty while `count` still holds."
        )]
        offset: Option<i32>,
        #[graphql(
            desc = "The `endCursor` (or an edge's `cursor`) of a page of the same `q` and `filter`: the rows after it, every row once however the trail changes meanwhile, at about an export's cost per row whatever the depth. Not with a nonzero `offset`. A page asked for more than 98 rows may hold up to two fewer."
        )]
        after: Option<String>,
    ) -> async_graphql::Result<types::RootPage> {
        let caller = Caller::of(ctx)?;
        let call = caller.call()?;
        let audit = ctx.data_unchecked::<AuditLogs>();
        let query = audit_query(q, filter, limit, offset);
        if let Some(after) = after.filter(|after| !after.is_empty()) {
            let page = error::counted(
                audit
                    .list_after(&call, &query, "after", &after)
                    .await
                    .and_then(AuditLogPage::after),
            )?;
            return Ok(types::RootPage(page));
        }
        let fetched = error::counted(audit.list(&call, &query).await)?;
        if let Ok(mut slot) = caller.coder_request_id.lock() {
            *slot = fetched.coder_request_id;
        }
        let q = audit.compile(&query.q, &query.filter).unwrap_or_default();
        Ok(types::RootPage(AuditLogPage::first(
            fetched.page,
            q,
            query.offset,
        )))
    }
}

/// The core's query for `auditLogs` arguments; the plans read the same arguments.
fn audit_query(
    q: Option<String>,
    filter: Option<filter::AuditLogFilterInput>,
    limit: i32,
    offset: Option<i32>,
) -> AuditLogQuery {
    AuditLogQuery {
        q: q.unwrap_or_default(),
        filter: filter.map(Into::into).unwrap_or_default(),
        limit,
        offset: offset.unwrap_or_default(),
    }
}

pub struct Subscription;

/// The live tail of Coder's audit trail, over WebSocket (`graphql-transport-ws`).
#[async_graphql::Subscription]
impl Subscription {
    /// Rows added to Coder's audit trail after `after` (or from now), oldest first.
    ///
    /// Each row comes exactly once, whatever order Coder gives rows with equal times; rows
    /// recorded during a passing outage of Coder are delivered when it answers again. Send
    /// the token in the `connection_init` payload (`{"Coder-Session-Token": "<token>"}`):
    /// browsers cannot set WebSocket headers.
    async fn audit_log_added(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Coder's search query, as in `auditLogs`.")] q: Option<String>,
        #[graphql(desc = "Typed constraints, as in `auditLogs`.")] filter: Option<
            filter::AuditLogFilterInput,
        >,
        #[graphql(
            desc = "Where to start: a `cursor` of an earlier event (or of the error that ended a subscription on a row it could not deliver), or the watch cursor of an export (gRPC `watch_cursor`, NDJSON `X-Watch-Cursor`), issued for the same `q` and `filter`. Omitted means from now."
        )]
        after: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<AuditLogEvent>> + use<>>
    {
        let caller = Caller::of(ctx)?;
        let call = caller.call()?;
        let request = WatchRequest {
            q: q.unwrap_or_default(),
            filter: filter.map(Into::into).unwrap_or_default(),
            after,
            poll_interval: None,
        };
        let watch = ctx
            .data_unchecked::<AuditLogs>()
            .watch(call, request)
            .await
            .map_err(|e| error::refused(&e))?;
        Ok(futures_util::stream::unfold(
            Some(watch),
            |watch| async move {
                let mut watch = watch?;
                match watch.next(1).await {
                    Ok(batch) => {
                        let row = batch.rows.into_iter().next()?;
                        // A row that cannot be delivered ends the subscription with its
                        // error, whose `cursor` extension resumes past it.
                        let undeliverable = match row.log() {
                            Err(reason) => Some(Error::bad_row(reason)),
                            Ok(log) => log.first_invalid().map(Error::bad_value),
                        };
                        if let Some(error) = undeliverable {
                            let cursor = batch.cursor;
                            let error = error
                                .extend()
                                .extend_with(|_, ext| ext.set("cursor", cursor));
                            return Some((Err(error), None));
                        }
                        Some((
                            Ok(AuditLogEvent {
                                cursor: batch.cursor,
                                row,
                            }),
                            Some(watch),
                        ))
                    }
                    Err(error) => Some((Err(error.extend()), None)),
                }
            },
        ))
    }
}

/// The schema without runtime data: enough for its SDL.
#[must_use]
pub fn schema_builder() -> SchemaBuilder<Query, EmptyMutation, Subscription> {
    Schema::build(Query, EmptyMutation, Subscription)
}

/// How the GraphQL surface is served.
#[derive(Debug, Clone)]
pub struct GraphqlOptions {
    /// Pre-filled in `GraphiQL`'s headers so the demo works without typing a token; `None`
    /// in front of a real Coder.
    pub demo_token: Option<String>,
    pub graphiql: bool,
    pub introspection: bool,
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_body: usize,
    /// Browser origins allowed besides the gateway's own (`--cors-origin`); also checked on
    /// WebSocket upgrades, which browsers do not subject to CORS.
    pub cors_origins: Vec<String>,
    pub connection_init_timeout: Duration,
    pub max_subscriptions_per_connection: usize,
    /// Compiled operations kept (`--operation-cache-size`); 0 runs every request through
    /// async-graphql and turns persisted queries off.
    pub operation_cache_size: usize,
    /// Automatic persisted queries (Apollo's protocol); `--disable-apq` turns them off.
    pub apq: bool,
}

#[derive(Clone)]
struct GraphqlState {
    schema: GatewaySchema,
    executor: Arc<http::Executor>,
    graphiql: Option<graphiql::Page>,
    max_body: usize,
    cors_origins: Arc<[String]>,
    ws: ws::WsLimits,
}

/// Routes for `/graphql`.
pub fn router(audit: &AuditLogs, options: &GraphqlOptions) -> Router {
    let graphiql = options
        .graphiql
        .then(|| graphiql::Page::new(ENDPOINT, options.demo_token.as_deref()));
    let mut schema = schema_builder()
        .data(audit.clone())
        .extension(policy::DocumentPolicy {
            max_depth: options.max_depth,
            introspection: options.introspection,
        })
        .limit_complexity(options.max_complexity);
    if !options.introspection {
        // The policy says why; async-graphql's switch stays as the second lock.
        schema = schema.disable_introspection();
    }
    let schema = schema.finish();
    let state = GraphqlState {
        executor: Arc::new(http::Executor {
            schema: schema.clone(),
            audit: audit.clone(),
            plans: plan::Plans::new(options.operation_cache_size),
            apq: options.apq && options.operation_cache_size > 0,
        }),
        schema,
        graphiql,
        max_body: options.max_body,
        cors_origins: options.cors_origins.clone().into(),
        ws: ws::WsLimits {
            init_timeout: options.connection_init_timeout,
            max_subscriptions: options.max_subscriptions_per_connection,
        },
    };
    let router = Router::new()
        .route(ENDPOINT, get(get_graphql).post(post_graphql))
        .with_state(state);
    if options.graphiql {
        router.merge(graphiql::router())
    } else {
        router
    }
}

/// Where GraphQL is served: queries, `GraphiQL` and subscriptions.
pub const ENDPOINT: &str = "/graphql";

async fn post_graphql(
    State(state): State<GraphqlState>,
    info: Option<Extension<RequestInfo>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let caller = caller(&headers, info);
    http::post(&state.executor, &headers, body, state.max_body, caller).await
}

/// A WebSocket upgrade serves subscriptions; a browser (one that accepts HTML) gets
/// `GraphiQL`, which opens a `?query=` link in the editor; any other client's query in the
/// URL is executed (GraphQL over HTTP's GET form).
async fn get_graphql(State(state): State<GraphqlState>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let info = parts.extensions.get::<RequestInfo>().cloned();
    let headers = parts.headers.clone();
    if headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
    {
        return match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(upgrade) => websocket(state, upgrade, &headers, info),
            Err(rejection) => rejection.into_response(),
        };
    }
    let query = parts
        .uri
        .query()
        .filter(|q| !q.is_empty())
        .map(str::to_owned);
    let info = info.map(Extension);
    match (query, &state.graphiql) {
        (_, Some(page)) if accepts_html(&headers) => page.response(),
        (Some(query), _) => {
            let caller = caller(&headers, info);
            http::get(&state.executor, &headers, &query, caller).await
        }
        (None, Some(page)) => page.response(),
        (None, None) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Whether the request is a browser navigating (it lists `text/html`), not a GraphQL client.
pub(crate) fn accepts_html(headers: &HeaderMap) -> bool {
    crate::headers::accepted(headers, header::ACCEPT).any(|m| m.eq_ignore_ascii_case("text/html"))
}

/// Whether a browser page at `origin` may open a WebSocket here: the gateway's own origin
/// (same host) or one allowed by `--cors-origin`. Clients that are not browsers send no
/// `Origin` and are not concerned.
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let same_host = origin
        .split_once("://")
        .is_some_and(|(_, rest)| Some(rest) == host);
    same_host
        || allowed
            .iter()
            .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
}

fn websocket(
    state: GraphqlState,
    upgrade: WebSocketUpgrade,
    headers: &HeaderMap,
    info: Option<RequestInfo>,
) -> Response {
    if !origin_allowed(headers, &state.cors_origins) {
        return (
            StatusCode::FORBIDDEN,
            "this page's origin may not open a WebSocket here (see --cors-origin)",
        )
            .into_response();
    }
    let offers_protocol =
        crate::headers::list(headers, header::SEC_WEBSOCKET_PROTOCOL).any(|p| p == ws::PROTOCOL);
    if !offers_protocol {
        return (
            StatusCode::BAD_REQUEST,
            "offer the WebSocket subprotocol graphql-transport-ws",
        )
            .into_response();
    }
    let token = SessionToken::from_headers(headers);
    let info = info.unwrap_or_else(RequestInfo::generate);
    upgrade
        .protocols([ws::PROTOCOL])
        .max_message_size(state.max_body)
        .on_upgrade(move |socket| ws::serve(socket, state.schema, token, info, state.ws))
}

fn caller(headers: &HeaderMap, info: Option<Extension<RequestInfo>>) -> Caller {
    Caller {
        token: SessionToken::from_headers(headers),
        info: info.map_or_else(RequestInfo::generate, |Extension(info)| info),
        coder_request_id: Arc::default(),
    }
}
