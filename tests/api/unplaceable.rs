//! Rows whose `id` or `time` Coder sent unreadable, in a trail Coder still orders (and date
//! filters) by the time it recorded: each export surface ends with that row's error, naming
//! the row and the field, and the cursor past it; resumed from there, the export goes on,
//! so that resuming after each error delivers every other row exactly once, newest first.
//! The demo shuffles ties on every call, and one bad row sits in a group of ties.

use std::collections::HashSet;

use coder_audit_gateway::demo::{self, DEMO_TOKEN, DemoConfig, DemoHandle};
use serde_json::Value;
use tonic_types::StatusExt as _;

use crate::helpers::{Gateway, gateway};

/// A trail of 300 rows plus six tied at the top, two of them served unreadable: one with a
/// `time` that does not parse (in the tied group), one with a number for its `id` (deep in
/// the trail). Returns the gateway, the demo's base URL and handle, every readable row's id
/// newest first, and the id of the row whose time is unreadable.
async fn trail() -> (Gateway, String, DemoHandle, Vec<String>, String) {
    let (addr, handle) = demo::spawn_with_handle(DemoConfig {
        rows: 300,
        shuffle_ties: true,
        ..DemoConfig::default()
    })
    .await
    .expect("demo starts");
    handle.record(5, true);
    let upstream = format!("http://{addr}");
    let gateway = gateway(&upstream, &[]).await;
    let text = gateway.ndjson_text(DEMO_TOKEN, "").await;
    let rows: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("a row"))
        .collect();
    assert_eq!(rows.len(), 305, "the whole trail");
    let snapshot = handle.snapshot();
    let (bad_time, bad_id) = (snapshot[2].0.clone(), snapshot[211].0.clone());
    let row = |id: &str| {
        rows.iter()
            .find(|row| row["id"] == id)
            .cloned()
            .expect("the row is in the export")
    };
    let mut time_row = row(&bad_time);
    time_row["time"] = "yesterday".into();
    let mut id_row = row(&bad_id);
    id_row["id"] = 42.into();
    assert!(handle.serve_as(&bad_time, &time_row.to_string()));
    assert!(handle.serve_as(&bad_id, &id_row.to_string()));
    let readable = (snapshot.into_iter())
        .map(|(id, _)| id)
        .filter(|id| *id != bad_time && *id != bad_id)
        .collect();
    (gateway, upstream, handle, readable, bad_time)
}

/// Checks what an export delivered across its resumes against the readable rows: each once,
/// and the errors it ended with, one per unreadable row, naming each.
fn check(delivered: &[String], errors: &[String], readable: &[String], bad_time: &str) {
    let unique: HashSet<&String> = delivered.iter().collect();
    assert_eq!(unique.len(), delivered.len(), "no row twice");
    let mut sorted = delivered.to_vec();
    sorted.sort();
    let mut expected = readable.to_vec();
    expected.sort();
    assert_eq!(sorted, expected, "every readable row once");
    assert_eq!(errors.len(), 2, "one error per unreadable row: {errors:?}");
    assert!(
        errors[0].contains(bad_time) && errors[0].contains("time"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("id") && errors[1].contains("42"),
        "{errors:?}"
    );
}

#[tokio::test]
async fn an_ndjson_export_resumes_past_rows_it_cannot_place() {
    let (gateway, _, _handle, readable, bad_time) = trail().await;
    let mut delivered = Vec::new();
    let mut errors = Vec::new();
    let mut after = String::new();
    for _ in 0..4 {
        let text = gateway
            .ndjson_until_end(DEMO_TOKEN, &format!("page_size=40&after={after}"))
            .await;
        let mut ended = None;
        for line in text.lines() {
            let line: Value = serde_json::from_str(line).expect("JSON line");
            if let Some(error) = line.get("error") {
                ended = Some(error.clone());
            } else {
                delivered.push(line["id"].as_str().expect("an id").to_owned());
            }
        }
        let Some(error) = ended else { break };
        assert_eq!(error["code"], "UPSTREAM_DATA_LOSS", "{error}");
        errors.push(error["message"].as_str().expect("message").to_owned());
        after = error["cursor"]
            .as_str()
            .expect("the cursor past the row")
            .to_owned();
    }
    check(&delivered, &errors, &readable, &bad_time);
}

#[tokio::test]
async fn a_grpc_export_resumes_past_rows_it_cannot_place() {
    let (gateway, _, _handle, readable, bad_time) = trail().await;
    let mut delivered = Vec::new();
    let mut errors = Vec::new();
    let mut after = String::new();
    for _ in 0..4 {
        let (rows, ended) = gateway.grpc_export(DEMO_TOKEN, after, 40).await;
        delivered.extend(rows.into_iter().map(|log| log.id));
        let Some(ended) = ended else { break };
        assert_eq!(ended.code(), tonic::Code::DataLoss, "{ended:?}");
        errors.push(ended.message().to_owned());
        after = ended
            .get_error_details()
            .error_info()
            .and_then(|info| info.metadata.get("cursor").cloned())
            .expect("the cursor past the row");
    }
    check(&delivered, &errors, &readable, &bad_time);
}

#[tokio::test]
async fn the_export_command_stops_at_a_row_it_cannot_place_and_resumes_past_it() {
    let (_, upstream, _handle, readable, bad_time) = trail().await;
    let dir = std::env::temp_dir().join(format!("cag-unplaceable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("audit.ndjson");
    let path = file.to_str().expect("path").to_owned();
    let mut errors = Vec::new();
    let mut finished = false;
    for attempt in 0..4 {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_coder-audit-gateway"));
        command
            .arg("export")
            .args(["--coder-url", upstream.as_str()])
            .args(["--output", path.as_str(), "--page-size", "40"])
            .env("CODER_SESSION_TOKEN", DEMO_TOKEN)
            .env_remove("CODER_URL");
        if attempt > 0 {
            command.arg("--resume");
        }
        // The demo answers on this test's runtime: wait for the binary off it.
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("join")
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if output.status.success() {
            finished = true;
            break;
        }
        assert!(stderr.contains("--resume"), "{stderr}");
        // The file ends with the error line, which carries the cursor past the row.
        let text = std::fs::read_to_string(&file).expect("file");
        let last: Value = serde_json::from_str(text.lines().last().expect("a line")).expect("JSON");
        assert_eq!(last["error"]["code"], "UPSTREAM_DATA_LOSS", "{last}");
        assert!(last["error"]["cursor"].is_string(), "{last}");
        errors.push(stderr);
    }
    assert!(finished, "the export finishes: {errors:#?}");
    let text = std::fs::read_to_string(&file).expect("file");
    let delivered: Vec<String> = text
        .lines()
        .map(|line| {
            let line: Value = serde_json::from_str(line).expect("JSON line");
            line["id"].as_str().expect("only rows are left").to_owned()
        })
        .collect();
    std::fs::remove_dir_all(&dir).ok();
    check(&delivered, &errors, &readable, &bad_time);
}
