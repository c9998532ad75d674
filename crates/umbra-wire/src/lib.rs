#![doc = include_str!("../README.md")]

pub mod attachment;
pub mod one_to_one;
pub mod protos;

pub use attachment::{Attachment, AttachmentKeyBytes, AttachmentPointerError, FileUrl};
pub use one_to_one::{
    DecodedMessage, MAX_STORED_MESSAGE, WireError, decode_group_envelope, decode_one_to_one,
    encode_group_envelope, encode_one_to_one, unwrap_envelope, wrap_envelope,
};
pub use protos::*;
