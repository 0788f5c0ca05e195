//! coder-audit-gateway re-exposes Coder's audit log API (`GET /api/v2/audit`) as GraphQL and
//! gRPC, losing nothing of what Coder sends.
//!
//! Modules form floors, each importing only from those below it: the binary's wiring
//! ([`startup`], [`config`]), the protocol adapters ([`graphql`], [`grpc`], NDJSON), the
//! facade every protocol calls ([`audit`]), the engines (the walker, exports, watches,
//! cursor pages, Coder's search language), the page source and the one client to Coder, and
//! the ground ([`model`], the error table, per-call data). README's "How it is built" maps
//! each module; [`demo`] is a Coder audit API of its own, served when no Coder URL is given.
//!
//! The library's API is those seven public modules; the rest is crate-private, and
//! [`internals`] re-exports the parts the binary, tests, benchmarks and fuzz targets drive.

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
