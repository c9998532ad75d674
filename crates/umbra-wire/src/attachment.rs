//! A received or sent file as the messenger handles it: the fields of an
//! [`AttachmentPointer`] (`messages.md` §3.9), checked once at the
//! edge so that nothing later trusts a length, a URL or a name from the network.
//!
//! ```text
//! AttachmentPointer { deprecated_id 1, contentType 2, key 3, size 4, digest 6, fileName 7,
//!                     flags 8, width 9, height 10, caption 11, url 101 }
//!        ▲ to_pointer                                   │ from_pointer (bounded)
//!        └──────────────── Attachment ◄─────────────────┘
//! url = http(s)://host[:port]/file/<id>[#p=<server ed25519 hex>&d]
//! ```

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::AttachmentPointer;

/// Longest `url` accepted, in bytes.
pub const MAX_URL_LEN: usize = 2_048;
/// Longest `fileName` accepted, in bytes (common file systems' limit).
pub const MAX_FILE_NAME_LEN: usize = 255;
/// Longest `contentType` accepted, in bytes.
pub const MAX_CONTENT_TYPE_LEN: usize = 255;
/// Longest `caption` accepted, in characters (a message body's limit).
pub const MAX_CAPTION_CHARS: usize = 2_000;
/// Longest file id in a URL: Session's 44-character hash ids and its decimal legacy ids.
pub const MAX_FILE_ID_LEN: usize = 64;
/// `flags` bit of a voice message (`AttachmentPointer.Flags.VOICE_MESSAGE`).
pub const FLAG_VOICE_MESSAGE: u32 = 1;

/// Why a pointer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttachmentPointerError {
    /// The pointer has no `url`: there is nothing to download.
    #[error("the attachment has no download URL")]
    NoUrl,
    /// The `url` is not `http(s)://host[:port]/file/<id>`.
    #[error("the attachment URL is not a file server URL: {0}")]
    BadUrl(&'static str),
    /// The `key` is neither 32 bytes (stream format) nor 64 (legacy format).
    #[error("the attachment key has {0} bytes (32 or 64 expected)")]
    BadKey(usize),
    /// The `digest` is not a 32-byte SHA-256.
    #[error("the attachment digest has {0} bytes (32 expected)")]
    BadDigest(usize),
    /// The pointer has no `size`.
    #[error("the attachment has no size")]
    NoSize,
    /// A text field is longer than its limit.
    #[error("the attachment's {field} is longer than {max} bytes")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// Its limit.
        max: usize,
    },
}

/// The decryption key a pointer carries: its length says the format
/// (`groups-config-attachments.md` §3.1–§3.2). Wiped on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub enum AttachmentKeyBytes {
    /// The deterministic stream format (URL fragment `d`).
    Stream([u8; 32]),
    /// The legacy AES-CBC + HMAC format: `aes_key ‖ mac_key`.
    Legacy([u8; 64]),
}

impl AttachmentKeyBytes {
    /// The key bytes as the pointer carries them.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Self::Stream(k) => k,
            Self::Legacy(k) => k,
        }
    }
}

impl PartialEq for AttachmentKeyBytes {
    /// Without an early exit on the first differing byte.
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.as_slice(), other.as_slice());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Eq for AttachmentKeyBytes {}

impl std::fmt::Debug for AttachmentKeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stream(_) => f.write_str("Stream(..)"),
            Self::Legacy(_) => f.write_str("Legacy(..)"),
        }
    }
}

/// The location of a file on a file server: `base/file/<file_id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUrl {
    /// `http(s)://host[:port]`, without a trailing slash.
    pub base: String,
    /// The file id (44-character hash id, or a decimal legacy id).
    pub file_id: String,
    /// The `p=` fragment: the server's Ed25519 key in hex when it is not the default one.
    pub server_pubkey: Option<String>,
    /// The `d` fragment: the blob is in the deterministic stream format.
    pub stream_format: bool,
}

