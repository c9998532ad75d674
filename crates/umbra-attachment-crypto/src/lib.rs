#![doc = include_str!("../README.md")]

pub mod chunked;
mod error;
pub mod file_id;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod legacy;
mod secretstream;
mod stream;

pub use error::AttachmentError;
pub use file_id::{FileIdHasher, file_id};
pub use stream::{
    AttachmentKey, Decryptor, Domain, EncryptedAttachment, Encryptor, FORMAT_BYTE, KeyDeriver,
    MAX_LARGE_SIZE, MAX_REGULAR_SIZE, PREFIX_LEN, STREAM_CHUNK, STREAM_CHUNK_ENCRYPTED, SizeLimit,
    StreamSecrets, decrypt, decrypt_to_vec, derive_secrets, encrypt, encrypt_to_vec,
    encrypted_size, padding_len,
};
