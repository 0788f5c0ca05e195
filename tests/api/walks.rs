//! Deep walks through date windows, against the demo Coder: every row exactly once, newest
//! first, across windows, empty stretches, a day's last fractional second, ties, rows
//! arriving and removed; and what the walks cost Coder's database.

use std::{collections::HashSet, time::Duration};

use coder_audit_gateway::{
    audit::AuditLogs,
    audit::CallContext,
    audit::ExportRequest,
    audit::WatchRequest,
    demo::{self, Cost, DEMO_TOKEN, DemoConfig, DemoHandle},
    internals::cursor::{
        ExportCursorVersion, Position, decode_export, encode_export, encode_watch, fnv64,
    },
    model::Row,
};
use proptest::{prelude::*, test_runner::TestCaseError};
use serde_json::Value;

/// A demo on its own port with the given config, and its handle.
async fn demo_with(config: DemoConfig) -> (String, DemoHandle) {
    let (addr, handle) = demo::spawn_with_handle(config).await.expect("demo starts");
    (format!("http://{addr}"), handle)
}

fn core(upstream: &str) -> AuditLogs {
    crate::streams::core(upstream, Duration::from_secs(2))
}

fn owner() -> CallContext {
    crate::streams::call(DEMO_TOKEN)
}

/// Every row an export delivers, as (id, time), and how many batches it took.
async fn export_all(audit: &AuditLogs, request: ExportRequest) -> Vec<(String, String)> {
    let run = async {
        let mut export = audit.export(owner(), request).await.expect("export starts");
        let mut rows = Vec::new();
        while let Some(batch) = export.next().await.expect("batch") {
            rows.extend(keys(&batch.rows));
        }
        rows
    };
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the export ends")
}

/// A batch's rows (an export's, or a watch's shared ones) as (id, time).
fn keys<R: std::borrow::Borrow<Row>>(rows: &[R]) -> impl Iterator<Item = (String, String)> + '_ {
    rows.iter().map(|r| {
        let row = r.borrow();
        (row.id.clone(), row.time.to_string())
    })
}

/// `before` (what an export delivered up to a batch), then every row an export resumed from
/// that batch's `cursor` delivers.
async fn resumed(
    audit: &AuditLogs,
    request: ExportRequest,
    cursor: String,
    before: &[(String, String)],
) -> Vec<(String, String)> {
    let mut export = audit
        .export(
            owner(),
            ExportRequest {
                after: Some(cursor),
                ..request
            },
        )
        .await
        .expect("resume starts");
    let mut rows = before.to_vec();
    while let Some(batch) = export.next().await.expect("resumed batch") {
        rows.extend(keys(&batch.rows));
    }
    rows
}

/// Exports a demo trail made with `config` from the top with `page_size`: the rows
/// delivered, the trail at the start, and what both of Coder's queries walked.
async fn export_demo(
    config: DemoConfig,
    page_size: i32,
) -> (Vec<(String, String)>, Vec<(String, String)>, Cost) {
    let (upstream, handle) = demo_with(config).await;
    let audit = core(&upstream);
    let at_start = handle.snapshot();
    let before = handle.cost();
    let rows = export_all(
        &audit,
        ExportRequest {
            page_size,
            ..ExportRequest::default()
        },
    )
    .await;
    (rows, at_start, handle.cost().since(before))
}

