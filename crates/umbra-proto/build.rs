//! Compiles every `.proto` file under the workspace's `proto/` directory to Rust.
//!
//! protox parses and links the files in pure Rust into `FileDescriptorSet`s; the generators
//! take those sets (`compile_fds`), so `protoc` never runs:
//!
//! - Session's messages (`proto/session/`): prost-build, as they always were;
//! - Umbra's own APIs (`proto/umbra/`): tonic-prost-build, which writes the messages with
//!   prost and, with the `grpc` feature, the tonic clients and servers beside them (without
//!   it, messages only: no tonic in the build of the pure crates).
//!
//! Each generator writes one `<package>.rs` per protobuf package into `OUT_DIR`
//! (`session_protos.rs` for `package SessionProtos;`, `umbra.registry.v1.rs`), included by
//! `src/lib.rs`.

use std::error::Error;
use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    // `proto/` lives at the workspace root, beside `crates/`. Import paths inside the files
    // are relative to it (e.g. `import "session/SessionProtos.proto";`).
    let root = manifest_dir.join("../../proto").canonicalize()?;

    let mut files = Vec::new();
    collect_protos(&root, &mut files)?;
    files.sort();
    println!("cargo:rerun-if-changed={}", root.display());
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let umbra_dir = root.join("umbra");
    let (umbra, session): (Vec<PathBuf>, Vec<PathBuf>) =
        files.into_iter().partition(|f| f.starts_with(&umbra_dir));

    if !session.is_empty() {
        prost_build::Config::new().compile_fds(protox::compile(&session, [&root])?)?;
    }
    if !umbra.is_empty() {
        let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();
        tonic_prost_build::configure()
            .build_client(grpc)
            .build_server(grpc)
            // No `connect(url)` helper: callers build their `Endpoint` with timeouts and
            // limits themselves.
            .build_transport(false)
            .emit_rerun_if_changed(false)
            .compile_fds(protox::compile(&umbra, [&root])?)?;
    }
    Ok(())
}

/// Every `*.proto` below `dir`, recursively (directories are watched too, so a new file
/// triggers a rebuild).
fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Box<dyn Error>> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
