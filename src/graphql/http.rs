//! GraphQL over HTTP, as the GraphQL-over-HTTP specification asks (checked in CI by
//! graphql-http's audit suite).
//!
//! async-graphql-axum's stock extractor answers `application/graphql-response+json` to
//! clients that accept only `application/json`, executes a POST without a Content-Type, and
//! answers parse and validation failures with 200 and `"data": null` even to clients that
//! asked for the newer media type. This handler negotiates the media type, validates the
//! request parameters itself, and chooses the status code from the media type: with
//! `application/json` every GraphQL result is a 200; with `application/graphql-response+json`
//! a request that never started executing is a 400 without a `data` entry.

use std::sync::Arc;

use async_graphql::Variables;
use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value};

use super::{
    Caller, GatewaySchema,
    apq::{self, PersistedQueryError},
    plan::{self, Key, Plans},
};
use crate::audit::AuditLogs;

/// What answers GraphQL requests over HTTP: a cached plan when there is one that covers the
/// request, async-graphql otherwise (see [`plan`]).
pub(super) struct Executor {
    pub(super) schema: GatewaySchema,
    pub(super) audit: AuditLogs,
    pub(super) plans: Plans,
    /// Automatic persisted queries are on (they need the cache).
    pub(super) apq: bool,
}

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// The response media type the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MediaType {
    /// `application/json`: the legacy type, every GraphQL result is a 200.
    Json,
    /// `application/graphql-response+json`: status codes tell request errors apart.
    GraphqlResponseJson,
}

impl MediaType {
    /// Picks from `Accept`: the newer type when the client lists it, otherwise JSON (also
    /// for `*/*`, a missing header, or only types we cannot produce).
    fn negotiate(headers: &HeaderMap) -> Self {
        let accepts_graphql_response = crate::headers::accepted(headers, header::ACCEPT)
            .any(|media| media.eq_ignore_ascii_case(GRAPHQL_RESPONSE_JSON));
        if accepts_graphql_response {
            Self::GraphqlResponseJson
        } else {
            Self::Json
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::Json => "application/json; charset=utf-8",
            Self::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
        })
    }
}

fn bad_request(media: MediaType, message: &str) -> Response {
    refuse(media, StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
}

/// A request the HTTP layer refuses before GraphQL sees it, with a named code.
fn refuse(media: MediaType, status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"errors": [{"message": message, "extensions": {"code": code}}]});
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, media.content_type());
    response
}

/// `POST /graphql` with a JSON body.
pub(super) async fn post(
    executor: &Executor,
    headers: &HeaderMap,
    body: Body,
    max_body: usize,
    caller: Caller,
) -> Response {
    let media = MediaType::negotiate(headers);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut parts = content_type.split(';').map(str::trim);
    let is_json = parts.next().is_some_and(|m| m.eq_ignore_ascii_case(JSON));
    let utf8 = parts.all(|p| {
        p.split_once('=').is_none_or(|(name, value)| {
            !name.trim().eq_ignore_ascii_case("charset")
                || value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        })
    });
    if !is_json || !utf8 {
        return refuse(
            media,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the GraphQL request as `Content-Type: application/json` (UTF-8)",
        );
    }
    let Ok(body) = axum::body::to_bytes(body, max_body).await else {
        return refuse(
            media,
            StatusCode::PAYLOAD_TOO_LARGE,
            "REQUEST_TOO_LARGE",
            &format!("the request body is larger than {max_body} bytes (--max-request-body)"),
        );
    };
    let params = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(params)) => params,
        Ok(_) => {
            return bad_request(media, "the request body must be a JSON object");
        }
        Err(error) => {
            return bad_request(
                media,
                &format!("the request body is not valid JSON: {error}"),
            );
        }
    };
    answer(executor, &params, media, caller).await
}

/// `GET /graphql?query=…` (URL-encoded parameters; `variables` and `extensions` as JSON).
pub(super) async fn get(
    executor: &Executor,
    headers: &HeaderMap,
    query: &str,
    caller: Caller,
) -> Response {
    let media = MediaType::negotiate(headers);
    let mut params = Map::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let value = match &*key {
            "variables" | "extensions" => match serde_json::from_str(&value) {
                Ok(value) => value,
                Err(error) => {
                    return bad_request(media, &format!("`{key}` is not valid JSON: {error}"));
                }
            },
            _ => Value::String(value.into_owned()),
        };
        params.insert(key.into_owned(), value);
    }
    answer(executor, &params, media, caller).await
}

/// Answers a request given by its parameters, once their types are checked.
async fn answer(
    executor: &Executor,
    params: &Map<String, Value>,
    media: MediaType,
    caller: Caller,
) -> Response {
    match request_from_params(params) {
        Ok(request) => execute(executor, request, media, caller).await,
        Err(message) => bad_request(media, &message),
    }
}

/// A request's parameters, their types checked.
struct Params {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Variables,
    /// `extensions.persistedQuery`, when the client sent one.
    persisted: Option<apq::PersistedQuery>,
}