#[tokio::test]
async fn an_export_costs_coder_a_few_rows_per_row() {
    // Ties reshuffled on every call, a page size that is no divisor of anything.
    let (rows, at_start, cost) = export_demo(
        DemoConfig {
            rows: 700,
            shuffle_ties: true,
            ..DemoConfig::default()
        },
        64,
    )
    .await;
    check(&rows, &at_start, &HashSet::new()).expect("exact");
    // The first call counts every row of this small trail (701): a sixth of the cost.
    let walked = cost.page_rows_walked + cost.count_rows_walked;
    assert!(walked <= 6 * 700, "{walked} rows walked for 700: {cost:?}");

    let (rows, at_start, cost) = export_demo(
        DemoConfig {
            rows: 5000,
            ..DemoConfig::default()
        },
        100,
    )
    .await;
    check(&rows, &at_start, &HashSet::new()).expect("exact");
    // The first call counts up to 2,001 rows of the whole trail; every later one only its
    // window's. (The offset walk cost 38 rows per row at 3,000 rows.)
    let walked = cost.page_rows_walked + cost.count_rows_walked;
    let delivered = rows.len() as u64;
    assert!(
        walked * 2 <= delivered * 9,
        "{walked} rows walked for {delivered}: {cost:?}"
    );
}

/// A trail to walk: rows as (id, time), any order.
#[derive(Debug, Clone)]
struct Trail(Vec<(u128, String)>);

/// Days (counting down from 2026-03-31) holding rows: some dense, some empty stretches,
/// rows in a day's last fractional second, and groups of rows sharing one time.
fn trails() -> impl Strategy<Value = Trail> {
    let day = (
        0_u32..200,
        0_usize..40,
        0_usize..4,
        0_usize..6,
        proptest::bool::ANY,
    );
    proptest::collection::vec(day, 1..40).prop_map(|days| {
        let mut rows = Vec::new();
        let mut id = 1_u128;
        let base = chrono::NaiveDate::from_ymd_opt(2026, 3, 31).expect("day");
        for (back, count, last_second, tie, tie_at_edge) in days {
            let date = base - chrono::Days::new(u64::from(back));
            let mut push = |time: String| {
                rows.push((id, time));
                id += 1;
            };
            for n in 0..count {
                let seconds = u32::try_from(n * 86_399 / count.max(1)).expect("a day's seconds");
                let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
                push(format!(
                    "{date}T{h:02}:{m:02}:{s:02}.{:06}Z",
                    n * 7919 % 1_000_000
                ));
            }
            // 23:59:59.2 and .6 (past what `date_to:` of that day admits), and exactly :59.
            for fraction in [".2", ".6", ""].iter().take(last_second) {
                push(format!("{date}T23:59:59{fraction}Z"));
            }
            let tie_time = if tie_at_edge {
                format!("{date}T23:59:59.7Z")
            } else {
                format!("{date}T12:00:00.5Z")
            };
            for _ in 0..tie {
                push(tie_time.clone());
            }
        }
        Trail(rows)
    })
}

/// Actions Coder records, for rows of many kinds.
const ACTIONS: [&str; 5] = ["create", "write", "delete", "login", "start"];

/// A row of the demo's default trail with this id and time (and an action by id): every
/// field the gateway reads.
fn wire_row(template: &Value, id: u128, time: &str) -> String {
    let mut row = template.clone();
    row["id"] = Value::String(uuid::Uuid::from_u128(id).to_string());
    row["time"] = Value::String(time.to_owned());
    row["action"] = Value::String(ACTIONS[usize::try_from(id % 5).expect("small")].to_owned());
    row.to_string()
}

async fn template_row() -> Value {
    let page: Value =
        serde_json::from_slice(&demo::audit_page_body(DemoConfig::default(), 1).await)
            .expect("page");
    page["audit_logs"][0].clone()
}

/// A demo holding `trail`, tie order shuffled on every call.
async fn demo_of(trail: &Trail) -> (String, DemoHandle) {
    let (upstream, handle) = demo_with(DemoConfig {
        rows: 0,
        shuffle_ties: true,
        ..DemoConfig::default()
    })
    .await;
    let template = template_row().await;
    for (id, time) in &trail.0 {
        handle
            .add_row(&wire_row(&template, *id, time))
            .expect("placeable");
    }
    (upstream, handle)
}

