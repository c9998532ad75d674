//! The gRPC (protobuf) forms of the registry's messages: round trips keep signatures valid,
//! bad lengths and oversized lists are refused before any value is built.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv4Addr;

use prost::Message as _;
use umbra_crypto::Identity;
use umbra_nodelist::NodeListError;
use umbra_nodelist::api::{
    Announcement, HeartbeatRequest, LeaveRequest, NodeStatus, RegisterRequest,
};
use umbra_nodelist::list::{MAX_LIST_NODES, NodeEntry, NodeList, SignedNodeList, TrustPolicy};
use umbra_nodelist::proto::MAX_LIST_MESSAGE_BYTES;
use umbra_proto::umbra::registry::v1 as pb;

fn id(i: u8) -> Identity {
    Identity::from_seed(&[0x40 + i; 32])
}

fn registry() -> Identity {
    Identity::from_seed(&[0x52; 32])
}

fn entry(i: u8) -> NodeEntry {
    let n = id(i);
    NodeEntry {
        pubkey_ed25519: n.ed25519_public(),
        pubkey_x25519: n.x25519_public(),
        public_ip: Ipv4Addr::new(10, 0, 0, i),
        storage_port: 30_000 + u16::from(i),
        storage_lmq_port: 31_000 + u16::from(i),
        swarm_id: u64::from(i % 2) << 63,
        active: i != 3,
        version: [2, 8, u16::from(i)],
    }
}

fn announcement() -> Announcement {
    Announcement {
        public_ip: Ipv4Addr::new(10, 0, 0, 9),
        storage_port: 22021,
        storage_lmq_port: 22022,
        version: [2, 8, 0],
    }
}

#[test]
fn a_signed_list_survives_protobuf_and_still_verifies() {
    let signed = SignedNodeList::sign(
        NodeList::new(7, 7000, (0..6).map(entry).collect()),
        &registry(),
    );
    let bytes = pb::SignedNodeList::from(&signed).encode_to_vec();
    let back =
        SignedNodeList::try_from(&pb::SignedNodeList::decode(bytes.as_slice()).unwrap()).unwrap();
    assert_eq!(back, signed);
    TrustPolicy::single(registry().ed25519_public())
        .verify(&back)
        .unwrap();
}

#[test]
fn a_full_list_fits_the_message_limit() {
    let nodes: Vec<NodeEntry> = (0..MAX_LIST_NODES)
        .map(|i| {
            let mut e = entry(1);
            let mut k = [0xffu8; 32];
            k[..8].copy_from_slice(&(i as u64).to_be_bytes());
            e.pubkey_ed25519 = umbra_crypto::Ed25519PublicKey::from_bytes(k);
            e.pubkey_x25519 = umbra_crypto::X25519PublicKey::from_bytes(k);
            e.public_ip = Ipv4Addr::new(255, 255, 255, 255);
            e.storage_port = u16::MAX;
            e.storage_lmq_port = u16::MAX;
            e.swarm_id = u64::MAX - 1;
            e.version = [u16::MAX; 3];
            e
        })
        .collect();
    let mut signed = SignedNodeList::sign(NodeList::new(u64::MAX, u64::MAX, nodes), &registry());
    for i in 0..31 {
        signed.add_signature(&id(i));
    }
    let len = pb::SignedNodeList::from(&signed).encoded_len();
    assert!(len < MAX_LIST_MESSAGE_BYTES, "{len} bytes");
}

#[test]
fn wrong_lengths_and_ranges_are_refused() {
    let signed = SignedNodeList::sign(
        NodeList::new(1, 1, (0..3).map(entry).collect()),
        &registry(),
    );
    let good = pb::SignedNodeList::from(&signed);
    type Mutation = fn(&mut pb::SignedNodeList);
    let mutations: [(&str, Mutation); 8] = [
        ("short key", |m| {
            m.list.as_mut().unwrap().nodes[0]
                .pubkey_ed25519
                .pop()
                .map(drop)
                .unwrap()
        }),
        ("long x25519", |m| {
            m.list.as_mut().unwrap().nodes[1].pubkey_x25519.push(0)
        }),
        ("ip of 16 bytes", |m| {
            m.list.as_mut().unwrap().nodes[0].public_ip = vec![0; 16]
        }),
        ("port above 65535", |m| {
            m.list.as_mut().unwrap().nodes[2].storage_port = 65_536
        }),
        ("two version numbers", |m| {
            m.list.as_mut().unwrap().nodes[2].version = vec![2, 8]
        }),
        ("list version 256", |m| {
            m.list.as_mut().unwrap().version = 256
        }),
        ("short signature", |m| {
            m.signatures[0].signature.truncate(10)
        }),
        ("no list", |m| m.list = None),
    ];
    for (what, mutate) in mutations {
        let mut m = good.clone();
        mutate(&mut m);
        assert!(
            matches!(
                SignedNodeList::try_from(&m),
                Err(NodeListError::BadRequest(_))
            ),
            "{what}"
        );
    }
    let mut big = good.clone();
    let one = big.list.as_ref().unwrap().nodes[0].clone();
    big.list.as_mut().unwrap().nodes = vec![one; MAX_LIST_NODES + 1];
    assert!(matches!(
        SignedNodeList::try_from(&big),
        Err(NodeListError::ListTooLarge { what: "nodes", .. })
    ));
    let mut sigs = good;
    sigs.signatures = vec![sigs.signatures[0].clone(); 33];
    assert!(matches!(
        SignedNodeList::try_from(&sigs),
        Err(NodeListError::ListTooLarge {
            what: "signatures",
            ..
        })
    ));
}

#[test]
fn signed_requests_survive_protobuf_and_still_verify() {
    let reg = registry();
    let me = id(1);
    let now = 1_764_000_000_000;
    let r = RegisterRequest::new(&me, &reg.ed25519_public(), announcement(), now).unwrap();
    let back = RegisterRequest::try_from(
        &pb::RegisterRequest::decode(pb::RegisterRequest::from(&r).encode_to_vec().as_slice())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(back, r);
    back.verify(&reg, now, 1000).unwrap();

    let h = HeartbeatRequest::new(&me, &reg.ed25519_public(), now);
    let back = HeartbeatRequest::try_from(&pb::HeartbeatRequest::from(&h)).unwrap();
    assert_eq!(back, h);
    back.verify(&reg.ed25519_public(), now, 1000).unwrap();
    let l = LeaveRequest::new(&me, &reg.ed25519_public(), now);
    assert_eq!(
        LeaveRequest::try_from(&pb::LeaveRequest::from(&l)).unwrap(),
        l
    );

    let mut m = pb::RegisterRequest::from(&r);
    m.announcement.as_mut().unwrap().storage_port = 70_000;
    assert!(RegisterRequest::try_from(&m).is_err());
    m.announcement = None;
    assert!(RegisterRequest::try_from(&m).is_err());
    let mut m = pb::HeartbeatRequest::from(&h);
    m.signature.clear();
    assert!(HeartbeatRequest::try_from(&m).is_err());

    let status = NodeStatus {
        epoch: 4,
        swarm_id: 0xabc,
        swarm: "abc".into(),
        active: true,
        heartbeat_interval_ms: 3000,
    };
    assert_eq!(NodeStatus::from(&pb::NodeStatus::from(&status)), status);
}