/// Checks the parameter types the specification requires.
fn request_from_params(params: &Map<String, Value>) -> Result<Params, String> {
    let persisted = match params.get("extensions") {
        None | Some(Value::Null) => None,
        Some(Value::Object(extensions)) => apq::PersistedQuery::from_extensions(extensions)?,
        Some(_) => return Err("the `extensions` parameter must be a map".to_owned()),
    };
    let query = match params.get("query") {
        Some(Value::String(query)) => Some(query.clone()),
        None | Some(Value::Null) if persisted.is_some() => None,
        _ => return Err("the `query` parameter must be a string".to_owned()),
    };
    let operation_name = match params.get("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name.clone()),
        Some(_) => return Err("the `operationName` parameter must be a string".to_owned()),
    };
    let variables = match params.get("variables") {
        None | Some(Value::Null) => Variables::default(),
        Some(variables @ Value::Object(_)) => Variables::from_json(variables.clone()),
        Some(_) => return Err("the `variables` parameter must be a map".to_owned()),
    };
    Ok(Params {
        query,
        operation_name,
        variables,
        persisted,
    })
}

/// Finds the document (sent, or named by a persisted-query hash), then answers with the
/// operation's plan if it is cached and covers the request, or with async-graphql, after
/// which a document that executed is compiled for next time.
async fn execute(
    executor: &Executor,
    params: Params,
    media: MediaType,
    caller: Caller,
) -> Response {
    let operation_name = params.operation_name.as_deref().map(Box::from);
    let (key, cached, document) = match (params.query, &params.persisted) {
        (_, Some(_)) if !executor.apq => {
            return persisted_refusal(media, &PersistedQueryError::NotSupported);
        }
        (Some(query), persisted) => {
            let hash = plan::document_hash(&query);
            if persisted.as_ref().is_some_and(|p| p.hash != hash) {
                return persisted_refusal(media, &PersistedQueryError::HashMismatch);
            }
            let key = Key {
                hash,
                operation_name,
            };
            let cached = executor.plans.get(&key);
            (key, cached, Document::Sent(query))
        }
        (None, Some(persisted)) => {
            let key = Key {
                hash: persisted.hash,
                operation_name,
            };
            let Some(cached) = executor.plans.get(&key) else {
                return persisted_refusal(media, &PersistedQueryError::NotFound);
            };
            let document = Document::Cached(cached.document.clone());
            (key, Some(cached), document)
        }
        (None, None) => {
            return bad_request(media, "the `query` parameter must be a string");
        }
    };
    if let Some(plan) = cached.as_ref().and_then(|c| c.plan.as_ref())
        && let Some(body) = plan
            .execute(&executor.audit, &caller, &params.variables)
            .await
    {
        metrics::counter!("gateway_graphql_executions_total", "executor" => "plan").increment(1);
        return ok(media, body);
    }
    metrics::counter!("gateway_graphql_executions_total", "executor" => "reference").increment(1);
    // Shared only now: a request a plan answered never copies its document.
    let document = document.into_shared();
    let mut request = async_graphql::Request::new(document.to_string()).variables(params.variables);
    if let Some(name) = &key.operation_name {
        request = request.operation_name(name.to_string());
    }
    let (response, executed) = reference(&executor.schema, request, media, caller).await;
    if executed && cached.is_none() {
        executor.plans.insert(key, document);
    }
    response
}

/// A request's document: the text it sent, or the one its persisted-query hash names.
enum Document {
    Sent(String),
    Cached(Arc<str>),
}

impl Document {
    /// The text as the operation cache keeps it.
    fn into_shared(self) -> Arc<str> {
        match self {
            Self::Sent(text) => Arc::from(text),
            Self::Cached(text) => text,
        }
    }
}

/// A persisted-query refusal. `PERSISTED_QUERY_NOT_FOUND` asks the client to send the
/// document: under `application/json` it is a 200 (older Apollo Clients stop using
/// persisted queries on a 400), under the newer media type the 4xx the specification
/// requires of a response without `data`.
fn persisted_refusal(media: MediaType, error: &PersistedQueryError) -> Response {
    let status = match (error, media) {
        (PersistedQueryError::HashMismatch, _) | (_, MediaType::GraphqlResponseJson) => {
            StatusCode::BAD_REQUEST
        }
        (_, MediaType::Json) => StatusCode::OK,
    };
    refuse(media, status, error.code(), &error.to_string())
}

fn ok(media: MediaType, body: Vec<u8>) -> Response {
    let mut http = (StatusCode::OK, body).into_response();
    http.headers_mut()
        .insert(header::CONTENT_TYPE, media.content_type());
    http
}

