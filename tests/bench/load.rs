//! Load benchmark: what the gateway adds over calling Coder directly, on this machine, in
//! one run.
//!
//! The demo upstream runs in this process (answering from memory, or after `service_time`
//! like a real Coder querying its database); the gateway is the release binary in its own
//! process, so its CPU time and peak RSS are its own. For each upstream speed, page size
//! (25, 100) and concurrency (1, 32) the harness measures the upstream directly over HTTP,
//! then the gateway over GraphQL and over gRPC, each for a fixed time after a warm-up, with
//! connections reused as real clients do (HTTP keep-alive, one gRPC channel).
//!
//! GraphQL asks for a page of 25 with ten row fields, and for a page of 100 with every field
//! of the contract; gRPC always carries every field. Both clients take the response's bytes
//! and do not decode them, so that the harness, on the same cores, spends alike on both.
//!
//! Each scenario runs three times, interleaved with the other builds' and targets' runs of the
//! same scenario (direct, then each target on each build, three rounds), and each row reports
//! the median of its three runs, metric by metric: one noisy second on a busy machine moves a
//! row less, and before and after see the same machine state.
//!
//! Run: `cargo bench --bench load` (`BENCH_SECONDS` sets the measured seconds per run,
//! default 4; `BENCH_UPSTREAM_MS`, default `0,5`, the upstream speeds). With
//! `BASELINE_BIN=<path to another build of the gateway>` every gateway scenario also runs
//! against that build, in the same run, as the "before" rows. The table goes to stdout and to
//! `target/load-report.md`. `BENCH_FILTER=<text>` runs only the gateway scenarios whose name
//! (e.g. `0ms 25 32 gRPC`) contains it, to profile one.

#![allow(
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a benchmark harness: a failed expectation aborts the run, and the float conversions are for reporting"
)]

use std::time::{Duration, Instant};

mod gateway;

use gateway::{Gateway, clock_ticks_per_second};

use coder_audit_gateway::{
    demo::{self, DEMO_TOKEN, DemoConfig},
    grpc::pb,
};

/// Ten fields of each row: the page of 25 a dashboard asks for.
const TEN_FIELDS: &str = "count auditLogs { id time action resourceType resourceTarget ip userAgent statusCode description user { username } }";

/// Every field of the contract: the page of 100 an export-like client asks for.
const FIELDS: &str = "count countCap auditLogs { id requestId time ip userAgent resourceType resourceId resourceTarget resourceIcon action diff { field old new secret } statusCode additionalFields description resourceLink isDeleted organizationId organization { id name displayName icon } user { id username name email avatarUrl createdAt updatedAt lastSeenAt status loginType themePreference organizationIds roles { name displayName organizationId } } }";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Direct,
    Graphql,
    Grpc,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Graphql => "GraphQL",
            Self::Grpc => "gRPC",
        }
    }
}

/// Runs of one scenario a row reports.
const ROUNDS: usize = 3;

/// One scenario's measurements.
#[derive(Clone)]
struct Sample {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// Gateway CPU seconds spent during the measured window.
    cpu: f64,
    peak_rss_kib: u64,
}

impl Sample {
    fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn cpu_per_request(&self) -> f64 {
        self.cpu / self.requests.max(1) as f64
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index]
    }
}

