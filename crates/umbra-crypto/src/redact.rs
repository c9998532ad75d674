//! Keeping metadata out of logs.
//!
//! A Session ID, an IP address, a swarm choice or a path is metadata: who talks to whom is what
//! Umbra hides. Wrap such values in [`Redacted`] before they reach a log line. By default both
//! `Display` and `Debug` print only a short, non-reversible tag (the first bytes of a keyed
//! hash, stable within one process so that log lines about the same value can be correlated).
//! An operator who asks for it — by calling [`set_reveal`] at start-up, which binaries tie to a
//! debug-level log setting — sees the value in clear.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::hash::blake2b_32_keyed;

static REVEAL: AtomicBool = AtomicBool::new(false);
static TAG_KEY: OnceLock<[u8; 32]> = OnceLock::new();

/// Shows redacted values in clear (`true`) or as tags (`false`, the default) from now on.
///
/// Binaries call this once at start-up, only when the operator explicitly asks for
/// debug-level logs with metadata.
pub fn set_reveal(reveal: bool) {
    REVEAL.store(reveal, Ordering::Relaxed);
}

/// Whether redacted values are currently shown in clear.
pub fn reveal() -> bool {
    REVEAL.load(Ordering::Relaxed)
}

fn tag_key() -> &'static [u8; 32] {
    TAG_KEY.get_or_init(|| {
        let mut k = [0u8; 32];
        crate::Random::fill(&mut crate::OsRandom, &mut k);
        k
    })
}

/// A value that prints as `[redacted:xxxxxx]` unless revealing is switched on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Redacted<T>(T);

impl<T> Redacted<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The wrapped value.
    pub fn into_inner(self) -> T {
        self.0
    }

    /// A reference to the wrapped value.
    pub fn get(&self) -> &T {
        &self.0
    }
}

impl<T: fmt::Display> Redacted<T> {
    fn tag(&self) -> String {
        let digest = blake2b_32_keyed(tag_key(), &[self.0.to_string().as_bytes()]);
        hex::encode(&digest[..3])
    }
}

impl<T: fmt::Display> fmt::Display for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if reveal() {
            fmt::Display::fmt(&self.0, f)
        } else {
            write!(f, "[redacted:{}]", self.tag())
        }
    }
}

impl<T: fmt::Display> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_value_by_default_and_tags_are_stable() {
        let v = Redacted::new("05d2ad010eeb72d72e561d9de7bd7b6989af77dcabffa03a5111a6c859ae5c3a72");
        let shown = format!("{v} {v:?}");
        assert!(!shown.contains("d2ad01"), "{shown}");
        assert!(shown.starts_with("[redacted:"));
        assert_eq!(format!("{v}"), format!("{v}"));
        assert_ne!(format!("{v}"), format!("{}", Redacted::new("other")));
    }
}
