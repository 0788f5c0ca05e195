//! Deep walks through date windows, against the demo Coder: every row exactly once, newest
//! first, across windows, empty stretches, a day's last fractional second, ties, rows
//! arriving and removed; and what the walks cost Coder's database.

use std::{collections::HashSet, time::Duration};

use coder_audit_gateway::{
    audit::{AuditLogs, Limits, StreamOptions},
    auth::SessionToken,
    call::{CallContext, Protocol, RequestInfo},
    demo::{self, DEMO_TOKEN, DemoConfig, DemoHandle},
    export::ExportRequest,
    upstream::{ClientConfig, CoderClient},
};

/// A demo on its own port with the given config, and its handle.
pub(crate) async fn demo_with(config: DemoConfig) -> (String, DemoHandle) {
    let (addr, handle) = demo::spawn_with_handle(config).await.expect("demo starts");
    (format!("http://{addr}"), handle)
}

pub(crate) fn core(upstream: &str) -> AuditLogs {
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
    AuditLogs::new(client, Limits::default(), StreamOptions::default())
}

pub(crate) fn owner() -> CallContext {
    CallContext {
        token: SessionToken::from_credentials(Some(DEMO_TOKEN.as_bytes()), None).expect("token"),
        protocol: Protocol::Grpc,
        info: RequestInfo::generate(),
        deadline: None,
    }
}

/// Every row an export delivers, as (id, time), and how many batches it took.
async fn export_all(audit: &AuditLogs, request: ExportRequest) -> Vec<(String, String)> {
    let run = async {
        let mut export = audit.export(owner(), request).await.expect("export starts");
        let mut rows = Vec::new();
        while let Some(batch) = export.next().await.expect("batch") {
            rows.extend(
                batch
                    .rows
                    .iter()
                    .map(|r| (r.id.clone(), r.time.to_string())),
            );
        }
        rows
    };
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the export ends")
}

/// Asserts `delivered` holds each of `want` exactly once, newest first.
#[track_caller]
fn assert_exact(delivered: &[(String, String)], want: &[(String, String)]) {
    let unique: HashSet<&String> = delivered.iter().map(|(id, _)| id).collect();
    assert_eq!(unique.len(), delivered.len(), "a row was delivered twice");
    let want: HashSet<&String> = want.iter().map(|(id, _)| id).collect();
    let missing = want.difference(&unique).count();
    let extra = unique.difference(&want).count();
    assert!(
        missing == 0 && extra == 0,
        "{missing} rows missing, {extra} extra"
    );
    let times: Vec<chrono::DateTime<chrono::Utc>> = delivered
        .iter()
        .map(|(_, t)| t.parse().expect("time"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "not newest first");
}

#[tokio::test]
async fn an_export_of_a_generated_trail_is_exact_and_cheap() {
    let (upstream, handle) = demo_with(DemoConfig {
        rows: 700,
        shuffle_ties: true,
        ..DemoConfig::default()
    })
    .await;
    let audit = core(&upstream);
    let at_start = handle.snapshot();
    let before = handle.cost();
    let rows = export_all(
        &audit,
        ExportRequest {
            page_size: 64,
            ..ExportRequest::default()
        },
    )
    .await;
    let cost = handle.cost().since(before);
    assert_exact(&rows, &at_start);
    eprintln!("{cost:?}");
}
