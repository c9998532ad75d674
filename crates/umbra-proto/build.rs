//! Compiles every `.proto` file under the workspace's `proto/` directory to Rust.
//!
//! protox parses and links the files in pure Rust into a `FileDescriptorSet`; prost-build
//! generates Rust from that set with `Config::compile_fds`, which never runs `protoc`.
//! prost-build writes one `<package>.rs` per protobuf package into `OUT_DIR`
//! (snake case: `session_protos.rs` for `package SessionProtos;`), included by `src/lib.rs`.

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

    let fds = protox::compile(&files, [&root])?;

    prost_build::Config::new().compile_fds(fds)?;
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
