//! The peer/replication channel between storage nodes (`umbra-replica`): the JSON bodies of
//! every peer endpoint, their conversion to store values, and the signed `Authorization`-style
//! headers of requests and answers.
//!
//! The first input byte picks what the rest is: one of the request/answer bodies, or a request
//! or answer authentication header.
//!
//! Properties: never panics; whatever parses serializes to JSON that parses to the same value;
//! conversions to store values refuse malformed ids and data with an error; a parsed header
//! written back parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use umbra_replica::auth::{ReplayCache, RequestAuth, ResponseAuth};
use umbra_replica::wire::{
    DigestsRequest, DigestsResponse, EntriesRequest, EntriesResponse, ForwardRequest,
    ForwardResponse, HandoverRequest, HandoverResponse, ReplicasRequest, ReplicasResponse,
};

fn round_trip<T>(data: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let v: T = serde_json::from_slice(data).ok()?;
    let text = serde_json::to_vec(&v).expect("a parsed body serializes");
    let again: T = serde_json::from_slice(&text).expect("a serialized body parses");
    // `Value` fields may hold floats, which need not round-trip exactly: compare once more
    // after one normalisation.
    let again2: T =
        serde_json::from_slice(&serde_json::to_vec(&again).expect("serializes")).expect("parses");
    assert_eq!(again, again2);
    Some(v)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 12 {
        0 => {
            let _ = round_trip::<ForwardRequest>(rest);
        }
        1 => {
            let _ = round_trip::<ForwardResponse>(rest);
        }
        2 => {
            if let Some(r) = round_trip::<DigestsRequest>(rest) {
                let _ = r.after.map(|a| a.parse());
            }
        }
        3 => {
            let _ = round_trip::<DigestsResponse>(rest);
        }
        4 => {
            if let Some(r) = round_trip::<EntriesRequest>(rest) {
                for b in &r.buckets {
                    let _ = b.parse();
                }
            }
        }
        5 => {
            if let Some(r) = round_trip::<EntriesResponse>(rest) {
                for b in &r.buckets {
                    let _ = b.bucket.parse();
                    let _ = b.versions();
                    for t in &b.tombstones {
                        let _ = t.to_store();
                    }
                }
            }
        }
        6 => {
            let _ = round_trip::<ReplicasRequest>(rest);
        }
        7 => {
            if let Some(r) = round_trip::<ReplicasResponse>(rest) {
                for m in &r.messages {
                    let _ = m.to_store(76_800);
                }
            }
        }
        8 => {
            if let Some(r) = round_trip::<HandoverRequest>(rest) {
                for m in &r.messages {
                    let _ = m.to_store(usize::MAX);
                }
                for t in &r.tombstones {
                    let _ = t.to_store();
                }
            }
        }
        9 => {
            let _ = round_trip::<HandoverResponse>(rest);
        }
        10 => {
            let Ok(s) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(a) = RequestAuth::parse_header(s) {
                assert_eq!(
                    RequestAuth::parse_header(&a.to_header()).ok(),
                    Some(a.clone())
                );
                let _ = a.verify(
                    &umbra_crypto::Ed25519PublicKey::from_bytes([3; 32]),
                    "POST",
                    "/umbra/peer/v1/forward",
                    b"{}",
                    0,
                    i64::MIN,
                );
                let mut cache = ReplayCache::new(i64::MIN, 2);
                let _ = cache.check_and_insert(&a, i64::MIN);
                let _ = cache.check_and_insert(&a, i64::MAX);
            }
        }
        _ => {
            let Ok(s) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(a) = ResponseAuth::parse_header(s) {
                assert_eq!(ResponseAuth::parse_header(&a.to_header()).ok(), Some(a));
            }
        }
    }
});
