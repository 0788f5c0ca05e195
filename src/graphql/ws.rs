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

/// A message a subscription task hands to the connection's writer.
///
/// It names the subscription by id *and* serial: an id is free for reuse the moment its
/// `complete` or `error` is sent (or the client's `complete` is read), so a message still
/// queued from an earlier subscription with the same id must neither reach the client nor
/// end the new one.
struct Outgoing {
    id: String,
    serial: u64,
    message: Value,
    /// The subscription's last message (its `complete` or `error`).
    last: bool,
}

/// The subscriptions a connection runs, by id, each with the serial that tells it from an
/// earlier one that had the same id.
#[derive(Default)]
struct Running {
    tasks: HashMap<String, (u64, AbortHandle)>,
    serials: u64,
}

impl Running {
    /// Whether `outgoing` goes to the client: only a current subscription's messages do.
    /// Its last message frees its id at once, so the client may take the id again as soon
    /// as it reads that message.
    fn deliver(&mut self, outgoing: &Outgoing) -> bool {
        let current = self
            .tasks
            .get(&outgoing.id)
            .is_some_and(|(serial, _)| *serial == outgoing.serial);
        if current && outgoing.last {
            self.tasks.remove(&outgoing.id);
        }
        current
    }

    /// Runs the task `spawn` starts as the subscription `id`, its messages carrying the new
    /// serial `spawn` is given.
    fn start(&mut self, id: &str, spawn: impl FnOnce(u64) -> AbortHandle) {
        self.serials += 1;
        let task = spawn(self.serials);
        self.tasks.insert(id.to_owned(), (self.serials, task));
    }

    /// Stops and forgets the subscription with this id, if one runs.
    fn stop(&mut self, id: &str) {
        if let Some((_, task)) = self.tasks.remove(id) {
            task.abort();
        }
    }
}

impl Drop for Running {
    /// A connection's subscriptions end with it, however it ends.
    fn drop(&mut self) {
        for (_, task) in self.tasks.values() {
            task.abort();
        }
    }
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
    let mut running = Running::default();
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
                        if let Some(id) = message["id"].as_str() {
                            running.stop(id);
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
            Some(outgoing) = rx.recv() => {
                if !running.deliver(&outgoing) {
                    continue;
                }
                if socket.send(Message::Text(outgoing.message.to_string().into())).await.is_err() {
                    break;
                }
            }
            _ = keepalive.tick() => {
                if socket.send(Message::Text(json!({"type": "ping"}).to_string().into())).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// Starts the operation of a `subscribe` message. A protocol violation closes the connection
/// (`Err` with the close code); an operation over the connection's limit gets an `error`
/// message (`Ok(Some)`).
fn subscribe(
    message: &Value,
    running: &mut Running,
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
    if running.tasks.contains_key(id) {
        return Err((4409, format!("Subscriber for {id} already exists")));
    }
    if running.tasks.len() >= limits.max_subscriptions {
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
    running.start(id, |serial| {
        let run = run(
            schema.clone(),
            request.data(caller),
            id.to_owned(),
            serial,
            tx.clone(),
        );
        tokio::spawn(run).abort_handle()
    });
    Ok(None)
}

/// Runs one operation: `next` for each result, then `complete`; a result without data (the
/// operation was refused or failed) is the protocol's `error`, which ends it.
async fn run(
    schema: GatewaySchema,
    request: async_graphql::Request,
    id: String,
    serial: u64,
    tx: mpsc::Sender<Outgoing>,
) {
    let send = |message: Value, last: bool| {
        tx.send(Outgoing {
            id: id.clone(),
            serial,
            message,
            last,
        })
    };
    let mut responses = schema.execute_stream(request);
    while let Some(response) = responses.next().await {
        if response.data == async_graphql::Value::Null && !response.errors.is_empty() {
            let _ = send(
                json!({"type": "error", "id": id, "payload": response.errors}),
                true,
            )
            .await;
            return;
        }
        let next = json!({"type": "next", "id": id, "payload": response});
        if send(next, false).await.is_err() {
            return;
        }
    }
    let _ = send(json!({"type": "complete", "id": id}), true).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str, serial: u64, last: bool) -> Outgoing {
        Outgoing {
            id: id.to_owned(),
            serial,
            message: json!({"id": id}),
            last,
        }
    }

    #[tokio::test]
    async fn a_late_message_of_an_ended_subscription_neither_reaches_nor_ends_its_successor() {
        let idle = |_| tokio::spawn(std::future::pending::<()>()).abort_handle();
        let mut running = Running::default();
        running.start("1", idle);
        let first = running.serials;
        // The client completes "1" and subscribes with "1" again before the first stream's
        // last messages (queued already) are written.
        running.stop("1");
        running.start("1", idle);
        let second = running.serials;
        assert!(
            !running.deliver(&message("1", first, false)),
            "a stale `next`"
        );
        assert!(!running.deliver(&message("1", first, true)), "a stale end");
        assert!(
            running.tasks.contains_key("1"),
            "the stale end left the new one running"
        );
        // The new stream's own end frees the id at once.
        assert!(running.deliver(&message("1", second, false)));
        assert!(running.deliver(&message("1", second, true)));
        assert!(
            !running.tasks.contains_key("1"),
            "the id is free after its end"
        );
    }

    #[tokio::test]
    async fn every_subscription_of_a_connection_is_aborted_with_it() {
        let mut running = Running::default();
        let task = tokio::spawn(std::future::pending::<()>());
        running.start("1", |_| task.abort_handle());
        drop(running);
        assert!(task.await.is_err_and(|e| e.is_cancelled()));
    }

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
