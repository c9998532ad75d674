//! Entry point for `fuzz/fuzz_targets/attachment_decrypt.rs` (feature `fuzzing`): builds
//! stream-format blobs from raw secretstream messages, which no public encoder can make (any
//! padding, any tags, empty or full chunks), so the fuzzer reaches the decryptor's checks
//! behind the MACs.

use crate::secretstream::{HEADER_LEN, State};
use crate::stream::{AttachmentKey, FORMAT_BYTE};

/// `'S' ‖ header ‖ push(m_1, t_1) ‖ … ‖ push(m_k, t_k)` under `key`.
pub fn seal_messages(
    key: &AttachmentKey,
    header: &[u8; HEADER_LEN],
    messages: &[(&[u8], u8)],
) -> Vec<u8> {
    let mut blob = vec![FORMAT_BYTE];
    blob.extend_from_slice(header);
    let mut state = State::new(key.as_bytes(), header);
    for (m, tag) in messages {
        state.push(m, *tag, &mut blob);
    }
    blob
}
