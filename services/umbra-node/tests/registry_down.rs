//! A node restarted while the registry is down starts from the signed list it saved (verified
//! again against the pinned key), not from nothing; a saved list from another registry is not
//! believed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use umbra_node::membership::LIST_FILE;
use umbra_node::testing::{HANG_GUARD, TestNode, TestRegistry, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_while_the_registry_is_down_serves_with_its_saved_list() {
    let registry = TestRegistry::start().await.unwrap();
    let (url, grpc_url, key) = (
        registry.url().to_owned(),
        registry.grpc_url().to_owned(),
        registry.pubkey(),
    );
    let configure = |c: &mut umbra_node::config::Config| {
        c.registry_url = Some(url.clone());
        c.registry_grpc_url = Some(grpc_url.clone());
        c.registry_pubkey = Some(hex::encode(key));
    };
    let node = TestNode::start_in(tempfile::tempdir().unwrap(), configure)
        .await
        .unwrap();
    eventually(
        "the node in a swarm of the registry's list",
        HANG_GUARD,
        || async {
            Ok(node
                .node()
                .unwrap()
                .state()
                .swarm
                .get()
                .our_swarm()
                .is_some())
        },
    )
    .await
    .unwrap();
    let epoch = node.node().unwrap().state().swarm.get().epoch();
    eventually("the list saved", HANG_GUARD, || async {
        Ok(node.data_dir().join(LIST_FILE).exists())
    })
    .await
    .unwrap();
    let dir = node.stop().await;
    registry.stop().await;

    // The registry is gone: the restarted node holds its saved list from the start, and
    // answers by it.
    let node = TestNode::start_in(dir, configure).await.unwrap();
    let view = node.node().unwrap().replica().unwrap().view().get();
    assert!(view.epoch() >= epoch, "{} < {epoch}", view.epoch());
    assert!(view.our_swarm().is_some());
    eventually(
        "the node to serve by its saved list",
        HANG_GUARD,
        || async { Ok(node.node().unwrap().state().swarm.get().our_swarm() == view.our_swarm()) },
    )
    .await
    .unwrap();
    let dir = node.stop().await;

    // Pinned to another registry key, the same saved list is refused: no swarm.
    let other = TestNode::start_in(dir, |c| {
        configure(c);
        c.registry_pubkey = Some("ab".repeat(32));
    })
    .await
    .unwrap();
    let view = other.node().unwrap().replica().unwrap().view().get();
    assert_eq!(view.epoch(), 0);
    assert!(view.our_swarm().is_none());
    other.stop().await;
}
