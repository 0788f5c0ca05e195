//! The gateway as the benchmarks run it: the release binary in its own process, so that its
//! CPU time and peak RSS (read from `/proc`) are its own.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

/// The gateway process under test.
pub(crate) struct Gateway {
    pub(crate) child: Child,
    pub(crate) addr: String,
}

impl Gateway {
    /// Starts the release binary against `upstream`, with `extra` arguments.
    pub(crate) fn start(upstream: &str, extra: &[&str]) -> Self {
        Self::start_binary(env!("CARGO_BIN_EXE_coder-audit-gateway"), upstream, extra)
    }

    /// Starts the gateway binary at `binary` (another build, for a before-and-after run).
    #[allow(
        dead_code,
        reason = "the load benchmark's; the others share this module"
    )]
    pub(crate) fn start_binary(binary: &str, upstream: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(binary)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--coder-url",
                upstream,
                "--log",
                "warn,coder_audit_gateway=info",
            ])
            .args(["--health-interval", "1h"])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .expect("the gateway binary starts");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let line = lines
            .by_ref()
            .map_while(Result::ok)
            .find(|l| l.contains("serving GraphQL on http://"))
            .expect("the gateway reports its address");
        let addr = line
            .split("serving GraphQL on http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .expect("an address")
            .to_owned();
        // Keep draining stderr so the gateway never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Self { child, addr }
    }

    /// User plus system CPU seconds so far.
    pub(crate) fn cpu_seconds(&self, ticks_per_second: f64) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (ticks(11) + ticks(12)) / ticks_per_second
    }

    /// The process's peak resident set size so far.
    pub(crate) fn peak_rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
