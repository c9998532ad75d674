//! Round trips and refusals of the one-to-one wrapping.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use prost::Message as _;
use umbra_crypto::{Identity, SeededRandom};
use umbra_wire::*;

fn text(body: &str) -> Content {
    Content {
        data_message: Some(DataMessage {
            body: Some(body.to_owned()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn alice_to_bob_round_trip() {
    let mut rng = SeededRandom::new(7);
    let alice = Identity::generate(&mut rng);
    let bob = Identity::generate(&mut rng);
    let stored = encode_one_to_one(
        &alice,
        &bob.session_id(),
        &text("hi Bob"),
        1_700_000_000_123,
        &mut rng,
    )
    .unwrap();
    let got = decode_one_to_one(&bob, &stored).unwrap();
    assert_eq!(got.sender, alice.session_id());
    assert_eq!(got.sent_ms, 1_700_000_000_123);
    assert_eq!(
        got.content.data_message.unwrap().body.as_deref(),
        Some("hi Bob")
    );
    assert_eq!(got.content.sig_timestamp, Some(1_700_000_000_123));
    // Carol cannot read it.
    let carol = Identity::generate(&mut rng);
    assert!(matches!(
        decode_one_to_one(&carol, &stored),
        Err(WireError::Crypto(_))
    ));
}

#[test]
fn layers_have_session_shape() {
    let mut rng = SeededRandom::new(8);
    let alice = Identity::generate(&mut rng);
    let bob = Identity::generate(&mut rng);
    let stored = encode_one_to_one(&alice, &bob.session_id(), &text("x"), 5, &mut rng).unwrap();
    let ws = WebSocketMessage::decode(stored.as_slice()).unwrap();
    assert_eq!(ws.r#type, Some(web_socket_message::Type::Request as i32));
    let req = ws.request.unwrap();
    assert_eq!(req.verb.as_deref(), Some(""));
    assert_eq!(req.path.as_deref(), Some(""));
    assert_eq!(req.id, Some(0));
    let env = Envelope::decode(req.body.unwrap().as_slice()).unwrap();
    assert_eq!(env.r#type, envelope::Type::SessionMessage as i32);
    assert_eq!(env.timestamp, 5);
    assert!(env.source.is_none());
    // Padded Content (multiple of 160) plus the 144 bytes protocol v1 adds.
    let sealed = env.content.unwrap();
    assert_eq!((sealed.len() - 144) % 160, 0);
}

#[test]
fn mismatched_timestamps_are_refused() {
    let mut rng = SeededRandom::new(9);
    let alice = Identity::generate(&mut rng);
    let bob = Identity::generate(&mut rng);
    let stored = encode_one_to_one(&alice, &bob.session_id(), &text("x"), 5, &mut rng).unwrap();
    let mut env = unwrap_envelope(&stored).unwrap();
    env.timestamp = 6;
    let tampered = wrap_envelope(&env);
    assert!(matches!(
        decode_one_to_one(&bob, &tampered),
        Err(WireError::TimestampMismatch {
            envelope: 6,
            content: 5
        })
    ));
}

#[test]
fn oversized_and_garbage_are_refused() {
    let mut rng = SeededRandom::new(10);
    let bob = Identity::generate(&mut rng);
    assert!(matches!(
        decode_one_to_one(&bob, &vec![0u8; MAX_STORED_MESSAGE + 1]),
        Err(WireError::TooLarge { .. })
    ));
    assert!(decode_one_to_one(&bob, b"\xff\xff\xff").is_err());
    assert!(matches!(
        decode_one_to_one(&bob, b""),
        Err(WireError::NotOneToOne(_))
    ));
    let alice = Identity::generate(&mut rng);
    let big = "a".repeat(MAX_STORED_MESSAGE);
    assert!(matches!(
        encode_one_to_one(&alice, &bob.session_id(), &text(&big), 1, &mut rng),
        Err(WireError::TooLarge { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let bob = Identity::from_seed(&[3u8; 32]);
        let _ = decode_one_to_one(&bob, &data);
    }

    #[test]
    fn any_text_round_trips(body in ".{0,300}", ts in 1u64..u64::MAX / 2) {
        let mut rng = SeededRandom::new(ts);
        let alice = Identity::from_seed(&[1u8; 32]);
        let bob = Identity::from_seed(&[2u8; 32]);
        let stored = encode_one_to_one(&alice, &bob.session_id(), &text(&body), ts, &mut rng).unwrap();
        let got = decode_one_to_one(&bob, &stored).unwrap();
        prop_assert_eq!(got.content.data_message.unwrap().body.unwrap(), body);
        prop_assert_eq!(got.sent_ms, ts);
    }
}

#[test]
fn group_envelopes_round_trip_and_refuse_one_to_one() {
    let content = Content {
        data_message: Some(DataMessage {
            body: Some("to the group".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let plain = umbra_wire::encode_group_envelope(&content, 1_700_000_000_123);
    let (back, sent) = umbra_wire::decode_group_envelope(&plain).unwrap();
    assert_eq!(sent, 1_700_000_000_123);
    assert_eq!(back.sig_timestamp, Some(1_700_000_000_123));
    assert_eq!(back.data_message, content.data_message);
    // Envelope type 7 = CLOSED_GROUP_MESSAGE is field 1: 08 07.
    assert_eq!(&plain[..2], &[0x08, 0x07]);
    let one_to_one = Envelope {
        r#type: envelope::Type::SessionMessage as i32,
        timestamp: 1,
        ..Default::default()
    };
    assert!(umbra_wire::decode_group_envelope(&one_to_one.encode_to_vec()).is_err());
}
