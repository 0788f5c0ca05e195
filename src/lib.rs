//! coder-audit-gateway re-exposes Coder's audit log API (`GET /api/v2/audit`) as GraphQL and
//! gRPC, losing nothing of what Coder sends.
//!
//! A request flows down through floors, each importing only from those below it:
//!
//! ```text
//!  graphql · grpc · ndjson          adapters: parse, call the facade, encode, map error kinds
//!  middleware · headers             the HTTP layer: request id, trace context, deadlines, shedding
//!  audit::AuditLogs                 the facade every protocol calls
//!  walker · export · watch · query · cursor       engines
//!  source · upstream                the page source: limits, deadline, shutdown, retries; Coder
//!  model · error · call · auth      the ground: the page, error kinds and codes, per-call data
//! ```
//!
//! - `upstream` is the only code that talks to Coder, one request at a time; `source`
//!   bounds, retries and parses every page; [`model`] is the page, read once, faithfully to
//!   the wire format (open enums, optional keys, arbitrary JSON).
//! - [`audit`] is the facade every protocol calls; `error` holds its one error type and the
//!   one table of each error kind's GraphQL code, gRPC code and HTTP status; `call` is what
//!   a call carries into the core, `auth` the caller's token.
//! - `query` is Coder's search language: the tokenizer and the compiler of typed filters,
//!   shared by every protocol.
//! - `walker`, `export`, `watch` and `cursor` are the whole trail and its live tail:
//!   a walk over Coder's pages that delivers every row exactly once whatever Coder records or
//!   reorders meanwhile, exports on it, watches that share one poller per caller and query,
//!   and the cursors that resume both. `ndjson` serves the export to curl and log
//!   shippers, and `cli` is `coder-audit-gateway export`; gRPC streams and the GraphQL
//!   subscription are in the protocol modules.
//! - [`graphql`] and [`grpc`] are thin adapters; `middleware` gives every request its id,
//!   trace context and load shedding, and reads `grpc-timeout`; `headers` reads HTTP header
//!   lists; `health` and `telemetry` are the probes, logs and metrics; `index` answers
//!   `GET /`; [`startup`] wires it all onto one router and `server` serves it on one port,
//!   optionally behind TLS, with a bounded graceful shutdown; [`config`] is the command line.
//! - [`demo`] is a Coder audit API that behaves like the real one, served when no Coder URL
//!   is configured and used by the tests as their upstream.
//!
//! The library's API is seven modules: [`audit`] (the facade, with the types a caller of it
//! names), [`config`], [`startup`], [`graphql`], [`grpc`], [`model`] and [`demo`]; the rest is
//! crate-private, and [`internals`] re-exports the parts the binary, tests, benchmarks and
//! fuzz targets drive directly.

pub mod audit;
pub(crate) mod auth;
pub(crate) mod call;
pub(crate) mod cli;
pub mod config;
pub(crate) mod cursor;
pub mod demo;
pub(crate) mod error;
pub(crate) mod export;
pub mod graphql;
pub mod grpc;
pub(crate) mod headers;
pub(crate) mod health;
pub(crate) mod index;
pub(crate) mod middleware;
pub mod model;
pub(crate) mod ndjson;
pub(crate) mod paging;
pub(crate) mod query;
pub(crate) mod server;
pub(crate) mod source;
pub mod startup;
pub(crate) mod telemetry;
pub(crate) mod upstream;
pub(crate) mod walker;
pub(crate) mod watch;

/// What the binary, the integration tests, the benchmarks and the fuzz targets reach beyond
/// the API above: the engines' parts they drive or check directly. Not a stable interface.
#[doc(hidden)]
pub mod internals {
    pub mod cli {
        pub use crate::cli::{CliError, Summary, export, status};
    }
    pub mod cursor {
        pub use crate::cursor::{
            CursorError, ExportCursor, ExportCursorVersion, Instant, PageToken, Position,
            decode_export, decode_page, decode_watch, encode_export, encode_page, encode_watch,
            fnv64, instant,
        };
    }
    pub mod query {
        pub use crate::query::{AuditLogFilter, compile, compile_bounded};
    }
    pub mod server {
        pub use crate::server::{ServeOptions, TlsError, serve, tls_acceptor};
    }
    pub mod telemetry {
        pub use crate::telemetry::{Telemetry, init};
    }
}
