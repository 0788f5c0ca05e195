//! Export and watch benchmark: the whole trail through the gateway against a client that
//! pages Coder itself, and how late a watch delivers a new row.
//!
//! The demo upstream (100,000 rows by default) runs in this process; the gateway is the
//! release binary in its own process, started afresh for each export so that its peak RSS
//! is that export's. Direct paging asks Coder for `limit`/`offset` pages of the same size
//! (and, unlike the export, would skip or repeat rows if the trail changed meanwhile).
//!
//! Run: `cargo bench --bench export` (`BENCH_ROWS` sets the trail size, `BENCH_PAGE` the
//! page size, default 100). The table goes to stdout and to `target/export-report.md`.

#![allow(
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::naive_bytecount,
    clippy::format_push_string,
    reason = "a benchmark harness: a failed expectation aborts the run; counting and formatting are for the report"
)]

use std::time::{Duration, Instant};

mod gateway;

use gateway::{Gateway, clock_ticks_per_second};

use coder_audit_gateway::{
    demo::{self, DEMO_TOKEN, DemoConfig, DemoHandle},
    grpc::pb::{self, audit_service_client::AuditServiceClient},
};

#[derive(serde::Deserialize)]
struct Page<'a> {
    #[serde(borrow)]
    audit_logs: Vec<&'a serde_json::value::RawValue>,
}

struct Run {
    rows: usize,
    elapsed: Duration,
    peak_rss_mib: Option<f64>,
    /// Gateway CPU seconds for the export.
    cpu: Option<f64>,
}

async fn direct(client: &reqwest::Client, upstream: &str, page: i32) -> Run {
    let started = Instant::now();
    let mut rows = 0;
    let mut offset = 0;
    loop {
        let bytes = client
            .get(format!(
                "{upstream}/api/v2/audit?q=&limit={page}&offset={offset}"
            ))
            .header("coder-session-token", DEMO_TOKEN)
            .send()
            .await
            .expect("upstream")
            .bytes()
            .await
            .expect("page");
        // The cheapest client that still checks what it got: rows kept as JSON text.
        let body: Page<'_> = serde_json::from_slice(&bytes).expect("JSON page");
        let n = body.audit_logs.len();
        rows += n;
        offset += page;
        if n < usize::try_from(page).unwrap_or(0) {
            break;
        }
    }
    Run {
        rows,
        elapsed: started.elapsed(),
        peak_rss_mib: None,
        cpu: None,
    }
}

