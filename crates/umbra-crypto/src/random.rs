//! Randomness passed in by the caller.

/// A source of cryptographically secure random bytes.
///
/// The protocol crates never reach for global randomness: they take a `&mut dyn Random` (or a
/// generic `R: Random`), so tests can make every output reproducible.
pub trait Random {
    /// Fills `out` with random bytes.
    fn fill(&mut self, out: &mut [u8]);

    /// Returns `N` random bytes.
    fn bytes<const N: usize>(&mut self) -> [u8; N]
    where
        Self: Sized,
    {
        let mut out = [0u8; N];
        self.fill(&mut out);
        out
    }
}

impl<R: Random + ?Sized> Random for &mut R {
    fn fill(&mut self, out: &mut [u8]) {
        (**self).fill(out);
    }
}

/// The operating system's random number generator (`getrandom`).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&mut self, out: &mut [u8]) {
        // getrandom only fails when the OS has no entropy source at all; there is no safe way
        // to continue, and returning predictable bytes would be far worse than stopping.
        // This is the home of OS randomness: clippy's `disallowed-methods` (workspace
        // `clippy.toml`) bans getrandom everywhere else, so all randomness is a `Random`.
        #[allow(clippy::panic, clippy::disallowed_methods)]
        if let Err(e) = getrandom::fill(out) {
            panic!("the operating system's random number generator failed: {e}");
        }
    }
}

/// A deterministic generator for tests and benchmarks: BLAKE2b in counter mode over a seed.
///
/// Never use it for real keys: it exists only with the `test-support` feature, which only
/// dev-dependencies turn on.
#[cfg(any(test, doc, feature = "test-support"))]
#[derive(Debug, Clone)]
pub struct SeededRandom {
    seed: [u8; 32],
    counter: u64,
}

#[cfg(any(test, doc, feature = "test-support"))]
impl SeededRandom {
    /// A generator whose whole output is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&seed.to_le_bytes());
        Self {
            seed: s,
            counter: 0,
        }
    }
}

#[cfg(any(test, doc, feature = "test-support"))]
impl Random for SeededRandom {
    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(64) {
            let block = crate::hash::blake2b_64_keyed(&self.seed, &[&self.counter.to_le_bytes()]);
            self.counter = self.counter.wrapping_add(1);
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}
