//! The set-up of the tests over real nodes, shared by this crate's `real_nodes.rs` and
//! umbra-messenger's (which includes this file by path: one copy until the in-process test
//! set-ups become one `umbra-testkit`).
//!
//! The client connects from 127.0.0.2 and the nodes from 127.0.0.1, so the nodes' own event
//! logs show who saw the client's connection: only guards, which never see a request.

// Each test file that includes this module uses part of it.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use umbra_crypto::{Identity, SeededRandom};
use umbra_net::{
    BoxFuture, HttpConfig, HttpLink, LinkError, LinkReply, OnionTransport, PathConfig,
    RegistrySource, SystemClock, TransportConfig,
};
use umbra_node::testing::{TestNode, share_view};
use umbra_nodelist::list::{NodeEntry, NodeList, SignedNodeList, TrustPolicy};

/// The address the client connects from.
pub(crate) const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A registry that always answers the same list.
pub(crate) struct StaticRegistry(pub(crate) Vec<u8>);

impl RegistrySource for StaticRegistry {
    fn fetch_list(&self) -> BoxFuture<'_, Result<LinkReply, LinkError>> {
        Box::pin(std::future::ready(Ok(LinkReply {
            status: 200,
            body: self.0.clone(),
        })))
    }
}

/// Running in-process nodes and the list that names them, signed by `registry`.
pub(crate) struct Net {
    pub(crate) nodes: Vec<Option<TestNode>>,
    pub(crate) infos: Vec<NodeEntry>,
    pub(crate) registry: Identity,
    pub(crate) list: SignedNodeList,
}

/// Starts one node per entry of `swarm_of`, each in the swarm given.
pub(crate) async fn start(swarm_of: &[u64]) -> Net {
    let mut nodes = Vec::new();
    for _ in swarm_of {
        nodes.push(TestNode::start().await.unwrap());
    }
    let infos = share_view(nodes.iter().zip(swarm_of.iter().copied()));
    let registry = Identity::generate(&mut SeededRandom::new(77));
    let list = SignedNodeList::sign(NodeList::new(1, 1, infos.clone()), &registry);
    Net {
        nodes: nodes.into_iter().map(Some).collect(),
        infos,
        registry,
        list,
    }
}

/// A transport on `net`'s list, connecting from [`CLIENT_IP`], without /24 diversity (every
/// node is on 127.0.0.1).
pub(crate) fn transport(net: &Net) -> OnionTransport {
    let cfg = TransportConfig {
        paths: PathConfig {
            subnet_diversity: false,
            ..PathConfig::default()
        },
        ..TransportConfig::default()
    };
    let http = HttpConfig {
        local_address: Some(IpAddr::V4(CLIENT_IP)),
        ..HttpConfig::default()
    };
    let link = Arc::new(HttpLink::new("http://registry.invalid", &http).unwrap());
    OnionTransport::with_parts(
        TrustPolicy::single(net.registry.ed25519_public()),
        cfg,
        link,
        Arc::new(StaticRegistry(serde_json::to_vec(&net.list).unwrap())),
        Arc::new(SystemClock),
        Box::new(SeededRandom::new(5)),
    )
    .unwrap()
}
