#![doc = include_str!("../README.md")]

mod bencode;
mod client;
mod error;
pub mod frame;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod node;
pub mod padding;
mod server;
mod umbra;
pub mod v4;

pub use client::{
    Destination, Hop, HopFailure, MAX_REPLY_LEN, OnionRequest, PendingReply, Reply, RequestBuilder,
    Server, StorageReply,
};
pub use error::{BuildError, OnionError, ReplyError};
pub use frame::MAX_FRAME_LEN;
pub use node::{
    DestinationRequest, ExitRequest, Forward, MAX_HOPS, PeelError, Peeled, Replier, ReplyBody,
    Response, peel, peel_bencoded,
};
pub use server::{ServerRequest, open_server_request};
pub use umbra::{
    HOP_MESSAGE_MAGIC, HopMessage, HopMessageKind, UMBRA_KEY, UMBRA_VERSION, UmbraOptions,
};
pub use umbra_crypto::hop::EncType;
pub use v4::{V4Error, V4Request, V4Response};

/// The scheme an exit uses to reach an external server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Plain HTTP (default port 80).
    Http,
    /// HTTPS (default port 443).
    Https,
}

impl Protocol {
    /// Parses `http` or `https`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "http" => Some(Self::Http),
            "https" => Some(Self::Https),
            _ => None,
        }
    }

    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    /// 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }
}
