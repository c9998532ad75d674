//! Peer request and answer signatures (version 1), and the replay cache. Pure: no I/O, no clock.
//!
//! ## What is signed
//!
//! Integers big-endian; strings prefixed by their length as `u16`.
//!
//! ```text
//! request:  "umbra-peer/request/v1\0" ‖ sender_ed25519[32] ‖ recipient_ed25519[32] ‖
//!           timestamp_ms i64 ‖ len ‖ http_method ‖ len ‖ path ‖ BLAKE2b-256(body)
//! answer:   "umbra-peer/response/v1\0" ‖ responder_ed25519[32] ‖ requester_ed25519[32] ‖
//!           request_signature[64] ‖ status u16 ‖ BLAKE2b-256(body)
//! ```
//!
//! The request header is `x-umbra-peer-auth: v1 <sender hex64> <timestamp_ms> <signature
//! hex128>`, the answer header `x-umbra-peer-auth: v1 <responder hex64> <signature hex128>`.
//! Naming the recipient stops a request from being replayed to another node; binding the answer
//! to the request signature stops an old answer from being replayed; a later version changes
//! the domain strings and the `v1` tag together.

use std::collections::{HashSet, VecDeque};

use umbra_crypto::hash::blake2b_32;
use umbra_crypto::{Ed25519PublicKey, Identity, Signature};

use crate::ReplicaError;

/// The header carrying peer authentication (requests and answers).
pub const AUTH_HEADER: &str = "x-umbra-peer-auth";
/// The version tag this code writes and accepts.
pub const AUTH_VERSION: &str = "v1";
/// The longest authentication header accepted (bounded parsing).
pub const MAX_AUTH_HEADER_LEN: usize = 256;

const REQUEST_DOMAIN: &[u8] = b"umbra-peer/request/v1\0";
const RESPONSE_DOMAIN: &[u8] = b"umbra-peer/response/v1\0";

fn refused(reason: &'static str) -> ReplicaError {
    ReplicaError::PeerAuth { reason }
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..usize::from(len).min(s.len())]);
}

/// The bytes a peer request signature covers.
pub fn request_signing_bytes(
    sender: &Ed25519PublicKey,
    recipient: &Ed25519PublicKey,
    timestamp_ms: i64,
    method: &str,
    path: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(REQUEST_DOMAIN.len() + 64 + 8 + 4 + method.len() + path.len() + 32);
    out.extend_from_slice(REQUEST_DOMAIN);
    out.extend_from_slice(sender.as_bytes());
    out.extend_from_slice(recipient.as_bytes());
    out.extend_from_slice(&timestamp_ms.to_be_bytes());
    push_str(&mut out, method);
    push_str(&mut out, path);
    out.extend_from_slice(&blake2b_32(&[body]));
    out
}

/// The bytes a peer answer signature covers.
pub fn response_signing_bytes(
    responder: &Ed25519PublicKey,
    requester: &Ed25519PublicKey,
    request_signature: &Signature,
    status: u16,
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(RESPONSE_DOMAIN.len() + 64 + 64 + 2 + 32);
    out.extend_from_slice(RESPONSE_DOMAIN);
    out.extend_from_slice(responder.as_bytes());
    out.extend_from_slice(requester.as_bytes());
    out.extend_from_slice(request_signature.as_bytes());
    out.extend_from_slice(&status.to_be_bytes());
    out.extend_from_slice(&blake2b_32(&[body]));
    out
}

fn hex_array<T: std::str::FromStr>(s: &str, what: &'static str) -> Result<T, ReplicaError> {
    s.parse().map_err(|_| refused(what))
}

/// The authentication of one peer request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestAuth {
    /// The sender's Ed25519 key.
    pub sender: Ed25519PublicKey,
    /// When the sender made the request (Unix ms).
    pub timestamp_ms: i64,
    /// Ed25519 signature over [`request_signing_bytes`].
    pub signature: Signature,
}

