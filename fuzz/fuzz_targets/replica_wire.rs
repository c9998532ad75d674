//! The peer channel between storage nodes (`umbra-replica`, gRPC `umbra.peer.v2`): every
//! message as a node receives it, decoded from protobuf and converted to store values.
//!
//! The first input byte picks which message the rest is.
//!
//! Properties: never panics; whatever decodes re-encodes to bytes that decode to the same
//! message; conversions to store values refuse malformed ids, hashes, namespaces and data with
//! an error, and whatever converts converts back to the same wire value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use umbra_proto::umbra::peer::v2 as pb;
use umbra_replica::wire::{
    self, MAX_REQUEST_BYTES, bucket_from_wire, digest_from_wire, replica_from_wire,
    replica_to_wire, tombstone_from_wire, tombstone_to_wire, version_from_wire,
};

fn round_trip<T: Message + Default + PartialEq + std::fmt::Debug>(data: &[u8]) -> Option<T> {
    let m = T::decode(data).ok()?;
    let again = T::decode(m.encode_to_vec().as_slice()).expect("an encoded message decodes");
    assert_eq!(m, again);
    Some(m)
}

fn replicas(ms: &[pb::Replica]) {
    for m in ms {
        if let Ok(r) = replica_from_wire(m, 76_800) {
            assert_eq!(&replica_to_wire(&r), m);
        }
    }
}

fn tombstones(ts: &[pb::Tombstone]) {
    for t in ts {
        if let Ok(s) = tombstone_from_wire(t) {
            assert_eq!(&tombstone_to_wire(&s), t);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if rest.len() > MAX_REQUEST_BYTES {
        return;
    }
    match mode % 5 {
        0 => {
            if let Some(r) = round_trip::<pb::ForwardRequest>(rest) {
                let _ = serde_json::from_slice::<serde_json::Value>(&r.params_json);
            }
        }
        1 => {
            let Some(r) = round_trip::<pb::ReconcileRequest>(rest) else {
                return;
            };
            match r.ask {
                Some(pb::reconcile_request::Ask::Digests(d)) => {
                    let _ = d.after.as_ref().map(bucket_from_wire);
                }
                Some(pb::reconcile_request::Ask::Entries(e)) => {
                    for b in &e.buckets {
                        let _ = bucket_from_wire(b);
                    }
                }
                Some(pb::reconcile_request::Ask::Replicas(h)) => {
                    for h in &h.hashes {
                        if let Ok(m) = wire::hash_from_bytes(h) {
                            assert_eq!(&wire::hash_to_bytes(&m), h);
                        }
                    }
                }
                None => {}
            }
        }
        2 => {
            let Some(r) = round_trip::<pb::ReconcileResponse>(rest) else {
                return;
            };
            match r.answer {
                Some(pb::reconcile_response::Answer::Digests(p)) => {
                    for d in &p.buckets {
                        let _ = digest_from_wire(d);
                    }
                }
                Some(pb::reconcile_response::Answer::Entries(p)) => {
                    for b in &p.buckets {
                        let _ = b.bucket.as_ref().map(bucket_from_wire);
                        for v in &b.messages {
                            let _ = version_from_wire(v);
                        }
                        tombstones(&b.tombstones);
                    }
                }
                Some(pb::reconcile_response::Answer::Replicas(p)) => replicas(&p.messages),
                None => {}
            }
        }
        3 => {
            if let Some(r) = round_trip::<pb::HandoverRequest>(rest) {
                for d in &r.acknowledged {
                    let _ = digest_from_wire(d);
                }
            }
        }
        _ => {
            if let Some(b) = round_trip::<pb::HandoverBatch>(rest) {
                replicas(&b.messages);
                tombstones(&b.tombstones);
                let _ = b.done.as_ref().map(digest_from_wire);
            }
        }
    }
});
