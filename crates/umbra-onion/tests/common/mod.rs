//! An in-memory network: nodes are key pairs, sending is a function call.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use umbra_crypto::keys::X25519KeyPair;
use umbra_crypto::{Ed25519PublicKey, Identity, SeededRandom};
use umbra_onion::{Hop, Peeled, Response, peel, peel_bencoded};

pub(crate) struct Net {
    /// Storage nodes: 0..3 form the path, 3 is a storage destination, 4.. are spares.
    pub(crate) nodes: Vec<Identity>,
    /// An external server's key.
    pub(crate) server: X25519KeyPair,
    pub(crate) rng: SeededRandom,
}

impl Net {
    pub(crate) fn new(seed: u64) -> Self {
        let mut rng = SeededRandom::new(seed);
        let nodes = (0..6).map(|_| Identity::generate(&mut rng)).collect();
        let server = X25519KeyPair::generate(&mut rng);
        Self { nodes, server, rng }
    }

    pub(crate) fn hop(&self, i: usize) -> Hop {
        Hop {
            ed25519: self.nodes[i].ed25519_public(),
            x25519: self.nodes[i].x25519_public(),
        }
    }

    pub(crate) fn path(&self) -> Vec<Hop> {
        (0..3).map(|i| self.hop(i)).collect()
    }

    pub(crate) fn keys(&self, i: usize) -> X25519KeyPair {
        self.nodes[i].x25519_keypair()
    }

    pub(crate) fn index_of(&self, ed25519: &Ed25519PublicKey) -> usize {
        self.nodes
            .iter()
            .position(|n| &n.ed25519_public() == ed25519)
            .unwrap_or_else(|| panic!("unknown node {}", hex::encode(ed25519)))
    }
}

/// How nodes hand layers to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    /// Umbra's frame (`Forward::to_frame` → `peel`).
    Frame,
    /// Session's bencoded OMQ dict (`Forward::to_bencoded` → `peel_bencoded`).
    Bencoded,
}

/// Carries a request from the edge (node `first`) along relays until some node does something
/// other than forward. Returns that node's index, what it got, and every frame size seen.
pub(crate) fn deliver(
    net: &Net,
    first: usize,
    body: &[u8],
    wire: Wire,
) -> (usize, Peeled, Vec<usize>) {
    let mut at = first;
    let mut msg = body.to_vec();
    let mut sizes = vec![msg.len()];
    let mut from_client = true;
    loop {
        let keys = net.keys(at);
        let peeled = if from_client || wire == Wire::Frame {
            peel(&keys, &msg)
        } else {
            peel_bencoded(&keys, &msg)
        }
        .unwrap_or_else(|e| panic!("node {at} refused: {e}"));
        from_client = false;
        match peeled {
            Peeled::Forward(fwd) => {
                msg = match wire {
                    Wire::Frame => fwd.to_frame(),
                    Wire::Bencoded => fwd.to_bencoded(),
                };
                sizes.push(msg.len());
                at = net.index_of(fwd.next_node());
            }
            other => return (at, other, sizes),
        }
    }
}

/// Relays pass answers back unchanged.
pub(crate) fn back(resp: Response) -> (u16, Vec<u8>) {
    (resp.status, resp.body)
}