/// GraphQL's null propagation at the root: a non-null root field that failed nulls `data`
/// whole. async-graphql leaves such a field out and serves the others; a nullable root field
/// that failed is still there, as `null`, so a missing key is a failed non-null one.
pub(in crate::graphql) fn null_failed_root(response: &mut async_graphql::Response) {
    let async_graphql::Value::Object(data) = &response.data else {
        return;
    };
    let failed = response.errors.iter().any(|error| {
        matches!(error.path.first(), Some(async_graphql::PathSegment::Field(key))
            if !data.contains_key(key.as_str()))
    });
    if failed {
        response.data = async_graphql::Value::Null;
    }
}

/// Runs `request` through async-graphql; the flag says whether it executed (no request
/// error), so that its document may be compiled.
async fn reference(
    schema: &GatewaySchema,
    mut request: async_graphql::Request,
    media: MediaType,
    caller: Caller,
) -> (Response, bool) {
    let coder_request_id = caller.coder_request_id.clone();
    // Parsed once here: async-graphql executes the parsed document, and the root's order is
    // read from it. `None` when the text is not GraphQL.
    let operation_name = request.operation_name.clone();
    let variables = request.variables.clone();
    let root_order = request
        .parsed_query()
        .ok()
        .map(|document| plan::root_order(document, operation_name.as_deref(), &variables));
    let parsed = root_order.is_some();
    let mut response = schema.execute(request.data(caller)).await;
    null_failed_root(&mut response);
    if let (Some(Some(order)), async_graphql::Value::Object(data)) =
        (root_order, &mut response.data)
    {
        let at = |key: &async_graphql::Name| order.iter().position(|k| k == key);
        data.sort_by(|a, _, b, _| at(a).cmp(&at(b)));
    }
    if let Some(id) = coder_request_id
        .lock()
        .ok()
        .and_then(|mut slot| slot.take())
    {
        response.extensions.insert(
            "coderRequestId".to_owned(),
            async_graphql::Value::String(id),
        );
    }
    // A request that failed before execution (parse, validation, variable coercion, limits)
    // has errors without a path; a resolver's error always has one.
    let request_error = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    if request_error {
        for error in &mut response.errors {
            let code = match error.message.as_str() {
                _ if !parsed => "GRAPHQL_PARSE_FAILED",
                "Query is too complex." => "GRAPHQL_COMPLEXITY_LIMIT",
                _ => "GRAPHQL_VALIDATION_FAILED",
            };
            let extensions = error.extensions.get_or_insert_with(Default::default);
            if extensions.get("code").is_none() {
                extensions.set("code", code);
            }
        }
    }
    // Encoded straight to bytes: a page is the largest thing the gateway writes, and going
    // through a JSON tree first would copy it once more.
    let (status, encoded) = if request_error && media == MediaType::GraphqlResponseJson {
        // The specification: a request that never executed has no `data` entry.
        #[derive(serde::Serialize)]
        struct RequestError<'a> {
            errors: &'a [async_graphql::ServerError],
            #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
            extensions: &'a std::collections::BTreeMap<String, async_graphql::Value>,
        }
        let body = RequestError {
            errors: &response.errors,
            extensions: &response.extensions,
        };
        (StatusCode::BAD_REQUEST, serde_json::to_vec(&body))
    } else {
        (StatusCode::OK, serde_json::to_vec(&response))
    };
    let body = match encoded {
        Ok(body) => body,
        Err(error) => {
            let refusal = refuse(
                media,
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_SERVER_ERROR",
                &format!("cannot encode the response: {error}"),
            );
            return (refusal, false);
        }
    };
    let mut http = (status, body).into_response();
    http.headers_mut()
        .insert(header::CONTENT_TYPE, media.content_type());
    (http, !request_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> MediaType {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, value.parse().expect("header"));
        MediaType::negotiate(&headers)
    }

    #[test]
    fn negotiates_the_response_media_type() {
        assert_eq!(MediaType::negotiate(&HeaderMap::new()), MediaType::Json);
        assert_eq!(accept("*/*"), MediaType::Json);
        assert_eq!(accept("application/json"), MediaType::Json);
        assert_eq!(
            accept("application/graphql-response+json, application/json;q=0.9"),
            MediaType::GraphqlResponseJson
        );
        assert_eq!(
            accept("application/graphql-response+json;q=0"),
            MediaType::Json
        );
    }

    #[test]
    fn parameters_must_have_the_specified_types() {
        let params = |value: Value| value.as_object().cloned().expect("object");
        let ok = |value: Value| request_from_params(&params(value)).is_ok();
        assert!(ok(serde_json::json!({"query": "{ __typename }"})));
        assert!(!ok(serde_json::json!({})));
        assert!(!ok(serde_json::json!({"query": 1})));
        assert!(!ok(
            serde_json::json!({"query": "{ a }", "operationName": 1})
        ));
        assert!(!ok(serde_json::json!({"query": "{ a }", "variables": "x"})));
        assert!(!ok(
            serde_json::json!({"query": "{ a }", "extensions": "x"})
        ));
        assert!(ok(
            serde_json::json!({"query": "{ a }", "operationName": null, "variables": null, "extensions": null})
        ));
    }
}