/// Whether `time` lies in `date_from`..`date_to` as Coder reads them: from 00:00:00 of the
/// first day to 23:59:59.000000 of the last.
fn inside(time: &str, from: Option<&str>, to: Option<&str>) -> bool {
    let time: chrono::DateTime<chrono::Utc> = time.parse().expect("time");
    let at = |day: &str, clock: &str| -> chrono::DateTime<chrono::Utc> {
        format!("{day}T{clock}Z").parse().expect("bound")
    };
    from.is_none_or(|f| time >= at(f, "00:00:00")) && to.is_none_or(|t| time <= at(t, "23:59:59"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, max_shrink_iters: 64, ..ProptestConfig::default() })]

    /// The walker's promise through date windows: each row once, newest first, across
    /// windows, empty stretches, a day's last second and ties at a window's edge, with rows
    /// recorded at the top and the oldest removed during the walk, from the start and
    /// resumed from any message, with or without the caller's own date terms.
    #[test]
    fn windowed_walks_deliver_every_row_once(
        trail in trails(),
        page_size in 1_i32..120,
        churn in 0_usize..3,
        remove_at in proptest::option::of((0_usize..6, 1_usize..30)),
        resume_after in 0_usize..6,
        dates in proptest::option::of((0_u64..200, 0_u64..60)),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        runtime.block_on(async move {
          tokio::time::timeout(Duration::from_secs(5), async move {
            let (upstream, handle) = demo_of(&trail).await;
            let audit = core(&upstream);
            let base = chrono::NaiveDate::from_ymd_opt(2026, 3, 31).expect("day");
            let (from, to) = dates.map_or((None, None), |(back, span)| {
                let to = base - chrono::Days::new(back);
                (Some((to - chrono::Days::new(span)).to_string()), Some(to.to_string()))
            });
            let q = [from.as_ref().map(|f| format!("date_from:{f}")), to.as_ref().map(|t| format!("DATE_TO:\"{t}\""))]
                .into_iter().flatten().collect::<Vec<_>>().join(" ");
            let want: Vec<(String, String)> = handle
                .snapshot()
                .into_iter()
                .filter(|(_, time)| inside(time, from.as_deref(), to.as_deref()))
                .collect();
            let request = ExportRequest { q, page_size, ..ExportRequest::default() };
            let mut export = audit.export(owner(), request.clone()).await.expect("export starts");
            handle.set_churn(churn);
            let mut delivered = Vec::new();
            let mut removed: HashSet<String> = HashSet::new();
            let mut resume = None;
            let mut batches = 0;
            while let Some(batch) = export.next().await.expect("batch") {
                delivered.extend(keys(&batch.rows));
                batches += 1;
                if batches == resume_after + 1 {
                    resume = Some((batch.cursor.clone(), delivered.len()));
                }
                if let Some((at, count)) = remove_at && batches == at + 1 {
                    let oldest: Vec<String> = handle.snapshot().iter().rev().take(count).map(|(id, _)| id.clone()).collect();
                    prop_assert_eq!(handle.remove_oldest(count), oldest.len());
                    removed.extend(oldest);
                }
            }
            handle.set_churn(0);
            check(&delivered, &want, &removed)?;
            if let Some((cursor, before)) = resume {
                let rest = resumed(&audit, request, cursor, &delivered[..before]).await;
                check(&rest, &want, &removed)?;
            }
            Ok(())
          })
          .await
          .map_err(|_| TestCaseError::fail("the walk did not end within 5 s"))?
        })?;
    }
}

