#![doc = include_str!("../README.md")]

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use blake2::digest::{KeyInit, Mac};

static REVEAL: AtomicBool = AtomicBool::new(false);
static TAG_KEY: OnceLock<[u8; 32]> = OnceLock::new();

/// Bytes of the keyed hash shown in a tag: 3 bytes (6 hex digits) tell log lines apart within
/// one run without being a useful fingerprint.
const TAG_BYTES: usize = 3;

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
        let mut key = [0u8; 32];
        // The tag key is not a secret of the protocol, only of this process's logs. If the OS
        // has no entropy source, an all-zero key still hides values from a casual reader; no
        // reason to stop the program over a log tag.
        #[allow(clippy::disallowed_methods)] // the per-process tag key: this crate's own home
        let _ = getrandom::fill(&mut key);
        key
    })
}

fn tag(text: &str) -> String {
    type Blake2bMac256 = blake2::Blake2bMac<blake2::digest::consts::U32>;
    let digest = match <Blake2bMac256 as KeyInit>::new_from_slice(tag_key()) {
        Ok(mut mac) => {
            mac.update(text.as_bytes());
            mac.finalize().into_bytes()
        }
        // A 32-byte key is always valid for BLAKE2b-MAC; show nothing rather than the value.
        Err(_) => return "??????".to_owned(),
    };
    hex::encode(&digest[..TAG_BYTES])
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

impl<T: fmt::Display> fmt::Display for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if reveal() {
            fmt::Display::fmt(&self.0, f)
        } else {
            write!(f, "[redacted:{}]", tag(&self.0.to_string()))
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
        assert!(shown.starts_with("[redacted:"), "{shown}");
        assert_eq!(format!("{v}"), format!("{v}"));
        assert_ne!(format!("{v}"), format!("{}", Redacted::new("other")));
    }

    #[test]
    fn tags_are_keyed_not_a_plain_hash() {
        // The tag must not be a function of the value alone: with an unkeyed hash anyone could
        // confirm a guessed Session ID against a log. Check it is not BLAKE2b of the value.
        use blake2::Digest;
        let value = "05aa";
        let plain = blake2::Blake2b::<blake2::digest::consts::U32>::digest(value.as_bytes());
        let shown = Redacted::new(value).to_string();
        assert_ne!(
            shown,
            format!("[redacted:{}]", hex::encode(&plain[..TAG_BYTES]))
        );
        assert_eq!(shown.len(), "[redacted:]".len() + 2 * TAG_BYTES);
    }
}
