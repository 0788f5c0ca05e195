//! `GET /`: where a person or a script finds everything the gateway serves. A browser is
//! sent to `GraphiQL`; a client asking for JSON gets a short index of the endpoints, the gRPC
//! services and the probes, so nobody has to guess the paths.

use axum::{
    Json, Router,
    http::{HeaderMap, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use serde_json::{Value, json};
use tonic::server::NamedService as _;

use crate::{
    graphql,
    grpc::{AuditGrpc, AuditServiceServer},
    ndjson::EXPORT_PATH,
};

/// The route for `/`. `graphiql` says whether the page is served, and so where a browser goes.
pub(crate) fn router(graphiql: bool) -> Router {
    let index = describe(graphiql);
    Router::new().route(
        "/",
        get(move |headers: HeaderMap| async move { root(&headers, graphiql, &index) }),
    )
}

fn root(headers: &HeaderMap, graphiql: bool, index: &Value) -> Response {
    if graphiql && graphql::accepts_html(headers) && !prefers_json(headers) {
        Redirect::to(graphql::ENDPOINT).into_response()
    } else {
        Json(index.clone()).into_response()
    }
}

/// Whether JSON is listed before HTML (a script that names both wants the index).
fn prefers_json(headers: &HeaderMap) -> bool {
    crate::headers::accepted(headers, header::ACCEPT)
        .find_map(|media| {
            if media.eq_ignore_ascii_case("application/json") {
                Some(true)
            } else if media.eq_ignore_ascii_case("text/html") {
                Some(false)
            } else {
                None
            }
        })
        .unwrap_or(false)
}

fn describe(graphiql: bool) -> Value {
    json!({
        "name": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
        "graphql": {
            "endpoint": graphql::ENDPOINT,
            "graphiql": graphiql.then_some(graphql::ENDPOINT),
            "subscriptions": {
                "endpoint": graphql::ENDPOINT,
                "protocol": "graphql-transport-ws",
            },
        },
        "grpc": {
            "services": [
                AuditServiceServer::<AuditGrpc>::NAME,
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            ],
            "grpcWeb": true,
        },
        "export": { "ndjson": EXPORT_PATH },
        "health": { "liveness": "/healthz", "readiness": "/readyz" },
        "metrics": "/metrics",
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn accept(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn browsers_are_redirected_and_scripts_get_json() {
        let index = describe(true);
        let browser = accept("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8");
        assert!(root(&browser, true, &index).status().is_redirection());
        assert!(
            root(&accept("application/json"), true, &index)
                .status()
                .is_success()
        );
        assert!(
            root(&accept("application/json, text/html"), true, &index)
                .status()
                .is_success()
        );
        assert!(root(&browser, false, &index).status().is_success());
        assert!(root(&HeaderMap::new(), true, &index).status().is_success());
    }
}
