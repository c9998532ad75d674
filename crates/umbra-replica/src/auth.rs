//! Signatures of peer messages (version 1) and the replay cache. Pure: no I/O, no clock.
//!
//! ## What is signed
//!
//! Every message of a peer call, in either direction, is a [`pb::Signed`] envelope: the
//! encoded inner message and an Ed25519 signature by its sender over (integers big-endian,
//! the path prefixed by its length as `u16`):
//!
//! ```text
//! "umbra-peer/grpc/v1\0" ‖ direction u8 (0 request, 1 answer) ‖ signer[32] ‖ recipient[32] ‖
//! len ‖ rpc path ‖ call[64] ‖ seq u64 ‖ timestamp_ms i64 ‖ BLAKE2b-256(payload)
//! ```
//!
//! `call` is zero in the message that opens a call and the opening's signature in every later
//! message of the call (both directions); `seq` numbers the messages of one direction from 0.
//! Naming the recipient stops a call from being replayed to another node; the opening's
//! timestamp and the [`ReplayCache`] stop it from being replayed to the same node; binding
//! every later message and every answer to the opening (and to its position) stops messages
//! from being moved between calls, reordered or repeated, and an answer from being forged by
//! anyone but the addressed node. A later version changes the domain string.

use std::collections::{HashSet, VecDeque};

use umbra_crypto::hash::blake2b_32;
use umbra_crypto::{Ed25519PublicKey, Identity, Signature};
use umbra_proto::umbra::peer::v1 as pb;

use crate::ReplicaError;

const DOMAIN: &[u8] = b"umbra-peer/grpc/v1\0";
/// The `call` value of an opening message.
const NO_CALL: [u8; 64] = [0; 64];

/// The peer calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rpc {
    /// A forwarded client write (unary).
    Forward,
    /// Anti-entropy (bidirectional stream).
    Reconcile,
    /// Handover of a range (server stream).
    Handover,
}

impl Rpc {
    /// Every call.
    pub const ALL: [Rpc; 3] = [Rpc::Forward, Rpc::Reconcile, Rpc::Handover];

    /// The gRPC method path (what signatures cover).
    pub fn path(self) -> &'static str {
        match self {
            Rpc::Forward => "/umbra.peer.v1.Peer/Forward",
            Rpc::Reconcile => "/umbra.peer.v1.Peer/Reconcile",
            Rpc::Handover => "/umbra.peer.v1.Peer/Handover",
        }
    }

    /// A short name for errors and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Rpc::Forward => "forward",
            Rpc::Reconcile => "reconcile",
            Rpc::Handover => "handover",
        }
    }
}

/// Which way a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the caller.
    Request,
    /// From the called node.
    Answer,
}

fn refused(reason: &'static str) -> ReplicaError {
    ReplicaError::PeerAuth { reason }
}

/// Where a message sits: its call, direction and position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position<'a> {
    /// The call.
    pub rpc: Rpc,
    /// Which way.
    pub direction: Direction,
    /// The opening's signature (`None` for the opening itself).
    pub call: Option<&'a Signature>,
    /// Index in this direction, from 0.
    pub seq: u64,
    /// The call's timestamp (the opening's).
    pub timestamp_ms: i64,
}

/// The bytes a message signature covers.
pub fn signing_bytes(
    signer: &Ed25519PublicKey,
    recipient: &Ed25519PublicKey,
    at: &Position<'_>,
    payload: &[u8],
) -> Vec<u8> {
    let path = at.rpc.path().as_bytes();
    let mut out = Vec::with_capacity(DOMAIN.len() + 1 + 64 + 2 + path.len() + 64 + 16 + 32);
    out.extend_from_slice(DOMAIN);
    out.push(match at.direction {
        Direction::Request => 0,
        Direction::Answer => 1,
    });
    out.extend_from_slice(signer.as_bytes());
    out.extend_from_slice(recipient.as_bytes());
    // Paths are short constants: the length always fits.
    let len = u16::try_from(path.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(path);
    out.extend_from_slice(at.call.map_or(&NO_CALL, |c| c.as_bytes()));
    out.extend_from_slice(&at.seq.to_be_bytes());
    out.extend_from_slice(&at.timestamp_ms.to_be_bytes());
    out.extend_from_slice(&blake2b_32(&[payload]));
    out
}

/// Signs `payload` from `identity` to `recipient` at position `at`.
pub fn seal(
    identity: &Identity,
    recipient: &Ed25519PublicKey,
    at: &Position<'_>,
    payload: Vec<u8>,
) -> pb::Signed {
    let signer = identity.ed25519_public();
    let signature = identity.sign(&signing_bytes(&signer, recipient, at, &payload));
    pb::Signed {
        payload,
        signer: signer.as_bytes().to_vec(),
        timestamp_ms: at.timestamp_ms,
        seq: at.seq,
        signature: signature.as_bytes().to_vec(),
    }
}

/// A verified message's sender and signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// Who signed it.
    pub signer: Ed25519PublicKey,
    /// Its timestamp (the call's).
    pub timestamp_ms: i64,
    /// Its signature (of an opening: the call's id).
    pub signature: Signature,
}