/// A gRPC codec that encodes the request with prost and hands back the response's bytes.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = pb::ListAuditLogsRequest;
    type Decode = bytes::Bytes;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        Self
    }

    fn decoder(&mut self) -> Self {
        Self
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = pb::ListAuditLogsRequest;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Self::Item,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        prost::Message::encode(&item, dst).map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = bytes::Bytes;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<bytes::Bytes>, tonic::Status> {
        use bytes::Buf as _;
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// Clients that reuse their connections, to the upstream and to one gateway.
#[derive(Clone)]
struct Clients {
    http: reqwest::Client,
    grpc: tonic::client::Grpc<tonic::transport::Channel>,
    upstream: String,
    gateway: String,
}

impl Clients {
    async fn call(&self, target: Target, rows: i32) -> bool {
        match target {
            Target::Direct => {
                let url = format!("{}/api/v2/audit?q=&limit={rows}&offset=0", self.upstream);
                match self
                    .http
                    .get(url)
                    .header("coder-session-token", DEMO_TOKEN)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                    _ => false,
                }
            }
            Target::Graphql => {
                let fields = if rows <= 25 { TEN_FIELDS } else { FIELDS };
                let body = serde_json::json!({"query": format!("{{ auditLogs(limit: {rows}) {{ {fields} }} }}")}).to_string();
                match self
                    .http
                    .post(format!("http://{}/graphql", self.gateway))
                    .header("content-type", "application/json")
                    .header("coder-session-token", DEMO_TOKEN)
                    .body(body)
                    .send()
                    .await
                {
                    // A SIMD search: a byte-by-byte scan of a page costs the harness tens of
                    // microseconds, which would count as the gateway's latency.
                    Ok(r) if r.status().is_success() => r
                        .bytes()
                        .await
                        .is_ok_and(|b| memchr::memmem::find(&b, b"\"errors\":").is_none()),
                    _ => false,
                }
            }
            Target::Grpc => {
                let mut request = tonic::Request::new(pb::ListAuditLogsRequest {
                    limit: rows,
                    ..Default::default()
                });
                request.metadata_mut().insert(
                    "coder-session-token",
                    tonic::metadata::MetadataValue::from_static(DEMO_TOKEN),
                );
                // The response's bytes, as the GraphQL client takes its body: decoding a
                // page into prost's structs would charge this harness, on the same two cores,
                // for work the GraphQL client does not do.
                let mut grpc = self.grpc.clone();
                if grpc.ready().await.is_err() {
                    return false;
                }
                let path = http::uri::PathAndQuery::from_static(
                    "/coder.audit.v1.AuditService/ListAuditLogs",
                );
                grpc.unary(request, path, RawCodec)
                    .await
                    .is_ok_and(|response| !response.get_ref().is_empty())
            }
        }
    }
}

/// A gateway build under test and its clients.
struct Subject {
    /// "" for this build, "before" for `BASELINE_BIN`.
    label: &'static str,
    gateway: Gateway,
    clients: Clients,
}

impl Subject {
    async fn start(
        label: &'static str,
        binary: Option<&str>,
        upstream: &str,
        http: &reqwest::Client,
    ) -> Self {
        let extra = ["--max-concurrent-requests", "4096"];
        let gateway = match binary {
            Some(binary) => Gateway::start_binary(binary, upstream, &extra),
            None => Gateway::start(upstream, &extra),
        };
        // HTTP/2 flow control as gRPC's own clients run it (grpc-go and grpcio size their
        // windows to the connection, BDP probing): with tonic's fixed 64 KiB default, 32 pages
        // of 100 rows in flight on one connection wait on window updates, which no HTTP/1.1
        // client of the GraphQL side ever does.
        let channel = tonic::transport::Channel::from_shared(format!("http://{}", gateway.addr))
            .expect("uri")
            .http2_adaptive_window(true)
            .connect()
            .await
            .expect("gRPC connects");
        let clients = Clients {
            http: http.clone(),
            grpc: tonic::client::Grpc::new(channel),
            upstream: upstream.to_owned(),
            gateway: gateway.addr.clone(),
        };
        Self {
            label,
            gateway,
            clients,
        }
    }
}

/// Runs `concurrency` callers for `warmup`, then measures for `measure`.
async fn measure(
    clients: &Clients,
    gateway: &Gateway,
    target: Target,
    rows: i32,
    concurrency: usize,
    measure: Duration,
    ticks: f64,
) -> Sample {
    let run = async |window: Duration| {
        let deadline = Instant::now() + window;
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let clients = clients.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut errors = 0;
                    while Instant::now() < deadline {
                        let started = Instant::now();
                        if clients.call(target, rows).await {
                            latencies.push(started.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                    (latencies, errors)
                })
            })
            .collect();
        let mut latencies = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (l, e) = task.await.expect("caller task");
            latencies.extend(l);
            errors += e;
        }
        (latencies, errors)
    };
    run(Duration::from_secs(1)).await;
    let cpu_before = gateway.cpu_seconds(ticks);
    let started = Instant::now();
    let (mut latencies, errors) = run(measure).await;
    let elapsed = started.elapsed();
    let cpu = gateway.cpu_seconds(ticks) - cpu_before;
    latencies.sort_unstable();
    Sample {
        requests: latencies.len(),
        errors,
        elapsed,
        latencies,
        cpu,
        peak_rss_kib: gateway.peak_rss_kib(),
    }
}

/// The median of a scenario's runs, metric by metric (each metric's own middle run).
struct Median(Vec<Sample>);

