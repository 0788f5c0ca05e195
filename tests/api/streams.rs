//! Exports and watches against a demo Coder that records rows and reorders ties while it is
//! being paged: every row exactly once, in order, across resumes, outages and shared
//! pollers, through the core and through tonic's streaming client.

use std::{collections::HashSet, time::Duration};

use axum::http::StatusCode;
use coder_audit_gateway::{
    audit::ExportRequest,
    audit::SessionToken,
    audit::WatchRequest,
    audit::{AuditLogs, Limits, StreamOptions},
    audit::{CallContext, Protocol, RequestInfo},
    audit::{ClientConfig, CoderClient},
    demo::{self, DEMO_MEMBER_TOKEN, DEMO_TOKEN, DemoConfig, DemoHandle},
    grpc::pb,
};
use proptest::prelude::*;
use tonic::{Code, Request, Streaming};

use crate::helpers::{Gateway, gateway};

/// A demo that shuffles ties on every call, on its own port, with its handle.
async fn churning_demo(rows: usize) -> (String, DemoHandle) {
    let (addr, handle) = demo::spawn_with_handle(DemoConfig {
        rows,
        shuffle_ties: true,
        ..DemoConfig::default()
    })
    .await
    .expect("demo starts");
    (format!("http://{addr}"), handle)
}

/// The gateway's core over `upstream`, watches polling every `interval`.
pub(crate) fn core(upstream: &str, interval: Duration) -> AuditLogs {
    let client = CoderClient::new(
        &upstream.parse().expect("url"),
        ClientConfig {
            timeout: Duration::from_secs(10),
            retries: 0,
            max_body: 64 << 20,
            ca_pem: None,
        },
    )
    .expect("client");
    AuditLogs::new(
        client,
        Limits::default(),
        StreamOptions {
            watch_interval: interval,
            ..StreamOptions::default()
        },
    )
}

/// A gRPC call with `token`.
pub(crate) fn call(token: &str) -> CallContext {
    CallContext {
        token: SessionToken::from_credentials(Some(token.as_bytes()), None).expect("token"),
        protocol: Protocol::Grpc,
        info: RequestInfo::generate(),
        deadline: None,
    }
}

fn ids(rows: &[(String, String)]) -> HashSet<String> {
    rows.iter().map(|(id, _)| id.clone()).collect()
}

/// Asserts two sets of ids are equal, naming only the differences.
#[track_caller]
fn assert_same_ids(got: &HashSet<String>, want: &HashSet<String>) {
    let extra: Vec<_> = got.difference(want).collect();
    let missing: Vec<_> = want.difference(got).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "{} extra rows {extra:?}, {} missing rows {missing:?}",
        extra.len(),
        missing.len()
    );
}

/// Checks an export's rows against the trail as it stood at the start: each row once,
/// newest first.
fn assert_exact(delivered: &[(String, String)], at_start: &[(String, String)]) {
    let unique: HashSet<&String> = delivered.iter().map(|(id, _)| id).collect();
    assert_eq!(unique.len(), delivered.len(), "a row was delivered twice");
    assert_same_ids(&ids(delivered), &ids(at_start));
    let times: Vec<chrono::DateTime<chrono::Utc>> = delivered
        .iter()
        .map(|(_, t)| t.parse().expect("time"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "not newest first");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The export's promise under the worst churn the demo can make: rows recorded before
    /// every call (every other call's tied with the newest row), ties reshuffled on every
    /// call, any page size, and a resume from any message.
    #[test]
    fn export_then_watch_is_exact_under_churn(
        page_size in 1_i32..40,
        churn in 0_usize..6,
        resume_after in 0_usize..8,
        rows in 40_usize..180,
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let (upstream, handle) = churning_demo(rows).await;
            let audit = core(&upstream, Duration::from_millis(100));
            let at_start = handle.snapshot();
            let request = ExportRequest { page_size, ..ExportRequest::default() };
            let mut export = audit.export(call(DEMO_TOKEN), request.clone()).await.expect("export starts");
            handle.set_churn(churn);
            let watch_cursor = export.watch_cursor().to_string();
            let mut delivered = Vec::new();
            let mut messages = 0;
            let mut resume_cursor = None;
            while let Some(batch) = export.next().await.expect("export batch") {
                delivered.extend(batch.rows.iter().map(|r| (r.id.clone(), r.time.to_string())));
                messages += 1;
                if messages == resume_after + 1 {
                    resume_cursor = Some((batch.cursor.clone(), delivered.len()));
                }
            }
            assert_exact(&delivered, &at_start);

            // Resuming from a message yields exactly the rest.
            if let Some((cursor, before)) = resume_cursor {
                let mut resumed = audit
                    .export(call(DEMO_TOKEN), ExportRequest { after: Some(cursor), ..request })
                    .await
                    .expect("resume starts");
                let mut rest = delivered[..before].to_vec();
                while let Some(batch) = resumed.next().await.expect("resumed batch") {
                    rest.extend(batch.rows.iter().map(|r| (r.id.clone(), r.time.to_string())));
                }
                assert_exact(&rest, &at_start);
            }

            // A watch from the export's start yields exactly what was recorded since.
            handle.set_churn(0);
            handle.record(3, true);
            let recorded: Vec<(String, String)> = handle.snapshot().into_iter().filter(|(id, _)| !ids(&at_start).contains(id)).collect();
            let mut watch = audit
                .watch(call(DEMO_TOKEN), WatchRequest { after: Some(watch_cursor), ..WatchRequest::default() })
                .await
                .expect("watch starts");
            let mut watched = Vec::new();
            while watched.len() < recorded.len() {
                let batch = tokio::time::timeout(Duration::from_secs(30), watch.next(1000)).await.expect("rows in time").expect("watch batch");
                watched.extend(batch.rows.iter().map(|r| (r.id.clone(), r.time.to_string())));
            }
            assert_same_ids(&ids(&watched), &ids(&recorded));
            assert_eq!(ids(&watched).len(), watched.len(), "a row was watched twice");
            let times: Vec<chrono::DateTime<chrono::Utc>> = watched.iter().map(|(_, t)| t.parse().expect("time")).collect();
            assert!(times.windows(2).all(|w| w[0] <= w[1]), "not oldest first");
            // Nothing more arrives: no row twice across the poller and the catch-up.
            assert!(tokio::time::timeout(Duration::from_millis(400), watch.next(1000)).await.is_err());
        });
    }
}

