//! Soak and chaos: the release gateway under ten minutes of mixed load while its upstream
//! fails in every way the reference names, sampling its memory, file descriptors and tasks.
//!
//! The upstream is the demo Coder (a new row every second) behind a fault proxy on a fixed
//! port. Every minute the proxy misbehaves for 15 s, in turn: dead (connections refused),
//! slow (5 s per answer), 500s, truncated bodies, and a restart on the same port. Meanwhile
//! callers of five tokens (owner, site auditor, organisation auditor, a member Coder refuses,
//! an expired key) call GraphQL and gRPC pages, NDJSON exports and gRPC watches, with bad
//! queries mixed in. Every request must end within its deadline; every answer is checked
//! against its caller's own view (the organisation auditor only ever gets that
//! organisation's rows; refused tokens never get rows); the gateway must not crash; RSS, open
//! file descriptors and live tasks must stay flat after warm-up (growth under 5 %).
//!
//! Run: `cargo bench --bench soak` (`SOAK_SECONDS`, default 600). The table goes to stdout
//! and `target/soak-report.md`; the run fails if a target is missed.

#![allow(
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a benchmark harness: a failed expectation aborts the run, and the float conversions are for reporting"
)]

mod gateway;

use std::{
    collections::HashMap,
    fmt::Write as _,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use coder_audit_gateway::{
    demo::{
        self, DEMO_AUDITOR_TOKEN, DEMO_EXPIRED_TOKEN, DEMO_MEMBER_TOKEN, DEMO_ORG_AUDITOR_TOKEN,
        DEMO_TOKEN, DemoConfig,
    },
    grpc::pb::{self, audit_service_client::AuditServiceClient},
};
use gateway::Gateway;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// How the fault proxy behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Fault {
    None,
    Dead,
    Slow,
    ServerError,
    Truncated,
    Restart,
}

impl Fault {
    const ROTATION: [Self; 5] = [
        Self::Dead,
        Self::Slow,
        Self::ServerError,
        Self::Truncated,
        Self::Restart,
    ];

    fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Dead,
            2 => Self::Slow,
            3 => Self::ServerError,
            4 => Self::Truncated,
            5 => Self::Restart,
            _ => Self::None,
        }
    }
}

/// An HTTP/1.1 proxy to the demo that can fail on demand, on a port it keeps across
/// restarts.
struct FaultProxy {
    addr: SocketAddr,
    fault: Arc<AtomicU8>,
    /// Cleared to close the listener (dead, restart); set to listen again.
    listening: Arc<AtomicBool>,
}

