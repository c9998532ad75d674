//! Seeded randomness for swarm formation.
//!
//! oxend draws its swarm choices from `std::mt19937_64` seeded from the block hash and turns
//! each draw into an index with a rejection rule (`shared/spec/swarms.md` §3.2). Both live here:
//! [`Mt19937_64`] (the 64-bit Mersenne Twister, written from its published definition) and
//! [`uniform_index`]. The formation code takes any [`SwarmRng`], so tests can script choices.

/// A source of 64-bit random words for swarm formation. Implementations must be
/// deterministic for a given seed: a registry's assignments have to be reproducible.
pub trait SwarmRng {
    /// The next 64-bit word.
    fn next_u64(&mut self) -> u64;
}

const NN: usize = 312;
const MM: usize = 156;
const MATRIX_A: u64 = 0xB502_6F5A_A966_19E9;
const UPPER_MASK: u64 = 0xFFFF_FFFF_8000_0000;
const LOWER_MASK: u64 = 0x0000_0000_7FFF_FFFF;

/// The 64-bit Mersenne Twister (`std::mt19937_64`), bit-compatible with the C++ standard
/// library's engine for the same `u64` seed.
#[derive(Clone)]
pub struct Mt19937_64 {
    state: [u64; NN],
    index: usize,
}

impl core::fmt::Debug for Mt19937_64 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Mt19937_64")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl Mt19937_64 {
    /// The default seed of `std::mt19937_64`.
    pub const DEFAULT_SEED: u64 = 5489;

    /// A generator seeded like `std::mt19937_64(seed)`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        let mut state = [0u64; NN];
        state[0] = seed;
        for i in 1..NN {
            let prev = state[i - 1];
            state[i] = 6_364_136_223_846_793_005u64
                .wrapping_mul(prev ^ (prev >> 62))
                .wrapping_add(i as u64);
        }
        Self { state, index: NN }
    }

    /// oxend's seeding: the first 8 bytes of a block hash read as a little-endian u64.
    #[must_use]
    pub fn from_block_hash(hash: &[u8; 32]) -> Self {
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash[..8]);
        Self::new(u64::from_le_bytes(first))
    }

    fn twist(&mut self) {
        for i in 0..NN {
            let x = (self.state[i] & UPPER_MASK) | (self.state[(i + 1) % NN] & LOWER_MASK);
            let mut x_a = x >> 1;
            if x & 1 != 0 {
                x_a ^= MATRIX_A;
            }
            self.state[i] = self.state[(i + MM) % NN] ^ x_a;
        }
        self.index = 0;
    }
}

impl SwarmRng for Mt19937_64 {
    fn next_u64(&mut self) -> u64 {
        if self.index >= NN {
            self.twist();
        }
        let mut x = self.state[self.index % NN];
        self.index += 1;
        x ^= (x >> 29) & 0x5555_5555_5555_5555;
        x ^= (x << 17) & 0x71D6_7FFF_EDA6_0000;
        x ^= (x << 37) & 0xFFF7_EEE0_0000_0000;
        x ^= x >> 43;
        x
    }
}

/// A uniformly distributed index in `[0, n)` drawn the way oxend does
/// (`uniform_distribution_portable`): draw `x`, reject while `x ≥ max − (max mod n)` with
/// `max = 2⁶⁴ − 1`, return `x / ((max − max mod n) / n)`. Returns 0 without drawing when
/// `n` is 0 (there is nothing to choose from; callers never ask for that).
pub fn uniform_index<R: SwarmRng + ?Sized>(rng: &mut R, n: usize) -> usize {
    let n = n as u64;
    if n == 0 {
        return 0;
    }
    let max = u64::MAX;
    let secure_max = max - max % n;
    let mut x = rng.next_u64();
    while x >= secure_max {
        x = rng.next_u64();
    }
    let idx = x / (secure_max / n);
    // idx < n always holds because x < secure_max; clamp defensively without panicking.
    usize::try_from(idx.min(n - 1)).unwrap_or(0)
}

/// A fast, simple mixing function (SplitMix64 finaliser) for deriving per-event seeds from a
/// base seed and a counter, e.g. `mix_seed(registry_seed, epoch)`.
#[must_use]
pub fn mix_seed(seed: u64, counter: u64) -> u64 {
    let mut z = seed ^ counter.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The C++ standard (\[rand.predef\]) fixes the 10000th output of a default-constructed
    /// `mt19937_64` to 9981545732273789042.
    #[test]
    fn mt19937_64_matches_the_standard() {
        let mut mt = Mt19937_64::new(Mt19937_64::DEFAULT_SEED);
        let mut last = 0;
        for _ in 0..10_000 {
            last = mt.next_u64();
        }
        assert_eq!(last, 9_981_545_732_273_789_042);
    }

    #[test]
    fn first_outputs_of_default_seed() {
        // Well-known first output of std::mt19937_64 with seed 5489.
        let mut mt = Mt19937_64::new(5489);
        assert_eq!(mt.next_u64(), 14_514_284_786_278_117_030);
    }

    struct Scripted(Vec<u64>);
    impl SwarmRng for Scripted {
        fn next_u64(&mut self) -> u64 {
            self.0.remove(0)
        }
    }

    #[test]
    fn uniform_index_rejects_the_biased_tail() {
        // n = 3: max mod 3 = 0 (2^64-1 is divisible by 3), secure_max = u64::MAX,
        // so u64::MAX itself is rejected and the next draw is used.
        let mut r = Scripted(vec![u64::MAX, 0]);
        assert_eq!(uniform_index(&mut r, 3), 0);
        let mut r = Scripted(vec![u64::MAX - 1]);
        assert_eq!(uniform_index(&mut r, 3), 2);
        let mut r = Scripted(vec![7]);
        assert_eq!(uniform_index(&mut r, 1), 0);
        assert_eq!(uniform_index(&mut Scripted(vec![]), 0), 0);
    }

    #[test]
    fn mix_seed_spreads() {
        assert_ne!(mix_seed(1, 1), mix_seed(1, 2));
        assert_ne!(mix_seed(1, 1), mix_seed(2, 1));
    }
}