/// Each row of `want` once, newest first; rows removed meanwhile at most once.
fn check(
    delivered: &[(String, String)],
    want: &[(String, String)],
    removed: &HashSet<String>,
) -> Result<(), TestCaseError> {
    let got: HashSet<&String> = delivered.iter().map(|(id, _)| id).collect();
    prop_assert_eq!(got.len(), delivered.len(), "a row was delivered twice");
    let wanted: HashSet<&String> = want.iter().map(|(id, _)| id).collect();
    let extra: Vec<_> = got.difference(&wanted).collect();
    prop_assert!(
        extra.is_empty(),
        "rows not in the trail at the start: {:?}",
        extra
    );
    let missing: Vec<_> = wanted
        .difference(&got)
        .filter(|id| !removed.contains(**id))
        .collect();
    prop_assert!(
        missing.is_empty(),
        "{} rows missing: {:?}",
        missing.len(),
        missing
    );
    let times: Vec<chrono::DateTime<chrono::Utc>> = delivered
        .iter()
        .map(|(_, t)| t.parse().expect("time"))
        .collect();
    prop_assert!(times.windows(2).all(|w| w[0] >= w[1]), "not newest first");
    Ok(())
}

/// Exports `trail` from the start with `page_size`, resumes from every batch's cursor, and
/// checks both against the whole trail.
async fn export_and_resume_everywhere(trail: &Trail, page_size: i32) -> DemoHandle {
    let (upstream, handle) = demo_of(trail).await;
    let audit = core(&upstream);
    let want = handle.snapshot();
    let request = ExportRequest {
        page_size,
        ..ExportRequest::default()
    };
    let mut export = audit
        .export(owner(), request.clone())
        .await
        .expect("export starts");
    let mut delivered = Vec::new();
    let mut cursors = Vec::new();
    while let Some(batch) = export.next().await.expect("batch") {
        delivered.extend(keys(&batch.rows));
        cursors.push((batch.cursor.clone(), delivered.len()));
    }
    check(&delivered, &want, &HashSet::new()).expect("exact");
    for (cursor, before) in cursors {
        let rest = resumed(&audit, request.clone(), cursor, &delivered[..before]).await;
        check(&rest, &want, &HashSet::new()).expect("exact after a resume");
    }
    handle
}

fn trail_of(times: &[&str]) -> Trail {
    Trail(
        times
            .iter()
            .enumerate()
            .map(|(i, t)| (i as u128 + 1, (*t).to_owned()))
            .collect(),
    )
}

#[tokio::test]
async fn rows_in_a_days_last_second_are_found_from_a_position_there() {
    // The position lands on 23:59:59.7 after the first batch; .6 and .2 are past what
    // `date_to:` of their day admits, so the window must end the day after.
    let trail = trail_of(&[
        "2026-03-02T08:00:00Z",
        "2026-03-01T23:59:59.7Z",
        "2026-03-01T23:59:59.6Z",
        "2026-03-01T23:59:59.2Z",
        "2026-03-01T23:59:59Z",
        "2026-03-01T12:00:00Z",
        "2026-02-28T23:59:59.9Z",
        "2026-02-28T01:00:00Z",
    ]);
    for page_size in [1, 2, 3, 100] {
        export_and_resume_everywhere(&trail, page_size).await;
    }
}

#[tokio::test]
async fn ties_at_a_window_edge_and_a_tie_wider_than_a_page_come_whole() {
    let mut times = vec!["2026-03-02T00:00:00Z"; 3];
    times.extend(["2026-03-01T23:59:59.7Z"; 7]);
    times.extend(["2026-03-01T23:59:59Z"; 5]);
    times.extend(["2026-02-27T10:00:00.123456Z"; 250]);
    times.extend(["2026-02-20T10:00:00Z"; 2]);
    let trail = trail_of(&times);
    let handle = export_and_resume_everywhere(&trail, 100).await;
    // The group of 250 is read in parts, one action each, never with a page past 100.
    assert_eq!(handle.largest_limit(), 100);
    let handle = export_and_resume_everywhere(&trail, 6).await;
    assert_eq!(handle.largest_limit(), 100);
}