impl FileUrl {
    /// Parses `http(s)://host[:port]/file/<id>[#fragment]`.
    ///
    /// # Errors
    /// [`AttachmentPointerError::BadUrl`] saying what is wrong.
    pub fn parse(url: &str) -> Result<Self, AttachmentPointerError> {
        let bad = AttachmentPointerError::BadUrl;
        if url.len() > MAX_URL_LEN {
            return Err(AttachmentPointerError::TooLong {
                field: "url",
                max: MAX_URL_LEN,
            });
        }
        if !url.is_ascii() || url.chars().any(|c| c.is_ascii_control() || c == ' ') {
            return Err(bad("not printable ASCII"));
        }
        let (main, fragment) = match url.split_once('#') {
            Some((m, f)) => (m, Some(f)),
            None => (url, None),
        };
        let rest = main
            .strip_prefix("http://")
            .or_else(|| main.strip_prefix("https://"))
            .ok_or(bad("not http or https"))?;
        let scheme_len = main.len() - rest.len();
        let (host, path) = rest.split_once('/').ok_or(bad("no path"))?;
        if host.is_empty() || host.contains(['@', '?']) {
            return Err(bad("no valid host"));
        }
        let file_id = path.strip_prefix("file/").ok_or(bad("not a /file/ URL"))?;
        if file_id.is_empty()
            || file_id.len() > MAX_FILE_ID_LEN
            || !file_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad("no valid file id"));
        }
        let mut server_pubkey = None;
        let mut stream_format = false;
        for part in fragment.into_iter().flat_map(|f| f.split('&')) {
            if part == "d" {
                stream_format = true;
            } else if let Some(hex) = part.strip_prefix("p=") {
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad("the p= fragment is not a 64-digit hex key"));
                }
                server_pubkey = Some(hex.to_ascii_lowercase());
            }
        }
        Ok(FileUrl {
            base: main[..scheme_len + host.len()].to_owned(),
            file_id: file_id.to_owned(),
            server_pubkey,
            stream_format,
        })
    }

    /// The URL as a pointer carries it.
    pub fn to_url(&self) -> String {
        let mut url = format!("{}/file/{}", self.base, self.file_id);
        let mut sep = '#';
        if let Some(p) = &self.server_pubkey {
            url.push(sep);
            url.push_str("p=");
            url.push_str(p);
            sep = '&';
        }
        if self.stream_format {
            url.push(sep);
            url.push('d');
        }
        url
    }
}

/// A file in a message, its fields checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Where the encrypted blob is.
    pub url: FileUrl,
    /// The decryption key.
    pub key: AttachmentKeyBytes,
    /// Plaintext size in bytes.
    pub size: u32,
    /// SHA-256 of the encrypted blob (required for the legacy format; Umbra sends it for the
    /// stream format too, so a download is checked end to end before decryption).
    pub digest: Option<[u8; 32]>,
    /// The file's name.
    pub file_name: Option<String>,
    /// Its MIME type.
    pub content_type: Option<String>,
    /// Image width in pixels, where known.
    pub width: Option<u32>,
    /// Image height in pixels, where known.
    pub height: Option<u32>,
    /// A caption.
    pub caption: Option<String>,
    /// A voice message.
    pub voice_message: bool,
}

