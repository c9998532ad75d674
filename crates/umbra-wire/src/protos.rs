//! Session's protobuf messages (`SessionProtos`, proto2), as field tables in
//! `shared/spec/messages.md` §2–§3. Field names are Rust's snake case of Session's names.

#![allow(missing_docs)] // Field meanings are documented in the spec tables named on each type.

/// `WebSocketMessage` (§2.2): the outer wrapper of a stored one-to-one message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WebSocketMessage {
    #[prost(enumeration = "web_socket_message::Type", optional, tag = "1")]
    pub r#type: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub request: Option<WebSocketRequestMessage>,
}

/// Nested types of [`WebSocketMessage`].
pub mod web_socket_message {
    /// The wrapper's kind; always `Request` for stored messages.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum Type {
        Unknown = 0,
        Request = 1,
        Response = 2,
    }
}

/// `WebSocketRequestMessage` (§2.3): carries the serialized [`Envelope`] in `body`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WebSocketRequestMessage {
    #[prost(string, optional, tag = "1")]
    pub verb: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub path: Option<String>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub body: Option<Vec<u8>>,
    #[prost(uint64, optional, tag = "4")]
    pub id: Option<u64>,
    #[prost(string, repeated, tag = "5")]
    pub headers: Vec<String>,
}

/// `Envelope` (§2.1).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Envelope {
    #[prost(enumeration = "envelope::Type", required, tag = "1")]
    pub r#type: i32,
    #[prost(string, optional, tag = "2")]
    pub source: Option<String>,
    #[prost(uint64, required, tag = "5")]
    pub timestamp: u64,
    #[prost(uint32, optional, tag = "7")]
    pub source_device: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "8")]
    pub content: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "11")]
    pub pro_sig: Option<Vec<u8>>,
}

/// Nested types of [`Envelope`].
pub mod envelope {
    /// The envelope's kind.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum Type {
        SessionMessage = 6,
        ClosedGroupMessage = 7,
    }
}

/// `Content` (§3.1): normally exactly one of fields 1–10 is set.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Content {
    #[prost(message, optional, tag = "1")]
    pub data_message: Option<DataMessage>,
    #[prost(message, optional, tag = "5")]
    pub receipt_message: Option<ReceiptMessage>,
    #[prost(message, optional, tag = "6")]
    pub typing_message: Option<TypingMessage>,
    #[prost(message, optional, tag = "8")]
    pub data_extraction_notification: Option<DataExtractionNotification>,
    #[prost(message, optional, tag = "9")]
    pub unsend_request: Option<UnsendRequest>,
    #[prost(message, optional, tag = "10")]
    pub message_request_response: Option<MessageRequestResponse>,
    #[prost(enumeration = "content::ExpirationType", optional, tag = "12")]
    pub expiration_type: Option<i32>,
    /// Disappearing timer in seconds (0 = off).
    #[prost(uint32, optional, tag = "13")]
    pub expiration_timer: Option<u32>,
    /// The sender's timestamp in ms; must equal `Envelope.timestamp`.
    #[prost(uint64, optional, tag = "15")]
    pub sig_timestamp: Option<u64>,
}

/// Nested types of [`Content`].
pub mod content {
    /// Disappearing-message mode.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum ExpirationType {
        Unknown = 0,
        DeleteAfterRead = 1,
        DeleteAfterSend = 2,
    }
}

/// `DataMessage` (§3.2): a visible message, reaction, profile update or timer change.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DataMessage {
    #[prost(string, optional, tag = "1")]
    pub body: Option<String>,
    #[prost(message, repeated, tag = "2")]
    pub attachments: Vec<AttachmentPointer>,
    /// Bit [`data_message::FLAG_EXPIRATION_TIMER_UPDATE`]: this message changes the timer.
    #[prost(uint32, optional, tag = "4")]
    pub flags: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "6")]
    pub profile_key: Option<Vec<u8>>,
    #[prost(message, optional, tag = "8")]
    pub quote: Option<data_message::Quote>,
    #[prost(message, repeated, tag = "10")]
    pub preview: Vec<data_message::Preview>,
    #[prost(message, optional, tag = "11")]
    pub reaction: Option<data_message::Reaction>,
    #[prost(message, optional, tag = "101")]
    pub profile: Option<LokiProfile>,
    /// On sync copies: the original recipient's Session ID.
    #[prost(string, optional, tag = "105")]
    pub sync_target: Option<String>,
    #[prost(bool, optional, tag = "106")]
    pub blocks_community_message_requests: Option<bool>,
}