impl RequestAuth {
    /// Signs a request from `identity` to the node `recipient`.
    pub fn sign(
        identity: &Identity,
        recipient: &Ed25519PublicKey,
        timestamp_ms: i64,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Self {
        let sender = identity.ed25519_public();
        let bytes = request_signing_bytes(&sender, recipient, timestamp_ms, method, path, body);
        RequestAuth {
            sender,
            timestamp_ms,
            signature: identity.sign(&bytes),
        }
    }

    /// The header value.
    pub fn to_header(&self) -> String {
        format!(
            "{AUTH_VERSION} {} {} {}",
            hex::encode(self.sender),
            self.timestamp_ms,
            hex::encode(self.signature)
        )
    }

    /// Parses a header value (bounded; never panics).
    ///
    /// # Errors
    /// [`ReplicaError::PeerAuth`] naming what was malformed.
    pub fn parse_header(value: &str) -> Result<Self, ReplicaError> {
        if value.len() > MAX_AUTH_HEADER_LEN {
            return Err(refused("authentication header too long"));
        }
        let mut parts = value.split(' ');
        let (Some(version), Some(key), Some(ts), Some(sig), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(refused("malformed authentication header"));
        };
        if version != AUTH_VERSION {
            return Err(refused("unsupported authentication version"));
        }
        let timestamp_ms: i64 = ts
            .parse()
            .map_err(|_| refused("malformed authentication timestamp"))?;
        Ok(RequestAuth {
            sender: hex_array(key, "malformed sender key")?,
            timestamp_ms,
            signature: hex_array(sig, "malformed request signature")?,
        })
    }

    /// Checks the timestamp window and the signature for a request received by `recipient`.
    ///
    /// # Errors
    /// [`ReplicaError::PeerAuth`]: stale timestamp or bad signature.
    pub fn verify(
        &self,
        recipient: &Ed25519PublicKey,
        method: &str,
        path: &str,
        body: &[u8],
        now_ms: i64,
        max_skew_ms: i64,
    ) -> Result<(), ReplicaError> {
        if self.timestamp_ms.abs_diff(now_ms) > max_skew_ms.unsigned_abs() {
            return Err(refused("stale timestamp"));
        }
        let bytes = request_signing_bytes(
            &self.sender,
            recipient,
            self.timestamp_ms,
            method,
            path,
            body,
        );
        umbra_crypto::sign::verify(&self.sender, &bytes, &self.signature)
            .map_err(|_| refused("bad request signature"))
    }
}

/// The authentication of one peer answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseAuth {
    /// The responder's Ed25519 key.
    pub responder: Ed25519PublicKey,
    /// Ed25519 signature over [`response_signing_bytes`].
    pub signature: Signature,
}

impl ResponseAuth {
    /// Signs an answer from `identity` to the request authenticated by `request`.
    pub fn sign(identity: &Identity, request: &RequestAuth, status: u16, body: &[u8]) -> Self {
        let responder = identity.ed25519_public();
        let bytes = response_signing_bytes(
            &responder,
            &request.sender,
            &request.signature,
            status,
            body,
        );
        ResponseAuth {
            responder,
            signature: identity.sign(&bytes),
        }
    }

    /// The header value.
    pub fn to_header(&self) -> String {
        format!(
            "{AUTH_VERSION} {} {}",
            hex::encode(self.responder),
            hex::encode(self.signature)
        )
    }

    /// Parses a header value (bounded; never panics).
    ///
    /// # Errors
    /// [`ReplicaError::PeerAuth`] naming what was malformed.
    pub fn parse_header(value: &str) -> Result<Self, ReplicaError> {
        if value.len() > MAX_AUTH_HEADER_LEN {
            return Err(refused("authentication header too long"));
        }
        let mut parts = value.split(' ');
        let (Some(version), Some(key), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(refused("malformed authentication header"));
        };
        if version != AUTH_VERSION {
            return Err(refused("unsupported authentication version"));
        }
        Ok(ResponseAuth {
            responder: hex_array(key, "malformed responder key")?,
            signature: hex_array(sig, "malformed response signature")?,
        })
    }

    /// Checks that the answer comes from `expected_responder` and answers `request`.
    ///
    /// # Errors
    /// [`ReplicaError::PeerAuth`]: wrong responder or bad signature.
    pub fn verify(
        &self,
        expected_responder: &Ed25519PublicKey,
        request: &RequestAuth,
        status: u16,
        body: &[u8],
    ) -> Result<(), ReplicaError> {
        if self.responder != *expected_responder {
            return Err(refused("answer signed by another node"));
        }
        let bytes = response_signing_bytes(
            &self.responder,
            &request.sender,
            &request.signature,
            status,
            body,
        );
        umbra_crypto::sign::verify(&self.responder, &bytes, &self.signature)
            .map_err(|_| refused("bad response signature"))
    }
}

/// Remembers the signatures of recently accepted requests so that a captured request cannot be
/// replayed while its timestamp is still fresh. Bounded: when full of still-fresh entries, new
/// requests are refused (the node is being flooded).
#[derive(Debug)]
pub struct ReplayCache {
    max_skew_ms: i64,
    capacity: usize,
    seen: HashSet<Signature>,
    order: VecDeque<(i64, Signature)>,
}

