//! Integration tests: the real gateway (built by `Application::build` from command-line
//! arguments) on 127.0.0.1:0, in front of the demo upstream or a scripted fake Coder, driven
//! by real clients: HTTP for GraphQL and the generated tonic client for gRPC. One test binary,
//! so the suite links once.

#![allow(
    clippy::expect_used,
    reason = "a failed expectation in a test helper is a test failure"
)]

mod demo;
mod errors;
mod fidelity;
mod filters;
mod fixtures;
mod forwarding;
mod graphiql;
mod helpers;
mod hostile;
mod isolation;
mod live;
mod operations;
#[cfg(feature = "otel")]
mod otlp;
mod paging;
mod plans;
mod streams;
mod surface;
mod unplaceable;
mod walks;
