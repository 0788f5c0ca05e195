//! Compiles `proto/` into prost messages and tonic stubs, and prepares `GraphiQL`'s files
//! for embedding.
//!
//! protox is a protobuf compiler written in Rust and carrying the well-known types, so a
//! fresh machine (or an air-gapped one) builds the gateway with nothing but cargo: no
//! `protoc` binary to install or download. `GraphiQL` is vendored in the repository
//! (`src/graphql/graphiql/vendor/`); here each file gets its content hash, for a URL that can
//! be cached forever, and its gzipped form, so the server never compresses per request.
use std::{
    env,
    error::Error,
    fmt::Write as _,
    fs,
    io::Write as _,
    path::{Path, PathBuf},
};

use flate2::{Compression, write::GzEncoder};
use protox::prost::Message as _;
use sha2::{Digest as _, Sha256};

fn main() -> Result<(), Box<dyn Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    graphiql_assets(&out_dir)?;
    let fds = protox::compile(["coder/audit/v1/audit.proto"], ["proto"])?;

    // Kept for gRPC server reflection: compile_fds() does not write it itself.
    fs::write(out_dir.join("audit_descriptor.bin"), fds.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Sorted diff keys give every caller the same, stable field order.
        .btree_map(".")
        .compile_fds(fds)?;

    // compile_fds() cannot tell cargo which files it read.
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}

/// Where the `GraphiQL` page's files live, and the ones it serves, with their media types.
const GRAPHIQL_DIR: &str = "src/graphql/graphiql";
const GRAPHIQL_FILES: &[(&str, &str)] = &[
    (
        "vendor/react.production.min.js",
        "text/javascript; charset=utf-8",
    ),
    (
        "vendor/react-dom.production.min.js",
        "text/javascript; charset=utf-8",
    ),
    ("vendor/graphiql.min.js", "text/javascript; charset=utf-8"),
    ("vendor/graphiql.min.css", "text/css; charset=utf-8"),
    (
        "vendor/plugin-explorer.umd.js",
        "text/javascript; charset=utf-8",
    ),
    ("vendor/plugin-explorer.css", "text/css; charset=utf-8"),
    ("vendor/LICENSES.txt", "text/plain; charset=utf-8"),
    ("init.js", "text/javascript; charset=utf-8"),
    ("page.css", "text/css; charset=utf-8"),
];

/// Writes `graphiql_assets.rs`: one `Asset` per file, its URL carrying the first 64 bits of
/// its SHA-256, the bytes and their gzip embedded with `include_bytes!`.
fn graphiql_assets(out_dir: &Path) -> Result<(), Box<dyn Error>> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let mut table = String::from("&[\n");
    for (file, content_type) in GRAPHIQL_FILES {
        let source = manifest.join(GRAPHIQL_DIR).join(file);
        println!("cargo:rerun-if-changed={}", source.display());
        let bytes = fs::read(&source)?;
        let hash = Sha256::digest(&bytes)[..8]
            .iter()
            .fold(String::new(), |mut hex, byte| {
                let _ = write!(hex, "{byte:02x}");
                hex
            });
        let name = Path::new(file)
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or("asset names are UTF-8")?;
        let (stem, extension) = name.rsplit_once('.').ok_or("assets have an extension")?;
        let gzipped = out_dir.join(format!("{name}.gz"));
        // As string literals in the generated code (`{:?}` of a str escapes it).
        let (source_literal, gzipped_literal) = (
            source.to_str().ok_or("paths are UTF-8")?,
            gzipped.to_str().ok_or("paths are UTF-8")?,
        );
        // GzEncoder writes no file name and a zero mtime: the same input, the same bytes.
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&bytes)?;
        fs::write(&gzipped, encoder.finish()?)?;
        writeln!(
            table,
            "    Asset {{ name: {name:?}, path: \"/graphiql/{stem}.{hash}.{extension}\", \
             etag: \"\\\"{hash}\\\"\", content_type: {content_type:?}, \
             body: include_bytes!({source_literal:?}), gzip: include_bytes!({gzipped_literal:?}) }},"
        )?;
    }
    table.push(']');
    fs::write(out_dir.join("graphiql_assets.rs"), table)?;
    Ok(())
}
