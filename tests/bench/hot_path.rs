//! The gateway's hot path in isolation: parsing an upstream page, then answering it as
//! GraphQL (the full selection, executed and encoded to JSON) or as protobuf, for pages of
//! 1, 25, 100 and 1000 realistic rows (the demo's trail, with its large diffs and
//! `additional_fields`, repeated as needed). Divan reports time and allocations per page;
//! its items counter gives the per-row rate.
//!
//! Each protocol is measured both ways, side by side: as served (the page read in place,
//! written by a compiled plan or the protobuf encoder) and by the reference path (the owned
//! page through async-graphql's executor, or into prost's message structs).
//!
//! Run: `cargo bench --bench hot_path`

#![allow(
    clippy::expect_used,
    reason = "a benchmark: a failed expectation aborts the run"
)]

use std::sync::{LazyLock, Mutex};

use async_graphql::{Context, EmptyMutation, EmptySubscription, Object, Schema};
use coder_audit_gateway::{
    demo::{self, DemoConfig},
    graphql::{AuditLogPage, PagePlan},
    grpc::{self, pb},
    model::{AuditPage, PageView},
};
use divan::{AllocProfiler, Bencher, black_box, counter::ItemsCount};
use prost::Message as _;
use serde_json::Value;

/// The allocator the binary uses, counted.
#[global_allocator]
static ALLOC: AllocProfiler<mimalloc::MiMalloc> = AllocProfiler::new(mimalloc::MiMalloc);

fn main() {
    divan::main();
}

const SIZES: [usize; 4] = [1, 25, 100, 1000];

/// Every field of the GraphQL contract, as the integration tests select it.
const ALL_FIELDS: &str = "{ auditLogs { count countCap auditLogs { id requestId time ip userAgent resourceType resourceId resourceTarget resourceIcon action diff { field old new secret } statusCode additionalFields description resourceLink isDeleted organizationId organization { id name displayName icon } user { id username name email avatarUrl createdAt updatedAt lastSeenAt status loginType themePreference organizationIds roles { name displayName organizationId } } } } }";

/// The demo's whole trail as Coder's wire JSON, fetched once through its router.
static TRAIL: LazyLock<Vec<Value>> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let bytes = runtime.block_on(demo::audit_page_body(DemoConfig::default(), 1000));
    let page: Value = serde_json::from_slice(&bytes).expect("JSON");
    page["audit_logs"].as_array().expect("rows").clone()
});

/// A wire page of `rows` rows, cycling through the demo trail.
fn wire_page(rows: usize) -> Vec<u8> {
    let rows: Vec<Value> = TRAIL.iter().cycle().take(rows).cloned().collect();
    serde_json::to_vec(&serde_json::json!({"audit_logs": rows, "count": 2001, "count_cap": 2000}))
        .expect("encode")
}

#[divan::bench(args = SIZES)]
fn parse_upstream_page(bencher: Bencher, rows: usize) {
    let bytes = wire_page(rows);
    bencher
        .counter(ItemsCount::new(rows))
        .bench(|| AuditPage::from_json(black_box(&bytes)).expect("page"));
}

#[divan::bench(args = SIZES)]
fn parse_upstream_page_in_place(bencher: Bencher, rows: usize) {
    let bytes = wire_page(rows);
    bencher.counter(ItemsCount::new(rows)).bench(|| {
        PageView::from_json(black_box(&bytes))
            .map(|p| p.count)
            .expect("page")
    });
}

/// As served: the page read in place, encoded straight to protobuf.
#[divan::bench(args = SIZES)]
fn grpc_response(bencher: Bencher, rows: usize) {
    let bytes = wire_page(rows);
    bencher.counter(ItemsCount::new(rows)).bench(|| {
        let page = PageView::from_json(black_box(&bytes)).expect("page");
        grpc::list_response(&page)
    });
}

/// The reference: the owned page, moved into prost's message structs and encoded.
#[divan::bench(args = SIZES)]
fn grpc_response_reference(bencher: Bencher, rows: usize) {
    let bytes = wire_page(rows);
    bencher.counter(ItemsCount::new(rows)).bench(|| {
        let page = AuditPage::from_json(black_box(&bytes)).expect("page");
        pb::ListAuditLogsResponse::from(page).encode_to_vec()
    });
}

/// As served: the page read in place, written by the operation's compiled plan.
#[divan::bench(args = SIZES)]
fn graphql_response(bencher: Bencher, rows: usize) {
    let bytes = wire_page(rows);
    let plan = PagePlan::compile(ALL_FIELDS).expect("the planner covers the full selection");
    bencher.counter(ItemsCount::new(rows)).bench(|| {
        let page = PageView::from_json(black_box(&bytes)).expect("page");
        plan.write(&page)
    });
}

/// A root that hands out the page under test, as the gateway's resolver hands out the page
/// it fetched.
struct BenchQuery;

#[Object]
impl BenchQuery {
    async fn audit_logs(&self, ctx: &Context<'_>) -> AuditLogPage {
        let page = ctx
            .data_unchecked::<Mutex<Option<AuditPage>>>()
            .lock()
            .expect("lock")
            .take()
            .expect("one page per execution");
        AuditLogPage::from(page)
    }
}

/// The reference: the owned page through async-graphql's executor, then encoded.
#[divan::bench(args = SIZES)]
fn graphql_response_reference(bencher: Bencher, rows: usize) {
    let bytes = wire_page(rows);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let schema = Schema::build(BenchQuery, EmptyMutation, EmptySubscription).finish();
    bencher.counter(ItemsCount::new(rows)).bench(|| {
        let page = AuditPage::from_json(black_box(&bytes)).expect("page");
        let request = async_graphql::Request::new(ALL_FIELDS).data(Mutex::new(Some(page)));
        let response = runtime.block_on(schema.execute(request));
        serde_json::to_vec(&response).expect("encode")
    });
}

/// One of the four timestamps every row carries.
#[divan::bench]
fn parse_timestamp() -> coder_audit_gateway::model::Timestamp {
    black_box("2026-04-02T09:15:42.123456Z")
        .parse()
        .expect("timestamp")
}

/// The same page only scanned, not built (`IgnoredAny`): the floor for any typed parse of it.
#[divan::bench(args = [100])]
fn parse_upstream_page_untyped(bencher: Bencher, rows: usize) {
    let bytes = wire_page(rows);
    bencher.counter(ItemsCount::new(rows)).bench(|| {
        serde_json::from_str::<serde::de::IgnoredAny>(
            std::str::from_utf8(black_box(&bytes)).expect("UTF-8"),
        )
        .expect("JSON")
    });
}
