//! Compiles `proto/` into prost messages and tonic stubs.
//!
//! protox is a protobuf compiler written in Rust and carrying the well-known types, so a
//! fresh machine (or an air-gapped one) builds the gateway with nothing but cargo: no
//! `protoc` binary to install or download.
use std::{env, fs, path::PathBuf};

use protox::prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
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
