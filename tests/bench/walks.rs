//! Deep-walk benchmark: what an export costs Coder's database, row by row, through date
//! windows (the walker now) and by offset from the top (the walker before), in one run;
//! and what a client paging through the whole trail costs it, with cursor pages (page
//! tokens, `after`) and with `offset` (what clients had before).
//!
//! The demo Coder runs in this process and counts, for every call, the rows its page query
//! walks (offset plus returned) and the rows its count query walks (matching rows up to
//! 2,001). The export runs through the gateway's core, as every surface runs it. Trails hold
//! about 70 rows a day; a dense-day trail holds 5,000.
//!
//! Run: `cargo bench --bench walks`. `BENCH_WALK_ROWS` (default `10000,100000,1000000`) sets
//! the trail sizes; the offset walk runs only up to `BENCH_OFFSET_MAX` rows (default
//! 100000; at a million rows it walks about five billion). The table goes to stdout and to
//! `target/walks-report.md`.

#![allow(
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::format_push_string,
    reason = "a benchmark harness: a failed expectation aborts the run; counting and formatting are for the report"
)]

use std::time::{Duration, Instant};

use coder_audit_gateway::{
    audit::ExportRequest,
    audit::SessionToken,
    audit::{AuditLogQuery, AuditLogs, Limits, StreamOptions},
    audit::{CallContext, Protocol, RequestInfo},
    audit::{ClientConfig, CoderClient},
    demo::{self, Cost, DEMO_TOKEN, DemoConfig, DemoHandle},
};

struct Run {
    rows: usize,
    elapsed: Duration,
    cost: Cost,
}

/// The gateway's core in front of `upstream`, and a call as the demo's owner.
fn core(upstream: &str, offset_walk: bool) -> (AuditLogs, CallContext) {
    let client = CoderClient::new(
        &upstream.parse().expect("url"),
        ClientConfig {
            timeout: Duration::from_secs(60),
            retries: 0,
            max_body: 64 << 20,
            ca_pem: None,
        },
    )
    .expect("client");
    let audit = AuditLogs::new(
        client,
        Limits {
            offset_walk,
            ..Limits::default()
        },
        StreamOptions::default(),
    );
    let call = CallContext {
        token: SessionToken::from_credentials(Some(DEMO_TOKEN.as_bytes()), None).expect("token"),
        protocol: Protocol::Grpc,
        info: RequestInfo::generate(),
        deadline: None,
    };
    (audit, call)
}

async fn export(upstream: &str, handle: &DemoHandle, page: i32, offset_walk: bool) -> Run {
    let (audit, call) = core(upstream, offset_walk);
    let before = handle.cost();
    let started = Instant::now();
    let mut export = audit
        .export(
            call,
            ExportRequest {
                page_size: page,
                ..ExportRequest::default()
            },
        )
        .await
        .expect("export starts");
    let mut rows = 0;
    while let Some(batch) = export.next().await.expect("batch") {
        rows += batch.rows.len();
    }
    Run {
        rows,
        elapsed: started.elapsed(),
        cost: handle.cost().since(before),
    }
}

/// Pages through the whole trail as a client would: with page tokens (`after`), or with
/// `offset` (what clients had before).
async fn pages(upstream: &str, handle: &DemoHandle, limit: i32, by_offset: bool) -> Run {
    let (audit, call) = core(upstream, false);
    let before = handle.cost();
    let started = Instant::now();
    let mut query = AuditLogQuery {
        limit,
        ..AuditLogQuery::default()
    };
    let mut rows = 0;
    if by_offset {
        loop {
            let fetched = audit.list(&call, &query).await.expect("a page");
            let got = fetched.page.audit_logs.len();
            rows += got;
            if got < usize::try_from(limit).expect("limit") {
                break;
            }
            query.offset += limit;
        }
    } else {
        let first = audit
            .list_with_cursors(&call, &query, false, |view, cursors| {
                (view.audit_logs.len(), cursors.next().map(str::to_owned))
            })
            .await
            .expect("the first page");
        let (got, mut token) = first.page;
        rows += got;
        while let Some(after) = token {
            let page = audit
                .list_after(&call, &query, "after", &after)
                .await
                .expect("a page");
            rows += page.rows.len();
            token = page.cursors.next().map(str::to_owned);
        }
    }
    Run {
        rows,
        elapsed: started.elapsed(),
        cost: handle.cost().since(before),
    }
}

fn line(report: &mut String, trail: &str, walker: &str, page: i32, run: &Run) {
    let per = |n: u64| n as f64 / run.rows.max(1) as f64;
    report.push_str(&format!(
        "| {trail} | {walker} | {page} | {} | {} | {:.2} | {:.2} | {:.2} | {:.0} |\n",
        run.rows,
        run.cost.calls,
        per(run.cost.page_rows_walked),
        per(run.cost.count_rows_walked),
        per(run.cost.page_rows_walked + run.cost.count_rows_walked),
        run.rows as f64 / run.elapsed.as_secs_f64(),
    ));
}

fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_WALK_ROWS")
        .unwrap_or_else(|_| "10000,100000,1000000".to_owned())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let offset_max: usize = std::env::var("BENCH_OFFSET_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let report = runtime.block_on(async move {
        let mut report = String::from(
            "Rows Coder's database walks per exported row (page query: offset + returned; count query: matching rows up to 2,001)\n\n| trail | walker | page | rows | calls | page walked/row | count walked/row | both/row | rows/s |\n|---|---|---|---|---|---|---|---|---|\n",
        );
        let mut trails: Vec<(String, DemoConfig)> = sizes
            .iter()
            .map(|&rows| {
                (
                    format!("{rows} rows, ~70/day"),
                    DemoConfig {
                        rows,
                        rows_per_day: Some(70),
                        ..DemoConfig::default()
                    },
                )
            })
            .collect();
        trails.push((
            "20000 rows, 5000/day".to_owned(),
            DemoConfig {
                rows: 20_000,
                rows_per_day: Some(5000),
                ..DemoConfig::default()
            },
        ));
        for (name, config) in trails {
            let rows = config.rows;
            let (addr, handle) = demo::spawn_with_handle(config).await.expect("demo");
            let upstream = format!("http://{addr}");
            for page in [25, 50, 100] {
                let run = export(&upstream, &handle, page, false).await;
                line(&mut report, &name, "windows", page, &run);
            }
            if rows <= offset_max {
                let run = export(&upstream, &handle, 100, true).await;
                line(&mut report, &name, "offset (before)", 100, &run);
            }
            for limit in [25, 50, 100] {
                let run = pages(&upstream, &handle, limit, false).await;
                line(&mut report, &name, "cursor pages", limit, &run);
            }
            if rows <= offset_max {
                let run = pages(&upstream, &handle, 100, true).await;
                line(&mut report, &name, "offset pages (before)", 100, &run);
            }
        }
        report
    });
    println!("{report}");
    let _ = std::fs::write(
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/walks-report.md"),
        &report,
    );
}