#[tokio::test]
async fn a_long_empty_stretch_costs_one_probe() {
    let mut times: Vec<String> = (0..50)
        .map(|i| format!("2026-03-31T{:02}:{:02}:00Z", i / 4, i % 4 * 15))
        .collect();
    times.extend((0..50).map(|i| format!("2019-06-01T{:02}:{:02}:00Z", i / 4, i % 4 * 15)));
    let trail = Trail(
        times
            .into_iter()
            .enumerate()
            .map(|(i, t)| (i as u128 + 1, t))
            .collect(),
    );
    let (upstream, handle) = demo_of(&trail).await;
    let audit = core(&upstream);
    let want = handle.snapshot();
    let before = handle.cost();
    let rows = export_all(
        &audit,
        ExportRequest {
            page_size: 100,
            ..ExportRequest::default()
        },
    )
    .await;
    check(&rows, &want, &HashSet::new()).expect("exact");
    let cost = handle.cost().since(before);
    // About seven years of empty days: a handful of calls, not one per window.
    assert!(cost.calls <= 8, "{cost:?}");
}

#[tokio::test]
async fn a_version_1_cursor_resumes_exactly() {
    let (upstream, handle) = demo_with(DemoConfig {
        rows: 600,
        shuffle_ties: true,
        ..DemoConfig::default()
    })
    .await;
    let audit = core(&upstream);
    let want = handle.snapshot();
    let request = ExportRequest {
        page_size: 50,
        ..ExportRequest::default()
    };
    let mut export = audit
        .export(owner(), request.clone())
        .await
        .expect("export starts");
    let mut delivered = Vec::new();
    let mut last_cursor = String::new();
    for _ in 0..3 {
        let batch = export.next().await.expect("batch").expect("rows");
        delivered.extend(keys(&batch.rows));
        last_cursor = batch.cursor.clone();
    }
    // What an earlier gateway wrote at this point: version 1, whose offset this one drops.
    let cursor = decode_export("", &last_cursor).expect("this gateway's cursor");
    let v1 = encode_export("", &cursor, ExportCursorVersion::V1);
    let rest = resumed(&audit, request, v1, &delivered).await;
    check(&rest, &want, &HashSet::new()).expect("exact");
}

#[tokio::test]
async fn a_watch_from_far_back_catches_up_through_windows() {
    let (upstream, handle) = demo_with(DemoConfig {
        rows: 3000,
        shuffle_ties: true,
        ..DemoConfig::default()
    })
    .await;
    let audit = core(&upstream);
    let trail = handle.snapshot();
    // A watch cursor at the 2,000th row from the top (and the rows tied with it).
    let (_, at_time) = &trail[2000];
    let mut position = Position::default();
    let time: chrono::DateTime<chrono::Utc> = at_time.parse().expect("time");
    position.at = Some((time.timestamp(), time.timestamp_subsec_nanos()));
    for (id, _) in trail.iter().filter(|(_, t)| t == at_time) {
        position.seen.insert(fnv64(id.as_bytes()));
    }
    let newer: Vec<(String, String)> = trail
        .iter()
        .filter(|(_, t)| t.parse::<chrono::DateTime<chrono::Utc>>().expect("time") > time)
        .cloned()
        .collect();
    let before = handle.cost();
    let mut watch = audit
        .watch(
            owner(),
            WatchRequest {
                after: Some(encode_watch("", &position)),
                ..WatchRequest::default()
            },
        )
        .await
        .expect("watch starts");
    let mut watched = Vec::new();
    while watched.len() < newer.len() {
        let batch = tokio::time::timeout(Duration::from_secs(30), watch.next(5000))
            .await
            .expect("rows in time")
            .expect("batch");
        watched.extend(keys(&batch.rows));
    }
    watched.reverse();
    check(&watched, &newer, &HashSet::new()).expect("exactly the newer rows, oldest first");
    let cost = handle.cost().since(before);
    let walked = cost.page_rows_walked + cost.count_rows_walked;
    // The catch-up reads down to the cursor's day only, through windows.
    assert!(
        walked <= 5 * newer.len() as u64,
        "{walked} rows walked for {}: {cost:?}",
        newer.len()
    );
}