impl Opened {
    /// Where message `seq` going `direction` stands in the call this opening began.
    pub fn position(&self, rpc: Rpc, direction: Direction, seq: u64) -> Position<'_> {
        Position {
            rpc,
            direction,
            call: Some(&self.signature),
            seq,
            timestamp_ms: self.timestamp_ms,
        }
    }
}

/// The signer and signature of an envelope, parsed (not verified).
///
/// # Errors
/// [`ReplicaError::PeerAuth`] for a key or signature of the wrong length.
pub fn parse(signed: &pb::Signed) -> Result<Opened, ReplicaError> {
    let signer = Ed25519PublicKey::from_slice(&signed.signer)
        .map_err(|_| refused("malformed signer key"))?;
    let signature =
        Signature::from_slice(&signed.signature).map_err(|_| refused("malformed signature"))?;
    Ok(Opened {
        signer,
        timestamp_ms: signed.timestamp_ms,
        signature,
    })
}

/// Verifies an envelope received by `recipient`: signed by `expected_signer` if given (answers,
/// later messages of a call), at the expected position. Freshness and replay of openings are
/// checked by the caller ([`check_fresh`], [`ReplayCache`]).
///
/// # Errors
/// [`ReplicaError::PeerAuth`]: malformed, another signer, another position, bad signature.
pub fn open(
    signed: &pb::Signed,
    expected_signer: Option<&Ed25519PublicKey>,
    recipient: &Ed25519PublicKey,
    at: &Position<'_>,
) -> Result<Opened, ReplicaError> {
    let opened = parse(signed)?;
    if let Some(expected) = expected_signer
        && opened.signer != *expected
    {
        return Err(refused("signed by another node"));
    }
    if signed.seq != at.seq {
        return Err(refused("message out of sequence"));
    }
    if signed.timestamp_ms != at.timestamp_ms && at.call.is_some() {
        return Err(refused("message of another call"));
    }
    let at = Position {
        timestamp_ms: signed.timestamp_ms,
        ..*at
    };
    let bytes = signing_bytes(&opened.signer, recipient, &at, &signed.payload);
    umbra_crypto::sign::verify(&opened.signer, &bytes, &opened.signature)
        .map_err(|_| refused("bad signature"))?;
    Ok(opened)
}

/// Checks that an opening's timestamp is within `max_skew_ms` of `now_ms`.
///
/// # Errors
/// [`ReplicaError::PeerAuth`] (`stale timestamp`).
pub fn check_fresh(timestamp_ms: i64, now_ms: i64, max_skew_ms: i64) -> Result<(), ReplicaError> {
    if timestamp_ms.abs_diff(now_ms) > max_skew_ms.unsigned_abs() {
        return Err(refused("stale timestamp"));
    }
    Ok(())
}

/// Remembers the signatures of recently accepted call openings so that a captured call cannot
/// be opened again while its timestamp is still fresh. Bounded: when full of still-fresh
/// entries, new calls are refused (the node is being flooded).
#[derive(Debug)]
pub struct ReplayCache {
    max_skew_ms: i64,
    capacity: usize,
    seen: HashSet<Signature>,
    order: VecDeque<(i64, Signature)>,
}