impl FaultProxy {
    async fn start(demo: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let fault = Arc::new(AtomicU8::new(Fault::None as u8));
        let listening = Arc::new(AtomicBool::new(true));
        let (fault_, listening_) = (fault.clone(), listening.clone());
        tokio::spawn(async move {
            let mut listener = Some(listener);
            loop {
                if !listening_.load(Ordering::Relaxed) {
                    listener = None;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                let Some(active) = &listener else {
                    listener = TcpListener::bind(addr).await.ok();
                    if listener.is_none() {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                };
                let accepted =
                    tokio::time::timeout(Duration::from_millis(100), active.accept()).await;
                if let Ok(Ok((socket, _))) = accepted {
                    tokio::spawn(proxy(socket, demo, fault_.clone(), listening_.clone()));
                }
            }
        });
        Self {
            addr,
            fault,
            listening,
        }
    }

    fn set(&self, fault: Fault) {
        self.fault.store(fault as u8, Ordering::Relaxed);
        let up = !matches!(fault, Fault::Dead | Fault::Restart);
        self.listening.store(up, Ordering::Relaxed);
    }
}

/// Serves one connection: reads a request head, answers it per the current fault. A dead
/// or restarting upstream also drops the connections it had, as a crashed Coder would.
async fn proxy(
    mut socket: TcpStream,
    demo: SocketAddr,
    fault: Arc<AtomicU8>,
    listening: Arc<AtomicBool>,
) {
    let client = reqwest::Client::new();
    loop {
        let mut head = Vec::new();
        let mut byte = [0_u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match socket.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
            if head.len() > 1 << 20 {
                return;
            }
        }
        if !listening.load(Ordering::Relaxed) {
            return;
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let mut lines = head.lines();
        let target = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("/")
            .to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
            .collect();
        let fault = Fault::from_u8(fault.load(Ordering::Relaxed));
        if fault == Fault::Slow {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        let (status, body) = if fault == Fault::ServerError {
            (500, br#"{"message":"Internal error (injected)."}"#.to_vec())
        } else {
            let mut request = client.get(format!("http://{demo}{target}"));
            for (name, value) in &headers {
                if name == "coder-session-token" {
                    request = request.header(name, value);
                }
            }
            match request.send().await {
                Ok(response) => (
                    response.status().as_u16(),
                    response
                        .bytes()
                        .await
                        .map(|b| b.to_vec())
                        .unwrap_or_default(),
                ),
                Err(_) => return,
            }
        };
        let answer = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        if socket.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
        if fault == Fault::Truncated {
            let _ = socket.write_all(&body[..body.len() / 2]).await;
            return;
        }
        if socket.write_all(&body).await.is_err() {
            return;
        }
    }
}

/// What the run counted.
#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    ok: AtomicU64,
    refused: AtomicU64,
    hung: AtomicU64,
    cross_token: AtomicU64,
    watch_rows: AtomicU64,
    codes: Mutex<HashMap<String, u64>>,
}

impl Tally {
    /// A refusal: a token Coder always refuses must be refused as such whenever Coder
    /// answers at all; any other refusal of it would be another caller's answer.
    fn refusal(&self, caller: Caller, code: &str) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        self.code(code);
        let upstream_failed = matches!(
            code,
            "UPSTREAM_UNAVAILABLE" | "UPSTREAM_TIMEOUT" | "UPSTREAM_ERROR"
        );
        if caller.refused.is_some() && !upstream_failed && Some(code) != caller.refused {
            self.cross_token.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn code(&self, code: &str) {
        *self
            .codes
            .lock()
            .expect("lock")
            .entry(code.to_owned())
            .or_default() += 1;
    }
}

/// A caller and what it may see.
#[derive(Clone, Copy)]
struct Caller {
    token: &'static str,
    /// `Some(org)`: every row must belong to it; `None`: any row.
    only_org: Option<&'static str>,
    /// The refusal Coder always gives this token (GraphQL code).
    refused: Option<&'static str>,
}

const CALLERS: [Caller; 5] = [
    Caller {
        token: DEMO_TOKEN,
        only_org: None,
        refused: None,
    },
    Caller {
        token: DEMO_AUDITOR_TOKEN,
        only_org: None,
        refused: None,
    },
    Caller {
        token: DEMO_ORG_AUDITOR_TOKEN,
        only_org: Some("platform"),
        refused: None,
    },
    Caller {
        token: DEMO_MEMBER_TOKEN,
        only_org: None,
        refused: Some("FORBIDDEN"),
    },
    Caller {
        token: DEMO_EXPIRED_TOKEN,
        only_org: None,
        refused: Some("UNAUTHENTICATED"),
    },
];

const REQUEST_DEADLINE: Duration = Duration::from_secs(40);

/// Checks a page's rows (organisation names) against the caller; true when they fit.
fn rows_fit(caller: Caller, organizations: &[String]) -> bool {
    if caller.refused.is_some() {
        return organizations.is_empty();
    }
    caller
        .only_org
        .is_none_or(|org| organizations.iter().all(|o| o == org))
}

async fn graphql_call(http: &reqwest::Client, addr: &str, caller: Caller, q: &str, tally: &Tally) {
    let body = json!({
        "query": "query($q: String) { auditLogs(q: $q, limit: 20) { count auditLogs { id organization { name } } } }",
        "variables": {"q": q},
    });
    let sent = http
        .post(format!("http://{addr}/graphql"))
        .header("content-type", "application/json")
        .header("coder-session-token", caller.token)
        .body(body.to_string())
        .send();
    let Ok(Ok(response)) = tokio::time::timeout(REQUEST_DEADLINE, sent).await else {
        tally.hung.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let Ok(Ok(bytes)) = tokio::time::timeout(REQUEST_DEADLINE, response.bytes()).await else {
        tally.hung.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if let Some(code) = value["errors"][0]["extensions"]["code"].as_str() {
        tally.refusal(caller, code);
        return;
    }
    let organizations: Vec<String> = value["data"]["auditLogs"]["auditLogs"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| r["organization"]["name"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default();
    if value["data"]["auditLogs"].is_null() || !rows_fit(caller, &organizations) {
        tally.cross_token.fetch_add(1, Ordering::Relaxed);
    }
    tally.ok.fetch_add(1, Ordering::Relaxed);
    tally.code("OK");
}

fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(REQUEST_DEADLINE);
    request
        .metadata_mut()
        .insert("coder-session-token", token.parse().expect("ascii"));
    request
}

fn grpc_code(status: &tonic::Status) -> &'static str {
    match status.code() {
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
        tonic::Code::PermissionDenied => "FORBIDDEN",
        tonic::Code::Unavailable => "UPSTREAM_UNAVAILABLE",
        tonic::Code::DeadlineExceeded => "UPSTREAM_TIMEOUT",
        tonic::Code::Internal => "UPSTREAM_ERROR",
        tonic::Code::InvalidArgument => "BAD_USER_INPUT",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        _ => "OTHER",
    }
}

async fn grpc_call(
    client: &mut AuditServiceClient<tonic::transport::Channel>,
    caller: Caller,
    q: &str,
    tally: &Tally,
) {
    let request = authorized(
        pb::ListAuditLogsRequest {
            q: q.to_owned(),
            limit: 20,
            ..Default::default()
        },
        caller.token,
    );
    let answered = tokio::time::timeout(
        REQUEST_DEADLINE + Duration::from_secs(5),
        client.list_audit_logs(request),
    )
    .await;
    match answered {
        Err(_) => {
            tally.hung.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Ok(page)) => {
            let organizations: Vec<String> = page
                .into_inner()
                .audit_logs
                .into_iter()
                .map(|row| row.organization.map(|o| o.name).unwrap_or_default())
                .collect();
            if !rows_fit(caller, &organizations) {
                tally.cross_token.fetch_add(1, Ordering::Relaxed);
            }
            tally.ok.fetch_add(1, Ordering::Relaxed);
            tally.code("OK");
        }
        Ok(Err(status)) => {
            tally.refusal(caller, grpc_code(&status));
        }
    }
}

/// A short NDJSON export of the newest rows of one action.
async fn export_call(http: &reqwest::Client, addr: &str, caller: Caller, tally: &Tally) {
    let sent = http
        .get(format!(
            "http://{addr}/audit-logs/export?q=action:login&page_size=50"
        ))
        .header("coder-session-token", caller.token)
        .send();
    let answered = tokio::time::timeout(REQUEST_DEADLINE * 2, async {
        let response = sent.await?;
        let status = response.status().as_u16();
        Ok::<_, reqwest::Error>((status, response.bytes().await?))
    })
    .await;
    match answered {
        Err(_) => {
            tally.hung.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Err(_)) => {
            tally.refused.fetch_add(1, Ordering::Relaxed);
            tally.code("EXPORT_CUT");
        }
        Ok(Ok((status, body))) => {
            let text = String::from_utf8_lossy(&body);
            let leaked = caller.refused.is_some() && status == 200 && text.contains("\"id\"");
            if leaked {
                tally.cross_token.fetch_add(1, Ordering::Relaxed);
            }
            tally.code(&format!("EXPORT_{status}"));
            tally.ok.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A gRPC watch held for a while, its rows checked against the caller.
async fn watch_call(
    client: &mut AuditServiceClient<tonic::transport::Channel>,
    caller: Caller,
    hold: Duration,
    tally: &Tally,
) {
    let mut request = authorized(pb::WatchAuditLogsRequest::default(), caller.token);
    request.set_timeout(hold + REQUEST_DEADLINE);
    let started = Instant::now();
    let Ok(Ok(response)) =
        tokio::time::timeout(REQUEST_DEADLINE, client.watch_audit_logs(request)).await
    else {
        tally.code("WATCH_REFUSED");
        tally.refused.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let mut stream = response.into_inner();
    while started.elapsed() < hold {
        match tokio::time::timeout(REQUEST_DEADLINE, stream.message()).await {
            Ok(Ok(Some(message))) => {
                let organizations: Vec<String> = message
                    .audit_logs
                    .into_iter()
                    .map(|row| row.organization.map(|o| o.name).unwrap_or_default())
                    .collect();
                tally
                    .watch_rows
                    .fetch_add(organizations.len() as u64, Ordering::Relaxed);
                if !rows_fit(caller, &organizations) {
                    tally.cross_token.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(Ok(None) | Err(_)) => break,
            Err(_) => {
                // A watch's stream may stay quiet; it must not outlive its deadline.
                if started.elapsed() > hold + REQUEST_DEADLINE {
                    tally.hung.fetch_add(1, Ordering::Relaxed);
                }
                break;
            }
        }
    }
    tally.code("WATCH");
    tally.ok.fetch_add(1, Ordering::Relaxed);
}

struct Sample {
    at: Duration,
    rss_kib: u64,
    fds: usize,
    tasks: u64,
    fault: Fault,
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

async fn tasks(http: &reqwest::Client, addr: &str) -> u64 {
    let Ok(response) = http.get(format!("http://{addr}/metrics")).send().await else {
        return 0;
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("gateway_runtime_tasks_alive "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let passed = runtime.block_on(run(Duration::from_secs(seconds)));
    if !passed {
        std::process::exit(1);
    }
}

#[allow(clippy::too_many_lines, reason = "one scenario, read top to bottom")]
async fn run(duration: Duration) -> bool {
    let demo = demo::spawn(DemoConfig {
        new_row_every: Some(Duration::from_secs(1)),
        ..DemoConfig::default()
    })
    .await
    .expect("demo");
    let proxy = FaultProxy::start(demo).await;
    let gateway = Gateway::start(
        &format!("http://{}", proxy.addr),
        &["--upstream-timeout", "3s", "--watch-interval", "1s"],
    );
    let pid = gateway.child.id();
    let addr = gateway.addr.clone();
    let http = reqwest::Client::builder()
        .timeout(REQUEST_DEADLINE * 3)
        .build()
        .expect("client");
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("gRPC connects");
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let deadline = started + duration;

    // Callers: 12 of pages, 2 of exports, 4 of watches.
    let mut workers = Vec::new();
    for worker in 0..18_usize {
        let (http, addr, tally) = (http.clone(), addr.clone(), tally.clone());
        let mut client = AuditServiceClient::new(channel.clone());
        workers.push(tokio::spawn(async move {
            let mut round = 0_usize;
            while Instant::now() < deadline {
                let caller = CALLERS[(worker + round) % CALLERS.len()];
                let q = match round % 7 {
                    0 => "action:login",
                    1 => "resource_type:workspace_build",
                    2 => "action:nonsense-value", // Coder refuses it: BAD_USER_INPUT
                    _ => "",
                };
                tally.requests.fetch_add(1, Ordering::Relaxed);
                match worker {
                    0..6 => graphql_call(&http, &addr, caller, q, &tally).await,
                    6..12 => grpc_call(&mut client, caller, q, &tally).await,
                    12..14 => export_call(&http, &addr, caller, &tally).await,
                    _ => watch_call(&mut client, caller, Duration::from_secs(20), &tally).await,
                }
                round += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }

    // Faults: 15 s of one kind at the start of every minute after the first.
    let mut samples = Vec::new();
    let mut crashed = false;
    while Instant::now() < deadline {
        let elapsed = started.elapsed();
        let minute = elapsed.as_secs() / 60;
        let fault = if minute >= 1 && elapsed.as_secs() % 60 < 15 {
            Fault::ROTATION[(minute as usize - 1) % Fault::ROTATION.len()]
        } else {
            Fault::None
        };
        proxy.set(fault);
        if fault == Fault::Restart && elapsed.as_secs() % 60 >= 3 {
            // Down for three seconds, then back on the same port.
            proxy.set(Fault::None);
        }
        if elapsed.as_secs().is_multiple_of(10) {
            samples.push(Sample {
                at: elapsed,
                rss_kib: rss_kib(pid),
                fds: fds(pid),
                tasks: tasks(&http, &addr).await,
                fault,
            });
        }
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            crashed = true;
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    proxy.set(Fault::None);
    for worker in workers {
        let _ = tokio::time::timeout(REQUEST_DEADLINE * 3, worker).await;
    }
    crashed |= !std::path::Path::new(&format!("/proc/{pid}")).exists();

    // Flat after warm-up: the mean of the second and third minutes against the last.
    let window = |from: u64, to: u64| -> Vec<&Sample> {
        samples
            .iter()
            .filter(|s| s.at.as_secs() >= from && s.at.as_secs() < to)
            .collect()
    };
    let end = duration.as_secs();
    let warm = window(60, 180.min(end / 2).max(61));
    let last = window(end.saturating_sub(60), end + 1);
    let mean = |set: &[&Sample], f: fn(&Sample) -> f64| {
        set.iter().map(|s| f(s)).sum::<f64>() / set.len().max(1) as f64
    };
    let growth = |f: fn(&Sample) -> f64| {
        let before = mean(&warm, f);
        if before == 0.0 {
            0.0
        } else {
            (mean(&last, f) - before) / before * 100.0
        }
    };
    let rss_growth = growth(|s| s.rss_kib as f64);
    let fd_growth = growth(|s| s.fds as f64);
    let task_growth = growth(|s| s.tasks as f64);

    let mut report = format!(
        "# Soak: {} s of mixed load with upstream faults every minute (2 cores)\n\n",
        duration.as_secs()
    );
    report.push_str("| t (s) | fault | RSS MiB | open FDs | live tasks |\n|---|---|---|---|---|\n");
    for sample in &samples {
        let _ = writeln!(
            report,
            "| {} | {:?} | {:.1} | {} | {} |",
            sample.at.as_secs(),
            sample.fault,
            sample.rss_kib as f64 / 1024.0,
            sample.fds,
            sample.tasks
        );
    }
    let counts = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut codes: Vec<(String, u64)> = tally
        .codes
        .lock()
        .expect("lock")
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    codes.sort();
    let _ = write!(
        report,
        "\n| target | result | goal |\n|---|---|---|\n\
         | requests | {} ({} answered, {} refused with a code) | |\n\
         | crashes | {} | 0 |\n\
         | hung requests | {} | 0 |\n\
         | cross-token answers | {} | 0 |\n\
         | rows delivered to watches | {} | > 0 |\n\
         | RSS growth after warm-up | {rss_growth:+.1} % | < 5 % |\n\
         | FD growth after warm-up | {fd_growth:+.1} % | < 5 % |\n\
         | live task growth after warm-up | {task_growth:+.1} % | < 5 % |\n\
         | gateway peak RSS, CPU | {:.1} MiB, {:.1} s | |\n\
         \nOutcomes: {}\n",
        counts(&tally.requests),
        counts(&tally.ok),
        counts(&tally.refused),
        u8::from(crashed),
        counts(&tally.hung),
        counts(&tally.cross_token),
        counts(&tally.watch_rows),
        gateway.peak_rss_kib() as f64 / 1024.0,
        gateway.cpu_seconds(gateway::clock_ticks_per_second()),
        codes
            .iter()
            .map(|(code, n)| format!("{code} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    println!("{report}");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/target/soak-report.md");
    if let Err(error) = std::fs::write(path, &report) {
        eprintln!("cannot write {path}: {error}");
    }
    !crashed
        && counts(&tally.hung) == 0
        && counts(&tally.cross_token) == 0
        && counts(&tally.watch_rows) > 0
        && rss_growth < 5.0
        && fd_growth < 5.0
        && task_growth < 5.0
}