/// Nested types of [`DataMessage`].
pub mod data_message {
    /// `DataMessage.flags` bit: the message changes the disappearing-messages setting.
    pub const FLAG_EXPIRATION_TIMER_UPDATE: u32 = 2;

    /// `Quote` (§3.3).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Quote {
        #[prost(uint64, required, tag = "1")]
        pub id: u64,
        #[prost(string, required, tag = "2")]
        pub author: String,
    }

    /// `Preview` (§3.4).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Preview {
        #[prost(string, required, tag = "1")]
        pub url: String,
        #[prost(string, optional, tag = "2")]
        pub title: Option<String>,
        #[prost(message, optional, tag = "3")]
        pub image: Option<super::AttachmentPointer>,
    }

    /// `Reaction` (§3.5).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Reaction {
        #[prost(uint64, required, tag = "1")]
        pub id: u64,
        #[prost(string, required, tag = "2")]
        pub author: String,
        #[prost(string, optional, tag = "3")]
        pub emoji: Option<String>,
        #[prost(enumeration = "reaction::Action", required, tag = "4")]
        pub action: i32,
    }

    /// Nested types of [`Reaction`].
    pub mod reaction {
        /// Add or remove a reaction.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
        #[repr(i32)]
        pub enum Action {
            React = 0,
            Remove = 1,
        }
    }
}

/// `LokiProfile` (§3.7).
#[derive(Clone, PartialEq, prost::Message)]
pub struct LokiProfile {
    #[prost(string, optional, tag = "1")]
    pub display_name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub profile_picture: Option<String>,
    /// Seconds; the newest profile wins.
    #[prost(uint64, optional, tag = "3")]
    pub last_profile_update_seconds: Option<u64>,
}

/// `ReceiptMessage` (§3.8).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReceiptMessage {
    #[prost(enumeration = "receipt_message::Type", required, tag = "1")]
    pub r#type: i32,
    /// Sent timestamps (ms) of the messages read.
    #[prost(uint64, repeated, packed = "false", tag = "2")]
    pub timestamp: Vec<u64>,
}

/// Nested types of [`ReceiptMessage`].
pub mod receipt_message {
    /// Receipt kind.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum Type {
        Delivery = 0,
        Read = 1,
    }
}

/// `TypingMessage` (§3.8).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypingMessage {
    #[prost(uint64, required, tag = "1")]
    pub timestamp: u64,
    #[prost(enumeration = "typing_message::Action", required, tag = "2")]
    pub action: i32,
}

/// Nested types of [`TypingMessage`].
pub mod typing_message {
    /// Typing started or stopped.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum Action {
        Started = 0,
        Stopped = 1,
    }
}

/// `UnsendRequest` (§3.8): delete for everyone.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UnsendRequest {
    #[prost(uint64, required, tag = "1")]
    pub timestamp: u64,
    #[prost(string, required, tag = "2")]
    pub author: String,
}

/// `MessageRequestResponse` (§3.8): accept a message request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MessageRequestResponse {
    #[prost(bool, required, tag = "1")]
    pub is_approved: bool,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub profile_key: Option<Vec<u8>>,
    #[prost(message, optional, tag = "3")]
    pub profile: Option<LokiProfile>,
}

/// `DataExtractionNotification` (§3.8).
#[derive(Clone, PartialEq, prost::Message)]
pub struct DataExtractionNotification {
    #[prost(
        enumeration = "data_extraction_notification::Type",
        required,
        tag = "1"
    )]
    pub r#type: i32,
    #[prost(uint64, optional, tag = "2")]
    pub timestamp: Option<u64>,
}

/// Nested types of [`DataExtractionNotification`].
pub mod data_extraction_notification {
    /// What was extracted.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum Type {
        Screenshot = 1,
        MediaSaved = 2,
    }
}

/// `AttachmentPointer` (§3.9).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttachmentPointer {
    #[prost(fixed64, required, tag = "1")]
    pub deprecated_id: u64,
    #[prost(string, optional, tag = "2")]
    pub content_type: Option<String>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub key: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "4")]
    pub size: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "6")]
    pub digest: Option<Vec<u8>>,
    #[prost(string, optional, tag = "7")]
    pub file_name: Option<String>,
    #[prost(uint32, optional, tag = "8")]
    pub flags: Option<u32>,
    #[prost(uint32, optional, tag = "9")]
    pub width: Option<u32>,
    #[prost(uint32, optional, tag = "10")]
    pub height: Option<u32>,
    #[prost(string, optional, tag = "11")]
    pub caption: Option<String>,
    #[prost(string, optional, tag = "101")]
    pub url: Option<String>,
}