async fn grpc(upstream: &str, page: i32, ticks: f64) -> Run {
    let gateway = Gateway::start(upstream, &[]);
    let mut client = AuditServiceClient::connect(format!("http://{}", gateway.addr))
        .await
        .expect("connects")
        .max_decoding_message_size(64 << 20);
    let cpu_before = gateway.cpu_seconds(ticks);
    let started = Instant::now();
    let mut request = tonic::Request::new(pb::ExportAuditLogsRequest {
        page_size: page,
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("coder-session-token", DEMO_TOKEN.parse().expect("token"));
    let mut stream = client
        .export_audit_logs(request)
        .await
        .expect("export")
        .into_inner();
    let mut rows = 0;
    while let Some(message) = stream.message().await.expect("message") {
        rows += message.audit_logs.len();
    }
    Run {
        rows,
        elapsed: started.elapsed(),
        peak_rss_mib: Some(gateway.peak_rss_kib() as f64 / 1024.0),
        cpu: Some(gateway.cpu_seconds(ticks) - cpu_before),
    }
}

async fn ndjson(client: &reqwest::Client, upstream: &str, page: i32, ticks: f64) -> Run {
    let gateway = Gateway::start(upstream, &[]);
    let cpu_before = gateway.cpu_seconds(ticks);
    let started = Instant::now();
    let mut response = client
        .get(format!(
            "http://{}/audit-logs/export?page_size={page}",
            gateway.addr
        ))
        .header("coder-session-token", DEMO_TOKEN)
        .send()
        .await
        .expect("export");
    let mut rows = 0;
    while let Some(chunk) = response.chunk().await.expect("chunk") {
        rows += chunk.iter().filter(|b| **b == b'\n').count();
    }
    Run {
        rows,
        elapsed: started.elapsed(),
        peak_rss_mib: Some(gateway.peak_rss_kib() as f64 / 1024.0),
        cpu: Some(gateway.cpu_seconds(ticks) - cpu_before),
    }
}

/// How long after a row is recorded a watch delivers it, over `samples` rows recorded at
/// spread-out moments of the poll cycle.
async fn watch_delay(
    upstream: &str,
    handle: &DemoHandle,
    interval: Duration,
    samples: u32,
) -> Vec<Duration> {
    let interval_text = format!("{}ms", interval.as_millis());
    let gateway = Gateway::start(upstream, &["--watch-interval", &interval_text]);
    let mut client = AuditServiceClient::connect(format!("http://{}", gateway.addr))
        .await
        .expect("connects");
    let mut request = tonic::Request::new(pb::WatchAuditLogsRequest::default());
    request
        .metadata_mut()
        .insert("coder-session-token", DEMO_TOKEN.parse().expect("token"));
    let mut stream = client
        .watch_audit_logs(request)
        .await
        .expect("watch")
        .into_inner();
    let mut delays = Vec::new();
    for i in 0..samples {
        // A different phase of the poll cycle each time.
        tokio::time::sleep(interval * (i % 3 + 1) / 4 + Duration::from_millis(37)).await;
        handle.record(1, false);
        let recorded = Instant::now();
        let message = stream.message().await.expect("message").expect("open");
        delays.push(recorded.elapsed());
        assert_eq!(message.audit_logs.len(), 1);
    }
    delays
}

fn main() {
    let rows: usize = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let page: i32 = std::env::var("BENCH_PAGE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let ticks = clock_ticks_per_second();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let report = runtime.block_on(async move {
        // reqwest is built without a bundled crypto provider; the crate installs ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let mut report = String::new();
        let mut watch_demo = None;
        for service_time in [Duration::ZERO, Duration::from_millis(5)] {
            let (addr, handle) = demo::spawn_with_handle(DemoConfig {
                rows,
                service_time,
                ..DemoConfig::default()
            })
            .await
            .expect("demo");
            let upstream = format!("http://{addr}");
            // Warm the upstream and the page cache for the binary.
            let _ = direct(&client, &upstream, page).await;
            let direct = direct(&client, &upstream, page).await;
            let grpc = grpc(&upstream, page, ticks).await;
            let ndjson = ndjson(&client, &upstream, page, ticks).await;
            report.push_str(&format!(
                "Export of {rows} rows, page {page}, upstream answering in {} ms + its own work\n\n| path | rows | seconds | rows/s | vs direct | gateway CPU s | gateway CPU µs/row | gateway peak RSS MiB |\n|---|---|---|---|---|---|---|---|\n",
                service_time.as_millis()
            ));
            let base = direct.rows as f64 / direct.elapsed.as_secs_f64();
            for (name, run) in [("direct paging", &direct), ("gateway gRPC export", &grpc), ("gateway NDJSON export", &ndjson)] {
                let rate = run.rows as f64 / run.elapsed.as_secs_f64();
                report.push_str(&format!(
                    "| {name} | {} | {:.2} | {rate:.0} | {:.0}% | {} | {} | {} |\n",
                    run.rows,
                    run.elapsed.as_secs_f64(),
                    100.0 * rate / base,
                    run.cpu.map_or_else(String::new, |c| format!("{c:.2}")),
                    run.cpu.map_or_else(String::new, |c| format!("{:.1}", 1e6 * c / run.rows as f64)),
                    run.peak_rss_mib.map_or_else(String::new, |m| format!("{m:.1}")),
                ));
            }
            report.push('\n');
            if service_time.is_zero() {
                watch_demo = Some((upstream, handle));
            }
        }
        let (upstream, handle) = watch_demo.expect("the instant demo");
        let interval = Duration::from_millis(500);
        let mut delays = watch_delay(&upstream, &handle, interval, 12).await;
        delays.sort();
        let max = delays.last().copied().unwrap_or_default();
        report.push_str(&format!(
            "Watch, --watch-interval {}ms, {} rows: delivery delay median {:.1} ms, max {:.1} ms (target: at most the interval + 5 ms = {} ms)\n",
            interval.as_millis(),
            delays.len(),
            delays[delays.len() / 2].as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3,
            interval.as_millis() + 5,
        ));
        report
    });
    println!("{report}");
    let _ = std::fs::write(
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/export-report.md"),
        &report,
    );
}
