//! GraphQL over WebSocket with the `graphql-transport-ws` protocol (the one of `graphql-ws`,
//! Apollo Client and `GraphiQL`), on `GET /graphql`.
//!
//! Written here rather than taken from async-graphql, whose handler has no connection-init
//! timeout and no per-connection subscription limit, and reports a refused subscription as a
//! `next` message where clients expect the protocol's `error`. Browsers cannot set WebSocket
//! headers, so the token comes from the `connection_init` payload (`Coder-Session-Token`, or
//! `Authorization: Bearer …`, key case-insensitive, also inside a `headers` object), or else
//! from the upgrade request's own headers.

use std::{collections::HashMap, time::Duration};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::{sync::mpsc, task::AbortHandle};

use super::{Caller, GatewaySchema};
use crate::{
    auth::{SessionToken, TokenError},
    call::RequestInfo,
};

/// The subprotocol this handler speaks.
pub(super) const PROTOCOL: &str = "graphql-transport-ws";
/// How often an idle connection is pinged, so proxies keep it and dead peers are noticed.
const KEEPALIVE: Duration = Duration::from_secs(20);

/// Bounds on one WebSocket connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WsLimits {
    pub(crate) init_timeout: Duration,
    pub(crate) max_subscriptions: usize,
}

/// What subscription tasks hand to the connection's writer.
enum Outgoing {
    Message(Value),
    /// The subscription ended (after its `complete` or `error`).
    Finished(String),
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    }))
}

/// The token in a `connection_init` payload, if it carries one.
fn payload_token(payload: &Value) -> Option<Result<SessionToken, TokenError>> {
    let object = payload.as_object()?;
    let find = |object: &serde_json::Map<String, Value>, name: &str| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .and_then(|(_, value)| value.as_str())
            .map(str::to_owned)
    };
    let nested = object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("headers"))
        .and_then(|(_, value)| value.as_object());
    let session = find(object, "coder-session-token")
        .or_else(|| nested.and_then(|n| find(n, "coder-session-token")));
    let authorization =
        find(object, "authorization").or_else(|| nested.and_then(|n| find(n, "authorization")));
    if session.is_none() && authorization.is_none() {
        return None;
    }
    Some(SessionToken::from_credentials(
        session.as_deref().map(str::as_bytes),
        authorization.as_deref().map(str::as_bytes),
    ))
}