impl Attachment {
    /// Checks a received pointer.
    ///
    /// # Errors
    /// [`AttachmentPointerError`] naming the first field that is missing or out of bounds.
    pub fn from_pointer(p: &AttachmentPointer) -> Result<Self, AttachmentPointerError> {
        let url = FileUrl::parse(p.url.as_deref().ok_or(AttachmentPointerError::NoUrl)?)?;
        let key_bytes = p.key.as_deref().unwrap_or_default();
        let key = if let Ok(k) = <[u8; 32]>::try_from(key_bytes) {
            AttachmentKeyBytes::Stream(k)
        } else if let Ok(k) = <[u8; 64]>::try_from(key_bytes) {
            AttachmentKeyBytes::Legacy(k)
        } else {
            return Err(AttachmentPointerError::BadKey(key_bytes.len()));
        };
        let digest = match p.digest.as_deref() {
            None | Some([]) => None,
            Some(d) => Some(
                <[u8; 32]>::try_from(d).map_err(|_| AttachmentPointerError::BadDigest(d.len()))?,
            ),
        };
        let size = p.size.ok_or(AttachmentPointerError::NoSize)?;
        let text = |v: &Option<String>, field: &'static str, max: usize| match v {
            Some(s) if s.len() > max => Err(AttachmentPointerError::TooLong { field, max }),
            Some(s) if s.is_empty() => Ok(None),
            other => Ok(other.clone()),
        };
        let caption = match &p.caption {
            Some(c) if c.chars().count() > MAX_CAPTION_CHARS => {
                return Err(AttachmentPointerError::TooLong {
                    field: "caption",
                    max: MAX_CAPTION_CHARS,
                });
            }
            Some(c) if c.is_empty() => None,
            other => other.clone(),
        };
        Ok(Attachment {
            url,
            key,
            size,
            digest,
            file_name: text(&p.file_name, "file name", MAX_FILE_NAME_LEN)?,
            content_type: text(&p.content_type, "content type", MAX_CONTENT_TYPE_LEN)?,
            width: p.width.filter(|w| *w > 0),
            height: p.height.filter(|h| *h > 0),
            caption,
            voice_message: p.flags.unwrap_or(0) & FLAG_VOICE_MESSAGE != 0,
        })
    }

    /// The pointer to put in a `DataMessage`.
    pub fn to_pointer(&self) -> AttachmentPointer {
        AttachmentPointer {
            deprecated_id: 0,
            content_type: self.content_type.clone(),
            key: Some(self.key.as_slice().to_vec()),
            size: Some(self.size),
            digest: self.digest.map(|d| d.to_vec()),
            file_name: self.file_name.clone(),
            flags: self.voice_message.then_some(FLAG_VOICE_MESSAGE),
            width: self.width,
            height: self.height,
            caption: self.caption.clone(),
            url: Some(self.url.to_url()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    fn sample() -> Attachment {
        Attachment {
            url: FileUrl::parse(&format!("http://127.0.0.1:8080/file/{}#d", "A".repeat(44)))
                .unwrap(),
            key: AttachmentKeyBytes::Stream([7; 32]),
            size: 1_000_000,
            digest: Some([9; 32]),
            file_name: Some("photo.jpg".into()),
            content_type: Some("image/jpeg".into()),
            width: Some(640),
            height: Some(480),
            caption: Some("look".into()),
            voice_message: false,
        }
    }

    /// The field numbers of `messages.md` §3.9, checked on the encoded bytes.
    #[test]
    fn field_numbers_are_the_specs() {
        let bytes = sample().to_pointer().encode_to_vec();
        let mut tags = Vec::new();
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let key = prost::encoding::decode_varint(&mut rest).unwrap();
            let (field, wire) = (key >> 3, key & 7);
            tags.push(field);
            match wire {
                0 => {
                    prost::encoding::decode_varint(&mut rest).unwrap();
                }
                1 => rest = &rest[8..],
                2 => {
                    let n = prost::encoding::decode_varint(&mut rest).unwrap() as usize;
                    rest = &rest[n..];
                }
                w => panic!("unexpected wire type {w}"),
            }
        }
        tags.sort_unstable();
        assert_eq!(tags, vec![1, 2, 3, 4, 6, 7, 9, 10, 11, 101]);
        // deprecated_id is fixed64 (wire type 1), size a varint, url field 101 a string.
        assert_eq!(bytes[0], (1 << 3) | 1);
    }

    #[test]
    fn a_pointer_round_trips() {
        let a = sample();
        let bytes = a.to_pointer().encode_to_vec();
        let back = Attachment::from_pointer(&AttachmentPointer::decode(&bytes[..]).unwrap());
        assert_eq!(back.unwrap(), a);
    }

    #[test]
    fn session_urls_parse() {
        let u = FileUrl::parse(&format!(
            "http://filev2.getsession.org/file/{}#p={}&d",
            "abc_-9".repeat(7),
            "B8".repeat(32)
        ))
        .unwrap();
        assert_eq!(u.base, "http://filev2.getsession.org");
        assert!(u.stream_format);
        assert_eq!(u.server_pubkey.as_deref(), Some("b8".repeat(32).as_str()));
        assert_eq!(
            FileUrl::parse(&u.to_url()).unwrap(),
            u,
            "to_url is parse's inverse"
        );
        let legacy = FileUrl::parse("https://filev2.getsession.org/file/1234567").unwrap();
        assert_eq!(legacy.file_id, "1234567");
        assert!(!legacy.stream_format);
    }

    #[test]
    fn bad_pointers_are_refused_with_what_is_wrong() {
        let mut p = sample().to_pointer();
        p.url = None;
        assert_eq!(
            Attachment::from_pointer(&p),
            Err(AttachmentPointerError::NoUrl)
        );
        for url in [
            "ftp://x/file/abc",
            "http:///file/abc",
            "http://x/files/abc",
            "http://x/file/",
            "http://x/file/a/b",
            "http://x/file/abc#p=zz",
            "http://x/file/é",
        ] {
            let mut p = sample().to_pointer();
            p.url = Some(url.into());
            assert!(
                matches!(
                    Attachment::from_pointer(&p),
                    Err(AttachmentPointerError::BadUrl(_))
                ),
                "{url}"
            );
        }
        let mut p = sample().to_pointer();
        p.url = Some(format!("http://x/file/{}", "a".repeat(MAX_URL_LEN)));
        assert!(matches!(
            Attachment::from_pointer(&p),
            Err(AttachmentPointerError::TooLong { field: "url", .. })
        ));
        let mut p = sample().to_pointer();
        p.key = Some(vec![1; 33]);
        assert_eq!(
            Attachment::from_pointer(&p),
            Err(AttachmentPointerError::BadKey(33))
        );
        p.key = Some(vec![1; 64]);
        assert!(matches!(
            Attachment::from_pointer(&p).unwrap().key,
            AttachmentKeyBytes::Legacy(_)
        ));
        let mut p = sample().to_pointer();
        p.digest = Some(vec![1; 31]);
        assert_eq!(
            Attachment::from_pointer(&p),
            Err(AttachmentPointerError::BadDigest(31))
        );
        let mut p = sample().to_pointer();
        p.size = None;
        assert_eq!(
            Attachment::from_pointer(&p),
            Err(AttachmentPointerError::NoSize)
        );
        let mut p = sample().to_pointer();
        p.file_name = Some("x".repeat(MAX_FILE_NAME_LEN + 1));
        assert!(matches!(
            Attachment::from_pointer(&p),
            Err(AttachmentPointerError::TooLong {
                field: "file name",
                ..
            })
        ));
    }

    proptest::proptest! {
        /// Any pointer bytes either decode to a checked attachment or are refused; never a
        /// panic.
        #[test]
        fn arbitrary_pointers_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            if let Ok(p) = AttachmentPointer::decode(&bytes[..]) {
                let _ = Attachment::from_pointer(&p);
            }
        }

        #[test]
        fn arbitrary_urls_never_panic(url in "\\PC{0,80}") {
            let _ = FileUrl::parse(&url);
        }
    }
}
