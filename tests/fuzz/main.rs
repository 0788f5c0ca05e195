//! Fuzzing on the stable toolchain: structure-aware property tests (proptest) over everything
//! that reads untrusted bytes. Each target generates inputs from a grammar of the real thing
//! (near-valid Coder pages, `q` strings from Coder's keys and quoting, issued cursors with
//! damage, GraphQL requests with real fields, gRPC frames of real messages) as well as raw
//! bytes, and checks that nothing panics, hangs or answers a server error, plus the target's
//! own invariant. proptest shrinks any failure to a minimal input.
//!
//! `cargo test` runs a short pass (`FUZZ_CASES`, default 200 per target). The long run:
//!
//! ```sh
//! FUZZ_CASES=1000000 cargo test --release --test fuzz -- --nocapture --test-threads 2
//! ```

#![allow(
    clippy::expect_used,
    reason = "a failed expectation in a fuzz harness is a finding"
)]

mod cursor;
mod page;
mod query;
mod surface;

use std::sync::atomic::{AtomicU64, Ordering};

use proptest::test_runner::{Config, FileFailurePersistence};

/// Cases per target: `FUZZ_CASES`, or a short run.
fn config() -> Config {
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(200);
    Config {
        cases,
        // Findings are reported (and shrunk) in the test output, not written into the tree.
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        max_shrink_iters: 10_000,
        ..Config::default()
    }
}

/// Counts one input of a target, and prints the total at the end of a long run.
struct Counter {
    name: &'static str,
    inputs: AtomicU64,
}

impl Counter {
    const fn new(name: &'static str) -> Self {
        Self {
            name,
            inputs: AtomicU64::new(0),
        }
    }

    fn tick(&self) {
        self.inputs.fetch_add(1, Ordering::Relaxed);
    }

    fn report(&self) {
        println!(
            "fuzz target {}: {} inputs, no failure",
            self.name,
            self.inputs.load(Ordering::Relaxed)
        );
    }
}
