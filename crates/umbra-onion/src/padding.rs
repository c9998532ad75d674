//! Umbra padding, scheme v1: the size classes that requests and replies are padded to.
//!
//! A relay sees the size of what it forwards. Without padding, a `retrieve` (a few hundred
//! bytes) and a `store` (the message itself, base64) differ by size, and so do short and long
//! texts. With padding, what every relay sees is one of a few sizes:
//!
//! | class | bytes | what typically lands there |
//! |---|---|---|
//! | 0 | 4 KiB | `retrieve`, `get_swarm`, `store` of a text message, most replies |
//! | 1 | 16 KiB | larger texts, replies with a few messages |
//! | 2 | 64 KiB | small attachments' pointers, replies with many messages |
//! | 3 | 256 KiB | a `store` of the largest message (76 800 data bytes) |
//! | 4 | 1 MiB | large `retrieve` replies |
//! | 5 | 4 MiB | |
//! | 6 | 10 MiB | the frame limit ([`MAX_FRAME_LEN`](crate::MAX_FRAME_LEN)) |
//!
//! Beyond the last class (only replies can be that big) sizes are rounded up to a multiple of
//! 4 MiB. Classes grow by 4× so that padding costs at most 4× the bandwidth of the smallest
//! fitting size, and the smallest class is large enough that the common small requests of a
//! chat client (a text `store` and a `retrieve`) are indistinguishable.
//!
//! What a class measures: for a request, the whole body the edge receives (so every relay sees
//! a size that depends only on the class, its position and the path shape); for a reply, the
//! body the destination (or exit) sends back, which relays pass on unchanged.

/// Version of the padding scheme (the size classes below), carried as `umbra.v`.
pub const PADDING_VERSION: u8 = 1;

/// The size classes of padding scheme v1, in bytes.
pub const SIZE_CLASSES: [usize; 7] = [
    4 * 1024,
    16 * 1024,
    64 * 1024,
    256 * 1024,
    1024 * 1024,
    4 * 1024 * 1024,
    10 * 1024 * 1024,
];

/// Step above the last class.
const STEP_ABOVE: usize = 4 * 1024 * 1024;

/// The padded size for `len` bytes: the smallest class that holds it, or above the largest
/// class the next multiple of 4 MiB.
pub fn padded_len(len: usize) -> usize {
    SIZE_CLASSES
        .iter()
        .copied()
        .find(|c| *c >= len)
        .unwrap_or_else(|| len.div_ceil(STEP_ABOVE).saturating_mul(STEP_ABOVE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(padded_len(0), 4096);
        assert_eq!(padded_len(4096), 4096);
        assert_eq!(padded_len(4097), 16384);
        assert_eq!(padded_len(10 * 1024 * 1024), 10 * 1024 * 1024);
        assert_eq!(padded_len(10 * 1024 * 1024 + 1), 12 * 1024 * 1024);
        assert!(
            SIZE_CLASSES.iter().all(|c| c % 4 == 0),
            "base64 needs multiples of 4"
        );
    }
}
