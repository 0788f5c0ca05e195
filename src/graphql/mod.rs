//! The GraphQL surface: `POST /graphql` (and `GET /graphql?query=…`) runs queries, a plain
//! `GET /graphql` serves `GraphiQL`. The HTTP framing is in `http.rs`.
//!
//! The token is read from the HTTP request here and checked only inside the resolver that
//! calls Coder, so introspection and `__typename` work without one (`GraphiQL` needs that).

mod filter;
mod http;
mod types;

use async_graphql::{
    Context, EmptyMutation, EmptySubscription, ErrorExtensions, Object, Schema, SchemaBuilder,
    http::GraphiQLSource,
};
use std::sync::{Arc, Mutex};

use axum::{
    Extension, Router,
    body::Body,
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::{Html, IntoResponse, Response},
    routing::get,
};

use crate::{
    audit::{AuditLogQuery, AuditLogs},
    auth::{SessionToken, TokenError},
    context::{CallContext, Protocol, RequestInfo},
    error::Error,
};
pub use types::AuditLogPage;

pub type GatewaySchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// The HTTP request being executed: its token (or why there is none), its identity, and a
/// slot for the id Coder gives the upstream request, returned in the response's extensions.
struct Caller {
    token: Result<SessionToken, TokenError>,
    info: RequestInfo,
    coder_request_id: Arc<Mutex<Option<String>>>,
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
    ) -> async_graphql::Result<AuditLogPage> {
        let caller = ctx
            .data_opt::<Caller>()
            .ok_or_else(|| Error::from(TokenError::Missing).extend())?;
        let call = CallContext {
            token: caller.token.clone().map_err(|e| Error::from(e).extend())?,
            protocol: Protocol::Graphql,
            info: caller.info.clone(),
            deadline: None,
        };
        let query = AuditLogQuery {
            q: q.unwrap_or_default(),
            filter: filter.map(Into::into).unwrap_or_default(),
            limit,
            offset: offset.unwrap_or_default(),
        };
        let fetched = ctx
            .data_unchecked::<AuditLogs>()
            .list(&call, &query)
            .await
            .map_err(|e| e.extend())?;
        if let Ok(mut slot) = caller.coder_request_id.lock() {
            *slot = fetched.coder_request_id;
        }
        Ok(AuditLogPage::from(fetched.page))
    }
}

/// The schema without runtime data: enough for its SDL.
#[must_use]
pub fn schema_builder() -> SchemaBuilder<Query, EmptyMutation, EmptySubscription> {
    Schema::build(Query, EmptyMutation, EmptySubscription)
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
}

#[derive(Clone)]
struct GraphqlState {
    schema: GatewaySchema,
    graphiql: Option<Html<String>>,
    max_body: usize,
}

/// Routes for `/graphql`.
pub fn router(audit: AuditLogs, options: &GraphqlOptions) -> Router {
    let graphiql = options.graphiql.then(|| {
        let mut source = GraphiQLSource::build()
            .endpoint("/graphql")
            .title("Coder audit gateway");
        if let Some(token) = &options.demo_token {
            source = source.header(crate::auth::CODER_SESSION_TOKEN, token);
        }
        Html(source.finish())
    });
    let mut schema = schema_builder()
        .data(audit)
        .limit_depth(options.max_depth)
        .limit_complexity(options.max_complexity);
    if !options.introspection {
        schema = schema.disable_introspection();
    }
    let state = GraphqlState {
        schema: schema.finish(),
        graphiql,
        max_body: options.max_body,
    };
    Router::new()
        .route("/graphql", get(get_graphql).post(post_graphql))
        .with_state(state)
}

async fn post_graphql(
    State(state): State<GraphqlState>,
    info: Option<Extension<RequestInfo>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let caller = caller(&headers, info);
    http::post(&state.schema, &headers, body, state.max_body, caller).await
}

/// `GraphiQL` for a browser; a query in the URL (GraphQL over HTTP's GET form) is executed.
async fn get_graphql(
    State(state): State<GraphqlState>,
    info: Option<Extension<RequestInfo>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match (query.filter(|q| !q.is_empty()), state.graphiql) {
        (Some(query), _) => {
            let caller = caller(&headers, info);
            http::get(&state.schema, &headers, &query, caller).await
        }
        (None, Some(graphiql)) => graphiql.into_response(),
        (None, None) => StatusCode::NOT_FOUND.into_response(),
    }
}

fn caller(headers: &HeaderMap, info: Option<Extension<RequestInfo>>) -> Caller {
    Caller {
        token: SessionToken::from_headers(headers),
        info: info.map_or_else(RequestInfo::generate, |Extension(info)| info),
        coder_request_id: Arc::default(),
    }
}