impl ReplayCache {
    /// A cache for openings accepted within `max_skew_ms` of now, holding at most `capacity`.
    pub fn new(max_skew_ms: i64, capacity: usize) -> Self {
        ReplayCache {
            max_skew_ms,
            capacity: capacity.max(1),
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Records an opening (already verified, so its timestamp is fresh).
    ///
    /// # Errors
    /// [`ReplicaError::PeerAuth`] if the same signature was accepted before, or if the cache is
    /// full of fresh entries.
    pub fn check_and_insert(&mut self, opened: &Opened, now_ms: i64) -> Result<(), ReplicaError> {
        // Entries whose timestamp is older than the window can be forgotten: a replay of them
        // would be refused as stale anyway.
        let horizon = now_ms.saturating_sub(self.max_skew_ms.saturating_abs());
        while let Some((ts, sig)) = self.order.front() {
            if *ts >= horizon {
                break;
            }
            self.seen.remove(sig);
            self.order.pop_front();
        }
        if self.seen.contains(&opened.signature) {
            return Err(refused("replayed request"));
        }
        if self.order.len() >= self.capacity {
            return Err(refused("replay cache full"));
        }
        self.seen.insert(opened.signature);
        self.order
            .push_back((opened.timestamp_ms, opened.signature));
        Ok(())
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn ids() -> (Identity, Identity) {
        (Identity::from_seed(&[1; 32]), Identity::from_seed(&[2; 32]))
    }

    fn opening(rpc: Rpc, ts: i64) -> Position<'static> {
        Position {
            rpc,
            direction: Direction::Request,
            call: None,
            seq: 0,
            timestamp_ms: ts,
        }
    }

    #[test]
    fn opening_round_trip_and_tampering() {
        let (a, b) = ids();
        let (ak, bk) = (a.ed25519_public(), b.ed25519_public());
        let at = opening(Rpc::Forward, NOW);
        let s = seal(&a, &bk, &at, b"payload".to_vec());
        let o = open(&s, None, &bk, &at).unwrap();
        assert_eq!(o.signer, ak);
        check_fresh(o.timestamp_ms, NOW + 5_000, 30_000).unwrap();
        assert!(check_fresh(o.timestamp_ms, NOW + 30_001, 30_000).is_err());
        assert!(check_fresh(o.timestamp_ms, NOW - 30_001, 30_000).is_err());
        // Another payload, rpc, recipient, position or signer: refused.
        let mut other = s.clone();
        other.payload = b"payloae".to_vec();
        assert!(open(&other, None, &bk, &at).is_err());
        assert!(open(&s, None, &bk, &opening(Rpc::Reconcile, NOW)).is_err());
        assert!(open(&s, None, &ak, &at).is_err());
        let mut later = s.clone();
        later.seq = 1;
        assert!(open(&later, None, &bk, &at).is_err());
        let mut ts = s.clone();
        ts.timestamp_ms += 1;
        assert!(open(&ts, None, &bk, &at).is_err());
        assert!(open(&s, Some(&bk), &bk, &at).is_err());
        let mut forged = s.clone();
        forged.signer = bk.as_bytes().to_vec();
        assert!(open(&forged, None, &bk, &at).is_err());
        let mut short = s.clone();
        short.signature.pop();
        assert!(open(&short, None, &bk, &at).is_err());
    }

    #[test]
    fn later_messages_and_answers_are_bound_to_their_call() {
        let (a, b) = ids();
        let (ak, bk) = (a.ed25519_public(), b.ed25519_public());
        let at = opening(Rpc::Reconcile, NOW);
        let first = seal(&a, &bk, &at, b"1".to_vec());
        let call = open(&first, None, &bk, &at).unwrap().signature;
        let answer_at = Position {
            rpc: Rpc::Reconcile,
            direction: Direction::Answer,
            call: Some(&call),
            seq: 0,
            timestamp_ms: NOW,
        };
        let answer = seal(&b, &ak, &answer_at, b"a".to_vec());
        open(&answer, Some(&bk), &ak, &answer_at).unwrap();
        // Not the next answer, not a request, not from another call.
        assert!(
            open(
                &answer,
                Some(&bk),
                &ak,
                &Position {
                    seq: 1,
                    ..answer_at
                }
            )
            .is_err()
        );
        assert!(
            open(
                &answer,
                Some(&bk),
                &ak,
                &Position {
                    direction: Direction::Request,
                    ..answer_at
                }
            )
            .is_err()
        );
        let other_call = seal(&a, &bk, &opening(Rpc::Reconcile, NOW + 1), b"1".to_vec()).signature;
        let other_call = Signature::from_slice(&other_call).unwrap();
        assert!(
            open(
                &answer,
                Some(&bk),
                &ak,
                &Position {
                    call: Some(&other_call),
                    ..answer_at
                }
            )
            .is_err()
        );
        // An answer signed by anyone else than the addressed node.
        assert!(open(&answer, Some(&ak), &ak, &answer_at).is_err());
    }

    #[test]
    fn replay_cache_refuses_repeats_and_forgets_old_entries() {
        let (a, b) = ids();
        let bk = b.ed25519_public();
        let mut cache = ReplayCache::new(30_000, 2);
        let o = |ts: i64, p: &[u8]| {
            let at = opening(Rpc::Forward, ts);
            open(&seal(&a, &bk, &at, p.to_vec()), None, &bk, &at).unwrap()
        };
        let (r1, r2, r3) = (o(NOW, b"1"), o(NOW, b"2"), o(NOW + 40_000, b"3"));
        cache.check_and_insert(&r1, NOW).unwrap();
        assert!(cache.check_and_insert(&r1, NOW).is_err());
        cache.check_and_insert(&r2, NOW).unwrap();
        // Full of fresh entries: refused.
        assert!(cache.check_and_insert(&r3, NOW + 1).is_err());
        // Later the old ones leave the window and room is made.
        cache.check_and_insert(&r3, NOW + 40_000).unwrap();
        assert_eq!(cache.len(), 1);
    }
}
