//! The attachment server's request parsers (`umbra_attachments::fuzzing::parse_request`): the
//! chunked-upload manifest (whole input), and the `Range` and `X-FS-TTL` headers, chunk indexes
//! and file ids (bytes 8.. of the input, with bytes 0..8 as the file size or TTL bound).
//!
//! Properties: never panics; a parsed manifest re-serialises to JSON that parses to the same
//! manifest and has `ceil(size / chunk_size)` chunks; a range lies inside the file; a TTL is
//! within its bound; an index is below its count; a parsed id is its own text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    umbra_attachments::fuzzing::parse_request(data);
});