/// A gateway on a churning demo, with a fast watch interval.
async fn streaming_gateway(rows: usize, extra: &[&str]) -> (Gateway, DemoHandle) {
    let (upstream, handle) = churning_demo(rows).await;
    let mut args = vec!["--watch-interval", "200ms"];
    args.extend_from_slice(extra);
    (gateway(&upstream, &args).await, handle)
}

fn authed<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("coder-session-token", token.parse().expect("metadata"));
    request
}

/// `ExportAuditLogs` with a page size (and otherwise defaults), as the demo owner.
async fn start_export(
    client: &mut pb::audit_service_client::AuditServiceClient<tonic::transport::Channel>,
    page_size: i32,
    after: String,
) -> Streaming<pb::ExportAuditLogsResponse> {
    client
        .export_audit_logs(authed(
            pb::ExportAuditLogsRequest {
                page_size,
                after,
                ..Default::default()
            },
            DEMO_TOKEN,
        ))
        .await
        .expect("export starts")
        .into_inner()
}

async fn next<T>(stream: &mut Streaming<T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("a message in time")
        .expect("no error")
        .expect("the stream goes on")
}

fn rows_of(logs: &[pb::AuditLog]) -> Vec<(String, String)> {
    logs.iter()
        .map(|l| {
            let t = l.time.expect("time");
            let time =
                chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).expect("nanos"))
                    .expect("time");
            (
                l.id.clone(),
                time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            )
        })
        .collect()
}

#[tokio::test]
async fn grpc_export_streams_everything_resumes_and_hands_over_to_a_watch() {
    let (gateway, handle) = streaming_gateway(500, &[]).await;
    let mut client = gateway.grpc().await;
    let at_start = handle.snapshot();
    let mut stream = start_export(&mut client, 50, String::new()).await;
    let first = next(&mut stream).await;
    handle.set_churn(2);
    let watch_cursor = first.watch_cursor.clone();
    assert!(!watch_cursor.is_empty());
    let mut delivered = rows_of(&first.audit_logs);
    let resume = first.cursor.clone();
    while let Some(message) = stream.message().await.expect("export message") {
        assert_eq!(message.watch_cursor, watch_cursor);
        delivered.extend(rows_of(&message.audit_logs));
    }
    let times_only =
        |rows: &[(String, String)]| rows.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
    assert_eq!(times_only(&delivered).len(), at_start.len());
    assert_same_ids(&ids(&delivered), &ids(&at_start));

    // Resume after the first message: the rest, exactly.
    let mut resumed = start_export(&mut client, 50, resume).await;
    let mut rest = rows_of(&first.audit_logs);
    while let Some(message) = resumed.message().await.expect("resumed message") {
        rest.extend(rows_of(&message.audit_logs));
    }
    assert_eq!(rest.len(), at_start.len());
    assert_same_ids(&ids(&rest), &ids(&at_start));

    // Watch from the export's start: exactly the rows recorded since.
    handle.set_churn(0);
    let mut watch = client
        .watch_audit_logs(authed(
            pb::WatchAuditLogsRequest {
                after: watch_cursor,
                ..Default::default()
            },
            DEMO_TOKEN,
        ))
        .await
        .expect("watch starts")
        .into_inner();
    let recorded: HashSet<String> = ids(&handle.snapshot())
        .difference(&ids(&at_start))
        .cloned()
        .collect();
    let mut watched = Vec::new();
    while watched.len() < recorded.len() {
        watched.extend(rows_of(&next(&mut watch).await.audit_logs));
    }
    assert_same_ids(&ids(&watched), &recorded);
    assert_eq!(watched.len(), recorded.len());
}

