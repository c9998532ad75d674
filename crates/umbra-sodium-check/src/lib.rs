//! # umbra-sodium-check
//!
//! **Test-only.** Safe wrappers around the few libsodium functions that `umbra-crypto` is
//! cross-checked against in its dev-only tests (sealed boxes, the deterministic box path,
//! Ed25519 ↔ X25519 conversions, Ed25519 verification, X25519, BLAKE2b, XChaCha20-Poly1305).
//! Session's reference implementation is libsodium; these checks make sure our pure-Rust
//! implementation agrees with it byte for byte and refuses what it refuses.
//!
//! ## Why this crate exists
//! Calling C needs `unsafe`, and the workspace forbids `unsafe` code. Rather than weaken that
//! rule for `umbra-crypto`, the FFI lives here, in one module, and nothing else uses it:
//! - it is `publish = false` and only ever a **dev-dependency** (of `umbra-crypto`); no
//!   production crate may depend on it;
//! - its `Cargo.toml` repeats the workspace lints with `unsafe_code = "deny"` instead of
//!   `"forbid"`, and only the private `ffi` module opts back in; every unsafe block has a
//!   `SAFETY:` comment (clippy's `undocumented_unsafe_blocks` is denied);
//! - libsodium comes from `libsodium-sys-stable`, which compiles the libsodium source shipped
//!   inside that crate (a C compiler and `make` are needed, no system package).
//!
//! Every function returns `None`/`false` where libsodium returns an error, so tests can
//! compare "refused" outcomes too.

mod ffi;

pub use ffi::*;