impl Median {
    fn of(&self, metric: impl Fn(&Sample) -> f64) -> f64 {
        let mut values: Vec<f64> = self.0.iter().map(metric).collect();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(0.0)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    // The harness's own runtime: the load generator and the in-process demo upstream.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let report = runtime.block_on(run(Duration::from_secs(seconds)));
    println!("{report}");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/target/load-report.md");
    match std::fs::write(path, &report) {
        Ok(()) => println!("written to {path}"),
        Err(error) => eprintln!("cannot write {path}: {error}"),
    }
}

async fn run(window: Duration) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ticks = clock_ticks_per_second();
    let baseline = std::env::var("BASELINE_BIN").ok();
    // E.g. `0ms 25 32 gRPC`: only the gateway scenarios whose name contains it (to profile one).
    let filter = std::env::var("BENCH_FILTER").ok();
    let mut report = format!(
        "# Gateway overhead, median of {ROUNDS} interleaved runs of {} s after 1 s warm-up ({} cores)\n\n\
         GraphQL: page 25 with ten row fields, page 100 with every field. gRPC: every field.\n\n\
         | upstream | page | conc. | target | req/s | p50 ms | p90 ms | p99 ms | errors | gateway CPU ms/req | gateway peak RSS MiB | throughput vs direct | added p50 ms |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        window.as_secs(),
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");
    let upstream_ms: Vec<u64> = std::env::var("BENCH_UPSTREAM_MS")
        .unwrap_or_else(|_| "0,5".to_owned())
        .split(',')
        .filter_map(|ms| ms.trim().parse().ok())
        .collect();
    for service_time in upstream_ms.into_iter().map(Duration::from_millis) {
        let addr = demo::spawn(DemoConfig {
            service_time,
            ..DemoConfig::default()
        })
        .await
        .expect("demo starts");
        let upstream = format!("http://{addr}");
        let mut subjects = Vec::new();
        if let Some(binary) = &baseline {
            subjects.push(Subject::start("before", Some(binary), &upstream, &http).await);
        }
        subjects.push(Subject::start("", None, &upstream, &http).await);
        for rows in [25, 100] {
            for concurrency in [1, 32] {
                let setting = Setting {
                    service_time,
                    rows,
                    concurrency,
                    window,
                    ticks,
                };
                report.push_str(&scenario(&subjects, &setting, filter.as_deref()).await);
            }
        }
    }
    report
}

/// What one scenario runs with.
struct Setting {
    service_time: Duration,
    rows: i32,
    concurrency: usize,
    window: Duration,
    ticks: f64,
}

/// One scenario's rows: direct, then each target on each build, each the median of its
/// interleaved runs. The last subject is this build.
async fn scenario(subjects: &[Subject], setting: &Setting, filter: Option<&str>) -> String {
    let Setting {
        service_time,
        rows,
        concurrency,
        window,
        ticks,
    } = *setting;
    let current = subjects.last().expect("this build");
    let mut report = String::new();
    // Rounds of every run of the scenario, interleaved: direct, then each target
    // on each build.
    let mut runs: Vec<(String, Vec<Sample>)> = vec![("direct".to_owned(), Vec::new())];
    let mut plan = Vec::new();
    for target in [Target::Graphql, Target::Grpc] {
        for (index, subject) in subjects.iter().enumerate() {
            let name = if subject.label.is_empty() {
                target.name().to_owned()
            } else {
                format!("{} ({})", target.name(), subject.label)
            };
            let scenario = format!("{}ms {rows} {concurrency} {name}", service_time.as_millis());
            if filter.is_some_and(|f| !scenario.contains(f)) {
                continue;
            }
            plan.push((target, index));
            runs.push((name, Vec::new()));
        }
    }
    for _ in 0..ROUNDS {
        let direct = measure(
            &current.clients,
            &current.gateway,
            Target::Direct,
            rows,
            concurrency,
            window,
            ticks,
        )
        .await;
        runs[0].1.push(direct);
        for (slot, (target, index)) in plan.iter().enumerate() {
            let subject = &subjects[*index];
            let sample = measure(
                &subject.clients,
                &subject.gateway,
                *target,
                rows,
                concurrency,
                window,
                ticks,
            )
            .await;
            runs[slot + 1].1.push(sample);
        }
    }
    let direct = Median(runs[0].1.clone());
    for (i, (name, samples)) in runs.into_iter().enumerate() {
        let sample = Median(samples);
        let against = (i > 0).then_some(&direct);
        report.push_str(&line(
            service_time,
            rows,
            concurrency,
            &name,
            &sample,
            against,
        ));
    }
    report
}

/// One row of the table, each metric the median of the scenario's runs; `direct` is the same
/// scenario without the gateway.
fn line(
    service_time: Duration,
    rows: i32,
    concurrency: usize,
    name: &str,
    sample: &Median,
    direct: Option<&Median>,
) -> String {
    let throughput = sample.of(Sample::throughput);
    let p50 = sample.of(|s| ms(s.percentile(0.5)));
    let (ratio, added, cpu) = match direct {
        Some(d) if throughput > 0.0 => (
            format!("{:.0}%", 100.0 * throughput / d.of(Sample::throughput)),
            format!("{:+.3}", p50 - d.of(|s| ms(s.percentile(0.5)))),
            format!("{:.3}", 1e3 * sample.of(Sample::cpu_per_request)),
        ),
        _ => (String::new(), String::new(), String::new()),
    };
    let line = format!(
        "| {} ms | {rows} | {concurrency} | {name} | {throughput:.0} | {p50:.3} | {:.3} | {:.3} | {:.0} | {cpu} | {:.1} | {ratio} | {added} |\n",
        service_time.as_millis(),
        sample.of(|s| ms(s.percentile(0.9))),
        sample.of(|s| ms(s.percentile(0.99))),
        sample.of(|s| s.errors as f64),
        sample.of(|s| s.peak_rss_kib as f64) / 1024.0,
    );
    eprint!("{line}");
    line
}