#[tokio::test]
async fn a_burst_larger_than_a_page_and_a_tied_burst_arrive_once_oldest_first() {
    let (gateway, handle) = streaming_gateway(50, &[]).await;
    let mut client = gateway.grpc().await;
    let mut watch = client
        .watch_audit_logs(authed(pb::WatchAuditLogsRequest::default(), DEMO_TOKEN))
        .await
        .expect("watch starts")
        .into_inner();
    for tied in [false, true] {
        let before = ids(&handle.snapshot());
        handle.record(250, tied);
        let burst: Vec<(String, String)> = handle
            .snapshot()
            .into_iter()
            .filter(|(id, _)| !before.contains(id))
            .collect();
        let mut watched = Vec::new();
        while watched.len() < burst.len() {
            let message = next(&mut watch).await;
            assert!(
                message.audit_logs.len() <= 100,
                "messages hold a page at most"
            );
            watched.extend(rows_of(&message.audit_logs));
        }
        assert_eq!(watched.len(), 250);
        assert_same_ids(&ids(&watched), &ids(&burst));
        if !tied {
            let oldest_first: Vec<&String> = burst.iter().rev().map(|(id, _)| id).collect();
            let order: Vec<&String> = watched.iter().map(|(id, _)| id).collect();
            assert!(order == oldest_first, "not oldest first");
        }
    }
}