/// Waits for `connection_init` (within the timeout) and acknowledges it; returns the
/// connection's token, or `None` when the connection ended.
async fn handshake(
    socket: &mut WebSocket,
    timeout: Duration,
    upgrade_token: Result<SessionToken, TokenError>,
) -> Option<Result<SessionToken, TokenError>> {
    let init = tokio::time::timeout(timeout, async {
        loop {
            match socket.recv().await {
                Some(Ok(Message::Text(text))) => return Some(text),
                Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    let Ok(text) = init else {
        let _ = socket
            .send(close(4408, "Connection initialisation timeout"))
            .await;
        return None;
    };
    let text = text?;
    let message: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if message["type"] != "connection_init" {
        let code = if message["type"] == "subscribe" {
            4401
        } else {
            4400
        };
        let _ = socket.send(close(code, "expected connection_init")).await;
        return None;
    }
    let token = payload_token(&message["payload"]).unwrap_or(upgrade_token);
    socket
        .send(Message::Text(
            json!({"type": "connection_ack"}).to_string().into(),
        ))
        .await
        .ok()?;
    Some(token)
}

/// Serves one connection until either side closes it.
pub(super) async fn serve(
    mut socket: WebSocket,
    schema: GatewaySchema,
    upgrade_token: Result<SessionToken, TokenError>,
    info: RequestInfo,
    limits: WsLimits,
) {
    let Some(token) = handshake(&mut socket, limits.init_timeout, upgrade_token).await else {
        return;
    };
    let (tx, mut rx) = mpsc::channel::<Outgoing>(16);
    let mut running: HashMap<String, AbortHandle> = HashMap::new();
    let mut keepalive =
        tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => {
                        let _ = socket.send(close(4400, "binary messages are not part of the protocol")).await;
                        break;
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                let Ok(message) = serde_json::from_str::<Value>(&text) else {
                    let _ = socket.send(close(4400, "invalid JSON message")).await;
                    break;
                };
                match message["type"].as_str() {
                    Some("ping") => {
                        let _ = socket.send(Message::Text(json!({"type": "pong"}).to_string().into())).await;
                    }
                    Some("pong") => {}
                    Some("connection_init") => {
                        let _ = socket.send(close(4429, "Too many initialisation requests")).await;
                        break;
                    }
                    Some("complete") => {
                        if let Some(task) = message["id"].as_str().and_then(|id| running.remove(id)) {
                            task.abort();
                        }
                    }
                    Some("subscribe") => {
                        match subscribe(&message, &mut running, limits, &schema, &token, &info, &tx) {
                            Ok(None) => {}
                            Ok(Some(refusal)) => {
                                let _ = socket.send(Message::Text(refusal.to_string().into())).await;
                            }
                            Err((code, reason)) => {
                                let _ = socket.send(close(code, &reason)).await;
                                break;
                            }
                        }
                    }
                    _ => {
                        let _ = socket.send(close(4400, "unknown message type")).await;
                        break;
                    }
                }
            }
            Some(outgoing) = rx.recv() => match outgoing {
                Outgoing::Message(message) => {
                    if socket.send(Message::Text(message.to_string().into())).await.is_err() {
                        break;
                    }
                }
                Outgoing::Finished(id) => {
                    running.remove(&id);
                }
            },
            _ = keepalive.tick() => {
                if socket.send(Message::Text(json!({"type": "ping"}).to_string().into())).await.is_err() {
                    break;
                }
            }
        }
    }
    for task in running.into_values() {
        task.abort();
    }
}

/// Starts the operation of a `subscribe` message. A protocol violation closes the connection
/// (`Err` with the close code); an operation over the connection's limit gets an `error`
/// message (`Ok(Some)`).
fn subscribe(
    message: &Value,
    running: &mut HashMap<String, AbortHandle>,
    limits: WsLimits,
    schema: &GatewaySchema,
    token: &Result<SessionToken, TokenError>,
    info: &RequestInfo,
    tx: &mpsc::Sender<Outgoing>,
) -> Result<Option<Value>, (u16, String)> {
    let payload = &message["payload"];
    let (Some(id), Some(query)) = (message["id"].as_str(), payload["query"].as_str()) else {
        return Err((
            4400,
            "a subscribe message needs an id and a payload with a query".to_owned(),
        ));
    };
    if running.contains_key(id) {
        return Err((4409, format!("Subscriber for {id} already exists")));
    }
    if running.len() >= limits.max_subscriptions {
        return Ok(Some(json!({"type": "error", "id": id, "payload": [{
            "message": format!("this connection already holds {} subscriptions (--max-subscriptions-per-connection)", limits.max_subscriptions),
            "extensions": {"code": "TOO_MANY_SUBSCRIPTIONS"},
        }]})));
    }
    let mut request = async_graphql::Request::new(query);
    if let Some(name) = payload["operationName"].as_str() {
        request = request.operation_name(name);
    }
    if payload["variables"].is_object() {
        request = request.variables(async_graphql::Variables::from_json(
            payload["variables"].clone(),
        ));
    }
    let caller = Caller {
        token: token.clone(),
        info: info.clone(),
        coder_request_id: std::sync::Arc::default(),
    };
    let task = tokio::spawn(run(
        schema.clone(),
        request.data(caller),
        id.to_owned(),
        tx.clone(),
    ));
    running.insert(id.to_owned(), task.abort_handle());
    Ok(None)
}

/// Runs one operation: `next` for each result, then `complete`; a result without data (the
/// operation was refused or failed) is the protocol's `error`, which ends it.
async fn run(
    schema: GatewaySchema,
    request: async_graphql::Request,
    id: String,
    tx: mpsc::Sender<Outgoing>,
) {
    let mut responses = schema.execute_stream(request);
    let mut failed = false;
    while let Some(response) = responses.next().await {
        let message = if response.data == async_graphql::Value::Null && !response.errors.is_empty()
        {
            failed = true;
            json!({"type": "error", "id": id, "payload": response.errors})
        } else {
            json!({"type": "next", "id": id, "payload": response})
        };
        if tx.send(Outgoing::Message(message)).await.is_err() {
            return;
        }
        if failed {
            break;
        }
    }
    if !failed {
        let _ = tx
            .send(Outgoing::Message(json!({"type": "complete", "id": id})))
            .await;
    }
    let _ = tx.send(Outgoing::Finished(id)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_found_in_the_payload_whatever_the_key_case() {
        let token = |payload: Value| payload_token(&payload).map(|t| t.map(|t| format!("{t:?}")));
        assert!(token(json!({"Coder-Session-Token": "abc-def"})).is_some_and(|t| t.is_ok()));
        assert!(token(json!({"coder-session-token": "abc-def"})).is_some_and(|t| t.is_ok()));
        assert!(token(json!({"authorization": "Bearer abc-def"})).is_some_and(|t| t.is_ok()));
        assert!(
            token(json!({"headers": {"AUTHORIZATION": "Bearer abc-def"}}))
                .is_some_and(|t| t.is_ok())
        );
        assert!(token(json!({"Authorization": "Basic x"})).is_some_and(|t| t.is_err()));
        assert!(token(json!({})).is_none());
        assert!(token(Value::Null).is_none());
    }
}
