//! The GraphQL surface: `POST /graphql` (and `GET /graphql?query=…`) runs queries, a plain
//! `GET /graphql` serves `GraphiQL`. The HTTP framing is in [`http`].
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
use axum::{
    Router,
    body::Bytes,
    extract::{RawQuery, State},
    http::HeaderMap,
    response::{Html, IntoResponse, Response},
    routing::get,
};

use crate::{
    audit::{AuditLogQuery, AuditLogs},
    auth::{SessionToken, TokenError},
    error::Error,
};
pub use types::AuditLogPage;

pub type GatewaySchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// The token (or why there is none) of the HTTP request being executed.
struct Caller(Result<SessionToken, TokenError>);

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
        let token = match ctx.data_opt::<Caller>() {
            Some(Caller(token)) => token.clone(),
            None => Err(TokenError::Missing),
        }
        .map_err(|e| Error::from(e).extend())?;
        let query = AuditLogQuery {
            q: q.unwrap_or_default(),
            filter: filter.map(Into::into).unwrap_or_default(),
            limit,
            offset: offset.unwrap_or_default(),
        };
        ctx.data_unchecked::<AuditLogs>()
            .list(&token, &query)
            .await
            .map(AuditLogPage)
            .map_err(|e| e.extend())
    }
}

/// The schema without runtime data: enough for its SDL.
#[must_use]
pub fn schema_builder() -> SchemaBuilder<Query, EmptyMutation, EmptySubscription> {
    Schema::build(Query, EmptyMutation, EmptySubscription)
}

#[derive(Clone)]
struct GraphqlState {
    schema: GatewaySchema,
    graphiql: Html<String>,
}

/// Routes for `/graphql`. `demo_token` pre-fills `GraphiQL`'s headers so the demo works
/// without typing a token; it is `None` in front of a real Coder.
pub fn router(audit: AuditLogs, demo_token: Option<&str>) -> Router {
    let mut graphiql = GraphiQLSource::build()
        .endpoint("/graphql")
        .title("Coder audit gateway");
    if let Some(token) = demo_token {
        graphiql = graphiql.header(crate::auth::CODER_SESSION_TOKEN, token);
    }
    let state = GraphqlState {
        schema: schema_builder().data(audit).finish(),
        graphiql: Html(graphiql.finish()),
    };
    Router::new()
        .route("/graphql", get(get_graphql).post(post_graphql))
        .with_state(state)
}

async fn post_graphql(
    State(state): State<GraphqlState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    http::post(&state.schema, &headers, &body).await
}

/// `GraphiQL` for a browser; a query in the URL (GraphQL over HTTP's GET form) is executed.
async fn get_graphql(
    State(state): State<GraphqlState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match query.filter(|q| !q.is_empty()) {
        Some(query) => http::get(&state.schema, &headers, &query).await,
        None => state.graphiql.into_response(),
    }
}