#[tokio::test]
async fn a_watch_rides_out_an_outage_and_delivers_what_was_recorded_meanwhile() {
    let (gateway, handle) = streaming_gateway(30, &[]).await;
    let mut client = gateway.grpc().await;
    let mut watch = client
        .watch_audit_logs(authed(pb::WatchAuditLogsRequest::default(), DEMO_TOKEN))
        .await
        .expect("watch starts")
        .into_inner();
    for failure in [
        (StatusCode::SERVICE_UNAVAILABLE, None),
        (StatusCode::TOO_MANY_REQUESTS, Some(1)),
    ] {
        handle.fail_with(Some(failure));
        let calls = handle.audit_calls();
        handle.record(2, false);
        // The poller keeps trying while Coder fails.
        while handle.audit_calls() < calls + 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        handle.fail_with(None);
        let mut watched = Vec::new();
        while watched.len() < 2 {
            watched.extend(rows_of(&next(&mut watch).await.audit_logs));
        }
        assert_eq!(watched.len(), 2);
    }
    // A token Coder stops accepting ends the watch with its status.
    handle.fail_with(Some((StatusCode::UNAUTHORIZED, None)));
    let status = tokio::time::timeout(Duration::from_secs(30), watch.message())
        .await
        .expect("ends in time")
        .expect_err("the watch ends");
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn identical_watches_share_one_poller_and_leaving_stops_the_calls() {
    let (upstream, handle) = churning_demo(30).await;
    let gateway = gateway(&upstream, &["--watch-interval", "300ms"]).await;
    let mut client = gateway.grpc().await;
    let mut watches = Vec::new();
    for _ in 0..5 {
        watches.push(
            client
                .watch_audit_logs(authed(
                    pb::WatchAuditLogsRequest {
                        q: "action:login".into(),
                        ..Default::default()
                    },
                    DEMO_TOKEN,
                ))
                .await
                .expect("watch starts")
                .into_inner(),
        );
    }
    let started = handle.audit_calls();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let polled = handle.audit_calls() - started;
    // One poller at 300 ms: about five polls in 1.5 s, not twenty-five.
    assert!((1..=7).contains(&polled), "{polled} calls for 5 watches");
    drop(watches);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let after_leaving = handle.audit_calls();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(handle.audit_calls(), after_leaving, "the poller stopped");
}

#[tokio::test]
async fn a_cancelled_export_stops_calling_coder() {
    let (gateway, handle) = streaming_gateway(3000, &[]).await;
    let mut client = gateway.grpc().await;
    let mut stream = start_export(&mut client, 10, String::new()).await;
    next(&mut stream).await;
    drop(stream);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let calls = handle.audit_calls();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Backpressure means at most the page in flight was read after the cancel.
    assert!(handle.audit_calls() <= calls + 1);
    assert!(
        calls < 20,
        "{calls} calls: the export ran ahead of its reader"
    );
}

#[tokio::test]
async fn stream_errors_map_to_the_list_statuses() {
    let (gateway, _handle) = streaming_gateway(30, &["--max-watches", "2"]).await;
    let mut client = gateway.grpc().await;
    let export = |q: &str, token: &str, after: &str, page_size: i32| {
        authed(
            pb::ExportAuditLogsRequest {
                q: q.into(),
                after: after.into(),
                page_size,
                ..Default::default()
            },
            token,
        )
    };
    let code = |result: Result<
        tonic::Response<Streaming<pb::ExportAuditLogsResponse>>,
        tonic::Status,
    >| { result.map(|_| ()).expect_err("refused").code() };
    for (request, expected) in [
        (export("foo:bar", DEMO_TOKEN, "", 0), Code::InvalidArgument),
        (export("", DEMO_TOKEN, "", -1), Code::InvalidArgument),
        (
            export("", DEMO_TOKEN, "not-a-cursor", 0),
            Code::InvalidArgument,
        ),
        (export("", DEMO_MEMBER_TOKEN, "", 0), Code::PermissionDenied),
        (
            Request::new(pb::ExportAuditLogsRequest::default()),
            Code::Unauthenticated,
        ),
    ] {
        assert_eq!(code(client.export_audit_logs(request).await), expected);
    }

    // A cursor is bound to its query, and to its kind.
    let mut stream = client
        .export_audit_logs(export("action:login", DEMO_TOKEN, "", 0))
        .await
        .expect("export starts")
        .into_inner();
    let first = next(&mut stream).await;
    let status = client
        .export_audit_logs(export("action:logout", DEMO_TOKEN, &first.cursor, 0))
        .await
        .map(|_| ())
        .expect_err("other q");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("another `q`"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn watches_refuse_export_cursors_and_more_than_max_watches() {
    let (gateway, _handle) = streaming_gateway(30, &["--max-watches", "2"]).await;
    let mut client = gateway.grpc().await;
    let mut stream = client
        .export_audit_logs(authed(
            pb::ExportAuditLogsRequest {
                q: "action:login".into(),
                ..Default::default()
            },
            DEMO_TOKEN,
        ))
        .await
        .expect("export starts")
        .into_inner();
    let first = next(&mut stream).await;
    let watch = |after: &str| {
        authed(
            pb::WatchAuditLogsRequest {
                q: "action:login".into(),
                after: after.into(),
                ..Default::default()
            },
            DEMO_TOKEN,
        )
    };
    let status = client
        .watch_audit_logs(watch(&first.cursor))
        .await
        .map(|_| ())
        .expect_err("export cursor");
    assert_eq!(status.code(), Code::InvalidArgument);

    // --max-watches 2: the third is refused.
    let _a = client
        .watch_audit_logs(watch(&first.watch_cursor))
        .await
        .expect("first watch");
    let _b = client
        .watch_audit_logs(watch(""))
        .await
        .expect("second watch");
    let status = client
        .watch_audit_logs(watch(""))
        .await
        .map(|_| ())
        .expect_err("third watch");
    assert_eq!(status.code(), Code::ResourceExhausted);
}

#[tokio::test]
async fn on_shutdown_open_watches_end_with_unavailable_after_the_grace_period() {
    let (mut child, _, addr) = crate::helpers::start_binary(&[
        "--listen",
        "127.0.0.1:0",
        "--shutdown-grace",
        "1s",
        "--demo-row-interval",
        "0s",
    ]);
    let mut client =
        pb::audit_service_client::AuditServiceClient::connect(format!("http://{addr}"))
            .await
            .expect("connects");
    let mut watch = client
        .watch_audit_logs(authed(pb::WatchAuditLogsRequest::default(), DEMO_TOKEN))
        .await
        .expect("watch starts")
        .into_inner();
    let status = tokio::task::spawn_blocking(move || crate::helpers::terminate(&mut child))
        .await
        .expect("join");
    assert!(status.success(), "{status:?}");
    let ended = tokio::time::timeout(Duration::from_secs(30), watch.message())
        .await
        .expect("ends in time")
        .expect_err("the watch ends with a status");
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    assert!(
        ended.message().contains("shutting down"),
        "{}",
        ended.message()
    );
}

#[tokio::test]
async fn no_token_is_printed_with_the_core_that_holds_its_poller() {
    let (upstream, _handle) = churning_demo(20).await;
    let audit = core(&upstream, Duration::from_millis(200));
    let watch = audit
        .watch(call(DEMO_TOKEN), WatchRequest::default())
        .await
        .expect("watch starts");
    let secret = DEMO_TOKEN.split_once('-').expect("two parts").1;
    for printed in [format!("{audit:?}"), format!("{watch:?}")] {
        assert!(!printed.contains(secret), "{printed}");
    }
}
