//! Byte-exact encodings of every Session message umbra-wire models, with every field set.
//!
//! The expected bytes were produced by the hand-written prost structs that preceded the
//! generated ones (`proto/session/SessionProtos.proto`); they pin field numbers, wire types
//! and the unpacked encoding of proto2 repeated scalars.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use prost::Message as _;
use umbra_wire::*;

fn attachment() -> AttachmentPointer {
    AttachmentPointer {
        deprecated_id: 0x0102_0304_0506_0708,
        content_type: Some("image/png".into()),
        key: Some(vec![0xaa; 4]),
        size: Some(1234),
        digest: Some(vec![0xbb; 4]),
        file_name: Some("a.png".into()),
        flags: Some(1),
        width: Some(640),
        height: Some(480),
        caption: Some("cap".into()),
        url: Some("http://f/file/1".into()),
    }
}

fn profile() -> LokiProfile {
    LokiProfile {
        display_name: Some("Alice".into()),
        profile_picture: Some("http://f/file/2".into()),
        last_profile_update_seconds: Some(1_700_000_000),
    }
}

fn full_content() -> Content {
    Content {
        data_message: Some(DataMessage {
            body: Some("hi".into()),
            attachments: vec![attachment()],
            flags: Some(data_message::FLAG_EXPIRATION_TIMER_UPDATE),
            profile_key: Some(vec![0xcc; 4]),
            quote: Some(data_message::Quote {
                id: 77,
                author: "05ab".into(),
            }),
            preview: vec![data_message::Preview {
                url: "https://x".into(),
                title: Some("X".into()),
                image: Some(attachment()),
            }],
            reaction: Some(data_message::Reaction {
                id: 78,
                author: "05cd".into(),
                emoji: Some("👍".into()),
                action: data_message::reaction::Action::Remove as i32,
            }),
            profile: Some(profile()),
            sync_target: Some("05ef".into()),
            blocks_community_message_requests: Some(true),
            group_update_message: None,
        }),
        receipt_message: Some(ReceiptMessage {
            r#type: receipt_message::Type::Read as i32,
            timestamp: vec![1, 300],
        }),
        typing_message: Some(TypingMessage {
            timestamp: 9,
            action: typing_message::Action::Stopped as i32,
        }),
        data_extraction_notification: Some(DataExtractionNotification {
            r#type: data_extraction_notification::Type::MediaSaved as i32,
            timestamp: Some(10),
        }),
        unsend_request: Some(UnsendRequest {
            timestamp: 11,
            author: "05aa".into(),
        }),
        message_request_response: Some(MessageRequestResponse {
            is_approved: true,
            profile_key: Some(vec![0xdd; 2]),
            profile: Some(profile()),
        }),
        expiration_type: Some(content::ExpirationType::DeleteAfterSend as i32),
        expiration_timer: Some(86_400),
        sig_timestamp: Some(1_700_000_000_123),
    }
}

const CONTENT_HEX: &str = concat!(
    "0af9010a02686912490908070605040302011209696d6167652f706e671a04aaaaaaaa20d2093204",
    "bbbbbbbb3a05612e706e67400148800550e0035a03636170aa060f687474703a2f2f662f66696c65",
    "2f3120023204cccccccc4208084d12043035616252590a0968747470733a2f2f781201581a490908",
    "070605040302011209696d6167652f706e671a04aaaaaaaa20d2093204bbbbbbbb3a05612e706e67",
    "400148800550e0035a03636170aa060f687474703a2f2f662f66696c652f315a10084e1204303563",
    "641a04f09f918d2001aa061e0a05416c696365120f687474703a2f2f662f66696c652f321880e2cf",
    "aa06ca060430356566d006012a070801100110ac0232040809100142040802100a4a08080b120430",
    "356161522608011202dddd1a1e0a05416c696365120f687474703a2f2f662f66696c652f321880e2",
    "cfaa0660026880a30578fbd095ffbc31",
);

const STORED_HEX: &str = concat!(
    "080112600a0012001a58080612043035666628fbd095ffbc31380142031111115a40222222222222",
    "22222222222222222222222222222222222222222222222222222222222222222222222222222222",
    "2222222222222222222222222222222222222000",
);

#[test]
fn content_bytes_are_exact() {
    let bytes = full_content().encode_to_vec();
    assert_eq!(hex::encode(&bytes), CONTENT_HEX);
    assert_eq!(Content::decode(bytes.as_slice()).unwrap(), full_content());
}

#[test]
fn wrapped_envelope_bytes_are_exact() {
    let env = Envelope {
        r#type: envelope::Type::SessionMessage as i32,
        source: Some("05ff".into()),
        timestamp: 1_700_000_000_123,
        source_device: Some(1),
        content: Some(vec![0x11; 3]),
        pro_sig: Some(vec![0x22; 64]),
    };
    let stored = wrap_envelope(&env);
    assert_eq!(hex::encode(&stored), STORED_HEX);
    assert_eq!(unwrap_envelope(&stored).unwrap(), env);
}

#[test]
fn group_invite_is_field_120_of_the_data_message() {
    let dm = DataMessage {
        group_update_message: Some(GroupUpdateMessage {
            invite_message: Some(GroupUpdateInviteMessage {
                group_session_id: "03ab".into(),
                name: "n".into(),
                member_auth_data: vec![7],
                admin_signature: vec![9],
            }),
            ..GroupUpdateMessage::default()
        }),
        ..DataMessage::default()
    };
    let bytes = dm.encode_to_vec();
    // Tag 120, length-delimited: (120 << 3) | 2 = 962 = varint c2 07; then the invite as
    // field 1 of GroupUpdateMessage, its fields 1 to 4 in order (messages.md §4).
    let invite: &[u8] = &[
        0x0a, 0x04, b'0', b'3', b'a', b'b', 0x12, 0x01, b'n', 0x1a, 0x01, 7, 0x22, 0x01, 9,
    ];
    let mut expected = vec![0xc2, 0x07, 2 + invite.len() as u8, 0x0a, invite.len() as u8];
    expected.extend_from_slice(invite);
    assert_eq!(bytes, expected);
    assert_eq!(DataMessage::decode(bytes.as_slice()).unwrap(), dm);
}