impl ReplayCache {
    /// A cache for requests accepted within `max_skew_ms` of now, holding at most `capacity`.
    pub fn new(max_skew_ms: i64, capacity: usize) -> Self {
        ReplayCache {
            max_skew_ms,
            capacity: capacity.max(1),
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Records `auth` (already verified, so its timestamp is fresh).
    ///
    /// # Errors
    /// [`ReplicaError::PeerAuth`] if the same signature was accepted before, or if the cache is
    /// full of fresh entries.
    pub fn check_and_insert(
        &mut self,
        auth: &RequestAuth,
        now_ms: i64,
    ) -> Result<(), ReplicaError> {
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
        if self.seen.contains(&auth.signature) {
            return Err(refused("replayed request"));
        }
        if self.order.len() >= self.capacity {
            return Err(refused("replay cache full"));
        }
        self.seen.insert(auth.signature);
        self.order.push_back((auth.timestamp_ms, auth.signature));
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

    #[test]
    fn request_round_trip_and_tampering() {
        let (a, b) = ids();
        let bk = b.ed25519_public();
        let auth = RequestAuth::sign(&a, &bk, NOW, "POST", "/umbra/peer/v1/forward", b"{}");
        let parsed = RequestAuth::parse_header(&auth.to_header()).unwrap();
        assert_eq!(parsed, auth);
        parsed
            .verify(
                &bk,
                "POST",
                "/umbra/peer/v1/forward",
                b"{}",
                NOW + 5_000,
                30_000,
            )
            .unwrap();
        // Another body, path, recipient, or a stale clock: refused.
        assert!(
            parsed
                .verify(&bk, "POST", "/umbra/peer/v1/forward", b"{ }", NOW, 30_000)
                .is_err()
        );
        assert!(
            parsed
                .verify(&bk, "POST", "/umbra/peer/v1/digests", b"{}", NOW, 30_000)
                .is_err()
        );
        assert!(
            parsed
                .verify(&bk, "GET", "/umbra/peer/v1/forward", b"{}", NOW, 30_000)
                .is_err()
        );
        assert!(
            parsed
                .verify(
                    &a.ed25519_public(),
                    "POST",
                    "/umbra/peer/v1/forward",
                    b"{}",
                    NOW,
                    30_000
                )
                .is_err()
        );
        assert!(
            parsed
                .verify(
                    &bk,
                    "POST",
                    "/umbra/peer/v1/forward",
                    b"{}",
                    NOW + 30_001,
                    30_000
                )
                .is_err()
        );
        assert!(
            parsed
                .verify(
                    &bk,
                    "POST",
                    "/umbra/peer/v1/forward",
                    b"{}",
                    NOW - 30_001,
                    30_000
                )
                .is_err()
        );
        let mut forged = parsed.clone();
        forged.sender = bk;
        assert!(
            forged
                .verify(&bk, "POST", "/umbra/peer/v1/forward", b"{}", NOW, 30_000)
                .is_err()
        );
    }

    #[test]
    fn header_parsing_is_bounded() {
        for bad in [
            "",
            "v1",
            "v2 00 1 00",
            "v1 zz 1 00",
            "v1 0000 1 0000",
            &format!("v1 {} x {}", "00".repeat(32), "00".repeat(64)),
            &format!("v1 {} 1 {} extra", "00".repeat(32), "00".repeat(64)),
            &"v1 ".repeat(200),
        ] {
            assert!(RequestAuth::parse_header(bad).is_err(), "{bad:?}");
            assert!(ResponseAuth::parse_header(bad).is_err(), "{bad:?}");
        }
        let ok = format!("v1 {} -5 {}", "ab".repeat(32), "cd".repeat(64));
        assert_eq!(RequestAuth::parse_header(&ok).unwrap().timestamp_ms, -5);
    }

    #[test]
    fn response_round_trip_and_binding() {
        let (a, b) = ids();
        let req = RequestAuth::sign(&a, &b.ed25519_public(), NOW, "POST", "/p", b"x");
        let resp = ResponseAuth::sign(&b, &req, 200, b"answer");
        let parsed = ResponseAuth::parse_header(&resp.to_header()).unwrap();
        parsed
            .verify(&b.ed25519_public(), &req, 200, b"answer")
            .unwrap();
        assert!(
            parsed
                .verify(&b.ed25519_public(), &req, 500, b"answer")
                .is_err()
        );
        assert!(
            parsed
                .verify(&b.ed25519_public(), &req, 200, b"other")
                .is_err()
        );
        assert!(
            parsed
                .verify(&a.ed25519_public(), &req, 200, b"answer")
                .is_err()
        );
        let other_req = RequestAuth::sign(&a, &b.ed25519_public(), NOW + 1, "POST", "/p", b"x");
        assert!(
            parsed
                .verify(&b.ed25519_public(), &other_req, 200, b"answer")
                .is_err()
        );
    }

    #[test]
    fn replay_cache_refuses_repeats_and_forgets_old_entries() {
        let (a, b) = ids();
        let mut cache = ReplayCache::new(30_000, 2);
        let r1 = RequestAuth::sign(&a, &b.ed25519_public(), NOW, "POST", "/p", b"1");
        let r2 = RequestAuth::sign(&a, &b.ed25519_public(), NOW, "POST", "/p", b"2");
        let r3 = RequestAuth::sign(&a, &b.ed25519_public(), NOW + 40_000, "POST", "/p", b"3");
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
